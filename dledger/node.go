package dledger

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/armon/go-metrics"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/commitlog/consumequeue"
	"github.com/raftmq/raftmq/commitlog/indexfile"
	"github.com/raftmq/raftmq/message"
)

// ErrClosed is returned by calls on a closed node.
var ErrClosed = errors.New("dledger: node closed")

// ErrIndeterminate marks a write whose entry was handed to Raft but whose
// outcome is unknown: leadership was lost while it was in flight, the node
// shut down, or the caller's deadline passed. The entry may still commit (on
// this or the next leader), so it is not a definite failure like
// *NotLeaderError; a retry with the same UNIQ_KEY within the duplicate
// window (AppendSends) is answered with the stored original if it did.
var ErrIndeterminate = errors.New("dledger: outcome unknown, the entry may still commit")

// NotLeaderError is returned by writes on a node whose write gate is not
// open. Retriable; LeaderID/LeaderAddr name the leader when one is known.
type NotLeaderError struct {
	LeaderID, LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "dledger: not leader (no leader known)"
	}
	return fmt.Sprintf("dledger: not leader (leader %s at %s)", e.LeaderID, e.LeaderAddr)
}

// AppendResult is the outcome of one appended message.
type AppendResult struct {
	PhysicalOffset int64  // commitlog offset of the message record
	QueueOffset    int64  // offset in its (topic, queueId) consume queue
	Size           int32  // record size
	StoreTimestamp int64  // leader clock, ms
	Index          uint64 // raft index of the entry (0 for a Duplicate)
	// Duplicate is set by AppendSends for a record whose (topic, UNIQ_KEY)
	// was already committed within the duplicate window: nothing was
	// stored, the fields describe the original and Record is a copy of it.
	Duplicate bool
	Record    []byte
}

// LeadershipEvent reports a role or term change. Leader is true only once
// the write gate is open for Term.
type LeadershipEvent struct {
	Leader               bool
	Term                 uint64
	LeaderID, LeaderAddr string
}

// PeerStatus is one member as seen by this node.
type PeerStatus struct {
	ID, Addr, Suffrage string
	LastIndex          uint64 // only known for self
}

// Status is a point-in-time view of the node.
type Status struct {
	Group, SelfID, Role       string
	Term                      uint64
	LeaderID, LeaderAddr      string
	CommitIndex, AppliedIndex uint64
	LastIndex                 uint64
	Peers                     []PeerStatus
	// DuplicateKeys is how many (topic, UNIQ_KEY) the duplicate table
	// holds; DuplicatesSuppressed counts the records AppendSends did not
	// store again since the node opened.
	DuplicateKeys        int
	DuplicatesSuppressed uint64
}

// Node is one member of a broker group.
type Node struct {
	cfg    Config
	log    hclog.Logger
	store  logStore
	cl     *commitlog.Store // nil when a test replaced the store
	cq     *consumequeue.Store
	idx    *indexfile.Service
	fsm    *fsm
	gate   *assigner
	raft   *raft.Raft
	trans  raft.Transport
	stable *raftboltdb.BoltStore
	snaps  raft.SnapshotStore
	app    *appender
	subs   *subscribers
	// progress is fed by the transport wrapper raft runs on (ReadProgress).
	progress peerTracker

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	dupsSuppressed atomic.Uint64 // records AppendSends answered from the table
	// dedupReady is closed once the duplicate table holds the log tail that
	// self-replay did not dispatch (entries dedupFrom..dedupTo); the write
	// gate does not open before.
	dedupReady         chan struct{}
	dedupFrom, dedupTo uint64
}

