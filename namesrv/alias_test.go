package namesrv

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/remoting"
)

const (
	addrA = "10.0.0.1:10911" // member n0, ordinal 0, stable id 1
	addrB = "10.0.0.2:10911" // member n1, ordinal 1, stable id 2
	addrC = "10.0.0.3:10911" // member n2, ordinal 2, stable id 3
)

var memberOf = map[string]struct {
	id  string
	ord int
}{addrA: {"n0", 0}, addrB: {"n1", 1}, addrC: {"n2", 2}}

// mreg is a raftmq member's registration: as leader (brokerId 0) or follower
// (brokerId 1+ordinal), topic T with perm, in term.
func mreg(addr string, leader bool, term int64, perm int32) Registration {
	m := memberOf[addr]
	id := int64(0)
	if !leader {
		id = int64(1 + m.ord)
	}
	r := reg(addr, id, term, map[string]TopicConfig{"T": {TopicName: "T", ReadQueueNums: 4, WriteQueueNums: 4, Perm: perm}})
	r.MemberID, r.MemberOrdinal = m.id, m.ord
	return r
}

// shape renders a route compactly: queue entries "name:perm" and broker
// entries "name=id:addr,..." with addresses as A/B/C, each list sorted.
func shape(rd *TopicRouteData) string {
	short := strings.NewReplacer(addrA, "A", addrB, "B", addrC, "C")
	var qs, bs []string
	for _, q := range rd.QueueDatas {
		if q.ReadQueueNums != 4 || q.WriteQueueNums != 4 {
			qs = append(qs, fmt.Sprintf("%s:%d(%d/%d)", q.BrokerName, q.Perm, q.ReadQueueNums, q.WriteQueueNums))
			continue
		}
		qs = append(qs, fmt.Sprintf("%s:%d", q.BrokerName, q.Perm))
	}
	for _, b := range rd.BrokerDatas {
		ids := make([]int64, 0, len(b.BrokerAddrs))
		for id := range b.BrokerAddrs {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		parts := make([]string, len(ids))
		for i, id := range ids {
			parts[i] = fmt.Sprintf("%d:%s", id, short.Replace(b.BrokerAddrs[id]))
		}
		bs = append(bs, b.BrokerName+"="+strings.Join(parts, ","))
	}
	return strings.Join(qs, " ") + " | " + strings.Join(bs, " ")
}

// wantRoute fails the test when topic T's route is not want.
func wantRoute(t *testing.T, rt *RouteTable, step, want string) {
	t.Helper()
	if got := routeShape(rt); got != want {
		t.Fatalf("%s: route\n got %s\nwant %s", step, got, want)
	}
}

func routeShape(rt *RouteTable) string {
	rd, ok := rt.TopicRoute("T")
	if !ok {
		return "no route"
	}
	return shape(rd)
}

// clusterShape renders broker-a's cluster info entry like shape's broker part.
func clusterShape(rt *RouteTable) string {
	ci := rt.ClusterInfo()
	bd, ok := ci.BrokerAddrTable["broker-a"]
	if !ok {
		return "no group"
	}
	for name := range ci.BrokerAddrTable {
		if strings.Contains(name, AliasSeparator) {
			return "alias " + name + " in cluster info"
		}
	}
	return strings.SplitN(shape(&TopicRouteData{BrokerDatas: []BrokerData{bd}}), " | ", 2)[1]
}

const three = "broker-a:4 broker-a@n0:2 broker-a@n1:2 broker-a@n2:2 | " +
	"broker-a=0:A,1:A,2:B,3:C broker-a@n0=0:A broker-a@n1=0:B broker-a@n2=0:C"

func TestAliasRoutes(t *testing.T) {
	type op struct {
		what string
		do   func(rt *RouteTable, now time.Time) error
	}
	register := func(r Registration) op {
		return op{fmt.Sprintf("register %s id %d term %d", r.BrokerAddr, r.BrokerID, r.DataVersion.StateVersion),
			func(rt *RouteTable, now time.Time) error { _, err := rt.Register(r, now); return err }}
	}
	expire := func(addr string) op {
		return op{"expire " + addr, func(rt *RouteTable, now time.Time) error {
			// Everybody else registers again at now+1m; addr stays silent.
			rt.mu.Lock()
			for k, lb := range rt.live {
				if k.addr != addr {
					lb.lastUpdate = now.Add(time.Minute)
				}
			}
			rt.mu.Unlock()
			if got := rt.ScanExpired(now.Add(time.Minute + time.Second)); !reflect.DeepEqual(got, []string{addr}) {
				return fmt.Errorf("expired %v", got)
			}
			return nil
		}}
	}
	unregister := func(addr string) op {
		return op{"unregister " + addr, func(rt *RouteTable, _ time.Time) error {
			if !rt.Unregister("c1", addr) {
				return errors.New("unknown")
			}
			return nil
		}}
	}
	three3 := []op{register(mreg(addrA, true, 3, 6)), register(mreg(addrB, false, 3, 6)), register(mreg(addrC, false, 3, 6))}
	cases := []struct {
		name    string
		ops     []op
		route   string
		cluster string
	}{
		{
			name:    "single member: no aliases, leader also at its stable id",
			ops:     []op{register(mreg(addrA, true, 1, 6))},
			route:   "broker-a:6 | broker-a=0:A,1:A",
			cluster: "broker-a=0:A",
		},
		{
			name:    "three members",
			ops:     three3,
			route:   three,
			cluster: "broker-a=0:A,2:B,3:C",
		},
		{
			name:    "followers before the first leader: not routable",
			ops:     []op{register(mreg(addrB, false, 1, 6)), register(mreg(addrC, false, 1, 6))},
			route:   "no route",
			cluster: "broker-a=2:B,3:C",
		},
		{
			name:  "first leader makes the group routable",
			ops:   []op{register(mreg(addrB, false, 1, 6)), register(mreg(addrC, false, 1, 6)), register(mreg(addrA, true, 1, 6))},
			route: three,
		},
		{
			name: "leader steps down: kept at 0 until a higher term registers",
			ops:  append(three3[:3:3], register(mreg(addrA, false, 4, 6))),
			route: "broker-a:4 broker-a@n0:2 broker-a@n1:2 broker-a@n2:2 | " +
				"broker-a=0:A,1:A,2:B,3:C broker-a@n0=0:A broker-a@n1=0:B broker-a@n2=0:C",
			cluster: "broker-a=0:A,1:A,2:B,3:C",
		},
		{
			name: "new leader of the next term takes 0 from the stepped-down one",
			ops:  append(three3[:3:3], register(mreg(addrA, false, 4, 6)), register(mreg(addrB, true, 4, 6))),
			route: "broker-a:4 broker-a@n0:2 broker-a@n1:2 broker-a@n2:2 | " +
				"broker-a=0:B,1:A,2:B,3:C broker-a@n0=0:A broker-a@n1=0:B broker-a@n2=0:C",
			cluster: "broker-a=0:B,1:A,3:C",
		},
		{
			name: "new leader before the old one heard of it",
			ops:  append(three3[:3:3], register(mreg(addrB, true, 4, 6))),
			route: "broker-a:4 broker-a@n0:2 broker-a@n1:2 broker-a@n2:2 | " +
				"broker-a=0:B,1:A,2:B,3:C broker-a@n0=0:A broker-a@n1=0:B broker-a@n2=0:C",
		},
		{
			name: "leader expires: its address stays at 0, its alias and stable id go",
			ops:  append(three3[:3:3], expire(addrA)),
			route: "broker-a:4 broker-a@n1:2 broker-a@n2:2 | " +
				"broker-a=0:A,2:B,3:C broker-a@n1=0:B broker-a@n2=0:C",
			cluster: "broker-a=0:A,2:B,3:C",
		},
		{
			name: "leader unregisters (graceful stop): same as expiry",
			ops:  append(three3[:3:3], unregister(addrA)),
			route: "broker-a:4 broker-a@n1:2 broker-a@n2:2 | " +
				"broker-a=0:A,2:B,3:C broker-a@n1=0:B broker-a@n2=0:C",
		},
		{
			name: "after the leader's unregistration the next leader replaces it",
			ops:  append(three3[:3:3], unregister(addrA), register(mreg(addrC, true, 4, 6))),
			route: "broker-a:4 broker-a@n1:2 broker-a@n2:2 | " +
				"broker-a=0:C,2:B,3:C broker-a@n1=0:B broker-a@n2=0:C",
			cluster: "broker-a=0:C,2:B",
		},
		{
			name:    "one live member left: no aliases, old leader still at 0",
			ops:     append(three3[:3:3], unregister(addrA), unregister(addrB)),
			route:   "broker-a:6 | broker-a=0:A,3:C",
			cluster: "broker-a=0:A,3:C",
		},
		{
			name:  "last live member gone: the group goes",
			ops:   append(three3[:3:3], unregister(addrA), unregister(addrB), unregister(addrC)),
			route: "no route", cluster: "no group",
		},
		{
			name:  "read-only topic: no aliases",
			ops:   []op{register(mreg(addrA, true, 1, 4)), register(mreg(addrB, false, 1, 4))},
			route: "broker-a:4 | broker-a=0:A,1:A,2:B",
		},
		{
			name:  "write-only topic: no read entry",
			ops:   []op{register(mreg(addrA, true, 1, 2)), register(mreg(addrB, false, 1, 2))},
			route: "broker-a@n0:2 broker-a@n1:2 | broker-a=0:A,1:A,2:B broker-a@n0=0:A broker-a@n1=0:B",
		},
		{
			name: "inherit bit stays on both entries (TBW102)",
			ops:  []op{register(mreg(addrA, true, 1, 7)), register(mreg(addrB, false, 1, 7))},
			route: "broker-a:5 broker-a@n0:3 broker-a@n1:3 | " +
				"broker-a=0:A,1:A,2:B broker-a@n0=0:A broker-a@n1=0:B",
		},
		{
			name:  "no permission: unchanged single entry",
			ops:   []op{register(mreg(addrA, true, 1, 0)), register(mreg(addrB, false, 1, 0))},
			route: "broker-a:0 | broker-a=0:A,1:A,2:B",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rt := NewRouteTable(time.Minute)
			for _, o := range tc.ops {
				if err := o.do(rt, t0); err != nil {
					t.Fatalf("%s: %v", o.what, err)
				}
				checkInvariants(t, rt, o.what)
			}
			if got := routeShape(rt); got != tc.route {
				t.Errorf("route\n got %s\nwant %s", got, tc.route)
			}
			if tc.cluster != "" {
				if got := clusterShape(rt); got != tc.cluster {
					t.Errorf("cluster info\n got %s\nwant %s", got, tc.cluster)
				}
			}
		})
	}
}

