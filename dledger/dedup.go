package dledger

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/raftmq/raftmq/message"
)

// dedupTable remembers where every committed record that carries a UNIQ_KEY
// was stored, keyed by (stored topic, UNIQ_KEY), for a time window and up to
// a number of keys. It is derived on every member from the committed entries
// the FSM dispatches, so a new leader has it; the leader also tracks the keys
// of sends still in Raft (pending), so a concurrent retry waits for the first
// attempt's outcome instead of being stored beside it.
//
// Invariants:
//   - byKey holds only keys of committed records; ring lists them in commit
//     order, oldest first; a ring slot whose phys no longer matches byKey is
//     stale (the key was re-inserted after expiring) and is skipped.
//   - The first committed record of a key wins while it is in the window:
//     the broker's own re-appends of a message (delayed delivery, transaction
//     commit, send-back) never replace the original's entry.
//   - Expiry uses the record's store timestamp (the leader's clock when it
//     was appended) against the local clock.
//
// Memory: the map holds a 64-bit hash and a 16-byte entry per key and the
// ring 16 bytes per key: about 72 bytes of heap per key in all, measured by
// BenchmarkDedupTableMemory (72 MB for the default bound of 1M keys, reached
// only above 8 300 sends/s with a 120 s window). Keys are hashed, not stored: a hit is confirmed by reading the
// stored record and comparing topic and UNIQ_KEY, so a hash collision never
// suppresses a different message (at worst it lets a retry be stored again).
type dedupTable struct {
	window     time.Duration
	maxEntries int
	now        func() time.Time
	seed       maphash.Seed

	mu      sync.Mutex
	byKey   map[uint64]dedupEntry
	ring    []dedupRef // circular, len = capacity
	head, n int
	pending map[uint64]*dedupClaim
}

type dedupEntry struct {
	phys    int64 // physical offset of the record
	storeMs int64 // its store timestamp
}

type dedupRef struct {
	hash uint64
	phys int64
}

// dedupClaim is one in-flight send's keys on the leader; done is closed when
// its entry's outcome is known (committed and applied, or failed).
type dedupClaim struct {
	keys  []uint64
	done  chan struct{}
	table *dedupTable
}

// release releases c; a nil claim is a no-op.
func (c *dedupClaim) release() {
	if c != nil {
		c.table.release(c)
	}
}

// newDedupTable returns nil when window <= 0 (deduplication off).
func newDedupTable(window time.Duration, maxEntries int, now func() time.Time) *dedupTable {
	if window <= 0 || maxEntries <= 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &dedupTable{window: window, maxEntries: maxEntries, now: now, seed: maphash.MakeSeed(),
		byKey: map[uint64]dedupEntry{}, pending: map[uint64]*dedupClaim{}}
}

// keyOf returns the hash of rec's (topic, UNIQ_KEY) and false when rec has no
// UNIQ_KEY. It does not allocate.
func (t *dedupTable) keyOf(rec message.Record) (uint64, bool) {
	u, ok := rec.PropertyBytes(message.PropertyUniqKey)
	if !ok || len(u) == 0 {
		return 0, false
	}
	var h maphash.Hash
	h.SetSeed(t.seed)
	h.Write(rec.TopicBytes())
	h.WriteByte(0)
	h.Write(u)
	return h.Sum64(), true
}

// cutoff is the oldest store timestamp still inside the window.
func (t *dedupTable) cutoff() int64 { return t.now().Add(-t.window).UnixMilli() }

// observe records one committed record (FSM goroutine).
func (t *dedupTable) observe(rec message.Record, phys, storeMs int64) {
	h, ok := t.keyOf(rec)
	if !ok {
		return
	}
	t.mu.Lock()
	t.insertLocked(h, phys, storeMs, t.cutoff())
	t.mu.Unlock()
}

func (t *dedupTable) insertLocked(h uint64, phys, storeMs, cutoff int64) {
	t.evictLocked(cutoff)
	if storeMs < cutoff {
		return
	}
	if e, ok := t.byKey[h]; ok && e.storeMs >= cutoff {
		return // the first committed record of a key wins
	}
	t.byKey[h] = dedupEntry{phys: phys, storeMs: storeMs}
	if t.n == len(t.ring) {
		t.growLocked()
	}
	t.ring[(t.head+t.n)%len(t.ring)] = dedupRef{hash: h, phys: phys}
	t.n++
	if t.n > t.maxEntries {
		t.popLocked()
	}
}

// growLocked doubles the ring (up to maxEntries+1 slots).
func (t *dedupTable) growLocked() {
	c := min(max(2*len(t.ring), 1024), t.maxEntries+1)
	if c <= len(t.ring) {
		c = len(t.ring) + 1
	}
	ring := make([]dedupRef, c)
	for i := 0; i < t.n; i++ {
		ring[i] = t.ring[(t.head+i)%len(t.ring)]
	}
	t.ring, t.head = ring, 0
}