// Open opens the stores, recovers and self-replays, starts raft and
// bootstraps a fresh group from Peers (never when state exists on disk).
func Open(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.MaxEntryBytes == 0 {
		cfg.MaxEntryBytes = defaultMaxEntryBytes
	}
	if cfg.FileReservedTime == 0 {
		cfg.FileReservedTime = 72 * time.Hour
	}
	if cfg.DeleteWhenHour == 0 {
		cfg.DeleteWhenHour = 4 // RocketMQ deleteWhen=04; 0 means "default"
	}
	if cfg.TagsCode == nil {
		cfg.TagsCode = message.Record.TagsCode // the tag hash, without building the TAGS string
	}
	n := &Node{cfg: cfg, log: cfg.Logger.Named("dledger"), subs: newSubscribers(), dedupReady: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.open(); err != nil {
		n.cancel()
		n.closeStores()
		return nil, err
	}
	return n, nil
}

func (n *Node) open() error {
	cfg := &n.cfg
	var err error
	if n.cq, err = consumequeue.Open(consumequeue.Options{Dir: filepath.Join(cfg.StoreDir, "consumequeue"), Logger: cfg.Logger.Named("consumequeue")}); err != nil {
		return fmt.Errorf("dledger: open consumequeue: %w", err)
	}
	if n.idx, err = indexfile.Open(indexfile.Options{Dir: filepath.Join(cfg.StoreDir, "index"), Logger: cfg.Logger.Named("index")}); err != nil {
		return fmt.Errorf("dledger: open index: %w", err)
	}
	n.gate = newAssigner(n.log, n.cq.MaxOffset)
	clOpts := commitlog.Options{RootDir: cfg.StoreDir, SegmentSize: cfg.SegmentSize, Flush: cfg.Flush, Hook: n.gate.hook,
		Logger: cfg.Logger.Named("commitlog"), FileReservedTime: cfg.FileReservedTime}
	if cfg.openLog != nil {
		n.store, err = cfg.openLog(clOpts)
	} else {
		n.cl, err = commitlog.Open(clOpts)
		if err == nil {
			n.store = n.cl // a nil *Store in the interface would make closeStores panic
		}
	}
	if err != nil {
		return fmt.Errorf("dledger: open commitlog: %w", err)
	}
	segSize := cfg.SegmentSize
	if segSize == 0 {
		segSize = commitlog.DefaultSegmentSize
	}
	n.fsm = &fsm{log: n.log, store: n.store, cq: n.cq, idx: n.idx, meta: cfg.Meta, segmentSize: segSize,
		tagsCode: cfg.TagsCode, queues: map[queueKey]int64{}, topics: newTopicNames(),
		dedup: newDedupTable(cfg.DuplicateWindow, cmp.Or(cfg.DuplicateMaxEntries, defaultDuplicateMaxEntries), cfg.now)}

	raftDir := filepath.Join(cfg.StoreDir, "raft")
	if err := os.MkdirAll(raftDir, 0o755); err != nil {
		return fmt.Errorf("dledger: %w", err)
	}
	if n.stable, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, "stable.db")}); err != nil {
		return fmt.Errorf("dledger: open stable store: %w", err)
	}
	if n.snaps, err = raft.NewFileSnapshotStoreWithLogger(raftDir, 3, cfg.Logger.Named("snapshots")); err != nil {
		return fmt.Errorf("dledger: open snapshot store: %w", err)
	}
	if err := n.recover(); err != nil {
		return err
	}

	n.trans = cfg.Transport
	if n.trans == nil {
		self := cfg.Peers[cfg.ordinal()]
		t, err := raft.NewTCPTransportWithConfig(self.Addr, nil, &raft.NetworkTransportConfig{
			MaxPool: 3, Timeout: 10 * time.Second, Logger: cfg.Logger.Named("transport")})
		if err != nil {
			return fmt.Errorf("dledger: raft transport at %s: %w", self.Addr, err)
		}
		n.trans = t
	}
	rc := cfg.raftConfig(cfg.Logger.Named("raft"))
	var logs raft.LogStore = n.store
	capEntries := cfg.LogCacheEntries
	if capEntries == 0 {
		capEntries = defaultLogCache
	}
	if capEntries > 0 {
		// The hook mutates *raft.Log in place inside store.StoreLogs, and
		// LogCache.StoreLogs caches the same pointers only after the store
		// returns, so the cache (and replication) sees the patched bytes.
		if logs, err = raft.NewLogCache(capEntries, n.store); err != nil {
			return fmt.Errorf("dledger: log cache: %w", err)
		}
	}
	has, err := raft.HasExistingState(logs, n.stable, n.snaps)
	if err != nil {
		return fmt.Errorf("dledger: inspect raft state: %w", err)
	}
	if !has {
		var servers []raft.Server
		for _, p := range cfg.Peers {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
		}
		if err := raft.BootstrapCluster(rc, logs, n.stable, n.snaps, n.trans, raft.Configuration{Servers: servers}); err != nil {
			return fmt.Errorf("dledger: bootstrap: %w", err)
		}
		n.log.Info("bootstrapped new group", "group", cfg.Group, "peers", FormatPeers(cfg.Peers))
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, logs, n.stable, n.snaps, trackTransport(n.trans, &n.progress)); err != nil {
		return fmt.Errorf("dledger: start raft: %w", err)
	}
	n.app = newAppender(n.ctx, n.raft, cfg.MaxEntryBytes, n.notLeader)
	n.app.resolve = n.resolveLost
	if n.cl != nil {
		policy := commitlog.DefaultRetentionPolicy()
		policy.FileReservedTime, policy.DeleteWhenHour = cfg.FileReservedTime, cfg.DeleteWhenHour
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.cl.RunRetention(n.ctx, policy, n.safeIndex) }()
	}
	n.wg.Add(4)
	go func() { defer n.wg.Done(); n.rebuildDedupAtStart() }()
	go func() { defer n.wg.Done(); n.app.run() }()
	go func() { defer n.wg.Done(); n.watchLeadership() }()
	go func() { defer n.wg.Done(); n.runFlusher() }()
	return nil
}

