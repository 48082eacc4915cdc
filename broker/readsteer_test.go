package broker

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/dledger"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
)

// fakeSteer is a readSteer for member self of n0,n1,n2 over a settable
// progress and clock.
func fakeSteer(self int, p *dledger.ReadProgress, now *time.Time) *readSteer {
	s := newReadSteer([]string{"n0", "n1", "n2"}, self, true, 500*time.Millisecond, func() dledger.ReadProgress { return *p })
	s.now = func() time.Time { return *now }
	return s
}

func TestSteerLeaderOffersCaughtUpFollowers(t *testing.T) {
	now := time.Unix(1000, 0)
	fresh := now.Add(-100 * time.Millisecond)
	p := &dledger.ReadProgress{Leader: true, LeaderID: "n0", CommitIndex: 5000, AppliedIndex: 5000,
		Peers: []dledger.PeerProgress{{ID: "n1", LastLog: 5000, Contact: fresh}, {ID: "n2", LastLog: 4990, Contact: fresh}}}
	s := fakeSteer(0, p, &now)
	seen := map[int64]int{}
	for q := int32(0); q < 16; q++ {
		d := s.decide("T", q)
		if !d.serveHere || (d.suggest != 2 && d.suggest != 3) {
			t.Fatalf("queue %d: %+v, want follower 2 or 3", q, d)
		}
		if again := s.decide("T", q); again != d {
			t.Fatalf("queue %d: %+v then %+v", q, d, again)
		}
		seen[d.suggest]++
	}
	if len(seen) != 2 {
		t.Fatalf("16 queues all on one follower: %v", seen)
	}
	before := map[int32]int64{}
	for q := int32(0); q < 16; q++ {
		before[q] = s.decide("T", q).suggest
	}

	// n2 silent for longer than a heartbeat timeout: everything goes to n1;
	// n1 lagging too: the leader keeps them (0).
	p.Peers[1].Contact = now.Add(-600 * time.Millisecond)
	for q := int32(0); q < 16; q++ {
		if d := s.decide("T", q); d.suggest != 2 {
			t.Fatalf("queue %d with n2 silent: %+v", q, d)
		}
	}
	p.Peers[0].LastLog = 5000 - steerMaxLagEntries - 1
	if d := s.decide("T", 0); d.suggest != 1 || !d.serveHere {
		t.Fatalf("no healthy follower: %+v, want the leader's own stable id", d)
	}

	// Both healthy again: every queue returns to where it was (rendezvous).
	p.Peers[0].LastLog, p.Peers[1].Contact = 5000, fresh
	for q := int32(0); q < 16; q++ {
		if d := s.decide("T", q); d.suggest != before[q] {
			t.Fatalf("queue %d moved from %d to %d", q, before[q], d.suggest)
		}
	}

	// A new leader keeps consumers off the member it took over from (which
	// is closing after a graceful handover), for a while.
	now = now.Add(time.Hour)
	s = fakeSteer(1, p, &now)
	p.Leader, p.LeaderID, p.LastContact = false, "n2", now
	if d := s.decide("T", 0); d.suggest != 2 {
		t.Fatalf("follower n1: %+v", d)
	}
	p.LastContact = time.Time{}
	p.Leader, p.LeaderID = true, "n1"
	p.Peers = []dledger.PeerProgress{{ID: "n0", LastLog: 5000, Contact: now}, {ID: "n2", LastLog: 5000, Contact: now}}
	spread := map[int64]bool{}
	for q := int32(0); q < 16; q++ {
		if d := s.decide("T", q); d.suggest != 1 {
			t.Fatalf("queue %d right after taking over from n2: %+v", q, d)
		}
	}
	now = now.Add(steerHandoverHeartbeats * 500 * time.Millisecond)
	for i := range p.Peers {
		p.Peers[i].Contact = now
	}
	for q := int32(0); q < 16; q++ {
		spread[s.decide("T", q).suggest] = true
	}
	if !spread[1] || !spread[3] {
		t.Fatalf("predecessor still avoided after the handover window: %v", spread)
	}

	// A closing leader without healthy followers still sends consumers away.
	p.Peers = nil
	s.closing.Store(true)
	if d := s.decide("T", 0); d.suggest != 2 && d.suggest != 3 || d.serveHere {
		t.Fatalf("closing leader: %+v", d)
	}
}

