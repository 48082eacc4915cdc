// Package broker is the RocketMQ-compatible broker of one Raft group member: it
// owns the request processors (send, pull with long polling, offsets, heartbeat
// and client registry, queries, admin, send-back, transactions), the topic,
// subscription-group and consumer-offset state replicated through Raft
// (metaStore, a dledger.MetaStateMachine with a small versioned JSON command
// format), the namesrv registration by role (leader = brokerId 0 with its term
// as dataVersion.stateVersion, followers = 1+ordinal; every registration
// also carries ext raftmqMemberId = dLegerSelfId and raftmqMemberOrdinal, from
// which the namesrv builds the members' write aliases), the wiring of the
// services in broker/schedule, broker/txn, broker/retry and broker/lockmgr,
// and the broker.conf configuration (RocketMQ key names).
//
// Start opens the group member (dledger.Open), serves clients on a
// remoting.Server and registers with every namesrv at once on any role or
// topic change, then every registerNameServerPeriod.
//
// Choices that differ from Java RocketMQ (docs/protocol.md, docs/raft.md):
//   - Consumer offset commits are coalesced on the leader: they are visible to
//     queries at once and replicated as one Raft entry per flush carrying
//     every changed offset, instead of one entry per commit. A flush runs
//     every offsetFlushIntervalMs (1 s), and early when a sync commit waits
//     (at least interval/10, at most 10 ms after the previous flush
//     started, once it finished: group commit). An UPDATE_CONSUMER_OFFSET
//     expecting an answer is answered success only once the flush carrying
//     it (or a later commit of the same key) is applied through Raft,
//     asynchronously (no worker held); a failed flush, leadership loss or
//     the 2.5 s budget answer 14 or SYSTEM_ERROR, which clients retry. Oneway
//     commits (the official clients') and commits on pulls are not answered
//     and go with the next flush; those pending are dropped on leadership
//     loss (clients re-commit every 5 s) and never proposed by a later
//     leadership of the same member.
//   - The leader serves a write off the send pool, on a goroutine kept for
//     the next one, and answers it with Conn.Send once its Raft entry is
//     applied (at most 4096 at once, beyond that on the pool's worker): the
//     pool's size does not bound the sends in flight or what one entry packs.
//   - A member that is not the leader forwards sends (10, 310, 320, 324,
//     325), END_TRANSACTION and CONSUMER_SEND_MSG_BACK to the leader and
//     relays its answer (forward.go): the leader's member address comes from
//     the member directory, a Raft-replicated table every new leader adds
//     its entry to (meta op member.put; memberAddr = brokerIP2:listenPort).
//     A write waits out an election for up to 2.5 s; a forwarded write
//     (ext raftmqForwarded=1, with the client's address in raftmqBornHost,
//     stored as BornHost) reaching a non-leader is answered 14, never
//     forwarded again; at most 4096 writes are forwarded at once, beyond
//     that SYSTEM_BUSY. QUERY_CONSUMER_OFFSET is forwarded the same way
//     (a deposed or restarted leader still listed as brokerId 0 has not
//     applied the newest commits), except while the member stops, when it
//     answers from its own state. Offset updates, locks and admin writes on a
//     follower are still answered SERVICE_NOT_AVAILABLE (14) with a remark
//     naming the leader (clients send them to brokerId 0). Followers serve
//     pulls of committed data.
//   - The client port is bound only once the store is recovered, so a
//     restarting member refuses connections instead of holding them.
//   - Close hands leadership to another member first, keeps forwarding
//     while that happens, then answers new writes 14 while the ones already
//     taken are answered (a write whose Raft entry lost leadership on the
//     way is settled from the next leader's log), waits for the answers to
//     be written, and only then closes connections and the node.
//   - Pull answers steer consumers to followers (suggestWhichBrokerId, a
//     member's stable id 1+ordinal; readsteer.go): the leader suggests a
//     caught-up follower it heard from within a heartbeat timeout, spread
//     by queue; a healthy follower suggests itself, a lagging or cut-off one
//     another member. A follower never answers OFFSET_MOVED: offsets beyond
//     or below its data are "no new message" (long-polled while it is
//     healthy) with the leader suggested. Parked pulls are answered at once
//     when the member stops being healthy and when it closes.
//   - Read-only requests are served from local replicated state on every
//     member and may lag the leader by the replication delay (not
//     linearizable): GET_MAX/MIN_OFFSET, SEARCH_OFFSET_BY_TIMESTAMP,
//     QUERY_MESSAGE, VIEW_MESSAGE_BY_ID. Heartbeats and GET_CONSUMER_LIST
//     use each member's own client registry (clients heartbeat every member).
//   - A pull without the subscription flag from a group whose heartbeat has
//     not reached this node yet is served unfiltered (the clients filter by
//     tag again) instead of SUBSCRIPTION_NOT_EXIST, which would stall the
//     queue for 3 s. Filtering is by tag hash on the consume queue, then by
//     the record's TAGS property.
//   - QUERY_CONSUMER_OFFSET for a group without an offset answers 0 (as Java
//     does while the first message is in memory) only when the queue's first
//     message lies within the newest 512 MiB of the log, else 22.
//   - Parked long polls hold no worker: they are answered through Conn.Send
//     when the dispatcher reports new messages for their queue, or by a timer.
//   - Producer sends (SEND_MESSAGE, V2, batch, reply) are deduplicated by
//     (stored topic, UNIQ_KEY) within duplicateWindowSeconds (default 120,
//     0 = off; at most duplicateMaxEntries keys): a retry of a stored
//     message is answered with the original's msgId (offsetMsgId, built from
//     the store host that stored it), queueId, queueOffset and, for a half
//     message, transactionId, and nothing is stored (dledger.AppendSends).
//     The key is taken after the delayed/half rewrite, so a delayed send is
//     keyed in SCHEDULE_TOPIC_XXXX and a half in RMQ_SYS_TRANS_HALF_TOPIC,
//     never colliding with the delivery or commit re-append in the real
//     topic. The broker's own appends (delay delivery, transaction commit,
//     CONSUMER_SEND_MSG_BACK, DLQ) and client sends into %RETRY%/%DLQ%
//     (the send-back fallback, which repeats UNIQ_KEY every round) are never
//     checked. Batch items are checked one by one: known items are answered
//     with their stored offsetMsgId and only new items are stored; queueId
//     and queueOffset are the first item's. A retry that the client sends to
//     another broker group cannot be deduplicated by any broker.
//   - A write whose outcome is unknown (dledger.ErrIndeterminate: the entry
//     was in Raft when leadership was lost, the node shut down, the store
//     timed out) is answered SYSTEM_ERROR (1, retried by the clients) with a
//     remark starting "indeterminate:", unlike a definite refusal
//     (SERVICE_NOT_AVAILABLE 14).
package broker
