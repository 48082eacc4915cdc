package bench

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/raftmq/raftmq/remoting"
)

// fakeNamesrv answers cluster info and one topic route with the given bodies.
func fakeNamesrv(t *testing.T, clusterInfo, route any) string {
	t.Helper()
	s := remoting.NewServer(remoting.ServerConfig{})
	answer := func(v any) remoting.Handler {
		return func(context.Context, *remoting.Conn, *remoting.Command) *remoting.Command {
			body, err := json.Marshal(v)
			if err != nil {
				return remoting.NewResponse(remoting.SystemError, err.Error())
			}
			r := remoting.NewResponse(remoting.Success, "")
			r.Body = body
			return r
		}
	}
	s.Handle(remoting.GetBrokerClusterInfo, "", answer(clusterInfo))
	s.Handle(remoting.GetRouteInfoByTopic, "", answer(route))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return ln.Addr().String()
}

type brokerData struct {
	Cluster     string            `json:"cluster"`
	BrokerName  string            `json:"brokerName"`
	BrokerAddrs map[string]string `json:"brokerAddrs"`
}

type queueData struct {
	BrokerName     string `json:"brokerName"`
	ReadQueueNums  int    `json:"readQueueNums"`
	WriteQueueNums int    `json:"writeQueueNums"`
	Perm           int    `json:"perm"`
}

// TestTargetsAreLeadersNotAliases: with write aliases in the route (a group
// of three members), sends go to brokerId 0 of the plain name; -aliases
// spreads them over the aliases' addresses instead.
func TestTargetsAreLeadersNotAliases(t *testing.T) {
	const leader, m1, m2 = "127.0.0.1:10921", "127.0.0.1:10911", "127.0.0.1:10931"
	group := brokerData{Cluster: "C", BrokerName: "broker-a",
		BrokerAddrs: map[string]string{"0": leader, "1": m1, "2": leader, "3": m2}}
	aliasOf := func(member, addr string) brokerData {
		return brokerData{Cluster: "C", BrokerName: "broker-a@" + member, BrokerAddrs: map[string]string{"0": addr}}
	}
	ci := map[string]any{
		"brokerAddrTable": map[string]brokerData{
			"broker-a": group,
			// Not expected in cluster info, but never a target if it shows up.
			"broker-a@n0": aliasOf("n0", m1),
		},
		"clusterAddrTable": map[string][]string{"C": {"broker-a"}},
	}
	route := map[string]any{
		"queueDatas": []queueData{
			{BrokerName: "broker-a", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 4},
			{BrokerName: "broker-a@n0", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 2},
			{BrokerName: "broker-a@n1", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 2},
			{BrokerName: "broker-a@n2", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 2},
		},
		"brokerDatas": []brokerData{group, aliasOf("n0", m1), aliasOf("n1", leader), aliasOf("n2", m2)},
	}
	ns := fakeNamesrv(t, ci, route)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.NamesrvAddrs = []string{ns}
	cfg.Queues = 4
	if err := cfg.normalize(); err != nil {
		t.Fatal(err)
	}
	targets, err := resolveTargets(ctx, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 1 || targets[0].BrokerName != "broker-a" || targets[0].Addr != leader {
		t.Fatalf("targets %+v, want broker-a at its leader %s", targets, leader)
	}
	for _, s := range slots(&cfg, targets) {
		if s.addr != leader {
			t.Fatalf("slot %+v not at the leader", s)
		}
	}

	cfg.ViaAliases = true
	if err := resolveAliases(ctx, &cfg, cfg.Topic, targets); err != nil {
		t.Fatal(err)
	}
	perAddr := map[string]int{}
	for _, s := range slots(&cfg, targets) {
		perAddr[s.addr]++
	}
	if len(targets[0].Aliases) != 3 || perAddr[m1] != 4 || perAddr[m2] != 4 || perAddr[leader] != 4 {
		t.Fatalf("aliases %v, slots per address %v; want each of the 3 members with the 4 queues", targets[0].Aliases, perAddr)
	}
}

// TestAliasesOfSingleMemberGroup: a group without write aliases cannot be
// measured through them, and says so rather than sending to the leader.
func TestAliasesOfSingleMemberGroup(t *testing.T) {
	group := brokerData{Cluster: "C", BrokerName: "broker-a", BrokerAddrs: map[string]string{"0": "127.0.0.1:10911"}}
	ns := fakeNamesrv(t,
		map[string]any{"brokerAddrTable": map[string]brokerData{"broker-a": group}},
		map[string]any{"queueDatas": []queueData{{BrokerName: "broker-a", ReadQueueNums: 8, WriteQueueNums: 8, Perm: 6}},
			"brokerDatas": []brokerData{group}})
	cfg := DefaultConfig()
	cfg.NamesrvAddrs = []string{ns}
	cfg.ViaAliases = true
	if err := cfg.normalize(); err != nil {
		t.Fatal(err)
	}
	targets, err := resolveTargets(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := resolveAliases(context.Background(), &cfg, cfg.Topic, targets); err == nil {
		t.Fatalf("no error for a group without aliases: %+v", targets)
	}
}
