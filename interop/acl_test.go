package interop

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/raftmq/raftmq/acl"
	"github.com/raftmq/raftmq/interop/internal/harness"
	"github.com/raftmq/raftmq/remoting"
)

const interopACL = `
accounts:
  - accessKey: interopProducer
    secretKey: interop-secret-1
    defaultTopicPerm: DENY
    topicPerms: [InteropACLTopic=PUB]
`

// TestACLVerifiesTheOfficialClientsSignatures sends through the official Go
// producer with primitive.Credentials (its ACL interceptor signs every
// request) to a broker stand-in whose remoting server runs acl's hook: the
// right credentials pass (with and without a SecurityToken, which that
// client sends but does not sign), a wrong secret or a topic without PUB is
// refused with NO_PERMISSION and reaches no handler.
func TestACLVerifiesTheOfficialClientsSignatures(t *testing.T) {
	accounts, err := acl.ParseAccounts([]byte(interopACL))
	if err != nil {
		t.Fatal(err)
	}
	authz := acl.NewAuthorizer(func() *acl.Accounts { return accounts }, nil)
	var (
		mu   sync.Mutex
		seen []*remoting.Command
	)
	hook := func(c *remoting.Conn, req *remoting.Command) *remoting.Command {
		mu.Lock()
		seen = append(seen, req)
		mu.Unlock()
		return authz.Authenticate(c, req)
	}
	fb := startFakeBrokerWith(t, remoting.ServerConfig{Authenticate: hook})

	srv := startInProcessNamesrv(t)
	cli := remoting.NewClient(remoting.ClientConfig{})
	defer cli.Close()
	const topic, deniedTopic = "InteropACLTopic", "InteropACLOther"
	if r := registerBroker(t, cli, srv.Addr(), fb.addr, 0, 1, topicTable(4, topic, deniedTopic)); r.Code != remoting.Success {
		t.Fatalf("register: %d %s", r.Code, r.Remark)
	}

	good := primitive.Credentials{AccessKey: "interopProducer", SecretKey: "interop-secret-1"}
	withToken := good
	withToken.SecurityToken = "session-token"
	for _, creds := range []primitive.Credentials{good, withToken} {
		if _, err := sendOnce(t, srv.Addr(), topic, producer.WithCredentials(creds)); err != nil {
			t.Fatalf("signed send (token %q) refused: %v", creds.SecurityToken, err)
		}
	}
	if fb.sends() != 2 {
		t.Fatalf("%d sends stored, want 2", fb.sends())
	}
	mu.Lock()
	for _, req := range seen {
		if req.Code == remoting.SendMessage && (req.Ext(acl.FieldAccessKey) != good.AccessKey || req.Ext(acl.FieldSignature) == "") {
			t.Fatalf("send reached the broker unsigned: %v", req.ExtFields)
		}
	}
	mu.Unlock()

	refusals := []struct {
		name   string
		topic  string
		creds  primitive.Credentials
		remark string
	}{
		{"wrong secret", topic, primitive.Credentials{AccessKey: good.AccessKey, SecretKey: "interop-secret-2"}, "signature check failed"},
		{"unknown account", topic, primitive.Credentials{AccessKey: "stranger", SecretKey: "interop-secret-1"}, "no account"},
		{"no PUB on topic", deniedTopic, good, "no PUB permission"},
	}
	for _, r := range refusals {
		_, err := sendOnce(t, srv.Addr(), r.topic, producer.WithCredentials(r.creds))
		if err == nil || !strings.Contains(err.Error(), r.remark) {
			t.Fatalf("%s: err = %v, want a refusal saying %q", r.name, err, r.remark)
		}
	}
	if _, err := sendOnce(t, srv.Addr(), topic); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("unsigned send: %v", err)
	}
	if fb.sends() != 2 {
		t.Fatalf("a refused send was stored: %d sends", fb.sends())
	}
}

// TestNamesrvBinaryACL runs `raftmq namesrv -aclEnable true`: the route
// hijack of issue 15 (an unsigned REGISTER_BROKER claiming brokerId 0) and an
// unsigned DELETE_TOPIC_IN_NAMESRV are refused; an admin-signed registration
// is accepted; the official admin client reads routes only with credentials.
func TestNamesrvBinaryACL(t *testing.T) {
	aclFile := filepath.Join(t.TempDir(), "plain_acl.yml")
	yml := `accounts:
  - accessKey: clusterAdmin
    secretKey: cluster-secret-1
    admin: true
  - accessKey: interopReader
    secretKey: reader-secret-1
    defaultTopicPerm: SUB
`
	if err := os.WriteFile(aclFile, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	ns := harness.StartNamesrv(t, "-aclEnable=true", "-aclFile", aclFile)
	const topic = "InteropACLRouteTopic"

	stranger := remoting.NewClient(remoting.ClientConfig{})
	defer stranger.Close()
	if r := registerBroker(t, stranger, ns.Addr, "10.6.6.6:10911", 0, 1<<62, topicTable(4, topic)); r.Code != remoting.NoPermission {
		t.Fatalf("unsigned REGISTER_BROKER: %d %q", r.Code, r.Remark)
	}
	reader := remoting.NewClient(remoting.ClientConfig{Sign: acl.Signer(acl.Credentials{AccessKey: "interopReader", SecretKey: "reader-secret-1"})})
	defer reader.Close()
	if r := registerBroker(t, reader, ns.Addr, "10.6.6.6:10911", 0, 1<<62, topicTable(4, topic)); r.Code != remoting.NoPermission {
		t.Fatalf("REGISTER_BROKER by a non-admin: %d %q", r.Code, r.Remark)
	}
	cluster := remoting.NewClient(remoting.ClientConfig{Sign: acl.Signer(acl.Credentials{AccessKey: "clusterAdmin", SecretKey: "cluster-secret-1"})})
	defer cluster.Close()
	if r := registerBroker(t, cluster, ns.Addr, "127.0.0.1:10911", 0, 1, topicTable(4, topic)); r.Code != remoting.Success {
		t.Fatalf("admin-signed REGISTER_BROKER: %d %q", r.Code, r.Remark)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, err := stranger.Invoke(ctx, ns.Addr, remoting.NewRequest(remoting.DeleteTopicInNamesrv, map[string]string{"topic": topic}, nil)); err != nil || r.Code != remoting.NoPermission {
		t.Fatalf("unsigned DELETE_TOPIC_IN_NAMESRV: %v %+v", err, r)
	}

	withCreds, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{ns.Addr})),
		admin.WithCredentials(primitive.Credentials{AccessKey: "interopReader", SecretKey: "reader-secret-1"}))
	if err != nil {
		t.Fatal(err)
	}
	defer withCreds.Close()
	mqs, err := withCreds.FetchPublishMessageQueues(ctx, topic)
	if err != nil || len(mqs) != 4 || mqs[0].BrokerName != testBroker {
		t.Fatalf("signed route read: %v %v (the real registration must still be in force)", mqs, err)
	}
	if _, err := newAdmin(t, ns.Addr).FetchPublishMessageQueues(ctx, topic); err == nil {
		t.Fatal("unsigned route read succeeded")
	}
}
