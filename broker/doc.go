// Package broker is the RocketMQ-compatible broker of one Raft group member: it
// owns the request processors (send, pull with long polling, offsets, heartbeat
// and client registry, queries, admin, send-back, transactions), the topic,
// subscription-group and consumer-offset state replicated through Raft
// (metaStore, a dledger.MetaStateMachine with a small versioned JSON command
// format), the namesrv registration by role (leader = brokerId 0 with its term
// as dataVersion.stateVersion, followers = 1+ordinal), the wiring of the
// services in broker/schedule, broker/txn, broker/retry and broker/lockmgr,
// and the broker.conf configuration (RocketMQ key names).
//
// Start opens the group member (dledger.Open), serves clients on a
// remoting.Server and registers with every namesrv at once on any role or
// topic change, then every registerNameServerPeriod.
//
// Choices that differ from, or sharpen, the design notes:
//   - Consumer offset commits are coalesced on the leader: they are visible to
//     queries at once and replicated as one Raft entry per
//     offsetFlushIntervalMs (1 s) carrying every changed offset, instead of
//     one entry per commit. Pending commits are dropped on leadership loss
//     (clients re-commit every 5 s).
//   - A follower answers sends, offset updates, locks and admin writes with
//     SERVICE_NOT_AVAILABLE (14, retried by the Go and Java clients) whose
//     remark names the leader; it does not forward. It serves pulls of
//     committed data.
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
//     linearizable): QUERY_CONSUMER_OFFSET (the leader's unflushed commits
//     are visible only there), GET_MAX/MIN_OFFSET, SEARCH_OFFSET_BY_TIMESTAMP,
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
package broker