// recover truncates CQ/index past the log end and self-replays committed
// entries from the store (docs/raft.md §9): metadata from the latest snapshot,
// then meta entries after it and message entries after the dispatched
// checkpoint, up to the applied checkpoint.
func (n *Node) recover() error {
	end := n.store.WriteEnd()
	if err := n.cq.TruncateFrom(end); err != nil {
		return fmt.Errorf("dledger: truncate consumequeue at %d: %w", end, err)
	}
	if err := n.idx.TruncateFrom(end); err != nil {
		return fmt.Errorf("dledger: truncate index at %d: %w", end, err)
	}
	n.fsm.loadQueues()
	var snapIndex uint64
	if metas, err := n.snaps.List(); err == nil && len(metas) > 0 {
		blob, err := n.loadSnapshot(metas[0].ID)
		if err != nil {
			return err
		}
		if blob.segmentSize != n.fsm.segmentSize {
			return fmt.Errorf("dledger: snapshot segment size %d, configured %d", blob.segmentSize, n.fsm.segmentSize)
		}
		if n.cfg.Meta != nil {
			if err := n.cfg.Meta.RestoreMeta(blob.meta); err != nil {
				return fmt.Errorf("dledger: restore meta from snapshot %s: %w", metas[0].ID, err)
			}
		}
		snapIndex = blob.appliedIndex
	}
	first, err := n.store.FirstIndex()
	if err != nil {
		return fmt.Errorf("dledger: %w", err)
	}
	last, err := n.store.LastIndex()
	if err != nil {
		return fmt.Errorf("dledger: %w", err)
	}
	dispatched, applied := n.store.Dispatched(), n.store.Applied()
	upto := min(max(applied, dispatched), last)
	from := max(min(snapIndex, dispatched)+1, first)
	if first == 0 {
		from = 1
	}
	if first > 0 {
		// Self-replay below dispatches only what the CQ lacks; the keys of
		// the window's earlier records come from the log itself, read in
		// the background (rebuildDedup) before this node may lead.
		n.dedupFrom, n.dedupTo = first, min(dispatched, upto)
	}
	var replayed int
	touched := map[queueKey]int64{}
	for i := from; i <= upto; i++ {
		var l raft.Log
		if err := n.store.GetLog(i, &l); err != nil {
			return fmt.Errorf("dledger: self-replay entry %d: %w", i, err)
		}
		if i <= dispatched {
			// Already in the CQ; only metadata after the snapshot is missing.
			if i > snapIndex {
				n.replayMeta(&l)
			}
			continue
		}
		n.fsm.applyOne(&l, touched, i > snapIndex)
		replayed++
	}
	if upto > n.fsm.applied.Load() {
		n.fsm.applied.Store(upto)
	}
	if snapIndex > n.fsm.applied.Load() {
		n.fsm.applied.Store(snapIndex)
	}
	n.log.Info("recovered", "first", first, "last", last, "dispatched", dispatched, "applied", applied,
		"snapshot", snapIndex, "replayed", replayed, "write_end", end)
	return nil
}

