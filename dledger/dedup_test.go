package dledger

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/message"
)

// testClock is a settable clock for the duplicate window.
type testClock struct{ ms atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ms.Store(time.Now().UnixMilli())
	return c
}

func (c *testClock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *testClock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// observeAt records a committed record for body stored at ms.
func observeAt(t *testing.T, tab *dedupTable, topic, body string, phys, ms int64) {
	t.Helper()
	tab.observe(message.Record(makeRecord(t, topic, 0, body, "")), phys, ms)
}

func lookup(t *testing.T, tab *dedupTable, topic, body string) (int64, bool) {
	t.Helper()
	h, ok := tab.keyOf(message.Record(makeRecord(t, topic, 0, body, "")))
	if !ok {
		t.Fatal("record has no UNIQ_KEY")
	}
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return tab.lookupLocked(h, tab.cutoff())
}

func TestDedupTableWindow(t *testing.T) {
	clk := newTestClock()
	tab := newDedupTable(2*time.Minute, 100, clk.now)
	now := clk.ms.Load()
	observeAt(t, tab, "T", "a", 100, now)
	observeAt(t, tab, "T", "old", 200, now-3*time.Minute.Milliseconds()) // committed outside the window
	if p, ok := lookup(t, tab, "T", "a"); !ok || p != 100 {
		t.Fatalf("a: %d %v", p, ok)
	}
	if _, ok := lookup(t, tab, "T", "old"); ok || tab.len() != 1 {
		t.Fatalf("a record older than the window is remembered (len %d)", tab.len())
	}
	if _, ok := lookup(t, tab, "U", "a"); ok {
		t.Fatal("the same UNIQ_KEY in another topic is a duplicate")
	}
	clk.advance(2*time.Minute - time.Second)
	if _, ok := lookup(t, tab, "T", "a"); !ok {
		t.Fatal("a forgotten inside the window")
	}
	clk.advance(2 * time.Second)
	if _, ok := lookup(t, tab, "T", "a"); ok {
		t.Fatal("a remembered after the window")
	}
	observeAt(t, tab, "T", "b", 300, clk.ms.Load()) // inserting evicts what expired
	if tab.len() != 1 {
		t.Fatalf("len %d after expiry, want 1", tab.len())
	}
	// An expired key committed again is remembered at its new place.
	observeAt(t, tab, "T", "a", 400, clk.ms.Load())
	if p, ok := lookup(t, tab, "T", "a"); !ok || p != 400 {
		t.Fatalf("a re-committed: %d %v", p, ok)
	}
	if newDedupTable(0, 100, nil) != nil {
		t.Fatal("window 0 must disable the table")
	}
}

func TestDedupTableMaxEntriesEvictsOldest(t *testing.T) {
	clk := newTestClock()
	tab := newDedupTable(time.Hour, 3, clk.now)
	for i := range 5 {
		observeAt(t, tab, "T", fmt.Sprint(i), int64(i*100), clk.ms.Load())
	}
	if tab.len() != 3 {
		t.Fatalf("len %d, want 3", tab.len())
	}
	for i := range 5 {
		_, ok := lookup(t, tab, "T", fmt.Sprint(i))
		if ok != (i >= 2) {
			t.Fatalf("key %d remembered=%v", i, ok)
		}
	}
}

func TestDedupTableFirstCommitWins(t *testing.T) {
	clk := newTestClock()
	tab := newDedupTable(time.Hour, 10, clk.now)
	observeAt(t, tab, "T", "a", 100, clk.ms.Load())
	observeAt(t, tab, "T", "a", 900, clk.ms.Load()) // e.g. a broker re-append of the same message
	if p, _ := lookup(t, tab, "T", "a"); p != 100 {
		t.Fatalf("phys %d, want the first record's 100", p)
	}
	// Ten newer keys push a out of a table of ten.
	for i := range 9 {
		observeAt(t, tab, "T", fmt.Sprint(i), int64(1000+i), clk.ms.Load())
	}
	if _, ok := lookup(t, tab, "T", "a"); !ok {
		t.Fatal("a evicted too early: the refused second insert took a slot")
	}
	for i := 9; i < 10; i++ {
		observeAt(t, tab, "T", fmt.Sprint(i), int64(1000+i), clk.ms.Load())
	}
	if _, ok := lookup(t, tab, "T", "a"); ok {
		t.Fatal("a outlived the count bound")
	}
}

// The start-up scan's keys go in front of those the FSM observed meanwhile:
// they are older, win over a newer record of the same key, and are evicted
// first.
func TestDedupTablePrependOlder(t *testing.T) {
	clk := newTestClock()
	tab := newDedupTable(time.Hour, 4, clk.now)
	now := clk.ms.Load()
	observeAt(t, tab, "T", "new1", 500, now)
	observeAt(t, tab, "T", "old1", 600, now) // e.g. a re-append of old1, observed after the restart
	hash := func(body string) uint64 {
		h, _ := tab.keyOf(message.Record(makeRecord(t, "T", 0, body, "")))
		return h
	}
	tab.prepend([]dedupSeen{{hash("old0"), 100, now}, {hash("old1"), 200, now}, {hash("old1"), 300, now}}, tab.cutoff())
	if p, _ := lookup(t, tab, "T", "old1"); p != 200 {
		t.Fatalf("old1 at %d, want its first commit at 200", p)
	}
	if p, _ := lookup(t, tab, "T", "new1"); p != 500 {
		t.Fatalf("new1 at %d", p)
	}
	// Bound 4: the table holds old0, old1, new1, (stale old1@600); one more
	// key evicts old0 first.
	observeAt(t, tab, "T", "new2", 700, now)
	if _, ok := lookup(t, tab, "T", "old0"); ok {
		t.Fatal("the oldest key was not evicted first")
	}
	if _, ok := lookup(t, tab, "T", "new2"); !ok {
		t.Fatal("new2 missing")
	}
}

func beginKeys(t *testing.T, tab *dedupTable, ctx context.Context, bodies ...string) ([]int64, *dedupClaim, error) {
	t.Helper()
	keys, has := make([]uint64, len(bodies)), make([]bool, len(bodies))
	for i, b := range bodies {
		keys[i], has[i] = tab.keyOf(message.Record(makeRecord(t, "T", 0, b, "")))
	}
	return tab.begin(ctx, keys, has, nil)
}

// A second send of a key in flight waits for the first: if the first
// commits it is a duplicate, if the first fails it proceeds.
func TestDedupClaimWaitsForTheFirst(t *testing.T) {
	clk := newTestClock()
	tab := newDedupTable(time.Hour, 10, clk.now)
	ctx := context.Background()
	for _, commit := range []bool{true, false} {
		body := fmt.Sprint("k", commit)
		_, first, err := beginKeys(t, tab, ctx, body)
		if err != nil || first == nil {
			t.Fatalf("first claim: %v %v", first, err)
		}
		type out struct {
			phys  []int64
			claim *dedupClaim
		}
		second := make(chan out, 1)
		go func() {
			p, c, err := beginKeys(t, tab, ctx, body)
			if err != nil {
				t.Error(err)
			}
			second <- out{p, c}
		}()
		select {
		case o := <-second:
			t.Fatalf("commit=%v: second did not wait for the first: %+v", commit, o)
		case <-time.After(50 * time.Millisecond): // it is blocked (checked again below by its result)
		}
		if commit {
			observeAt(t, tab, "T", body, 4242, clk.ms.Load()) // the FSM applies before release
		}
		tab.release(first)
		o := <-second
		if commit && (o.phys[0] != 4242 || o.claim != nil) {
			t.Fatalf("after a commit the second must be answered from the table: %+v", o)
		}
		if !commit && (o.phys[0] != -1 || o.claim == nil) {
			t.Fatalf("after a failure the second must proceed with its own claim: %+v", o)
		}
		if o.claim != nil {
			tab.release(o.claim)
		}
	}
	// A waiter whose deadline passes does not know the outcome either.
	_, first, _ := beginKeys(t, tab, ctx, "slow")
	dctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, err := beginKeys(t, tab, dctx, "slow"); !errors.Is(err, ErrIndeterminate) {
		t.Fatalf("waiter past its deadline: %v, want ErrIndeterminate", err)
	}
	tab.release(first)
}

// Many concurrent sends of one key: exactly one claims it.
func TestDedupClaimConcurrent(t *testing.T) {
	clk := newTestClock()
	tab := newDedupTable(time.Hour, 10, clk.now)
	var claims, hits atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, c, err := beginKeys(t, tab, context.Background(), "x", "y")
			if err != nil {
				t.Error(err)
				return
			}
			if c != nil {
				claims.Add(1)
				observeAt(t, tab, "T", "x", 1, clk.ms.Load())
				observeAt(t, tab, "T", "y", 2, clk.ms.Load())
				tab.release(c)
				return
			}
			if p[0] == 1 && p[1] == 2 {
				hits.Add(1)
			}
		}()
	}
	wg.Wait()
	if claims.Load() != 1 || hits.Load() != 31 {
		t.Fatalf("%d claims and %d hits, want 1 and 31", claims.Load(), hits.Load())
	}
}

