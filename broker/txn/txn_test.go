package txn

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
)

func TestPrepareHalfAndSendResult(t *testing.T) {
	in := &message.Ext{
		Message: message.Message{Topic: "Orders", Body: []byte("x"), Properties: map[string]string{
			message.PropertyTransactionPrepared: "true", message.PropertyProducerGroup: "pg",
			message.PropertyUniqKey: "U1", message.PropertyDelayLevel: "2"}},
		QueueID: 3,
		SysFlag: message.TransactionPreparedType | message.SysFlagCompressed,
	}
	if !IsHalfSend(&in.Message) {
		t.Fatal("IsHalfSend")
	}
	half, err := PrepareHalf(in)
	if err != nil {
		t.Fatal(err)
	}
	if half.Topic != HalfTopic || half.QueueID != 0 ||
		message.TransactionType(half.SysFlag) != message.TransactionNotType || half.SysFlag&message.SysFlagCompressed == 0 {
		t.Fatalf("half %+v", half)
	}
	p := half.Properties
	if p[message.PropertyRealTopic] != "Orders" || p[message.PropertyRealQueueID] != "3" ||
		p[message.PropertyTransactionID] != "U1" || p[message.PropertyDelayLevel] != "2" {
		t.Fatalf("props %v", p)
	}
	if in.Topic != "Orders" || in.Properties[message.PropertyRealTopic] != "" {
		t.Fatal("input modified")
	}
	delete(in.Properties, message.PropertyProducerGroup)
	if _, err := PrepareHalf(in); !errors.Is(err, ErrNoProducerGroup) {
		t.Fatalf("no PGROUP: %v", err)
	}

	half.CommitLogOffset, half.QueueOffset, half.StoreHost = 4242, 17, storeHost
	r := SendResult(half, 3)
	host, off, err := message.ParseOffsetMsgID(r.MsgID)
	if err != nil || off != 4242 || host != storeHost {
		t.Fatalf("msgId %q: %v %d %v", r.MsgID, host, off, err)
	}
	if r.QueueID != 3 || r.QueueOffset != 17 || r.TransactionID != "U1" {
		t.Fatalf("%+v", r)
	}
}

func TestParseEndTransactionHeader(t *testing.T) {
	ok := map[string]string{"producerGroup": "pg", "tranStateTableOffset": "5", "commitLogOffset": "99",
		"commitOrRollback": "8", "fromTransactionCheck": "true", "msgId": "m", "transactionId": "t", "bname": ""}
	r, err := ParseEndTransactionHeader(ok)
	if err != nil {
		t.Fatal(err)
	}
	if r.ProducerGroup != "pg" || r.TranStateTableOffset != 5 || r.CommitLogOffset != 99 ||
		r.CommitOrRollback != StateCommit || !r.FromTransactionCheck || r.MsgID != "m" || r.TransactionID != "t" {
		t.Fatalf("%+v", r)
	}
	for key, bad := range map[string]string{"producerGroup": "", "tranStateTableOffset": "x",
		"commitLogOffset": "-1", "commitOrRollback": "4", "fromTransactionCheck": "perhaps"} {
		ext := map[string]string{}
		for k, v := range ok {
			ext[k] = v
		}
		ext[key] = bad
		if _, err := ParseEndTransactionHeader(ext); !errors.Is(err, ErrBadHeader) {
			t.Errorf("%s=%q: err %v", key, bad, err)
		}
	}
}

