// Package schedule owns RocketMQ delay levels (docs/protocol.md §6.5): the
// messageDelayLevel table, the send-path transform of a message with DELAY=n
// into SCHEDULE_TOPIC_XXXX queue n-1, the ConsumeQueue tagsCode of that topic
// (the delivery time), and the leader-only Service that re-puts due messages
// to their real topic and queue.
//
// # Wiring (broker)
//
//   - Config: broker.conf messageDelayLevel is checked and parsed by
//     ParseDelayLevels (default DefaultDelayLevels); the broker passes the
//     Levels to the services and to its Raft node.
//   - Send path (SEND_MESSAGE, and the record CONSUMER_SEND_MSG_BACK builds):
//     after the transaction-half transform was considered (txn.PrepareHalf
//     for TRAN_MSG sends), the broker calls levels.ToDelayQueue(ext) and,
//     when it reports true, stores the returned copy instead. It leaves
//     transaction halves, messages without a positive DELAY and
//     SCHEDULE_TOPIC_XXXX records alone. An ErrInvalidDelay error (DELAY not
//     an integer) is answered MESSAGE_ILLEGAL (13). Batches with DELAY are
//     refused by the send processor, as in RocketMQ.
//   - Dispatch: levels.TagsCode is the Raft node's tagsCode function: the
//     delivery time (ms) for SCHEDULE_TOPIC_XXXX, the tag hash otherwise.
//     Every dispatched SCHEDULE_TOPIC_XXXX entry calls service.Notify()
//     (a no-op while the Service is stopped, i.e. on followers).
//   - Service: NewService(Config{Levels, Store, Offsets, Logger}). Store
//     reads the ConsumeQueue and CommitLog (committed data only) and appends
//     through Raft; OffsetStore replicates the level->offset map through the
//     Raft metadata log in the MarshalOffsets form (shaped like Java's
//     delayOffset.json). A new leader calls service.Start(ctx) once its write
//     gate is open (after the Barrier); leadership loss calls service.Stop().
//   - SCHEDULE_TOPIC_XXXX exists with MaxLevel queues (perm 6); clients may
//     not send to it (NO_PERMISSION 16).
//
// # Delivery semantics
//
// Each level's queue is in store order, hence in delivery-time order, so the
// Service keeps one cursor per level and only looks at its head. It appends
// the re-put records (Store.Append, waiting for commit) before it advances
// and then saves the level's offset. A leader that dies between the two
// makes the next leader deliver those messages again: delivery is
// at-least-once across leader changes and exactly-once otherwise. The
// duplicates keep their UNIQ_KEY, so consumers can de-duplicate.
//
// The Service sleeps on a timer until the earliest head is due, and wakes
// early on Notify (a new entry) or Stop; it never polls. Read or append
// errors are retried after RetryBackoff. A record that cannot be read or has
// no usable REAL_TOPIC/REAL_QID is logged and skipped, so one bad record
// cannot stop a level. A head whose delivery time lies further ahead than
// its level's delay (clock moved back) is delivered at once.
package schedule
