package failover

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// logBuilder writes synthetic logs: a send of kind k begun at b ms, returned at d ms.
type logBuilder struct {
	l   Log
	seq int
}

func (lb *logBuilder) send(k Kind, b, d int, ok bool, n int) []string {
	var bodies []string
	for i := 0; i < n; i++ {
		lb.seq++
		bodies = append(bodies, string(k)+"-"+time.Duration(lb.seq).String())
	}
	s := Send{Kind: k, Begun: at(b), OK: ok, Bodies: bodies}
	if d >= 0 {
		s.Done = at(d)
	}
	if !ok {
		s.Err = "failed"
	}
	lb.l.Sends = append(lb.l.Sends, s)
	return bodies
}

func (lb *logBuilder) deliver(body string, ms, queue int, offset int64) {
	lb.l.Deliveries = append(lb.l.Deliveries, Delivery{Body: body, At: at(ms), Queue: queue, Offset: offset})
}

func TestResumeGapIgnoresSendsInFlightAtTheKill(t *testing.T) {
	var lb logBuilder
	lb.send(KindSync, 0, 10, true, 1)
	lb.send(KindSync, 90, 100, true, 1) // last ack before the kill at 1000
	// In flight at the kill: begun before it, acknowledged late (after its own retry).
	lb.send(KindSync, 950, 1500, true, 1)
	lb.send(KindSync, 1010, 1400, false, 1) // begun after, failed
	lb.send(KindSync, 1420, 3100, true, 1)  // first ack of a send begun after the kill
	lb.send(KindSync, 3200, 3210, true, 1)
	ev := Event{Scenario: ScenarioLeaderKill, Window: at(0), Begin: at(990), At: at(1000), End: at(5000)}
	tr := Analyze(&lb.l, []Event{ev}).Trials[0]
	if got, want := tr.ResumeGap[KindSync], 3.0; got != want {
		t.Errorf("resume gap = %v, want %v (100 ms -> 3100 ms; the late ack at 1500 of a send begun before the kill does not count)", got, want)
	}
	// The longest interval without any ack: 100 -> 1500 is 1.4 s, 1500 -> 3100 1.6 s,
	// and the open end 3210 -> 5000 1.79 s.
	if got, want := tr.LongestAckGap[KindSync], 1.79; got != want {
		t.Errorf("longest ack gap = %v, want %v", got, want)
	}
	if tr.Failed[KindSync] != 1 || tr.Sent[KindSync] != 6 {
		t.Errorf("failed %d of %d, want 1 of 6", tr.Failed[KindSync], tr.Sent[KindSync])
	}
	if got, want := tr.FailWindow, 0.39; got != want {
		t.Errorf("fail window = %v, want %v", got, want)
	}
	if tr.SlowAcks != 0 {
		t.Errorf("slow acks = %d, want 0 (none took 2.5 s)", tr.SlowAcks)
	}
	if want := map[string]int{"failed": 1}; !reflect.DeepEqual(tr.Errors, want) {
		t.Errorf("errors = %v, want %v", tr.Errors, want)
	}
}

func TestFoldError(t *testing.T) {
	got := foldError("dial tcp 127.0.0.1:10911: connect: connection refused")
	if want := "dial tcp N.N.N.N:N: connect: connection refused"; got != want {
		t.Errorf("foldError = %q, want %q", got, want)
	}
	if e := topErrors(map[string]int{"a": 1, "b": 5, "c": 2}, 2); e != `5× "b", 2× "c", (+1 more kinds)` {
		t.Errorf("topErrors = %s", e)
	}
}

func TestResumeGapMissingWhenNothingResumes(t *testing.T) {
	var lb logBuilder
	lb.send(KindSync, 0, 10, true, 1)
	lb.send(KindSync, 1100, 1200, false, 1)
	ev := Event{Scenario: ScenarioLeaderKill, Window: at(0), Begin: at(1000), At: at(1000), End: at(2000)}
	s := Analyze(&lb.l, []Event{ev})
	if got := s.Trials[0].ResumeGap[KindSync]; got != -1 {
		t.Errorf("resume gap = %v, want -1 (no ack after the kill)", got)
	}
	misses := strings.Join(s.Misses(DefaultTargets), "\n")
	if !strings.Contains(misses, "sync resume gap median n/a") {
		t.Errorf("a trial that never resumed must miss the target; misses:\n%s", misses)
	}
}