func TestSteerElectedBeforeBarrierSteersAsLeader(t *testing.T) {
	now := time.Unix(1000, 0)
	p := &dledger.ReadProgress{LeaderID: "n0", CommitIndex: 10, AppliedIndex: 10,
		Peers: []dledger.PeerProgress{{ID: "n1", LastLog: 10, Contact: now}, {ID: "n2", LastLog: 10, Contact: now}}}
	if d := fakeSteer(0, p, &now).decide("T", 0); !d.serveHere || (d.suggest != 2 && d.suggest != 3) {
		t.Fatalf("raft leader with its write gate still closed: %+v", d)
	}
}

func TestSteerFollower(t *testing.T) {
	now := time.Unix(1000, 0)
	p := &dledger.ReadProgress{LeaderID: "n0", CommitIndex: 5000, AppliedIndex: 4999, LastContact: now.Add(-50 * time.Millisecond)}
	s := fakeSteer(1, p, &now)
	check := func(what string, suggest, authority int64, serve bool) {
		t.Helper()
		d := s.decide("T", 3)
		if d.suggest != suggest || d.authority != authority || d.serveHere != serve {
			t.Fatalf("%s: %+v, want suggest %d authority %d serveHere %v", what, d, suggest, authority, serve)
		}
	}
	check("caught up", 2, 1, true)

	p.AppliedIndex = 5000 - steerMaxLagEntries - 1
	check("lagging", 1, 1, false)
	p.AppliedIndex = 5000

	// Leader lost: keeps its consumers through an election, then sends them
	// to the other follower, not to the leader it lost.
	p.LeaderID = ""
	now = now.Add(time.Second)
	check("within the election grace", 2, 3, true)
	now = now.Add(time.Second)
	check("cut off", 3, 3, false)

	// Back in contact with a new leader n2.
	p.LeaderID, p.LastContact = "n2", now
	check("new leader", 2, 3, true)

	s.closing.Store(true)
	check("closing: to the other follower", 1, 3, false)

	// slaveReadEnable=false: everything to brokerId 0.
	s = newReadSteer([]string{"n0", "n1", "n2"}, 1, false, time.Second, func() dledger.ReadProgress { return *p })
	check("slave read disabled", 0, 0, true)
}

// ordinalOf is the stable id (1+ordinal) of a group member.
func stableIDOf(b *Broker) string { return strconv.Itoa(1 + b.node.SelfOrdinal()) }

func followersOf(brokers []*Broker, leader *Broker) []*Broker {
	var out []*Broker
	for _, b := range brokers {
		if b != leader {
			out = append(out, b)
		}
	}
	return out
}

// pullAsync sends a pull and delivers its answer on the returned channel.
func (e *testEnv) pullAsync(addr string, ext map[string]string) <-chan *remoting.Command {
	ch := make(chan *remoting.Command, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		r, err := e.client.Invoke(ctx, addr, remoting.NewRequest(remoting.PullMessage, ext, nil))
		if err != nil {
			r = remoting.NewResponse(-1, err.Error())
		}
		ch <- r
	}()
	return ch
}

// awaitAnswer waits for a parked pull's answer; the long polls in these
// tests are 30 s, so an answer within 15 s did not come from their timer.
func awaitAnswer(t *testing.T, what string, ch <-chan *remoting.Command) *remoting.Command {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(15 * time.Second):
		t.Fatalf("no answer to the parked pull: %s", what)
		return nil
	}
}

const longPoll = 30000 // ms, the longest park

// leadGroup starts a group and creates topic on its leader, the env's
// broker (which mustSend keeps pointing at the leader).
func leadGroup(t *testing.T, topic string, queues int) (*testEnv, []*Broker) {
	t.Helper()
	e, brokers := startGroup(t)
	e.group = brokers
	q := strconv.Itoa(queues)
	e.onLeader("create topic", func() *remoting.Command {
		return e.call(remoting.UpdateAndCreateTopic, map[string]string{"topic": topic, "readQueueNums": q, "writeQueueNums": q,
			"perm": "6", "topicFilterType": "SINGLE_TAG", "order": "false"}, nil)
	})
	return e, brokers
}

// onLeader runs call on the leader until it succeeds: under load the test
// group's 200 ms elections may move leadership between two calls.
func (e *testEnv) onLeader(what string, call func() *remoting.Command) {
	e.t.Helper()
	t := e.t.(*testing.T)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if e.b == nil || !e.b.IsLeader() {
			e.b = leaderOf(t, e.group, nil)
		}
		r := call()
		if r.Code == remoting.Success {
			return
		}
		if r.Code != remoting.ServiceNotAvailable || time.Now().After(deadline) {
			t.Fatalf("%s: %d %s", what, r.Code, r.Remark)
		}
		e.b = nil
	}
}

