package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/acl"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/remoting"
)

const brokerTestACL = `
accounts:
  - accessKey: appUser1
    secretKey: app-secret-1
    defaultTopicPerm: DENY
    topicPerms: [Orders=PUB|SUB]
    groupPerms: [billing=SUB]
  - accessKey: appUser2
    secretKey: app-secret-2
    topicPerms: [Elsewhere=PUB|SUB]
  - accessKey: opsAdmin
    secretKey: ops-secret-1
    admin: true
`

func aclEnv(t *testing.T) *testEnv {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	if err := os.WriteFile(path, []byte(brokerTestACL), 0o600); err != nil {
		t.Fatal(err)
	}
	return startEnv(t, func(c *Config) {
		c.ACLEnable, c.ACLFile = true, path
		c.MaxMessageSize = 1024
	})
}

// signedCall signs ext and body as the official clients do and calls the broker.
func (e *testEnv) signedCall(ak, sk string, code int32, ext map[string]string, body []byte) *remoting.Command {
	e.t.Helper()
	acl.SignRequest(ext, body, acl.Credentials{AccessKey: ak, SecretKey: acl.Secret(sk)})
	return e.call(code, ext, body)
}

// createTopicAsAdmin creates a one-queue topic signed by the test's admin account.
func (e *testEnv) createTopicAsAdmin(topic string) {
	e.t.Helper()
	if r := e.signedCall("opsAdmin", "ops-secret-1", remoting.UpdateAndCreateTopic, map[string]string{"topic": topic, "readQueueNums": "1",
		"writeQueueNums": "1", "perm": "6", "topicFilterType": "SINGLE_TAG", "order": "false"}, nil); r.Code != remoting.Success {
		e.t.Fatalf("create topic %s: %d %q", topic, r.Code, r.Remark)
	}
}

func TestACLEnableRefusesUnsignedAndUnpermittedRequestsBeforeAnySideEffect(t *testing.T) {
	e := aclEnv(t)
	create := func() map[string]string {
		return map[string]string{"topic": "Orders", "readQueueNums": "2", "writeQueueNums": "2", "perm": "6", "topicFilterType": "SINGLE_TAG", "order": "false"}
	}
	if r := e.signedCall("appUser1", "app-secret-1", remoting.UpdateAndCreateTopic, create(), nil); r.Code != remoting.NoPermission || !strings.Contains(r.Remark, "admin") {
		t.Fatalf("topic creation by a user: %d %q", r.Code, r.Remark)
	}
	if r := e.signedCall("opsAdmin", "ops-secret-1", remoting.UpdateAndCreateTopic, create(), nil); r.Code != remoting.Success {
		t.Fatalf("topic creation by the admin: %d %q", r.Code, r.Remark)
	}
	before := e.b.node.CommitLog().WriteEnd()
	refused := []struct {
		name string
		resp *remoting.Command
	}{
		{"unsigned", e.call(remoting.SendMessage, sendExt("Orders", 0, nil), []byte("x"))},
		{"wrong secret", e.signedCall("appUser1", "app-secret-2", remoting.SendMessage, sendExt("Orders", 0, nil), []byte("x"))},
		{"no PUB", e.signedCall("appUser1", "app-secret-1", remoting.SendMessage, sendExt("Other", 0, nil), []byte("x"))},
		{"delete topic", e.signedCall("appUser1", "app-secret-1", remoting.DeleteTopicInBroker, map[string]string{"topic": "Orders"}, nil)},
	}
	for _, r := range refused {
		if r.resp.Code != remoting.NoPermission || r.resp.Remark == "" {
			t.Errorf("%s: %d %q, want NO_PERMISSION with a remark", r.name, r.resp.Code, r.resp.Remark)
		}
	}
	if after := e.b.node.CommitLog().WriteEnd(); after != before {
		t.Fatalf("refused requests wrote %d bytes", after-before)
	}
	if _, ok := e.b.meta.Topic("Other"); ok {
		t.Fatal("a refused send auto-created its topic")
	}
	if _, ok := e.b.meta.Topic("Orders"); !ok {
		t.Fatal("a refused DELETE_TOPIC deleted the topic")
	}
	if r := e.signedCall("appUser1", "app-secret-1", remoting.SendMessage, sendExt("Orders", 0, nil), []byte("x")); r.Code != remoting.Success {
		t.Fatalf("signed send: %d %q", r.Code, r.Remark)
	}
}

