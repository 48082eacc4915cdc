package namesrv

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/raftmq/raftmq/wire"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type connID int

func topics(names ...string) map[string]wire.TopicConfig {
	m := make(map[string]wire.TopicConfig, len(names))
	for _, n := range names {
		m[n] = wire.TopicConfig{TopicName: n, ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}
	}
	return m
}

func reg(addr string, id, term int64, tp map[string]wire.TopicConfig) Registration {
	return Registration{
		ClusterName: "c1", BrokerName: "broker-a", BrokerAddr: addr, BrokerID: id,
		HAServerAddr: addr + "-ha",
		DataVersion:  wire.DataVersion{Counter: 1, StateVersion: term, Timestamp: 100},
		Topics:       tp, Conn: connID(len(addr)),
	}
}

func mustRegister(t *testing.T, rt *RouteTable, r Registration, now time.Time) RegisterResult {
	t.Helper()
	res, err := rt.Register(r, now)
	if err != nil {
		t.Fatalf("register %s id %d term %d: %v", r.BrokerAddr, r.BrokerID, r.DataVersion.StateVersion, err)
	}
	return res
}

func addrsOf(t *testing.T, rt *RouteTable, topic string) map[int64]string {
	t.Helper()
	rd, ok := rt.TopicRoute(topic)
	if !ok {
		t.Fatalf("no route for %s", topic)
	}
	if len(rd.BrokerDatas) != 1 {
		t.Fatalf("want 1 broker data, got %+v", rd.BrokerDatas)
	}
	return rd.BrokerDatas[0].BrokerAddrs
}

func TestRegisterAndRoute(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	mustRegister(t, rt, reg("10.0.0.1:10911", 0, 1, topics("T1", "TBW102")), t0)
	res := mustRegister(t, rt, reg("10.0.0.2:10911", 1, 1, topics("T1", "TBW102")), t0)
	if res.MasterAddr != "10.0.0.1:10911" || res.HAServerAddr != "10.0.0.1:10911-ha" {
		t.Fatalf("follower result %+v", res)
	}
	rd, ok := rt.TopicRoute("T1")
	if !ok {
		t.Fatal("T1 has no route")
	}
	want := &wire.TopicRouteData{
		BrokerDatas: []wire.BrokerData{{
			BrokerAddrs: map[int64]string{0: "10.0.0.1:10911", 1: "10.0.0.2:10911"},
			BrokerName:  "broker-a", Cluster: "c1",
		}},
		FilterServerTable: map[string][]string{},
		QueueDatas:        []wire.QueueData{{BrokerName: "broker-a", Perm: 6, ReadQueueNums: 4, WriteQueueNums: 4}},
	}
	if !reflect.DeepEqual(rd, want) {
		t.Fatalf("route\n got %+v\nwant %+v", rd, want)
	}
	if _, ok := rt.TopicRoute("nope"); ok {
		t.Fatal("unknown topic has a route")
	}
	if got := rt.AllTopics(); !reflect.DeepEqual(got, []string{"T1", "TBW102"}) {
		t.Fatalf("all topics %v", got)
	}
}

func TestRegisterValidation(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	bad := []Registration{
		reg("nohostport", 0, 1, nil),
		reg("10.0.0.1: 10911", 0, 1, nil),
		reg("10.0.0.1:10911", -1, 1, nil),
		func() Registration { r := reg("10.0.0.1:10911", 0, 1, nil); r.BrokerName = ""; return r }(),
		func() Registration { r := reg("10.0.0.1:10911", 0, 1, nil); r.ClusterName = "a b"; return r }(),
	}
	for _, r := range bad {
		if _, err := rt.Register(r, t0); err == nil {
			t.Errorf("registration %+v accepted", r)
		}
	}
	if len(rt.ClusterInfo().BrokerAddrTable) != 0 {
		t.Fatal("refused registrations changed the table")
	}
}

func TestReRegisterTopicChanges(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	r := reg("10.0.0.1:10911", 0, 1, topics("T1", "T2"))
	mustRegister(t, rt, r, t0)

	// Same data version: the table is not re-read (Java's rule), so a changed
	// table under an unchanged version is ignored.
	r.Topics = topics("T1")
	mustRegister(t, rt, r, t0)
	if _, ok := rt.TopicRoute("T2"); !ok {
		t.Fatal("unchanged data version dropped T2")
	}
	// New data version: topics missing from the table lose the group's queues.
	r.DataVersion.Counter++
	r.Topics = topics("T1", "T3")
	r.Topics["T1"] = wire.TopicConfig{ReadQueueNums: 8, WriteQueueNums: 2, Perm: 7}
	mustRegister(t, rt, r, t0)
	if _, ok := rt.TopicRoute("T2"); ok {
		t.Fatal("T2 survived a table without it")
	}
	rd, _ := rt.TopicRoute("T1")
	if q := rd.QueueDatas[0]; q.ReadQueueNums != 8 || q.WriteQueueNums != 2 || q.Perm != 7 {
		t.Fatalf("T1 queues not updated: %+v", q)
	}
	if _, ok := rt.TopicRoute("T3"); !ok {
		t.Fatal("T3 missing")
	}
}

