package commitlog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// recover rebuilds the in-memory state from the segment files
// (docs/storage.md §10). It scans from the first retained record, trusting only sealed
// segments with a valid sidecar, and stops at the first record that fails a
// check (magic, length, alignment, header CRC, index continuity, term order,
// position, payload CRC). What follows that point is a torn tail: it is
// zeroed (after an unclean shutdown) and later segments are deleted. If the
// recovered end is below the checkpoint's flushed position, fsynced data is
// gone or corrupt and Open refuses to start.
func (s *Store) recover() error {
	ck := s.ck
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("commitlog: %w", err)
	}
	var starts []int64
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
				return fmt.Errorf("commitlog: remove leftover %s: %w", name, err)
			}
			continue
		}
		if start, ok := parseSegmentName(name); ok {
			if start%s.segSize != 0 {
				return fmt.Errorf("%w: segment file %s is not aligned to the segment size %d", ErrCorrupt, name, s.segSize)
			}
			starts = append(starts, start)
		}
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })

	if ck.ResetPending {
		return s.recoverReset(starts)
	}

	firstSeg := ck.FirstPos - ck.FirstPos%s.segSize
	var live, stale []int64
	for _, st := range starts {
		switch {
		case st < firstSeg:
			stale = append(stale, st) // left over by retention
		case len(live) == 0 && st == firstSeg, len(live) > 0 && st == live[len(live)-1]+s.segSize:
			live = append(live, st)
		default:
			stale = append(stale, st) // beyond a gap: not part of the log
		}
	}

	var segs []*segment
	release := func() {
		for _, seg := range segs {
			seg.release()
		}
	}
	expect, prevTerm := ck.FirstIndex, uint64(0)
	var last uint64
	for i, st := range live {
		path := filepath.Join(s.dir, segmentName(st))
		seg, err := openSegmentFile(path, st, s.segSize)
		if err != nil {
			if st < ck.FlushedPos {
				release()
				return fmt.Errorf("commitlog: segment below the flushed position %d unusable: %w", ck.FlushedPos, err)
			}
			s.log.Warn("dropping unusable segment past the flushed position", "segment", path, "error", err)
			stale = append(stale, live[i:]...)
			break
		}
		segs = append(segs, seg)
		seg.dataStart = 0
		if i == 0 {
			seg.dataStart = ck.FirstPos - st
		}
		seg.baseIndex, seg.end = expect, seg.dataStart
		complete := false
		if s.adoptSidecar(seg, expect, prevTerm) {
			complete = true
		} else {
			complete = s.scanSegment(seg, expect, prevTerm)
		}
		if n := seg.count(); n > 0 {
			last = seg.lastIndex()
			expect, prevTerm = last+1, seg.lastTerm
		}
		if !complete {
			stale = append(stale, live[i+1:]...)
			break
		}
		seg.sealed = true
	}
	// Trailing segments without records are not part of the log: the write
	// end is the end of the last record, never the start of a later segment.
	for len(segs) > 1 && segs[len(segs)-1].count() == 0 {
		seg := segs[len(segs)-1]
		segs = segs[:len(segs)-1]
		stale = append(stale, seg.start)
		seg.release()
	}
	writeEnd := ck.FirstPos
	empty := true
	for _, seg := range segs {
		if seg.count() > 0 {
			empty = false
		}
	}
	if !empty {
		a := segs[len(segs)-1]
		writeEnd = a.start + a.end
	}
	if writeEnd < ck.FlushedPos || (!empty && ck.FlushedIndex > last) {
		release()
		return fmt.Errorf("%w: recovered log ends at %d (index %d) but the checkpoint says data was fsynced through %d (index %d); refusing to start",
			ErrCorrupt, writeEnd, last, ck.FlushedPos, ck.FlushedIndex)
	}
	if len(segs) > 0 {
		a := segs[len(segs)-1]
		a.sealed = false
		// The active segment may still get records (a smaller entry can
		// land where a BLANK was): its sidecar, if any, must go.
		if err := os.Remove(a.path + sidecarSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			release()
			return err
		}
		if !s.clean {
			if err := zeroTail(a, writeEnd-a.start); err != nil {
				release()
				return err
			}
		}
		if err := unix.Fdatasync(a.fd()); err != nil {
			release()
			return fmt.Errorf("commitlog: fdatasync %s: %w", a.path, err)
		}
	}
	for i := len(stale) - 1; i >= 0; i-- {
		p := filepath.Join(s.dir, segmentName(stale[i]))
		if err := os.Remove(p + sidecarSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			release()
			return err
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			release()
			return err
		}
	}
	if err := syncDir(s.dir); err != nil {
		release()
		return err
	}

	s.segs = segs
	s.writeEnd = writeEnd
	if empty {
		s.nextHint = ck.FirstIndex
	} else {
		a := segs[len(segs)-1]
		s.first = segs[0].baseIndex
		if segs[0].count() == 0 {
			s.first = segs[1].baseIndex
		}
		s.last, s.lastTerm = last, a.lastTerm
	}
	s.flushedPos, s.flushedIndex, s.flushedTerm = writeEnd, s.last, s.lastTerm
	if empty {
		s.flushedIndex, s.flushedTerm = ck.FlushedIndex, ck.FlushedTerm
	}
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	return s.writeCheckpointLocked(nil)
}

