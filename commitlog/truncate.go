package commitlog

import (
	"errors"
	"fmt"
	"github.com/armon/go-metrics"
	"os"
)

// ErrTruncateBelowApplied is returned when raft asks to remove entries the
// FSM already applied: impossible in correct Raft with SYNC flush, possible
// after an ASYNC power loss or disk corruption (docs/storage.md §7). The store refuses
// rather than silently rolling back consumers' view.
var ErrTruncateBelowApplied = errors.New("commitlog: refusing to truncate entries at or below the applied index")

// DeleteRange removes the inclusive range [min, max] (docs/storage.md §6):
//   - a range covering the whole log wipes it: with a pending reset intent
//     the log restarts at the intent's position, otherwise it is a suffix
//     truncation at the first record (the replacement lands where it was);
//   - a range reaching the last index is a suffix truncation (zeroed and
//     synced before returning, docs/storage.md §7);
//   - a range starting at or below the first index is a prefix deletion:
//     it only records raft's permission; retention deletes segments;
//   - anything else is an error (raft never asks for it).
func (s *Store) DeleteRange(min, max uint64) error {
	if min > max {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	s.mu.RLock()
	first, last := s.first, s.last
	s.mu.RUnlock()
	if first == 0 {
		if s.pendingReset() {
			return s.applyResetLocked()
		}
		return nil
	}
	if max < first || min > last {
		return nil
	}
	switch {
	case min <= first && max >= last:
		if s.pendingReset() {
			return s.applyResetLocked()
		}
		return s.truncateSuffixLocked(first)
	case max >= last:
		return s.truncateSuffixLocked(min)
	case min <= first:
		s.ckMu.Lock()
		defer s.ckMu.Unlock()
		if max > s.ck.RaftPrefixOK {
			return s.writeCheckpointLocked(func(c *checkpoint) { c.RaftPrefixOK = max })
		}
		return nil
	}
	return fmt.Errorf("commitlog: DeleteRange(%d, %d) would leave a gap in [%d, %d]", min, max, first, last)
}

// truncateSuffixLocked removes every record from index from on (wmu held).
// Order, each step durable before the next, so a crash at any point
// recovers a prefix of the old log: lower the checkpoint's flushed position,
// delete sidecars of segments that become unsealed or go away, zero the
// removed bytes of the surviving segment, delete later segments last-first.
func (s *Store) truncateSuffixLocked(from uint64) error {
	if from <= s.applied.Load() {
		s.log.Error("raft asked to truncate applied entries", "from", from, "applied", s.applied.Load())
		return fmt.Errorf("%w: from %d, applied %d", ErrTruncateBelowApplied, from, s.applied.Load())
	}
	s.ckMu.Lock()
	defer s.ckMu.Unlock()

	s.mu.Lock()
	// The new write end is the end of record from-1 (not pos(from)): the
	// placement of the next record is a function of that end, and a BLANK
	// may sit between the two (docs/storage.md §3).
	kept := s.findSegLocked(from)
	newEnd := s.posLocked(from)
	var prevTerm uint64
	if from > s.first {
		kept = s.findSegLocked(from - 1)
		h, err := s.headerLocked(from - 1)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		prevTerm = h.Term
		newEnd = h.Pos + int64(h.RecLen)
	}
	keep := int((kept.start - s.segs[0].start) / s.segSize)
	dropped := append([]*segment(nil), s.segs[keep+1:]...)
	oldEnd := kept.end
	if len(dropped) > 0 {
		oldEnd = s.segSize // the BLANK after the records
	}
	// Unpublish first so readers stop finding the removed records.
	s.gen.Add(1)
	s.segs = s.segs[:keep+1]
	n := 0
	if from > kept.baseIndex {
		n = int(from - kept.baseIndex)
	}
	kept.offsets = kept.offsets[:n]
	kept.sealed = false
	kept.end = newEnd - kept.start
	if n == 0 {
		kept.baseIndex = from
		kept.lastTerm = 0
	} else {
		kept.lastTerm = prevTerm
	}
	if from == s.first {
		s.first, s.last, s.lastTerm, s.nextHint = 0, 0, 0, 0
	} else {
		s.last, s.lastTerm = from-1, prevTerm
	}
	s.writeEnd = newEnd
	s.mu.Unlock()
	s.prep.reset()

	if newEnd < s.flushedPos {
		s.flushedPos, s.flushedIndex, s.flushedTerm = newEnd, from-1, prevTerm
	}
	if err := s.writeCheckpointLocked(nil); err != nil {
		return err
	}
	s.hit("truncate-after-checkpoint")
	// The sidecars must be gone durably before any byte they describe is
	// zeroed, or a crash could resurrect a sidecar pointing at zeros.
	for _, seg := range append([]*segment{kept}, dropped...) {
		if err := os.Remove(seg.path + sidecarSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return s.fail(fmt.Errorf("truncate: %w", err))
		}
	}
	if err := syncDir(s.dir); err != nil {
		return s.fail(err)
	}
	if zeroFrom := newEnd - kept.start; zeroFrom < oldEnd {
		if err := zeroRange(kept.fd(), zeroFrom, oldEnd-zeroFrom); err != nil {
			return s.fail(fmt.Errorf("truncate: zero %s: %w", kept.path, err))
		}
		s.hit("truncate-after-zero")
		if err := s.datasync(kept.fd()); err != nil {
			return s.fail(fmt.Errorf("truncate: fdatasync %s: %w", kept.path, err))
		}
	}
	for i := len(dropped) - 1; i >= 0; i-- {
		if err := os.Remove(dropped[i].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return s.fail(fmt.Errorf("truncate: %w", err))
		}
		dropped[i].release()
		s.hit("truncate-after-unlink")
	}
	if err := syncDir(s.dir); err != nil {
		return s.fail(err)
	}
	metrics.IncrCounter([]string{"commitlog", "truncate_suffix"}, 1)
	s.log.Debug("truncated suffix", "from", from, "write_end", newEnd)
	return nil
}

// headerLocked decodes the header of a stored index.
func (s *Store) headerLocked(index uint64) (recordHeader, error) {
	seg := s.findSegLocked(index)
	off := int64(seg.offsets[index-seg.baseIndex])
	h, err := decodeHeader(seg.data[off : off+HeaderSize])
	if err == nil && (h.Index != index || h.Pos != seg.start+off) {
		err = fmt.Errorf("%w: header of index %d does not match its slot", ErrCorrupt, index)
	}
	return h, err
}

// SetResetIntent durably records that the next wipe (DeleteRange over the
// whole log, or the next StoreLogs into an empty store) resets the log so
// that index+1 lands at pos (docs/storage.md §9, DLedger's rebuildWithPos). term is
// the term of index (the snapshot's last term).
func (s *Store) SetResetIntent(index, term uint64, pos int64) error {
	if pos < 0 || pos%recordAlign != 0 {
		return fmt.Errorf("commitlog: reset position %d must be a non-negative multiple of %d", pos, recordAlign)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	err := s.writeCheckpointLocked(func(c *checkpoint) {
		c.ResetPending, c.ResetIndex, c.ResetTerm, c.ResetPos = true, index, term, pos
	})
	if err != nil {
		return err
	}
	s.hit("reset-intent-written")
	return nil
}

func (s *Store) pendingReset() bool {
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	return s.ck.ResetPending
}

// applyResetLocked executes the pending reset intent (wmu held): every
// segment is deleted (last first) and the log restarts empty, expecting
// ResetIndex+1 at ResetPos. The intent is cleared only in the final
// checkpoint write, so a crash in between redoes the reset at Open.
func (s *Store) applyResetLocked() error {
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	ck := s.ck
	s.mu.Lock()
	segs := s.segs
	s.gen.Add(1)
	s.segs = nil
	s.first, s.last, s.lastTerm = 0, 0, 0
	s.writeEnd, s.nextHint = ck.ResetPos, ck.ResetIndex+1
	s.mu.Unlock()
	s.prep.reset()
	if err := removeSegments(s.dir, segs); err != nil {
		return s.fail(fmt.Errorf("reset: %w", err))
	}
	s.hit("reset-after-delete")
	s.flushedPos, s.flushedIndex, s.flushedTerm = ck.ResetPos, ck.ResetIndex, ck.ResetTerm
	if err := s.writeCheckpointLocked(func(c *checkpoint) {
		c.ResetPending = false
		c.FirstIndex, c.FirstPos = ck.ResetIndex+1, ck.ResetPos
		c.RaftPrefixOK = 0
	}); err != nil {
		return err
	}
	metrics.IncrCounter([]string{"commitlog", "reset"}, 1)
	s.log.Info("log reset", "next_index", ck.ResetIndex+1, "pos", ck.ResetPos)
	return nil
}

// removeSegments deletes segment files and sidecars, last first, then
// fsyncs the directory, and drops the store's references.
func removeSegments(dir string, segs []*segment) error {
	for i := len(segs) - 1; i >= 0; i-- {
		seg := segs[i]
		if err := os.Remove(seg.path + sidecarSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		seg.release()
	}
	return syncDir(dir)
}