func TestAliasFencing(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	for _, r := range []Registration{mreg(addrA, true, 3, 6), mreg(addrB, false, 3, 6), mreg(addrC, false, 3, 6)} {
		mustRegister(t, rt, r, t0)
	}
	// a steps down; in term 4 nobody has registered as leader yet.
	mustRegister(t, rt, mreg(addrA, false, 4, 6), t0)
	// A stale leader claim of term 3 from another address: refused.
	var fe *FencedError
	if _, err := rt.Register(mreg(addrC, true, 3, 6), t0); !errors.As(err, &fe) || fe.HolderAddr != addrA || fe.HolderTerm != 3 {
		t.Fatalf("term-3 claim by c: %v", err)
	}
	// b wins term 4.
	mustRegister(t, rt, mreg(addrB, true, 4, 6), t0)
	before := routeShape(rt)
	// The deposed a, still believing it leads term 3, is refused and changes nothing.
	if _, err := rt.Register(mreg(addrA, true, 3, 6), t0); err == nil {
		t.Fatal("term-3 claim by the deposed leader accepted")
	}
	// Two leaders in term 4 cannot be.
	if _, err := rt.Register(mreg(addrC, true, 4, 6), t0); !errors.As(err, &fe) || fe.HolderAddr != addrB || fe.HolderTerm != 4 {
		t.Fatalf("second term-4 leader: %v", err)
	}
	if got := routeShape(rt); got != before {
		t.Fatalf("refused registrations changed the route\n got %s\nwant %s", got, before)
	}
	// Term 5 goes to c.
	mustRegister(t, rt, mreg(addrC, true, 5, 6), t0)
	want := "broker-a:4 broker-a@n0:2 broker-a@n1:2 broker-a@n2:2 | " +
		"broker-a=0:C,1:A,2:B,3:C broker-a@n0=0:A broker-a@n1=0:B broker-a@n2=0:C"
	wantRoute(t, rt, "after term 5", want)
	checkInvariants(t, rt, "end")
}

