package commitlog

import (
	"context"
	"errors"
	"fmt"
	"github.com/armon/go-metrics"
	"os"
	"time"

	"github.com/hashicorp/raft"
)

var padding [recordAlign]byte

// segWrite is the part of a StoreLogs batch that goes into one segment.
type segWrite struct {
	seg  *segment
	off  int64 // file offset of the first byte written
	n    int64
	iovs [][]byte
	recs []uint32 // file offsets of the records written
	// per-record metadata published after the write
	lastTerm      uint64
	maxAppendedAt int64
	isNew         bool // segment obtained for this batch
}

// StoreLog stores one entry.
func (s *Store) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs appends entries, which must continue the log (index last+1, or
// any index into an empty store, or ResetIndex+1 when a reset intent is
// pending). It runs the AppendHook on each entry, writes all records with one
// pwritev per segment touched and, in SYNC mode, fdatasyncs before returning.
// On any error the partial batch is zeroed again so raft can re-offer the
// same indexes.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	defer metrics.MeasureSince([]string{"commitlog", "store_logs"}, time.Now())
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	// A full disk is not checked here: the broker rejects produce requests
	// before Apply (DiskFull); refusing raft's own entries would make the
	// leader step down and flap leadership around the group (docs/storage.md §8).
	s.mu.RLock()
	empty, last, lastTerm, pos, hint := s.first == 0, s.last, s.lastTerm, s.writeEnd, s.nextHint
	s.mu.RUnlock()
	if empty && s.pendingReset() {
		if err := s.applyResetLocked(); err != nil {
			return err
		}
		s.mu.RLock()
		pos, hint = s.writeEnd, s.nextHint
		s.mu.RUnlock()
	}
	// Validate the whole batch before touching anything.
	want := last + 1
	if empty {
		want = hint
		if want == 0 {
			want = logs[0].Index
		}
	}
	for i, l := range logs {
		if l == nil {
			return errors.New("commitlog: nil log")
		}
		if l.Index != want+uint64(i) || l.Index == 0 {
			return fmt.Errorf("commitlog: StoreLogs index %d out of sequence (want %d)", l.Index, want+uint64(i))
		}
		if l.Term < lastTerm {
			return fmt.Errorf("commitlog: StoreLogs term %d of index %d below previous term %d", l.Term, l.Index, lastTerm)
		}
		lastTerm = l.Term
		if len(l.Extensions) > MaxExtensionsSize {
			return fmt.Errorf("commitlog: index %d: extensions of %d bytes exceed %d", l.Index, len(l.Extensions), MaxExtensionsSize)
		}
		if recordLen(len(l.Data), len(l.Extensions)) > s.segSize {
			return fmt.Errorf("%w: index %d needs %d bytes, segment size is %d", ErrTooLarge, l.Index, recordLen(len(l.Data), len(l.Extensions)), s.segSize)
		}
	}

	writes, endPos, err := s.planAndHook(logs, pos)
	if err != nil {
		s.discardNew(writes)
		return err
	}
	s.hit("append-before-write")
	for i := range writes {
		w := &writes[i]
		if err := pwritevAll(w.seg.fd(), w.iovs, w.off); err != nil {
			return s.rollback(writes, fmt.Errorf("commitlog: write %s: %w", w.seg.path, err))
		}
		s.hit("append-after-write")
	}
	if s.opts.Flush == FlushSync {
		for i := range writes {
			if writes[i].n == 0 {
				continue
			}
			if err := s.datasync(writes[i].seg.fd()); err != nil {
				err = s.fail(fmt.Errorf("fdatasync %s: %w", writes[i].seg.path, err))
				_ = s.rollback(writes, err)
				return err
			}
		}
		s.hit("append-after-sync")
	}
	s.publish(logs, writes, endPos)
	var n int64
	for i := range writes {
		n += writes[i].n
	}
	metrics.IncrCounter([]string{"commitlog", "append_bytes"}, float32(n))
	metrics.IncrCounter([]string{"commitlog", "append_entries"}, float32(len(logs)))
	return nil
}