// recoverReset completes a reset intent found at Open: the crash happened
// between SetResetIntent (or the wipe) and the checkpoint that clears it.
func (s *Store) recoverReset(starts []int64) error {
	ck := s.ck
	for i := len(starts) - 1; i >= 0; i-- {
		p := filepath.Join(s.dir, segmentName(starts[i]))
		if err := os.Remove(p + sidecarSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	s.writeEnd, s.nextHint = ck.ResetPos, ck.ResetIndex+1
	s.flushedPos, s.flushedIndex, s.flushedTerm = ck.ResetPos, ck.ResetIndex, ck.ResetTerm
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	s.log.Info("completed a pending log reset", "next_index", ck.ResetIndex+1, "pos", ck.ResetPos)
	return s.writeCheckpointLocked(func(c *checkpoint) {
		c.ResetPending = false
		c.FirstIndex, c.FirstPos = ck.ResetIndex+1, ck.ResetPos
		c.RaftPrefixOK = 0
	})
}

// adoptSidecar loads seg's sidecar if it is valid and consistent with the
// records it points at (first and last header checked) and with the
// expected index and term; a bad sidecar is deleted so it gets rebuilt.
func (s *Store) adoptSidecar(seg *segment, expect, prevTerm uint64) bool {
	b, err := os.ReadFile(seg.path + sidecarSuffix)
	if err != nil {
		return false
	}
	bad := func(why string) bool {
		s.log.Warn("ignoring segment sidecar", "segment", seg.path, "reason", why)
		os.Remove(seg.path + sidecarSuffix)
		return false
	}
	sc, err := decodeSidecar(b, s.segSize)
	if err != nil {
		return bad(err.Error())
	}
	if sc.SegStart != seg.start || sc.DataStart != seg.dataStart || (expect != 0 && sc.BaseIndex != expect) || sc.LastTerm < prevTerm {
		return bad("does not continue the log")
	}
	if n := len(sc.Offsets); n > 0 {
		for _, k := range []int{0, n - 1} {
			off := int64(sc.Offsets[k])
			h, err := decodeHeader(seg.data[off : off+HeaderSize])
			if err != nil || h.Index != sc.BaseIndex+uint64(k) || h.Pos != seg.start+off || off+int64(h.RecLen) > sc.End {
				return bad("records do not match")
			}
			if k == n-1 && (h.Term != sc.LastTerm || off+int64(h.RecLen) != sc.End) {
				return bad("last record does not match")
			}
		}
	}
	if rem := s.segSize - sc.End; rem > 0 {
		if magic, n := readMagic(seg.data[sc.End:]); magic != blankMagic || int64(n) != rem {
			return bad("segment does not end with a BLANK")
		}
	}
	seg.baseIndex, seg.offsets, seg.end = sc.BaseIndex, sc.Offsets, sc.End
	seg.lastTerm, seg.maxAppendedAt = sc.LastTerm, sc.MaxAppendedAt
	return true
}

// scanSegment reads seg's records from seg.dataStart, appending the valid
// ones. It reports whether the segment is complete (ends exactly full or
// with a valid BLANK), i.e. the log may continue in the next segment.
func (s *Store) scanSegment(seg *segment, expect, prevTerm uint64) bool {
	off := seg.dataStart
	for {
		if off == s.segSize {
			return true
		}
		magic, n := readMagic(seg.data[off:])
		if magic == blankMagic {
			return int64(n) == s.segSize-off
		}
		if off+HeaderSize > s.segSize {
			return false
		}
		h, err := checkRecord(seg.data[off:], seg.start+off, expect, prevTerm)
		if err != nil {
			if magic != 0 {
				s.log.Info("recovery stopped at an invalid record", "pos", seg.start+off, "reason", err)
			}
			return false
		}
		if seg.count() == 0 {
			seg.baseIndex = h.Index
		}
		seg.offsets = append(seg.offsets, uint32(off))
		off += int64(h.RecLen)
		seg.end = off
		seg.lastTerm = h.Term
		seg.maxAppendedAt = max(seg.maxAppendedAt, h.AppendedAt)
		expect, prevTerm = h.Index+1, h.Term
	}
}

// checkRecord validates the record at the start of b (the rest of its
// segment), which must sit at pos, carry index expect (any if 0) and a term
// >= prevTerm, and have a matching payload CRC.
func checkRecord(b []byte, pos int64, expect, prevTerm uint64) (recordHeader, error) {
	h, err := decodeHeader(b)
	if err != nil {
		return h, err
	}
	switch {
	case int64(h.RecLen) > int64(len(b)):
		return h, fmt.Errorf("%w: record of %d bytes overruns its segment", ErrCorrupt, h.RecLen)
	case h.Pos != pos:
		return h, fmt.Errorf("%w: record claims pos %d, found at %d", ErrCorrupt, h.Pos, pos)
	case h.Index == 0 || (expect != 0 && h.Index != expect):
		return h, fmt.Errorf("%w: index %d, want %d", ErrCorrupt, h.Index, expect)
	case h.Term < prevTerm:
		return h, fmt.Errorf("%w: term %d below previous term %d", ErrCorrupt, h.Term, prevTerm)
	}
	p := b[HeaderSize : HeaderSize+int(h.DataLen)+int(h.ExtLen)]
	if payloadCRC(p[:h.DataLen], p[h.DataLen:]) != h.PayloadCRC {
		return h, fmt.Errorf("%w: payload crc", ErrCorrupt)
	}
	return h, nil
}

// zeroTail overwrites any non-zero bytes in [from, segSize) of seg, so stale
// or torn bytes past the recovered end can never be read as records later.
func zeroTail(seg *segment, from int64) error {
	const chunk = 1 << 20
	for off := from; off < seg.size; {
		n := min(int64(chunk), seg.size-off)
		if !bytes.Equal(seg.data[off:off+n], zeroBlock[:n]) {
			if err := zeroRange(seg.fd(), off, n); err != nil {
				return fmt.Errorf("commitlog: zero torn tail of %s: %w", seg.path, err)
			}
		}
		off += n
	}
	return nil
}