func TestCommitStoresFinalRecordOnce(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	r, half := h.sendHalf("order-1", 2)
	out, err := h.end(h.endRequest(r, StateCommit))
	if err != nil || out != Committed {
		t.Fatalf("commit: %v %v", out, err)
	}
	finals := h.store.queue(t, "Orders")
	if len(finals) != 1 {
		t.Fatalf("%d final records", len(finals))
	}
	f := finals[0]
	if f.QueueID != 2 || string(f.Body) != "order-1" || f.Flag != 1 ||
		message.TransactionType(f.SysFlag) != message.TransactionCommitType ||
		f.PreparedTransactionOffset != half.CommitLogOffset || f.BornTimestamp != half.BornTimestamp {
		t.Fatalf("final %+v", f)
	}
	for _, k := range []string{message.PropertyTransactionPrepared, message.PropertyRealTopic, message.PropertyRealQueueID} {
		if _, ok := f.Properties[k]; ok {
			t.Fatalf("final record keeps %s", k)
		}
	}
	if f.Properties[message.PropertyUniqKey] != "UNIQ-order-1" || f.Properties[message.PropertyProducerGroup] != "pg" {
		t.Fatalf("final props %v", f.Properties)
	}
	ops := h.store.queue(t, OpTopic)
	if len(ops) != 1 || string(ops[0].Body) != strconv.FormatInt(r.QueueOffset, 10) || ops[0].Properties[message.PropertyTags] != OpTag {
		t.Fatalf("ops %+v", ops)
	}
	// The check answer arriving later (same offsets) stores nothing.
	req := h.endRequest(r, StateCommit)
	req.FromTransactionCheck = true
	out, err = h.end(req)
	if err != nil || out != AlreadyResolved {
		t.Fatalf("duplicate: %v %v", out, err)
	}
	out, err = h.end(h.endRequest(r, StateRollback))
	if err != nil || out != AlreadyResolved {
		t.Fatalf("rollback after commit: %v %v", out, err)
	}
	if n := len(h.store.queue(t, "Orders")); n != 1 {
		t.Fatalf("%d final records after duplicates", n)
	}
	if h.svc.Pending() != 0 {
		t.Fatal("half still pending")
	}
}

func TestRollbackAndUnknown(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	r, _ := h.sendHalf("a", 0)
	if out, err := h.end(h.endRequest(r, StateUnknown)); err != nil || out != Ignored {
		t.Fatalf("unknown: %v %v", out, err)
	}
	// Still unresolved: the rollback below must store an op.
	if out, err := h.end(h.endRequest(r, StateRollback)); err != nil || out != RolledBack {
		t.Fatalf("rollback: %v %v", out, err)
	}
	if out, _ := h.end(h.endRequest(r, StateCommit)); out != AlreadyResolved {
		t.Fatalf("commit after rollback: %v", out)
	}
	if n := len(h.store.queue(t, "Orders")); n != 0 {
		t.Fatalf("rolled back transaction produced %d records", n)
	}
	if n := len(h.store.queue(t, OpTopic)); n != 1 {
		t.Fatalf("%d op records", n)
	}
}

func TestEndTransactionValidation(t *testing.T) {
	h := newHarness(t, nil)
	r, _ := h.sendHalf("a", 0)
	if _, err := h.end(h.endRequest(r, StateCommit)); !errors.Is(err, ErrNotReady) {
		t.Fatalf("before Start: %v", err)
	}
	h.start()
	base := h.endRequest(r, StateCommit)
	cases := map[string]func(*EndRequest){
		"wrong group":         func(q *EndRequest) { q.ProducerGroup = "other" },
		"wrong commit offset": func(q *EndRequest) { q.CommitLogOffset++ },
		"unknown half":        func(q *EndRequest) { q.TranStateTableOffset = 99 },
		"bad state":           func(q *EndRequest) { q.CommitOrRollback = 3 },
	}
	for name, mut := range cases {
		q := base
		mut(&q)
		if out, err := h.end(q); err == nil {
			t.Errorf("%s: accepted (%v)", name, out)
		}
	}
	if n := len(h.store.queue(t, "Orders")) + len(h.store.queue(t, OpTopic)); n != 0 {
		t.Fatalf("failed requests stored %d records", n)
	}
	if out, err := h.end(base); err != nil || out != Committed {
		t.Fatalf("valid commit after failures: %v %v", out, err)
	}
}

func TestConcurrentCommitsProduceOneRecord(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	r, _ := h.sendHalf("a", 0)
	gate := make(chan struct{})
	h.store.mu.Lock()
	h.store.appendGate = gate
	h.store.mu.Unlock()

	first := make(chan Outcome, 1)
	go func() {
		out, err := h.end(h.endRequest(r, StateCommit))
		if err != nil {
			t.Error(err)
		}
		first <- out
	}()
	// Wait until the first commit holds the half.
	waitFor(t, "first commit to be in flight", func() bool {
		h.svc.mu.Lock()
		defer h.svc.mu.Unlock()
		p := h.svc.pending[r.QueueOffset]
		return p != nil && p.busy
	})
	out, err := h.end(h.endRequest(r, StateCommit))
	if err != nil || out != InProgress {
		t.Fatalf("racing commit: %v %v", out, err)
	}
	close(gate)
	if out := <-first; out != Committed {
		t.Fatalf("first commit: %v", out)
	}
	if n := len(h.store.queue(t, "Orders")); n != 1 {
		t.Fatalf("%d final records", n)
	}
}

