package schedule

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/raftmq/raftmq/message"
)

// fakeClock is a manual clock whose timers fire on Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	clk     *fakeClock
	at      time.Time
	c       chan time.Time
	stopped bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.UnixMilli(1_700_000_000_000)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clk: c, at: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.now
		t.stopped = true
	}
	c.timers = append(c.timers, t)
	return t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if !t.stopped && !t.at.After(c.now) {
			t.stopped = true
			t.c <- c.now
		}
	}
}

// activeTimers counts armed timers.
func (c *fakeClock) activeTimers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeStore is an in-memory CommitLog + ConsumeQueue.
type fakeStore struct {
	levels Levels
	clock  *fakeClock

	mu         sync.Mutex
	records    map[int64]*message.Ext
	queues     map[string]map[int32][]QueueEntry
	nextPhys   int64
	appended   []*message.Ext // through Append only
	failAppend int
	offsets    map[int32]int64
	saves      int
}

func newFakeStore(levels Levels, clk *fakeClock) *fakeStore {
	return &fakeStore{levels: levels, clock: clk, records: map[int64]*message.Ext{},
		queues: map[string]map[int32][]QueueEntry{}, nextPhys: 1000, offsets: map[int32]int64{}}
}

func (s *fakeStore) putLocked(e *message.Ext) error {
	cp := *e
	cp.StoreTimestamp = s.clock.Now().UnixMilli()
	cp.CommitLogOffset = s.nextPhys
	q := s.queues[cp.Topic]
	if q == nil {
		q = map[int32][]QueueEntry{}
		s.queues[cp.Topic] = q
	}
	cp.QueueOffset = int64(len(q[cp.QueueID]))
	b, err := message.AppendRecord(nil, &cp)
	if err != nil {
		return err
	}
	rec, err := message.ParseRecord(b)
	if err != nil {
		return err
	}
	q[cp.QueueID] = append(q[cp.QueueID], QueueEntry{QueueOffset: cp.QueueOffset,
		CommitLogOffset: cp.CommitLogOffset, Size: int32(len(b)), TagsCode: s.levels.TagsCode(rec)})
	s.records[cp.CommitLogOffset] = &cp
	s.nextPhys += int64(len(b))
	e.CommitLogOffset, e.QueueOffset, e.StoreTimestamp = cp.CommitLogOffset, cp.QueueOffset, cp.StoreTimestamp
	return nil
}

// send stores a message through the send-path delay transform.
func (s *fakeStore) send(t *testing.T, e *message.Ext) *message.Ext {
	t.Helper()
	out, _, err := s.levels.ToDelayQueue(e)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.putLocked(out); err != nil {
		t.Fatal(err)
	}
	return out
}

func (s *fakeStore) ReadQueue(_ context.Context, topic string, queueID int32, from int64, max int) ([]QueueEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[topic][queueID]
	if from < 0 {
		from = 0
	}
	if from >= int64(len(q)) {
		return nil, nil
	}
	end := min(int64(len(q)), from+int64(max))
	return append([]QueueEntry(nil), q[from:end]...), nil
}

func (s *fakeStore) ReadRecord(_ context.Context, off int64) (*message.Ext, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.records[off]
	if r == nil {
		return nil, fmt.Errorf("no record at %d", off)
	}
	cp := *r
	cp.Properties = maps.Clone(r.Properties)
	return &cp, nil
}

func (s *fakeStore) Append(_ context.Context, msgs []*message.Ext) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAppend > 0 {
		s.failAppend--
		return errors.New("injected append failure")
	}
	for _, m := range msgs {
		if err := s.putLocked(m); err != nil {
			return err
		}
		s.appended = append(s.appended, m)
	}
	return nil
}

func (s *fakeStore) LoadDelayOffsets(context.Context) (map[int32]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.offsets), nil
}

func (s *fakeStore) SaveDelayOffsets(_ context.Context, o map[int32]int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offsets = maps.Clone(o)
	s.saves++
	return nil
}

