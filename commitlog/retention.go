package commitlog

import (
	"context"
	"fmt"
	"github.com/armon/go-metrics"
	"time"

	"golang.org/x/sys/unix"
)

// RetentionPolicy mirrors RocketMQ's CommitLog cleaning settings (docs/storage.md §8).
type RetentionPolicy struct {
	FileReservedTime  time.Duration // fileReservedTime (72 h)
	DeleteWhenHour    int           // deleteWhen hour of day, local time (4)
	DiskMaxUsedRatio  float64       // diskMaxUsedSpaceRatio: above it, expired files go at any hour (0.75)
	ForceCleanRatio   float64       // diskSpaceCleanForciblyRatio: above it, the oldest go regardless of age (0.85)
	RejectWritesRatio float64       // diskSpaceWarningLevelRatio: above it the broker rejects produce (0.90)
}

// DefaultRetentionPolicy returns RocketMQ's defaults.
func DefaultRetentionPolicy() RetentionPolicy {
	return RetentionPolicy{
		FileReservedTime:  72 * time.Hour,
		DeleteWhenHour:    4,
		DiskMaxUsedRatio:  0.75,
		ForceCleanRatio:   0.85,
		RejectWritesRatio: 0.90,
	}
}

// DeleteExpired deletes whole sealed segments from the head of the log whose
// newest record was appended more than Options.FileReservedTime before now
// (or, with force, the single oldest segment regardless of age), but never a
// segment holding an index > safeIndex (the caller passes
// min(latest snapshot index, durable dispatch index, commit index)) and never
// the active segment. It returns how many segments were deleted.
func (s *Store) DeleteExpired(now time.Time, safeIndex uint64, force bool) (int, error) {
	return s.deleteExpired(now.Add(-s.opts.FileReservedTime), safeIndex, force)
}

func (s *Store) deleteExpired(cutoff time.Time, safeIndex uint64, force bool) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.usable(); err != nil {
		return 0, err
	}
	deleted := 0
	for {
		s.mu.RLock()
		var victim *segment
		if len(s.segs) > 1 {
			seg := s.segs[0]
			ok := seg.sealed && (seg.count() == 0 || seg.lastIndex() <= safeIndex)
			expired := seg.maxAppendedAt < cutoff.UnixNano()
			if ok && (expired || (force && deleted == 0)) {
				victim = seg
			}
		}
		s.mu.RUnlock()
		if victim == nil {
			return deleted, nil
		}
		if err := s.deleteHeadSegmentLocked(victim); err != nil {
			return deleted, err
		}
		deleted++
	}
}

// deleteHeadSegmentLocked removes the first segment (wmu held): the
// checkpoint's first position moves past it first, then it leaves the state
// table, then the files are unlinked. Readers holding a lease keep the
// mapping until they release it.
func (s *Store) deleteHeadSegmentLocked(seg *segment) error {
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	s.mu.Lock()
	next := s.segs[1]
	s.segs = s.segs[1:]
	if next.count() > 0 {
		s.first = next.baseIndex
	}
	s.mu.Unlock()
	if err := s.writeCheckpointLocked(nil); err != nil {
		return err
	}
	s.hit("retention-after-checkpoint")
	if err := removeSegments(s.dir, []*segment{seg}); err != nil {
		return s.fail(fmt.Errorf("retention: %w", err))
	}
	metrics.IncrCounter([]string{"commitlog", "retention", "deleted_segments"}, 1)
	s.log.Info("deleted expired segment", "segment", seg.path, "first_index", next.baseIndex)
	return nil
}

// DiskUsage returns the used fraction of the file system holding RootDir.
func (s *Store) DiskUsage() (float64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(s.root, &st); err != nil {
		return 0, fmt.Errorf("commitlog: statfs %s: %w", s.root, err)
	}
	used := float64(st.Blocks - st.Bfree)
	total := used + float64(st.Bavail)
	if total <= 0 {
		return 0, nil
	}
	return used / total, nil
}