// rebuildDedupAtStart runs rebuildDedup over the range recover left and
// then lets the write gate open (reconcile waits for dedupReady).
func (n *Node) rebuildDedupAtStart() {
	defer close(n.dedupReady)
	if n.fsm.dedup == nil || n.dedupTo == 0 {
		return
	}
	start := time.Now()
	if err := n.rebuildDedup(n.dedupFrom, n.dedupTo); err != nil {
		n.log.Error("rebuilding the duplicate table failed; retries of older sends may be stored again", "error", err)
		return
	}
	metrics.MeasureSince([]string{"dledger", "dedup", "rebuild"}, start)
}

// rebuildDedup adds to the duplicate table the keys of the log tail ending
// at last (inclusive), reading backwards until a whole entry is older than
// the window or the table's bound is reached. The FSM may be observing newer
// entries meanwhile; the scanned keys are older than all of those, so they
// go in front of the table's order and win over a newer record of the same
// key.
func (n *Node) rebuildDedup(first, last uint64) error {
	t := n.fsm.dedup
	cutoff := t.cutoff()
	var found [][]dedupSeen // per entry, newest entry first
	count := 0
	for i := last; i >= first && i > 0 && count < t.maxEntries; i-- {
		if n.ctx.Err() != nil {
			return ErrClosed
		}
		var l raft.Log
		if err := n.store.GetLog(i, &l); err != nil {
			return fmt.Errorf("dledger: rebuild duplicate table at entry %d: %w", i, err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		p, err := parsePayload(l.Data)
		if err != nil || p.kind != kindMessages || p.flags != flagAssigned {
			continue
		}
		recs, err := p.records()
		if err != nil {
			continue
		}
		var entry []dedupSeen
		newest := int64(math.MinInt64)
		for _, b := range recs {
			r := message.Record(b)
			ts := r.StoreTimestamp()
			newest = max(newest, ts)
			if h, ok := t.keyOf(r); ok && ts >= cutoff {
				entry = append(entry, dedupSeen{h, r.PhysicalOffset(), ts})
			}
		}
		if newest < cutoff {
			break
		}
		found = append(found, entry)
		count += len(entry)
	}
	older := make([]dedupSeen, 0, count)
	for k := len(found) - 1; k >= 0; k-- {
		older = append(older, found[k]...)
	}
	t.prepend(older, cutoff)
	n.log.Info("rebuilt the duplicate table from the log", "keys", count, "entries", len(found))
	return nil
}

func (n *Node) replayMeta(l *raft.Log) {
	if l.Type != raft.LogCommand || n.cfg.Meta == nil {
		return
	}
	if p, err := parsePayload(l.Data); err == nil && p.kind == kindMeta {
		n.cfg.Meta.ApplyMeta(l.Index, p.body)
	}
}

func (n *Node) loadSnapshot(id string) (*snapshotBlob, error) {
	_, rc, err := n.snaps.Open(id)
	if err != nil {
		return nil, fmt.Errorf("dledger: open snapshot %s: %w", id, err)
	}
	defer rc.Close()
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 64<<10)
	for {
		k, err := rc.Read(tmp)
		buf = append(buf, tmp[:k]...)
		if len(buf) > maxSnapshotBytes {
			return nil, fmt.Errorf("dledger: snapshot %s too large", id)
		}
		if err != nil {
			break
		}
	}
	blob, err := decodeSnapshot(buf)
	if err != nil {
		return nil, fmt.Errorf("dledger: snapshot %s: %w", id, err)
	}
	return blob, nil
}

// safeIndex bounds retention (docs/raft.md §10): never delete above the latest
// snapshot, the durable dispatch point or the commit index.
func (n *Node) safeIndex() uint64 {
	metas, err := n.snaps.List()
	if err != nil || len(metas) == 0 {
		return 0 // no snapshot: a follower that needs one could not get it
	}
	return min(metas[0].Index, n.store.Dispatched(), n.raft.CommitIndex())
}

// runFlusher checkpoints the CQ/index every second and drops CQ/index
// entries that point below the log's first position after retention.
func (n *Node) runFlusher() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	minPos := n.store.MinPos()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			if err := n.fsm.checkpoint(); err != nil {
				n.log.Error("checkpoint failed", "error", err)
			}
			if p := n.store.MinPos(); p > minPos {
				if err := n.cq.DeleteBelow(p); err != nil {
					n.log.Warn("consumequeue retention failed", "min_pos", p, "error", err)
				}
				if err := n.idx.DeleteBelow(p); err != nil {
					n.log.Warn("index retention failed", "min_pos", p, "error", err)
				}
				minPos = p
			}
		}
	}
}

