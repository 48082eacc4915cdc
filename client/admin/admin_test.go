package admin

import (
	"context"
	"encoding/json"
	"net"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/remoting"
)

// fakeBroker answers the broker requests the admin client sends, from fixed tables.
type fakeBroker struct {
	addr      string
	minOff    map[int]int64
	maxOff    map[int]int64
	consumed  map[int]int64 // committed offsets of group "g"
	transfers chan string   // target ids of transfer requests
}

func startNamesrv(t *testing.T) string {
	t.Helper()
	ns := namesrv.New(namesrv.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ns.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ns.Shutdown(ctx)
	})
	return ln.Addr().String()
}

func startFakeBroker(t *testing.T, fb *fakeBroker) {
	t.Helper()
	srv := remoting.NewServer(remoting.ServerConfig{})
	offsetAnswer := func(table map[int]int64) remoting.Handler {
		return func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
			q, _, _ := req.ExtInt32("queueId")
			resp := remoting.NewResponse(remoting.Success, "")
			resp.SetExt("offset", strconv.FormatInt(table[int(q)], 10))
			return resp
		}
	}
	srv.Handle(remoting.GetMinOffset, "", offsetAnswer(fb.minOff))
	srv.Handle(remoting.GetMaxOffset, "", offsetAnswer(fb.maxOff))
	srv.Handle(remoting.QueryConsumerOffset, "", func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
		q, _, _ := req.ExtInt32("queueId")
		off, ok := fb.consumed[int(q)]
		if req.Ext("consumerGroup") != "g" || !ok {
			return remoting.NewResponse(remoting.QueryNotFound, "no offset")
		}
		resp := remoting.NewResponse(remoting.Success, "")
		resp.SetExt("offset", strconv.FormatInt(off, 10))
		return resp
	})
	srv.Handle(remoting.RaftStatus, "", func(context.Context, *remoting.Conn, *remoting.Command) *remoting.Command {
		resp := remoting.NewResponse(remoting.Success, "")
		resp.Body, _ = json.Marshal(RaftStatus{Group: "broker-a", SelfID: "n0", Role: "Leader", Term: 3, LeaderID: "n0", CommitIndex: 42, AppliedIndex: 42, LastIndex: 42})
		return resp
	})
	srv.Handle(remoting.RaftTransferLeader, "", func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
		fb.transfers <- req.Ext("targetId")
		return remoting.NewResponse(remoting.Success, "")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	fb.addr = ln.Addr().String()
}

// register announces the fake broker to the namesrv as brokerId 0 of broker-a with one topic.
func register(t *testing.T, nsAddr, brokerAddr string) {
	t.Helper()
	registerAs(t, nsAddr, brokerAddr, 0, nil)
}

