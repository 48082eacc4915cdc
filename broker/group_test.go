package broker

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/remoting"
)

// groupHarness is a namesrv and a three-node group in this process, the
// members connected by in-memory Raft transports that tests can cut.
type groupHarness struct {
	t       *testing.T
	env     *testEnv
	brokers []*Broker
	cfgs    []Config
	addrs   []raft.ServerAddress
	trans   []*raft.InmemTransport
}

// startGroup starts a namesrv and a three-node group in this process;
// mutate adjusts every member's config.
func startGroup(t *testing.T, mutate ...func(*Config)) (*testEnv, []*Broker) {
	g := startGroupHarness(t, mutate...)
	return g.env, g.brokers
}

func startGroupHarness(t *testing.T, mutate ...func(*Config)) *groupHarness {
	t.Helper()
	ns := namesrv.New(namesrv.Config{ListenAddr: "127.0.0.1:0", Logger: testLogger(t).Named("ns")})
	if err := ns.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ns.Shutdown(ctx)
	})
	g := &groupHarness{t: t, addrs: []raft.ServerAddress{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}}
	g.trans = make([]*raft.InmemTransport, 3)
	for i := range g.trans {
		_, g.trans[i] = raft.NewInmemTransport(g.addrs[i])
	}
	g.link(-1)
	var peers []string
	for i, a := range g.addrs {
		peers = append(peers, "n"+strconv.Itoa(i)+"-"+string(a))
	}
	g.brokers = make([]*Broker, 3)
	g.cfgs = make([]Config, 3)
	for i := range g.brokers {
		cfg := DefaultConfig()
		cfg.NamesrvAddrs = []string{ns.Addr()}
		cfg.BrokerIP1 = "127.0.0.1"
		cfg.StorePathRootDir = t.TempDir()
		cfg.MappedFileSize = 8 << 20
		cfg.DLegerPeers = strings.Join(peers, ";")
		cfg.DLegerSelfID = "n" + strconv.Itoa(i)
		cfg.OffsetFlushInterval = 50 * time.Millisecond
		for _, m := range mutate {
			m(&cfg)
		}
		g.cfgs[i] = cfg
		g.start(i)
	}
	t.Cleanup(func() {
		for _, b := range g.brokers {
			if b == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := b.Close(ctx); err != nil {
				t.Errorf("close: %v", err)
			}
			cancel()
		}
	})
	g.env = &testEnv{t: t, ns: ns, notes: make(chan *remoting.Command, 16), trans: g.trans}
	g.env.client = remoting.NewClient(remoting.ClientConfig{})
	t.Cleanup(func() { g.env.client.Close() })
	return g
}

// start starts member i on its configuration and store.
func (g *groupHarness) start(i int) {
	g.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.t.Fatal(err)
	}
	cfg := g.cfgs[i]
	b, err := Start(cfg, Options{Logger: testLogger(g.t).Named(cfg.DLegerSelfID), Listener: ln, RaftTransport: g.trans[i],
		RaftHeartbeatTimeout: 200 * time.Millisecond, RaftElectionTimeout: 200 * time.Millisecond})
	if err != nil {
		g.t.Fatal(err)
	}
	g.brokers[i] = b
}

// link connects every pair of transports except those of member cut (-1: none).
func (g *groupHarness) link(cut int) {
	for i := range g.trans {
		for j := range g.trans {
			switch {
			case i == j:
			case i == cut || j == cut:
				g.trans[i].Disconnect(g.addrs[j])
			default:
				g.trans[i].Connect(g.addrs[j], g.trans[j])
			}
		}
	}
}

func leaderOf(t *testing.T, brokers []*Broker, skip *Broker) *Broker {
	t.Helper()
	var leader *Broker
	waitFor(t, "a leader with system topics", 20*time.Second, func() bool {
		for _, b := range brokers {
			if b != skip && b.IsLeader() {
				if _, ok := b.meta.Topic(b.cfg.BrokerClusterName); ok {
					leader = b
					return true
				}
			}
		}
		return false
	})
	return leader
}