func (e *testEnv) mustSend(topic string, qid int, tag, body string) {
	e.t.Helper()
	e.onLeader("send", func() *remoting.Command { return e.send(topic, qid, tag, body) })
}

// waitParked waits until b holds one parked pull.
func waitParked(t *testing.T, b *Broker) {
	t.Helper()
	waitFor(t, "the pull parked", 10*time.Second, func() bool {
		b.holds.mu.Lock()
		defer b.holds.mu.Unlock()
		return len(b.holds.waiting) == 1
	})
}

func TestGroupPullsSteerToFollowers(t *testing.T) {
	e, brokers := leadGroup(t, "FR", 8)
	for q := 0; q < 8; q++ {
		e.mustSend("FR", q, "", "m"+strconv.Itoa(q))
	}
	fs := followersOf(brokers, e.b)
	ids := map[string]*Broker{stableIDOf(fs[0]): fs[0], stableIDOf(fs[1]): fs[1]}

	// The leader serves the first pull of every queue and names a follower.
	var suggested map[int]string
	waitFor(t, "the leader suggesting followers", 10*time.Second, func() bool {
		suggested = map[int]string{}
		for q := 0; q < 8; q++ {
			r := e.call(remoting.PullMessage, pullExt("g", "FR", q, 0, 0, 0), nil)
			if r.Code != remoting.Success || ids[r.Ext("suggestWhichBrokerId")] == nil {
				return false
			}
			suggested[q] = r.Ext("suggestWhichBrokerId")
		}
		return true
	})
	// Each follower keeps the queues it was given: it serves them and
	// suggests itself.
	for q, id := range suggested {
		f := ids[id]
		waitFor(t, "the follower applying", 10*time.Second, func() bool {
			return f.node.ConsumeQueue().MaxOffset("FR", int32(q)) == 1
		})
		r := e.callAddr(f.Addr(), remoting.PullMessage, pullExt("g", "FR", q, 0, 0, 0), nil)
		msgs, _ := message.DecodeRecords(bodyOf(r))
		if r.Code != remoting.Success || len(msgs) != 1 || string(msgs[0].Body) != "m"+strconv.Itoa(q) || r.Ext("suggestWhichBrokerId") != id {
			t.Fatalf("queue %d on follower %s: %d %v %d", q, id, r.Code, r.ExtFields, len(msgs))
		}
	}
}

func TestGroupFollowerPullNeverMovesOffsets(t *testing.T) {
	e, brokers := leadGroup(t, "FO", 1)
	for i := 0; i < 3; i++ {
		e.mustSend("FO", 0, "", "m"+strconv.Itoa(i))
	}
	leader := e.b
	f := followersOf(brokers, leader)[0]
	waitFor(t, "the follower applying", 10*time.Second, func() bool {
		return f.node.ConsumeQueue().MaxOffset("FO", 0) == 3
	})
	leaderID := stableIDOf(leader)
	waitFor(t, "the follower knowing its leader", 10*time.Second, func() bool { return f.steer.decide("FO", 0).authority != 0 })

	// Beyond its data, on an unknown topic or queue: "no new message" at the
	// same offset and the leader suggested; the leader itself moves the offset.
	for _, c := range []struct {
		what  string
		ext   map[string]string
		next  string
		onLdr int32
	}{
		{"offset overflow", pullExt("g", "FO", 0, 7, 0, 0), "7", remoting.PullOffsetMoved},
		{"unknown topic", pullExt("g", "NOPE", 0, 4, 0, 0), "4", remoting.TopicNotExist},
		{"unknown queue", pullExt("g", "FO", 5, 4, 0, 0), "4", remoting.InvalidParameter},
	} {
		r := e.callAddr(f.Addr(), remoting.PullMessage, c.ext, nil)
		if r.Code != remoting.PullNotFound || r.Ext("nextBeginOffset") != c.next || r.Ext("suggestWhichBrokerId") != leaderID {
			t.Fatalf("%s on the follower: %d %q %v", c.what, r.Code, r.Remark, r.ExtFields)
		}
		if r := e.call(remoting.PullMessage, c.ext, nil); r.Code != c.onLdr {
			t.Fatalf("%s on the leader: %d %q", c.what, r.Code, r.Remark)
		}
	}

	// A commit piggybacked on a follower pull changes no state there.
	r := e.callAddr(f.Addr(), remoting.PullMessage, pullExt("g2", "FO", 0, 0, pullFlagCommitOffset, 0), nil)
	if r.Code != remoting.Success {
		t.Fatalf("follower pull with commit flag: %d", r.Code)
	}
	if off, ok := f.offsets.query("g2", "FO", 0); ok {
		t.Fatalf("follower recorded offset %d locally", off)
	}
}

