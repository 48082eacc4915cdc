package broker

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/broker/schedule"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/remoting"
	"github.com/raftmq/raftmq/wire"
)

// testEnv is a namesrv and a single-node broker group on loopback, with a
// remoting client to talk to both.
type testEnv struct {
	t      testing.TB
	ns     *namesrv.Server
	b      *Broker
	client *remoting.Client
	notes  chan *remoting.Command // server-initiated requests the client received
	trans  []*raft.InmemTransport // startGroup's Raft links, by member ordinal
	group  []*Broker              // the members, when a test wants sends to follow the leader
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testLogger(t testing.TB) hclog.Logger {
	if testing.Verbose() {
		return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Debug})
	}
	return hclog.NewNullLogger()
}

func startEnv(t *testing.T, mutate func(*Config)) *testEnv { return startEnvTB(t, mutate) }

func startEnvB(b *testing.B) *testEnv { return startEnvTB(b, nil) }

func startEnvTB(t testing.TB, mutate func(*Config)) *testEnv {
	t.Helper()
	ctx := context.Background()
	ns := namesrv.New(namesrv.Config{ListenAddr: "127.0.0.1:0", Logger: testLogger(t).Named("ns")})
	if err := ns.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ns.Shutdown(sctx)
	})
	cfg := DefaultConfig()
	cfg.NamesrvAddrs = []string{ns.Addr()}
	cfg.BrokerIP1 = "127.0.0.1"
	cfg.StorePathRootDir = t.TempDir()
	cfg.MappedFileSize = 8 << 20
	cfg.DLegerPeers = "n0-127.0.0.1:1"
	cfg.OffsetFlushInterval = 50 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport(raft.ServerAddress("127.0.0.1:1"))
	b, err := Start(cfg, Options{Logger: testLogger(t), Listener: ln, RaftTransport: trans,
		RaftHeartbeatTimeout: 100 * time.Millisecond, RaftElectionTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(sctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := b.WaitLeader(wctx); err != nil {
		t.Fatalf("single-node group did not elect itself: %v", err)
	}
	env := &testEnv{t: t, ns: ns, b: b, notes: make(chan *remoting.Command, 16)}
	env.client = remoting.NewClient(remoting.ClientConfig{Logger: testLogger(t).Named("client"),
		Handler: func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
			select {
			case env.notes <- req:
			default:
			}
			if req.Code == remoting.PushReplyMessageToClient {
				return req.Reply(remoting.Success, "")
			}
			return nil
		}})
	t.Cleanup(func() { env.client.Close() })
	return env
}

func (e *testEnv) call(code int32, ext map[string]string, body []byte) *remoting.Command {
	e.t.Helper()
	return e.callAddr(e.b.Addr(), code, ext, body)
}

func (e *testEnv) callAddr(addr string, code int32, ext map[string]string, body []byte) *remoting.Command {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := e.client.Invoke(ctx, addr, remoting.NewRequest(code, ext, body))
	if err != nil {
		e.t.Fatalf("invoke %d: %v", code, err)
	}
	return resp
}

func (e *testEnv) createTopic(topic string, queues int) {
	e.t.Helper()
	q := strconv.Itoa(queues)
	r := e.call(remoting.UpdateAndCreateTopic, map[string]string{"topic": topic, "readQueueNums": q, "writeQueueNums": q, "perm": "6", "topicFilterType": "SINGLE_TAG", "order": "false"}, nil)
	if r.Code != remoting.Success {
		e.t.Fatalf("create topic: %d %s", r.Code, r.Remark)
	}
}

func sendExt(topic string, qid int, props map[string]string) map[string]string {
	return map[string]string{"producerGroup": "pg", "topic": topic, "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
		"queueId": strconv.Itoa(qid), "sysFlag": "0", "bornTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10),
		"flag": "0", "properties": message.EncodeProperties(props), "reconsumeTimes": "0", "unitMode": "false", "batch": "false"}
}

func (e *testEnv) send(topic string, qid int, tag, body string) *remoting.Command {
	e.t.Helper()
	props := map[string]string{message.PropertyUniqKey: "ID" + body}
	if tag != "" {
		props[message.PropertyTags] = tag
	}
	return e.call(remoting.SendMessage, sendExt(topic, qid, props), []byte(body))
}

func pullExt(group, topic string, qid int, offset int64, sysFlag int, suspendMs int) map[string]string {
	return map[string]string{"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(qid),
		"queueOffset": strconv.FormatInt(offset, 10), "maxMsgNums": "32", "sysFlag": strconv.Itoa(sysFlag),
		"commitOffset": "0", "suspendTimeoutMillis": strconv.Itoa(suspendMs), "subscription": "", "subVersion": "0", "expressionType": "TAG"}
}

func bodyOf(c *remoting.Command) []byte {
	out := append([]byte(nil), c.Body...)
	for _, p := range c.BodyParts {
		out = append(out, p...)
	}
	return out
}

func (e *testEnv) maxOffset(topic string, qid int) int64 {
	e.t.Helper()
	r := e.call(remoting.GetMaxOffset, map[string]string{"topic": topic, "queueId": strconv.Itoa(qid)}, nil)
	n, _ := strconv.ParseInt(r.Ext("offset"), 10, 64)
	return n
}

func TestSendAndPull(t *testing.T) {
	e := startEnv(t, nil)
	e.createTopic("T", 2)
	for i := 0; i < 5; i++ {
		r := e.send("T", 1, "", "m"+strconv.Itoa(i))
		if r.Code != remoting.Success {
			t.Fatalf("send: %d %s", r.Code, r.Remark)
		}
		if r.Ext("queueId") != "1" || r.Ext("queueOffset") != strconv.Itoa(i) || len(r.Ext("msgId")) != 32 {
			t.Fatalf("send response %v", r.ExtFields)
		}
		if r.Ext("MSG_REGION") == "" || r.Ext("TRACE_ON") == "" {
			t.Fatal("send response lacks MSG_REGION/TRACE_ON (docs/protocol.md G24)")
		}
	}
	r := e.call(remoting.PullMessage, pullExt("g", "T", 1, 0, 0, 0), nil)
	if r.Code != remoting.Success {
		t.Fatalf("pull: %d %s", r.Code, r.Remark)
	}
	if r.Ext("nextBeginOffset") != "5" || r.Ext("minOffset") != "0" || r.Ext("maxOffset") != "5" || r.Ext("suggestWhichBrokerId") != "0" {
		t.Fatalf("pull ext %v", r.ExtFields)
	}
	msgs, err := message.DecodeRecords(bodyOf(r))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 5 {
		t.Fatalf("%d messages", len(msgs))
	}
	for i, m := range msgs {
		if string(m.Body) != "m"+strconv.Itoa(i) || m.QueueOffset != int64(i) || m.QueueID != 1 || m.Topic != "T" {
			t.Fatalf("message %d: %+v", i, m)
		}
		// The physical offset is what VIEW_MESSAGE_BY_ID uses.
		v := e.call(remoting.ViewMessageByID, map[string]string{"offset": strconv.FormatInt(m.CommitLogOffset, 10)}, nil)
		got, _, err := message.DecodeRecord(v.Body)
		if v.Code != 0 || err != nil || string(got.Body) != string(m.Body) {
			t.Fatalf("view by id: %d %v", v.Code, err)
		}
	}
	// Pull at the end without suspend: 19 with next = req.
	r = e.call(remoting.PullMessage, pullExt("g", "T", 1, 5, 0, 0), nil)
	if r.Code != remoting.PullNotFound || r.Ext("nextBeginOffset") != "5" {
		t.Fatalf("pull at end: %d %v", r.Code, r.ExtFields)
	}
	// Beyond the end: offset moved to max.
	r = e.call(remoting.PullMessage, pullExt("g", "T", 1, 99, 0, 0), nil)
	if r.Code != remoting.PullOffsetMoved || r.Ext("nextBeginOffset") != "5" {
		t.Fatalf("pull beyond end: %d %v", r.Code, r.ExtFields)
	}
	// Empty queue, offset 0: not found; non-zero: moved to 0.
	r = e.call(remoting.PullMessage, pullExt("g", "T", 0, 0, 0, 0), nil)
	if r.Code != remoting.PullNotFound || r.Ext("nextBeginOffset") != "0" {
		t.Fatalf("pull empty queue: %d %v", r.Code, r.ExtFields)
	}
	r = e.call(remoting.PullMessage, pullExt("g", "T", 0, 3, 0, 0), nil)
	if r.Code != remoting.PullOffsetMoved || r.Ext("nextBeginOffset") != "0" {
		t.Fatalf("pull empty queue at 3: %d %v", r.Code, r.ExtFields)
	}
	// A new group on a queue whose first message is recent starts at 0 (as Java).
	if q := e.call(remoting.QueryConsumerOffset, map[string]string{"consumerGroup": "new", "topic": "T", "queueId": "1"}, nil); q.Code != 0 || q.Ext("offset") != "0" {
		t.Fatalf("query offset of a new group: %d %v", q.Code, q.ExtFields)
	}
	if e.maxOffset("T", 1) != 5 || e.maxOffset("T", 0) != 0 {
		t.Fatal("max offsets")
	}
	m := e.call(remoting.GetMinOffset, map[string]string{"topic": "T", "queueId": "1"}, nil)
	if m.Ext("offset") != "0" {
		t.Fatalf("min offset %v", m.ExtFields)
	}
	s := e.call(remoting.SearchOffsetByTimestamp, map[string]string{"topic": "T", "queueId": "1", "timestamp": "0"}, nil)
	if s.Code != 0 || s.Ext("offset") != "0" {
		t.Fatalf("search by timestamp: %d %v", s.Code, s.ExtFields)
	}
	est := e.call(remoting.GetEarliestMsgStoretime, map[string]string{"topic": "T", "queueId": "1"}, nil)
	if est.Code != 0 || est.Ext("timestamp") != strconv.FormatInt(msgs[0].StoreTimestamp, 10) {
		t.Fatalf("earliest store time: %d %v", est.Code, est.ExtFields)
	}
}

func TestBatchSendAndTagFilter(t *testing.T) {
	e := startEnv(t, nil)
	e.createTopic("B", 1)
	var items []message.Message
	for i := 0; i < 6; i++ {
		tag := "A"
		if i%2 == 1 {
			tag = "B"
		}
		items = append(items, message.Message{Body: []byte("b" + strconv.Itoa(i)), Properties: map[string]string{message.PropertyTags: tag}})
	}
	body, err := message.EncodeBatch(items)
	if err != nil {
		t.Fatal(err)
	}
	ext := map[string]string{"a": "pg", "b": "B", "c": "TBW102", "d": "4", "e": "0", "f": "0",
		"g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": "0", "i": "", "j": "0", "k": "false", "m": "true"}
	r := e.call(remoting.SendBatchMessage, ext, body)
	if r.Code != remoting.Success {
		t.Fatalf("batch: %d %s", r.Code, r.Remark)
	}
	if ids := strings.Split(r.Ext("msgId"), ","); len(ids) != 6 || r.Ext("queueOffset") != "0" {
		t.Fatalf("batch response %v", r.ExtFields)
	}
	p := pullExt("g", "B", 0, 0, pullFlagSubscription, 0)
	p["subscription"] = "B"
	r = e.call(remoting.PullMessage, p, nil)
	msgs, err := message.DecodeRecords(bodyOf(r))
	if r.Code != 0 || err != nil || len(msgs) != 3 {
		t.Fatalf("tag pull: %d %v %d", r.Code, err, len(msgs))
	}
	for _, m := range msgs {
		if m.Tags() != "B" || m.QueueOffset%2 != 1 {
			t.Fatalf("filtered message %+v", m)
		}
	}
	if r.Ext("nextBeginOffset") != "6" {
		t.Fatalf("next %s", r.Ext("nextBeginOffset"))
	}
	// A filter matching nothing: 20 with the offset advanced past what was scanned.
	p["subscription"] = "Z || Y"
	r = e.call(remoting.PullMessage, p, nil)
	if r.Code != remoting.PullRetryImmediately || r.Ext("nextBeginOffset") != "6" {
		t.Fatalf("no match: %d %v", r.Code, r.ExtFields)
	}
}

func TestSendRejectsBadInput(t *testing.T) {
	e := startEnv(t, func(c *Config) {
		c.AutoCreateTopicEnable = false
		c.MaxMessageSize = 1024
	})
	e.createTopic("T", 2)
	before := e.b.node.CommitLog().WriteEnd()
	cases := []struct {
		name string
		ext  map[string]string
		body []byte
		code int32
	}{
		{"unknown topic, no auto-create", sendExt("Nope", 0, nil), []byte("x"), remoting.TopicNotExist},
		{"illegal topic chars", sendExt("a/../b", 0, nil), []byte("x"), remoting.InvalidParameter},
		{"topic too long", sendExt(strings.Repeat("t", 128), 0, nil), []byte("x"), remoting.InvalidParameter},
		{"oversized body", sendExt("T", 0, nil), make([]byte, 1025), remoting.MessageIllegal},
		{"queue id out of range", sendExt("T", 2, nil), []byte("x"), remoting.InvalidParameter},
		{"system topic", sendExt("SCHEDULE_TOPIC_XXXX", 0, nil), []byte("x"), remoting.NoPermission},
		{"queue id not a number", func() map[string]string { m := sendExt("T", 0, nil); m["queueId"] = "x"; return m }(), []byte("x"), remoting.InvalidParameter},
		{"no topic", func() map[string]string { m := sendExt("T", 0, nil); delete(m, "topic"); return m }(), []byte("x"), remoting.InvalidParameter},
	}
	for _, c := range cases {
		r := e.call(remoting.SendMessage, c.ext, c.body)
		if r.Code != c.code || r.Remark == "" {
			t.Errorf("%s: got %d %q, want %d with a remark", c.name, r.Code, r.Remark, c.code)
		}
	}
	// A bad batch body.
	ext := map[string]string{"a": "pg", "b": "T", "c": "TBW102", "d": "4", "e": "0", "f": "0", "g": "0", "h": "0", "m": "true"}
	if r := e.call(remoting.SendBatchMessage, ext, []byte{0, 0, 0, 200, 1, 2}); r.Code != remoting.MessageIllegal {
		t.Errorf("bad batch: %d %s", r.Code, r.Remark)
	}
	if after := e.b.node.CommitLog().WriteEnd(); after != before {
		t.Fatalf("rejected sends wrote %d bytes", after-before)
	}
	if _, ok := e.b.meta.Topic("Nope"); ok {
		t.Fatal("topic created although auto-create is off")
	}
	// Pulls and offsets with bad parameters.
	if r := e.call(remoting.PullMessage, pullExt("g", "T", 7, 0, 0, 0), nil); r.Code != remoting.InvalidParameter || r.Ext("nextBeginOffset") == "" {
		t.Errorf("pull bad queue: %d %v", r.Code, r.ExtFields)
	}
	if r := e.call(remoting.PullMessage, pullExt("g", "Nope", 0, 0, 0, 0), nil); r.Code != remoting.TopicNotExist {
		t.Errorf("pull unknown topic: %d", r.Code)
	}
	if r := e.call(remoting.UpdateConsumerOffset, map[string]string{"consumerGroup": "g", "topic": "T", "queueId": "0", "commitOffset": "-4"}, nil); r.Code != remoting.InvalidParameter {
		t.Errorf("negative commit offset: %d", r.Code)
	}
	if r := e.call(remoting.UpdateAndCreateTopic, map[string]string{"topic": "bad topic"}, nil); r.Code != remoting.InvalidParameter {
		t.Errorf("create bad topic: %d", r.Code)
	}
	if r := e.call(remoting.ViewMessageByID, map[string]string{"offset": "123456789"}, nil); r.Code != remoting.SystemError {
		t.Errorf("view at a bogus offset: %d", r.Code)
	}
}

func TestAutoCreateTopicFromTBW102(t *testing.T) {
	e := startEnv(t, nil)
	r := e.send("Fresh", 3, "", "x")
	if r.Code != remoting.Success {
		t.Fatalf("send: %d %s", r.Code, r.Remark)
	}
	tc, ok := e.b.meta.Topic("Fresh")
	if !ok || tc.WriteQueueNums != 4 || tc.Perm&wire.PermInherit != 0 {
		t.Fatalf("auto-created %+v", tc)
	}
	// The namesrv learns the topic at once.
	waitFor(t, "route of the new topic", 10*time.Second, func() bool {
		r := e.callAddr(e.ns.Addr(), remoting.GetRouteInfoByTopic, map[string]string{"topic": "Fresh"}, nil)
		return r.Code == 0 && strings.Contains(string(r.Body), `"0":"`+e.b.Addr()+`"`)
	})
}

func TestRegistersAsLeaderWithTerm(t *testing.T) {
	e := startEnv(t, nil)
	waitFor(t, "TBW102 route naming brokerId 0", 10*time.Second, func() bool {
		r := e.callAddr(e.ns.Addr(), remoting.GetRouteInfoByTopic, map[string]string{"topic": "TBW102"}, nil)
		return r.Code == 0 && strings.Contains(string(r.Body), `"0":"`+e.b.Addr()+`"`)
	})
	req := e.b.registration()
	var body wire.RegisterBrokerBody
	if err := json.Unmarshal(req.Body, &body); err != nil {
		t.Fatal(err)
	}
	if req.Ext("brokerId") != "0" || body.TopicConfigSerializeWrapper.DataVersion.StateVersion != int64(e.b.role.get().term) || e.b.role.get().term == 0 {
		t.Fatalf("registration %v %+v", req.ExtFields, body.TopicConfigSerializeWrapper.DataVersion)
	}
}

func heartbeatBody(clientID, group, topic, sub string) []byte {
	b, _ := json.Marshal(map[string]interface{}{
		"clientID":        clientID,
		"producerDataSet": []map[string]string{{"groupName": "pg"}},
		"consumerDataSet": []map[string]interface{}{{
			"groupName": group, "consumeType": "CONSUME_PASSIVELY", "messageModel": "CLUSTERING",
			"consumeFromWhere": "CONSUME_FROM_LAST_OFFSET", "unitMode": false,
			"subscriptionDataSet": []map[string]interface{}{{"classFilterMode": false, "topic": topic, "subString": sub,
				"tagsSet": []string{}, "codeSet": []string{}, "subVersion": 1, "expressionType": "TAG"}},
		}},
	})
	return b
}

func TestHeartbeatConsumerListAndNotify(t *testing.T) {
	e := startEnv(t, nil)
	e.createTopic("T", 1)
	if r := e.call(remoting.HeartBeat, nil, heartbeatBody("c1@1", "cg", "T", "*")); r.Code != 0 {
		t.Fatalf("heartbeat: %d %s", r.Code, r.Remark)
	}
	r := e.call(remoting.GetConsumerListByGroup, map[string]string{"consumerGroup": "cg"}, nil)
	var list struct {
		ConsumerIDList []string `json:"consumerIdList"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil || len(list.ConsumerIDList) != 1 || list.ConsumerIDList[0] != "c1@1" {
		t.Fatalf("consumer list %s %v", r.Body, err)
	}
	// The retry topic and the group are created on the leader.
	waitFor(t, "retry topic", 5*time.Second, func() bool { _, ok := e.b.meta.Topic("%RETRY%cg"); return ok })
	if _, ok := e.b.meta.Group("cg"); !ok {
		t.Fatal("subscription group not auto-created")
	}
	// A second client on its own connection: the first is notified.
	other := remoting.NewClient(remoting.ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := other.Invoke(ctx, e.b.Addr(), remoting.NewRequest(remoting.HeartBeat, nil, heartbeatBody("c2@2", "cg", "T", "*"))); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-e.notes:
		if n.Code != remoting.NotifyConsumerIdsChanged || n.Ext("consumerGroup") != "cg" {
			t.Fatalf("notification %v", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no NOTIFY_CONSUMER_IDS_CHANGED")
	}
	if ids := e.b.clients.consumerIDs("cg"); len(ids) != 2 {
		t.Fatalf("ids %v", ids)
	}
	// Closing the second connection drops it and notifies again.
	other.Close()
	waitFor(t, "client removal on close", 5*time.Second, func() bool { return len(e.b.clients.consumerIDs("cg")) == 1 })
	select {
	case <-e.notes:
	case <-time.After(5 * time.Second):
		t.Fatal("no notification after close")
	}
	if r := e.call(remoting.HeartBeat, nil, []byte("{not json")); r.Code != remoting.InvalidParameter {
		t.Fatalf("bad heartbeat: %d", r.Code)
	}
}

func TestConsumerOffsetsCoalescedThroughRaft(t *testing.T) {
	e := startEnv(t, nil)
	e.createTopic("T", 4)
	q := func(qid int) *remoting.Command {
		return e.call(remoting.QueryConsumerOffset, map[string]string{"consumerGroup": "g", "topic": "T", "queueId": strconv.Itoa(qid)}, nil)
	}
	if r := q(0); r.Code != remoting.QueryNotFound {
		t.Fatalf("fresh query: %d %v", r.Code, r.ExtFields)
	}
	for qid := 0; qid < 4; qid++ {
		for off := 1; off <= 3; off++ {
			r := e.call(remoting.UpdateConsumerOffset, map[string]string{"consumerGroup": "g", "topic": "T", "queueId": strconv.Itoa(qid), "commitOffset": strconv.Itoa(qid*10 + off)}, nil)
			if r.Code != 0 {
				t.Fatalf("update: %d %s", r.Code, r.Remark)
			}
		}
	}
	for qid := 0; qid < 4; qid++ {
		if r := q(qid); r.Code != 0 || r.Ext("offset") != strconv.Itoa(qid*10+3) {
			t.Fatalf("query %d: %d %v", qid, r.Code, r.ExtFields)
		}
	}
	waitFor(t, "offsets replicated", 5*time.Second, func() bool {
		for qid := 0; qid < 4; qid++ {
			if o, ok := e.b.meta.Offset("g", "T", int32(qid)); !ok || o != int64(qid*10+3) {
				return false
			}
		}
		return true
	})
}

func TestLongPollWokenByDispatch(t *testing.T) {
	e := startEnv(t, nil)
	e.createTopic("L", 1)
	type result struct {
		r   *remoting.Command
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r, err := e.client.Invoke(ctx, e.b.Addr(), remoting.NewRequest(remoting.PullMessage, pullExt("g", "L", 0, 0, pullFlagSuspend, 20000), nil))
		done <- result{r, err}
	}()
	// The parked pull must not block other requests on the same connection.
	waitFor(t, "pull parked", 5*time.Second, func() bool {
		e.b.holds.mu.Lock()
		defer e.b.holds.mu.Unlock()
		return len(e.b.holds.waiting) == 1
	})
	if r := e.send("L", 0, "", "wake"); r.Code != 0 {
		t.Fatalf("send: %d %s", r.Code, r.Remark)
	}
	select {
	case res := <-done:
		if res.err != nil || res.r.Code != 0 {
			t.Fatalf("parked pull: %v %v", res.err, res.r)
		}
		msgs, err := message.DecodeRecords(bodyOf(res.r))
		if err != nil || len(msgs) != 1 || string(msgs[0].Body) != "wake" {
			t.Fatalf("woken pull body: %v %v", err, msgs)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("parked pull not woken by the send")
	}
}

func TestLongPollTimesOut(t *testing.T) {
	e := startEnv(t, nil)
	e.createTopic("L", 1)
	r := e.call(remoting.PullMessage, pullExt("g", "L", 0, 0, pullFlagSuspend, 200), nil)
	if r.Code != remoting.PullNotFound || r.Ext("nextBeginOffset") != "0" {
		t.Fatalf("timed-out pull: %d %v", r.Code, r.ExtFields)
	}
}

func TestAdminProcessors(t *testing.T) {
	e := startEnv(t, nil)
	e.createTopic("Adm", 3)
	r := e.call(remoting.GetAllTopicConfig, nil, nil)
	var w wire.TopicConfigWrapper
	if err := json.Unmarshal(r.Body, &w); err != nil || w.TopicConfigTable["Adm"].ReadQueueNums != 3 || w.TopicConfigTable["TBW102"].Perm != 7 {
		t.Fatalf("all topic config: %v %s", err, r.Body)
	}
	r = e.call(remoting.GetBrokerRuntimeInfo, nil, nil)
	var kv struct{ Table map[string]string }
	if err := json.Unmarshal(r.Body, &kv); err != nil || kv.Table["brokerVersionDesc"] == "" || kv.Table["brokerRole"] != "LEADER" {
		t.Fatalf("runtime info %s", r.Body)
	}
	gb, _ := json.Marshal(DefaultGroupConfig("grp"))
	if r := e.call(updateAndCreateSubscriptionGroup, nil, gb); r.Code != 0 {
		t.Fatalf("create group: %d %s", r.Code, r.Remark)
	}
	r = e.call(remoting.GetAllSubscriptionGroupConfig, nil, nil)
	if !strings.Contains(string(r.Body), `"grp"`) {
		t.Fatalf("groups %s", r.Body)
	}
	if r := e.call(remoting.DeleteTopicInBroker, map[string]string{"topic": "Adm"}, nil); r.Code != 0 {
		t.Fatalf("delete: %d %s", r.Code, r.Remark)
	}
	if _, ok := e.b.meta.Topic("Adm"); ok {
		t.Fatal("topic survived deletion")
	}
	// Query by key.
	e.createTopic("K", 1)
	props := map[string]string{message.PropertyKeys: "order-7 other", message.PropertyUniqKey: "U1"}
	if r := e.call(remoting.SendMessage, sendExt("K", 0, props), []byte("keyed")); r.Code != 0 {
		t.Fatalf("send: %d", r.Code)
	}
	var found *remoting.Command
	waitFor(t, "index", 5*time.Second, func() bool {
		found = e.call(remoting.QueryMessage, map[string]string{"topic": "K", "key": "order-7", "maxNum": "8", "beginTimestamp": "0", "endTimestamp": strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)}, nil)
		return found.Code == 0
	})
	msgs, err := message.DecodeRecords(found.Body)
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != "keyed" {
		t.Fatalf("query by key: %v %v", err, msgs)
	}
}

func TestConcurrentSendsKeepQueueOffsetsDense(t *testing.T) {
	e := startEnv(t, nil)
	e.createTopic("C", 1)
	var wg sync.WaitGroup
	const n = 64
	offsets := make(chan int64, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r, err := e.client.Invoke(ctx, e.b.Addr(), remoting.NewRequest(remoting.SendMessage, sendExt("C", 0, nil), []byte("x")))
			if err != nil || r.Code != 0 {
				t.Errorf("send %d: %v %v", i, err, r)
				return
			}
			o, _ := strconv.ParseInt(r.Ext("queueOffset"), 10, 64)
			offsets <- o
		}(i)
	}
	wg.Wait()
	close(offsets)
	seen := map[int64]bool{}
	for o := range offsets {
		if seen[o] || o < 0 || o >= n {
			t.Fatalf("queue offset %d duplicated or out of range", o)
		}
		seen[o] = true
	}
	if e.maxOffset("C", 0) != n {
		t.Fatalf("max offset %d", e.maxOffset("C", 0))
	}
}

func fastDelays(c *Config) { c.MessageDelayLevel = "1s 1s 1s 1s" }

func TestDelayedMessageDeliveredWhenDue(t *testing.T) {
	e := startEnv(t, fastDelays)
	e.createTopic("D", 2)
	props := map[string]string{message.PropertyDelayLevel: "2", message.PropertyUniqKey: "UD"}
	r := e.call(remoting.SendMessage, sendExt("D", 1, props), []byte("later"))
	if r.Code != 0 || r.Ext("queueId") != "1" {
		t.Fatalf("delayed send: %d %s %v", r.Code, r.Remark, r.ExtFields)
	}
	if e.maxOffset("D", 1) != 0 {
		t.Fatal("delayed message visible at once")
	}
	waitFor(t, "delayed message delivered", 15*time.Second, func() bool { return e.maxOffset("D", 1) == 1 })
	p := e.call(remoting.PullMessage, pullExt("g", "D", 1, 0, 0, 0), nil)
	msgs, err := message.DecodeRecords(bodyOf(p))
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != "later" || msgs[0].Properties[message.PropertyDelayLevel] != "" ||
		msgs[0].Properties[message.PropertyUniqKey] != "UD" {
		t.Fatalf("delivered %v %v", err, msgs)
	}
	// The level's progress is replicated in schedule's offset format, so a
	// new leader resumes after the delivered message.
	waitFor(t, "delay progress replicated", 15*time.Second, func() bool {
		v, ok := e.b.meta.KV(kvDelayOffsets)
		if !ok {
			return false
		}
		offs, err := schedule.UnmarshalOffsets(v)
		return err == nil && offs[2] == 1 && string(v) == string(schedule.MarshalOffsets(offs))
	})
	offs, err := e.b.services.LoadDelayOffsets(context.Background())
	if err != nil || offs[2] != 1 {
		t.Fatalf("loaded delay offsets %v %v", offs, err)
	}
}

func TestSendBackToRetryAndDLQ(t *testing.T) {
	e := startEnv(t, fastDelays)
	e.createTopic("S", 1)
	if r := e.send("S", 0, "t", "orig"); r.Code != 0 {
		t.Fatalf("send: %d", r.Code)
	}
	p := e.call(remoting.PullMessage, pullExt("sg", "S", 0, 0, 0, 0), nil)
	msgs, err := message.DecodeRecords(bodyOf(p))
	if err != nil || len(msgs) != 1 {
		t.Fatalf("pull: %v", err)
	}
	phys := strconv.FormatInt(msgs[0].CommitLogOffset, 10)
	back := func(level string) *remoting.Command {
		return e.call(remoting.ConsumerSendMsgBack, map[string]string{"offset": phys, "group": "sg", "delayLevel": level,
			"originMsgId": msgs[0].MsgID(), "originTopic": "S", "unitMode": "false", "maxReconsumeTimes": "16"}, nil)
	}
	if r := back("0"); r.Code != 0 {
		t.Fatalf("send back: %d %s", r.Code, r.Remark)
	}
	waitFor(t, "retry message", 15*time.Second, func() bool { return e.maxOffset("%RETRY%sg", 0) == 1 })
	p = e.call(remoting.PullMessage, pullExt("sg", "%RETRY%sg", 0, 0, 0, 0), nil)
	rm, err := message.DecodeRecords(bodyOf(p))
	if err != nil || len(rm) != 1 || string(rm[0].Body) != "orig" || rm[0].ReconsumeTimes != 1 || rm[0].Properties[message.PropertyRetryTopic] != "S" {
		t.Fatalf("retry record %v %+v", err, rm)
	}
	if r := back("-1"); r.Code != 0 {
		t.Fatalf("send back to DLQ: %d %s", r.Code, r.Remark)
	}
	if e.maxOffset("%DLQ%sg", 0) != 1 {
		t.Fatal("DLQ message missing")
	}
	if r := e.call(remoting.ConsumerSendMsgBack, map[string]string{"offset": "x", "group": "sg", "delayLevel": "0"}, nil); r.Code == 0 {
		t.Fatal("bad send-back header accepted")
	}
	// The Go client's fallback: a resend into %RETRY% beyond max reconsume times goes to the DLQ.
	ext := sendExt("%RETRY%sg", 0, map[string]string{message.PropertyRetryTopic: "S"})
	ext["reconsumeTimes"], ext["maxReconsumeTimes"] = "17", "16"
	if r := e.call(remoting.SendMessage, ext, []byte("tired")); r.Code != 0 {
		t.Fatalf("retry resend: %d %s", r.Code, r.Remark)
	}
	if e.maxOffset("%DLQ%sg", 0) != 2 {
		t.Fatal("exhausted retry not redirected to the DLQ")
	}
}

// A group holding live orderly locks gets its direct %RETRY% sends in its
// DLQ (Java 5.x); once it unlocks, a retry within its limit stays a retry.
func TestRetrySendOfLockedGroupGoesToDLQ(t *testing.T) {
	e := startEnv(t, nil)
	e.createTopic("O", 1)
	body := []byte(`{"consumerGroup":"og","clientId":"c1","mqSet":[{"topic":"O","brokerName":"` + e.b.cfg.BrokerName + `","queueId":0}]}`)
	if r := e.call(remoting.LockBatchMQ, nil, body); r.Code != 0 || !strings.Contains(string(bodyOf(r)), `"queueId":0`) {
		t.Fatalf("lock: %d %s %s", r.Code, r.Remark, bodyOf(r))
	}
	retrySend := func() {
		t.Helper()
		ext := sendExt("%RETRY%og", 0, map[string]string{message.PropertyRetryTopic: "O"})
		ext["reconsumeTimes"], ext["maxReconsumeTimes"] = "1", "16"
		if r := e.call(remoting.SendMessage, ext, []byte("ordered")); r.Code != 0 {
			t.Fatalf("retry send: %d %s", r.Code, r.Remark)
		}
	}
	retrySend()
	if e.maxOffset("%DLQ%og", 0) != 1 || e.maxOffset("%RETRY%og", 0) != 0 {
		t.Fatalf("locked group's retry: DLQ %d, retry %d", e.maxOffset("%DLQ%og", 0), e.maxOffset("%RETRY%og", 0))
	}
	if r := e.call(remoting.UnlockBatchMQ, nil, body); r.Code != 0 {
		t.Fatalf("unlock: %d %s", r.Code, r.Remark)
	}
	retrySend()
	if e.maxOffset("%DLQ%og", 0) != 1 || e.maxOffset("%RETRY%og", 0) != 1 {
		t.Fatalf("unlocked group's retry: DLQ %d, retry %d", e.maxOffset("%DLQ%og", 0), e.maxOffset("%RETRY%og", 0))
	}
}

func TestTransactionCommitAndRollback(t *testing.T) {
	e := startEnv(t, nil)
	e.createTopic("X", 1)
	half := func(body string) *remoting.Command {
		ext := sendExt("X", 0, map[string]string{message.PropertyTransactionPrepared: "true", message.PropertyProducerGroup: "pg",
			message.PropertyUniqKey: "U-" + body})
		ext["sysFlag"] = "4"
		r := e.call(remoting.SendMessage, ext, []byte(body))
		if r.Code != 0 || r.Ext("transactionId") != "U-"+body || r.Ext("queueId") != "0" {
			t.Fatalf("half send: %d %s %v", r.Code, r.Remark, r.ExtFields)
		}
		return r
	}
	end := func(r *remoting.Command, state string) *remoting.Command {
		_, off, err := message.ParseOffsetMsgID(r.Ext("msgId"))
		if err != nil {
			t.Fatal(err)
		}
		return e.call(remoting.EndTransaction, map[string]string{"producerGroup": "pg", "tranStateTableOffset": r.Ext("queueOffset"),
			"commitLogOffset": strconv.FormatInt(off, 10), "commitOrRollback": state, "fromTransactionCheck": "false",
			"msgId": r.Ext("transactionId"), "transactionId": r.Ext("transactionId")}, nil)
	}
	h1 := half("commit-me")
	h2 := half("drop-me")
	if e.maxOffset("X", 0) != 0 {
		t.Fatal("half message visible before commit")
	}
	waitFor(t, "transaction service running", 10*time.Second, func() bool {
		return end(h1, "8").Code == 0
	})
	if r := end(h2, "12"); r.Code != 0 {
		t.Fatalf("rollback: %d %s", r.Code, r.Remark)
	}
	if e.maxOffset("X", 0) != 1 {
		t.Fatalf("after commit and rollback: max offset %d", e.maxOffset("X", 0))
	}
	p := e.call(remoting.PullMessage, pullExt("g", "X", 0, 0, 0, 0), nil)
	msgs, err := message.DecodeRecords(bodyOf(p))
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != "commit-me" {
		t.Fatalf("committed message %v %v", err, msgs)
	}
	if r := e.call(remoting.EndTransaction, map[string]string{"producerGroup": "pg"}, nil); r.Code == 0 {
		t.Fatal("bad END_TRANSACTION header accepted")
	}
}

func TestSendV2HeaderAndUnregisterClient(t *testing.T) {
	e := startEnv(t, nil)
	e.createTopic("V", 1)
	ext := map[string]string{"a": "pg", "b": "V", "c": "TBW102", "d": "4", "e": "0", "f": "0",
		"g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": "3", "i": message.EncodeProperties(map[string]string{message.PropertyTags: "t"}),
		"j": "0", "k": "false", "m": "false"}
	r := e.call(remoting.SendMessageV2, ext, []byte("java"))
	if r.Code != 0 || r.Ext("queueOffset") != "0" {
		t.Fatalf("V2 send: %d %s", r.Code, r.Remark)
	}
	p := e.call(remoting.LitePullMessage, pullExt("g", "V", 0, 0, 0, 0), nil)
	msgs, err := message.DecodeRecords(bodyOf(p))
	if err != nil || len(msgs) != 1 || msgs[0].Flag != 3 || msgs[0].Tags() != "t" {
		t.Fatalf("lite pull: %v %+v", err, msgs)
	}
	if r := e.call(remoting.HeartBeat, nil, heartbeatBody("c9", "ug", "V", "*")); r.Code != 0 {
		t.Fatal(r.Remark)
	}
	if r := e.call(remoting.UnregisterClient, map[string]string{"clientID": "c9", "consumerGroup": "ug"}, nil); r.Code != 0 {
		t.Fatalf("unregister: %d", r.Code)
	}
	if ids := e.b.clients.consumerIDs("ug"); len(ids) != 0 {
		t.Fatalf("client kept after unregister: %v", ids)
	}
	if r := e.call(remoting.UnregisterClient, nil, nil); r.Code != remoting.InvalidParameter {
		t.Fatalf("unregister without id: %d", r.Code)
	}
}

func TestReplyMessagePushedToRequester(t *testing.T) {
	e := startEnv(t, nil)
	if r := e.call(remoting.HeartBeat, nil, heartbeatBody("req@1", "rg", "DefaultCluster_REPLY_TOPIC", "*")); r.Code != 0 {
		t.Fatal(r.Remark)
	}
	props := map[string]string{message.PropertyMessageReplyToClient: "req@1", message.PropertyCorrelationID: "corr-1",
		message.PropertyMessageType: message.ReplyMessageType}
	r := e.call(remoting.SendReplyMessage, sendExt("DefaultCluster_REPLY_TOPIC", 0, props), []byte("the answer"))
	if r.Code != 0 || r.Ext("PUSH_REPLY_RESULT") != "true" {
		t.Fatalf("reply send: %d %q %v", r.Code, r.Remark, r.ExtFields)
	}
	for {
		select {
		case n := <-e.notes:
			if n.Code != remoting.PushReplyMessageToClient {
				continue
			}
			if string(n.Body) != "the answer" || message.DecodeProperties(n.Ext("properties"))[message.PropertyCorrelationID] != "corr-1" {
				t.Fatalf("pushed reply %v %q", n.ExtFields, n.Body)
			}
			return
		case <-time.After(5 * time.Second):
			t.Fatal("reply not pushed")
		}
	}
}
