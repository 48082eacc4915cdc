package dledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/commitlog/consumequeue"
	"github.com/raftmq/raftmq/message"
)

// useRealCommitlog selects the real commitlog package instead of the
// in-memory fake (memLog) for the cluster tests.
var useRealCommitlog = os.Getenv("DLEDGER_FAKE_LOG") == "" && realCommitlogWorks()

func realCommitlogWorks() bool {
	dir, err := os.MkdirTemp("", "dledger-probe")
	if err != nil {
		return false
	}
	defer os.RemoveAll(dir)
	s, err := commitlog.Open(commitlog.Options{RootDir: dir, SegmentSize: 1 << 20})
	if err != nil {
		return false
	}
	s.Close()
	return true
}

// testMeta is a MetaStateMachine: "key=value" commands into a map.
type testMeta struct {
	mu sync.Mutex
	kv map[string]string
}

func newTestMeta() *testMeta { return &testMeta{kv: map[string]string{}} }

func (m *testMeta) ApplyMeta(index uint64, cmd []byte) interface{} {
	k, v, _ := strings.Cut(string(cmd), "=")
	m.mu.Lock()
	m.kv[k] = v
	m.mu.Unlock()
	return index
}

func (m *testMeta) SnapshotMeta() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var lines []string
	for k, v := range m.kv {
		lines = append(lines, k+"="+v)
	}
	sort.Strings(lines)
	return []byte(strings.Join(lines, "\n")), nil
}

func (m *testMeta) RestoreMeta(data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kv = map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m.kv[k] = v
		}
	}
	return nil
}

func (m *testMeta) get(k string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.kv[k]
}

// testCluster runs n nodes in-process over InmemTransport (links can be
// cut) or loopback TCP.
type testCluster struct {
	t     testing.TB
	tcp   bool
	peers []Peer
	dirs  []string
	disks []*memDisk
	trans []raft.Transport
	nodes []*Node
	metas []*testMeta
	cut   map[[2]int]bool
	mu    sync.Mutex // guards nodes against the load goroutines
	// prodTimeouts uses the config sheet's raft timeouts (benchmarks).
	prodTimeouts bool
	// logCache overrides Config.LogCacheEntries for nodes started later.
	logCache int
	// tweak, if set, edits every node's config before it opens.
	tweak func(*Config)
}

func (c *testCluster) setNode(i int, n *Node) {
	c.mu.Lock()
	c.nodes[i] = n
	c.mu.Unlock()
}

func newCluster(t testing.TB, n int, tcp bool) *testCluster {
	return newClusterWith(t, n, tcp, false)
}

// newClusterTweaked is an in-memory cluster whose configs pass through tweak.
func newClusterTweaked(t testing.TB, n int, tweak func(*Config)) *testCluster {
	return newClusterOf(t, n, false, false, tweak)
}

func newClusterWith(t testing.TB, n int, tcp, prodTimeouts bool) *testCluster {
	return newClusterOf(t, n, tcp, prodTimeouts, nil)
}

func newClusterOf(t testing.TB, n int, tcp, prodTimeouts bool, tweak func(*Config)) *testCluster {
	c := &testCluster{t: t, tcp: tcp, cut: map[[2]int]bool{}, prodTimeouts: prodTimeouts, tweak: tweak}
	for i := 0; i < n; i++ {
		c.dirs = append(c.dirs, t.TempDir())
		c.disks = append(c.disks, &memDisk{})
		c.metas = append(c.metas, newTestMeta())
		c.nodes = append(c.nodes, nil)
		c.trans = append(c.trans, nil)
		id := fmt.Sprintf("n%d", i)
		if tcp {
			tr, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 3, 5*time.Second, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			c.trans[i] = tr
			c.peers = append(c.peers, Peer{ID: id, Addr: string(tr.LocalAddr())})
		} else {
			c.peers = append(c.peers, Peer{ID: id, Addr: "inmem-" + id})
		}
	}
	for i := range c.nodes {
		c.start(i)
	}
	t.Cleanup(func() {
		for i, n := range c.nodes {
			if n != nil {
				c.setNode(i, nil)
				n.abandon()
			}
		}
	})
	return c
}