// registerAs announces a fake broker as brokerId id with extra ext fields.
func registerAs(t *testing.T, nsAddr, brokerAddr string, id int, ext map[string]string) {
	t.Helper()
	body := namesrv.RegisterBrokerBody{TopicConfigSerializeWrapper: namesrv.TopicConfigWrapper{
		TopicConfigTable: map[string]namesrv.TopicConfig{
			"orders": {TopicName: "orders", ReadQueueNums: 2, WriteQueueNums: 2, Perm: 6},
		},
		DataVersion: namesrv.DataVersion{Counter: 1, StateVersion: 3, Timestamp: time.Now().UnixMilli()},
	}}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	// The namesrv forgets a broker whose connection closes, so keep it for the test.
	rc := remoting.NewClient(remoting.ClientConfig{})
	t.Cleanup(func() { rc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := remoting.NewRequest(remoting.RegisterBroker, map[string]string{
		"brokerName": "broker-a", "brokerAddr": brokerAddr, "clusterName": "DefaultCluster",
		"haServerAddr": brokerAddr, "brokerId": strconv.Itoa(id), "compressed": "false", "bodyCrc32": "0",
	}, b)
	for k, v := range ext {
		req.SetExt(k, v)
	}
	resp, err := rc.Invoke(ctx, nsAddr, req)
	if err != nil || resp.Code != remoting.Success {
		t.Fatalf("register: %v %+v", err, resp)
	}
}

func TestAdminAgainstNamesrvAndBroker(t *testing.T) {
	nsAddr := startNamesrv(t)
	fb := &fakeBroker{
		minOff:    map[int]int64{0: 0, 1: 5},
		maxOff:    map[int]int64{0: 10, 1: 20},
		consumed:  map[int]int64{0: 7},
		transfers: make(chan string, 1),
	}
	startFakeBroker(t, fb)
	register(t, nsAddr, fb.addr)

	c, err := New(ParseAddrs("127.0.0.1:1;"+nsAddr), 2*time.Second) // the first namesrv is down
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	ci, err := c.ClusterInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	groups := ci.Groups("DefaultCluster")
	if len(groups) != 1 || groups[0].LeaderAddr() != fb.addr {
		t.Fatalf("cluster info groups = %+v", groups)
	}

	topics, err := c.TopicList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(topics, "orders") {
		t.Fatalf("topic list %v lacks orders", topics)
	}

	st, err := c.TopicStatus(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	want := []QueueStatus{{"broker-a", 0, 0, 10}, {"broker-a", 1, 5, 20}}
	if len(st) != 2 || st[0] != want[0] || st[1] != want[1] {
		t.Fatalf("topic status = %+v, want %+v", st, want)
	}

	prog, err := c.ConsumerProgress(ctx, "g", "orders")
	if err != nil {
		t.Fatal(err)
	}
	// Queue 0: committed 7 of 10 -> lag 3. Queue 1: nothing committed -> lag from min 5 to 20.
	if prog[0].ConsumerOffset != 7 || prog[0].Lag != 3 || prog[1].ConsumerOffset != -1 || prog[1].Lag != 15 {
		t.Fatalf("consumer progress = %+v", prog)
	}

	rs, err := c.GroupRaftStatus(ctx, "broker-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Role != "Leader" || rs[0].Term != 3 || rs[0].BrokerAddr != fb.addr {
		t.Fatalf("raft status = %+v", rs)
	}
	if err := c.TransferLeader(ctx, "broker-a", "n2"); err != nil {
		t.Fatal(err)
	}
	if got := <-fb.transfers; got != "n2" {
		t.Fatalf("transfer request named %q, want n2", got)
	}

	if _, err := c.TopicRoute(ctx, "missing"); !IsCode(err, remoting.TopicNotExist) {
		t.Fatalf("route of a missing topic: err = %v, want TOPIC_NOT_EXIST", err)
	}
	if _, err := c.ViewMessage(ctx, "not-an-id"); err == nil {
		t.Fatal("a malformed offsetMsgId was accepted")
	}
}

func TestNewNeedsANamesrv(t *testing.T) {
	if _, err := New(ParseAddrs(" ; "), 0); err == nil {
		t.Fatal("New accepted an empty namesrv list")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestAdminFoldsWriteAliases registers a two-member raftmq group, whose
// routes carry a write alias per member, and checks that the admin views
// show the group once and ask only its leader: a follower that answered
// would double the queues and offsets.
func TestAdminFoldsWriteAliases(t *testing.T) {
	nsAddr := startNamesrv(t)
	leader := &fakeBroker{minOff: map[int]int64{0: 0, 1: 5}, maxOff: map[int]int64{0: 10, 1: 20}, consumed: map[int]int64{0: 7}}
	follower := &fakeBroker{minOff: map[int]int64{0: 100, 1: 100}, maxOff: map[int]int64{0: 900, 1: 900}, consumed: map[int]int64{}}
	startFakeBroker(t, leader)
	startFakeBroker(t, follower)
	registerAs(t, nsAddr, leader.addr, 0, map[string]string{namesrv.ExtMemberID: "n0", namesrv.ExtMemberOrdinal: "0"})
	registerAs(t, nsAddr, follower.addr, 2, map[string]string{namesrv.ExtMemberID: "n1", namesrv.ExtMemberOrdinal: "1"})

	c, err := New([]string{nsAddr}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	r, err := c.TopicRoute(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.BrokerDatas) != 3 || len(r.QueueDatas) != 3 {
		t.Fatalf("route without aliases: %+v", r)
	}
	groups := r.Groups()
	if len(groups) != 1 {
		t.Fatalf("groups %+v", groups)
	}
	g := groups[0]
	wantEntries := []WriteEntryPoint{{"broker-a@n0", "n0", leader.addr}, {"broker-a@n1", "n1", follower.addr}}
	if g.BrokerName != "broker-a" || g.ReadQueueNums != 2 || g.WriteQueueNums != 2 || g.Perm != 6 || g.LeaderAddr() != leader.addr ||
		!reflect.DeepEqual(g.WriteEntries, wantEntries) {
		t.Fatalf("folded group %+v", g)
	}
	if want := []Member{{0, leader.addr}, {1, leader.addr}, {2, follower.addr}}; !reflect.DeepEqual(g.Members, want) {
		t.Fatalf("members %+v", g.Members)
	}

	st, err := c.TopicStatus(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if want := []QueueStatus{{"broker-a", 0, 0, 10}, {"broker-a", 1, 5, 20}}; !reflect.DeepEqual(st, want) {
		t.Fatalf("topic status = %+v, want %+v", st, want)
	}
	prog, err := c.ConsumerProgress(ctx, "g", "orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) != 2 || prog[0].Lag != 3 || prog[1].Lag != 15 {
		t.Fatalf("consumer progress = %+v", prog)
	}
	ci, err := c.ClusterInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ci.BrokerAddrTable) != 1 || len(ci.BrokerAddrTable["broker-a"].Members()) != 2 {
		t.Fatalf("cluster info %+v", ci)
	}
}
