package broker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
)

// restart stops member i gracefully and starts it again on its store, its
// Raft links cut when isolated.
func (g *groupHarness) restart(i int, isolated bool) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.brokers[i].Close(ctx); err != nil {
		g.t.Fatalf("close n%d: %v", i, err)
	}
	_, g.trans[i] = raft.NewInmemTransport(g.addrs[i])
	if isolated {
		g.link(i)
	} else {
		g.link(-1)
	}
	g.start(i)
}

func (g *groupHarness) index(b *Broker) int {
	for i, x := range g.brokers {
		if x == b {
			return i
		}
	}
	g.t.Fatalf("broker %s not in the group", b.Addr())
	return -1
}

// waitDirectory waits until every member's directory names leader at its
// current term and member address.
func (g *groupHarness) waitDirectory(leader *Broker) {
	g.t.Helper()
	term := leader.role.get().term
	for _, b := range g.brokers {
		waitFor(g.t, "member directory entry of the leader on "+b.cfg.DLegerSelfID, 10*time.Second, func() bool {
			e, ok := b.meta.Member(leader.cfg.DLegerSelfID)
			return ok && e.Term == term && e.MemberAddr == leader.MemberAddr() && e.ClientAddr == leader.Addr()
		})
	}
}

// rawCall sends one request from a connection bound to local IP from and
// returns the answer and the connection's local address.
func rawCall(t *testing.T, from, addr string, req *remoting.Command) (*remoting.Command, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req.Opaque = 77
	frame, err := req.MarshalFrame(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := remoting.ReadCommand(bufio.NewReader(nc), 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Opaque != 77 || !resp.IsResponse() {
		t.Fatalf("answer with opaque %d flag %d", resp.Opaque, resp.Flag)
	}
	return resp, nc.LocalAddr().String()
}

// storedMessages pulls every message of (topic, 0) from b.
func storedMessages(t *testing.T, e *testEnv, b *Broker, topic string) []*message.Ext {
	t.Helper()
	var out []*message.Ext
	for {
		p := e.callAddr(b.Addr(), remoting.PullMessage, pullExt("check", topic, 0, int64(len(out)), 0, 0), nil)
		if p.Code != remoting.Success {
			return out
		}
		msgs, err := message.DecodeRecords(bodyOf(p))
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			return out
		}
		out = append(out, msgs...)
	}
}

// countBodies counts stored bodies and fails on any body stored twice.
func countBodies(t *testing.T, msgs []*message.Ext) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for _, m := range msgs {
		seen[string(m.Body)]++
		if seen[string(m.Body)] == 2 {
			t.Errorf("message %q stored twice", m.Body)
		}
	}
	return seen
}