func TestFollowerTopicsIgnoredWhileMasterExists(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	mustRegister(t, rt, reg("10.0.0.1:10911", 0, 1, topics("T1")), t0)
	mustRegister(t, rt, reg("10.0.0.2:10911", 1, 1, topics("X")), t0)
	if _, ok := rt.TopicRoute("X"); ok {
		t.Fatal("a follower's table was used while a master exists")
	}
	// Without a master a member's table defines the routes.
	rt2 := NewRouteTable(time.Minute)
	mustRegister(t, rt2, reg("10.0.0.2:10911", 1, 1, topics("X")), t0)
	if got := addrsOf(t, rt2, "X"); !reflect.DeepEqual(got, map[int64]string{1: "10.0.0.2:10911"}) {
		t.Fatalf("addrs %v", got)
	}
}

func TestFencingHigherTermReplacesLeader(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	a, b := "10.0.0.1:10911", "10.0.0.2:10911"
	mustRegister(t, rt, reg(a, 0, 5, topics("T")), t0)
	mustRegister(t, rt, reg(b, 1, 5, topics("T")), t0)

	// b wins the election in term 6 and registers before a hears about it.
	mustRegister(t, rt, reg(b, 0, 6, topics("T")), t0)
	if got := addrsOf(t, rt, "T"); !reflect.DeepEqual(got, map[int64]string{0: b}) {
		t.Fatalf("after promotion: %v", got)
	}
	// The deposed leader still claims id 0 with term 5: refused, nothing changes.
	_, err := rt.Register(reg(a, 0, 5, topics("T", "EVIL")), t0.Add(time.Second))
	var fe *FencedError
	if !errors.As(err, &fe) || fe.HolderAddr != b || fe.HolderTerm != 6 || fe.Term != 5 {
		t.Fatalf("stale leader not fenced: %v", err)
	}
	if got := addrsOf(t, rt, "T"); !reflect.DeepEqual(got, map[int64]string{0: b}) {
		t.Fatalf("after refused registration: %v", got)
	}
	if _, ok := rt.TopicRoute("EVIL"); ok {
		t.Fatal("refused registration changed topics")
	}
	// The refused broker's liveness was not refreshed: it expires on its first
	// registration's clock.
	if got := rt.ScanExpired(t0.Add(time.Minute + time.Millisecond)); !reflect.DeepEqual(got, []string{a, b}) {
		t.Fatalf("expired %v", got)
	}

	// Re-run: the deposed leader steps down and registers as follower id 2.
	rt = NewRouteTable(time.Minute)
	mustRegister(t, rt, reg(a, 0, 5, topics("T")), t0)
	mustRegister(t, rt, reg(b, 0, 6, topics("T")), t0)
	mustRegister(t, rt, reg(a, 2, 6, topics("T")), t0)
	if got := addrsOf(t, rt, "T"); !reflect.DeepEqual(got, map[int64]string{0: b, 2: a}) {
		t.Fatalf("after step-down: %v", got)
	}
}

func TestFencingEqualTerm(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	a, b := "10.0.0.1:10911", "10.0.0.2:10911"
	mustRegister(t, rt, reg(a, 0, 7, topics("T")), t0)
	// Same address, same term: a plain re-registration.
	mustRegister(t, rt, reg(a, 0, 7, topics("T")), t0)
	// Another address in the same term > 0: two leaders in one term cannot be.
	if _, err := rt.Register(reg(b, 0, 7, topics("T")), t0); err == nil {
		t.Fatal("equal term from another address took brokerId 0")
	}
	// Term 0 (no fencing information): last registration wins, as in Java.
	rt = NewRouteTable(time.Minute)
	mustRegister(t, rt, reg(a, 0, 0, topics("T")), t0)
	mustRegister(t, rt, reg(b, 0, 0, topics("T")), t0)
	if got := addrsOf(t, rt, "T"); !reflect.DeepEqual(got, map[int64]string{0: b}) {
		t.Fatalf("term 0 replacement: %v", got)
	}
}

