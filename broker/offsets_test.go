package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/dledger"
	"github.com/raftmq/raftmq/remoting"
)

// TestOffsetManagerCoalesces checks that many commits become one proposal
// carrying the latest offset of each queue, and that a failed proposal keeps
// the commits for the next flush unless newer ones replaced them.
func TestOffsetManagerCoalesces(t *testing.T) {
	meta := newMetaStore()
	var proposals []*metaCommand
	fail := false
	propose := func(_ context.Context, c *metaCommand) (interface{}, error) {
		if fail {
			return nil, errors.New("not leader")
		}
		proposals = append(proposals, c)
		return meta.ApplyMeta(1, c.encode()), nil
	}
	o := newOffsetManager(meta, propose, 0, func() bool { return true })
	for client := 0; client < 3; client++ {
		for q := int32(0); q < 8; q++ {
			for off := int64(1); off <= 5; off++ {
				o.commit("g", "T", q, off*10+int64(client))
			}
		}
	}
	if err := o.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(proposals) != 1 || len(proposals[0].Offsets) != 8 {
		t.Fatalf("%d proposals, first with %d offsets; want 1 with 8", len(proposals), len(proposals[0].Offsets))
	}
	if off, ok := meta.Offset("g", "T", 3); !ok || off != 52 {
		t.Fatalf("replicated offset %d %v", off, ok)
	}
	// Nothing changed: no proposal.
	o.commit("g", "T", 3, 52)
	if err := o.flush(context.Background()); err != nil || len(proposals) != 1 {
		t.Fatalf("unchanged offsets proposed again: %v %d", err, len(proposals))
	}
	// A failed flush keeps the commit; a newer commit wins over the kept one.
	fail = true
	o.commit("g", "T", 0, 100)
	o.commit("g", "T", 1, 100)
	if err := o.flush(context.Background()); err == nil {
		t.Fatal("want the proposal error")
	}
	o.commit("g", "T", 1, 200)
	if off, _ := o.query("g", "T", 0); off != 100 {
		t.Fatalf("pending offset lost: %d", off)
	}
	fail = false
	if err := o.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a, _ := meta.Offset("g", "T", 0); a != 100 {
		t.Fatalf("queue 0: %d", a)
	}
	if b, _ := meta.Offset("g", "T", 1); b != 200 {
		t.Fatalf("queue 1: %d", b)
	}
	o.commit("g", "T", 2, 7)
	o.drop()
	if off, _ := o.query("g", "T", 2); off == 7 {
		t.Fatal("drop kept a pending commit")
	}
}

// gatedPropose is a propose function whose calls block until the test
// releases them, each with the error to return (nil: applied).
type gatedPropose struct {
	meta    *metaStore
	calls   chan *metaCommand
	results chan error
}

func newGatedPropose(meta *metaStore) *gatedPropose {
	return &gatedPropose{meta: meta, calls: make(chan *metaCommand, 16), results: make(chan error)}
}

