// Package broker is the RocketMQ-compatible broker of one Raft group member: it
// owns the request processors (send, pull with long polling, offsets, heartbeat
// and client registry, queries, admin, send-back, transactions), the topic,
// subscription-group and consumer-offset managers whose state is replicated
// through Raft (MetaStateMachine), the namesrv registration by role, and the
// broker.conf configuration.
//
// Choices that differ from the design notes: consumer offset commits are
// coalesced on the leader and proposed as one Raft entry per flush interval
// (offsetFlushIntervalMs, 1 s) instead of one entry per commit; a follower
// answers writes with SERVICE_NOT_AVAILABLE (14) naming the leader rather than
// forwarding them.
package broker