func TestACLEnableNeedsALoadableFile(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NamesrvAddrs = []string{"127.0.0.1:1"}
	cfg.ACLEnable = true
	if err := cfg.Validate(); err == nil {
		t.Fatal("aclEnable without aclFile accepted")
	}
	cfg.ACLFile = filepath.Join(t.TempDir(), "missing.yml")
	cfg.StorePathRootDir = t.TempDir()
	if b, err := Start(cfg, Options{}); err == nil {
		b.Close(t.Context())
		t.Fatal("broker started with an unreadable ACL file")
	}
}

func TestBatchOverMaxMessageSizeIsIllegalAndNotStored(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.MaxMessageSize = 1024 })
	e.createTopic("T", 1)
	body, err := message.EncodeBatch(make([]message.Message, 60)) // 60 × 22 bytes > 1024
	if err != nil {
		t.Fatal(err)
	}
	before := e.b.node.CommitLog().WriteEnd()
	ext := map[string]string{"a": "pg", "b": "T", "c": "TBW102", "d": "4", "e": "0", "f": "0", "g": "0", "h": "0", "m": "true"}
	if r := e.call(remoting.SendBatchMessage, ext, body); r.Code != remoting.MessageIllegal || !strings.Contains(r.Remark, "too large") {
		t.Fatalf("over-size batch: %d %q, want MESSAGE_ILLEGAL (13)", r.Code, r.Remark)
	}
	if after := e.b.node.CommitLog().WriteEnd(); after != before {
		t.Fatalf("refused batch wrote %d bytes", after-before)
	}
}

func TestInnerClientCredentialsSignRegistrationWithAnACLNamesrv(t *testing.T) {
	accounts, err := acl.ParseAccounts([]byte(brokerTestACL))
	if err != nil {
		t.Fatal(err)
	}
	ns := namesrv.New(namesrv.Config{ListenAddr: "127.0.0.1:0", Logger: testLogger(t).Named("acl-ns"),
		Authenticate: acl.NewAuthorizer(func() *acl.Accounts { return accounts }, nil).Authenticate})
	if err := ns.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(context.Background()) })
	creds, err := acl.ParseCredentials(`{"accessKey":"opsAdmin","secretKey":"ops-secret-1"}`)
	if err != nil {
		t.Fatal(err)
	}
	e := startEnv(t, func(c *Config) { c.NamesrvAddrs, c.InnerClientCredentials = []string{ns.Addr()}, creds })

	admin := remoting.NewClient(remoting.ClientConfig{Sign: acl.Signer(creds)})
	defer admin.Close()
	registered := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := admin.Invoke(ctx, ns.Addr(), remoting.NewRequest(remoting.GetBrokerClusterInfo, nil, nil))
		return err == nil && r.Code == remoting.Success && strings.Contains(string(r.Body), e.b.Addr())
	}
	waitFor(t, "the broker's signed registration", 20*time.Second, registered)

	// A stranger's unsigned registration (the route hijack of issue 15) is refused.
	hijack := remoting.NewRequest(remoting.RegisterBroker, map[string]string{"brokerName": "broker-a", "brokerAddr": "10.6.6.6:10911",
		"clusterName": "DefaultCluster", "brokerId": "0"}, []byte(`{"topicConfigSerializeWrapper":{"dataVersion":{"stateVersion":9223372036854775000}}}`))
	if r := e.callAddr(ns.Addr(), hijack.Code, hijack.ExtFields, hijack.Body); r.Code != remoting.NoPermission {
		t.Fatalf("unsigned REGISTER_BROKER: %d %q", r.Code, r.Remark)
	}
	if r := e.callAddr(ns.Addr(), remoting.UnregisterBroker, map[string]string{"brokerName": "broker-a", "brokerAddr": e.b.Addr(),
		"clusterName": "DefaultCluster", "brokerId": "0"}, nil); r.Code != remoting.NoPermission {
		t.Fatalf("unsigned UNREGISTER_BROKER: %d %q", r.Code, r.Remark)
	}
	if !registered() {
		t.Fatal("refused requests changed the routes")
	}
}