func TestDuplicatesSplitByCause(t *testing.T) {
	var lb logBuilder
	a := lb.send(KindSync, 0, 10, true, 1)
	b := lb.send(KindSync, 20, 30, true, 1)
	c := lb.send(KindBatch, 40, 50, true, 2)
	lb.deliver(a[0], 15, 0, 7)
	lb.deliver(a[0], 16, 1, 3) // a second stored copy: a retry stored twice
	lb.deliver(b[0], 35, 2, 9)
	lb.deliver(b[0], 45, 2, 9) // the same copy again: a redelivery
	lb.deliver(b[0], 46, 2, 9)
	lb.deliver(c[0], 60, 3, 1)
	lb.deliver(c[1], 60, 3, 2)
	ev := Event{Scenario: ScenarioTransfer, Window: at(0), Begin: at(5), At: at(5), End: at(100)}
	s := Analyze(&lb.l, []Event{ev})
	tr := s.Trials[0]
	if tr.StoredTwice[KindSync] != 1 || tr.StoredTwice[KindBatch] != 0 {
		t.Errorf("stored twice = %v, want sync 1", tr.StoredTwice)
	}
	if tr.Redelivered != 2 {
		t.Errorf("redelivered = %d, want 2", tr.Redelivered)
	}
	if s.Totals.Lost != 0 || s.Totals.Acked != 4 || s.Totals.Consumed != 4 || s.Totals.Deliveries != 7 {
		t.Errorf("totals = %+v", s.Totals)
	}
	if m := strings.Join(s.Misses(DefaultTargets), "\n"); !strings.Contains(m, "transfer: 1 messages stored twice") {
		t.Errorf("misses:\n%s", m)
	}
}

func TestLossAndInFlightCounted(t *testing.T) {
	var lb logBuilder
	a := lb.send(KindSync, 0, 10, true, 1)
	lb.send(KindAsync, 20, 30, true, 1) // acknowledged, never consumed
	lb.send(KindSync, 40, -1, false, 1) // never returned
	o := lb.send(KindOneway, 50, 51, true, 1)
	lb.send(KindOneway, 60, 61, true, 1) // oneway, never consumed: not a loss of an ack
	lb.deliver(a[0], 20, 0, 0)
	lb.deliver(o[0], 70, 0, 1)
	s := Analyze(&lb.l, nil)
	if s.Totals.Lost != 1 || s.Totals.InFlight != 1 || s.Totals.OnewaySent != 2 || s.Totals.OnewayUndelivered != 1 {
		t.Errorf("totals = %+v", s.Totals)
	}
	m := s.Misses(DefaultTargets)
	if len(m) != 2 {
		t.Errorf("misses = %q, want the loss and the send that never returned", m)
	}
}

func TestOnewayResumeUsesBeginTimesOfConsumedSends(t *testing.T) {
	var lb logBuilder
	x := lb.send(KindOneway, 100, 101, true, 1)
	lb.send(KindOneway, 900, 901, true, 1) // lost
	y := lb.send(KindOneway, 2500, 2501, true, 1)
	lb.deliver(x[0], 105, 0, 0)
	lb.deliver(y[0], 2600, 0, 1)
	ev := Event{Scenario: ScenarioLeaderKill, Window: at(0), Begin: at(1000), At: at(1000), End: at(3000)}
	tr := Analyze(&lb.l, []Event{ev}).Trials[0]
	if tr.ResumeGap[KindOneway] != 2.4 || tr.OnewayUndelivered != 1 {
		t.Errorf("oneway resume gap %v, undelivered %d; want 2.4, 1", tr.ResumeGap[KindOneway], tr.OnewayUndelivered)
	}
	// Consumer: first deliveries at 105 and 2600 around the action at 1000.
	if tr.ConsumerGap != 2.495 {
		t.Errorf("consumer gap = %v, want 2.495", tr.ConsumerGap)
	}
}

