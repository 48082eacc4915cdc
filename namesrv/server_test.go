package namesrv

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/raftmq/raftmq/remoting"
	"github.com/raftmq/raftmq/wire"
)

// fakeClock is a settable clock for expiry tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type harness struct {
	t     *testing.T
	srv   *Server
	addr  string
	cli   *remoting.Client
	clock *fakeClock
}

func startServer(t *testing.T, scan time.Duration) *harness {
	t.Helper()
	clock := &fakeClock{now: t0}
	srv := New(Config{ListenAddr: "127.0.0.1:0", ScanInterval: scan, Clock: clock.Now})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cli := remoting.NewClient(remoting.ClientConfig{})
	t.Cleanup(func() {
		cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &harness{t: t, srv: srv, addr: srv.Addr(), cli: cli, clock: clock}
}

func (h *harness) call(code int32, ext map[string]string, body []byte) *remoting.Command {
	return h.callVia(h.cli, code, ext, body)
}

func (h *harness) callVia(cli *remoting.Client, code int32, ext map[string]string, body []byte) *remoting.Command {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Invoke(ctx, h.addr, remoting.NewRequest(code, ext, body))
	if err != nil {
		h.t.Fatalf("invoke %d: %v", code, err)
	}
	return resp
}

func registerBody(t *testing.T, term, counter int64, topics map[string]wire.TopicConfig) []byte {
	t.Helper()
	b, err := json.Marshal(wire.RegisterBrokerBody{
		FilterServerList: []string{},
		TopicConfigSerializeWrapper: wire.TopicConfigWrapper{
			DataVersion:      wire.DataVersion{Counter: counter, StateVersion: term, Timestamp: 1},
			TopicConfigTable: topics,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func registerExt(addr string, id int64) map[string]string {
	return map[string]string{
		"brokerName": "broker-a", "brokerAddr": addr, "clusterName": "DefaultCluster",
		"haServerAddr": addr, "brokerId": strconv.FormatInt(id, 10), "compressed": "false", "bodyCrc32": "0",
	}
}

func (h *harness) register(addr string, id, term int64, topics map[string]wire.TopicConfig) *remoting.Command {
	h.t.Helper()
	return h.call(remoting.RegisterBroker, registerExt(addr, id), registerBody(h.t, term, 1, topics))
}

func (h *harness) route(topic string) (*remoting.Command, *wire.TopicRouteData) {
	h.t.Helper()
	resp := h.call(remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil)
	if resp.Code != remoting.Success {
		return resp, nil
	}
	var rd wire.TopicRouteData
	if err := json.Unmarshal(resp.Body, &rd); err != nil {
		h.t.Fatalf("route body %q: %v", resp.Body, err)
	}
	return resp, &rd
}

func TestServerRegisterAndRoute(t *testing.T) {
	h := startServer(t, time.Hour)
	if resp := h.register("127.0.0.1:10911", 0, 1, topics("TopicTest")); resp.Code != remoting.Success {
		t.Fatalf("register: %v", resp)
	}
	resp := h.register("127.0.0.2:10911", 1, 1, topics("TopicTest"))
	if resp.Code != remoting.Success || resp.Ext("masterAddr") != "127.0.0.1:10911" || resp.Ext("haServerAddr") != "127.0.0.1:10911" {
		t.Fatalf("follower register: %v %v", resp, resp.ExtFields)
	}
	resp, rd := h.route("TopicTest")
	if rd == nil {
		t.Fatalf("route: %v", resp)
	}
	want := `{"brokerDatas":[{"brokerAddrs":{"0":"127.0.0.1:10911","1":"127.0.0.2:10911"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}`
	if string(resp.Body) != want {
		t.Fatalf("route body\n got %s\nwant %s", resp.Body, want)
	}
	resp, _ = h.route("Missing")
	if resp.Code != remoting.TopicNotExist {
		t.Fatalf("missing topic: %v", resp)
	}
	resp = h.call(remoting.GetRouteInfoByTopic, nil, nil)
	if resp.Code != remoting.InvalidParameter {
		t.Fatalf("no topic header: %v", resp)
	}
}

func TestServerRegisterRejectsBadInput(t *testing.T) {
	h := startServer(t, time.Hour)
	body := registerBody(t, 1, 1, topics("T"))
	cases := map[string]struct {
		mutate func(ext map[string]string) []byte
		code   int32
	}{
		"missing brokerName": {func(e map[string]string) []byte { delete(e, "brokerName"); return body }, remoting.InvalidParameter},
		"bad brokerId":       {func(e map[string]string) []byte { e["brokerId"] = "x"; return body }, remoting.InvalidParameter},
		"bad addr":           {func(e map[string]string) []byte { e["brokerAddr"] = "a, b:1"; return body }, remoting.InvalidParameter},
		"compressed":         {func(e map[string]string) []byte { e["compressed"] = "true"; return body }, remoting.SystemError},
		"crc mismatch":       {func(e map[string]string) []byte { e["bodyCrc32"] = "12345"; return body }, remoting.SystemError},
		"bad json":           {func(e map[string]string) []byte { return []byte(`{"topicConfigSerializeWrapper":[`) }, remoting.InvalidParameter},
		"bad topic":          {func(e map[string]string) []byte { return registerBody(t, 1, 1, topics("a b")) }, remoting.InvalidParameter},
	}
	for name, c := range cases {
		ext := registerExt("127.0.0.1:10911", 0)
		b := c.mutate(ext)
		if resp := h.call(remoting.RegisterBroker, ext, b); resp.Code != c.code || resp.Remark == "" {
			t.Errorf("%s: got %v", name, resp)
		}
	}
	if got := h.srv.Table().AllTopics(); len(got) != 0 {
		t.Fatalf("bad registrations changed the table: %v", got)
	}
	// The right CRC is accepted.
	ext := registerExt("127.0.0.1:10911", 0)
	ext["bodyCrc32"] = strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)&0x7FFFFFFF), 10)
	if resp := h.call(remoting.RegisterBroker, ext, body); resp.Code != remoting.Success {
		t.Fatalf("good crc: %v", resp)
	}
}

func TestServerFencing(t *testing.T) {
	h := startServer(t, time.Hour)
	a, b := "127.0.0.1:10911", "127.0.0.2:10911"
	h.register(a, 0, 3, topics("T"))
	h.register(b, 1, 3, topics("T"))
	if resp := h.register(b, 0, 4, topics("T")); resp.Code != remoting.Success {
		t.Fatalf("new leader: %v", resp)
	}
	resp := h.register(a, 0, 3, topics("T"))
	if resp.Code != remoting.SystemError {
		t.Fatalf("stale leader accepted: %v", resp)
	}
	t.Logf("refusal remark: %s", resp.Remark)
	_, rd := h.route("T")
	if !reflect.DeepEqual(rd.BrokerDatas[0].BrokerAddrs, map[int64]string{0: b}) {
		t.Fatalf("addrs %v", rd.BrokerDatas[0].BrokerAddrs)
	}
	if resp := h.register(a, 2, 4, topics("T")); resp.Code != remoting.Success || resp.Ext("masterAddr") != b {
		t.Fatalf("step-down: %v %v", resp, resp.ExtFields)
	}
	_, rd = h.route("T")
	if !reflect.DeepEqual(rd.BrokerDatas[0].BrokerAddrs, map[int64]string{0: b, 2: a}) {
		t.Fatalf("addrs %v", rd.BrokerDatas[0].BrokerAddrs)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServerExpiryScan(t *testing.T) {
	h := startServer(t, 5*time.Millisecond)
	h.register("127.0.0.1:10911", 0, 1, topics("T"))
	if resp, _ := h.route("T"); resp.Code != remoting.Success {
		t.Fatal("no route after register")
	}
	h.clock.Add(DefaultBrokerTimeout - time.Second)
	// A 904 heartbeat keeps it alive.
	if resp := h.call(remoting.BrokerHeartbeat, map[string]string{"clusterName": "DefaultCluster", "brokerAddr": "127.0.0.1:10911", "brokerName": "broker-a"}, nil); resp.Code != remoting.Success {
		t.Fatalf("heartbeat: %v", resp)
	}
	h.clock.Add(DefaultBrokerTimeout - time.Second)
	if got := h.srv.ScanNow(); len(got) != 0 {
		t.Fatalf("expired despite heartbeat: %v", got)
	}
	h.clock.Add(2 * time.Second)
	waitFor(t, "the scan to expire the broker", func() bool {
		resp, _ := h.route("T")
		return resp.Code == remoting.TopicNotExist
	})
	if resp := h.call(remoting.BrokerHeartbeat, map[string]string{"clusterName": "DefaultCluster", "brokerAddr": "127.0.0.1:10911"}, nil); resp.Code != remoting.SystemError {
		t.Fatalf("heartbeat of an expired broker: %v", resp)
	}
}

func TestServerConnCloseRemovesBroker(t *testing.T) {
	h := startServer(t, time.Hour)
	brokerCli := remoting.NewClient(remoting.ClientConfig{})
	defer brokerCli.Close()
	if resp := h.callVia(brokerCli, remoting.RegisterBroker, registerExt("127.0.0.1:10911", 0), registerBody(t, 1, 1, topics("T"))); resp.Code != remoting.Success {
		t.Fatalf("register: %v", resp)
	}
	if resp, _ := h.route("T"); resp.Code != remoting.Success {
		t.Fatal("no route")
	}
	brokerCli.CloseConn(h.addr)
	waitFor(t, "the closed connection to drop the broker", func() bool {
		resp, _ := h.route("T")
		return resp.Code == remoting.TopicNotExist
	})
}

func TestServerAdminCalls(t *testing.T) {
	h := startServer(t, time.Hour)
	h.register("127.0.0.1:10911", 0, 1, topics("T", "U", "TBW102"))

	resp := h.call(remoting.GetBrokerClusterInfo, nil, nil)
	var ci wire.ClusterInfo
	if err := json.Unmarshal(resp.Body, &ci); err != nil || !reflect.DeepEqual(ci.ClusterAddrTable["DefaultCluster"], []string{"broker-a"}) {
		t.Fatalf("cluster info %s: %v", resp.Body, err)
	}
	resp = h.call(remoting.GetAllTopicListFromNameserver, nil, nil)
	if string(resp.Body) != `{"topicList":["T","TBW102","U"]}` {
		t.Fatalf("topic list %s", resp.Body)
	}
	resp = h.call(remoting.GetTopicsByCluster, map[string]string{"cluster": "DefaultCluster"}, nil)
	if string(resp.Body) != `{"topicList":["T","TBW102","U"]}` {
		t.Fatalf("topics by cluster %s", resp.Body)
	}
	if resp = h.call(remoting.DeleteTopicInNamesrv, map[string]string{"topic": "U"}, nil); resp.Code != remoting.Success {
		t.Fatalf("delete: %v", resp)
	}
	if resp, _ := h.route("U"); resp.Code != remoting.TopicNotExist {
		t.Fatalf("deleted topic still routed: %v", resp)
	}

	resp = h.call(remoting.WipeWritePermOfBroker, map[string]string{"brokerName": "broker-a"}, nil)
	if resp.Code != remoting.Success || resp.Ext("wipeTopicCount") != "2" {
		t.Fatalf("wipe: %v %v", resp, resp.ExtFields)
	}
	if _, rd := h.route("T"); rd.QueueDatas[0].Perm != wire.PermRead {
		t.Fatalf("perm after wipe: %+v", rd.QueueDatas)
	}
	resp = h.call(remoting.AddWritePermOfBroker, map[string]string{"brokerName": "broker-a"}, nil)
	if resp.Code != remoting.Success || resp.Ext("addTopicCount") != "2" {
		t.Fatalf("add: %v %v", resp, resp.ExtFields)
	}

	// Unregister removes the broker and its routes.
	if resp = h.call(remoting.UnregisterBroker, map[string]string{"clusterName": "DefaultCluster", "brokerAddr": "127.0.0.1:10911", "brokerName": "broker-a", "brokerId": "0"}, nil); resp.Code != remoting.Success {
		t.Fatalf("unregister: %v", resp)
	}
	if resp, _ := h.route("T"); resp.Code != remoting.TopicNotExist {
		t.Fatalf("route after unregister: %v", resp)
	}

	if resp = h.call(12345, nil, nil); resp.Code != remoting.RequestCodeNotSupported {
		t.Fatalf("unknown code: %v", resp)
	}
}

func TestServerKVConfig(t *testing.T) {
	h := startServer(t, time.Hour)
	kv := func(code int32, ext map[string]string) *remoting.Command { return h.call(code, ext, nil) }
	if r := kv(remoting.GetKVConfig, map[string]string{"namespace": "ns", "key": "k"}); r.Code != remoting.QueryNotFound {
		t.Fatalf("missing key: %v", r)
	}
	if r := kv(remoting.GetKVListByNamespace, map[string]string{"namespace": "ns"}); r.Code != remoting.QueryNotFound {
		t.Fatalf("empty namespace: %v", r)
	}
	if r := kv(remoting.PutKVConfig, map[string]string{"namespace": "ns", "key": "k", "value": "v"}); r.Code != remoting.Success {
		t.Fatalf("put: %v", r)
	}
	if r := kv(remoting.PutKVConfig, map[string]string{"namespace": "ns", "key": "k"}); r.Code != remoting.InvalidParameter {
		t.Fatalf("put without value: %v", r)
	}
	if r := kv(remoting.GetKVConfig, map[string]string{"namespace": "ns", "key": "k"}); r.Code != remoting.Success || r.Ext("value") != "v" {
		t.Fatalf("get: %v %v", r, r.ExtFields)
	}
	if r := kv(remoting.GetKVListByNamespace, map[string]string{"namespace": "ns"}); string(r.Body) != `{"table":{"k":"v"}}` {
		t.Fatalf("list: %v %s", r, r.Body)
	}
	if r := kv(remoting.DeleteKVConfig, map[string]string{"namespace": "ns", "key": "k"}); r.Code != remoting.Success {
		t.Fatalf("delete: %v", r)
	}
	if r := kv(remoting.GetKVConfig, map[string]string{"namespace": "ns", "key": "k"}); r.Code != remoting.QueryNotFound {
		t.Fatalf("get after delete: %v", r)
	}

	// ORDER_TOPIC_CONFIG entries show up in routes as orderTopicConf.
	h.register("127.0.0.1:10911", 0, 1, topics("T"))
	kv(remoting.PutKVConfig, map[string]string{"namespace": NamespaceOrderTopicConfig, "key": "T", "value": "broker-a:4"})
	if _, rd := h.route("T"); rd.OrderTopicConf != "broker-a:4" {
		t.Fatalf("order conf %+v", rd)
	}
	if resp := h.register("127.0.0.1:10911", 0, 1, topics("T")); string(resp.Body) != `{"table":{"T":"broker-a:4"}}` {
		t.Fatalf("register answer body %s", resp.Body)
	}
}

func TestServerQueryDataVersion(t *testing.T) {
	h := startServer(t, time.Hour)
	h.register("127.0.0.1:10911", 0, 1, topics("T"))
	ext := map[string]string{"clusterName": "DefaultCluster", "brokerAddr": "127.0.0.1:10911", "brokerName": "broker-a", "brokerId": "0"}
	same, _ := json.Marshal(wire.DataVersion{Counter: 1, StateVersion: 1, Timestamp: 1})
	resp := h.call(remoting.QueryDataVersion, ext, same)
	if resp.Code != remoting.Success || resp.Ext("changed") != "false" || string(resp.Body) != string(same) {
		t.Fatalf("unchanged: %v %v %s", resp, resp.ExtFields, resp.Body)
	}
	other, _ := json.Marshal(wire.DataVersion{Counter: 2, StateVersion: 1, Timestamp: 1})
	if resp = h.call(remoting.QueryDataVersion, ext, other); resp.Ext("changed") != "true" {
		t.Fatalf("changed: %v", resp.ExtFields)
	}
	if resp = h.call(remoting.QueryDataVersion, ext, []byte("{")); resp.Code != remoting.InvalidParameter {
		t.Fatalf("bad body: %v", resp)
	}
}

// TestServerConcurrentRegistrations races leaders of many groups against route
// lookups; the race detector and the final state check the locking.
func TestServerConcurrentRegistrations(t *testing.T) {
	h := startServer(t, time.Hour)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for term := int64(1); term <= 20; term++ {
				ext := registerExt(fmt.Sprintf("127.0.0.%d:%d", g+1, 10000+term), 0)
				ext["brokerName"] = fmt.Sprintf("broker-%d", g)
				resp := h.call(remoting.RegisterBroker, ext, registerBody(t, term, term, topics("T")))
				if resp.Code != remoting.Success {
					t.Errorf("group %d term %d: %v", g, term, resp)
				}
				h.route("T")
			}
		}(g)
	}
	wg.Wait()
	_, rd := h.route("T")
	if len(rd.BrokerDatas) != 4 {
		t.Fatalf("groups %+v", rd.BrokerDatas)
	}
	for g, bd := range rd.BrokerDatas {
		if want := fmt.Sprintf("127.0.0.%d:10020", g+1); bd.BrokerAddrs[0] != want || len(bd.BrokerAddrs) != 1 {
			t.Fatalf("group %d: %v, want only the term-20 leader %s", g, bd.BrokerAddrs, want)
		}
	}
}

func TestServerServeAndShutdown(t *testing.T) {
	srv := New(Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	waitFor(t, "Addr", func() bool { return srv.Addr() != "" })
	cli := remoting.NewClient(remoting.ClientConfig{})
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Invoke(ctx, srv.Addr(), remoting.NewRequest(remoting.GetAllTopicListFromNameserver, nil, nil))
	if err != nil || string(resp.Body) != `{"topicList":[]}` {
		t.Fatalf("topic list: %v %v", resp, err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve returned %v", err)
	}
	if err := srv.Serve(ln); err == nil {
		t.Fatal("second Serve succeeded")
	}
}

func TestServerNamesrvConfig(t *testing.T) {
	h := startServer(t, time.Hour)
	_, port, _ := net.SplitHostPort(h.addr)
	resp := h.call(codeGetNamesrvConfig, nil, nil)
	want := "listenPort=" + port + "\nscanNotActiveBrokerInterval=3600000\nbrokerTimeoutMillis=120000\n"
	if resp.Code != remoting.Success || string(resp.Body) != want {
		t.Fatalf("config %v %q", resp, resp.Body)
	}
	if resp = h.call(codeUpdateNamesrvConfig, nil, []byte("configStorePath=/etc/x")); resp.Code != remoting.NoPermission {
		t.Fatalf("update config: %v", resp)
	}
}