func TestInnerClientCredentialsKeyIsCheckedAndNeverPrinted(t *testing.T) {
	var c Config
	if err := c.Set("innerClientAuthenticationCredentials", `{"accessKey":"opsAdmin","secretKey":"TOPSECRET-9"}`); err != nil {
		t.Fatal(err)
	}
	if out := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(out, "TOPSECRET") {
		t.Fatal("config print shows the secret")
	}
	for _, bad := range []string{`{"accessKey":"a"}`, `not json TOPSECRET`, `{"accessKey":"opsAdmin","secretKey":"x"}`} {
		err := c.Set("innerClientAuthenticationCredentials", bad)
		if err == nil || strings.Contains(err.Error(), "TOPSECRET") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if c.InnerClientCredentials.AccessKey != "opsAdmin" {
		t.Fatal("a refused value changed the credentials in force")
	}
}

func TestServerLimitKeysReachTheRemotingServer(t *testing.T) {
	c := DefaultConfig()
	def := c.remotingServerConfig()
	if def.IdleTimeout != remoting.DefaultIdleTimeout || def.FrameTimeout != remoting.DefaultFrameTimeout ||
		def.MaxConns != remoting.DefaultMaxConns || def.MaxInflightPerConn != remoting.DefaultMaxInflightPerConn ||
		def.MaxInflightBytesPerConn != remoting.DefaultMaxInflightBytesPerConn || c.MaxBatchMessages != message.DefaultBatchMaxItems {
		t.Fatalf("defaults: %+v", def)
	}
	for k, v := range map[string]string{"serverChannelMaxIdleTimeSeconds": "7", "serverFrameReadTimeoutSeconds": "3",
		"serverMaxConnections": "5", "serverMaxInflightPerConnection": "6", "serverMaxInflightBytesPerConnection": "9999", "maxBatchMessageCount": "42"} {
		if err := c.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	got := c.remotingServerConfig()
	if got.IdleTimeout != 7*time.Second || got.FrameTimeout != 3*time.Second || got.MaxConns != 5 ||
		got.MaxInflightPerConn != 6 || got.MaxInflightBytesPerConn != 9999 || c.MaxBatchMessages != 42 {
		t.Fatalf("set: %+v", got)
	}
	for _, k := range []string{"serverFrameReadTimeoutSeconds", "serverMaxConnections", "serverMaxInflightPerConnection", "serverMaxInflightBytesPerConnection"} {
		if err := c.Set(k, "0"); err != nil {
			t.Fatal(err)
		}
	}
	off := c.remotingServerConfig()
	if off.FrameTimeout >= 0 || off.MaxConns >= 0 || off.MaxInflightPerConn >= 0 || off.MaxInflightBytesPerConn >= 0 {
		t.Fatalf("0 must turn a limit off (negative for remoting): %+v", off)
	}
	if err := c.Set("serverChannelMaxIdleTimeSeconds", "0"); err == nil {
		t.Fatal("the idle timeout cannot be turned off")
	}
}

func TestServerMaxConnectionsTakesEffectOnTheBroker(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.ServerMaxConnections = 2 })
	var conns []net.Conn
	for range 3 {
		nc, err := net.Dial("tcp", e.b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(20 * time.Second)) // safety net only
		conns = append(conns, nc)
	}
	// The third is closed by the broker (EOF); the first two stay open and serve.
	if _, err := conns[2].Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection over serverMaxConnections not closed by the broker: %v", err)
	}
	frame, _ := remoting.NewRequest(remoting.GetBrokerRuntimeInfo, nil, nil).MarshalFrame(nil)
	if _, err := conns[0].Write(frame); err != nil {
		t.Fatal(err)
	}
	if _, err := conns[0].Read(make([]byte, 4)); err != nil {
		t.Fatalf("connection within the limit: %v", err)
	}
}

func TestMaxBatchMessageCountTakesEffect(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.MaxBatchMessages = 3 })
	e.createTopic("T", 1)
	ext := func() map[string]string {
		return map[string]string{"a": "pg", "b": "T", "c": "TBW102", "d": "4", "e": "0", "f": "0", "g": "0", "h": "0", "m": "true"}
	}
	four, _ := message.EncodeBatch(make([]message.Message, 4))
	if r := e.call(remoting.SendBatchMessage, ext(), four); r.Code != remoting.MessageIllegal {
		t.Fatalf("4 items over a limit of 3: %d %q", r.Code, r.Remark)
	}
	three, _ := message.EncodeBatch([]message.Message{{Body: []byte("a")}, {Body: []byte("b")}, {Body: []byte("c")}})
	if r := e.call(remoting.SendBatchMessage, ext(), three); r.Code != remoting.Success {
		t.Fatalf("3 items: %d %q", r.Code, r.Remark)
	}
}

