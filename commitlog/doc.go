// Package commitlog owns the CommitLog of a raftmq broker group: preallocated,
// mmap-read segment files whose records are the entries of the group's Raft log.
// A Store implements raft.LogStore and raft.MonotonicLogStore, plus the
// RocketMQ-side needs: physical positions of records, zero-copy reads through
// refcounted leases, a checkpoint, crash recovery, suffix truncation with
// zeroing, and time/disk based retention of prefix segments.
//
// See /work/shared/notes/raft-commitlog-design.md §4 for the design followed.
package commitlog
