package namesrv

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"
)

// checkInvariants verifies the table's internal consistency.
func checkInvariants(t *testing.T, rt *RouteTable, step string) {
	t.Helper()
	rt.mu.RLock()
	owner := map[string]string{}
	for name, g := range rt.groups {
		if len(g.members) == 0 {
			t.Fatalf("%s: group %s without live brokers", step, name)
		}
		if _, ok := rt.clusters[g.cluster][name]; !ok {
			t.Fatalf("%s: group %s missing from cluster %s", step, name, g.cluster)
		}
		memberAddr := map[string]string{}
		for addr := range g.members {
			if other, ok := owner[addr]; ok {
				t.Fatalf("%s: %s in groups %s and %s", step, addr, other, name)
			}
			owner[addr] = name
			lb := rt.live[liveKey{g.cluster, addr}]
			if lb == nil || lb.brokerName != name {
				t.Fatalf("%s: member %s of %s has live entry %+v", step, addr, name, lb)
			}
			if lb.memberID != "" {
				if other, ok := memberAddr[lb.memberID]; ok {
					t.Fatalf("%s: member %s of %s at %s and %s", step, lb.memberID, name, other, addr)
				}
				memberAddr[lb.memberID] = addr
			}
		}
		seen := map[string]bool{}
		for id, addr := range g.addrs {
			if id == MasterID {
				t.Fatalf("%s: %s: brokerId 0 in the non-zero id table", step, name)
			}
			if seen[addr] {
				t.Fatalf("%s: %s holds two non-zero ids in %s", step, addr, name)
			}
			seen[addr] = true
			lb := rt.live[liveKey{g.cluster, addr}]
			if _, ok := g.members[addr]; !ok || lb == nil || (lb.brokerID != id && lb.stableID != id) {
				t.Fatalf("%s: %s id %d of %s has live entry %+v", step, addr, id, name, lb)
			}
		}
		if g.master != "" && !g.masterMember {
			if lb := rt.live[liveKey{g.cluster, g.master}]; lb == nil || lb.brokerID != MasterID || lb.brokerName != name {
				t.Fatalf("%s: plain master %s of %s has live entry %+v", step, g.master, name, lb)
			}
		}
	}
	for cluster, names := range rt.clusters {
		if len(names) == 0 {
			t.Fatalf("%s: empty cluster %s", step, cluster)
		}
		for name := range names {
			if rt.groups[name] == nil {
				t.Fatalf("%s: cluster %s lists missing group %s", step, cluster, name)
			}
		}
	}
	for topic, byBroker := range rt.topics {
		if len(byBroker) == 0 {
			t.Fatalf("%s: topic %s without queues", step, topic)
		}
		for name := range byBroker {
			if rt.groups[name] == nil {
				t.Fatalf("%s: topic %s on missing group %s", step, topic, name)
			}
		}
	}
	rt.mu.RUnlock()
	ci := rt.ClusterInfo()
	for _, topic := range rt.AllTopics() {
		got, ok, err := rt.TopicRouteJSON(topic)
		rd, routed := rt.TopicRoute(topic)
		fresh, _ := marshalCompact(rd)
		if ok != routed || err != nil || (ok && string(got) != string(fresh)) {
			t.Fatalf("%s: cached route of %s stale:\n%s\n%s", step, topic, got, fresh)
		}
		if routed {
			checkRouteShape(t, step, rd, ci)
		}
	}
}

// checkRouteShape checks a route against the alias rules: an alias names a
// group of the route, has exactly brokerId 0 and write-only queues; a group
// with aliases has no writable queues of its own and has brokerId 0; cluster
// info never lists an alias.
func checkRouteShape(t *testing.T, step string, rd *TopicRouteData, ci ClusterInfo) {
	t.Helper()
	groups := map[string]BrokerData{}
	for _, bd := range rd.BrokerDatas {
		groups[bd.BrokerName] = bd
	}
	aliased := map[string]bool{}
	for _, bd := range rd.BrokerDatas {
		group, _, isAlias := strings.Cut(bd.BrokerName, AliasSeparator)
		if !isAlias {
			continue
		}
		if _, ok := ci.BrokerAddrTable[bd.BrokerName]; ok {
			t.Fatalf("%s: cluster info lists alias %s", step, bd.BrokerName)
		}
		g, ok := groups[group]
		if !ok || len(bd.BrokerAddrs) != 1 || bd.BrokerAddrs[MasterID] == "" || g.BrokerAddrs[MasterID] == "" {
			t.Fatalf("%s: alias %+v of group %+v", step, bd, g)
		}
		aliased[group] = true
	}
	for _, qd := range rd.QueueDatas {
		group, _, isAlias := strings.Cut(qd.BrokerName, AliasSeparator)
		if isAlias && (qd.Perm&PermRead != 0 || qd.Perm&PermWrite == 0) {
			t.Fatalf("%s: alias queues %+v", step, qd)
		}
		if !isAlias && aliased[group] && qd.Perm&PermWrite != 0 {
			t.Fatalf("%s: group %s has aliases and writable queues %+v", step, group, qd)
		}
		if _, ok := groups[qd.BrokerName]; !ok {
			t.Fatalf("%s: queues of %s without broker data", step, qd.BrokerName)
		}
	}
}