func TestACLReplayedSendIsStoredOnceAndAStaleOneRefused(t *testing.T) {
	e := aclEnv(t)
	e.createTopicAsAdmin("Orders")
	// A captured signed send, replayed verbatim.
	ext := sendExt("Orders", 0, map[string]string{message.PropertyUniqKey: "REPLAYED-1"})
	acl.SignRequest(ext, []byte("pay 100"), acl.Credentials{AccessKey: "appUser1", SecretKey: "app-secret-1"})
	first := e.call(remoting.SendMessage, maps.Clone(ext), []byte("pay 100"))
	if first.Code != remoting.Success {
		t.Fatalf("send: %d %q", first.Code, first.Remark)
	}
	end := e.b.node.CommitLog().WriteEnd()
	again := e.call(remoting.SendMessage, maps.Clone(ext), []byte("pay 100"))
	if again.Code != remoting.Success || again.Ext("msgId") != first.Ext("msgId") {
		t.Fatalf("replay within the window: %d %q %v, want the original result", again.Code, again.Remark, again.ExtFields)
	}
	mo := e.signedCall("appUser1", "app-secret-1", remoting.GetMaxOffset, map[string]string{"topic": "Orders", "queueId": "0"}, nil)
	if e.b.node.CommitLog().WriteEnd() != end || mo.Ext("offset") != "1" {
		t.Fatalf("the replay was stored again (max offset %q)", mo.Ext("offset"))
	}
	// The same send captured longer ago than duplicateWindowSeconds.
	stale := sendExt("Orders", 0, map[string]string{message.PropertyUniqKey: "REPLAYED-2"})
	stale["bornTimestamp"] = strconv.FormatInt(time.Now().Add(-DefaultConfig().DuplicateWindow-time.Minute).UnixMilli(), 10)
	if r := e.signedCall("appUser1", "app-secret-1", remoting.SendMessage, stale, []byte("pay 100")); r.Code != remoting.NoPermission || !strings.Contains(r.Remark, "bornTimestamp") {
		t.Fatalf("stale send: %d %q", r.Code, r.Remark)
	}
}

func TestACLSendBackCannotCopyAnotherTopicsMessage(t *testing.T) {
	e := aclEnv(t)
	offsetOf := func(ak, sk, topic, body string) string {
		e.createTopicAsAdmin(topic)
		r := e.signedCall(ak, sk, remoting.SendMessage, sendExt(topic, 0, map[string]string{message.PropertyUniqKey: body}), []byte(body))
		if r.Code != remoting.Success {
			t.Fatalf("send to %s: %d %q", topic, r.Code, r.Remark)
		}
		_, off, err := message.ParseOffsetMsgID(r.Ext("msgId"))
		if err != nil {
			t.Fatal(err)
		}
		return strconv.FormatInt(off, 10)
	}
	secret := offsetOf("opsAdmin", "ops-secret-1", "Secret", "the secret")
	mine := offsetOf("appUser1", "app-secret-1", "Orders", "mine")
	back := func(offset, topic string) *remoting.Command {
		return e.signedCall("appUser1", "app-secret-1", remoting.ConsumerSendMsgBack, map[string]string{"offset": offset, "group": "billing",
			"delayLevel": "0", "originTopic": topic, "maxReconsumeTimes": "16"}, nil)
	}
	end := e.b.node.CommitLog().WriteEnd()
	if r := back(secret, "Orders"); r.Code != remoting.NoPermission || !strings.Contains(r.Remark, `topic "Secret"`) {
		t.Fatalf("send-back of another topic's message: %d %q", r.Code, r.Remark)
	}
	if e.b.node.CommitLog().WriteEnd() != end {
		t.Fatal("the refused send-back wrote")
	}
	if _, ok := e.b.meta.Group("billing"); ok {
		t.Fatal("the refused send-back created its group")
	}
	if r := back(mine, "Orders"); r.Code != remoting.Success {
		t.Fatalf("send-back of the caller's own message: %d %q", r.Code, r.Remark)
	}
}