func TestGroupFollowerLongPollWaitsForApply(t *testing.T) {
	e, brokers := leadGroup(t, "FL", 1)
	e.mustSend("FL", 0, "", "m0")
	f := followersOf(brokers, e.b)[0]
	waitFor(t, "the follower applying", 10*time.Second, func() bool {
		return f.node.ConsumeQueue().MaxOffset("FL", 0) == 1 && f.steer.selfServes()
	})
	// At the end of its data a healthy follower long-polls; the message,
	// once committed and applied there, answers the pull.
	ch := e.pullAsync(f.Addr(), pullExt("g", "FL", 0, 1, pullFlagSuspend, longPoll))
	waitParked(t, f)
	e.mustSend("FL", 0, "", "m1")
	r := awaitAnswer(t, "offset 1 on the follower", ch)
	msgs, _ := message.DecodeRecords(bodyOf(r))
	if r.Code != remoting.Success || len(msgs) != 1 || string(msgs[0].Body) != "m1" || r.Ext("suggestWhichBrokerId") != stableIDOf(f) {
		t.Fatalf("parked pull: %d %q %v %d", r.Code, r.Remark, r.ExtFields, len(msgs))
	}

	// Beyond its data (offset 3 while it has 2) it waits at most a
	// heartbeat timeout for its dispatch: the answer is the message if it
	// was applied by then, else "no new message" at the same offset with the
	// leader suggested; never OFFSET_MOVED.
	waitFor(t, "the follower applying", 10*time.Second, func() bool { return f.node.ConsumeQueue().MaxOffset("FL", 0) == 2 })
	ch = e.pullAsync(f.Addr(), pullExt("g", "FL", 0, 3, pullFlagSuspend, longPoll))
	e.mustSend("FL", 0, "", "m2")
	e.mustSend("FL", 0, "", "m3")
	r = awaitAnswer(t, "offset 3 on the follower", ch)
	msgs, _ = message.DecodeRecords(bodyOf(r))
	served := r.Code == remoting.Success && len(msgs) == 1 && string(msgs[0].Body) == "m3" && r.Ext("suggestWhichBrokerId") == stableIDOf(f)
	deferred := r.Code == remoting.PullNotFound && r.Ext("nextBeginOffset") == "3" && r.Ext("suggestWhichBrokerId") == stableIDOf(e.b)
	if !served && !deferred {
		t.Fatalf("pull beyond the follower's data: %d %q %v %d", r.Code, r.Remark, r.ExtFields, len(msgs))
	}
	waitFor(t, "the follower applying", 10*time.Second, func() bool { return f.node.ConsumeQueue().MaxOffset("FL", 0) == 4 })
	r = e.callAddr(f.Addr(), remoting.PullMessage, pullExt("g", "FL", 0, 3, pullFlagSuspend, longPoll), nil)
	if msgs, _ = message.DecodeRecords(bodyOf(r)); r.Code != remoting.Success || len(msgs) != 1 || string(msgs[0].Body) != "m3" {
		t.Fatalf("offset 3 once applied: %d %q %d", r.Code, r.Remark, len(msgs))
	}
}