func (n *Node) notLeader() error {
	addr, id := n.raft.LeaderWithID()
	return &NotLeaderError{LeaderID: string(id), LeaderAddr: string(addr)}
}

// AppendMessages submits encoded stored records and waits until their entry
// is committed and dispatched. All records of one call go into one entry,
// contiguous and in order.
func (n *Node) AppendMessages(ctx context.Context, records [][]byte) ([]AppendResult, error) {
	if len(records) == 0 {
		return nil, nil
	}
	size, err := n.checkRecords(records)
	if err != nil {
		return nil, err
	}
	if !n.IsLeader() {
		return nil, n.notLeader()
	}
	return n.app.submit(ctx, records, size, nil)
}

// checkRecords validates records for one entry and returns their size.
func (n *Node) checkRecords(records [][]byte) (int, error) {
	size := 0
	for i, b := range records {
		if _, err := checkRecord(b); err != nil {
			return 0, fmt.Errorf("dledger: record %d: %w", i, err)
		}
		size += len(b)
	}
	if size+payloadHeaderSize > n.cfg.MaxEntryBytes {
		return 0, fmt.Errorf("dledger: %d bytes of records exceed the entry limit %d", size, n.cfg.MaxEntryBytes)
	}
	return size, nil
}

// AppendSends is AppendMessages for producer sends, deduplicated by
// (topic, UNIQ_KEY) within the duplicate window: a record whose key was
// committed in the window is not stored again and its result describes the
// stored original (Duplicate, Record); the others are stored as one entry.
// A record whose key is still in flight in another AppendSends waits for
// that call's outcome first (and is stored if it failed). Records without a
// UNIQ_KEY, and every record when the window is 0, are always stored.
// Internal re-appends of stored messages must use AppendMessages: they carry
// their original's UNIQ_KEY.
func (n *Node) AppendSends(ctx context.Context, records [][]byte) ([]AppendResult, error) {
	t := n.fsm.dedup
	if t == nil || len(records) == 0 {
		return n.AppendMessages(ctx, records)
	}
	if _, err := n.checkRecords(records); err != nil {
		return nil, err
	}
	if !n.IsLeader() {
		return nil, n.notLeader()
	}
	keys, has := make([]uint64, len(records)), make([]bool, len(records))
	for i, b := range records {
		keys[i], has[i] = t.keyOf(message.Record(b))
	}
	phys, claim, err := t.begin(ctx, keys, has, n.ctx.Done())
	if err != nil {
		return nil, err
	}
	var out []AppendResult
	var fresh [][]byte
	var freshAt []int
	for i, b := range records {
		if phys[i] >= 0 {
			if orig, ok := n.storedOriginal(phys[i], message.Record(b)); ok {
				if out == nil { // the first duplicate: records are split from here on
					out = make([]AppendResult, len(records))
					fresh, freshAt = append([][]byte(nil), records[:i]...), make([]int, i, len(records))
					for k := range freshAt {
						freshAt[k] = k
					}
				}
				out[i] = AppendResult{PhysicalOffset: phys[i], QueueOffset: orig.QueueOffset(), Size: orig.TotalSize(),
					StoreTimestamp: orig.StoreTimestamp(), Duplicate: true, Record: orig}
				continue
			}
		}
		if out != nil {
			fresh, freshAt = append(fresh, b), append(freshAt, i)
		}
	}
	if out == nil { // no duplicate (the usual case): store records as they are
		size := 0
		for _, b := range records { // checked above
			size += len(b)
		}
		return n.app.submit(ctx, records, size, claim)
	}
	if dups := len(records) - len(fresh); dups > 0 {
		n.dupsSuppressed.Add(uint64(dups))
		metrics.IncrCounter([]string{"dledger", "dedup", "suppressed"}, float32(dups))
	}
	if len(fresh) == 0 {
		claim.release()
		return out, nil
	}
	size := 0
	for _, b := range fresh { // checked above
		size += len(b)
	}
	res, err := n.app.submit(ctx, fresh, size, claim)
	if err != nil {
		return nil, err
	}
	for k, i := range freshAt {
		out[i] = res[k]
	}
	return out, nil
}