func TestFollowerForwardsWritesToLeader(t *testing.T) {
	g, leader := startGroupWithTopic(t, "F")
	e := g.env

	want := map[string]bool{}
	var bornHost string
	for _, f := range g.brokers {
		if f == leader {
			continue
		}
		body := "raw-" + f.cfg.DLegerSelfID
		r, local := rawCall(t, "127.0.0.2", f.Addr(), remoting.NewRequest(remoting.SendMessage,
			sendExt("F", 0, map[string]string{message.PropertyUniqKey: body}), []byte(body)))
		if r.Code != remoting.Success {
			t.Fatalf("send to follower %s: %d %q", f.cfg.DLegerSelfID, r.Code, r.Remark)
		}
		// The answer is the leader's: its msgId names the leader's store host.
		host, _, err := message.ParseOffsetMsgID(r.Ext("msgId"))
		if err != nil || host.String() != leader.Addr() {
			t.Fatalf("msgId %q of a forwarded send: %v %v, want store host %s", r.Ext("msgId"), host, err, leader.Addr())
		}
		want[body] = true
		if f == g.brokers[(g.index(leader)+1)%3] {
			bornHost = local
		}
		body = "v2-" + f.cfg.DLegerSelfID
		if r := e.callAddr(f.Addr(), remoting.SendMessage, sendExt("F", 0, nil), []byte(body)); r.Code != remoting.Success {
			t.Fatalf("send to follower: %d %q", r.Code, r.Remark)
		}
		want[body] = true
		body = "oneway-" + f.cfg.DLegerSelfID
		ow := remoting.NewRequest(remoting.SendMessage, sendExt("F", 0, nil), []byte(body))
		if err := e.client.InvokeOneway(context.Background(), f.Addr(), ow); err != nil {
			t.Fatal(err)
		}
		want[body] = true

		// A batch (V2 header, as the Go client sends it) is forwarded whole.
		var items []message.Message
		for j := 0; j < 3; j++ {
			b := fmt.Sprintf("batch-%s-%d", f.cfg.DLegerSelfID, j)
			items = append(items, message.Message{Body: []byte(b)})
			want[b] = true
		}
		batch, err := message.EncodeBatch(items)
		if err != nil {
			t.Fatal(err)
		}
		bext := map[string]string{"a": "pg", "b": "F", "c": "TBW102", "d": "4", "e": "0", "f": "0",
			"g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": "0", "i": "", "j": "0", "k": "false", "m": "true"}
		if r := e.callAddr(f.Addr(), remoting.SendBatchMessage, bext, batch); r.Code != remoting.Success || len(strings.Split(r.Ext("msgId"), ",")) != 3 {
			t.Fatalf("batch to follower: %d %q %v", r.Code, r.Remark, r.ExtFields)
		}

		// A write that was forwarded once is refused by a non-leader, not forwarded again.
		ext := sendExt("F", 0, nil)
		ext[ExtForwarded] = "1"
		if r := e.callAddr(f.Addr(), remoting.SendMessage, ext, []byte("twice")); r.Code != remoting.ServiceNotAvailable {
			t.Fatalf("forwarded write on a follower: %d %q", r.Code, r.Remark)
		}
	}
	waitFor(t, "every forwarded message on the leader", 10*time.Second, func() bool { return e.maxOffset("F", 0) >= int64(len(want)) })
	msgs := storedMessages(t, e, leader, "F")
	seen := countBodies(t, msgs)
	if len(msgs) != len(want) {
		t.Fatalf("%d messages stored, want %d: %v", len(msgs), len(want), seen)
	}
	for body := range want {
		if seen[body] != 1 {
			t.Errorf("message %q stored %d times", body, seen[body])
		}
	}
	// The stored BornHost is the client's, not the forwarding member's.
	for _, m := range msgs {
		if string(m.Body) == "raw-"+g.brokers[(g.index(leader)+1)%3].cfg.DLegerSelfID && m.BornHost.String() != bornHost {
			t.Fatalf("BornHost %s, want the client's %s", m.BornHost, bornHost)
		}
	}
}

func TestSendDuringElectionWaitsAndSucceeds(t *testing.T) {
	g, leader := startGroupWithTopic(t, "E")
	e := g.env
	li := g.index(leader)
	follower := g.brokers[(li+1)%3]

	// Cut the leader off: the followers elect another one, while the sends
	// reaching a follower wait for it instead of failing.
	g.link(li)
	for i := 0; i < 3; i++ {
		body := "e" + strconv.Itoa(i)
		r := e.callAddr(follower.Addr(), remoting.SendMessage, sendExt("E", 0, map[string]string{message.PropertyUniqKey: body}), []byte(body))
		if r.Code != remoting.Success {
			t.Fatalf("send %d during the election: %d %q", i, r.Code, r.Remark)
		}
		if r.Ext("queueOffset") != strconv.Itoa(i) {
			t.Fatalf("send %d stored at queue offset %s", i, r.Ext("queueOffset"))
		}
	}
	next := leaderOf(t, g.brokers, leader)
	g.link(-1)
	msgs := storedMessages(t, e, next, "E")
	if seen := countBodies(t, msgs); len(msgs) != 3 || seen["e0"] != 1 || seen["e2"] != 1 {
		t.Fatalf("stored %v", seen)
	}
}

// sender sends unique messages to one member until stopped, retrying a
// refused or failed send on the next member as a producer with write
// aliases does, and records what was acknowledged.
type sender struct {
	e       *testEnv
	members []*Broker
	topic   string
	name    string
	start   int

	mu       sync.Mutex
	acked    map[string]int
	failures []string
	retried  atomic.Int64
}