func TestStaleRegistrationFromSameAddress(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	a := "10.0.0.1:10911"
	mustRegister(t, rt, reg(a, 0, 8, topics("T")), t0)
	// A follower registration of term 7 overtaken by the promotion.
	if _, err := rt.Register(reg(a, 1, 7, topics("T")), t0); err == nil {
		t.Fatal("overtaken registration accepted")
	}
	if got := addrsOf(t, rt, "T"); !reflect.DeepEqual(got, map[int64]string{0: a}) {
		t.Fatalf("addrs %v", got)
	}
}

func TestSameAddressChangesID(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	a, b := "10.0.0.1:10911", "10.0.0.2:10911"
	mustRegister(t, rt, reg(a, 1, 3, topics("T")), t0)
	mustRegister(t, rt, reg(b, 0, 3, topics("T")), t0)
	mustRegister(t, rt, reg(a, 0, 4, topics("T")), t0)
	if got := addrsOf(t, rt, "T"); !reflect.DeepEqual(got, map[int64]string{0: a}) {
		t.Fatalf("a promoted: %v", got)
	}
	mustRegister(t, rt, reg(b, 2, 4, topics("T")), t0)
	if got := addrsOf(t, rt, "T"); !reflect.DeepEqual(got, map[int64]string{0: a, 2: b}) {
		t.Fatalf("b as follower: %v", got)
	}
}

func TestFencingIgnoresDeadHolder(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	a, b := "10.0.0.1:10911", "10.0.0.2:10911"
	mustRegister(t, rt, reg(a, 0, 9, topics("T")), t0)
	if got := rt.ConnClosed(connID(len(a))); !reflect.DeepEqual(got, []string{a}) {
		t.Fatalf("conn close removed %v", got)
	}
	mustRegister(t, rt, reg(b, 0, 2, topics("T")), t0)
	if got := addrsOf(t, rt, "T"); !reflect.DeepEqual(got, map[int64]string{0: b}) {
		t.Fatalf("addrs %v", got)
	}
}

func TestExpiryWithClock(t *testing.T) {
	rt := NewRouteTable(2 * time.Minute)
	a, b := "10.0.0.1:10911", "10.0.0.2:10911"
	mustRegister(t, rt, reg(a, 0, 1, topics("T")), t0)
	rb := reg(b, 1, 1, topics("T"))
	rb.HeartbeatTimeout = 10 * time.Second
	mustRegister(t, rt, rb, t0)

	if got := rt.ScanExpired(t0.Add(10 * time.Second)); len(got) != 0 {
		t.Fatalf("expired at the limit: %v", got)
	}
	if got := rt.ScanExpired(t0.Add(11 * time.Second)); !reflect.DeepEqual(got, []string{b}) {
		t.Fatalf("custom timeout: %v", got)
	}
	// A heartbeat keeps a alive past its first deadline.
	if !rt.Heartbeat("c1", a, 0, t0.Add(100*time.Second)) {
		t.Fatal("heartbeat of a live broker unknown")
	}
	if got := rt.ScanExpired(t0.Add(150 * time.Second)); len(got) != 0 {
		t.Fatalf("heartbeat ignored: %v", got)
	}
	if got := rt.ScanExpired(t0.Add(221 * time.Second)); !reflect.DeepEqual(got, []string{a}) {
		t.Fatalf("default timeout: %v", got)
	}
	// The last address gone: group, cluster and topics go too.
	if _, ok := rt.TopicRoute("T"); ok {
		t.Fatal("route survived its brokers")
	}
	ci := rt.ClusterInfo()
	if len(ci.BrokerAddrTable) != 0 || len(ci.ClusterAddrTable) != 0 {
		t.Fatalf("cluster info after expiry: %+v", ci)
	}
	if rt.Heartbeat("c1", a, 0, t0) {
		t.Fatal("heartbeat of an expired broker accepted")
	}
}

func TestConnClosedKeepsReconnectedBroker(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	a, b := "10.0.0.1:10911", "10.0.0.2:10911"
	ra := reg(a, 0, 1, topics("T"))
	ra.Conn = connID(1)
	mustRegister(t, rt, ra, t0)
	rb := reg(b, 1, 1, topics("T"))
	rb.Conn = connID(2)
	mustRegister(t, rt, rb, t0)
	// b reconnected and registered over a new connection before the old one's
	// close was noticed.
	rb.Conn = connID(3)
	mustRegister(t, rt, rb, t0)
	if got := rt.ConnClosed(connID(2)); len(got) != 0 {
		t.Fatalf("old connection removed %v", got)
	}
	if got := rt.ConnClosed(connID(1)); !reflect.DeepEqual(got, []string{a}) {
		t.Fatalf("closed %v", got)
	}
	// The master is gone but the follower keeps the topic readable.
	if got := addrsOf(t, rt, "T"); !reflect.DeepEqual(got, map[int64]string{1: b}) {
		t.Fatalf("addrs %v", got)
	}
	if rt.ConnClosed(nil) != nil {
		t.Fatal("nil conn removed something")
	}
}

