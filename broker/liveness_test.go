package broker

import (
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/dledger"
	"github.com/raftmq/raftmq/wire"
)

// routeMembers renders what topic's route offers of group broker-a: its
// write aliases' member ids and its non-zero brokerIds, e.g. "n0,n1|1,2".
func routeMembers(rd *wire.TopicRouteData) string {
	if rd == nil {
		return "no route"
	}
	var aliases, ids []string
	for _, bd := range rd.BrokerDatas {
		if group, m, ok := wire.SplitAlias(bd.BrokerName); ok && group == "broker-a" {
			aliases = append(aliases, m)
		}
		if bd.BrokerName == "broker-a" {
			for id := range bd.BrokerAddrs {
				if id != wire.MasterID {
					ids = append(ids, strconv.FormatInt(id, 10))
				}
			}
		}
	}
	sort.Strings(aliases)
	sort.Strings(ids)
	return strings.Join(aliases, ",") + "|" + strings.Join(ids, ",")
}

// A follower cut off from the leader leaves the namesrv's route (alias and
// stable id) once the leader reports it, and comes back when healed.
func TestGroupUnreachableFollowerLeavesRoute(t *testing.T) {
	g := startGroupHarness(t)
	e := g.env
	leader := leaderOf(t, g.brokers, nil)
	e.b = leader
	e.createTopic("U", 2)
	all := "n0,n1,n2|1,2,3"
	waitFor(t, "every member in the route", 10*time.Second, func() bool { return routeMembers(e.routeOf("U")) == all })

	fi := (g.index(leader) + 1) % 3
	f := g.brokers[fi]
	g.link(fi)
	var without []string
	for i, b := range g.brokers {
		if i != fi {
			without = append(without, b.cfg.DLegerSelfID)
		}
	}
	ids := []string{strconv.Itoa(1 + g.brokers[(fi+1)%3].node.SelfOrdinal()), strconv.Itoa(1 + g.brokers[(fi+2)%3].node.SelfOrdinal())}
	sort.Strings(ids)
	want := strings.Join(without, ",") + "|" + strings.Join(ids, ",")
	waitFor(t, "the cut follower "+f.cfg.DLegerSelfID+" out of the route", 10*time.Second, func() bool {
		return routeMembers(e.routeOf("U")) == want
	})
	if !leader.IsLeader() {
		t.Fatal("leadership moved while a follower was cut")
	}
	if rd := e.routeOf("U"); rd == nil || brokerData(rd, "broker-a").BrokerAddrs[wire.MasterID] != leader.Addr() {
		t.Fatalf("route lost its leader: %+v", rd)
	}

	g.link(-1)
	waitFor(t, "the healed follower back in the route", 10*time.Second, func() bool { return routeMembers(e.routeOf("U")) == all })
}

func brokerData(rd *wire.TopicRouteData, name string) wire.BrokerData {
	for _, bd := range rd.BrokerDatas {
		if bd.BrokerName == name {
			return bd
		}
	}
	return wire.BrokerData{}
}

func TestContactReport(t *testing.T) {
	t0 := time.Unix(1000, 0)
	now := t0
	p := dledger.ReadProgress{Leader: true, LeaderID: "n0"}
	s := newReadSteer([]string{"n0", "n1", "n2"}, 0, true, time.Second, func() dledger.ReadProgress { return p })
	s.now = func() time.Time { return now }
	c := &contactReport{steer: s}
	step := func(what string, d time.Duration, wantChanged bool, want string) {
		t.Helper()
		now = now.Add(d)
		if changed := c.update(); changed != wantChanged || c.unreachable() != want {
			t.Fatalf("%s: changed %v, unreachable %q; want %v, %q", what, changed, c.unreachable(), wantChanged, want)
		}
	}
	// Answers from before this leadership and members never heard get the
	// full time from its start.
	p.Peers = []dledger.PeerProgress{{ID: "n1", Contact: t0.Add(-time.Hour)}}
	step("elected", 0, false, "")
	step("within the limit", unreachableHeartbeats*time.Second, false, "")
	step("past the limit", time.Millisecond, true, "n1,n2")
	p.Peers = []dledger.PeerProgress{{ID: "n1", Contact: now}, {ID: "n2", Contact: now.Add(-time.Minute)}}
	step("n1 answers", 0, true, "n2")
	step("unchanged", 0, false, "n2")
	p.Leader = false
	step("stepped down", 0, true, "")
	p.Leader = true
	step("leads again", time.Second, false, "")
}