func (s *sender) run(stop <-chan struct{}, strict bool) {
	target := s.start
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		body := fmt.Sprintf("%s-%d", s.name, i)
		for attempt := 0; ; attempt++ {
			m := s.members[target%len(s.members)]
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, err := s.e.client.Invoke(ctx, m.Addr(), remoting.NewRequest(remoting.SendMessage,
				sendExt(s.topic, 0, map[string]string{message.PropertyUniqKey: body}), []byte(body)))
			cancel()
			if err == nil && r.Code == remoting.Success {
				s.mu.Lock()
				s.acked[body]++
				s.mu.Unlock()
				break
			}
			why := fmt.Sprint(err)
			if err == nil {
				why = fmt.Sprintf("code %d %q", r.Code, r.Remark)
			}
			if strict {
				s.mu.Lock()
				s.failures = append(s.failures, body+" to "+m.cfg.DLegerSelfID+": "+why)
				s.mu.Unlock()
				break
			}
			s.retried.Add(1)
			target++
			if attempt > 20 {
				s.mu.Lock()
				s.failures = append(s.failures, body+": "+why)
				s.mu.Unlock()
				break
			}
		}
	}
}

func (s *sender) ackedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

func waitAcked(t *testing.T, what string, s *sender, n int) {
	t.Helper()
	waitFor(t, what, 10*time.Second, func() bool { return s.ackedCount() >= n })
}

// startGroupWithTopic starts a group, creates a one-queue topic and waits
// until every member knows where the leader is.
func startGroupWithTopic(t *testing.T, topic string) (*groupHarness, *Broker) {
	g := startGroupHarness(t)
	leader := leaderOf(t, g.brokers, nil)
	g.env.b = leader
	g.env.createTopic(topic, 1)
	g.waitDirectory(leader)
	return g, leader
}

func startSenders(g *groupHarness, topic string, strict bool) ([]*sender, func()) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var out []*sender
	for i := range 4 * len(g.brokers) {
		s := &sender{e: g.env, members: g.brokers, topic: topic, name: "s" + strconv.Itoa(i), start: i, acked: map[string]int{}}
		out = append(out, s)
		wg.Add(1)
		go func() { defer wg.Done(); s.run(stop, strict) }()
	}
	return out, func() { close(stop); wg.Wait() }
}

// checkStoredOnce asserts that the group's leader holds exactly the
// acknowledged messages, each once.
func checkStoredOnce(t *testing.T, g *groupHarness, senders []*sender, skip *Broker) {
	t.Helper()
	acked := map[string]bool{}
	for _, s := range senders {
		for _, f := range s.failures {
			t.Errorf("send failed: %s", f)
		}
		for b := range s.acked {
			acked[b] = true
		}
	}
	leader := leaderOf(t, g.brokers, skip)
	g.env.b = leader
	waitFor(t, "acknowledged messages dispatched", 10*time.Second, func() bool { return g.env.maxOffset(senders[0].topic, 0) >= int64(len(acked)) })
	msgs := storedMessages(t, g.env, leader, senders[0].topic)
	seen := countBodies(t, msgs)
	for b := range seen {
		if !acked[b] {
			t.Errorf("message %q stored but never acknowledged", b)
		}
	}
	for b := range acked {
		if seen[b] == 0 {
			t.Errorf("acknowledged message %q lost", b)
		}
	}
	if len(acked) == 0 {
		t.Fatal("nothing was sent")
	}
	t.Logf("%d messages acknowledged, %d stored", len(acked), len(msgs))
}

func TestTransferUnderSendsLosesNone(t *testing.T) {
	g, _ := startGroupWithTopic(t, "X")

	// Strict senders: any answer but success is a failure, no retries.
	senders, stop := startSenders(g, "X", true)
	for i := 0; i < 3; i++ {
		waitAcked(t, "sends acknowledged before the transfer", senders[0], 20*(i+1))
		old := leaderOf(t, g.brokers, nil)
		r := g.env.callAddr(old.Addr(), remoting.RaftTransferLeader, map[string]string{"targetId": ""}, nil)
		if r.Code != remoting.Success {
			t.Fatalf("transfer %d: %d %q", i, r.Code, r.Remark)
		}
		next := leaderOf(t, g.brokers, old)
		g.waitDirectory(next)
	}
	for i := range senders {
		waitAcked(t, "sends acknowledged after the transfers", senders[i], 80)
	}
	stop()
	checkStoredOnce(t, g, senders, nil)
}