func TestUnregister(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	a := "10.0.0.1:10911"
	mustRegister(t, rt, reg(a, 0, 1, topics("T")), t0)
	if rt.Unregister("other", a) {
		t.Fatal("unregister with the wrong cluster succeeded")
	}
	if !rt.Unregister("c1", a) {
		t.Fatal("unregister failed")
	}
	if _, ok := rt.TopicRoute("T"); ok {
		t.Fatal("route survived unregister")
	}
}

func TestDeleteTopic(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	mustRegister(t, rt, reg("10.0.0.1:10911", 0, 1, topics("T", "U")), t0)
	rb := reg("10.0.0.9:10911", 0, 1, topics("T"))
	rb.ClusterName, rb.BrokerName = "c2", "broker-b"
	mustRegister(t, rt, rb, t0)

	if got := rt.TopicsByCluster("c2"); !reflect.DeepEqual(got, []string{"T"}) {
		t.Fatalf("topics of c2: %v", got)
	}
	if !rt.DeleteTopic("T", "c2") {
		t.Fatal("delete in cluster c2 removed nothing")
	}
	rd, ok := rt.TopicRoute("T")
	if !ok || len(rd.QueueDatas) != 1 || rd.QueueDatas[0].BrokerName != "broker-a" {
		t.Fatalf("after cluster delete: %+v", rd)
	}
	if !rt.DeleteTopic("T", "") {
		t.Fatal("delete everywhere removed nothing")
	}
	if _, ok := rt.TopicRoute("T"); ok {
		t.Fatal("T survived")
	}
	if rt.DeleteTopic("T", "") {
		t.Fatal("deleting a missing topic reported success")
	}
	if got := rt.AllTopics(); !reflect.DeepEqual(got, []string{"U"}) {
		t.Fatalf("all topics: %v", got)
	}
}

func TestWritePerm(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	r := reg("10.0.0.1:10911", 0, 1, topics("T", "U"))
	mustRegister(t, rt, r, t0)
	if n := rt.WipeWritePerm("broker-a"); n != 2 {
		t.Fatalf("wiped %d", n)
	}
	rd, _ := rt.TopicRoute("T")
	if rd.QueueDatas[0].Perm != wire.PermRead {
		t.Fatalf("perm after wipe %d", rd.QueueDatas[0].Perm)
	}
	if n := rt.WipeWritePerm("broker-a"); n != 0 {
		t.Fatalf("second wipe changed %d", n)
	}
	// A periodic re-registration (same version) keeps the wipe.
	mustRegister(t, rt, r, t0)
	rd, _ = rt.TopicRoute("T")
	if rd.QueueDatas[0].Perm != wire.PermRead {
		t.Fatal("wipe undone by an unchanged registration")
	}
	if n := rt.AddWritePerm("broker-a"); n != 2 {
		t.Fatalf("added %d", n)
	}
	rd, _ = rt.TopicRoute("U")
	if rd.QueueDatas[0].Perm != 6 {
		t.Fatalf("perm after add %d", rd.QueueDatas[0].Perm)
	}
	if n := rt.WipeWritePerm("nobody"); n != 0 {
		t.Fatalf("unknown broker wiped %d", n)
	}
}

func TestClusterInfo(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	mustRegister(t, rt, reg("10.0.0.1:10911", 0, 1, topics("T")), t0)
	rb := reg("10.0.0.9:10911", 0, 1, topics("U"))
	rb.BrokerName = "broker-b"
	rb.ZoneName = "z1"
	mustRegister(t, rt, rb, t0)
	ci := rt.ClusterInfo()
	if got := ci.ClusterAddrTable["c1"]; !reflect.DeepEqual(got, []string{"broker-a", "broker-b"}) {
		t.Fatalf("cluster table %v", got)
	}
	if bd := ci.BrokerAddrTable["broker-b"]; bd.ZoneName != "z1" || bd.BrokerAddrs[0] != "10.0.0.9:10911" || bd.Cluster != "c1" {
		t.Fatalf("broker-b %+v", bd)
	}
	// The result is a copy.
	ci.BrokerAddrTable["broker-a"].BrokerAddrs[0] = "mutated"
	if addrsOf(t, rt, "T")[0] == "mutated" {
		t.Fatal("cluster info aliases the table")
	}
}