// storedOriginal reads the committed record at phys and confirms it is the
// same message as rec (topic and UNIQ_KEY: the table holds only hashes). It
// returns a copy.
func (n *Node) storedOriginal(phys int64, rec message.Record) (message.Record, bool) {
	var hdr [4]byte
	if _, err := n.store.ReadAt(hdr[:], phys); err != nil {
		return nil, false
	}
	size := int(binary.BigEndian.Uint32(hdr[:]))
	if size < minRecordSize || size > n.cfg.MaxEntryBytes {
		return nil, false
	}
	buf := make([]byte, size)
	if _, err := n.store.ReadAt(buf, phys); err != nil {
		return nil, false
	}
	orig, err := message.ParseRecord(buf)
	if err != nil || !bytes.Equal(orig.TopicBytes(), rec.TopicBytes()) {
		return nil, false
	}
	a, _ := orig.PropertyBytes(message.PropertyUniqKey)
	b, _ := rec.PropertyBytes(message.PropertyUniqKey)
	return orig, bytes.Equal(a, b)
}

// ProposeMeta replicates a metadata command and returns
// MetaStateMachine.ApplyMeta's result.
func (n *Node) ProposeMeta(ctx context.Context, cmd []byte) (interface{}, error) {
	if !n.IsLeader() {
		return nil, n.notLeader()
	}
	fut := n.raft.Apply(encodeMeta(cmd), 0)
	resp, err := waitApply(ctx, fut, n.notLeader)
	if err != nil {
		return nil, err
	}
	switch r := resp.(type) {
	case metaResult:
		return r.v, nil
	case error:
		return nil, r
	}
	return nil, fmt.Errorf("dledger: unexpected meta response %T", resp)
}

// waitApply waits for a raft future, mapping leadership errors to
// *NotLeaderError.
func waitApply(ctx context.Context, fut raft.ApplyFuture, notLeader func() error) (interface{}, error) {
	if err := futureError(ctx, fut); err != nil {
		if err == ErrClosed && ctx.Err() != nil {
			return nil, indeterminate(ctx.Err()) // the entry is in raft: it may still commit
		}
		return nil, mapRaftErr(err, notLeader)
	}
	return fut.Response(), nil
}

// mapRaftErr maps the error of an entry handed to raft.Apply. Raft refusing
// the entry (not leader, transfer in progress) means nothing was appended:
// a definite *NotLeaderError. Leadership lost while the entry was in flight,
// or a shutdown, leaves the entry in some log where it may still commit:
// ErrIndeterminate.
func mapRaftErr(err error, notLeader func() error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrAbortedByRestore), errors.Is(err, raft.ErrEnqueueTimeout):
		return notLeader()
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, ErrClosed):
		return indeterminate(err)
	}
	return err
}

// indeterminate wraps err as ErrIndeterminate (errors.Is sees both).
func indeterminate(err error) error { return fmt.Errorf("%w: %w", ErrIndeterminate, err) }