func (s *fakeStore) delivered() []*message.Ext {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*message.Ext(nil), s.appended...)
}

func (s *fakeStore) savedOffset(level int32) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offsets[level]
}

func delayed(body string, level int) *message.Ext {
	return &message.Ext{
		Message: message.Message{Topic: "T", Body: []byte(body), Properties: map[string]string{
			message.PropertyDelayLevel: strconv.Itoa(level),
			message.PropertyUniqKey:    "U-" + body,
		}},
		QueueID: 1,
	}
}

func startService(t *testing.T, st *fakeStore, clk *fakeClock) *Service {
	t.Helper()
	svc, err := NewService(Config{Levels: st.levels, Store: st, Offsets: st, Clock: clk, RetryBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	return svc
}

func TestServiceDeliversWhenDue(t *testing.T) {
	clk := newFakeClock()
	levels, _ := ParseDelayLevels("1s 5s 10s")
	st := newFakeStore(levels, clk)
	st.send(t, delayed("a", 1))  // due +1 s
	st.send(t, delayed("b", 2))  // due +5 s
	st.send(t, delayed("c", 1))  // due +1 s
	st.send(t, delayed("d", 99)) // clamped to level 3: due +10 s
	svc := startService(t, st, clk)

	waitFor(t, "service to sleep", func() bool { return clk.activeTimers() == 1 })
	if n := len(st.delivered()); n != 0 {
		t.Fatalf("%d delivered before due", n)
	}
	clk.Advance(time.Second)
	waitFor(t, "level 1 delivery", func() bool { return len(st.delivered()) == 2 })
	got := st.delivered()
	if string(got[0].Body) != "a" || string(got[1].Body) != "c" {
		t.Fatalf("order %q %q", got[0].Body, got[1].Body)
	}
	if got[0].Topic != "T" || got[0].QueueID != 1 || got[0].Properties[message.PropertyDelayLevel] != "" ||
		got[0].Properties[message.PropertyUniqKey] != "U-a" {
		t.Fatalf("re-put %+v", got[0])
	}
	waitFor(t, "offset save", func() bool { return st.savedOffset(1) == 2 })

	waitFor(t, "service to sleep", func() bool { return clk.activeTimers() == 1 })
	clk.Advance(4 * time.Second)
	waitFor(t, "level 2 delivery", func() bool { return len(st.delivered()) == 3 })
	waitFor(t, "service to sleep", func() bool { return clk.activeTimers() == 1 })
	clk.Advance(5 * time.Second)
	waitFor(t, "level 3 delivery", func() bool { return len(st.delivered()) == 4 })
	if d := st.delivered()[3]; string(d.Body) != "d" {
		t.Fatalf("last delivered %q", d.Body)
	}
	waitFor(t, "all offsets saved", func() bool {
		return st.savedOffset(1) == 2 && st.savedOffset(2) == 1 && st.savedOffset(3) == 1
	})
	if o := svc.Offsets(); o[1] != 2 || o[2] != 1 || o[3] != 1 {
		t.Fatalf("offsets %v", o)
	}
}

func TestServiceNotifyWakesIdleService(t *testing.T) {
	clk := newFakeClock()
	levels, _ := ParseDelayLevels("1s 5s")
	st := newFakeStore(levels, clk)
	svc := startService(t, st, clk)
	// Let the first (empty) round finish: it saves nothing and arms no timer.
	// A message stored now becomes visible only through Notify.
	st.send(t, delayed("x", 1))
	svc.Notify()
	waitFor(t, "timer for the new message", func() bool { return clk.activeTimers() == 1 })
	clk.Advance(time.Second)
	waitFor(t, "delivery", func() bool { return len(st.delivered()) == 1 })
}

func TestServiceResumesFromSavedOffsets(t *testing.T) {
	clk := newFakeClock()
	levels, _ := ParseDelayLevels("1s")
	st := newFakeStore(levels, clk)
	st.send(t, delayed("a", 1))
	st.send(t, delayed("b", 1))
	clk.Advance(2 * time.Second)
	svc := startService(t, st, clk)
	waitFor(t, "delivery", func() bool { return len(st.delivered()) == 2 })
	waitFor(t, "save", func() bool { return st.savedOffset(1) == 2 })
	svc.Stop()

	// A new leader: same store and offsets, one more message.
	st.send(t, delayed("c", 1))
	clk.Advance(2 * time.Second)
	startService(t, st, clk)
	waitFor(t, "delivery of c", func() bool { return len(st.delivered()) == 3 })
	waitFor(t, "save", func() bool { return st.savedOffset(1) == 3 })
	if got := st.delivered(); string(got[2].Body) != "c" {
		t.Fatalf("redelivered %q", got[2].Body)
	}
}

func TestServiceRetriesFailedAppend(t *testing.T) {
	clk := newFakeClock()
	levels, _ := ParseDelayLevels("1s")
	st := newFakeStore(levels, clk)
	st.send(t, delayed("a", 1))
	clk.Advance(time.Second)
	st.failAppend = 1
	startService(t, st, clk)
	// The failed append leaves the offset and arms the backoff timer.
	waitFor(t, "backoff timer", func() bool { return clk.activeTimers() == 1 })
	if len(st.delivered()) != 0 || st.savedOffset(1) != 0 {
		t.Fatal("progress despite failed append")
	}
	clk.Advance(time.Second)
	waitFor(t, "retry delivery", func() bool { return len(st.delivered()) == 1 })
	waitFor(t, "save", func() bool { return st.savedOffset(1) == 1 })
}

func TestServiceSkipsUndeliverableRecord(t *testing.T) {
	clk := newFakeClock()
	levels, _ := ParseDelayLevels("1s")
	st := newFakeStore(levels, clk)
	bad := st.send(t, delayed("bad", 1))
	st.mu.Lock()
	delete(st.records[bad.CommitLogOffset].Properties, message.PropertyRealTopic)
	st.mu.Unlock()
	st.send(t, delayed("good", 1))
	clk.Advance(time.Second)
	startService(t, st, clk)
	waitFor(t, "delivery", func() bool { return len(st.delivered()) == 1 })
	if got := st.delivered()[0]; string(got.Body) != "good" {
		t.Fatalf("delivered %q", got.Body)
	}
	waitFor(t, "save", func() bool { return st.savedOffset(1) == 2 })
}

func TestServiceStartStop(t *testing.T) {
	clk := newFakeClock()
	st := newFakeStore(Default(), clk)
	if _, err := NewService(Config{}); err == nil {
		t.Fatal("NewService without store accepted")
	}
	svc, _ := NewService(Config{Store: st, Offsets: st, Clock: clk})
	svc.Stop() // not running: no-op
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err == nil {
		t.Fatal("double start accepted")
	}
	svc.Stop()
	svc.Stop()
}

func TestServiceDeliversHeadFromTheFuture(t *testing.T) {
	clk := newFakeClock()
	levels, _ := ParseDelayLevels("1s")
	st := newFakeStore(levels, clk)
	st.send(t, delayed("a", 1))
	// The clock moves back an hour: the head now looks due in 1 h + 1 s,
	// more than the level's delay, so it is delivered at once.
	clk.mu.Lock()
	clk.now = clk.now.Add(-time.Hour)
	clk.mu.Unlock()
	startService(t, st, clk)
	waitFor(t, "delivery", func() bool { return len(st.delivered()) == 1 })
}

func BenchmarkToDelayQueueAndRePut(b *testing.B) {
	l := Default()
	in := delayed("payload", 3)
	b.ReportAllocs()
	for b.Loop() {
		out, _, err := l.ToDelayQueue(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := RePut(out); err != nil {
			b.Fatal(err)
		}
	}
}