func TestManyConcurrentEnds(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	var results []HalfSendResult
	for i := 0; i < 20; i++ {
		r, _ := h.sendHalf("m"+strconv.Itoa(i), 0)
		results = append(results, r)
	}
	var wg sync.WaitGroup
	for _, r := range results {
		for k := 0; k < 3; k++ {
			wg.Add(1)
			go func(r HalfSendResult) {
				defer wg.Done()
				if _, err := h.end(h.endRequest(r, StateCommit)); err != nil {
					t.Error(err)
				}
			}(r)
		}
	}
	wg.Wait()
	if n := len(h.store.queue(t, "Orders")); n != 20 {
		t.Fatalf("%d final records for 20 transactions", n)
	}
}

func TestAppendFailureKeepsHalfPending(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	r, _ := h.sendHalf("a", 0)
	h.store.mu.Lock()
	h.store.failAppend = 1
	h.store.mu.Unlock()
	if _, err := h.end(h.endRequest(r, StateCommit)); err == nil {
		t.Fatal("append failure not reported")
	}
	if h.svc.Pending() != 1 {
		t.Fatal("half lost after failed append")
	}
	if out, err := h.end(h.endRequest(r, StateCommit)); err != nil || out != Committed {
		t.Fatalf("retry: %v %v", out, err)
	}
}

func TestCheckOldHalf(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	_, oldHalf := h.sendHalf("old", 1)
	h.clock.Advance(5 * time.Second)
	h.sendHalf("young", 1)
	h.clock.Advance(1 * time.Second) // old: 6 s, young: 1 s
	if err := h.svc.CheckOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	sent := h.checker.sent()
	if len(sent) != 1 {
		t.Fatalf("%d checks sent, want 1", len(sent))
	}
	req := sent[0]
	if req.Code != remoting.CheckTransactionState || !req.IsOneway() {
		t.Fatalf("code %d oneway %v", req.Code, req.IsOneway())
	}
	if h.checker.groups[0] != "pg" {
		t.Fatalf("check sent to group %q", h.checker.groups[0])
	}
	x := req.ExtFields
	if x["tranStateTableOffset"] != strconv.FormatInt(oldHalf.QueueOffset, 10) ||
		x["commitLogOffset"] != strconv.FormatInt(oldHalf.CommitLogOffset, 10) ||
		x["msgId"] != "UNIQ-old" || x["transactionId"] != "UNIQ-old" || x["topic"] != "Orders" ||
		x["offsetMsgId"] != message.OffsetMsgID(storeHost, oldHalf.CommitLogOffset) || x["bname"] != "broker-a" {
		t.Fatalf("ext %v", x)
	}
	body, err := message.DecodeRecords(req.Body)
	if err != nil || len(body) != 1 {
		t.Fatalf("body: %v", err)
	}
	if b := body[0]; b.Topic != "Orders" || b.QueueID != 1 || b.Properties[message.PropertyProducerGroup] != "pg" ||
		b.Properties[message.PropertyUniqKey] != "UNIQ-old" || string(b.Body) != "old" {
		t.Fatalf("check body %+v", b)
	}

	// The producer answers the check with the header's offsets.
	hdr := map[string]string{"producerGroup": "pg", "tranStateTableOffset": x["tranStateTableOffset"],
		"commitLogOffset": x["commitLogOffset"], "commitOrRollback": "8", "fromTransactionCheck": "true",
		"msgId": x["msgId"], "transactionId": x["transactionId"], "bname": ""}
	endReq, err := ParseEndTransactionHeader(hdr)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := h.end(endReq); err != nil || out != Committed {
		t.Fatalf("commit from check: %v %v", out, err)
	}
	// Next round: only the young one, now old enough, is checked.
	h.clock.Advance(5 * time.Second)
	if err := h.svc.CheckOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sent := h.checker.sent(); len(sent) != 2 || sent[1].ExtFields["msgId"] != "UNIQ-young" {
		t.Fatalf("second round sent %d checks", len(sent))
	}
}

