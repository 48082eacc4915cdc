package dledger

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftmq/raftmq/message"
)

// FuzzPayload feeds arbitrary entry payloads (replicated from a leader, or
// read back from disk) through the decoder, the follower hook and the FSM
// decoder: errors only, never a panic, and nothing is mutated on refusal.
func FuzzPayload(f *testing.F) {
	rec := makeRecord(f, "T", 1, "body", "k1 k2")
	f.Add(encodeMessages([][]byte{rec}))
	f.Add(encodeMessages([][]byte{rec, rec}))
	f.Add(encodeMeta([]byte("a=b")))
	assigned := encodeMessages([][]byte{rec})
	assigned[1] = flagAssigned
	f.Add(assigned)
	f.Add([]byte{1, 2, 1, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parsePayload(data)
		if err != nil {
			return
		}
		if p.kind == kindMessages {
			if recs, err := p.records(); err == nil {
				for _, b := range recs {
					if r, err := parseRecord(b, nil); err == nil {
						_ = r.indexKeys()
						_ = r.dispatchable()
						_ = r.storeTimestamp()
					}
				}
			}
		}
		// The follower path: an ASSIGNED entry whose offsets do not match is
		// refused without being modified.
		orig := append([]byte(nil), data...)
		a := newAssigner(nil, func(string, int32) int64 { return 0 })
		l := &raft.Log{Index: 5, Term: 2, Type: raft.LogCommand, Data: data}
		if err := a.hook(l, 4096); err != nil && !bytes.Equal(l.Data, orig) {
			t.Fatalf("refused entry was modified")
		}
		if orig[1] != 0 && !bytes.Equal(l.Data, orig) {
			t.Fatalf("follower hook modified a flagged entry")
		}
		// The leader path with the gate open: assigns or voids, never fails.
		lead := newAssigner(nil, func(string, int32) int64 { return 0 })
		lead.open(2)
		ld := append([]byte(nil), orig...)
		if ld[0] == kindMessages {
			ld[1] = 0
		}
		if err := lead.hook(&raft.Log{Index: 5, Term: 2, Type: raft.LogCommand, Data: ld}, 4096); err != nil {
			t.Fatalf("leader hook failed: %v", err)
		}
	})
}

// FuzzRecord checks the stored-record view against arbitrary bytes.
func FuzzRecord(f *testing.F) {
	f.Add(makeRecord(f, "T", 1, "body", "k1 k2"))
	f.Add(makeRecord(f, "TopicWithALongerName", 7, "", ""))
	f.Add(make([]byte, minRecordSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRecord(b, nil)
		if err != nil {
			return
		}
		if int(r.size()) != len(b) {
			t.Fatalf("size %d of %d", r.size(), len(b))
		}
		_ = r.property(message.PropertyKeys)
		_ = r.indexKeys()
		at := time.UnixMilli(r.storeTimestamp()) // a fixed clock: the record is inside the window
		tab := newDedupTable(time.Hour, 4, func() time.Time { return at })
		tab.observe(r.rec(), r.physOffset(), r.storeTimestamp())
		if h, ok := tab.keyOf(r.rec()); ok && r.storeTimestamp() > math.MinInt64+int64(time.Hour/time.Millisecond) {
			tab.mu.Lock()
			_, found := tab.lookupLocked(h, tab.cutoff())
			tab.mu.Unlock()
			if !found {
				t.Fatal("an observed key is not found")
			}
		}
	})
}

// FuzzSnapshot decodes arbitrary snapshot blobs (InstallSnapshot input and
// snapshot files) and round-trips valid ones.
func FuzzSnapshot(f *testing.F) {
	s := &snapshotBlob{appliedIndex: 10, raftIndex: 12, raftTerm: 3, segmentSize: 1 << 20, nextPos: 4096,
		queues: map[queueKey]int64{{"T", 0}: 5, {"U", 3}: 9}, meta: []byte("k=v")}
	f.Add(s.encode())
	f.Add((&snapshotBlob{queues: map[queueKey]int64{}}).encode())
	f.Add([]byte("RMQS"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		if !bytes.Equal(s.encode(), b) {
			t.Fatalf("snapshot does not round-trip")
		}
	})
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := &snapshotBlob{appliedIndex: 10, raftIndex: 12, raftTerm: 3, segmentSize: 1 << 20, nextPos: 4096, minPos: 0,
		queues: map[queueKey]int64{{"T", 0}: 5, {"U", 3}: 9}, meta: []byte("k=v")}
	b := s.encode()
	got, err := decodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.raftIndex != 12 || got.nextPos != 4096 || got.queues[queueKey{"U", 3}] != 9 || string(got.meta) != "k=v" {
		t.Fatalf("got %+v", got)
	}
	b[10] ^= 1
	if _, err := decodeSnapshot(b); err == nil {
		t.Fatal("corrupt snapshot accepted")
	}
	if term, idx, ok := parseSnapshotID("3-12-1700000000000"); !ok || term != 3 || idx != 12 {
		t.Fatalf("parseSnapshotID: %d %d %v", term, idx, ok)
	}
}

// The leader's hook: gate open for the entry's term assigns contiguous
// queue offsets and physical offsets; gate closed or another term voids;
// a follower verifies and refuses a mismatch.
func TestHookAssignVoidVerify(t *testing.T) {
	max := map[queueKey]int64{{"T", 1}: 7}
	a := newAssigner(nil, func(topic string, q int32) int64 { return max[queueKey{topic, q}] })
	rec := makeRecord(t, "T", 1, "x", "")
	mk := func(term uint64) *raft.Log {
		return &raft.Log{Index: 3, Term: term, Type: raft.LogCommand, Data: encodeMessages([][]byte{rec, rec})}
	}
	l := mk(2)
	if err := a.hook(l, 1000); err != nil || l.Data[1] != flagVoid {
		t.Fatalf("closed gate: flags %d err %v", l.Data[1], err)
	}
	a.open(2)
	l = mk(3)
	if err := a.hook(l, 1000); err != nil || l.Data[1] != flagVoid {
		t.Fatalf("other term: flags %d err %v", l.Data[1], err)
	}
	l = mk(2)
	if err := a.hook(l, 1000); err != nil || l.Data[1] != flagAssigned {
		t.Fatalf("open gate: flags %d err %v", l.Data[1], err)
	}
	p, _ := parsePayload(l.Data)
	recs, _ := p.records()
	r0, r1 := storedRecord{b: recs[0]}, storedRecord{b: recs[1]}
	base := int64(1000 + 56 + payloadHeaderSize)
	if r0.queueOffset() != 7 || r1.queueOffset() != 8 || r0.physOffset() != base || r1.physOffset() != base+int64(len(rec)) {
		t.Fatalf("offsets qo %d,%d phys %d,%d", r0.queueOffset(), r1.queueOffset(), r0.physOffset(), r1.physOffset())
	}
	// Follower: same bytes at the same position verify; elsewhere refused.
	f := newAssigner(nil, nil)
	if err := f.hook(&raft.Log{Index: 3, Term: 2, Type: raft.LogCommand, Data: l.Data}, 1000); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := f.hook(&raft.Log{Index: 3, Term: 2, Type: raft.LogCommand, Data: l.Data}, 1008); err == nil {
		t.Fatal("mismatched position accepted")
	}
	// Raft's own entries pass untouched.
	if err := f.hook(&raft.Log{Type: raft.LogNoop}, 0); err != nil {
		t.Fatal(err)
	}
}
