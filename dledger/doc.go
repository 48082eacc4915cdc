// Package dledger owns a broker group's Raft node: the hashicorp/raft
// configuration, transport and StableStore, the appender that packs produced
// messages into Raft entries, the append hook that assigns queue and physical
// offsets on the leader (and verifies them on followers), the FSM that
// dispatches committed entries to the ConsumeQueue and IndexFile, the
// metadata snapshots, self-replay at start and the term-keyed write gate.
//
// The Raft log is the CommitLog (package commitlog): every Raft entry is one
// commitlog record, and a message entry's payload is a small header followed
// by RocketMQ stored-message records, so a record's physical offset is
// pos + commitlog.HeaderSize + payloadHeaderSize + (sizes of the records
// before it).
//
// Choices that differ from the original design study (docs/raft.md §14):
//   - The payload header carries a version byte (byte 2) and a u32 message
//     count (the study had a u16 count and a reserved u32).
//   - next[topic,queue] is not rebuilt eagerly when the gate opens; it is
//     cleared and filled lazily from ConsumeQueue MaxOffset the first time a
//     queue is written in the term. This is exact because the Barrier before
//     opening guarantees every earlier-term entry is dispatched, and a queue
//     that has not been assigned in this term has no undispatched entries.
//   - The snapshot records raft's snapshot index by reading it from the
//     snapshot sink ID (FileSnapshotStore names it term-index-time), because
//     FSM.Snapshot is not told the index and raft counts no-op entries the
//     FSM never sees.
//   - The appender keeps at most maxInflightEntries entries in raft at once;
//     raft's apply channel is buffered (BatchApplyCh), so without a bound
//     every request would become its own entry and nothing would be packed.
//   - raft's LogCache is small by default (256 entries, each up to
//     MaxEntryBytes), not the sheet's 16384: packed entries are large.
//   - FSM.Restore (InstallSnapshot on a running follower) drops the local
//     ConsumeQueue topics and IndexFile, since they point into the log that
//     is being reset; the queues restart at the snapshot's offsets. Messages
//     below the snapshot are not on that follower (phase 1 data gap, docs/raft.md §8).
//   - The node runs commitlog retention itself with safe index
//     min(latest snapshot index, durable dispatch index, commit index), and
//     drops CQ/IndexFile entries below the log's first position after it.
//   - raft runs on a thin wrapper of the configured transport that records
//     every AppendEntries answer (follower last log index, time), because
//     hashicorp/raft keeps its replication state private; ReadProgress gives
//     the broker that view plus the node's own commit/applied/contact, for
//     steering consumers to caught-up followers.
//
// Duplicate sends (AppendSends): every member derives a table of the
// committed records that carry a UNIQ_KEY, keyed by (stored topic,
// UNIQ_KEY), from the entries the FSM dispatches, so a new leader has it
// once its Barrier has applied the earlier terms. It is bounded by a time
// window (record store timestamp against the local clock) and a key count
// (oldest first); it holds a 64-bit hash and the physical offset per key
// (about 72 bytes of heap per key, BenchmarkDedupTableMemory), and a hit is
// confirmed against the stored record, so a hash collision can at worst let
// a retry be stored again, never suppress another message. The first
// committed record of a key wins. On the leader, keys of sends still in
// Raft are claimed, and a concurrent send of the same key waits for the
// claim's outcome: committed (answered from the table) or failed (it
// proceeds). A claim is released when the appender answers the entry, not
// when the submitter gives up, so a send that timed out still holds its key
// until its entry is decided. AppendMessages (the broker's own re-appends,
// which carry their original's UNIQ_KEY) never checks.
//
// At start the table is rebuilt by reading the log backwards from the
// dispatch checkpoint until an entry lies wholly before the window or the
// key bound is reached; self-replay and raft's apply add the rest. The scan
// runs in the background (about 1.6-2.6 µs per 1 KiB record,
// BenchmarkDedupRebuild), so a restarted follower serves at once; the write
// gate of a new leader does not open before it has finished. We scan
// the log rather than persist the table in the snapshot because the log is
// already durable and is the source of the answer (offsets, store host,
// properties): a snapshot-carried table would be stale by up to a snapshot
// interval (the entries after it need a scan anyway), would grow every
// snapshot by the whole table, and would point a follower restored by
// InstallSnapshot at records it does not have. The scan costs one read of
// the window's tail, bounded by the key count. A follower restored by
// InstallSnapshot starts with an empty table (Restore resets it).
//
// Errors after an entry was handed to raft.Apply are ErrIndeterminate
// (leadership lost, shutdown, the caller's deadline): the entry may still
// commit. Raft refusing the entry (not leader, transfer in progress) is a
// definite *NotLeaderError.
//
// A retry that a client sends to another broker group cannot be
// deduplicated by any broker: each group knows only its own log.
//
// OnDispatch callbacks run on raft's FSM goroutine and must not block (and
// must never wait for an AppendMessages/ProposeMeta, which needs that
// goroutine); Subscribe callbacks run on their own goroutine, in order.
package dledger
