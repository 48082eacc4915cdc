package dledger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
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
	Index          uint64 // raft index of the entry
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
	n := &Node{cfg: cfg, log: cfg.Logger.Named("dledger"), subs: newSubscribers()}
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
		n.store = n.cl
	}
	if err != nil {
		return fmt.Errorf("dledger: open commitlog: %w", err)
	}
	segSize := cfg.SegmentSize
	if segSize == 0 {
		segSize = commitlog.DefaultSegmentSize
	}
	n.fsm = &fsm{log: n.log, store: n.store, cq: n.cq, idx: n.idx, meta: cfg.Meta, segmentSize: segSize,
		tagsCode: cfg.TagsCode, queues: map[queueKey]int64{}}

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
	if n.cl != nil {
		policy := commitlog.DefaultRetentionPolicy()
		policy.FileReservedTime, policy.DeleteWhenHour = cfg.FileReservedTime, cfg.DeleteWhenHour
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.cl.RunRetention(n.ctx, policy, n.safeIndex) }()
	}
	n.wg.Add(3)
	go func() { defer n.wg.Done(); n.app.run() }()
	go func() { defer n.wg.Done(); n.watchLeadership() }()
	go func() { defer n.wg.Done(); n.runFlusher() }()
	return nil
}

// recover truncates CQ/index past the log end and self-replays committed
// entries from the store (notes §4.10): metadata from the latest snapshot,
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

// safeIndex bounds retention (notes §4.8): never delete above the latest
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
	size := 0
	for i, b := range records {
		if _, err := parseRecord(b); err != nil {
			return nil, fmt.Errorf("dledger: record %d: %w", i, err)
		}
		size += len(b)
	}
	if size+payloadHeaderSize > n.cfg.MaxEntryBytes {
		return nil, fmt.Errorf("dledger: %d bytes of records exceed the entry limit %d", size, n.cfg.MaxEntryBytes)
	}
	if !n.IsLeader() {
		return nil, n.notLeader()
	}
	return n.app.submit(ctx, records, size)
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
			return nil, ctx.Err()
		}
		return nil, mapRaftErr(err, notLeader)
	}
	return fut.Response(), nil
}

func mapRaftErr(err error, notLeader func() error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrAbortedByRestore):
		return notLeader()
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	}
	return err
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
		AppliedIndex: n.fsm.applied.Load(), LastIndex: last}
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
