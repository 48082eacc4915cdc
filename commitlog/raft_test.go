package commitlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// countingFSM is a trivial FSM that remembers the last applied index.
type countingFSM struct{ applied atomic.Uint64 }

func (f *countingFSM) Apply(l *raft.Log) interface{} { f.applied.Store(l.Index); return nil }
func (f *countingFSM) Snapshot() (raft.FSMSnapshot, error) {
	return nopSnapshot{}, nil
}
func (f *countingFSM) Restore(r io.ReadCloser) error { return r.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (nopSnapshot) Release()                             {}

// patchHook imitates the broker's hook: the leader stamps the record
// position into bytes 0..7 of a fresh entry (marked by byte 8 == 0) and marks
// it assigned; followers verify the stamp.
func patchHook(l *raft.Log, pos int64) error {
	if l.Type != raft.LogCommand || len(l.Data) < 16 {
		return nil
	}
	if l.Data[8] == 0 {
		binary.BigEndian.PutUint64(l.Data, uint64(pos))
		l.Data[8] = 1
		return nil
	}
	if got := int64(binary.BigEndian.Uint64(l.Data)); got != pos {
		return fmt.Errorf("entry %d stamped for pos %d but lands at %d", l.Index, got, pos)
	}
	return nil
}

type raftNode struct {
	id     raft.ServerID
	dir    string
	store  *Store
	trans  *raft.InmemTransport
	stable *raft.InmemStore
	snaps  *raft.InmemSnapshotStore
	fsm    *countingFSM
	raft   *raft.Raft
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

func TestRaftClusterTruncatesDeposedLeaderAndConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("raft cluster test")
	}
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: io.Discard})
	var nodes []*raftNode
	var servers []raft.Server
	for i := 0; i < 3; i++ {
		id := raft.ServerID(fmt.Sprintf("n%d", i))
		addr, trans := raft.NewInmemTransport(raft.ServerAddress(id))
		dir := t.TempDir()
		opts := testOpts(dir)
		opts.Hook = patchHook
		nodes = append(nodes, &raftNode{id: id, dir: dir, store: mustOpen(t, opts), trans: trans, fsm: &countingFSM{},
			stable: raft.NewInmemStore(), snaps: raft.NewInmemSnapshotStore()})
		servers = append(servers, raft.Server{ID: id, Address: addr})
	}
	connectAll := func() {
		for _, a := range nodes {
			for _, b := range nodes {
				if a != b {
					a.trans.Connect(b.trans.LocalAddr(), b.trans)
				}
			}
		}
	}
	connectAll()
	start := func(n *raftNode) {
		conf := raft.DefaultConfig()
		conf.LocalID = n.id
		conf.HeartbeatTimeout = 200 * time.Millisecond
		conf.ElectionTimeout = 200 * time.Millisecond
		conf.LeaderLeaseTimeout = 200 * time.Millisecond
		conf.CommitTimeout = 5 * time.Millisecond
		conf.TrailingLogs = 1 << 62
		conf.SnapshotThreshold = 1 << 62
		conf.SnapshotInterval = time.Hour
		conf.MaxAppendEntries = 16
		conf.Logger = logger
		r, err := raft.NewRaft(conf, n.fsm, n.store, n.stable, n.snaps, n.trans)
		if err != nil {
			t.Fatal(err)
		}
		n.raft = r
	}
	for _, n := range nodes {
		start(n)
	}
	defer func() {
		for _, n := range nodes {
			n.raft.Shutdown().Error()
			n.store.Close()
		}
	}()
	if err := nodes[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatal(err)
	}
	leader := func(exclude *raftNode) *raftNode {
		var found *raftNode
		waitFor(t, "a leader", 10*time.Second, func() bool {
			for _, n := range nodes {
				if n != exclude && n.raft.State() == raft.Leader {
					found = n
					return true
				}
			}
			return false
		})
		return found
	}
	entry := func(i int) []byte { return make([]byte, 16+(i*7919)%3000) }
	// apply commits count entries through n, retrying through whichever
	// node leads (exclude never) if leadership moves on a loaded machine.
	apply := func(n *raftNode, exclude *raftNode, from, count int) {
		pending := make([]int, 0, count)
		for i := from; i < from+count; i++ {
			pending = append(pending, i)
		}
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt == 20 {
				t.Fatalf("could not commit %d entries", len(pending))
			}
			futs := make([]raft.ApplyFuture, len(pending))
			for k, i := range pending {
				futs[k] = n.raft.Apply(entry(i), 5*time.Second)
			}
			var failed []int
			for k, f := range futs {
				if err := f.Error(); err != nil {
					failed = append(failed, pending[k])
				}
			}
			pending = failed
			if len(pending) > 0 {
				n = leader(exclude)
			}
		}
	}
	converged := func(what string) {
		waitFor(t, what, 20*time.Second, func() bool {
			want := nodes[0].raft.LastIndex()
			for _, n := range nodes {
				li, _ := n.store.LastIndex()
				if li != want || n.fsm.applied.Load() < want-1 {
					return false
				}
			}
			return true
		})
	}

	// Isolate the leader and make it append entries nobody else gets. On a
	// loaded machine it can lose its lease before its loop takes them; then
	// heal, let the group settle and isolate whoever leads next.
	var l1 *raftNode
	var isolatedFrom uint64
	var wg sync.WaitGroup
	for attempt := 0; ; attempt++ {
		if attempt == 5 {
			t.Fatal("no isolated leader appended locally in 5 attempts")
		}
		l1 = leader(nil)
		apply(l1, nil, attempt*1000, 300)
		converged("first batch replicated")
		for _, n := range nodes {
			if n != l1 {
				n.trans.Disconnect(l1.trans.LocalAddr())
			}
		}
		l1.trans.DisconnectAll()
		isolatedFrom, _ = l1.store.LastIndex()
		for i := 0; i < 40; i++ {
			f := l1.raft.Apply(entry(10000+i), 300*time.Millisecond)
			wg.Add(1)
			go func() { defer wg.Done(); _ = f.Error() }() // these must fail or time out
		}
		appended := false
		deadline := time.Now().Add(5 * time.Second)
		for !appended && time.Now().Before(deadline) {
			li, _ := l1.store.LastIndex()
			appended = li > isolatedFrom
			time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
		}
		if appended {
			break
		}
		wg.Wait()
		connectAll()
	}
	isolatedTo, _ := l1.store.LastIndex()
	var stale raft.Log
	if err := l1.store.GetLog(isolatedTo, &stale); err != nil {
		t.Fatal(err)
	}

	l2 := leader(l1)
	apply(l2, l1, 20000, 150)
	wg.Wait()

	connectAll()
	converged("cluster converged after reconnect")
	apply(leader(nil), nil, 30000, 50)
	converged("cluster converged after more writes")

	// Restart a follower from its files while the others keep writing.
	var f *raftNode
	for _, n := range nodes {
		if n.raft.State() != raft.Leader {
			f = n
			break
		}
	}
	if err := f.raft.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	apply(leader(f), f, 40000, 60)
	opts := testOpts(f.dir)
	opts.Hook = patchHook
	f.store = mustOpen(t, opts)
	f.fsm = &countingFSM{}
	start(f)
	apply(leader(nil), nil, 50000, 30)
	converged("cluster converged after a follower restart")

	// The deposed leader's unreplicated tail was replaced.
	var now raft.Log
	if err := l1.store.GetLog(isolatedTo, &now); err != nil {
		t.Fatal(err)
	}
	if now.Term == stale.Term && bytes.Equal(now.Data, stale.Data) {
		t.Fatalf("entry %d on the deposed leader was not replaced (term %d)", isolatedTo, now.Term)
	}

	// Byte-identical segment files up to WriteEnd on every node.
	ref := nodes[0].store
	end := ref.WriteEnd()
	for _, n := range nodes[1:] {
		if n.store.WriteEnd() != end || n.store.MinPos() != ref.MinPos() {
			t.Fatalf("%s: range [%d,%d), node 0 [%d,%d)", n.id, n.store.MinPos(), n.store.WriteEnd(), ref.MinPos(), end)
		}
	}
	for start := int64(0); start < end; start += testSeg {
		want := readSegmentPrefix(t, nodes[0].dir, start, end)
		for _, n := range nodes[1:] {
			if got := readSegmentPrefix(t, n.dir, start, end); !bytes.Equal(got, want) {
				t.Fatalf("segment %d differs between n0 and %s", start, n.id)
			}
		}
	}
}

// readSegmentPrefix reads the segment file at start up to the global offset end.
func readSegmentPrefix(t *testing.T, dir string, start, end int64) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "commitlog", segmentName(start)))
	if err != nil {
		t.Fatal(err)
	}
	if n := end - start; n < int64(len(b)) {
		b = b[:n]
	}
	return b
}