func (c *testCluster) config(i int) Config {
	cfg := Config{
		Group: "g", SelfID: c.peers[i].ID, Peers: c.peers, StoreDir: c.dirs[i],
		SegmentSize: 1 << 20, Flush: commitlog.FlushSync,
		HeartbeatTimeout: 150 * time.Millisecond, ElectionTimeout: 150 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond, CommitTimeout: 2 * time.Millisecond,
		SnapshotInterval: 200 * time.Millisecond, SnapshotThreshold: 64,
		Meta:   c.metas[i],
		Logger: hclog.New(&hclog.LoggerOptions{Name: c.peers[i].ID, Level: hclog.Warn, Output: testWriter{c.t}}),
	}
	cfg.LogCacheEntries = c.logCache
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	if c.prodTimeouts {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout, cfg.CommitTimeout = 0, 0, 0, 0
		cfg.SnapshotInterval, cfg.SnapshotThreshold, cfg.SegmentSize = 0, 0, 64<<20
	}
	if !useRealCommitlog {
		d := c.disks[i]
		cfg.openLog = func(o commitlog.Options) (logStore, error) { return &memLog{d: d, hook: o.Hook}, nil }
	}
	return cfg
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// start opens node i (fresh transport, reconnected to every live peer).
func (c *testCluster) start(i int) {
	c.t.Helper()
	cfg := c.config(i)
	if c.tcp {
		if c.trans[i] == nil {
			tr, err := raft.NewTCPTransportWithLogger(c.peers[i].Addr, nil, 3, 5*time.Second, hclog.NewNullLogger())
			if err != nil {
				c.t.Fatal(err)
			}
			c.trans[i] = tr
		}
		cfg.Transport = c.trans[i]
	} else {
		_, tr := raft.NewInmemTransportWithTimeout(raft.ServerAddress(c.peers[i].Addr), 200*time.Millisecond)
		c.trans[i] = tr
		cfg.Transport = tr
		c.relink()
	}
	n, err := Open(cfg)
	if err != nil {
		c.t.Fatalf("open n%d: %v", i, err)
	}
	c.setNode(i, n)
}

// relink (re)connects every pair of in-memory transports not cut.
func (c *testCluster) relink() {
	for a, ta := range c.trans {
		for b, tb := range c.trans {
			if a == b || ta == nil || tb == nil {
				continue
			}
			ia := ta.(*raft.InmemTransport)
			if c.cut[[2]int{a, b}] {
				ia.Disconnect(raft.ServerAddress(c.peers[b].Addr))
			} else {
				ia.Connect(raft.ServerAddress(c.peers[b].Addr), tb)
			}
		}
	}
}

// isolate cuts (or heals) every link of node i.
func (c *testCluster) isolate(i int, cut bool) {
	for j := range c.nodes {
		if j != i {
			c.cut[[2]int{i, j}], c.cut[[2]int{j, i}] = cut, cut
		}
	}
	c.relink()
}

// crash stops node i as a crash would: no transfer, no checkpoint.
func (c *testCluster) crash(i int) {
	n := c.nodes[i]
	c.setNode(i, nil)
	n.abandon()
	if c.tcp {
		c.trans[i].(*raft.NetworkTransport).Close()
	}
	c.trans[i] = nil
}

// stop closes node i cleanly.
func (c *testCluster) stop(i int) {
	n := c.nodes[i]
	c.setNode(i, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		c.t.Errorf("close n%d: %v", i, err)
	}
	if c.tcp {
		c.trans[i].(*raft.NetworkTransport).Close()
	}
	c.trans[i] = nil
}

// abandon stops raft and the node's goroutines and releases files without
// the clean-shutdown steps (no transfer, no final checkpoint).
func (n *Node) abandon() {
	n.closeOnce.Do(func() {
		n.gate.close()
		n.raft.Shutdown().Error()
		n.cancel()
		n.wg.Wait()
		n.subs.close()
		n.closeStores()
		n.closeErr = ErrClosed
	})
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// leader waits for a node with an open write gate.
func (c *testCluster) leader() int {
	c.t.Helper()
	idx := -1
	waitFor(c.t, "a leader", 20*time.Second, func() bool {
		for i, n := range c.nodes {
			if n != nil && n.IsLeader() {
				idx = i
				return true
			}
		}
		return false
	})
	return idx
}

// converge waits until every live node has applied the same last index
// and holds a byte-identical log (an election may append a no-op while we
// compare, so both are polled together).
func (c *testCluster) converge() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.applied()
		if c.identical() {
			return
		}
		if time.Now().After(deadline) {
			c.checkIdentical()
			c.t.Fatal("logs never became identical")
		}
	}
}