func TestGroupFollowersRejectWritesAndServeReads(t *testing.T) {
	e, brokers := startGroup(t)
	leader := leaderOf(t, brokers, nil)
	e.b = leader
	e.createTopic("G", 2)
	var acked []string
	for i := 0; i < 10; i++ {
		b := "g" + strconv.Itoa(i)
		if r := e.send("G", 0, "", b); r.Code != 0 {
			t.Fatalf("send to leader: %d %s", r.Code, r.Remark)
		}
		acked = append(acked, b)
	}
	for _, f := range brokers {
		if f == leader {
			continue
		}
		// A write already forwarded once is never forwarded again.
		fwdExt := sendExt("G", 0, nil)
		fwdExt[ExtForwarded] = "1"
		r := e.callAddr(f.Addr(), remoting.SendMessage, fwdExt, []byte("x"))
		if r.Code != remoting.ServiceNotAvailable || !strings.Contains(r.Remark, "leader is "+leader.cfg.DLegerSelfID) {
			t.Fatalf("follower send: %d %q", r.Code, r.Remark)
		}
		r = e.callAddr(f.Addr(), remoting.UpdateConsumerOffset, map[string]string{"consumerGroup": "g", "topic": "G", "queueId": "0", "commitOffset": "3"}, nil)
		if r.Code != remoting.ServiceNotAvailable {
			t.Fatalf("follower offset update: %d %q", r.Code, r.Remark)
		}
		// Followers serve committed data.
		waitFor(t, "follower dispatch", 10*time.Second, func() bool {
			r := e.callAddr(f.Addr(), remoting.GetMaxOffset, map[string]string{"topic": "G", "queueId": "0"}, nil)
			return r.Ext("offset") == "10"
		})
		p := e.callAddr(f.Addr(), remoting.PullMessage, pullExt("g", "G", 0, 0, 0, 0), nil)
		msgs, err := message.DecodeRecords(bodyOf(p))
		if p.Code != 0 || err != nil || len(msgs) != 10 {
			t.Fatalf("follower pull: %d %v %d", p.Code, err, len(msgs))
		}
		if req := f.registration(); req.Ext("brokerId") != strconv.Itoa(1+f.node.SelfOrdinal()) {
			t.Fatalf("follower registers as %s", req.Ext("brokerId"))
		}
	}
	// Offsets committed on the leader are replicated to the followers.
	if r := e.call(remoting.UpdateConsumerOffset, map[string]string{"consumerGroup": "g", "topic": "G", "queueId": "0", "commitOffset": "7"}, nil); r.Code != 0 {
		t.Fatalf("offset update: %d", r.Code)
	}
	for _, b := range brokers {
		waitFor(t, "replicated offset", 10*time.Second, func() bool { o, ok := b.meta.Offset("g", "G", 0); return ok && o == 7 })
	}

	// The leader goes away: another member takes over, registers as brokerId 0
	// with a higher term and still has every acknowledged message.
	oldTerm := leader.role.get().term
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	leader.Close(ctx)
	cancel()
	next := leaderOf(t, brokers, leader)
	e.b = next
	waitFor(t, "new leader in the route", 10*time.Second, func() bool {
		// The route also holds the members' write aliases; the group's own
		// entry names the leader.
		rd := e.routeOf("G")
		return rd != nil && len(rd.BrokerDatas) > 0 && rd.BrokerDatas[0].BrokerName == next.cfg.BrokerName &&
			rd.BrokerDatas[0].BrokerAddrs[0] == next.Addr()
	})
	if next.role.get().term <= oldTerm {
		t.Fatalf("term did not grow: %d -> %d", oldTerm, next.role.get().term)
	}
	if r := e.send("G", 0, "", "after"); r.Code != 0 || r.Ext("queueOffset") != "10" {
		t.Fatalf("send after failover: %d %s %v", r.Code, r.Remark, r.ExtFields)
	}
	p := e.call(remoting.PullMessage, pullExt("g", "G", 0, 0, 0, 0), nil)
	msgs, _ := message.DecodeRecords(bodyOf(p))
	if len(msgs) != 11 {
		t.Fatalf("%d messages after failover", len(msgs))
	}
	for i, b := range acked {
		if string(msgs[i].Body) != b {
			t.Fatalf("message %d is %q, want %q", i, msgs[i].Body, b)
		}
	}
	if r := e.call(remoting.QueryConsumerOffset, map[string]string{"consumerGroup": "g", "topic": "G", "queueId": "0"}, nil); r.Ext("offset") != "7" {
		t.Fatalf("offset after failover: %v", r.ExtFields)
	}
}