func TestCloseLeaderUnderLoadAnswersCommittedSends(t *testing.T) {
	g, leader := startGroupWithTopic(t, "C")

	// Senders retry refused or unanswered sends on another member: a send
	// the stopping leader committed without answering would be stored twice.
	senders, stop := startSenders(g, "C", false)
	waitAcked(t, "sends acknowledged before the stop", senders[0], 30)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := leader.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	cancel()
	counts := make([]int, len(senders))
	for i, s := range senders {
		counts[i] = s.ackedCount()
	}
	for i := range senders {
		waitAcked(t, "sends acknowledged after the stop", senders[i], counts[i]+30)
	}
	stop()
	checkStoredOnce(t, g, senders, leader)
	var retried int64
	for _, s := range senders {
		retried += s.retried.Load()
	}
	t.Logf("%d sends retried on another member", retried)
}

func TestMemberDirectoryRestoredAfterRestart(t *testing.T) {
	g := startGroupHarness(t)
	leader := leaderOf(t, g.brokers, nil)
	g.waitDirectory(leader)
	fi := (g.index(leader) + 1) % 3
	// Restarted cut off from the group, the member knows the directory
	// from its own store at once.
	g.restart(fi, true)
	if e, ok := g.brokers[fi].meta.Member(leader.cfg.DLegerSelfID); !ok || e.MemberAddr != leader.MemberAddr() {
		t.Fatalf("directory after restart: %+v %v", g.brokers[fi].Members(), ok)
	}
	g.link(-1)
	// Forwarding works again once it is back.
	g.env.b = leader
	g.env.createTopic("R", 1)
	if r := g.env.callAddr(g.brokers[fi].Addr(), remoting.SendMessage, sendExt("R", 0, nil), []byte("r")); r.Code != remoting.Success {
		t.Fatalf("send to the restarted member: %d %q", r.Code, r.Remark)
	}
}

func TestForwardCapAnswersBusy(t *testing.T) {
	g := startGroupHarness(t)
	leader := leaderOf(t, g.brokers, nil)
	f := g.brokers[(g.index(leader)+1)%3]
	f.fwd.runs.busy.Store(f.forwardCap())
	r := g.env.callAddr(f.Addr(), remoting.SendMessage, sendExt("TBW102", 0, nil), []byte("x"))
	if r.Code != remoting.SystemBusy {
		t.Fatalf("send beyond the forward cap: %d %q", r.Code, r.Remark)
	}
	f.fwd.runs.busy.Store(0)
}

// A forward to a leader that stops answering is given up once another
// member leads (after a grace in which a live old leader still answers).
func TestForwardGivesUpOnSilentOldLeader(t *testing.T) {
	srv := remoting.NewServer(remoting.ServerConfig{})
	release := make(chan struct{})
	srv.Handle(remoting.SendMessage, "", func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
		if req.Ext("answer") == "late" {
			<-release
			return remoting.NewResponse(remoting.Success, "late")
		}
		return nil // silent, like a paused process
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { close(release); srv.Shutdown(context.Background()) })

	b := &Broker{cfg: DefaultConfig(), log: testLogger(t), meta: newMetaStore()}
	b.cfg.DLegerSelfID = "n2"
	b.fwd = newForwarder(b)
	t.Cleanup(b.fwd.close)
	old := ln.Addr().String()
	b.meta.members["n0"] = Member{ID: "n0", MemberAddr: old}
	b.meta.members["n1"] = Member{ID: "n1", MemberAddr: "127.0.0.1:1"}
	b.role.set(roleState{leaderID: "n0"})

	for _, answer := range []string{"never", "late"} {
		b.role.set(roleState{leaderID: "n0"})
		changed := b.fwd.changes()
		done := make(chan error, 1)
		var resp *remoting.Command
		go func() {
			var err error
			resp, err = b.fwd.call(context.Background(), old, remoting.NewRequest(remoting.SendMessage, map[string]string{"answer": answer}, nil), changed)
			done <- err
		}()
		// n1 takes over.
		b.role.set(roleState{leaderID: "n1"})
		b.fwd.kick()
		if answer == "late" {
			release <- struct{}{}
			if err := <-done; err != nil || resp.Remark != "late" {
				t.Fatalf("a live old leader's answer within the grace: %v %v", resp, err)
			}
			continue
		}
		if err := <-done; !errors.Is(err, errLeaderMoved) {
			t.Fatalf("silent old leader: %v, want errLeaderMoved", err)
		}
	}
}

