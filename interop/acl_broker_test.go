package interop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/raftmq/raftmq/acl"
	"github.com/raftmq/raftmq/remoting"
)

// TestStandaloneACLOfficialClients runs `raftmq standalone -aclEnable true`:
// the official producer and push consumer with credentials send and consume;
// without credentials, with a wrong secret, or on a topic the account may not
// publish to, sends are refused.
func TestStandaloneACLOfficialClients(t *testing.T) {
	topic, group, denied := uniq("AclTopic"), uniq("AclGroup"), uniq("AclDenied")
	aclFile := filepath.Join(t.TempDir(), "plain_acl.yml")
	yml := fmt.Sprintf(`accounts:
  - accessKey: interopApp
    secretKey: interop-app-secret
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms: [%s=PUB|SUB]
    groupPerms: [%s=SUB]
  - accessKey: interopOps
    secretKey: interop-ops-secret
    admin: true
`, topic, group)
	if err := os.WriteFile(aclFile, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startStandalone(t, "-aclEnable", "true", "-aclFile", aclFile)
	creds := primitive.Credentials{AccessKey: "interopApp", SecretKey: "interop-app-secret"}

	p := newProducer(t, s.namesrvAddr, producer.WithCredentials(creds))
	var bodies []string
	for i := range 5 {
		b := fmt.Sprintf("acl-%d", i)
		sendSync(t, p, topic, "", b)
		bodies = append(bodies, b)
	}
	c := newCollector()
	startPushConsumer(t, s.namesrvAddr, group, topic, "*", c, consumer.WithCredentials(creds))
	c.waitAll(t, bodies, 60*time.Second)

	// Transactions: the half message and END_TRANSACTION pass the ACL. (The
	// check path is left out: transactionCheckInterval is not applied yet, so
	// a check takes the 30 s default.)
	l := &txnListener{check: primitive.CommitMessageState, local: func(*primitive.Message) primitive.LocalTransactionState {
		return primitive.CommitMessageState
	}}
	tp, err := producer.NewTransactionProducer(l,
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{s.namesrvAddr})),
		producer.WithGroupName(uniq("tpg")), producer.WithInstanceName(uniq("tp")), producer.WithCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tp.Shutdown() })
	for _, b := range []string{"txn-commit"} {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		r, err := tp.SendMessageInTransaction(ctx, primitive.NewMessage(topic, []byte(b)))
		cancel()
		if err != nil || r.Status != primitive.SendOK {
			t.Fatalf("transactional send %s: %v %+v", b, err, r)
		}
	}
	c.waitAll(t, []string{"txn-commit"}, 60*time.Second)

	// Admin with the admin account. The Go admin signs broker calls only
	// once a method that calls RegisterACL ran (GetAllSubscriptionGroup), and
	// CreateTopic ignores the response code, so the topic is looked up after.
	ops := primitive.Credentials{AccessKey: "interopOps", SecretKey: "interop-ops-secret"}
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{s.namesrvAddr})), admin.WithCredentials(ops))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	newTopic := uniq("AclAdminTopic")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := adm.GetAllSubscriptionGroup(ctx, s.brokerAdr, 5*time.Second); err != nil {
		t.Fatalf("GetAllSubscriptionGroup as admin: %v", err)
	}
	if err := adm.CreateTopic(ctx, admin.WithTopicCreate(newTopic), admin.WithBrokerAddrCreate(s.brokerAdr)); err != nil {
		t.Fatalf("CreateTopic as admin: %v", err)
	}
	signedAs := func(c primitive.Credentials) *remoting.Client {
		cl := remoting.NewClient(remoting.ClientConfig{Sign: acl.Signer(acl.Credentials{AccessKey: c.AccessKey, SecretKey: acl.Secret(c.SecretKey)})})
		t.Cleanup(func() { cl.Close() })
		return cl
	}
	r, err := signedAs(ops).Invoke(ctx, s.brokerAdr, remoting.NewRequest(remoting.GetAllTopicConfig, nil, nil))
	if err != nil || r.Code != remoting.Success || !strings.Contains(string(r.Body), newTopic) {
		t.Fatalf("topic created by the admin not found: %v %+v", err, r)
	}
	if r, err := signedAs(creds).Invoke(ctx, s.brokerAdr, remoting.NewRequest(remoting.GetAllTopicConfig, nil, nil)); err != nil || r.Code != remoting.NoPermission {
		t.Fatalf("GET_ALL_TOPIC_CONFIG as a user: %v %+v", err, r)
	}

	refusals := []struct {
		name  string
		topic string
		opts  []producer.Option
	}{
		{"no credentials", topic, nil},
		{"wrong secret", topic, []producer.Option{producer.WithCredentials(primitive.Credentials{AccessKey: "interopApp", SecretKey: "interop-app-wrong"})}},
		{"no PUB permission", denied, []producer.Option{producer.WithCredentials(creds)}},
	}
	for _, r := range refusals {
		rp := newProducer(t, s.namesrvAddr, append([]producer.Option{producer.WithRetry(0)}, r.opts...)...)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		_, err := rp.SendSync(ctx, primitive.NewMessage(r.topic, []byte("refused")))
		cancel()
		t.Logf("%s: %v", r.name, err)
		if err == nil || !strings.Contains(err.Error(), "CODE: 16") {
			t.Errorf("%s: err = %v, want NO_PERMISSION (16)", r.name, err)
		}
	}
	if c.has("refused") {
		t.Fatal("a refused send was consumed")
	}
}