// popLocked drops the oldest key.
func (t *dedupTable) popLocked() {
	r := t.ring[t.head]
	if e, ok := t.byKey[r.hash]; ok && e.phys == r.phys {
		delete(t.byKey, r.hash)
	}
	t.head = (t.head + 1) % len(t.ring)
	t.n--
}

// evictLocked drops keys from the front that left the window. Store
// timestamps are nearly monotonic in commit order; an older key behind a
// newer one is dropped by lookups and by the count bound.
func (t *dedupTable) evictLocked(cutoff int64) {
	for t.n > 0 {
		r := t.ring[t.head]
		e, ok := t.byKey[r.hash]
		if ok && e.phys == r.phys && e.storeMs >= cutoff {
			return
		}
		t.popLocked()
	}
}

// lookupLocked returns the physical offset of the committed record of key h
// within the window.
func (t *dedupTable) lookupLocked(h uint64, cutoff int64) (int64, bool) {
	e, ok := t.byKey[h]
	if !ok || e.storeMs < cutoff {
		return 0, false
	}
	return e.phys, true
}

// len is the number of keys held (tests, metrics).
func (t *dedupTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byKey)
}

// reset forgets every committed key (the log was reset by InstallSnapshot).
// Pending claims stay: their owners release them.
func (t *dedupTable) reset() {
	t.mu.Lock()
	t.byKey = map[uint64]dedupEntry{}
	t.ring, t.head, t.n = nil, 0, 0
	t.mu.Unlock()
}

// release ends a claim: the outcome of its entry is known (for a committed
// entry the FSM has already observed the keys).
func (t *dedupTable) release(c *dedupClaim) {
	t.mu.Lock()
	for _, h := range c.keys {
		if t.pending[h] == c {
			delete(t.pending, h)
		}
	}
	t.mu.Unlock()
	close(c.done)
}

// begin checks keys (hash per record, has[i] false for a record without a
// UNIQ_KEY) on the leader: it returns the physical offsets of the records
// already committed (phys[i] >= 0) and claims the others for the caller,
// waiting first for any claim another send holds on one of them. The caller
// must release the claim (nil when nothing was claimed) once the outcome of
// its append is known.
func (t *dedupTable) begin(ctx context.Context, keys []uint64, has []bool, closed <-chan struct{}) ([]int64, *dedupClaim, error) {
	phys := make([]int64, len(keys))
	for {
		t.mu.Lock()
		cutoff := t.cutoff()
		var wait chan struct{}
		for i, h := range keys {
			phys[i] = -1
			if !has[i] {
				continue
			}
			if p, ok := t.lookupLocked(h, cutoff); ok {
				phys[i] = p
				continue
			}
			if c := t.pending[h]; c != nil {
				wait = c.done
				break
			}
		}
		if wait == nil {
			var c *dedupClaim
			for i, h := range keys {
				if !has[i] || phys[i] >= 0 || t.pending[h] != nil {
					continue // a repeated key within one call is claimed once
				}
				if c == nil {
					c = &dedupClaim{done: make(chan struct{}), table: t}
				}
				c.keys = append(c.keys, h)
				t.pending[h] = c
			}
			t.mu.Unlock()
			return phys, c, nil
		}
		t.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			// The first attempt's outcome is still unknown, and so is ours.
			return nil, nil, indeterminate(ctx.Err())
		case <-closed:
			return nil, nil, ErrClosed
		}
	}
}

// dedupSeen is one committed key found by the start-up scan.
type dedupSeen struct {
	hash          uint64
	phys, storeMs int64
}

// prepend puts older (in commit order, all committed before every key the
// table holds) in front of the table's order, then applies the bounds.
func (t *dedupTable) prepend(older []dedupSeen, cutoff int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ring := make([]dedupRef, 0, min(len(older)+t.n, t.maxEntries)+1)
	for _, e := range older {
		if e.storeMs < cutoff {
			continue
		}
		// The first commit of a key wins, and log positions grow with
		// commit order: keep the lower offset (a newer slot turns stale).
		if cur, ok := t.byKey[e.hash]; ok && cur.storeMs >= cutoff && cur.phys <= e.phys {
			continue
		}
		t.byKey[e.hash] = dedupEntry{phys: e.phys, storeMs: e.storeMs}
		ring = append(ring, dedupRef{hash: e.hash, phys: e.phys})
	}
	for i := 0; i < t.n; i++ {
		ring = append(ring, t.ring[(t.head+i)%len(t.ring)])
	}
	t.ring, t.head, t.n = ring[:cap(ring)], 0, len(ring)
	for t.n > t.maxEntries {
		t.popLocked()
	}
	t.evictLocked(cutoff)
}
