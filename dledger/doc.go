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
// Choices that differ from notes/raft-commitlog-design.md:
//   - The payload header carries a version byte (byte 2) and a u32 message
//     count (§4.3 had a u16 count and a reserved u32).
//   - next[topic,queue] is not rebuilt eagerly when the gate opens; it is
//     cleared and filled lazily from ConsumeQueue MaxOffset the first time a
//     queue is written in the term. This is exact because the Barrier before
//     opening guarantees every earlier-term entry is dispatched, and a queue
//     that has not been assigned in this term has no undispatched entries.
//   - The snapshot records raft's snapshot index by reading it from the
//     snapshot sink ID (FileSnapshotStore names it term-index-time), because
//     FSM.Snapshot is not told the index and raft counts no-op entries the
//     FSM never sees.
package dledger