// resolveLost waits, up to one raft timeout, until the entry at index is
// applied here (as a follower, from the next leader) and tells whether it is
// the entry this node wrote as leader: same bytes at the same index means
// committed (Raft's log matching), other bytes mean it was replaced and
// never will be.
func (n *Node) resolveLost(ctx context.Context, index uint64, data []byte) ([]AppendResult, error, bool) {
	deadline := time.Now().Add(n.raftTimeout())
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for n.fsm.applied.Load() < index {
		if time.Now().After(deadline) {
			return nil, nil, false
		}
		select {
		case <-ctx.Done():
			return nil, nil, false
		case <-t.C:
		}
	}
	var l raft.Log
	if err := n.store.GetLog(index, &l); err != nil {
		return nil, nil, false // compacted meanwhile: unknown
	}
	if l.Type != raft.LogCommand || !bytes.Equal(l.Data, data) {
		return nil, n.notLeader(), true
	}
	p, err := parsePayload(l.Data)
	if err != nil || p.kind != kindMessages {
		return nil, nil, false
	}
	if p.flags == flagVoid {
		return nil, ErrVoided, true
	}
	res, err := entryResults(index, p)
	if err != nil {
		return nil, nil, false
	}
	return res, nil, true
}

// IsLeader is true only when the write gate is open for the current term.
func (n *Node) IsLeader() bool {
	t := n.gate.openFor()
	return t != 0 && n.raft.State() == raft.Leader && n.raft.CurrentTerm() == t
}

// Subscribe registers fn for leadership events; they are delivered from one
// goroutine, in order. fn first receives the current state.
func (n *Node) Subscribe(fn func(LeadershipEvent)) (cancel func()) { return n.subs.add(fn) }

// OnDispatch registers fn, called on the FSM goroutine after committed
// messages are dispatched to the ConsumeQueue (on followers too). fn must
// not block.
func (n *Node) OnDispatch(fn func(topic string, queueID int32, maxOffset int64)) {
	n.fsm.listenMu.Lock()
	n.fsm.onDispatch = append(n.fsm.onDispatch, fn)
	n.fsm.listenMu.Unlock()
}

// Status returns a point-in-time view.
func (n *Node) Status() Status {
	addr, id := n.raft.LeaderWithID()
	last, _ := n.store.LastIndex()
	s := Status{Group: n.cfg.Group, SelfID: n.cfg.SelfID, Role: n.raft.State().String(), Term: n.raft.CurrentTerm(),
		LeaderID: string(id), LeaderAddr: string(addr), CommitIndex: n.raft.CommitIndex(),
		AppliedIndex: n.fsm.applied.Load(), LastIndex: last, DuplicatesSuppressed: n.dupsSuppressed.Load()}
	if n.fsm.dedup != nil {
		s.DuplicateKeys = n.fsm.dedup.len()
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			ps := PeerStatus{ID: string(srv.ID), Addr: string(srv.Address), Suffrage: srv.Suffrage.String()}
			if srv.ID == raft.ServerID(n.cfg.SelfID) {
				ps.LastIndex = last
			}
			s.Peers = append(s.Peers, ps)
		}
	}
	return s
}

// TransferLeadership hands leadership to toID ("" = any up-to-date peer).
func (n *Node) TransferLeadership(ctx context.Context, toID string) error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	var fut raft.Future
	if toID == "" {
		fut = n.raft.LeadershipTransfer()
	} else {
		addr := ""
		for _, p := range n.cfg.Peers {
			if p.ID == toID {
				addr = p.Addr
			}
		}
		if f := n.raft.GetConfiguration(); f.Error() == nil {
			for _, srv := range f.Configuration().Servers {
				if string(srv.ID) == toID {
					addr = string(srv.Address)
				}
			}
		}
		if addr == "" {
			return fmt.Errorf("dledger: unknown peer %q", toID)
		}
		fut = n.raft.LeadershipTransferToServer(raft.ServerID(toID), raft.ServerAddress(addr))
	}
	n.gate.close()
	if err := futureError(ctx, fut); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("dledger: leadership transfer: %w", err)
	}
	return nil
}

// WaitLeader waits until some leader is known.
func (n *Node) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.ctx.Done():
			return ErrClosed
		case <-t.C:
		}
	}
}