func TestMapRaftErrSeparatesIndeterminate(t *testing.T) {
	notLeader := func() error { return &NotLeaderError{} }
	for _, c := range []struct {
		err           error
		indeterminate bool
	}{
		{raft.ErrNotLeader, false},
		{raft.ErrLeadershipTransferInProgress, false},
		{raft.ErrEnqueueTimeout, false},
		{raft.ErrLeadershipLost, true},
		{raft.ErrRaftShutdown, true},
		{ErrClosed, true},
	} {
		got := mapRaftErr(c.err, notLeader)
		var nl *NotLeaderError
		if errors.Is(got, ErrIndeterminate) != c.indeterminate || errors.As(got, &nl) == c.indeterminate {
			t.Errorf("%v mapped to %v", c.err, got)
		}
	}
}

func dedupCluster(t *testing.T, tweak func(*Config)) (*testCluster, *testClock) {
	clk := newTestClock()
	c := newClusterTweaked(t, 3, func(cfg *Config) {
		cfg.DuplicateWindow = 2 * time.Minute
		cfg.now = clk.now
		if tweak != nil {
			tweak(cfg)
		}
	})
	return c, clk
}

// bodiesOf reads a queue's bodies on every live node and checks they agree.
func bodiesOf(t *testing.T, c *testCluster, topic string, qid int32) []string {
	t.Helper()
	var want []string
	for i, n := range c.nodes {
		if n == nil {
			continue
		}
		var got []string
		for _, m := range readQueue(t, n, topic, qid) {
			got = append(got, m.body)
		}
		if want == nil {
			want = got
		} else if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("n%d holds %v, another node %v", i, got, want)
		}
	}
	return want
}