func TestACLEndTransactionNeedsPublishOnTheHalfsTopic(t *testing.T) {
	e := aclEnv(t)
	e.createTopicAsAdmin("Orders")
	ext := sendExt("Orders", 0, map[string]string{message.PropertyTransactionPrepared: "true", message.PropertyProducerGroup: "pg",
		message.PropertyUniqKey: "U-half"})
	ext["sysFlag"] = "4"
	h := e.signedCall("appUser1", "app-secret-1", remoting.SendMessage, ext, []byte("half"))
	if h.Code != remoting.Success {
		t.Fatalf("half: %d %q", h.Code, h.Remark)
	}
	_, off, err := message.ParseOffsetMsgID(h.Ext("msgId"))
	if err != nil {
		t.Fatal(err)
	}
	end := func(ak, sk string) *remoting.Command {
		return e.signedCall(ak, sk, remoting.EndTransaction, map[string]string{"producerGroup": "pg", "tranStateTableOffset": h.Ext("queueOffset"),
			"commitLogOffset": strconv.FormatInt(off, 10), "commitOrRollback": "8", "fromTransactionCheck": "false",
			"msgId": h.Ext("transactionId"), "transactionId": h.Ext("transactionId")}, nil)
	}
	if r := end("appUser2", "app-secret-2"); r.Code != remoting.NoPermission || !strings.Contains(r.Remark, `topic "Orders"`) {
		t.Fatalf("another account committing the half: %d %q", r.Code, r.Remark)
	}
	waitFor(t, "the owner's commit", 10*time.Second, func() bool { return end("appUser1", "app-secret-1").Code == remoting.Success })
	mo := e.signedCall("appUser1", "app-secret-1", remoting.GetMaxOffset, map[string]string{"topic": "Orders", "queueId": "0"}, nil)
	if mo.Ext("offset") != "1" {
		t.Fatalf("committed message: max offset %q", mo.Ext("offset"))
	}
}

func TestACLForwardedWritesKeepTheClientsPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	if err := os.WriteFile(path, []byte(brokerTestACL), 0o600); err != nil {
		t.Fatal(err)
	}
	creds, _ := acl.ParseCredentials(`{"accessKey":"opsAdmin","secretKey":"ops-secret-1"}`)
	g := startGroupHarness(t, func(c *Config) { c.ACLEnable, c.ACLFile, c.InnerClientCredentials = true, path, creds })
	leader := leaderOf(t, g.brokers, nil)
	e := g.env
	e.b = leader
	e.createTopicAsAdmin("Orders")
	g.waitDirectory(leader)
	var follower *Broker
	for _, b := range g.brokers {
		if b != leader {
			follower = b
			break
		}
	}
	send := func(ak, sk, body string) *remoting.Command {
		ext := sendExt("Orders", 0, map[string]string{message.PropertyUniqKey: body})
		acl.SignRequest(ext, []byte(body), acl.Credentials{AccessKey: ak, SecretKey: acl.Secret(sk)})
		return e.callAddr(follower.Addr(), remoting.SendMessage, ext, []byte(body))
	}
	if r := send("appUser1", "app-secret-1", "via-follower"); r.Code != remoting.Success {
		t.Fatalf("signed send through a follower: %d %q", r.Code, r.Remark)
	}
	if r := send("appUser2", "app-secret-2", "not-allowed"); r.Code != remoting.NoPermission {
		t.Fatalf("unpermitted send through a follower: %d %q", r.Code, r.Remark)
	}
	// A half sent by appUser1; appUser2's END_TRANSACTION through a follower is
	// judged at the leader with appUser2's rights, not the member's.
	ext := sendExt("Orders", 0, map[string]string{message.PropertyTransactionPrepared: "true", message.PropertyProducerGroup: "pg",
		message.PropertyUniqKey: "U-fwd-half"})
	ext["sysFlag"] = "4"
	acl.SignRequest(ext, []byte("half"), acl.Credentials{AccessKey: "appUser1", SecretKey: "app-secret-1"})
	h := e.callAddr(leader.Addr(), remoting.SendMessage, ext, []byte("half"))
	if h.Code != remoting.Success {
		t.Fatalf("half: %d %q", h.Code, h.Remark)
	}
	_, off, _ := message.ParseOffsetMsgID(h.Ext("msgId"))
	end := map[string]string{"producerGroup": "pg", "tranStateTableOffset": h.Ext("queueOffset"), "commitLogOffset": strconv.FormatInt(off, 10),
		"commitOrRollback": "12", "fromTransactionCheck": "false", "msgId": h.Ext("transactionId"), "transactionId": h.Ext("transactionId")}
	acl.SignRequest(end, nil, acl.Credentials{AccessKey: "appUser2", SecretKey: "app-secret-2"})
	if r := e.callAddr(follower.Addr(), remoting.EndTransaction, end, nil); r.Code != remoting.NoPermission || !strings.Contains(r.Remark, "appUser2") {
		t.Fatalf("END_TRANSACTION of another's half through a follower: %d %q", r.Code, r.Remark)
	}
}

func TestACLInAGroupNeedsInnerCredentials(t *testing.T) {
	c := DefaultConfig()
	c.NamesrvAddrs = []string{"127.0.0.1:1"}
	c.ACLEnable, c.ACLFile = true, "plain_acl.yml"
	c.DLegerPeers = "n0-127.0.0.1:1;n1-127.0.0.1:2"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "innerClientAuthenticationCredentials") {
		t.Fatalf("Validate: %v", err)
	}
}
