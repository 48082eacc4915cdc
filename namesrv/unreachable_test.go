package namesrv

import (
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/remoting"
	"github.com/raftmq/raftmq/wire"
)

// cutReg is m's registration listing the members it does not hear from.
func cutReg(addr string, leader bool, term int64, unreachable ...string) Registration {
	r := mreg(addr, leader, term, 6)
	r.Unreachable = unreachable
	return r
}

const (
	routeAll = "broker-a:4 broker-a@n0:2 broker-a@n1:2 broker-a@n2:2 | " +
		"broker-a=0:A,1:A,2:B,3:C broker-a@n0=0:A broker-a@n1=0:B broker-a@n2=0:C"
	routeWithoutN2 = "broker-a:4 broker-a@n0:2 broker-a@n1:2 | " +
		"broker-a=0:A,1:A,2:B broker-a@n0=0:A broker-a@n1=0:B"
)

func threeMembers(t *testing.T, rt *RouteTable, term int64) {
	t.Helper()
	mustRegister(t, rt, mreg(addrA, true, term, 6), t0)
	mustRegister(t, rt, mreg(addrB, false, term, 6), t0)
	mustRegister(t, rt, mreg(addrC, false, term, 6), t0)
	wantRoute(t, rt, "all live", routeAll)
}

func TestUnreachableLeftOutUntilLeaderHearsAgain(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	threeMembers(t, rt, 3)
	mustRegister(t, rt, cutReg(addrA, true, 3, "n2"), t0)
	wantRoute(t, rt, "n2 reported", routeWithoutN2)
	// Cut off from the leader only, n2 keeps registering; that does not
	// override the leader's view in its term, whatever n2's own term.
	mustRegister(t, rt, cutReg(addrC, false, 3), t0)
	mustRegister(t, rt, cutReg(addrC, false, 4), t0)
	wantRoute(t, rt, "n2 registers itself", routeWithoutN2)
	// Cluster info still shows it.
	if bd := rt.ClusterInfo().BrokerAddrTable["broker-a"]; bd.BrokerAddrs[3] != addrC {
		t.Fatalf("cluster info lost n2: %v", bd.BrokerAddrs)
	}
	checkInvariants(t, rt, "cut")
	// The leader's next registration without it restores it.
	mustRegister(t, rt, cutReg(addrA, true, 3), t0)
	wantRoute(t, rt, "cleared", routeAll)
}

func TestUnreachableIgnoredFromNonLeaderAndStaleTerm(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	threeMembers(t, rt, 3)
	// A follower's report means nothing.
	mustRegister(t, rt, cutReg(addrB, false, 3, "n2"), t0)
	wantRoute(t, rt, "follower report", routeAll)
	// The leader of term 3 reports n2; then b leads term 4: the old view
	// goes with the old term.
	mustRegister(t, rt, cutReg(addrA, true, 3, "n2"), t0)
	wantRoute(t, rt, "n2 reported", routeWithoutN2)
	mustRegister(t, rt, cutReg(addrB, true, 4), t0)
	want := strings.Replace(routeAll, "broker-a=0:A", "broker-a=0:B", 1)
	wantRoute(t, rt, "new term", want)
	// The deposed leader's report in term 3 is fenced and changes nothing.
	if _, err := rt.Register(cutReg(addrA, true, 3, "n2"), t0); err == nil {
		t.Fatal("stale leader registration accepted")
	}
	wantRoute(t, rt, "stale report", want)
	// Nor does a report from the old leader once it follows in term 4.
	mustRegister(t, rt, cutReg(addrA, false, 4, "n2"), t0)
	wantRoute(t, rt, "old leader as follower", want)
	checkInvariants(t, rt, "end")
}

func TestUnreachableNeverDropsLeaderOrEveryone(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	threeMembers(t, rt, 3)
	// The leader listing itself is not dropped; the others are.
	mustRegister(t, rt, cutReg(addrA, true, 3, "n0", "n1", "n2"), t0)
	want := "broker-a:6 | broker-a=0:A,1:A"
	wantRoute(t, rt, "all reported", want)
	// The leader's registration expires: its view goes with it, so the
	// remaining members are listed again (brokerId 0 stays sticky).
	mustRegister(t, rt, mreg(addrB, false, 3, 6), t0.Add(50*time.Second))
	mustRegister(t, rt, mreg(addrC, false, 3, 6), t0.Add(50*time.Second))
	rt.ScanExpired(t0.Add(90 * time.Second))
	want = "broker-a:4 broker-a@n1:2 broker-a@n2:2 | broker-a=0:A,2:B,3:C broker-a@n1=0:B broker-a@n2=0:C"
	wantRoute(t, rt, "leader expired", want)
	checkInvariants(t, rt, "end")
}

func TestServerUnreachableExt(t *testing.T) {
	h := startServer(t, time.Hour)
	tp := map[string]wire.TopicConfig{"T": {TopicName: "T", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}}
	register := func(addr string, id int64, member, unreachable string) *remoting.Command {
		ext := registerExt(addr, id)
		ext[wire.ExtMemberID] = member
		ext[wire.ExtMemberOrdinal] = map[string]string{"n0": "0", "n1": "1", "n2": "2"}[member]
		if unreachable != "-" {
			ext[wire.ExtUnreachable] = unreachable
		}
		return h.call(remoting.RegisterBroker, ext, registerBody(t, 1, 1, tp))
	}
	routeBody := func() []byte {
		resp, _ := h.route("T")
		if resp.Code != remoting.Success {
			t.Fatalf("route: %d %s", resp.Code, resp.Remark)
		}
		return resp.Body
	}
	for _, r := range []*remoting.Command{register(addrB, 2, "n1", "-"), register(addrC, 3, "n2", "-"), register(addrA, 0, "n0", "n2,")} {
		if r.Code != remoting.Success {
			t.Fatalf("register: %d %s", r.Code, r.Remark)
		}
	}
	v := decodeLikeGoClient(t, routeBody())
	if len(v.publish) != 8 || v.addrs["broker-a"][3] != "" || v.addrs["broker-a@n2"] != nil {
		t.Fatalf("route with n2 reported: %+v", v)
	}
	if r := register(addrA, 0, "n0", "n1,bad:id"); r.Code == remoting.Success {
		t.Fatal("invalid member id accepted")
	}
	if r := register(addrA, 0, "n0", ""); r.Code != remoting.Success {
		t.Fatalf("register: %d %s", r.Code, r.Remark)
	}
	if v := decodeLikeGoClient(t, routeBody()); len(v.publish) != 12 || v.addrs["broker-a"][3] != addrC {
		t.Fatalf("route after clearing: %+v", v)
	}
}
