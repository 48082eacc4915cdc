package interop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
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