// applied waits until every live node has applied the same last index.
func (c *testCluster) applied() {
	c.t.Helper()
	waitFor(c.t, "replicas to converge", 30*time.Second, func() bool {
		var want uint64
		for _, n := range c.nodes {
			if n == nil {
				continue
			}
			last, _ := n.store.LastIndex()
			if want == 0 {
				want = last
			}
			if last != want || n.raft.AppliedIndex() != last || n.fsm.applied.Load() != lastFSMIndex(n) {
				return false
			}
		}
		return true
	})
}

// makeRecord encodes one stored record whose body is body.
func makeRecord(t testing.TB, topic string, qid int32, body string, keys string) []byte {
	props := map[string]string{"UNIQ_KEY": "U" + body, "TAGS": "tagA"}
	if keys != "" {
		props["KEYS"] = keys
	}
	e := &message.Ext{Message: message.Message{Topic: topic, Properties: props, Body: []byte(body)}, QueueID: qid,
		BornTimestamp: 1, BornHost: netip.MustParseAddrPort("127.0.0.1:1000"), StoreHost: netip.MustParseAddrPort("127.0.0.1:2000")}
	b, err := message.AppendRecord(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// queueMsg is one message as read back from a node's ConsumeQueue.
type queueMsg struct {
	offset int64
	entry  consumequeue.Entry
	body   string
}

// readQueue reads every message of (topic, qid) through the CQ and the log.
func readQueue(t testing.TB, n *Node, topic string, qid int32) []queueMsg {
	t.Helper()
	return readQueueFrom(t, n, topic, qid, n.cq.MinOffset(topic, qid))
}

// readQueueFrom reads (topic, qid) from offset min.
func readQueueFrom(t testing.TB, n *Node, topic string, qid int32, min int64) []queueMsg {
	t.Helper()
	ents, err := n.cq.Read(topic, qid, min, 1<<20, nil)
	if err != nil {
		t.Fatalf("read cq %s/%d: %v", topic, qid, err)
	}
	out := make([]queueMsg, 0, len(ents))
	for i, e := range ents {
		buf := make([]byte, e.Size)
		if _, err := n.store.ReadAt(buf, e.PhysOffset); err != nil {
			t.Fatalf("read message at %d: %v", e.PhysOffset, err)
		}
		r, err := message.ParseRecord(buf)
		if err != nil {
			t.Fatalf("message at %d: %v", e.PhysOffset, err)
		}
		if r.QueueOffset() != min+int64(i) || r.PhysicalOffset() != e.PhysOffset || r.QueueID() != qid || r.Topic() != topic {
			t.Fatalf("message at cq %s/%d@%d: record says qo=%d phys=%d (cq phys %d) q=%s/%d", topic, qid, min+int64(i),
				r.QueueOffset(), r.PhysicalOffset(), e.PhysOffset, r.Topic(), r.QueueID())
		}
		out = append(out, queueMsg{offset: min + int64(i), entry: e, body: string(r.Body())})
	}
	return out
}

// loadGen runs one submitter per queue against whoever leads; each message
// is submitted once (no retry), so an acknowledged message must appear
// exactly once and in submission order.
type loadGen struct {
	c      *testCluster
	topic  string
	mu     sync.Mutex
	acked  map[int32][]string
	errs   int
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (c *testCluster) startLoad(topic string, queues int) *loadGen {
	return c.startLoadPad(topic, queues, 0)
}

// startLoadPad is startLoad with pad bytes of filler in every body.
func (c *testCluster) startLoadPad(topic string, queues, pad int) *loadGen {
	filler := strings.Repeat("x", pad)
	ctx, cancel := context.WithCancel(context.Background())
	g := &loadGen{c: c, topic: topic, acked: map[int32][]string{}, cancel: cancel}
	for q := int32(0); q < int32(queues); q++ {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for seq := 0; ctx.Err() == nil; seq++ {
				n := c.anyLeader()
				if n == nil {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				batch := 1 + seq%3
				var recs [][]byte
				var bodies []string
				for k := 0; k < batch; k++ {
					body := fmt.Sprintf("q%d-s%06d-%d%s", q, seq, k, filler)
					bodies = append(bodies, body)
					recs = append(recs, makeRecord(c.t, topic, q, body, "k"+body))
				}
				sctx, scancel := context.WithTimeout(ctx, 3*time.Second)
				res, err := n.AppendMessages(sctx, recs)
				scancel()
				g.mu.Lock()
				if err == nil {
					for k := range res {
						if res[k].QueueOffset != res[0].QueueOffset+int64(k) {
							c.t.Errorf("batch not contiguous: %+v", res)
						}
					}
					g.acked[q] = append(g.acked[q], bodies...)
				} else {
					g.errs++
				}
				g.mu.Unlock()
			}
		}()
	}
	return g
}

func (g *loadGen) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, a := range g.acked {
		n += len(a)
	}
	return n
}

func (g *loadGen) stop() {
	g.cancel()
	g.wg.Wait()
}

func (c *testCluster) anyLeader() *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n != nil && n.IsLeader() {
			return n
		}
	}
	return nil
}