func TestSummaryMediansAndGate(t *testing.T) {
	var lb logBuilder
	var events []Event
	// Three kills with sync resume gaps of 1, 2 and 4 s; batch/oneway/async and the
	// consumer keep up with sync (oneway is judged by begin times: 0.9 s each).
	for i, gap := range []int{1000, 2000, 4000} {
		base := i * 20000
		for _, k := range []Kind{KindSync, KindBatch, KindOneway, KindAsync} {
			before := lb.send(k, base+100, base+200, true, 1)
			after := lb.send(k, base+1000, base+200+gap, true, 1)
			lb.deliver(before[0], base+200, 0, int64(len(lb.l.Deliveries)))
			lb.deliver(after[0], base+200+gap, 0, int64(len(lb.l.Deliveries)))
		}
		events = append(events, Event{Scenario: ScenarioLeaderKill, Index: i, Window: at(base), Begin: at(base + 1000),
			At: at(base + 1000), End: at(base + 200 + gap)})
	}
	s := Analyze(&lb.l, events)
	ss := s.Scenarios[ScenarioLeaderKill]
	if ss.ResumeGapMedian[KindSync] != 2 || ss.ResumeGapMax[KindSync] != 4 || ss.Trials != 3 {
		t.Errorf("summary = %+v", ss)
	}
	misses := s.Misses(DefaultTargets)
	want := []string{
		"leader kill: sync resume gap max 4.00s > 3.0s",
		"leader kill: batch resume gap max 4.00s > 3.0s",
		"leader-kill: consumer gap max 4.00s > 2.0s",
	}
	if !reflect.DeepEqual(misses, want) {
		t.Errorf("misses =\n%q\nwant\n%q", misses, want)
	}

	path := filepath.Join(t.TempDir(), "s.json")
	if err := s.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadSummary(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Misses(DefaultTargets), want) {
		t.Errorf("misses after a JSON round trip = %q", back.Misses(DefaultTargets))
	}
	var b strings.Builder
	back.WriteTable(&b)
	if !strings.Contains(b.String(), "leader-kill  3") {
		t.Errorf("table lacks the summary row:\n%s", b.String())
	}
}

func TestPlanFromEnv(t *testing.T) {
	t.Setenv(EnvLeaderKills, "20")
	t.Setenv(EnvRolling, "1")
	t.Setenv(EnvPauses, "2")
	p, err := PlanFromEnv(Plan{LeaderKills: 2, FollowerKills: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Plan{LeaderKills: 20, FollowerKills: 1, FollowerPauses: 2, Rolling: true}); p != want {
		t.Errorf("plan = %+v, want %+v", p, want)
	}
	t.Setenv(EnvTransfers, "three")
	if _, err := PlanFromEnv(Plan{}); err == nil || !strings.Contains(err.Error(), EnvTransfers) {
		t.Errorf("bad knob: err = %v", err)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, -1},
		{[]float64{3}, 3},
		{[]float64{4, 1, 2}, 2},
		{[]float64{4, 1, 2, 3}, 2.5},
		{[]float64{1, -1}, -1}, // a trial that never resumed is larger than any
		{[]float64{1, 2, -1}, 2},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestFollowerPauseJudgedByFailWindow(t *testing.T) {
	var lb logBuilder
	a := lb.send(KindSync, 0, 10, true, 1)
	lb.send(KindSync, 100, 1300, false, 1)
	b := lb.send(KindSync, 1400, 1410, true, 1)
	lb.deliver(a[0], 20, 0, 0)
	lb.deliver(b[0], 1420, 0, 1)
	ev := Event{Scenario: ScenarioFollowerPause, Window: at(0), Begin: at(50), At: at(50), End: at(2000)}
	misses := Analyze(&lb.l, []Event{ev}).Misses(DefaultTargets)
	if want := []string{"follower-pause: failed sends for 1.20s > 1.0s"}; !reflect.DeepEqual(misses, want) {
		t.Errorf("misses = %q, want %q", misses, want)
	}
}

func TestFailWindowNotStretchedByOneSlowFailure(t *testing.T) {
	var lb logBuilder
	lb.send(KindSync, 0, 10, true, 1)
	lb.send(KindSync, 20, 9020, false, 1) // timed out three times while others went through
	lb.send(KindSync, 30, 8000, true, 1)
	lb.send(KindSync, 8100, 8500, false, 1)
	lb.send(KindSync, 8600, 9100, true, 1)
	ev := Event{Scenario: ScenarioFollowerKill, Window: at(0), Begin: at(15), At: at(15), End: at(9500)}
	tr := Analyze(&lb.l, []Event{ev}).Trials[0]
	// Runs: 8500 (begun 8100) and 9020 (counted from the success at 8000): 1.02 s.
	if tr.FailWindow != 1.02 {
		t.Errorf("fail window = %v, want 1.02", tr.FailWindow)
	}
	if tr.SlowAcks != 1 { // 30 -> 8000
		t.Errorf("slow acks = %d, want 1", tr.SlowAcks)
	}
}
