package checker

import (
	"fmt"
	"strings"
	"testing"

	"github.com/raftmq/raftmq/jepsen/history"
)

// builder writes hand-made histories: sends that complete, drains of members.
type builder struct {
	ops []history.Op
	t   int64
}

func (b *builder) tick() int64 { b.t += 1e6; return b.t }

func (b *builder) send(p, q int, v, result string, offset int64) {
	b.sendAttempt(p, q, v, result, offset, 1)
}

func (b *builder) sendAttempt(p, q int, v, result string, offset int64, attempt int) {
	inv := b.tick()
	b.ops = append(b.ops, history.Op{Process: p, Type: history.Invoke, F: history.FSend, Value: v, Queue: q, Offset: -1, Time: inv, Attempt: attempt})
	done := history.Op{Process: p, Type: result, F: history.FSend, Value: v, Queue: q, Offset: -1, Time: b.tick(), Attempt: attempt}
	done.Latency = done.Time - inv
	if result == history.OK {
		done.Offset = offset
	}
	b.ops = append(b.ops, done)
}

func (b *builder) drain(member string, q int, values ...string) {
	for i, v := range values {
		b.ops = append(b.ops, history.Op{Process: 100, Type: history.OK, F: history.FDrain, Member: member, Queue: q, Offset: int64(i), Value: v, Time: b.tick()})
	}
	if len(values) == 0 {
		b.ops = append(b.ops, history.Op{Process: 100, Type: history.Invoke, F: history.FDrain, Member: member, Queue: q, Time: b.tick()})
	}
}

func (b *builder) drainAll(q int, values ...string) {
	for _, m := range []string{"n0", "n1", "n2"} {
		b.drain(m, q, values...)
	}
}

func (b *builder) offsetOp(p int, f string, q int, off int64) {
	inv := b.tick()
	b.ops = append(b.ops, history.Op{Process: p, Type: history.Invoke, F: f, Group: "g", Queue: q, Offset: off, Time: inv})
	b.ops = append(b.ops, history.Op{Process: p, Type: history.OK, F: f, Group: "g", Queue: q, Offset: off, Time: b.tick(), Latency: b.t - inv})
}

// clean is a history with no anomaly: two producers on two queues, a failed and an
// unknown send, a nemesis window, consumer offsets moving forward.
func clean() *builder {
	b := &builder{}
	b.ops = append(b.ops, history.Op{Process: history.NemesisProcess, Type: history.Invoke, F: history.FNemesis, Value: "kill-leader", Time: b.tick()})
	b.send(0, 0, "0-1", history.OK, 0)
	b.send(0, 0, "0-2", history.OK, 1)
	b.send(0, 0, "0-3", history.Fail, 0)
	b.send(1, 1, "1-1", history.OK, 0)
	b.send(1, 1, "1-2", history.Info, 0) // unknown, recovered below
	b.ops = append(b.ops, history.Op{Process: history.NemesisProcess, Type: history.OK, F: history.FNemesis, Value: "kill-leader", Time: b.tick()})
	b.send(1, 1, "1-3", history.OK, 2)
	b.offsetOp(5, history.FCommit, 0, 1)
	b.offsetOp(5, history.FFetch, 0, 1)
	b.offsetOp(5, history.FCommit, 0, 2)
	b.drainAll(0, "0-1", "0-2")
	b.drainAll(1, "1-1", "1-2", "1-3")
	return b
}

func check(t *testing.T, b *builder) *Result {
	t.Helper()
	return Check(b.ops, Options{Members: []string{"n0", "n1", "n2"}})
}

func TestCleanHistoryPasses(t *testing.T) {
	r := check(t, clean())
	if !r.Valid {
		t.Fatalf("clean history judged invalid: %v", r.Failures)
	}
	if r.Acked != 4 || r.Failed != 1 || r.Unknown != 1 || r.Recovered != 1 {
		t.Fatalf("counts: acked %d failed %d unknown %d recovered %d", r.Acked, r.Failed, r.Unknown, r.Recovered)
	}
	if len(r.Windows) != 1 || !r.Windows[0].Healed || r.Windows[0].HealToFirstAck < 0 {
		t.Fatalf("windows: %+v", r.Windows)
	}
}

func wantFailure(t *testing.T, r *Result, name string) {
	t.Helper()
	if r.Valid {
		t.Fatalf("history with %s judged valid", name)
	}
	for _, f := range r.Failures {
		if strings.HasPrefix(f, name+":") {
			return
		}
	}
	t.Fatalf("want failure %s, got %v", name, r.Failures)
}

func TestLost(t *testing.T) {
	b := &builder{}
	b.send(0, 0, "a", history.OK, 0)
	b.send(0, 0, "b", history.OK, 1)
	b.drainAll(0, "a")
	r := check(t, b)
	wantFailure(t, r, "lost")
	if r.LostCount != 1 || r.Lost[0] != "b" {
		t.Fatalf("lost = %v", r.Lost)
	}
}

func TestLostOnMember(t *testing.T) {
	b := &builder{}
	b.send(0, 0, "a", history.OK, 0)
	b.send(0, 0, "b", history.OK, 1)
	b.drain("n0", 0, "a", "b")
	b.drain("n1", 0, "a", "b")
	b.drain("n2", 0, "a")
	r := check(t, b)
	wantFailure(t, r, "lost-on-member")
	if got := r.LostOnMember["n2"]; len(got) != 1 || got[0] != "b" {
		t.Fatalf("lost on n2 = %v", got)
	}
}

