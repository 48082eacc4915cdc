package broker

import (
	"context"
	"encoding/json"
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

// startGroup starts a namesrv and a three-node group in this process, the
// members connected by in-memory Raft transports; mutate adjusts every
// member's config.
func startGroup(t *testing.T, mutate ...func(*Config)) (*testEnv, []*Broker) {
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
	addrs := []raft.ServerAddress{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}
	trans := make([]*raft.InmemTransport, 3)
	for i := range trans {
		_, trans[i] = raft.NewInmemTransport(addrs[i])
	}
	for i := range trans {
		for j := range trans {
			if i != j {
				trans[i].Connect(addrs[j], trans[j])
			}
		}
	}
	var peers []string
	for i, a := range addrs {
		peers = append(peers, "n"+strconv.Itoa(i)+"-"+string(a))
	}
	brokers := make([]*Broker, 3)
	for i := range brokers {
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
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		b, err := Start(cfg, Options{Logger: testLogger(t).Named(cfg.DLegerSelfID), Listener: ln, RaftTransport: trans[i],
			RaftHeartbeatTimeout: 200 * time.Millisecond, RaftElectionTimeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		brokers[i] = b
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := b.Close(ctx); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
	env := &testEnv{t: t, ns: ns, notes: make(chan *remoting.Command, 16), trans: trans}
	env.client = remoting.NewClient(remoting.ClientConfig{})
	t.Cleanup(func() { env.client.Close() })
	return env, brokers
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
		r := e.callAddr(f.Addr(), remoting.SendMessage, sendExt("G", 0, nil), []byte("x"))
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
		r := e.callAddr(e.ns.Addr(), remoting.GetRouteInfoByTopic, map[string]string{"topic": "G"}, nil)
		var route struct {
			BrokerDatas []struct {
				BrokerAddrs map[string]string `json:"brokerAddrs"`
			} `json:"brokerDatas"`
		}
		_ = json.Unmarshal(r.Body, &route)
		return r.Code == 0 && len(route.BrokerDatas) == 1 && route.BrokerDatas[0].BrokerAddrs["0"] == next.Addr()
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
