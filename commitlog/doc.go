// Package commitlog owns the CommitLog of a raftmq broker group: preallocated
// segment files whose records are the entries of the group's Raft log. A
// Store implements raft.LogStore and raft.MonotonicLogStore and adds what the
// RocketMQ side needs: the physical position of every record (the AppendHook
// lets the leader patch offsets into an entry just before it is written),
// zero-copy reads through refcounted leases, a checkpoint shared with the
// FSM (applied and dispatched indexes), crash recovery, suffix truncation
// with zeroing, a reset intent for InstallSnapshot, and time/disk based
// retention of whole prefix segments.
//
// Files under Options.RootDir:
//
//	lock                      flock'd while a Store is open (one Store per directory)
//	abort                     exists while open; present at Open = unclean shutdown
//	checkpoint                two alternating 4 KiB CRC'd slots (docs/storage.md §10)
//	commitlog/<20 digits>     segment named by its start offset, SegmentSize bytes
//	commitlog/<20 digits>.idx record offsets of a sealed segment (docs/storage.md §5)
//
// The format and its crash-safety argument are in docs/storage.md (record framing
// §3, hook §4, sidecar §5, methods §6, truncation §7, retention
// §8, reset §9, recovery §10, flush modes §11, zero copy §12).
// Where it differs from the design study it started from, and why:
//
//   - The active segment has no sidecar, in memory or on disk: Open always
//     scans it (it must, to find a torn tail). Sealed segments get a sidecar
//     in the background after an fdatasync; Open trusts a valid one after
//     checking its first and last record and the BLANK after them, so damage
//     inside a sealed segment is reported by GetLog as ErrCorrupt (every read
//     checks both CRCs) rather than at Open.
//   - Truncation and torn-tail repair write zeros with pwrite instead of
//     FALLOC_FL_ZERO_RANGE: the extents stay written, which keeps later
//     fdatasyncs cheap (docs/storage.md §11 measurements).
//   - After a suffix truncation at index m the write end is the end of record
//     m-1, not pos(m): a BLANK may lie between them, and the position of the
//     next record must be the same function of the log as on the leader.
//   - A wipe without a reset intent keeps positions: the log restarts empty
//     with the next record at the old first position.
//   - A truncation at or below Applied() is refused (ErrTruncateBelowApplied);
//     there is no "allowUnsafeRollback" mode yet.
//   - The next segment is zero-filled in the background once the active one
//     is half full (so short-lived stores with 1 GiB segments do not write a
//     gigabyte of zeros), paced to Options.PreallocRate (128 MiB/s): an
//     unpaced zero-fill competes with appends and halved SYNC throughput in
//     our measurements. If it is not ready when needed, the writer cancels it
//     and creates the file with fallocate: raft's goroutine never waits for a
//     zero-fill.
//   - GetLog copies from the mapping for the active segment and uses pread
//     for sealed ones (cold data: a syscall instead of a P-stalling fault).
//   - StoreLogs never refuses for a full disk; DiskFull reports the
//     reject-writes level so the broker can refuse produce requests before
//     raft.Apply (docs/storage.md §8).
//   - In SYNC mode the checkpoint is rewritten at most every 100 ms (and on
//     truncation, retention, reset, Sync and Close), so its flushed position
//     may lag the acknowledged one; recovery still keeps everything on disk
//     that passes the checks.
//
// Metrics (armon/go-metrics global registry, shared with raft):
// commitlog.store_logs and commitlog.fdatasync (timers),
// commitlog.append_bytes, commitlog.append_entries, commitlog.rollback,
// commitlog.truncate_suffix, commitlog.reset, commitlog.failed,
// commitlog.retention.deleted_segments (counters) and
// commitlog.disk_used_ratio (gauge, set by RunRetention).
//
// Any fdatasync failure is fatal: the Store refuses every later write and
// keeps the abort file, since the page cache state after a failed fsync is
// unknowable.
package commitlog