func TestDivergentOffsets(t *testing.T) {
	b := &builder{}
	b.send(0, 0, "a", history.OK, 0)
	b.send(1, 0, "x", history.Info, 0)
	b.drain("n0", 0, "a")
	b.drain("n1", 0, "a")
	// n2 holds an unknown send where the others hold "a", and "a" one later.
	b.drain("n2", 0, "x", "a")
	r := check(t, b)
	wantFailure(t, r, "divergent-offsets")
}

func TestUnexpected(t *testing.T) {
	b := &builder{}
	b.send(0, 0, "a", history.OK, 0)
	b.drainAll(0, "a", "ghost")
	wantFailure(t, check(t, b), "unexpected")
}

func TestDuplicateWithoutCause(t *testing.T) {
	b := &builder{}
	b.send(0, 0, "a", history.OK, 0)
	b.drainAll(0, "a", "a")
	r := check(t, b)
	wantFailure(t, r, "duplicates-without-cause")
	if r.Duplicates[0].Cause != "none" {
		t.Fatalf("cause = %s", r.Duplicates[0].Cause)
	}
}

func TestDuplicateOfRetriedInfoSendIsNotAFailure(t *testing.T) {
	b := &builder{}
	b.sendAttempt(0, 0, "a", history.Info, 0, 1)
	b.sendAttempt(0, 0, "a", history.OK, 1, 2)
	b.drainAll(0, "a", "a")
	r := check(t, b)
	if !r.Valid {
		t.Fatalf("retry duplicate judged invalid: %v", r.Failures)
	}
	if len(r.Duplicates) != 1 || r.Duplicates[0].Cause != "retry-of-info" {
		t.Fatalf("duplicates = %+v", r.Duplicates)
	}
}

func TestOffsetCollision(t *testing.T) {
	b := &builder{}
	b.send(0, 0, "a", history.OK, 0)
	b.send(1, 0, "b", history.OK, 0)
	b.drainAll(0, "a", "b")
	r := check(t, b)
	wantFailure(t, r, "offset-collisions")
	wantFailure(t, r, "ack-mismatches")
}

func TestOrderViolation(t *testing.T) {
	b := &builder{}
	b.send(0, 0, "a", history.OK, 1)
	b.send(0, 0, "b", history.OK, 0)
	b.drainAll(0, "b", "a")
	wantFailure(t, check(t, b), "order-violations")
}

func TestFailedButRead(t *testing.T) {
	b := &builder{}
	b.send(0, 0, "a", history.OK, 0)
	b.send(0, 0, "b", history.Fail, 0)
	b.drainAll(0, "a", "b")
	r := check(t, b)
	wantFailure(t, r, "failed-but-read")
	if r.G1a[0] != "b" {
		t.Fatalf("G1a = %v", r.G1a)
	}
}

func TestOffsetRegression(t *testing.T) {
	b := &builder{}
	b.send(0, 0, "a", history.OK, 0)
	b.drainAll(0, "a")
	b.offsetOp(5, history.FCommit, 0, 7)
	b.offsetOp(5, history.FFetch, 0, 3)
	if r := check(t, b); !r.Valid || r.BackwardCount != 1 || len(r.Warnings) != 1 {
		t.Fatalf("offset regression without StrictOffsets: valid %v count %d warnings %v", r.Valid, r.BackwardCount, r.Warnings)
	}
	r := Check(b.ops, Options{Members: []string{"n0", "n1", "n2"}, StrictOffsets: true})
	wantFailure(t, r, "offset-regressions")
}

func TestMissingDrainIsAFailure(t *testing.T) {
	b := &builder{}
	b.send(0, 0, "a", history.OK, 0)
	b.drain("n0", 0, "a")
	b.drain("n1", 0, "a")
	wantFailure(t, check(t, b), "drain-errors")
}

func TestAvailabilityWindow(t *testing.T) {
	var ops []history.Op
	s := int64(1e9)
	add := func(t int64, op history.Op) { op.Time = t; ops = append(ops, op) }
	ack := func(t int64, v string) {
		add(t-1e6, history.Op{Process: 0, Type: history.Invoke, F: history.FSend, Value: v})
		add(t, history.Op{Process: 0, Type: history.OK, F: history.FSend, Value: v, Offset: -1, Latency: 1e6})
	}
	ack(1*s, "a")
	add(2*s, history.Op{Process: history.NemesisProcess, Type: history.Invoke, F: history.FNemesis, Value: "pause-leader"})
	ack(3*s, "b")
	add(4*s, history.Op{Process: 0, Type: history.Invoke, F: history.FSend, Value: "c"})
	add(5*s, history.Op{Process: 0, Type: history.Info, F: history.FSend, Value: "c"})
	add(9*s, history.Op{Process: history.NemesisProcess, Type: history.OK, F: history.FNemesis, Value: "pause-leader"})
	ack(10*s, "d")
	ack(20*s, "e") // a 10 s gap outside the window
	r := Check(ops, Options{})
	if len(r.Windows) != 1 {
		t.Fatalf("windows = %+v", r.Windows)
	}
	w := r.Windows[0]
	if w.Acks != 1 || w.InfoSends != 1 || w.LongestAckGap != 7 || w.HealToFirstAck != 1 || w.FirstFailToOK != 5 {
		t.Fatalf("window = %+v", w)
	}
	if r.LongestNormalGap != 10 {
		t.Fatalf("normal gap = %v", r.LongestNormalGap)
	}
}

func TestHistoryRoundTrip(t *testing.T) {
	b := clean()
	var sb strings.Builder
	for _, op := range b.ops {
		fmt.Fprintf(&sb, "%s\n", mustJSON(t, op))
	}
	ops, err := history.Read(strings.NewReader(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != len(b.ops) || ops[3] != b.ops[3] {
		t.Fatalf("round trip changed the history")
	}
}