func TestAliasMemberMovesAddress(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	mustRegister(t, rt, mreg(addrA, true, 1, 6), t0)
	mustRegister(t, rt, mreg(addrB, false, 1, 6), t0)
	// n1 restarts on another address before its old registration expired.
	moved := mreg(addrB, false, 1, 6)
	moved.BrokerAddr = addrC
	mustRegister(t, rt, moved, t0)
	want := "broker-a:4 broker-a@n0:2 broker-a@n1:2 | broker-a=0:A,1:A,2:C broker-a@n0=0:A broker-a@n1=0:C"
	wantRoute(t, rt, "route", want)
	checkInvariants(t, rt, "moved")
}

func TestAliasTopicsFromMembersWhileNoLeaderClaims(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	mustRegister(t, rt, mreg(addrA, true, 1, 6), t0)
	mustRegister(t, rt, mreg(addrB, false, 1, 6), t0)
	// A follower's table is ignored while the leader's registration holds 0.
	r := mreg(addrB, false, 1, 6)
	r.DataVersion.Counter++
	r.Topics["U"] = TopicConfig{TopicName: "U", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}
	mustRegister(t, rt, r, t0)
	if _, ok := rt.TopicRoute("U"); ok {
		t.Fatal("follower table used while the leader claims 0")
	}
	// The leader stepped down (still at 0 in routes): members' tables count.
	mustRegister(t, rt, mreg(addrA, false, 2, 6), t0)
	r.DataVersion.Counter++
	r.DataVersion.StateVersion = 2
	mustRegister(t, rt, r, t0)
	if _, ok := rt.TopicRoute("U"); !ok {
		t.Fatal("member table ignored while no registration claims 0")
	}
}

