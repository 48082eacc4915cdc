// Package schedule owns RocketMQ delay levels (PROTOCOL.md §6.5): the
// messageDelayLevel table, the send-path transform of a message with DELAY=n
// into SCHEDULE_TOPIC_XXXX queue n-1, the ConsumeQueue tagsCode of that topic
// (the delivery time), and the leader-only Service that re-puts due messages
// to their real topic and queue.
//
// # Wiring (for the broker)
//
//   - Config: levels, err := ParseDelayLevels(conf.MessageDelayLevel) (or
//     Default()).
//   - Send path (SEND_MESSAGE, and the record CONSUMER_SEND_MSG_BACK builds):
//     after the transaction-half transform was considered (txn.PrepareHalf
//     for TRAN_MSG sends), call levels.ToDelayQueue(ext); when it reports
//     true, store the returned copy instead. It leaves transaction halves,
//     messages without a positive DELAY and SCHEDULE_TOPIC_XXXX records
//     alone. An ErrInvalidDelay error (DELAY not an integer) should be
//     answered with MESSAGE_ILLEGAL (13). Batches with DELAY are refused by
//     the send processor, as in RocketMQ.
//   - Dispatch: the CQ tagsCode of every record is levels.TagsCode(record):
//     the delivery time (ms) for SCHEDULE_TOPIC_XXXX, the tag hash otherwise.
//     Pass it as the dispatcher's tagsCode function. After dispatching any
//     SCHEDULE_TOPIC_XXXX entry on the leader, call service.Notify().
//   - Service: NewService(Config{Levels, Store, Offsets, Logger}); implement
//     Store (ReadQueue over the ConsumeQueue, ReadRecord over the CommitLog,
//     Append through the appender; all committed data only) and OffsetStore
//     (replicate the level->offset map through Raft like consumer offsets;
//     MarshalOffsets/UnmarshalOffsets give a JSON form shaped like Java's
//     delayOffset.json). On becoming leader, after
//     the Barrier: service.Start(ctx); on losing leadership: service.Stop().
//     SCHEDULE_TOPIC_XXXX must exist with MaxLevel queues (perm 6, not sent
//     to by clients: refuse with NO_PERMISSION 16).
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
