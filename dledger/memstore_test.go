package dledger

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/commitlog"
)

// memDisk is the "disk" of a fake commitlog: it survives a memLog being
// abandoned or closed, like files do, so restart tests can reopen it. It
// models SYNC flush (a stored record is durable) and the commitlog's
// position arithmetic (records 8-byte aligned, data at pos+HeaderSize).
type memDisk struct {
	mu         sync.Mutex
	recs       []memRec
	end        int64
	applied    uint64
	dispatched uint64
	reset      *memReset
}

type memRec struct {
	log raft.Log
	pos int64
}

type memReset struct {
	index, term uint64
	pos         int64
}

// memLog implements logStore over a memDisk.
type memLog struct {
	d    *memDisk
	hook commitlog.AppendHook
}

func recSize(l *raft.Log) int64 {
	n := int64(commitlog.HeaderSize + len(l.Data) + len(l.Extensions))
	return (n + 7) &^ 7
}

func copyLog(l *raft.Log) raft.Log {
	c := *l
	c.Data = append([]byte(nil), l.Data...)
	c.Extensions = append([]byte(nil), l.Extensions...)
	return c
}

func (m *memLog) first() uint64 {
	if len(m.d.recs) == 0 {
		return 0
	}
	return m.d.recs[0].log.Index
}

func (m *memLog) last() uint64 {
	if len(m.d.recs) == 0 {
		return 0
	}
	return m.d.recs[len(m.d.recs)-1].log.Index
}

func (m *memLog) FirstIndex() (uint64, error) {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	return m.first(), nil
}

func (m *memLog) LastIndex() (uint64, error) {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	if len(m.d.recs) == 0 && m.d.reset != nil {
		return 0, nil
	}
	return m.last(), nil
}

func (m *memLog) GetLog(index uint64, out *raft.Log) error {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	f, l := m.first(), m.last()
	if len(m.d.recs) == 0 || index < f || index > l {
		return raft.ErrLogNotFound
	}
	*out = copyLog(&m.d.recs[index-f].log)
	return nil
}

func (m *memLog) StoreLog(l *raft.Log) error { return m.StoreLogs([]*raft.Log{l}) }

func (m *memLog) StoreLogs(logs []*raft.Log) error {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	n0, end0 := len(m.d.recs), m.d.end
	for _, l := range logs {
		want := m.last() + 1
		if len(m.d.recs) == 0 {
			want = l.Index
			if m.d.reset != nil {
				want = m.d.reset.index + 1
				m.d.end = m.d.reset.pos
			} else if l.Index != 1 {
				want = 1
			}
		}
		if l.Index != want {
			m.d.recs, m.d.end = m.d.recs[:n0], end0
			return fmt.Errorf("memlog: store %d, want %d", l.Index, want)
		}
		if m.hook != nil {
			if err := m.hook(l, m.d.end); err != nil {
				m.d.recs, m.d.end = m.d.recs[:n0], end0
				return err
			}
		}
		m.d.recs = append(m.d.recs, memRec{log: copyLog(l), pos: m.d.end})
		m.d.end += recSize(l)
		m.d.reset = nil
	}
	return nil
}

func (m *memLog) DeleteRange(min, max uint64) error {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	f, l := m.first(), m.last()
	if len(m.d.recs) == 0 || min > max || max < f || min > l {
		return nil
	}
	switch {
	case min <= f && max >= l:
		if m.d.reset != nil {
			m.d.recs, m.d.end = nil, m.d.reset.pos
			return nil
		}
		m.d.end = m.d.recs[0].pos
		m.d.recs = m.d.recs[:0]
	case max >= l:
		m.d.end = m.d.recs[min-f].pos
		m.d.recs = m.d.recs[:min-f]
	case min <= f:
		// prefix: permission only, as the commitlog does
	default:
		return errors.New("memlog: middle delete")
	}
	return nil
}

func (m *memLog) IsMonotonic() bool { return true }

func (m *memLog) RecordPos(index uint64) (int64, error) {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	f, l := m.first(), m.last()
	if len(m.d.recs) == 0 || index < f || index > l {
		return 0, raft.ErrLogNotFound
	}
	return m.d.recs[index-f].pos, nil
}

func (m *memLog) WriteEnd() int64 {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	return m.d.end
}

func (m *memLog) MinPos() int64 {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	if len(m.d.recs) == 0 {
		return m.d.end
	}
	return m.d.recs[0].pos
}

// ReadAt reads message bytes: only ranges inside one record's Data.
func (m *memLog) ReadAt(p []byte, pos int64) (int, error) {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	for i := range m.d.recs {
		r := &m.d.recs[i]
		off := pos - r.pos - commitlog.HeaderSize
		if off >= 0 && off+int64(len(p)) <= int64(len(r.log.Data)) {
			return copy(p, r.log.Data[off:]), nil
		}
	}
	return 0, fmt.Errorf("memlog: no data at %d", pos)
}

func (m *memLog) SetApplied(i uint64) {
	m.d.mu.Lock()
	m.d.applied = i
	m.d.mu.Unlock()
}

func (m *memLog) SetDispatched(i uint64) {
	m.d.mu.Lock()
	m.d.dispatched = i
	m.d.mu.Unlock()
}

func (m *memLog) Applied() uint64 {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	return m.d.applied
}

func (m *memLog) Dispatched() uint64 {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	return m.d.dispatched
}

func (m *memLog) SetResetIntent(index, term uint64, pos int64) error {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	m.d.reset = &memReset{index: index, term: term, pos: pos}
	return nil
}

func (m *memLog) Close() error { return nil }

// records returns a copy of every stored record (for replica comparison).
func (d *memDisk) records() []memRec {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]memRec, len(d.recs))
	for i, r := range d.recs {
		out[i] = memRec{log: copyLog(&r.log), pos: r.pos}
	}
	return out
}
