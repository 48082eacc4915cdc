package broker

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/remoting"
)

// routeOf fetches topic's route from the env's namesrv; nil when it has none.
func (e *testEnv) routeOf(topic string) *namesrv.TopicRouteData {
	e.t.Helper()
	r := e.callAddr(e.ns.Addr(), remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil)
	if r.Code == remoting.TopicNotExist {
		return nil
	}
	if r.Code != remoting.Success {
		e.t.Fatalf("route of %s: %d %s", topic, r.Code, r.Remark)
	}
	var rd namesrv.TopicRouteData
	if err := json.Unmarshal(r.Body, &rd); err != nil {
		e.t.Fatal(err)
	}
	return &rd
}

// TestRouteRightAfterWaitLeaderHasBrokerID0 is what `make run` relies on
// before printing its ready line: once WaitLeader returns, the first route
// fetch already names the leader as brokerId 0.
func TestRouteRightAfterWaitLeaderHasBrokerID0(t *testing.T) {
	e := startEnv(t, nil) // returns after WaitLeader
	rd := e.routeOf("TBW102")
	if rd == nil || len(rd.BrokerDatas) != 1 || rd.BrokerDatas[0].BrokerAddrs[0] != e.b.Addr() {
		t.Fatalf("route right after WaitLeader: %+v", rd)
	}
	// A single-member group gets no aliases; the leader is at its stable id too.
	if addrs := rd.BrokerDatas[0].BrokerAddrs; len(rd.QueueDatas) != 1 || len(addrs) != 2 || addrs[1] != e.b.Addr() {
		t.Fatalf("single-member route %+v", rd)
	}
	req := e.b.registration()
	if req.Ext(extMemberID) != "n0" || req.Ext(extMemberOrdinal) != "0" || req.Ext("brokerId") != "0" {
		t.Fatalf("registration ext %v", req.ExtFields)
	}
	if extMemberID != namesrv.ExtMemberID || extMemberOrdinal != namesrv.ExtMemberOrdinal {
		t.Fatal("broker and namesrv disagree on the member ext field names")
	}
}

// TestGroupRouteAlwaysHasBrokerID0 polls the route of the cluster topic while
// a three-node group starts, elects and registers: every route the namesrv
// hands out names a brokerId 0, and the settled route has a write alias per
// member with followers at their stable ids 1+ordinal.
func TestGroupRouteAlwaysHasBrokerID0(t *testing.T) {
	e, brokers := startGroup(t)
	topic := brokers[0].cfg.BrokerClusterName
	seen := 0
	var last *namesrv.TopicRouteData
	waitFor(t, "a route with three write aliases", 20*time.Second, func() bool {
		rd := e.routeOf(topic)
		if rd == nil {
			return false
		}
		seen++
		for _, bd := range rd.BrokerDatas {
			if bd.BrokerAddrs[0] == "" {
				t.Fatalf("route without brokerId 0 for %s: %+v", bd.BrokerName, rd)
			}
		}
		last = rd
		return len(rd.BrokerDatas) == 4
	})
	leader := leaderOf(t, brokers, nil)
	group := last.BrokerDatas[0]
	if group.BrokerName != leader.cfg.BrokerName || group.BrokerAddrs[0] != leader.Addr() {
		t.Fatalf("group entry %+v, leader %s", group, leader.Addr())
	}
	for i, b := range brokers {
		if got := group.BrokerAddrs[int64(1+i)]; got != b.Addr() {
			t.Fatalf("stable id %d is %q, want %s (%+v)", 1+i, got, b.Addr(), group)
		}
		alias := last.BrokerDatas[1+i]
		if alias.BrokerName != namesrv.AliasName(b.cfg.BrokerName, "n"+strconv.Itoa(i)) || alias.BrokerAddrs[0] != b.Addr() || len(alias.BrokerAddrs) != 1 {
			t.Fatalf("alias %d: %+v", i, alias)
		}
	}
	if q := last.QueueDatas[0]; q.BrokerName != group.BrokerName || q.Perm&namesrv.PermWrite != 0 || q.Perm&namesrv.PermRead == 0 {
		t.Fatalf("group queues %+v", q)
	}
	t.Logf("%d routes seen, all with brokerId 0", seen)
}
