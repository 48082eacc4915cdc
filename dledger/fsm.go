package dledger

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/armon/go-metrics"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/commitlog/consumequeue"
	"github.com/raftmq/raftmq/message"
)

// ErrVoided is returned for an entry that was written to the log while the
// write gate was closed (leadership changing): it holds no messages.
// Retriable.
var ErrVoided = errors.New("dledger: entry voided (leadership changed); retry")

// queueStore is what the FSM needs of the ConsumeQueue store.
type queueStore interface {
	Put(topic string, queueID int32, offset int64, e consumequeue.Entry) error
	MaxOffset(topic string, queueID int32) int64
	Queues() []consumequeue.QueueID
	TruncateFrom(physEnd int64) error
	DeleteBelow(minPhys int64) error
	DeleteTopic(topic string) error
	Flush() error
	Close() error
}

// keyIndex is what the FSM needs of the IndexFile service.
type keyIndex interface {
	Put(key string, physOffset int64, storeTimestamp int64) error
	TruncateFrom(physEnd int64) error
	DeleteBelow(minPhys int64) error
	Flush() error
	Close() error
}

// logStore is what the node needs of the commitlog store.
type logStore interface {
	raft.LogStore
	raft.MonotonicLogStore
	RecordPos(index uint64) (int64, error)
	WriteEnd() int64
	MinPos() int64
	ReadAt(p []byte, pos int64) (int, error)
	SetApplied(index uint64)
	SetDispatched(index uint64)
	Applied() uint64
	Dispatched() uint64
	SetResetIntent(index, term uint64, pos int64) error
	Close() error
}

// metaResult carries a MetaStateMachine result back to ProposeMeta.
type metaResult struct{ v interface{} }

// fsm applies committed entries: message entries are dispatched to the
// ConsumeQueue and IndexFile, meta entries go to the MetaStateMachine. It is
// idempotent by index: entries at or below applied are skipped (raft
// redelivers entries after a restart; self-replay already did them).
type fsm struct {
	log         hclog.Logger
	store       logStore
	cq          queueStore
	idx         keyIndex
	meta        MetaStateMachine
	tagsCode    func(message.Record) int64
	segmentSize int64
	dedup       *dedupTable // nil = no deduplication

	applied atomic.Uint64

	mu     sync.Mutex
	queues map[queueKey]int64 // next offset of every dispatched queue
	// Used by Apply only (one goroutine):
	topics   topicNames
	keyBuf   []byte
	entryMax map[queueKey]int64 // next offset of the queues the entry being dispatched wrote

	listenMu   sync.RWMutex
	onDispatch []func(topic string, queueID int32, maxOffset int64)

	ckMu sync.Mutex // serialises checkpoints (flusher, Persist, Close)
}

var _ raft.BatchingFSM = (*fsm)(nil)

func (f *fsm) Apply(l *raft.Log) interface{} { return f.ApplyBatch([]*raft.Log{l})[0] }

func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	start := time.Now()
	out := make([]interface{}, len(logs))
	touched := map[queueKey]int64{}
	for i, l := range logs {
		out[i] = f.applyOne(l, touched, true)
	}
	f.notify(touched)
	metrics.MeasureSince([]string{"dledger", "fsm", "apply_batch"}, start)
	return out
}

// applyOne applies one committed entry. withMeta=false is used by
// self-replay for entries whose metadata is already in the snapshot.
func (f *fsm) applyOne(l *raft.Log, touched map[queueKey]int64, withMeta bool) interface{} {
	if l.Index <= f.applied.Load() {
		return nil
	}
	defer f.applied.Store(l.Index)
	if l.Type != raft.LogCommand {
		return nil
	}
	p, err := parsePayload(l.Data)
	if err != nil {
		f.log.Error("skipping undecodable committed entry", "index", l.Index, "error", err)
		return err
	}
	switch p.kind {
	case kindMeta:
		if f.meta == nil || !withMeta {
			return metaResult{}
		}
		return metaResult{f.meta.ApplyMeta(l.Index, p.body)}
	case kindMessages:
		switch p.flags {
		case flagVoid:
			return ErrVoided
		case flagAssigned:
			res, err := f.dispatch(l.Index, p, touched)
			if err != nil {
				f.log.Error("dispatch failed", "index", l.Index, "error", err)
				return err
			}
			return res
		}
		return fmt.Errorf("dledger: committed entry %d has no offsets (flags %#x)", l.Index, p.flags)
	}
	return nil
}