func TestAliasRegistrationValidation(t *testing.T) {
	bad := map[string]Registration{
		"brokerName with @": func() Registration { r := mreg(addrA, true, 1, 6); r.BrokerName = "broker@a"; return r }(),
		"memberId with @":   func() Registration { r := mreg(addrA, true, 1, 6); r.MemberID = "n@0"; return r }(),
		"memberId with ,":   func() Registration { r := mreg(addrA, true, 1, 6); r.MemberID = "n,0"; return r }(),
		"follower id is not 1+ordinal": func() Registration {
			r := mreg(addrB, false, 1, 6)
			r.BrokerID = 3
			return r
		}(),
		"ordinal too large": func() Registration { r := mreg(addrA, true, 1, 6); r.MemberOrdinal = MaxMemberOrdinal + 1; return r }(),
	}
	rt := NewRouteTable(time.Minute)
	for name, r := range bad {
		if _, err := rt.Register(r, t0); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if len(rt.ClusterInfo().BrokerAddrTable) != 0 {
		t.Fatal("refused registrations changed the table")
	}
	// Without an explicit ordinal a follower's id gives it.
	r := mreg(addrB, false, 1, 6)
	r.MemberOrdinal = -1
	mustRegister(t, rt, r, t0)
	mustRegister(t, rt, mreg(addrA, true, 1, 6), t0)
	want := "broker-a:4 broker-a@n0:2 broker-a@n1:2 | broker-a=0:A,1:A,2:B broker-a@n0=0:A broker-a@n1=0:B"
	wantRoute(t, rt, "route", want)
}

// TestAliasesLeavePlainGroupsAlone checks that a plain group next to a raftmq
// one keeps Java's rules: no aliases, routable without a master.
func TestAliasesLeavePlainGroupsAlone(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	mustRegister(t, rt, mreg(addrA, true, 1, 6), t0)
	mustRegister(t, rt, mreg(addrB, false, 1, 6), t0)
	slave := reg("10.0.0.9:10911", 1, 0, topics("T"))
	slave.BrokerName = "broker-b"
	mustRegister(t, rt, slave, t0)
	want := "broker-a:4 broker-a@n0:2 broker-a@n1:2 broker-b:6 | " +
		"broker-a=0:A,1:A,2:B broker-a@n0=0:A broker-a@n1=0:B broker-b=1:10.0.0.9:10911"
	wantRoute(t, rt, "route", want)
	if got := rt.TopicsByCluster("c1"); !reflect.DeepEqual(got, []string{"T"}) {
		t.Fatalf("topics by cluster %v", got)
	}
	// Wiping the group's write permission removes its aliases.
	rt.WipeWritePerm("broker-a")
	want = "broker-a:4 broker-b:6 | broker-a=0:A,1:A,2:B broker-b=1:10.0.0.9:10911"
	wantRoute(t, rt, "after wipe", want)
}

// goClientView is what rocketmq-client-go v2 derives from a route body
// (internal/route.go routeData2PublishInfo, routeData2SubscribeInfo,
// FindBrokerAddrByName, FindBrokerAddressInSubscribe), re-implemented here
// because this module cannot import the client.
type goClientView struct {
	publish, subscribe []string // "brokerName/queueId"
	addrs              map[string]map[int64]string
}

func decodeLikeGoClient(t *testing.T, body []byte) goClientView {
	t.Helper()
	var raw struct {
		QueueDatas []struct {
			BrokerName     string `json:"brokerName"`
			ReadQueueNums  int    `json:"readQueueNums"`
			WriteQueueNums int    `json:"writeQueueNums"`
			Perm           int    `json:"perm"`
		} `json:"queueDatas"`
		BrokerDatas []struct {
			BrokerName  string          `json:"brokerName"`
			BrokerAddrs json.RawMessage `json:"brokerAddrs"`
		} `json:"brokerDatas"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("route %s: %v", body, err)
	}
	v := goClientView{addrs: map[string]map[int64]string{}}
	for _, bd := range raw.BrokerDatas {
		v.addrs[bd.BrokerName] = goClientBrokerAddrs(string(bd.BrokerAddrs))
	}
	sort.SliceStable(raw.QueueDatas, func(i, j int) bool { return raw.QueueDatas[i].BrokerName < raw.QueueDatas[j].BrokerName })
	for _, qd := range raw.QueueDatas {
		if qd.Perm&PermWrite != 0 && v.addrs[qd.BrokerName][MasterID] != "" {
			for q := 0; q < qd.WriteQueueNums; q++ {
				v.publish = append(v.publish, fmt.Sprintf("%s/%d", qd.BrokerName, q))
			}
		}
		if qd.Perm&PermRead != 0 {
			for q := 0; q < qd.ReadQueueNums; q++ {
				v.subscribe = append(v.subscribe, fmt.Sprintf("%s/%d", qd.BrokerName, q))
			}
		}
	}
	return v
}

// findInSubscribe is FindBrokerAddressInSubscribe with onlyThisBroker=false,
// minus its random fallback (the test never needs it).
func (v goClientView) findInSubscribe(name string, id int64) string {
	if a := v.addrs[name][id]; a != "" {
		return a
	}
	if id != MasterID {
		return v.addrs[name][id+1]
	}
	return ""
}

// TestServerAliasRouteAsGoClientSeesIt registers a three-member group over
// the wire with the raftmq ext fields and checks what the Go client makes of
// the route: 3×N write queues spread over the members, N read queues of the
// group only, the group's name resolving to the leader and a follower's
// stable id to that follower.
func TestServerAliasRouteAsGoClientSeesIt(t *testing.T) {
	h := startServer(t, time.Hour)
	tp := map[string]TopicConfig{"T": {TopicName: "T", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}}
	memberRegister := func(addr string, id int64, member string, ord int, term int64) *remoting.Command {
		ext := registerExt(addr, id)
		ext[ExtMemberID] = member
		ext[ExtMemberOrdinal] = strconv.Itoa(ord)
		return h.call(remoting.RegisterBroker, ext, registerBody(t, term, 1, tp))
	}
	// Followers first: no route yet (the client would drop the group).
	for i, a := range []string{addrB, addrC} {
		if resp := memberRegister(a, int64(2+i), fmt.Sprintf("n%d", 1+i), 1+i, 1); resp.Code != remoting.Success {
			t.Fatalf("register follower: %d %s", resp.Code, resp.Remark)
		}
	}
	if resp, _ := h.route("T"); resp.Code != remoting.TopicNotExist {
		t.Fatalf("route before the first leader: code %d", resp.Code)
	}
	if resp := memberRegister(addrA, 0, "n0", 0, 1); resp.Code != remoting.Success {
		t.Fatalf("register leader: %d %s", resp.Code, resp.Remark)
	}
	resp, _ := h.route("T")
	if resp.Code != remoting.Success {
		t.Fatalf("route: %d %s", resp.Code, resp.Remark)
	}
	v := decodeLikeGoClient(t, resp.Body)
	if len(v.publish) != 12 || v.publish[0] != "broker-a@n0/0" || v.publish[4] != "broker-a@n1/0" || v.publish[8] != "broker-a@n2/0" {
		t.Fatalf("publish queues %v", v.publish)
	}
	if want := []string{"broker-a/0", "broker-a/1", "broker-a/2", "broker-a/3"}; !reflect.DeepEqual(v.subscribe, want) {
		t.Fatalf("subscribe queues %v", v.subscribe)
	}
	for alias, addr := range map[string]string{"broker-a@n0": addrA, "broker-a@n1": addrB, "broker-a@n2": addrC} {
		if got := v.addrs[alias][MasterID]; got != addr {
			t.Fatalf("sends to %s go to %q, want %s", alias, got, addr)
		}
	}
	if got := v.addrs["broker-a"][MasterID]; got != addrA {
		t.Fatalf("FindBrokerAddrByName(broker-a) = %q", got)
	}
	for id, addr := range map[int64]string{1: addrA, 2: addrB, 3: addrC} {
		if got := v.findInSubscribe("broker-a", id); got != addr {
			t.Fatalf("FindBrokerAddressInSubscribe(broker-a, %d) = %q, want %s", id, got, addr)
		}
	}
	// Heartbeats go to every address of every brokerName: each member is
	// reached through its own alias even when another member is down.
	reached := map[string]bool{}
	for name, ids := range v.addrs {
		if strings.Contains(name, AliasSeparator) {
			reached[ids[MasterID]] = true
		}
	}
	if len(reached) != 3 {
		t.Fatalf("aliases reach %v", reached)
	}

	// Order topic conf is passed through untouched.
	h.srv.KV().Put(NamespaceOrderTopicConfig, "T", "broker-a:4")
	resp, _ = h.route("T")
	var withConf TopicRouteData
	if err := json.Unmarshal(resp.Body, &withConf); err != nil || withConf.OrderTopicConf != "broker-a:4" {
		t.Fatalf("order conf route %s: %v", resp.Body, err)
	}

	// Cluster info lists the group once and no alias.
	resp = h.call(remoting.GetBrokerClusterInfo, nil, nil)
	var ci ClusterInfo
	if err := json.Unmarshal(resp.Body, &ci); err != nil {
		t.Fatal(err)
	}
	if len(ci.BrokerAddrTable) != 1 || !reflect.DeepEqual(ci.BrokerAddrTable["broker-a"].BrokerAddrs, map[int64]string{0: addrA, 2: addrB, 3: addrC}) {
		t.Fatalf("cluster info %+v", ci.BrokerAddrTable)
	}

	// Bad ext values are refused.
	ext := registerExt(addrA, 0)
	ext[ExtMemberID], ext[ExtMemberOrdinal] = "n0", "x"
	if resp := h.call(remoting.RegisterBroker, ext, registerBody(t, 1, 1, tp)); resp.Code != remoting.InvalidParameter {
		t.Fatalf("bad ordinal: code %d", resp.Code)
	}
	ext[ExtMemberOrdinal] = "-1"
	if resp := h.call(remoting.RegisterBroker, ext, registerBody(t, 1, 1, tp)); resp.Code != remoting.InvalidParameter {
		t.Fatalf("negative ordinal: code %d", resp.Code)
	}
}

// TestTopicListsMatchRoutes checks that topic lists name exactly the topics
// that have routes: a raftmq group's topics appear with its first leader.
func TestTopicListsMatchRoutes(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	mustRegister(t, rt, mreg(addrB, false, 1, 6), t0)
	if got := rt.AllTopics(); len(got) != 0 {
		t.Fatalf("topics before the first leader: %v", got)
	}
	if got := rt.TopicsByCluster("c1"); len(got) != 0 {
		t.Fatalf("cluster topics before the first leader: %v", got)
	}
	mustRegister(t, rt, mreg(addrA, true, 1, 6), t0)
	if got := rt.AllTopics(); !reflect.DeepEqual(got, []string{"T"}) {
		t.Fatalf("topics: %v", got)
	}
	if got := rt.TopicsByCluster("c1"); !reflect.DeepEqual(got, []string{"T"}) {
		t.Fatalf("cluster topics: %v", got)
	}
}
