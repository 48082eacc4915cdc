package commitlog

import (
	"errors"
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// FirstIndex returns the first stored index, 0 when the store is empty.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.first, nil
}

// LastIndex returns the last stored index, 0 when the store is empty.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.first == 0 {
		return 0, nil
	}
	return s.last, nil
}

// IsMonotonic reports true: the store never holds gaps (raft wipes it after
// installing a snapshot instead of compacting).
func (s *Store) IsMonotonic() bool { return true }

// findSegLocked returns the segment holding index (first <= index <= last).
func (s *Store) findSegLocked(index uint64) *segment {
	i := sort.Search(len(s.segs), func(i int) bool {
		seg := s.segs[i]
		return seg.baseIndex+uint64(len(seg.offsets)) > index
	})
	if i == len(s.segs) {
		return nil
	}
	seg := s.segs[i]
	if index < seg.baseIndex {
		return nil
	}
	return seg
}

// posLocked returns the global position of a stored index.
func (s *Store) posLocked(index uint64) int64 {
	seg := s.findSegLocked(index)
	return seg.start + int64(seg.offsets[index-seg.baseIndex])
}

// locate returns the segment (referenced; release it) and file offset of
// index, and whether the segment is sealed.
func (s *Store) locate(index uint64) (*segment, int64, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.first == 0 || index < s.first || index > s.last {
		return nil, 0, false, raft.ErrLogNotFound
	}
	seg := s.findSegLocked(index)
	if seg == nil {
		return nil, 0, false, raft.ErrLogNotFound
	}
	seg.acquire()
	return seg, int64(seg.offsets[index-seg.baseIndex]), seg.sealed, nil
}

// GetLog copies the entry at index into out. Outside the stored range it
// returns raft.ErrLogNotFound itself (not wrapped): raft compares with ==.
// The returned slices never alias the mapping (docs/storage.md §1, I5).
func (s *Store) GetLog(index uint64, out *raft.Log) error {
	for attempt := 0; ; attempt++ {
		g := s.gen.Load()
		err := s.getLog(index, out)
		if errors.Is(err, ErrCorrupt) && s.gen.Load() != g && attempt < 3 {
			continue // raced with a truncation rewriting these bytes
		}
		return err
	}
}

// getLog reads one record. The active segment is read by copying from the
// mapping (hot in the page cache); sealed segments are read with pread, so
// a cold page costs a syscall that releases the P instead of a page fault
// that stalls it (docs/storage.md §12; raft reads old entries when a follower
// catches up).
func (s *Store) getLog(index uint64, out *raft.Log) error {
	seg, off, sealed, err := s.locate(index)
	if err != nil {
		return err
	}
	defer seg.release()
	var hdr [HeaderSize]byte
	if sealed {
		if _, err := seg.f.ReadAt(hdr[:], off); err != nil {
			return fmt.Errorf("commitlog: read index %d: %w", index, err)
		}
	} else {
		copy(hdr[:], seg.data[off:off+HeaderSize])
	}
	h, err := decodeHeader(hdr[:])
	if err != nil {
		return fmt.Errorf("commitlog: index %d at %d: %w", index, seg.start+off, err)
	}
	if h.Index != index || h.Pos != seg.start+off || int64(h.RecLen) > s.segSize-off {
		return fmt.Errorf("%w: record at %d holds index %d pos %d, want index %d", ErrCorrupt, seg.start+off, h.Index, h.Pos, index)
	}
	n := int(h.DataLen) + int(h.ExtLen)
	buf := make([]byte, n)
	if sealed {
		if _, err := seg.f.ReadAt(buf, off+HeaderSize); err != nil {
			return fmt.Errorf("commitlog: read index %d: %w", index, err)
		}
	} else {
		copy(buf, seg.data[off+HeaderSize:off+HeaderSize+int64(n)])
	}
	if payloadCRC(buf[:h.DataLen], buf[h.DataLen:]) != h.PayloadCRC {
		return fmt.Errorf("%w: payload crc of index %d at %d", ErrCorrupt, index, seg.start+off)
	}
	*out = raft.Log{Index: h.Index, Term: h.Term, Type: h.Type, AppendedAt: appendedAtTime(h.AppendedAt)}
	if h.DataLen > 0 {
		out.Data = buf[:h.DataLen:h.DataLen]
	}
	if h.ExtLen > 0 {
		out.Extensions = buf[h.DataLen:]
	}
	return nil
}

// RecordPos returns the physical offset of index's record.
func (s *Store) RecordPos(index uint64) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.first == 0 || index < s.first || index > s.last {
		return 0, raft.ErrLogNotFound
	}
	return s.posLocked(index), nil
}

// WriteEnd returns the physical offset after the last record (where the next
// record would start, before any segment switch).
func (s *Store) WriteEnd() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.writeEnd
}

// MinPos returns the first retained physical offset (the first record's
// position, or WriteEnd when the store is empty).
func (s *Store) MinPos() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.first == 0 {
		return s.writeEnd
	}
	return s.posLocked(s.first)
}

// segmentSpan references the segment holding [pos, pos+n) and returns it
// with the file offset, checking that the range lies inside that segment's
// written records.
func (s *Store) segmentSpan(pos int64, n int) (*segment, int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if n < 0 || len(s.segs) == 0 || pos < s.segs[0].start {
		return nil, 0, fmt.Errorf("%w: [%d,+%d)", ErrOutOfRange, pos, n)
	}
	i := (pos - s.segs[0].start) / s.segSize
	if i >= int64(len(s.segs)) {
		return nil, 0, fmt.Errorf("%w: [%d,+%d)", ErrOutOfRange, pos, n)
	}
	seg := s.segs[i]
	off := pos - seg.start
	if seg.count() == 0 || off < int64(seg.offsets[0]) || off+int64(n) > seg.end {
		return nil, 0, fmt.Errorf("%w: [%d,+%d) is not within one segment's records", ErrOutOfRange, pos, n)
	}
	seg.acquire()
	return seg, off, nil
}

// ReadAt copies len(p) bytes of the log at pos into p. The range must lie
// within one segment's written records.
func (s *Store) ReadAt(p []byte, pos int64) (int, error) {
	seg, off, err := s.segmentSpan(pos, len(p))
	if err != nil {
		return 0, err
	}
	defer seg.release()
	return copy(p, seg.data[off:off+int64(len(p))]), nil
}

// Lease is a zero-copy view of stored bytes. It keeps its segment mapped
// until Release, even if retention or truncation removes the segment
// meanwhile (the bytes then stay valid but may be stale).
type Lease struct {
	seg      *segment
	b        []byte
	released atomic.Bool
}

// Lease returns a zero-copy view of [pos, pos+n), which must lie within one
// segment's written records. The caller must Release it.
func (s *Store) Lease(pos int64, n int) (*Lease, error) {
	seg, off, err := s.segmentSpan(pos, n)
	if err != nil {
		return nil, err
	}
	return &Lease{seg: seg, b: seg.data[off : off+int64(n) : off+int64(n)]}, nil
}

// Bytes returns the leased bytes; they are read-only and valid until Release.
func (l *Lease) Bytes() []byte { return l.b }

// Release ends the lease; it is idempotent.
func (l *Lease) Release() {
	if l.released.CompareAndSwap(false, true) {
		l.b = nil
		l.seg.release()
	}
}