func TestImmunityTimeDelaysCheck(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	msg := &message.Ext{Message: message.Message{Topic: "Orders", Body: []byte("b"), Properties: map[string]string{
		message.PropertyProducerGroup: "pg", message.PropertyUniqKey: "U",
		message.PropertyCheckImmunityTimeInSeconds: "60"}}}
	half, _ := PrepareHalf(msg)
	if err := h.store.Append(context.Background(), []*message.Ext{half}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(30 * time.Second)
	_ = h.svc.CheckOnce(context.Background())
	if n := len(h.checker.sent()); n != 0 {
		t.Fatalf("checked during immunity: %d", n)
	}
	h.clock.Advance(31 * time.Second)
	_ = h.svc.CheckOnce(context.Background())
	if n := len(h.checker.sent()); n != 1 {
		t.Fatalf("not checked after immunity: %d", n)
	}
}

func TestDiscardAfterMaxChecks(t *testing.T) {
	h := newHarness(t, nil) // CheckMax 3
	h.start()
	r, half := h.sendHalf("stuck", 0)
	for i := 0; i < 3; i++ {
		h.clock.Advance(10 * time.Second)
		if err := h.svc.CheckOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(h.checker.sent()); n != 3 {
		t.Fatalf("%d checks, want 3", n)
	}
	h.clock.Advance(10 * time.Second)
	if err := h.svc.CheckOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(h.checker.sent()); n != 3 {
		t.Fatalf("checked beyond CheckMax: %d", n)
	}
	discarded := h.store.queue(t, CheckMaxTimeTopic)
	if len(discarded) != 1 || string(discarded[0].Body) != "stuck" ||
		discarded[0].Properties[message.PropertyTransactionCheckTimes] != "3" ||
		discarded[0].Properties[message.PropertyRealTopic] != "Orders" {
		t.Fatalf("discarded %+v", discarded)
	}
	if h.svc.Pending() != 0 {
		t.Fatal("discarded half still pending")
	}
	if out, _ := h.end(h.endRequest(r, StateCommit)); out != AlreadyResolved {
		t.Fatalf("late commit of discarded half: %v", out)
	}
	if n := len(h.store.queue(t, "Orders")); n != 0 {
		t.Fatal("discarded transaction committed")
	}
	_ = half
}

func TestNewLeaderRebuildsState(t *testing.T) {
	for _, saved := range []bool{true, false} {
		t.Run("progress saved="+strconv.FormatBool(saved), func(t *testing.T) {
			h := newHarness(t, nil)
			h.start()
			rDone, _ := h.sendHalf("done", 0)
			rOpen, _ := h.sendHalf("open", 0)
			rBack, _ := h.sendHalf("back", 0)
			if out, _ := h.end(h.endRequest(rDone, StateCommit)); out != Committed {
				t.Fatal(out)
			}
			if out, _ := h.end(h.endRequest(rBack, StateRollback)); out != RolledBack {
				t.Fatal(out)
			}
			if saved {
				if err := h.svc.CheckOnce(context.Background()); err != nil {
					t.Fatal(err)
				}
				if p := h.store.progress; p.HalfOffset != rOpen.QueueOffset {
					t.Fatalf("progress %+v, want half offset %d", p, rOpen.QueueOffset)
				}
			}
			h.svc.Stop()
			if _, err := h.end(h.endRequest(rOpen, StateCommit)); !errors.Is(err, ErrNotReady) {
				t.Fatalf("stopped service answered %v", err)
			}

			// New leader, same replicated store.
			h.svc = h.newService(nil)
			h.start()
			if h.svc.Pending() != 1 {
				t.Fatalf("pending %d after rebuild, want 1", h.svc.Pending())
			}
			if out, _ := h.end(h.endRequest(rDone, StateCommit)); out != AlreadyResolved {
				t.Fatalf("re-commit after failover: %v", out)
			}
			if out, err := h.end(h.endRequest(rOpen, StateCommit)); out != Committed || err != nil {
				t.Fatalf("open commit: %v %v", out, err)
			}
			if n := len(h.store.queue(t, "Orders")); n != 2 {
				t.Fatalf("%d final records, want 2", n)
			}
			// Everything resolved: the checkpoint moves past all halves.
			if err := h.svc.CheckOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			if p := h.store.progress; p.HalfOffset != rBack.QueueOffset+1 {
				t.Fatalf("progress %+v", p)
			}
			// A third leader starting from that checkpoint has nothing pending.
			h.svc.Stop()
			h.svc = h.newService(nil)
			h.start()
			if h.svc.Pending() != 0 {
				t.Fatalf("pending %d", h.svc.Pending())
			}
		})
	}
}

func TestPeriodicCheckRuns(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CheckInterval = 5 * time.Millisecond })
	h.sendHalf("a", 0)
	h.clock.Advance(time.Minute)
	h.start()
	waitFor(t, "a periodic check", func() bool { return h.checker.n.Load() >= 1 })
}

