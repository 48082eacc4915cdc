// Package txn owns RocketMQ transactional messages on the broker
// (docs/protocol.md §6.7, G22): the half-message transform, END_TRANSACTION
// (commit, rollback, unknown), the op log that marks halves resolved, and
// the leader-only Service that checks stale halves back with the producer
// (CHECK_TRANSACTION_STATE) and discards them after CheckMax checks.
//
// # Wiring (broker)
//
// SEND_MESSAGE with TRAN_MSG=true (IsHalfSend), before any delay transform:
//
//	half, err := txn.PrepareHalf(ext)   // ErrNoProducerGroup ⇒ MESSAGE_ILLEGAL (13)
//	store half (RMQ_SYS_TRANS_HALF_TOPIC queue 0, a normal dispatched record)
//	r := txn.SendResult(half, requestedQueueID)
//	answer 0 with ext msgId=r.MsgID, queueId=r.QueueID, queueOffset=r.QueueOffset,
//	transactionId=r.TransactionID (plus MSG_REGION/TRACE_ON as for any send)
//
// END_TRANSACTION (37) is a leader write: a follower forwards it to the
// leader. There: req, err := txn.ParseEndTransactionHeader(cmd.ExtFields)
// (error ⇒ SYSTEM_ERROR 1); outcome, err := svc.EndTransaction(ctx, req).
// ErrNotReady (the Service is not running yet: a new leader before its
// Barrier) ⇒ SERVICE_NOT_AVAILABLE (14) naming the leader; any other error
// ⇒ SYSTEM_ERROR (1) with err.Error() as remark. On success answer 0 with
// the outcome as remark, except outcome Ignored (state 0), where Java sends
// no response at all (and a request with the oneway flag is never answered).
//
// Service: txn.NewService(Config{Store, Checker, Progress, BrokerName,
// CheckInterval, Timeout, CheckMax, FinalizeCommitted, Logger}), the check
// timing from the broker's Config (TransactionCheckInterval,
// TransactionTimeout, TransactionCheckMax); Start(ctx) on becoming leader
// once the write gate is open, Stop() on losing leadership.
//   - Store: ReadQueueMessages (ConsumeQueue + CommitLog decode), ReadRecord,
//     Append. Append stores all messages of one call in one Raft entry: that
//     is what keeps a commit's final record and its op record together.
//   - Checker.SendCheck: one live producer connection of the group (from
//     heartbeats) gets the request oneway; error if there is none.
//   - ProgressStore: Progress is replicated through the Raft metadata log in
//     the MarshalProgress form.
//   - Topics RMQ_SYS_TRANS_HALF_TOPIC, RMQ_SYS_TRANS_OP_HALF_TOPIC and
//     TRANS_CHECK_MAX_TIME_TOPIC (1 queue each) exist; clients may not send
//     to them (NO_PERMISSION 16).
//
// FinalizeCommitted applies the delay transform to a committed message that
// carries DELAY:
//
//	func(e *message.Ext) (*message.Ext, error) {
//		out, _, err := levels.ToDelayQueue(e)
//		return out, err
//	}
//
// # Design and why
//
// The op log is RocketMQ's: records on RMQ_SYS_TRANS_OP_HALF_TOPIC, tag "d",
// body = resolved half-queue offsets. They go through the same Raft log, so
// every node has them. Unlike RocketMQ, a checked half is NOT re-appended to
// the half queue: the Service keeps the unresolved halves of the leader in
// memory (pending, keyed by half-queue offset, each ~100 bytes, bounded by
// MaxPending) and reads each half once. That keeps the offsets the producer
// got at send time valid for the whole life of the transaction (RocketMQ's
// re-appended copies get new offsets, so an END_TRANSACTION naming the
// original and a check answer naming a copy both identify one transaction
// and must be reconciled), and it lets the scan cursor skip resolved halves
// without re-reading them.
//
// The replicated Progress is a checkpoint: all halves below HalfOffset are
// resolved and all ops of later halves lie at or above OpOffset. A new leader
// reads the ops from OpOffset, then the halves from HalfOffset, and takes
// every half without an op as pending. Progress is saved after each check
// round; a stale checkpoint only costs a longer rebuild, never a lost or
// duplicated commit.
//
// Duplicates: EndTransaction marks the half busy before it stores anything,
// stores the final record and the op in one Append, and forgets the half only
// after that succeeded. A concurrent or later END_TRANSACTION for the same
// half gets InProgress or AlreadyResolved and stores nothing; after a leader
// change the op (atomic with the final record) is found by the rebuild.
//
// Differences from RocketMQ, documented: the age of a half is measured from
// its StoreTimestamp (the broker's clock), not the producer's born time; the
// check count (TRANSACTION_CHECK_TIMES) is leader memory, so a leader change
// restarts it at 0 (a half may get up to CheckMax more checks);
// CHECK_IMMUNITY_TIME_IN_SECONDS replaces the timeout for that message; a
// commit refuses a half whose PGROUP differs from the request's
// producerGroup, as RocketMQ does.
package txn