// A stopped member stays out of the routes: the leadership change during its
// stop must not register it again after it unregistered.
func TestClosedLeaderLeavesTheRoutes(t *testing.T) {
	g, leader := startGroupWithTopic(t, "L")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := leader.Close(ctx); err != nil {
		t.Fatal(err)
	}
	next := leaderOf(t, g.brokers, leader)
	waitFor(t, "the new leader in the route", 10*time.Second, func() bool {
		r := g.env.callAddr(g.env.ns.Addr(), remoting.GetRouteInfoByTopic, map[string]string{"topic": "L"}, nil)
		return r.Code == 0 && strings.Contains(string(r.Body), `"0":"`+next.Addr()+`"`)
	})
	// The namesrv's member list (cluster info) shows every registered member.
	r := g.env.callAddr(g.env.ns.Addr(), remoting.GetBrokerClusterInfo, nil, nil)
	if r.Code != 0 || strings.Contains(string(r.Body), leader.Addr()) {
		t.Fatalf("stopped member %s still registered: %d %s", leader.Addr(), r.Code, r.Body)
	}
}

// END_TRANSACTION and CONSUMER_SEND_MSG_BACK reaching a follower are
// served by the leader too.
func TestFollowerForwardsEndTransactionAndSendBack(t *testing.T) {
	g, leader := startGroupWithTopic(t, "T")
	e := g.env
	f := g.brokers[(g.index(leader)+1)%3]
	ext := sendExt("T", 0, map[string]string{message.PropertyTransactionPrepared: "true", message.PropertyProducerGroup: "pg",
		message.PropertyUniqKey: "U-half"})
	ext["sysFlag"] = "4"
	h := e.callAddr(f.Addr(), remoting.SendMessage, ext, []byte("half"))
	if h.Code != 0 || h.Ext("transactionId") != "U-half" {
		t.Fatalf("half send via follower: %d %s %v", h.Code, h.Remark, h.ExtFields)
	}
	_, off, err := message.ParseOffsetMsgID(h.Ext("msgId"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "commit via the follower", 10*time.Second, func() bool {
		r := e.callAddr(f.Addr(), remoting.EndTransaction, map[string]string{"producerGroup": "pg", "tranStateTableOffset": h.Ext("queueOffset"),
			"commitLogOffset": strconv.FormatInt(off, 10), "commitOrRollback": "8", "fromTransactionCheck": "false",
			"msgId": "U-half", "transactionId": "U-half"}, nil)
		return r.Code == 0
	})
	waitFor(t, "the committed message", 10*time.Second, func() bool { return e.maxOffset("T", 0) == 1 })
	msgs := storedMessages(t, e, leader, "T")
	if len(msgs) != 1 || string(msgs[0].Body) != "half" {
		t.Fatalf("committed %v", msgs)
	}
	r := e.callAddr(f.Addr(), remoting.ConsumerSendMsgBack, map[string]string{"offset": strconv.FormatInt(msgs[0].CommitLogOffset, 10),
		"group": "sg", "delayLevel": "0", "originMsgId": msgs[0].MsgID(), "originTopic": "T", "unitMode": "false", "maxReconsumeTimes": "16"}, nil)
	if r.Code != 0 {
		t.Fatalf("send back via follower: %d %s", r.Code, r.Remark)
	}
	if _, ok := leader.meta.Topic("%RETRY%sg"); !ok {
		t.Fatal("send back did not reach the leader")
	}
}