func TestQueryDataVersion(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	r := reg("10.0.0.1:10911", 0, 1, topics("T"))
	mustRegister(t, rt, r, t0)
	changed, stored := rt.QueryDataVersion("c1", r.BrokerAddr, r.DataVersion, t0.Add(50*time.Second))
	if changed || stored == nil || *stored != r.DataVersion {
		t.Fatalf("unchanged query: %v %v", changed, stored)
	}
	// The unchanged query counted as a heartbeat.
	if got := rt.ScanExpired(t0.Add(100 * time.Second)); len(got) != 0 {
		t.Fatalf("expired %v", got)
	}
	other := r.DataVersion
	other.Counter++
	if changed, _ := rt.QueryDataVersion("c1", r.BrokerAddr, other, t0); !changed {
		t.Fatal("changed version not reported")
	}
	if changed, stored := rt.QueryDataVersion("c1", "1.1.1.1:1", other, t0); !changed || stored != nil {
		t.Fatal("unknown broker not reported as changed")
	}
}

// TestRouteJSONCacheTracksMutations checks after every kind of mutation that the
// cached route bytes equal a fresh encoding of the table's route.
func TestRouteJSONCacheTracksMutations(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	a, b := "10.0.0.1:10911", "10.0.0.2:10911"
	check := func(step string) {
		t.Helper()
		for _, topic := range []string{"T", "U"} {
			got, ok, err := rt.TopicRouteJSON(topic)
			if err != nil {
				t.Fatal(err)
			}
			rd, want := rt.TopicRoute(topic)
			if ok != want {
				t.Fatalf("%s: %s cached found=%v, table found=%v", step, topic, ok, want)
			}
			if !ok {
				continue
			}
			fresh, _ := wire.Marshal(rd)
			if string(got) != string(fresh) {
				t.Fatalf("%s: %s cached\n%s\nfresh\n%s", step, topic, got, fresh)
			}
		}
	}
	check("empty")
	mustRegister(t, rt, reg(a, 0, 1, topics("T", "U")), t0)
	check("register master")
	mustRegister(t, rt, reg(b, 1, 1, topics("T", "U")), t0)
	check("register follower")
	mustRegister(t, rt, reg(b, 0, 2, topics("T", "U")), t0)
	check("new leader")
	mustRegister(t, rt, reg(a, 1, 2, topics("T", "U")), t0)
	check("old leader steps down")
	r := reg(b, 0, 2, topics("T"))
	r.DataVersion.Counter++
	mustRegister(t, rt, r, t0)
	check("topic table changed")
	r.ZoneName = "z"
	r.EnableActingMaster = true
	mustRegister(t, rt, r, t0)
	check("zone and acting master")
	rt.WipeWritePerm("broker-a")
	check("wipe")
	rt.AddWritePerm("broker-a")
	check("add perm")
	rt.ConnClosed(r.Conn)
	check("conn closed")
	rt.DeleteTopic("T", "")
	check("delete topic")
	mustRegister(t, rt, reg(b, 0, 3, topics("T")), t0)
	check("re-register")
	rt.ScanExpired(t0.Add(time.Hour))
	check("expiry")
}

func TestAddressMovesToAnotherGroup(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	a := "10.0.0.1:10911"
	mustRegister(t, rt, reg(a, 0, 1, topics("T")), t0)
	r := reg(a, 0, 1, topics("U"))
	r.BrokerName = "broker-b"
	mustRegister(t, rt, r, t0)
	ci := rt.ClusterInfo()
	if _, ok := ci.BrokerAddrTable["broker-a"]; ok {
		t.Fatalf("old group kept the moved address: %+v", ci)
	}
	if _, ok := rt.TopicRoute("T"); ok {
		t.Fatal("old group's topic survived")
	}
	if got := addrsOf(t, rt, "U"); !reflect.DeepEqual(got, map[int64]string{0: a}) {
		t.Fatalf("addrs %v", got)
	}
}

func TestGroupStaysInItsCluster(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	mustRegister(t, rt, reg("10.0.0.1:10911", 0, 1, topics("T")), t0)
	r := reg("10.0.0.2:10911", 1, 1, topics("T"))
	r.ClusterName = "other"
	if _, err := rt.Register(r, t0); err == nil {
		t.Fatal("a member of broker-a registered in another cluster")
	}
	if got := addrsOf(t, rt, "T"); !reflect.DeepEqual(got, map[int64]string{0: "10.0.0.1:10911"}) {
		t.Fatalf("addrs %v", got)
	}
}
