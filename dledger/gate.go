package dledger

import (
	"fmt"
	"sync"
	"time"

	"github.com/armon/go-metrics"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/commitlog"
)

// queueKey names one (topic, queueId) consume queue.
type queueKey struct {
	topic string
	qid   int32
}

// assigner is the write gate plus the leader's next-queue-offset table. Its
// hook runs inside commitlog.StoreLogs (raft's main goroutine) for every
// record before it is written or replicated.
type assigner struct {
	log hclog.Logger
	// maxOffset returns the dispatched max offset of a queue (ConsumeQueue).
	maxOffset func(topic string, qid int32) int64
	now       func() time.Time

	mu       sync.Mutex
	openTerm uint64 // 0 = gate closed
	next     map[queueKey]int64
	topics   topicNames
}

func newAssigner(log hclog.Logger, maxOffset func(string, int32) int64) *assigner {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &assigner{log: log, maxOffset: maxOffset, now: time.Now, next: map[queueKey]int64{}, topics: newTopicNames()}
}

// open opens the gate for term. The caller has run a Barrier in this term,
// so every entry of earlier terms is dispatched; next[] is refilled lazily
// from the ConsumeQueue (see the package doc).
func (a *assigner) open(term uint64) {
	a.mu.Lock()
	a.openTerm = term
	a.next = map[queueKey]int64{}
	a.mu.Unlock()
}

func (a *assigner) close() {
	a.mu.Lock()
	a.openTerm = 0
	a.mu.Unlock()
}

func (a *assigner) openFor() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.openTerm
}

// hook is the commitlog.AppendHook.
func (a *assigner) hook(l *raft.Log, pos int64) error {
	if l.Type != raft.LogCommand {
		return nil // raft's own entries (noop, barrier, configuration) pass untouched
	}
	p, err := parsePayload(l.Data)
	if err != nil {
		// Only a leader-local entry can be unhooked; ours are well formed, so
		// this is a follower receiving bytes it cannot verify: refuse.
		return fmt.Errorf("dledger: entry %d: %w", l.Index, err)
	}
	if p.kind != kindMessages {
		return nil
	}
	base := pos + commitlog.HeaderSize + payloadHeaderSize
	switch p.flags {
	case flagVoid:
		return nil
	case flagAssigned:
		return verifyOffsets(l.Index, p, base)
	}
	// Unflagged: created by this node's Apply as leader of l.Term.
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.openTerm == 0 || a.openTerm != l.Term {
		l.Data[1] = flagVoid
		metrics.IncrCounter([]string{"dledger", "entry", "voided"}, 1)
		return nil
	}
	recs, err := p.records()
	views := make([]storedRecord, 0, len(recs))
	if err == nil {
		for _, b := range recs {
			r, perr := parseRecord(b, a.topics)
			if perr != nil {
				err = perr
				break
			}
			views = append(views, r)
		}
	}
	if err != nil {
		// The appender validated every record, so this is a bug; VOID keeps
		// the log consistent instead of failing StoreLogs (which would make
		// the leader step down).
		a.log.Error("voiding malformed entry", "index", l.Index, "error", err)
		l.Data[1] = flagVoid
		return nil
	}
	storeTs := a.now().UnixMilli()
	phys := base
	for _, r := range views {
		k := queueKey{r.topic, r.queueID()}
		qo := int64(0)
		if r.dispatchable() {
			var ok bool
			if qo, ok = a.next[k]; !ok {
				qo = a.maxOffset(k.topic, k.qid)
			}
			a.next[k] = qo + 1
		}
		r.setQueueOffset(qo)
		r.setPhysOffset(phys)
		r.setStoreTimestamp(storeTs)
		phys += int64(r.size())
	}
	l.Data[1] = flagAssigned
	metrics.AddSample([]string{"dledger", "entry", "messages"}, float32(len(views)))
	return nil
}

// verifyOffsets checks, on a follower, that every record of an ASSIGNED
// entry carries the physical offset it is about to be written at: the
// replicas' layouts must be identical.
func verifyOffsets(index uint64, p payload, base int64) error {
	recs, err := p.records()
	if err != nil {
		return fmt.Errorf("dledger: entry %d: %w", index, err)
	}
	phys := base
	for i, b := range recs {
		r := storedRecord{b: b}
		if got := r.physOffset(); got != phys {
			return fmt.Errorf("dledger: entry %d record %d: physical offset %d, stored at %d: replica layouts diverged", index, i, got, phys)
		}
		phys += int64(len(b))
	}
	return nil
}