// CommitLog returns the commitlog store (nil in package tests that replace it).
func (n *Node) CommitLog() *commitlog.Store { return n.cl }

// ConsumeQueue returns the consume queue store.
func (n *Node) ConsumeQueue() *consumequeue.Store { return n.cq }

// Index returns the index file service.
func (n *Node) Index() *indexfile.Service { return n.idx }

// SelfOrdinal is the index of SelfID in Peers (followers register as
// brokerId 1+ordinal).
func (n *Node) SelfOrdinal() int { return n.cfg.ordinal() }

// Close transfers leadership first if leader, stops raft, checkpoints and
// closes the stores cleanly.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() {
		if len(n.cfg.Peers) > 1 && n.raft.State() == raft.Leader {
			tctx, cancel := context.WithTimeout(ctx, 2*n.raftTimeout())
			if err := n.TransferLeadership(tctx, ""); err != nil {
				n.log.Warn("leadership transfer before close failed", "error", err)
			}
			cancel()
		}
		n.gate.close()
		var errs []error
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
		n.cancel()
		n.wg.Wait()
		n.subs.close()
		if err := n.fsm.checkpoint(); err != nil {
			errs = append(errs, err)
		}
		if c, ok := n.trans.(interface{ Close() error }); ok && n.cfg.Transport == nil {
			c.Close()
		}
		errs = append(errs, n.closeStores())
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

func (n *Node) raftTimeout() time.Duration {
	return orDefault(n.cfg.ElectionTimeout, 500*time.Millisecond) * 2
}

// closeStores closes whatever was opened.
func (n *Node) closeStores() error {
	var errs []error
	if n.stable != nil {
		errs = append(errs, n.stable.Close())
	}
	if n.idx != nil {
		errs = append(errs, n.idx.Close())
	}
	if n.cq != nil {
		errs = append(errs, n.cq.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	return errors.Join(errs...)
}

// watchLeadership drives the write gate. raft's LeaderCh drops
// transitions, so an observer plus a poll of State and CurrentTerm make
// sure every term change is seen.
func (n *Node) watchLeadership() {
	obsCh := make(chan raft.Observation, 16)
	obs := raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	var last LeadershipEvent
	first := true
	for {
		ev := n.reconcile()
		if first || ev != last {
			if ev.Leader != last.Leader || ev.Term != last.Term {
				metrics.IncrCounter([]string{"dledger", "leadership", "changes"}, 1)
			}
			n.log.Info("leadership", "leader", ev.Leader, "term", ev.Term, "leader_id", ev.LeaderID)
			n.subs.publish(ev)
			last, first = ev, false
		}
		select {
		case <-n.ctx.Done():
			return
		case <-obsCh:
		case <-n.raft.LeaderCh():
		case <-poll.C:
		}
	}
}

// reconcile brings the gate in line with raft's state: closed unless this
// node leads the current term and a Barrier in that term has completed.
func (n *Node) reconcile() LeadershipEvent {
	term := n.raft.CurrentTerm()
	if n.raft.State() != raft.Leader {
		n.gate.close()
	} else if n.gate.openFor() != term {
		n.gate.close()
		// Barrier: every entry of earlier terms is applied and dispatched,
		// so the CQ max offsets are exact when next[] is refilled.
		err := futureError(n.ctx, n.raft.Barrier(n.raftTimeout()*5))
		if err == nil {
			// Retries of sends from before the restart must be recognised.
			select {
			case <-n.dedupReady:
			case <-n.ctx.Done():
				err = ErrClosed
			}
		}
		if err == nil && n.raft.State() == raft.Leader && n.raft.CurrentTerm() == term {
			n.gate.open(term)
			metrics.IncrCounter([]string{"dledger", "leadership", "elected"}, 1)
		} else if err != nil {
			n.log.Warn("barrier after election failed", "term", term, "error", err)
		}
	}
	addr, id := n.raft.LeaderWithID()
	return LeadershipEvent{Leader: n.IsLeader(), Term: n.raft.CurrentTerm(), LeaderID: string(id), LeaderAddr: string(addr)}
}