// planAndHook lays the batch out from pos: it inserts BLANK fillers and
// segment switches, runs the hook for each record at its final position and
// builds the iovecs. New segments are obtained (prepared or created) here.
func (s *Store) planAndHook(logs []*raft.Log, pos int64) ([]segWrite, int64, error) {
	s.mu.RLock()
	var active *segment
	if n := len(s.segs); n > 0 && s.segs[n-1].start <= pos && pos <= s.segs[n-1].start+s.segSize {
		active = s.segs[n-1]
	}
	orphan := active == nil && len(s.segs) > 0
	s.mu.RUnlock()
	if orphan {
		return nil, 0, fmt.Errorf("commitlog: internal error: write position %d is outside the active segment", pos)
	}

	hdrs := make([]byte, HeaderSize*len(logs))
	var writes []segWrite
	var cur *segWrite
	startIn := func(seg *segment, off int64, isNew bool) {
		writes = append(writes, segWrite{seg: seg, off: off, isNew: isNew})
		cur = &writes[len(writes)-1]
	}
	if active != nil {
		startIn(active, pos-active.start, false)
	}
	for i, l := range logs {
		rl := recordLen(len(l.Data), len(l.Extensions))
		if cur == nil || pos-cur.seg.start+rl > s.segSize {
			if cur != nil {
				if rem := cur.seg.start + s.segSize - pos; rem > 0 {
					blank := make([]byte, blankSize)
					encodeBlank(blank, rem)
					cur.iovs = append(cur.iovs, blank)
					cur.n += blankSize
				}
				pos = cur.seg.start + s.segSize
			}
			segStart := pos - pos%s.segSize
			seg, err := s.newSegment(segStart)
			if err != nil {
				return writes, 0, err
			}
			startIn(seg, pos-segStart, true)
			if pos-segStart+rl > s.segSize {
				// Only possible for the first record into an empty store
				// whose reset position leaves too little room.
				rem := s.segSize - (pos - segStart)
				blank := make([]byte, blankSize)
				encodeBlank(blank, rem)
				cur.iovs = append(cur.iovs, blank)
				cur.n += blankSize
				pos = segStart + s.segSize
				seg2, err := s.newSegment(pos)
				if err != nil {
					return writes, 0, err
				}
				startIn(seg2, 0, true)
			}
		}
		dataLen, extLen := len(l.Data), len(l.Extensions)
		if s.opts.Hook != nil {
			if err := s.opts.Hook(l, pos); err != nil {
				return writes, 0, fmt.Errorf("commitlog: append hook rejected index %d: %w", l.Index, err)
			}
			if len(l.Data) != dataLen || len(l.Extensions) != extLen {
				return writes, 0, fmt.Errorf("commitlog: append hook changed the size of index %d", l.Index)
			}
		}
		h := hdrs[i*HeaderSize : (i+1)*HeaderSize]
		encodeHeader(h, l, pos)
		cur.iovs = append(cur.iovs, h)
		if dataLen > 0 {
			cur.iovs = append(cur.iovs, l.Data)
		}
		if extLen > 0 {
			cur.iovs = append(cur.iovs, l.Extensions)
		}
		if pad := rl - int64(HeaderSize+dataLen+extLen); pad > 0 {
			cur.iovs = append(cur.iovs, padding[:pad])
		}
		cur.recs = append(cur.recs, uint32(pos-cur.seg.start))
		cur.n += rl
		cur.lastTerm = l.Term
		if at := appendedAtNanos(l.AppendedAt); at > cur.maxAppendedAt {
			cur.maxAppendedAt = at
		}
		pos += rl
	}
	return writes, pos, nil
}

// newSegment returns a mapped, zeroed segment file starting at start:
// the prepared one if ready, otherwise created now with fallocate.
func (s *Store) newSegment(start int64) (*segment, error) {
	if seg := s.prep.take(start); seg != nil {
		return seg, nil
	}
	mode := PreallocFallocate
	if s.opts.Prealloc == PreallocSparse {
		mode = PreallocSparse
	}
	path, err := createSegmentFile(context.Background(), s.dir, start, s.segSize, mode, 0)
	if err != nil {
		return nil, err
	}
	return openSegmentFile(path, start, s.segSize)
}

// discardNew deletes segments obtained for a batch that is abandoned before
// anything was written.
func (s *Store) discardNew(writes []segWrite) {
	removed := false
	for _, w := range writes {
		if w.isNew {
			w.seg.release()
			os.Remove(w.seg.path)
			removed = true
		}
	}
	if removed {
		_ = syncDir(s.dir)
	}
}

// rollback zeroes everything the batch may have written (the bytes past the
// old write end were zero before) and discards new segments, so the store is
// exactly as before the call. If that fails the store is failed.
func (s *Store) rollback(writes []segWrite, cause error) error {
	for _, w := range writes {
		if w.isNew {
			continue
		}
		if err := zeroRange(w.seg.fd(), w.off, w.n); err != nil {
			return s.fail(fmt.Errorf("%v; rollback: %w", cause, err))
		}
		if err := s.datasync(w.seg.fd()); err != nil {
			return s.fail(fmt.Errorf("%v; rollback fdatasync: %w", cause, err))
		}
	}
	s.discardNew(writes)
	metrics.IncrCounter([]string{"commitlog", "rollback"}, 1)
	s.log.Warn("StoreLogs rolled back", "error", cause)
	return cause
}

// publish makes a written batch visible to readers.
func (s *Store) publish(logs []*raft.Log, writes []segWrite, endPos int64) {
	s.mu.Lock()
	li := 0 // index into logs of the first record of the current write
	for i := range writes {
		w := &writes[i]
		seg := w.seg
		if w.isNew {
			if n := len(s.segs); n > 0 {
				prev := s.segs[n-1]
				prev.sealed = true
				s.enqueueSeal(prev)
			}
			seg.dataStart, seg.end = w.off, w.off
			seg.baseIndex = logs[min(li, len(logs)-1)].Index
			s.segs = append(s.segs, seg)
		}
		if len(w.recs) == 0 {
			continue // only a BLANK went here
		}
		if seg.count() == 0 {
			seg.baseIndex = logs[li].Index
		}
		seg.offsets = append(seg.offsets, w.recs...)
		li += len(w.recs)
		lastRec := logs[li-1]
		seg.end = int64(w.recs[len(w.recs)-1]) + recordLen(len(lastRec.Data), len(lastRec.Extensions))
		seg.lastTerm = w.lastTerm
		seg.maxAppendedAt = max(seg.maxAppendedAt, w.maxAppendedAt)
	}
	if s.first == 0 {
		s.first = logs[0].Index
		s.nextHint = 0
	}
	l := logs[len(logs)-1]
	s.last, s.lastTerm, s.writeEnd = l.Index, l.Term, endPos
	s.mu.Unlock()

	if s.opts.Flush == FlushSync {
		s.ckMu.Lock()
		s.flushedPos, s.flushedIndex, s.flushedTerm = endPos, l.Index, l.Term
		s.ckMu.Unlock()
	}
	s.maybePrepareNext()
}
