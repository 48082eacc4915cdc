package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	// The consumer packages are not used here; importing them keeps their
	// dependencies in go.sum for the broker interop tests of this module.
	_ "github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/raftmq/raftmq/interop/internal/harness"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/remoting"
	"github.com/raftmq/raftmq/wire"
)

func init() { rlog.SetLogLevel("error") }

const (
	testCluster = "DefaultCluster"
	testBroker  = "broker-a"
)

// registerBroker sends a hand-built REGISTER_BROKER, as a raftmq broker would:
// brokerId, Raft term in dataVersion.stateVersion, a topic table.
func registerBroker(t *testing.T, cli *remoting.Client, nsAddr, brokerAddr string, brokerID, term int64, topics map[string]wire.TopicConfig) *remoting.Command {
	t.Helper()
	body, err := json.Marshal(wire.RegisterBrokerBody{
		FilterServerList: []string{},
		TopicConfigSerializeWrapper: wire.TopicConfigWrapper{
			DataVersion:      wire.DataVersion{Counter: term, StateVersion: term, Timestamp: time.Now().UnixMilli()},
			TopicConfigTable: topics,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	req := remoting.NewRequest(remoting.RegisterBroker, map[string]string{
		"brokerName":   testBroker,
		"brokerAddr":   brokerAddr,
		"clusterName":  testCluster,
		"haServerAddr": brokerAddr,
		"brokerId":     strconv.FormatInt(brokerID, 10),
		"compressed":   "false",
		"bodyCrc32":    "0",
	}, body)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Invoke(ctx, nsAddr, req)
	if err != nil {
		t.Fatalf("REGISTER_BROKER to %s: %v", nsAddr, err)
	}
	return resp
}

func topicTable(queues int32, names ...string) map[string]wire.TopicConfig {
	m := map[string]wire.TopicConfig{}
	for _, n := range names {
		m[n] = wire.TopicConfig{TopicName: n, ReadQueueNums: queues, WriteQueueNums: queues, Perm: 6, TopicFilterType: "SINGLE_TAG"}
	}
	return m
}

func newAdmin(t *testing.T, nsAddr string) admin.Admin {
	t.Helper()
	a, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{nsAddr})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// TestNamesrvBinaryServesOfficialClient runs `raftmq namesrv` (the binary `make
// run` uses), registers a broker by hand and checks what the official Go
// client's admin API reads back.
func TestNamesrvBinaryServesOfficialClient(t *testing.T) {
	ns := harness.StartNamesrv(t)
	cli := remoting.NewClient(remoting.ClientConfig{})
	defer cli.Close()

	const topic = "InteropRouteTopic"
	brokerAddr := "127.0.0.1:10911" // never dialled: the admin calls only the namesrv
	if resp := registerBroker(t, cli, ns.Addr, brokerAddr, 0, 1, topicTable(4, topic, "TBW102")); resp.Code != remoting.Success {
		t.Fatalf("register: code %d %s", resp.Code, resp.Remark)
	}

	a := newAdmin(t, ns.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mqs, err := a.FetchPublishMessageQueues(ctx, topic)
	if err != nil {
		t.Fatalf("FetchPublishMessageQueues: %v", err)
	}
	var got []string
	for _, mq := range mqs {
		got = append(got, fmt.Sprintf("%s/%s/%d", mq.Topic, mq.BrokerName, mq.QueueId))
	}
	sort.Strings(got)
	want := []string{}
	for i := 0; i < 4; i++ {
		want = append(want, fmt.Sprintf("%s/%s/%d", topic, testBroker, i))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("publish queues %v, want %v", got, want)
	}

	clusters, err := a.FetchClusterList(topic)
	if err != nil || fmt.Sprint(clusters) != "["+testCluster+"]" {
		t.Fatalf("FetchClusterList: %v %v", clusters, err)
	}
	list, err := a.FetchAllTopicList(ctx)
	if err != nil {
		t.Fatalf("FetchAllTopicList: %v", err)
	}
	sort.Strings(list.TopicList)
	if fmt.Sprint(list.TopicList) != fmt.Sprint([]string{topic, "TBW102"}) {
		t.Fatalf("topic list %v", list.TopicList)
	}
	if _, err := a.FetchPublishMessageQueues(ctx, "NoSuchTopic"); err == nil {
		t.Fatal("route of an unknown topic resolved")
	}
}

// fakeBroker is a remoting server that accepts SEND_MESSAGE and heartbeats and
// records the topics it was sent, standing in for a broker's leader.
type fakeBroker struct {
	addr    string
	mu      sync.Mutex
	sent    []string
	deleted []string
}

func startFakeBroker(t *testing.T) *fakeBroker {
	t.Helper()
	return startFakeBrokerWith(t, remoting.ServerConfig{})
}

// startFakeBrokerWith is startFakeBroker with a server configuration (e.g. an
// Authenticate hook).
func startFakeBrokerWith(t *testing.T, cfg remoting.ServerConfig) *fakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fb := &fakeBroker{addr: ln.Addr().String()}
	srv := remoting.NewServer(cfg)
	ok := func(context.Context, *remoting.Conn, *remoting.Command) *remoting.Command {
		return remoting.NewResponse(remoting.Success, "")
	}
	srv.Handle(remoting.HeartBeat, "", ok)
	srv.Handle(remoting.DeleteTopicInBroker, "", func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
		fb.mu.Lock()
		fb.deleted = append(fb.deleted, req.Ext("topic"))
		fb.mu.Unlock()
		return remoting.NewResponse(remoting.Success, "")
	})
	srv.Handle(remoting.SendMessage, "", func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
		fb.mu.Lock()
		fb.sent = append(fb.sent, req.Ext("topic"))
		n := len(fb.sent)
		fb.mu.Unlock()
		resp := remoting.NewResponse(remoting.Success, "")
		resp.SetExt("msgId", fmt.Sprintf("7F00000100002A9F%016X", n))
		resp.SetExt("queueId", req.Ext("queueId"))
		resp.SetExt("queueOffset", strconv.Itoa(n-1))
		resp.SetExt("MSG_REGION", "DefaultRegion")
		resp.SetExt("TRACE_ON", "false")
		return resp
	})
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return fb
}

func (fb *fakeBroker) sends() int {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return len(fb.sent)
}

// sendOnce sends one message with a fresh official producer (fresh, so it reads
// the route now rather than from a 30 s cache) and returns the error.
func sendOnce(t *testing.T, nsAddr, topic string, opts ...producer.Option) (*primitive.SendResult, error) {
	t.Helper()
	p, err := producer.NewDefaultProducer(append([]producer.Option{
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{nsAddr})),
		producer.WithGroupName("interop-fencing"),
		producer.WithRetry(0),
		producer.WithSendMsgTimeout(5 * time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return p.SendSync(ctx, primitive.NewMessage(topic, []byte("hello")))
}

// startInProcessNamesrv starts a namesrv in this process on a free loopback
// port and stops it at the end of the test.
func startInProcessNamesrv(t *testing.T) *namesrv.Server {
	t.Helper()
	srv := namesrv.New(namesrv.Config{ListenAddr: "127.0.0.1:0"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

// TestNamesrvFencingVisibleToOfficialClient checks, through an official
// producer, that a new leader with a higher term takes brokerAddrs[0] at once and
// that a stale leader's lower-term registration does not take it back.
func TestNamesrvFencingVisibleToOfficialClient(t *testing.T) {
	srv := startInProcessNamesrv(t)
	nsAddr := srv.Addr()
	old, neu := startFakeBroker(t), startFakeBroker(t)
	cli := remoting.NewClient(remoting.ClientConfig{})
	defer cli.Close()
	const topic = "InteropFencingTopic"
	tbl := topicTable(4, topic)

	// Term 5: old is the leader, neu a follower.
	if r := registerBroker(t, cli, nsAddr, old.addr, 0, 5, tbl); r.Code != remoting.Success {
		t.Fatalf("old leader: %d %s", r.Code, r.Remark)
	}
	if r := registerBroker(t, cli, nsAddr, neu.addr, 1, 5, tbl); r.Code != remoting.Success {
		t.Fatalf("follower: %d %s", r.Code, r.Remark)
	}
	if _, err := sendOnce(t, nsAddr, topic); err != nil {
		t.Fatalf("send in term 5: %v", err)
	}
	if old.sends() != 1 || neu.sends() != 0 {
		t.Fatalf("term 5 send went to old=%d neu=%d", old.sends(), neu.sends())
	}

	// Term 6: neu wins the election and registers as brokerId 0.
	if r := registerBroker(t, cli, nsAddr, neu.addr, 0, 6, tbl); r.Code != remoting.Success {
		t.Fatalf("new leader: %d %s", r.Code, r.Remark)
	}
	// The deposed leader, not yet aware, re-registers as brokerId 0 with term 5.
	r := registerBroker(t, cli, nsAddr, old.addr, 0, 5, tbl)
	if r.Code == remoting.Success {
		t.Fatal("stale term-5 registration as brokerId 0 was accepted")
	}
	t.Logf("stale registration refused: code %d %q", r.Code, r.Remark)

	res, err := sendOnce(t, nsAddr, topic)
	if err != nil {
		t.Fatalf("send in term 6: %v", err)
	}
	if old.sends() != 1 || neu.sends() != 1 {
		t.Fatalf("term 6 send went to old=%d neu=%d (result %v)", old.sends(), neu.sends(), res)
	}

	// The old leader steps down: it appears as a follower, neu stays brokerId 0.
	if r := registerBroker(t, cli, nsAddr, old.addr, 2, 6, tbl); r.Code != remoting.Success || r.Ext("masterAddr") != neu.addr {
		t.Fatalf("step-down: %d %s %v", r.Code, r.Remark, r.ExtFields)
	}
	if _, err := sendOnce(t, nsAddr, topic); err != nil {
		t.Fatalf("send after step-down: %v", err)
	}
	if old.sends() != 1 || neu.sends() != 2 {
		t.Fatalf("after step-down old=%d neu=%d", old.sends(), neu.sends())
	}
	mqs, err := newAdmin(t, nsAddr).FetchPublishMessageQueues(context.Background(), topic)
	if err != nil || len(mqs) != 4 {
		t.Fatalf("publish queues %v %v", mqs, err)
	}
}

// TestNamesrvAutoCreateFallback checks docs/protocol.md G9: for a topic the namesrv does not know
// it answers TOPIC_NOT_EXIST, and the official producer falls back to the
// TBW102 route and sends to that broker's brokerId 0.
func TestNamesrvAutoCreateFallback(t *testing.T) {
	srv := startInProcessNamesrv(t)
	fb := startFakeBroker(t)
	cli := remoting.NewClient(remoting.ClientConfig{})
	defer cli.Close()
	tbl := map[string]wire.TopicConfig{"TBW102": {TopicName: "TBW102", ReadQueueNums: 8, WriteQueueNums: 8, Perm: 7}}
	if r := registerBroker(t, cli, srv.Addr(), fb.addr, 0, 1, tbl); r.Code != remoting.Success {
		t.Fatalf("register: %d %s", r.Code, r.Remark)
	}
	const topic = "InteropAutoCreated"
	res, err := sendOnce(t, srv.Addr(), topic)
	if err != nil {
		t.Fatalf("send to a new topic: %v", err)
	}
	fb.mu.Lock()
	sent := append([]string(nil), fb.sent...)
	fb.mu.Unlock()
	if len(sent) != 1 || sent[0] != topic {
		t.Fatalf("broker received %v", sent)
	}
	if res.MessageQueue.QueueId >= 4 {
		t.Fatalf("queue %d: the client should cap TBW102's queues at 4", res.MessageQueue.QueueId)
	}
}

// TestNamesrvBinaryConfFile starts `raftmq namesrv -c namesrv.conf` with
// RocketMQ's listenPort and bindAddress keys.
func TestNamesrvBinaryConfFile(t *testing.T) {
	addr := harness.FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	conf := "# RocketMQ namesrv.conf\nlistenPort=" + port + "\nbindAddress = " + host + "\nscanNotActiveBrokerInterval=5000\n"
	if err := os.WriteFile(filepath.Join(dir, "namesrv.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := harness.Start(t, "namesrv", harness.Options{
		Addr: addr,
		Dir:  dir,
		Args: func(string) []string { return []string{"-c", "namesrv.conf"} },
	})
	cli := remoting.NewClient(remoting.ClientConfig{})
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Invoke(ctx, ns.Addr, remoting.NewRequest(319, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := "listenPort=" + port + "\nscanNotActiveBrokerInterval=5000\n"; !strings.HasPrefix(string(resp.Body), want) {
		t.Fatalf("GET_NAMESRV_CONFIG: %q, want prefix %q", resp.Body, want)
	}
	if err := ns.Stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
}

// TestNamesrvAdminDeleteTopic runs the official admin's DeleteTopic: it finds the
// broker through our route (brokerAddrs[0]), deletes there, then sends
// DELETE_TOPIC_IN_NAMESRV to our namesrv, after which the route is gone.
func TestNamesrvAdminDeleteTopic(t *testing.T) {
	srv := namesrv.New(namesrv.Config{ListenAddr: "127.0.0.1:0"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	fb := startFakeBroker(t)
	cli := remoting.NewClient(remoting.ClientConfig{})
	defer cli.Close()
	const topic = "InteropDeleteMe"
	if r := registerBroker(t, cli, srv.Addr(), fb.addr, 0, 1, topicTable(2, topic, "Keep")); r.Code != remoting.Success {
		t.Fatalf("register: %d %s", r.Code, r.Remark)
	}
	if err := newAdmin(t, srv.Addr()).DeleteTopic(ctx, admin.WithTopicDelete(topic)); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	fb.mu.Lock()
	deleted := append([]string(nil), fb.deleted...)
	fb.mu.Unlock()
	if len(deleted) != 1 || deleted[0] != topic {
		t.Fatalf("broker got deletes %v", deleted)
	}
	fresh := newAdmin(t, srv.Addr())
	if _, err := fresh.FetchPublishMessageQueues(ctx, topic); err == nil {
		t.Fatal("deleted topic still routed")
	}
	if mqs, err := fresh.FetchPublishMessageQueues(ctx, "Keep"); err != nil || len(mqs) != 2 {
		t.Fatalf("other topic: %v %v", mqs, err)
	}
}

// TestNamesrvIndependentInstances runs two namesrv binaries with no sync between
// them: a broker registers with both, one dies, and the official client, given
// both addresses, still resolves the route from the survivor.
func TestNamesrvIndependentInstances(t *testing.T) {
	ns1, ns2 := harness.StartNamesrv(t), harness.StartNamesrv(t)
	cli := remoting.NewClient(remoting.ClientConfig{})
	defer cli.Close()
	const topic = "InteropTwoNamesrvs"
	for _, ns := range []*harness.Process{ns1, ns2} {
		if r := registerBroker(t, cli, ns.Addr, "127.0.0.1:10911", 0, 1, topicTable(3, topic)); r.Code != remoting.Success {
			t.Fatalf("register with %s: %d %s", ns.Addr, r.Code, r.Remark)
		}
	}
	if err := ns1.Stop(); err != nil {
		t.Fatalf("stop %s: %v", ns1.Addr, err)
	}
	a, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{ns1.Addr, ns2.Addr})))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mqs, err := a.FetchPublishMessageQueues(ctx, topic)
	if err != nil || len(mqs) != 3 {
		t.Fatalf("route with one namesrv down: %v %v", mqs, err)
	}
}