// TestGroupAckedOffsetCommitSurvivesLeaderLoss checks that an offset commit
// the leader acknowledged is replicated before the answer: with a flush
// interval far beyond the test, the commit is on the next leader after the
// acknowledging leader is cut off, and a commit the cut-off leader takes
// meanwhile is never acknowledged (nor applied anywhere).
func TestGroupAckedOffsetCommitSurvivesLeaderLoss(t *testing.T) {
	g := startGroupHarness(t, func(c *Config) { c.OffsetFlushInterval = 60 * time.Second })
	e := g.env
	leader := leaderOf(t, g.brokers, nil)
	e.b = leader
	e.createTopic("O", 2)
	commit := func(b *Broker, queue, offset int) *remoting.Command {
		return e.callAddr(b.Addr(), remoting.UpdateConsumerOffset, map[string]string{"consumerGroup": "g", "topic": "O",
			"queueId": strconv.Itoa(queue), "commitOffset": strconv.Itoa(offset)}, nil)
	}
	query := func(b *Broker, queue int) string {
		return e.callAddr(b.Addr(), remoting.QueryConsumerOffset, map[string]string{"consumerGroup": "g", "topic": "O",
			"queueId": strconv.Itoa(queue)}, nil).Ext("offset")
	}
	for _, off := range []int{3, 11} {
		if r := commit(leader, 0, off); r.Code != remoting.Success {
			t.Fatalf("commit %d: %d %q", off, r.Code, r.Remark)
		}
	}
	if r := commit(leader, 1, 2); r.Code != remoting.Success {
		t.Fatalf("commit on queue 1: %d %q", r.Code, r.Remark)
	}
	// Acknowledged means applied on the leader, not pending there.
	if off, ok := leader.meta.Offset("g", "O", 0); !ok || off != 11 {
		t.Fatalf("acknowledged commit not applied on the leader: %d %v", off, ok)
	}

	// Every member answers queries with the leader's newest commit, even
	// one that is pending on the leader only (oneway, not yet flushed).
	oneway := remoting.NewRequest(remoting.UpdateConsumerOffset, map[string]string{"consumerGroup": "g", "topic": "O",
		"queueId": "1", "commitOffset": "4"}, nil)
	oneway.MarkOneway()
	if err := e.client.InvokeOneway(context.Background(), leader.Addr(), oneway); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the oneway commit on the leader", 10*time.Second, func() bool { return query(leader, 1) == "4" })
	for _, b := range g.brokers {
		if got := query(b, 1); got != "4" {
			t.Fatalf("%s answers offset %q for queue 1, want the leader's 4", b.cfg.DLegerSelfID, got)
		}
	}
	if r := commit(leader, 1, 4); r.Code != remoting.Success {
		t.Fatalf("commit on queue 1: %d %q", r.Code, r.Remark)
	}

	li := g.index(leader)
	g.link(li)
	// The cut-off leader cannot replicate: whatever it answers, not success.
	if r := commit(leader, 0, 99); r.Code == remoting.Success {
		t.Fatal("a leader cut off from its peers acknowledged an offset commit")
	}
	next := leaderOf(t, g.brokers, leader)
	if got := query(next, 0); got != "11" {
		t.Fatalf("new leader answers offset %q for queue 0, want the acknowledged 11", got)
	}
	if got := query(next, 1); got != "4" {
		t.Fatalf("new leader answers offset %q for queue 1, want the acknowledged 4", got)
	}
	// The new leader takes commits, and after the heal every member has
	// them, the old leader's unacknowledged 99 nowhere.
	if r := commit(next, 1, 5); r.Code != remoting.Success {
		t.Fatalf("commit on the new leader: %d %q", r.Code, r.Remark)
	}
	g.link(-1)
	for _, b := range g.brokers {
		waitFor(t, "replicated offsets on "+b.cfg.DLegerSelfID, 20*time.Second, func() bool {
			q0, _ := b.meta.Offset("g", "O", 0)
			q1, _ := b.meta.Offset("g", "O", 1)
			return q0 == 11 && q1 == 5
		})
	}
	if got := query(leaderOf(t, g.brokers, nil), 0); got != "11" {
		t.Fatalf("offset after the heal %q, want 11", got)
	}
}