// checkQueues asserts on every live node: each acknowledged message is
// present exactly once and in order, offsets are gap-free, and every node
// holds identical queues.
func (c *testCluster) checkQueues(g *loadGen) {
	c.t.Helper()
	var ref map[int32][]queueMsg
	for i, n := range c.nodes {
		if n == nil {
			continue
		}
		got := map[int32][]queueMsg{}
		for q := range g.acked {
			msgs := readQueue(c.t, n, g.topic, q)
			got[q] = msgs
			pos := map[string]int{}
			for k, m := range msgs {
				if _, dup := pos[m.body]; dup {
					c.t.Fatalf("n%d: %s/%d: %q stored twice", i, g.topic, q, m.body)
				}
				pos[m.body] = k
			}
			prev := -1
			for _, b := range g.acked[q] {
				k, ok := pos[b]
				if !ok {
					c.t.Fatalf("n%d: acknowledged %q missing from %s/%d (%d messages)", i, b, g.topic, q, len(msgs))
				}
				if k <= prev {
					c.t.Fatalf("n%d: acknowledged %q out of order", i, b)
				}
				prev = k
			}
		}
		if ref == nil {
			ref = got
			continue
		}
		for q, msgs := range got {
			if len(msgs) != len(ref[q]) {
				c.t.Fatalf("n%d: queue %d has %d messages, first node %d", i, q, len(msgs), len(ref[q]))
			}
			for k := range msgs {
				if msgs[k] != ref[q][k] {
					c.t.Fatalf("n%d: queue %d offset %d differs: %+v vs %+v", i, q, k, msgs[k], ref[q][k])
				}
			}
		}
	}
}