func (g *gatedPropose) propose(ctx context.Context, c *metaCommand) (interface{}, error) {
	g.calls <- c
	select {
	case err := <-g.results:
		if err != nil {
			return nil, err
		}
		return g.meta.ApplyMeta(1, c.encode()), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// syncCommit starts a sync commit and returns where its answer arrives.
func syncCommit(o *offsetManager, queue int32, offset int64) <-chan error {
	ch := make(chan error, 1)
	o.commitSync("g", "T", queue, offset, time.Minute, func(err error) { ch <- err })
	return ch
}

func notAnswered(t *testing.T, what string, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s answered before its flush was applied: %v", what, err)
	default:
	}
}

// TestOffsetManagerSyncCommitAckedAfterApply checks that a sync commit is
// answered only once the flush carrying it was applied, that a later commit
// of the same key satisfies the earlier waiter, that many keys still make
// one entry, and that queries see commits while their flush is in flight.
func TestOffsetManagerSyncCommitAckedAfterApply(t *testing.T) {
	meta := newMetaStore()
	g := newGatedPropose(meta)
	o := newOffsetManager(meta, g.propose, time.Second, func() bool { return true })
	older := syncCommit(o, 0, 5)
	newer := syncCommit(o, 0, 7)
	var others []<-chan error
	for q := int32(1); q < 50; q++ {
		others = append(others, syncCommit(o, q, int64(q)))
	}
	o.commit("g", "T", 50, 99) // oneway: rides along
	flushed := make(chan error, 1)
	go func() { flushed <- o.flush(context.Background()) }()
	c := <-g.calls
	if len(c.Offsets) != 51 {
		t.Fatalf("one entry with %d offsets, want 51", len(c.Offsets))
	}
	notAnswered(t, "the older commit", older)
	notAnswered(t, "the newer commit", newer)
	if off, ok := o.query("g", "T", 0); !ok || off != 7 {
		t.Fatalf("query during the flush: %d %v, want 7", off, ok)
	}
	if _, ok := meta.Offset("g", "T", 0); ok {
		t.Fatal("offset replicated before the proposal returned")
	}
	// A commit arriving during the flush waits for the next one.
	during := syncCommit(o, 1, 100)
	g.results <- nil
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	for i, ch := range append([]<-chan error{older, newer}, others...) {
		if err := <-ch; err != nil {
			t.Fatalf("commit %d answered %v after its flush was applied", i, err)
		}
	}
	if off, _ := meta.Offset("g", "T", 0); off != 7 {
		t.Fatalf("replicated offset %d, want 7", off)
	}
	notAnswered(t, "the commit that arrived during the flush", during)
	go func() { flushed <- o.flush(context.Background()) }()
	if c := <-g.calls; len(c.Offsets) != 1 || c.Offsets[0].Offset != 100 {
		t.Fatalf("second flush: %+v", c.Offsets)
	}
	g.results <- nil
	if err := <-during; err != nil {
		t.Fatal(err)
	}
	<-flushed
	// A commit equal to the replicated state needs no entry: answered at once.
	same := syncCommit(o, 1, 100)
	if err := o.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-same; err != nil {
		t.Fatalf("commit of the replicated offset: %v", err)
	}
	select {
	case c := <-g.calls:
		t.Fatalf("unchanged offset proposed: %+v", c.Offsets)
	default:
	}
}

// TestOffsetManagerSyncCommitFailures checks every way a sync commit is
// answered with an error instead of success: a failed flush, leadership
// lost before its flush, a commit on a non-leader, the answer budget, and
// the manager stopping. A flush that fails after leadership changed does not
// put its commits back (the next leadership must not propose them).
func TestOffsetManagerSyncCommitFailures(t *testing.T) {
	meta := newMetaStore()
	g := newGatedPropose(meta)
	leader := true
	o := newOffsetManager(meta, g.propose, time.Second, func() bool { return leader })

	failed := syncCommit(o, 0, 5)
	flushed := make(chan error, 1)
	go func() { flushed <- o.flush(context.Background()) }()
	<-g.calls
	g.results <- errors.New("leadership lost while committing log")
	if err := <-failed; err == nil {
		t.Fatal("a failed flush answered success")
	}
	if err := <-flushed; err == nil {
		t.Fatal("flush: want the proposal error")
	}
	if off, ok := o.query("g", "T", 0); !ok || off != 5 {
		t.Fatalf("failed commit not kept for the next flush: %d %v", off, ok)
	}

	// Leadership lost while the flush is in flight: the waiter gets the
	// flush's error, and the commit is not put back.
	o.drop()
	inflight := syncCommit(o, 1, 6)
	go func() { flushed <- o.flush(context.Background()) }()
	<-g.calls
	o.drop()
	g.results <- errors.New("not leader")
	<-flushed
	if err := <-inflight; err == nil {
		t.Fatal("commit of a failed flush answered success")
	}
	if off, ok := o.query("g", "T", 1); ok {
		t.Fatalf("commit of a lost leadership kept: %d", off)
	}

	// Leadership lost before the flush.
	pending := syncCommit(o, 2, 7)
	o.drop()
	if err := <-pending; !errors.Is(err, errOffsetsDropped) {
		t.Fatalf("dropped commit answered %v", err)
	}

	// Not the leader when the commit lands.
	leader = false
	if err := <-syncCommit(o, 3, 8); !errors.Is(err, errOffsetsDropped) {
		t.Fatalf("commit on a non-leader answered %v", err)
	}
	o.commit("g", "T", 3, 8)
	if _, ok := o.query("g", "T", 3); ok {
		t.Fatal("oneway commit taken on a non-leader")
	}
	leader = true

	// Nobody flushes: the budget answers.
	budget := make(chan error, 1)
	o.commitSync("g", "T", 4, 9, time.Millisecond, func(err error) { budget <- err })
	if err := <-budget; !errors.Is(err, errCommitTimeout) {
		t.Fatalf("commit past its budget answered %v", err)
	}

	// Stopping answers the waiters and refuses new commits.
	stopping := syncCommit(o, 5, 10)
	o.close()
	if err := <-stopping; !errors.Is(err, errOffsetsClosed) {
		t.Fatalf("commit waiting at close answered %v", err)
	}
	if err := <-syncCommit(o, 6, 11); !errors.Is(err, errOffsetsClosed) {
		t.Fatalf("commit after close answered %v", err)
	}
}

// TestOffsetManagerRunFlushesEarlyForWaiters checks that run does not keep
// a sync commit waiting for the flush interval (an hour here): it flushes
// once a commit waits, carrying the oneway commits pending with it, and
// answers what still waits when it stops.
func TestOffsetManagerRunFlushesEarlyForWaiters(t *testing.T) {
	meta := newMetaStore()
	g := newGatedPropose(meta)
	o := newOffsetManager(meta, g.propose, time.Hour, func() bool { return true })
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); o.run(ctx, nil) }()
	o.commit("g", "T", 0, 1)
	w := syncCommit(o, 1, 2)
	c := <-g.calls
	if len(c.Offsets) != 2 {
		t.Fatalf("early flush carries %d offsets, want 2", len(c.Offsets))
	}
	notAnswered(t, "the sync commit", w)
	g.results <- nil
	if err := <-w; err != nil {
		t.Fatal(err)
	}
	// A second waiter gets its own early flush.
	w = syncCommit(o, 1, 3)
	<-g.calls
	g.results <- nil
	if err := <-w; err != nil {
		t.Fatal(err)
	}
	if off, _ := meta.Offset("g", "T", 1); off != 3 {
		t.Fatalf("replicated offset %d, want 3", off)
	}
	// Stopping while a commit waits: every flush from now on fails, and
	// the waiter is answered with an error once run ends, never success.
	last := syncCommit(o, 2, 4)
	cancel()
	for running := true; running; {
		select {
		case <-g.calls:
			g.results <- errors.New("shutting down")
		case <-stopped:
			running = false
		}
	}
	if err := <-last; err == nil {
		t.Fatal("commit waiting at stop answered success")
	}
}

// TestCommitAnswerCodes checks that a sync commit is answered success only
// when its flush was applied, and otherwise with a code the clients retry.
func TestCommitAnswerCodes(t *testing.T) {
	b := &Broker{addr: "127.0.0.1:10911", cfg: DefaultConfig()}
	for _, c := range []struct {
		err  error
		code int32
	}{
		{nil, remoting.Success},
		{errOffsetsDropped, remoting.ServiceNotAvailable},
		{errOffsetsClosed, remoting.ServiceNotAvailable},
		{errCommitTimeout, remoting.SystemError},
		{fmt.Errorf("flush: %w", dledger.ErrIndeterminate), remoting.SystemError},
		{&dledger.NotLeaderError{}, remoting.ServiceNotAvailable},
		{context.DeadlineExceeded, remoting.ServiceNotAvailable},
		{errors.New("unable to store logs"), remoting.SystemError},
	} {
		r := b.commitAnswer(c.err)
		if r.Code != c.code || (c.err != nil && !strings.Contains(r.Remark, "retry")) {
			t.Errorf("%v: answered %d %q, want %d", c.err, r.Code, r.Remark, c.code)
		}
	}
}