func TestNewServiceRequiresDependencies(t *testing.T) {
	if _, err := NewService(Config{}); err == nil {
		t.Fatal("accepted empty config")
	}
}

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

func TestProgressJSON(t *testing.T) {
	p := Progress{HalfOffset: 7, OpOffset: 3}
	got, err := UnmarshalProgress(MarshalProgress(p))
	if err != nil || got != p {
		t.Fatalf("%+v %v", got, err)
	}
	for _, bad := range []string{"", "{", `{"halfOffset":-1}`, `[]`} {
		if _, err := UnmarshalProgress([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseOpBody(t *testing.T) {
	got, err := ParseOpBody([]byte("3,15, 7"))
	if err != nil || len(got) != 3 || got[1] != 15 || got[2] != 7 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", ",", "a", "-1", "1,,2"} {
		if _, err := ParseOpBody([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseOpBody(f *testing.F) {
	f.Add([]byte("12"))
	f.Add([]byte("1,2,3"))
	f.Add([]byte("x,"))
	f.Fuzz(func(t *testing.T, b []byte) {
		offs, err := ParseOpBody(b)
		if err != nil {
			return
		}
		if len(offs) == 0 || len(offs) > maxOpOffsets {
			t.Fatalf("%d offsets", len(offs))
		}
		for _, o := range offs {
			if o < 0 {
				t.Fatal("negative offset")
			}
		}
	})
}

func FuzzUnmarshalProgress(f *testing.F) {
	f.Add(MarshalProgress(Progress{HalfOffset: 1, OpOffset: 2}))
	f.Add([]byte(`{"halfOffset":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := UnmarshalProgress(b)
		if err == nil && (p.HalfOffset < 0 || p.OpOffset < 0) {
			t.Fatalf("accepted %+v", p)
		}
	})
}

func FuzzParseEndTransactionHeader(f *testing.F) {
	f.Add("pg", "1", "2", "8", "false")
	f.Add("", "-1", "x", "99", "")
	f.Fuzz(func(t *testing.T, group, tso, clo, state, fromCheck string) {
		r, err := ParseEndTransactionHeader(map[string]string{"producerGroup": group,
			"tranStateTableOffset": tso, "commitLogOffset": clo, "commitOrRollback": state,
			"fromTransactionCheck": fromCheck})
		if err != nil {
			return
		}
		if r.ProducerGroup == "" || r.TranStateTableOffset < 0 || r.CommitLogOffset < 0 {
			t.Fatalf("accepted %+v", r)
		}
		switch r.CommitOrRollback {
		case StateUnknown, StateCommit, StateRollback:
		default:
			t.Fatalf("state %d", r.CommitOrRollback)
		}
	})
}

func TestMaxPendingBoundsMemory(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxPending = 2 })
	h.start()
	r1, _ := h.sendHalf("1", 0)
	h.sendHalf("2", 0)
	r3, _ := h.sendHalf("3", 0)
	if err := h.svc.CheckOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.svc.Pending() != 2 {
		t.Fatalf("pending %d, want the bound 2", h.svc.Pending())
	}
	if _, err := h.end(h.endRequest(r3, StateCommit)); err == nil {
		t.Fatal("commit of a half beyond the bound accepted")
	}
	if out, err := h.end(h.endRequest(r1, StateCommit)); err != nil || out != Committed {
		t.Fatalf("commit 1: %v %v", out, err)
	}
	if out, err := h.end(h.endRequest(r3, StateCommit)); err != nil || out != Committed {
		t.Fatalf("commit 3 after room was made: %v %v", out, err)
	}
}

func BenchmarkEndTransactionCommit(b *testing.B) {
	h := newHarness(b, nil)
	if err := h.svc.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer h.svc.Stop()
	reqs := make([]EndRequest, b.N)
	for i := range reqs {
		r, _ := h.sendHalf("m", 0)
		reqs[i] = h.endRequest(r, StateCommit)
	}
	b.ResetTimer()
	for i := range reqs {
		if out, err := h.end(reqs[i]); err != nil || out != Committed {
			b.Fatalf("%v %v", out, err)
		}
	}
}