// identical reports whether every live node holds the same log image.
func (c *testCluster) identical() bool {
	var ref []byte
	for i, n := range c.nodes {
		if n == nil {
			continue
		}
		img := c.logImage(i)
		if ref != nil && !bytes.Equal(img, ref) {
			return false
		}
		ref = img
	}
	return true
}

// checkIdentical asserts byte-identical logs on every live node.
func (c *testCluster) checkIdentical() {
	c.t.Helper()
	var ref []byte
	for i, n := range c.nodes {
		if n == nil {
			continue
		}
		img := c.logImage(i)
		if ref == nil {
			ref = img
			continue
		}
		if !bytes.Equal(img, ref) {
			c.describeDiff(i)
			c.t.Fatalf("n%d: log differs from the first live node (%d vs %d bytes)", i, len(img), len(ref))
		}
	}
}

// logImage renders node i's log: with the real commitlog the segment bytes
// up to WriteEnd, with the fake each record's (pos, index, term, type, data).
func (c *testCluster) logImage(i int) []byte {
	n := c.nodes[i]
	if useRealCommitlog {
		end := n.store.WriteEnd()
		start := n.store.MinPos()
		buf := make([]byte, end-start)
		if _, err := n.store.ReadAt(buf, start); err != nil {
			c.t.Fatalf("n%d: read log [%d,%d): %v", i, start, end, err)
		}
		return buf
	}
	var b bytes.Buffer
	for _, r := range c.disks[i].records() {
		fmt.Fprintf(&b, "%d %d %d %d %x\n", r.pos, r.log.Index, r.log.Term, r.log.Type, r.log.Data)
	}
	return b.Bytes()
}

func isRetriable(err error) bool {
	var nl *NotLeaderError
	return errors.As(err, &nl) || errors.Is(err, ErrVoided)
}

// isIndeterminate: the write may or may not have committed; only a
// deduplicated retry (AppendSends) or an idempotent command may repeat it.
func isIndeterminate(err error) bool { return errors.Is(err, ErrIndeterminate) }

var _ = filepath.Join

// lastFSMIndex is the index of the last entry the FSM sees (command or
// configuration; raft keeps no-ops and barriers to itself).
func lastFSMIndex(n *Node) uint64 {
	last, _ := n.store.LastIndex()
	for i := last; i > 0; i-- {
		var l raft.Log
		if n.store.GetLog(i, &l) != nil {
			return 0
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return i
		}
	}
	return 0
}

// describeDiff logs where node i's log first departs from the others.
func (c *testCluster) describeDiff(i int) {
	for j, m := range c.nodes {
		if m == nil || j == i {
			continue
		}
		n := c.nodes[i]
		last, _ := n.store.LastIndex()
		for k := uint64(1); k <= last; k++ {
			var a, b raft.Log
			ea, eb := n.store.GetLog(k, &a), m.store.GetLog(k, &b)
			pa, _ := n.store.RecordPos(k)
			pb, _ := m.store.RecordPos(k)
			if ea != nil || eb != nil || pa != pb || a.Term != b.Term || a.Type != b.Type || !bytes.Equal(a.Data, b.Data) || !a.AppendedAt.Equal(b.AppendedAt) {
				c.t.Logf("n%d vs n%d: first difference at index %d: pos %d/%d term %d/%d type %d/%d len %d/%d at %v/%v err %v/%v",
					i, j, k, pa, pb, a.Term, b.Term, a.Type, b.Type, len(a.Data), len(b.Data), a.AppendedAt, b.AppendedAt, ea, eb)
				return
			}
		}
		c.t.Logf("n%d vs n%d: entries identical; minpos %d/%d end %d/%d", i, j, n.store.MinPos(), m.store.MinPos(), n.store.WriteEnd(), m.store.WriteEnd())
	}
}