func TestGroupCutOffFollowerSendsConsumersAway(t *testing.T) {
	e, brokers := leadGroup(t, "FC", 4)
	for q := 0; q < 4; q++ {
		e.mustSend("FC", q, "", "m")
	}
	fs := followersOf(brokers, e.b)
	cut, other := fs[0], fs[1]
	waitFor(t, "the follower applying", 10*time.Second, func() bool {
		return cut.node.ConsumeQueue().MaxOffset("FC", 0) == 1 && cut.steer.selfServes()
	})
	parked := e.pullAsync(cut.Addr(), pullExt("g", "FC", 0, 1, pullFlagSuspend, longPoll))
	waitParked(t, cut)

	// Cut the follower off from both peers (clients still reach it).
	self := raft.ServerAddress("127.0.0.1:" + strconv.Itoa(1+cut.node.SelfOrdinal()))
	e.trans[cut.node.SelfOrdinal()].DisconnectAll()
	for i, tr := range e.trans {
		if i != cut.node.SelfOrdinal() {
			tr.Disconnect(self)
		}
	}
	// The leader stops offering it; the follower releases its parked pull
	// and sends consumers to the other follower.
	waitFor(t, "the leader dropping the cut-off follower", 10*time.Second, func() bool {
		for q := 0; q < 4; q++ {
			r := e.call(remoting.PullMessage, pullExt("g", "FC", q, 0, 0, 0), nil)
			if r.Ext("suggestWhichBrokerId") != stableIDOf(other) {
				return false
			}
		}
		return true
	})
	r := awaitAnswer(t, "parked on the cut-off follower", parked)
	if r.Code != remoting.PullNotFound || r.Ext("suggestWhichBrokerId") != stableIDOf(other) {
		t.Fatalf("released pull: %d %q %v", r.Code, r.Remark, r.ExtFields)
	}
	r = e.callAddr(cut.Addr(), remoting.PullMessage, pullExt("g", "FC", 0, 0, 0, 0), nil)
	if r.Code != remoting.Success || r.Ext("suggestWhichBrokerId") != stableIDOf(other) {
		t.Fatalf("pull on the cut-off follower: %d %v", r.Code, r.ExtFields)
	}

	// Healed: it suggests itself again.
	for i, tr := range e.trans {
		for j, peer := range e.trans {
			if i != j {
				tr.Connect(raft.ServerAddress("127.0.0.1:"+strconv.Itoa(1+j)), peer)
			}
		}
	}
	waitFor(t, "the follower healthy again", 20*time.Second, func() bool {
		r := e.callAddr(cut.Addr(), remoting.PullMessage, pullExt("g", "FC", 0, 0, 0, 0), nil)
		return r.Code == remoting.Success && r.Ext("suggestWhichBrokerId") == stableIDOf(cut)
	})
}

func TestGroupClosingMemberAnswersParkedPulls(t *testing.T) {
	e, brokers := leadGroup(t, "FX", 1)
	e.mustSend("FX", 0, "", "m")
	for _, b := range brokers {
		waitFor(t, "every member applying", 10*time.Second, func() bool {
			return b.node.ConsumeQueue().MaxOffset("FX", 0) == 1 && b.steer.selfServes()
		})
	}
	f := followersOf(brokers, e.b)[0]
	parked := e.pullAsync(f.Addr(), pullExt("g", "FX", 0, 1, pullFlagSuspend, longPoll))
	waitParked(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r := awaitAnswer(t, "parked on the closing follower", parked)
	if r.Code != remoting.PullNotFound || r.Ext("nextBeginOffset") != "1" || r.Ext("suggestWhichBrokerId") == stableIDOf(f) {
		t.Fatalf("answer of the closing follower: %d %q %v", r.Code, r.Remark, r.ExtFields)
	}
}

// slaveReadEnable=false keeps consumers on the leader: it suggests brokerId
// 0 and followers refuse pulls with a retriable code.
func TestGroupSlaveReadDisabled(t *testing.T) {
	e, brokers := startGroup(t, func(c *Config) { c.SlaveReadEnable = false })
	e.group = brokers
	e.b = leaderOf(t, brokers, nil)
	e.createTopic("FD", 2)
	e.mustSend("FD", 0, "", "m")
	leader := e.b
	waitFor(t, "the leader hearing from its followers", 10*time.Second, func() bool {
		return len(leader.node.ReadProgress().Peers) == 2
	})
	for q := 0; q < 2; q++ {
		if r := e.call(remoting.PullMessage, pullExt("g", "FD", q, 0, 0, 0), nil); r.Ext("suggestWhichBrokerId") != "0" {
			t.Fatalf("queue %d: leader suggests %v", q, r.ExtFields)
		}
	}
	for _, f := range followersOf(brokers, leader) {
		if r := e.callAddr(f.Addr(), remoting.PullMessage, pullExt("g", "FD", 0, 0, 0, 0), nil); r.Code != remoting.ServiceNotAvailable {
			t.Fatalf("follower pull with slave read disabled: %d %q", r.Code, r.Remark)
		}
	}
}