// DiskFull reports whether the last retention check found the disk above
// RejectWritesRatio: the broker should then reject produce requests before
// raft.Apply (raft's own entries still go through, docs/storage.md §8).
func (s *Store) DiskFull() bool { return s.diskFull.Load() }

// RejectWrites reports whether usage is at or above the reject-writes level.
func (p RetentionPolicy) RejectWrites(usage float64) bool {
	return p.RejectWritesRatio > 0 && usage >= p.RejectWritesRatio
}

// RunRetention runs the retention loop until ctx is done: every 10 s it
// checks disk usage, updates DiskFull, and deletes expired segments at the
// DeleteWhenHour or whenever usage is above DiskMaxUsedRatio, and the oldest
// segments regardless of age while usage is above ForceCleanRatio. safeIndex
// bounds every deletion (see DeleteExpired).
func (s *Store) RunRetention(ctx context.Context, p RetentionPolicy, safeIndex func() uint64) {
	s.runRetention(ctx, p, safeIndex, 10*time.Second, time.Now)
}

func (s *Store) runRetention(ctx context.Context, p RetentionPolicy, safeIndex func() uint64, every time.Duration, now func() time.Time) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.retentionRound(p, safeIndex(), now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retentionRound is one pass of RunRetention.
func (s *Store) retentionRound(p RetentionPolicy, safe uint64, now time.Time) {
	usage, err := s.DiskUsage()
	if err != nil {
		s.log.Warn("retention: disk usage unknown", "error", err)
		return
	}
	s.diskFull.Store(p.RejectWrites(usage))
	metrics.SetGauge([]string{"commitlog", "disk_used_ratio"}, float32(usage))
	reserved := p.FileReservedTime
	if reserved <= 0 {
		reserved = s.opts.FileReservedTime
	}
	if now.Hour() == p.DeleteWhenHour || (p.DiskMaxUsedRatio > 0 && usage >= p.DiskMaxUsedRatio) {
		if n, err := s.deleteExpired(now.Add(-reserved), safe, false); err != nil {
			s.log.Error("retention failed", "error", err)
		} else if n > 0 {
			s.log.Info("retention deleted expired segments", "count", n, "disk_used", usage)
		}
	}
	if p.ForceCleanRatio > 0 && usage >= p.ForceCleanRatio {
		if n, err := s.deleteExpired(now.Add(-reserved), safe, true); err != nil {
			s.log.Error("forced retention failed", "error", err)
		} else if n > 0 {
			s.log.Warn("disk above force-clean ratio: deleted oldest segments regardless of age", "count", n, "disk_used", usage)
		} else {
			s.log.Warn("disk above force-clean ratio but nothing deletable below the safe index", "safe_index", safe, "disk_used", usage)
		}
	}
}

// Stats is a snapshot of the store's state for metrics and admin.
type Stats struct {
	Segments     int
	Bytes        int64 // bytes of segment files on disk
	FirstIndex   uint64
	LastIndex    uint64
	LastTerm     uint64
	MinPos       int64
	WriteEnd     int64
	FlushedPos   int64
	FlushedIndex uint64
	Applied      uint64
	Dispatched   uint64
	SegmentSize  int64
	DiskFull     bool
	Failed       bool
}

// Stats returns the store's current figures.
func (s *Store) Stats() Stats {
	s.ckMu.Lock()
	fp, fi := s.flushedPos, s.flushedIndex
	s.ckMu.Unlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := Stats{
		Segments: len(s.segs), Bytes: int64(len(s.segs)) * s.segSize,
		FirstIndex: s.first, LastIndex: s.last, LastTerm: s.lastTerm,
		MinPos: s.writeEnd, WriteEnd: s.writeEnd, FlushedPos: fp, FlushedIndex: fi,
		Applied: s.applied.Load(), Dispatched: s.dispatched.Load(), SegmentSize: s.segSize,
		DiskFull: s.diskFull.Load(), Failed: s.failed.Load() != nil,
	}
	if s.first != 0 {
		st.MinPos = s.posLocked(s.first)
	} else {
		st.LastIndex = 0
	}
	return st
}