// TestRouteTableRandomOperations applies random registrations, closes, expiries,
// unregistrations and admin calls, checking the invariants and the fencing rule
// (a refused registration changes nothing; an accepted brokerId-0 registration
// holds id 0 afterwards) after each.
func TestRouteTableRandomOperations(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	rt := NewRouteTable(time.Minute)
	now := t0
	addrs := []string{"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.4:1"}
	groups := []string{"g1", "g2"}
	topicNames := []string{"A", "B", "C"}
	steps := 3000
	if testing.Short() {
		steps = 300
	}
	for i := 0; i < steps; i++ {
		step := fmt.Sprintf("step %d", i)
		switch op := rng.Intn(10); {
		case op < 6:
			tp := map[string]TopicConfig{}
			for _, n := range topicNames {
				if rng.Intn(2) == 0 {
					tp[n] = TopicConfig{ReadQueueNums: int32(rng.Intn(4)), WriteQueueNums: int32(rng.Intn(4)), Perm: 6}
				}
			}
			r := Registration{
				ClusterName: "c", BrokerName: groups[rng.Intn(len(groups))],
				BrokerAddr: addrs[rng.Intn(len(addrs))], BrokerID: int64(rng.Intn(3)),
				DataVersion: DataVersion{Counter: int64(rng.Intn(3)), StateVersion: int64(rng.Intn(6))},
				Topics:      tp, Conn: connID(rng.Intn(4)),
				MemberOrdinal: -1,
			}
			if rng.Intn(3) > 0 {
				// A raftmq member: m<i> has ordinal i and registers 0 or 1+i.
				ord := rng.Intn(3)
				r.MemberID, r.MemberOrdinal = fmt.Sprintf("m%d", ord), ord
				if r.BrokerID != MasterID {
					r.BrokerID = int64(1 + ord)
				}
			}
			for n := range tp {
				if rng.Intn(3) == 0 {
					c := tp[n]
					c.Perm = []int32{0, PermRead, PermWrite, PermRead | PermWrite | PermInherit}[rng.Intn(4)]
					tp[n] = c
				}
			}
			before := rt.ClusterInfo()
			beforeTopics := rt.AllTopics()
			_, err := rt.Register(r, now)
			if err != nil {
				after := rt.ClusterInfo()
				if fmt.Sprint(before) != fmt.Sprint(after) || fmt.Sprint(beforeTopics) != fmt.Sprint(rt.AllTopics()) {
					t.Fatalf("%s: refused registration %+v changed the table", step, r)
				}
			} else if got := rt.ClusterInfo().BrokerAddrTable[r.BrokerName].BrokerAddrs[r.BrokerID]; got != r.BrokerAddr {
				t.Fatalf("%s: accepted %+v but id %d is %q", step, r, r.BrokerID, got)
			}
		case op == 6:
			rt.ConnClosed(connID(rng.Intn(4)))
		case op == 7:
			now = now.Add(time.Duration(rng.Intn(40)) * time.Second)
			rt.ScanExpired(now)
		case op == 8:
			rt.Unregister("c", addrs[rng.Intn(len(addrs))])
		default:
			switch rng.Intn(3) {
			case 0:
				rt.DeleteTopic(topicNames[rng.Intn(len(topicNames))], "")
			case 1:
				rt.WipeWritePerm(groups[rng.Intn(len(groups))])
			default:
				rt.AddWritePerm(groups[rng.Intn(len(groups))])
			}
		}
		checkInvariants(t, rt, step)
	}
}