// TestThreeNodeACLOfficialClients runs a three-member group with ACL on: the
// official producer (with credentials) spreads its sends over the members'
// write aliases, so followers forward them, re-signed with the members'
// innerClientAuthenticationCredentials; every message is stored once and
// consumed, and an unsigned producer is refused.
func TestThreeNodeACLOfficialClients(t *testing.T) {
	topic, group := uniq("AclGroupTopic"), uniq("AclGroupGroup")
	aclFile := filepath.Join(t.TempDir(), "plain_acl.yml")
	yml := fmt.Sprintf(`accounts:
  - accessKey: interopApp
    secretKey: interop-app-secret
    topicPerms: [%s=PUB|SUB]
    groupPerms: [%s=SUB]
  - accessKey: clusterMember
    secretKey: cluster-member-secret
    admin: true
`, topic, group)
	if err := os.WriteFile(aclFile, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cl := startCluster(t, "-aclEnable", "true", "-aclFile", aclFile,
		"-innerClientAuthenticationCredentials", `{"accessKey":"clusterMember","secretKey":"cluster-member-secret"}`)
	waitRouteLeader(t, cl.namesrvAddr, "TBW102", "", 60*time.Second)
	creds := primitive.Credentials{AccessKey: "interopApp", SecretKey: "interop-app-secret"}
	p := newProducer(t, cl.namesrvAddr, producer.WithCredentials(creds), producer.WithRetry(3))
	var bodies []string
	for i := range 30 {
		b := fmt.Sprintf("acl-group-%d", i)
		sendSync(t, p, topic, "", b)
		bodies = append(bodies, b)
	}
	c := newCollector()
	startPushConsumer(t, cl.namesrvAddr, group, topic, "*", c, consumer.WithCredentials(creds))
	c.waitAll(t, bodies, 90*time.Second)
	// The sends went to every member's write alias: followers forwarded them.
	rc := remoting.NewClient(remoting.ClientConfig{})
	defer rc.Close()
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	route, err := rc.Invoke(rctx, cl.namesrvAddr, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil))
	if err != nil || strings.Count(string(route.Body), `"brokerName":"broker-a@`) < 2 {
		t.Fatalf("route without write aliases for the members: %v %s", err, route.Body)
	}
	c.mu.Lock()
	for b, n := range c.seen {
		if n != 1 {
			t.Errorf("%q consumed %d times", b, n)
		}
	}
	c.mu.Unlock()

	unsigned := newProducer(t, cl.namesrvAddr, producer.WithRetry(0))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := unsigned.SendSync(ctx, primitive.NewMessage(topic, []byte("unsigned"))); err == nil || !strings.Contains(err.Error(), "CODE: 16") {
		t.Fatalf("unsigned send: %v", err)
	}
}