// entryResults are the per-message results of an ASSIGNED entry, read from
// its records (the same on every member).
func entryResults(index uint64, p payload) ([]AppendResult, error) {
	if p.flags != flagAssigned {
		return nil, fmt.Errorf("dledger: entry %d has no offsets", index)
	}
	return recordResults(index, p, nil, nil)
}

// recordResults parses every record of an entry into its result and hands
// each to visit (when set).
func recordResults(index uint64, p payload, names topicNames, visit func(r storedRecord) error) ([]AppendResult, error) {
	recs, err := p.records()
	if err != nil {
		return nil, err
	}
	res := make([]AppendResult, len(recs))
	for i, b := range recs {
		r, err := parseRecord(b, names)
		if err != nil {
			return nil, err
		}
		res[i] = AppendResult{PhysicalOffset: r.physOffset(), QueueOffset: r.queueOffset(), Size: r.size(), StoreTimestamp: r.storeTimestamp(), Index: index}
		if visit != nil {
			if err := visit(r); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

// dispatch writes every message of an ASSIGNED entry to the ConsumeQueue
// and IndexFile and returns the per-message results.
func (f *fsm) dispatch(index uint64, p payload, touched map[queueKey]int64) ([]AppendResult, error) {
	if f.entryMax == nil {
		f.entryMax = map[queueKey]int64{}
	}
	entryMax := f.entryMax
	res, err := recordResults(index, p, f.topics, func(r storedRecord) error {
		phys, ts := r.physOffset(), r.storeTimestamp()
		if f.dedup != nil {
			f.dedup.observe(r.rec(), phys, ts) // half messages too: a retried half is a duplicate
		}
		if !r.dispatchable() {
			return nil
		}
		k := queueKey{r.topic, r.queueID()}
		e := consumequeue.Entry{PhysOffset: phys, Size: r.size(), TagsCode: f.tagsCode(r.rec())}
		if err := f.cq.Put(k.topic, k.qid, r.queueOffset(), e); err != nil {
			return fmt.Errorf("consumequeue put %s/%d@%d: %w", k.topic, k.qid, r.queueOffset(), err)
		}
		r.eachIndexKey(func(key []byte) {
			// One "topic#key" string per key, built in a reused buffer.
			f.keyBuf = append(append(append(f.keyBuf[:0], k.topic...), '#'), key...)
			if err := f.idx.Put(string(f.keyBuf), phys, ts); err != nil {
				f.log.Warn("index put failed", "key", string(key), "error", err)
			}
		})
		entryMax[k] = r.queueOffset() + 1
		touched[k] = r.queueOffset() + 1
		return nil
	})
	// The queue table is shared with readers: one lock per entry.
	f.mu.Lock()
	for k, next := range entryMax {
		if next > f.queues[k] {
			f.queues[k] = next
		}
	}
	f.mu.Unlock()
	clear(entryMax)
	if err != nil {
		return nil, err
	}
	metrics.IncrCounter([]string{"dledger", "fsm", "messages"}, float32(len(res)))
	return res, nil
}

func (f *fsm) notify(touched map[queueKey]int64) {
	if len(touched) == 0 {
		return
	}
	f.listenMu.RLock()
	fns := f.onDispatch
	f.listenMu.RUnlock()
	for k, max := range touched {
		for _, fn := range fns {
			fn(k.topic, k.qid, max)
		}
	}
}

// loadQueues fills the queue table from the ConsumeQueue (at open).
func (f *fsm) loadQueues() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range f.cq.Queues() {
		f.queues[queueKey{q.Topic, q.ID}] = f.cq.MaxOffset(q.Topic, q.ID)
	}
}

// checkpoint flushes the ConsumeQueue and IndexFile and then records the
// applied/dispatched index in the commitlog checkpoint: everything at or
// below it is durable in the CQ, so self-replay can start after it.
func (f *fsm) checkpoint() error {
	f.ckMu.Lock()
	defer f.ckMu.Unlock()
	a := f.applied.Load() // read before flushing: all of it is in the CQ
	if err := f.cq.Flush(); err != nil {
		return fmt.Errorf("flush consumequeue: %w", err)
	}
	if err := f.idx.Flush(); err != nil {
		return fmt.Errorf("flush index: %w", err)
	}
	if a > f.store.Dispatched() {
		f.store.SetApplied(a)
		f.store.SetDispatched(a)
	}
	return nil
}

// Snapshot captures metadata and queue offsets at the last applied entry.
// It runs on raft's FSM goroutine between applies.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	s := &snapshotBlob{appliedIndex: f.applied.Load(), segmentSize: f.segmentSize, minPos: f.store.MinPos()}
	f.mu.Lock()
	s.queues = make(map[queueKey]int64, len(f.queues))
	for k, v := range f.queues {
		s.queues[k] = v
	}
	f.mu.Unlock()
	if f.meta != nil {
		m, err := f.meta.SnapshotMeta()
		if err != nil {
			return nil, fmt.Errorf("dledger: meta snapshot: %w", err)
		}
		s.meta = m
	}
	return &fsmSnapshot{f: f, blob: s}, nil
}

// Restore is reached only through InstallSnapshot on a running follower
// (NoSnapshotRestoreOnStart). It restores metadata and the queue table and
// records a reset intent in the commitlog; raft's following DeleteRange (or
// the next StoreLogs) performs the reset. It never wipes the log itself.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxSnapshotBytes+1))
	if err != nil {
		return fmt.Errorf("dledger: read snapshot: %w", err)
	}
	if len(data) > maxSnapshotBytes {
		return fmt.Errorf("%w: larger than %d bytes", errBadSnapshot, maxSnapshotBytes)
	}
	s, err := decodeSnapshot(data)
	if err != nil {
		return err
	}
	if s.segmentSize != f.segmentSize {
		return fmt.Errorf("dledger: snapshot segment size %d, ours %d: refusing", s.segmentSize, f.segmentSize)
	}
	if s.raftIndex == 0 || s.nextPos <= 0 {
		return fmt.Errorf("%w: no log position", errBadSnapshot)
	}
	if f.meta != nil {
		if err := f.meta.RestoreMeta(s.meta); err != nil {
			return fmt.Errorf("dledger: restore meta: %w", err)
		}
	}
	// Every local CQ/index entry points into the log that is about to be
	// reset, so drop them; the queues restart at the snapshot's offsets (an
	// empty queue accepts its first Put at any offset).
	seen := map[string]bool{}
	for _, q := range f.cq.Queues() {
		if !seen[q.Topic] {
			seen[q.Topic] = true
			if err := f.cq.DeleteTopic(q.Topic); err != nil {
				return fmt.Errorf("dledger: reset consumequeue %s: %w", q.Topic, err)
			}
		}
	}
	if err := f.idx.TruncateFrom(0); err != nil {
		return fmt.Errorf("dledger: reset index: %w", err)
	}
	if err := f.store.SetResetIntent(s.raftIndex, s.raftTerm, s.nextPos); err != nil {
		return fmt.Errorf("dledger: reset intent: %w", err)
	}
	f.mu.Lock()
	f.queues = s.queues
	f.mu.Unlock()
	if f.dedup != nil {
		f.dedup.reset() // the records it points at are gone with the log
	}
	f.applied.Store(s.raftIndex)
	f.log.Warn("restored from snapshot; messages below the snapshot are not on this node", "index", s.raftIndex, "next_pos", s.nextPos)
	return nil
}

// fsmSnapshot persists a snapshotBlob.
type fsmSnapshot struct {
	f    *fsm
	blob *snapshotBlob
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.persist(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) persist(sink raft.SnapshotSink) error {
	// A snapshot at S must imply the CQ is durable through S.
	if err := s.f.checkpoint(); err != nil {
		return err
	}
	if term, index, ok := parseSnapshotID(sink.ID()); ok {
		pos, err := s.f.endOfRecord(index)
		if err != nil {
			return err
		}
		s.blob.raftIndex, s.blob.raftTerm, s.blob.nextPos = index, term, pos
	}
	_, err := sink.Write(s.blob.encode())
	return err
}

func (s *fsmSnapshot) Release() {}

// endOfRecord returns the log position right after index's record, i.e.
// where index+1 starts.
func (f *fsm) endOfRecord(index uint64) (int64, error) {
	for range 100 {
		if pos, err := f.store.RecordPos(index + 1); err == nil {
			return pos, nil
		}
		end := f.store.WriteEnd()
		if last, err := f.store.LastIndex(); err == nil && last == index {
			if f.store.WriteEnd() == end {
				return end, nil
			}
		}
	}
	return 0, fmt.Errorf("dledger: cannot find the end of entry %d", index)
}