// A key committed under the old leader is known to the new one: the retry is
// answered with the original and nothing is stored twice. Batches are
// checked per item; a partly known batch stores only its new items.
func TestSendsDeduplicatedAfterFailover(t *testing.T) {
	c, _ := dedupCluster(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	single := [][]byte{makeRecord(t, "T", 0, "s1", "")}
	batch := [][]byte{makeRecord(t, "T", 0, "b1", ""), makeRecord(t, "T", 0, "b2", "")}
	first, old, err := c.sendOnLeader(ctx, single)
	if err != nil {
		t.Fatal(err)
	}
	firstBatch, _, err := c.sendOnLeader(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if first[0].Duplicate || firstBatch[0].Duplicate {
		t.Fatal("a first send reported as a duplicate")
	}
	c.converge()
	c.crash(old)

	again, l, err := c.sendOnLeader(ctx, single)
	if err != nil {
		t.Fatal(err)
	}
	if l == old {
		t.Fatal("no new leader")
	}
	if !again[0].Duplicate || again[0].PhysicalOffset != first[0].PhysicalOffset || again[0].QueueOffset != first[0].QueueOffset ||
		again[0].StoreTimestamp != first[0].StoreTimestamp || message.Record(again[0].Record).Topic() != "T" {
		t.Fatalf("retry after failover: %+v, original %+v", again[0], first[0])
	}
	againBatch, _, err := c.sendOnLeader(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i := range batch {
		if !againBatch[i].Duplicate || againBatch[i].PhysicalOffset != firstBatch[i].PhysicalOffset {
			t.Fatalf("batch retry item %d: %+v, original %+v", i, againBatch[i], firstBatch[i])
		}
	}
	mixed, _, err := c.sendOnLeader(ctx, [][]byte{batch[1], makeRecord(t, "T", 0, "b3", "")})
	if err != nil {
		t.Fatal(err)
	}
	if !mixed[0].Duplicate || mixed[0].PhysicalOffset != firstBatch[1].PhysicalOffset || mixed[1].Duplicate || mixed[1].QueueOffset != 3 {
		t.Fatalf("partly known batch: %+v", mixed)
	}
	// Internal appends are never deduplicated.
	if res, _, err := c.appendOnLeader(ctx, single); err != nil || res[0].Duplicate {
		t.Fatalf("AppendMessages of a known key: %+v %v", res, err)
	}
	c.converge()
	if got := bodiesOf(t, c, "T", 0); fmt.Sprint(got) != "[s1 b1 b2 b3 s1]" {
		t.Fatalf("queue holds %v", got)
	}
	if s := c.nodes[l].Status(); s.DuplicatesSuppressed != 4 || s.DuplicateKeys != 4 {
		t.Fatalf("status: %d suppressed, %d keys; want 4 and 4", s.DuplicatesSuppressed, s.DuplicateKeys)
	}
}

// After a clean stop and after a crash the table is rebuilt from the log,
// including records below the latest snapshot and the dispatch checkpoint;
// records older than the window are not.
func TestDuplicateTableRebuiltOnRestart(t *testing.T) {
	c, clk := dedupCluster(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var sent [][]byte
	for i := range 20 {
		rec := makeRecord(t, "R", 0, fmt.Sprintf("r%02d", i), "")
		if _, _, err := c.sendOnLeader(ctx, [][]byte{rec}); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, rec)
	}
	c.converge()
	for i, n := range c.nodes {
		if err := n.raft.Snapshot().Error(); err != nil {
			t.Fatalf("n%d snapshot: %v", i, err)
		}
	}
	for round, clean := range []bool{true, false} {
		c.restartAll(clean)
		c.leader()
		c.converge()
		for i, n := range c.nodes {
			<-n.dedupReady // followers rebuild in the background; the leader did before it opened
			if k := n.Status().DuplicateKeys; k != 20 {
				t.Fatalf("round %d n%d: %d keys after restart, want 20", round, i, k)
			}
		}
		for _, rec := range []int{0, 19} {
			res, _, err := c.sendOnLeader(ctx, sent[rec:rec+1])
			if err != nil || !res[0].Duplicate || res[0].QueueOffset != int64(rec) {
				t.Fatalf("round %d: retry of r%02d: %+v %v", round, rec, res, err)
			}
		}
	}
	if got := bodiesOf(t, c, "R", 0); len(got) != 20 {
		t.Fatalf("queue holds %d messages, want 20", len(got))
	}
	// Past the window nothing is rebuilt and a resend is stored.
	clk.advance(2*time.Minute + time.Second)
	c.restartAll(true)
	c.leader()
	c.converge()
	for i, n := range c.nodes {
		<-n.dedupReady
		if k := n.Status().DuplicateKeys; k != 0 {
			t.Fatalf("n%d: %d keys older than the window rebuilt", i, k)
		}
	}
	if res, _, err := c.sendOnLeader(ctx, sent[:1]); err != nil || res[0].Duplicate || res[0].QueueOffset != 20 {
		t.Fatalf("resend after the window: %+v %v", res, err)
	}
}

// Concurrent sends of one message while the first is still in Raft store it
// once; every caller gets the same result.
func TestConcurrentDuplicateSendsStoreOnce(t *testing.T) {
	c, _ := dedupCluster(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := c.nodes[c.leader()]
	rec := makeRecord(t, "C", 0, "once", "")
	var wg sync.WaitGroup
	results := make([]AppendResult, 16)
	errs := make([]error, 16)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := n.AppendSends(ctx, [][]byte{rec})
			if err == nil {
				results[i] = res[0]
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	stored := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("send %d: %v", i, errs[i])
		}
		if r.PhysicalOffset != results[0].PhysicalOffset || r.QueueOffset != 0 {
			t.Fatalf("send %d: %+v, send 0: %+v", i, r, results[0])
		}
		if !r.Duplicate {
			stored++
		}
	}
	c.converge()
	if got := bodiesOf(t, c, "C", 0); stored != 1 || len(got) != 1 {
		t.Fatalf("%d sends stored, queue %v", stored, got)
	}
}

// A definite refusal (follower) is a *NotLeaderError; leadership lost with
// the entry in flight, or the caller's deadline passing then, is
// ErrIndeterminate. Such entries can still commit (here the healed old
// leader usually wins the election with its longer log, committing them):
// the client's retry is answered from the duplicate table and the message
// is stored exactly once.
func TestIndeterminateAnswerDiffersFromNotLeader(t *testing.T) {
	c, _ := dedupCluster(t, func(cfg *Config) {
		// A long lease keeps the isolated leader accepting the append
		// before it notices it lost its quorum.
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = time.Second, time.Second, time.Second
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	old := c.leader()
	rec := makeRecord(t, "I", 0, "in-flight", "")
	_, err := c.nodes[(old+1)%3].AppendSends(ctx, [][]byte{rec})
	var nl *NotLeaderError
	if !errors.As(err, &nl) || isIndeterminate(err) {
		t.Fatalf("follower: %v, want a definite NotLeaderError", err)
	}
	c.isolate(old, true)
	stale := c.nodes[old]
	// A send whose caller gives up while its entry is in flight: indeterminate,
	// and its key stays claimed until the entry is decided.
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = stale.AppendSends(short, [][]byte{rec})
	cancelShort()
	if !isIndeterminate(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline in flight: %v, want ErrIndeterminate (deadline)", err)
	}
	h, _ := stale.fsm.dedup.keyOf(message.Record(rec))
	stale.fsm.dedup.mu.Lock()
	held := stale.fsm.dedup.pending[h] != nil
	stale.fsm.dedup.mu.Unlock()
	if !held {
		t.Fatal("the key was released before its entry was decided")
	}
	// Another key in flight when leadership goes: indeterminate too.
	_, err = stale.AppendSends(ctx, [][]byte{makeRecord(t, "I", 0, "other", "")})
	if !isIndeterminate(err) || !errors.Is(err, raft.ErrLeadershipLost) {
		t.Fatalf("isolated leader: %v, want ErrIndeterminate (leadership lost)", err)
	}
	if _, err := stale.AppendSends(ctx, [][]byte{rec}); err == nil {
		t.Fatal("the deposed leader acknowledged a retry")
	}
	c.isolate(old, false)
	res, _, err := c.sendOnLeader(ctx, [][]byte{rec})
	if err != nil {
		t.Fatal(err)
	}
	c.converge()
	// The indeterminate entries may have committed (the healed old leader
	// can win the election with its longer log) or not; either way the
	// message is stored once and the retry's answer points at it.
	got := bodiesOf(t, c, "I", 0)
	copies := 0
	for _, b := range got {
		if b == "in-flight" {
			copies++
		}
	}
	if copies != 1 || res[0].QueueOffset >= int64(len(got)) || got[res[0].QueueOffset] != "in-flight" {
		t.Fatalf("queue %v after the retry %+v", got, res[0].QueueOffset)
	}
	t.Logf("indeterminate entries committed: %v (retry answered as a duplicate: %v)", len(got) > 1 || res[0].Duplicate, res[0].Duplicate)
}

// BenchmarkDedupSendCheck is the leader's per-send cost of deduplication for
// a new key against a table of 100k keys: hash the key out of the record,
// look it up and claim it, then the FSM's insert and the release.
func BenchmarkDedupSendCheck(b *testing.B) {
	tab := newDedupTable(time.Hour, defaultDuplicateMaxEntries, nil)
	now := time.Now().UnixMilli()
	tab.mu.Lock()
	for i := range 100_000 {
		tab.insertLocked(uint64(i)*0x9E3779B97F4A7C15, int64(i), now, 0)
	}
	tab.mu.Unlock()
	recs := make([][]byte, 4096)
	for i := range recs {
		recs[i] = makeRecord(b, "BenchTopic", 0, fmt.Sprintf("%032d", i), "")
	}
	ctx := context.Background()
	keys, has := make([]uint64, 1), make([]bool, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := message.Record(recs[i%len(recs)])
		keys[0], has[0] = tab.keyOf(rec)
		keys[0] += uint64(i / len(recs)) // a new key every time
		_, claim, err := tab.begin(ctx, keys, has, nil)
		if err != nil || claim == nil {
			b.Fatal("no claim", err)
		}
		tab.mu.Lock()
		tab.insertLocked(keys[0], int64(i), now, 0)
		tab.mu.Unlock()
		tab.release(claim)
	}
}

// BenchmarkDedupTableMemory reports the heap a full table of 1M keys holds,
// per key.
func BenchmarkDedupTableMemory(b *testing.B) {
	const keys = 1_000_000
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tab := newDedupTable(time.Hour, keys, nil)
		now := time.Now().UnixMilli()
		tab.mu.Lock()
		for k := range keys {
			tab.insertLocked(uint64(k)*0x9E3779B97F4A7C15, int64(k), now, 0)
		}
		tab.mu.Unlock()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/keys, "B/key")
		runtime.KeepAlive(tab)
	}
}

// BenchmarkDedupRebuild is the start-up cost of rebuilding the table: a log
// tail of 20 000 1 KiB records in entries of 100, read backwards.
func BenchmarkDedupRebuild(b *testing.B) {
	c := newClusterTweaked(b, 1, func(cfg *Config) { cfg.DuplicateWindow = time.Hour; cfg.SegmentSize = 64 << 20 })
	n := c.nodes[c.leader()]
	ctx := context.Background()
	pad := strings.Repeat("x", 1000)
	const records, perEntry = 20_000, 100
	for e := 0; e < records/perEntry; e++ {
		recs := make([][]byte, perEntry)
		for i := range recs {
			recs[i] = makeRecord(b, "RB", 0, fmt.Sprintf("%06d-%03d%s", e, i, pad), "")
		}
		if _, err := n.AppendMessages(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	first, _ := n.store.FirstIndex()
	last, _ := n.store.LastIndex()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n.fsm.dedup.reset()
		if err := n.rebuildDedup(first, last); err != nil {
			b.Fatal(err)
		}
		if k := n.fsm.dedup.len(); k != records {
			b.Fatalf("%d keys rebuilt, want %d", k, records)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/records, "ns/record")
}
