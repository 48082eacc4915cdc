package acl

import (
	"encoding/json"
	"errors"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/remoting"
)

const testAccounts = `
accounts:
  - accessKey: producer1
    secretKey: producer-secret
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms: [orders=PUB, audit=PUB|SUB, blocked=DENY]
  - accessKey: consumer1
    secretKey: consumer-secret
    defaultTopicPerm: SUB
    groupPerms: [billing=SUB, other=DENY]
  - accessKey: office01
    secretKey: office-secret
    defaultTopicPerm: PUB|SUB
    defaultGroupPerm: PUB|SUB
    whiteRemoteAddress: 10.0.0.0/8
  - accessKey: admin01
    secretKey: admin-secret
    admin: true
  - accessKey: admin02
    secretKey: admin2-secret
    admin: true
    topicPerms: [secret=DENY]
`

var testSecrets = map[string]Secret{
	"producer1": "producer-secret", "consumer1": "consumer-secret", "office01": "office-secret",
	"admin01": "admin-secret", "admin02": "admin2-secret",
}

func testAuthorizer(t testing.TB) *Authorizer {
	a := mustParse(t, testAccounts)
	return NewAuthorizer(func() *Accounts { return a }, nil)
}

// signed builds a request signed by accessKey the way the clients sign.
func signed(accessKey string, code int32, ext map[string]string, body []byte) *remoting.Command {
	ext = maps.Clone(ext)
	if ext == nil {
		ext = map[string]string{}
	}
	SignRequest(ext, body, Credentials{AccessKey: accessKey, SecretKey: testSecrets[accessKey]})
	return remoting.NewRequest(code, ext, body)
}

func heartbeat(t testing.TB, group string, topics ...string) []byte {
	type sub struct {
		Topic string `json:"topic"`
	}
	type consumer struct {
		GroupName           string `json:"groupName"`
		SubscriptionDataSet []sub  `json:"subscriptionDataSet"`
	}
	c := consumer{GroupName: group}
	for _, tp := range topics {
		c.SubscriptionDataSet = append(c.SubscriptionDataSet, sub{tp})
	}
	b, err := json.Marshal(map[string]any{"clientID": "c1", "consumerDataSet": []consumer{c}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAuthorizerDecisions(t *testing.T) {
	a := testAuthorizer(t)
	pull := func(topic, group string) map[string]string {
		return map[string]string{"topic": topic, "consumerGroup": group, "queueId": "0"}
	}
	cases := []struct {
		name   string
		remote string
		req    *remoting.Command
		allow  bool
		reason string // in the refusal
	}{
		{"v1 send with PUB", "1.2.3.4:5", signed("producer1", remoting.SendMessage, map[string]string{"topic": "orders"}, []byte("m")), true, ""},
		{"v2 send with PUB", "1.2.3.4:5", signed("producer1", remoting.SendMessageV2, map[string]string{"b": "orders"}, []byte("m")), true, ""},
		{"batch without PUB", "1.2.3.4:5", signed("producer1", remoting.SendBatchMessage, map[string]string{"b": "payments"}, nil), false, `no PUB permission on topic "payments"`},
		{"send to DENY topic", "1.2.3.4:5", signed("producer1", remoting.SendMessage, map[string]string{"topic": "blocked"}, nil), false, "no PUB permission"},
		{"v2 send checks b, not topic", "1.2.3.4:5", signed("producer1", remoting.SendMessageV2, map[string]string{"b": "payments", "topic": "orders"}, nil), false, "payments"},
		{"pull without SUB on topic", "1.2.3.4:5", signed("producer1", remoting.PullMessage, pull("orders", "g"), nil), false, "no SUB permission"},
		{"pull with SUB", "1.2.3.4:5", signed("consumer1", remoting.PullMessage, pull("orders", "billing"), nil), true, ""},
		{"pull with a DENY group", "1.2.3.4:5", signed("consumer1", remoting.PullMessage, pull("orders", "other"), nil), false, `group "other"`},
		{"pull of a retry topic is its group's", "1.2.3.4:5", signed("consumer1", remoting.PullMessage, pull("%RETRY%billing", "billing"), nil), true, ""},
		{"retry topic of a denied group", "1.2.3.4:5", signed("consumer1", remoting.PullMessage, pull("%RETRY%other", "billing"), nil), false, `group "other"`},
		{"send back needs the group", "1.2.3.4:5", signed("consumer1", remoting.ConsumerSendMsgBack, map[string]string{"group": "other"}, nil), false, `group "other"`},
		{"heartbeat of own group", "1.2.3.4:5", signed("consumer1", remoting.HeartBeat, nil, heartbeat(t, "billing", "orders", "%RETRY%billing")), true, ""},
		{"heartbeat of a denied group", "1.2.3.4:5", signed("consumer1", remoting.HeartBeat, nil, heartbeat(t, "other", "orders")), false, `group "other"`},
		{"heartbeat that is not JSON", "1.2.3.4:5", signed("consumer1", remoting.HeartBeat, nil, []byte("{")), false, "cannot read"},
		{"producer heartbeat", "1.2.3.4:5", signed("producer1", remoting.HeartBeat, nil, []byte(`{"clientID":"p","producerDataSet":[{"groupName":"pg"}]}`)), true, ""},
		{"lock of a denied group", "1.2.3.4:5", signed("consumer1", remoting.LockBatchMQ, nil, []byte(`{"consumerGroup":"other","mqSet":[{"topic":"orders"}]}`)), false, `group "other"`},
		{"route query needs only a signature", "1.2.3.4:5", signed("producer1", remoting.GetRouteInfoByTopic, map[string]string{"topic": "x"}, nil), true, ""},
		{"admin code from a user", "1.2.3.4:5", signed("consumer1", remoting.DeleteTopicInBroker, map[string]string{"topic": "orders"}, nil), false, "needs an admin account"},
		{"route hijack from a user", "1.2.3.4:5", signed("producer1", remoting.RegisterBroker, nil, nil), false, "needs an admin account"},
		{"leadership transfer from a user", "1.2.3.4:5", signed("producer1", remoting.RaftTransferLeader, nil, nil), false, "needs an admin account"},
		{"unknown code needs admin", "1.2.3.4:5", signed("producer1", 31337, nil, nil), false, "needs an admin account"},
		{"admin code from an admin", "1.2.3.4:5", signed("admin01", remoting.DeleteTopicInBroker, map[string]string{"topic": "orders"}, nil), true, ""},
		{"admin uses any resource", "1.2.3.4:5", signed("admin01", remoting.SendMessage, map[string]string{"topic": "anything"}, nil), true, ""},
		{"admin with lists is bound by them", "1.2.3.4:5", signed("admin02", remoting.SendMessage, map[string]string{"topic": "secret"}, nil), false, "no PUB permission"},
		{"whitelisted account from its network", "10.1.2.3:5", signed("office01", remoting.SendMessage, map[string]string{"topic": "x"}, nil), true, ""},
		{"whitelisted account from elsewhere", "11.1.2.3:5", signed("office01", remoting.SendMessage, map[string]string{"topic": "x"}, nil), false, "may not be used from 11.1.2.3"},
		{"unsigned", "10.1.2.3:5", remoting.NewRequest(remoting.SendMessage, map[string]string{"topic": "x"}, nil), false, "not signed"},
		{"unknown account", "1.2.3.4:5", signed("nobody1", remoting.SendMessage, map[string]string{"topic": "orders"}, nil), false, `no account for accessKey "nobody1"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := a.Check(c.remote, c.req)
			if c.allow {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var r *Refusal
			if !errors.As(err, &r) || !strings.Contains(r.Reason, c.reason) {
				t.Fatalf("err = %v, want a refusal saying %q", err, c.reason)
			}
		})
	}
}

func TestAuthorizerRefusesWrongSecretAndTampering(t *testing.T) {
	a := testAuthorizer(t)
	ext := map[string]string{"topic": "orders", "queueId": "1"}
	SignRequest(ext, []byte("m"), Credentials{AccessKey: "producer1", SecretKey: "not-the-secret"})
	if err := a.Check("1.2.3.4:1", remoting.NewRequest(remoting.SendMessage, ext, []byte("m"))); err == nil || !strings.Contains(err.Error(), "signature check failed") {
		t.Fatalf("wrong secret: %v", err)
	}
	// A correctly signed request whose topic was changed on the way.
	req := signed("producer1", remoting.SendMessage, map[string]string{"topic": "orders"}, []byte("m"))
	req.ExtFields["topic"] = "audit"
	if err := a.Check("1.2.3.4:1", req); err == nil {
		t.Fatal("tampered request accepted")
	}
	// A refusal never carries the secret.
	if err := a.Check("1.2.3.4:1", req); strings.Contains(err.Error(), "producer-secret") {
		t.Fatalf("refusal leaks the secret: %v", err)
	}
}

func TestEveryRemotingCodeIsClassified(t *testing.T) {
	r := rules()
	for _, c := range remoting.RequestCodes() {
		if _, ok := r[c]; !ok {
			t.Errorf("request code %d (%s) has no ACL rule", c, remoting.CodeName(c))
		}
	}
}

func TestSendWindowRefusesStaleAndFutureSends(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	accounts := mustParse(t, testAccounts)
	a := newAuthorizer(func() *Accounts { return accounts }, nil, func() time.Time { return now }, SendWindow(2*time.Minute))
	at := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).UnixMilli(), 10) }
	cases := []struct {
		name  string
		req   *remoting.Command
		allow bool
	}{
		{"fresh v1", signed("producer1", remoting.SendMessage, map[string]string{"topic": "orders", "bornTimestamp": at(-time.Second)}, nil), true},
		{"fresh v2", signed("producer1", remoting.SendMessageV2, map[string]string{"b": "orders", "g": at(time.Minute)}, nil), true},
		{"stale v1 (a replay)", signed("producer1", remoting.SendMessage, map[string]string{"topic": "orders", "bornTimestamp": at(-3 * time.Minute)}, nil), false},
		{"stale batch", signed("producer1", remoting.SendBatchMessage, map[string]string{"b": "orders", "g": at(-time.Hour)}, nil), false},
		{"far future", signed("producer1", remoting.SendMessageV2, map[string]string{"b": "orders", "g": at(3 * time.Minute)}, nil), false},
		{"no timestamp", signed("producer1", remoting.SendMessage, map[string]string{"topic": "orders"}, nil), false},
		{"absurd timestamp", signed("producer1", remoting.SendMessage, map[string]string{"topic": "orders", "bornTimestamp": "9223372036854775807"}, nil), false},
		{"not a send", signed("consumer1", remoting.PullMessage, map[string]string{"topic": "orders", "consumerGroup": "billing"}, nil), true},
	}
	for _, c := range cases {
		err := a.Check("1.2.3.4:1", c.req)
		if (err == nil) != c.allow {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// Without the option, age is not checked.
	plain := newAuthorizer(func() *Accounts { return accounts }, nil, func() time.Time { return now })
	if err := plain.Check("1.2.3.4:1", cases[2].req); err != nil {
		t.Fatalf("no SendWindow: %v", err)
	}
}

func TestMayUseTopic(t *testing.T) {
	a := testAuthorizer(t)
	req := func(ak string) *remoting.Command {
		return signed(ak, remoting.ConsumerSendMsgBack, map[string]string{"group": "billing"}, nil)
	}
	for _, c := range []struct {
		ak, topic string
		ok        bool
	}{
		{"consumer1", "orders", true},         // defaultTopicPerm SUB
		{"consumer1", "%RETRY%billing", true}, // its group
		{"consumer1", "%RETRY%other", false},  // a denied group's retry topic
		{"producer1", "orders", false},        // PUB only
		{"producer1", "audit", true},          // PUB|SUB
		{"admin01", "anything", true},         // admin without lists
		{"admin02", "secret", false},          // admin bound by its lists
		{"nobody1", "orders", false},          // unknown account
	} {
		if err := a.MayUseTopic(req(c.ak), c.topic, PermSub); (err == nil) != c.ok {
			t.Errorf("%s on %s: %v", c.ak, c.topic, err)
		}
	}
}

func TestMayUseTopicForPublish(t *testing.T) {
	a := testAuthorizer(t)
	req := signed("producer1", remoting.EndTransaction, nil, nil)
	if err := a.MayUseTopic(req, "orders", PermPub); err != nil {
		t.Fatal(err)
	}
	if err := a.MayUseTopic(req, "payments", PermPub); err == nil {
		t.Fatal("PUB on a topic without permission")
	}
}

func FuzzAuthorizerCheck(f *testing.F) {
	f.Add(int32(remoting.HeartBeat), "topic", "orders", []byte(`{"consumerDataSet":[{"groupName":"billing","subscriptionDataSet":[{"topic":"x"}]}]}`), true)
	f.Add(int32(remoting.LockBatchMQ), "consumerGroup", "other", []byte(`{"mqSet":[{"topic":1}]}`), true)
	f.Add(int32(remoting.SendMessageV2), "b", "%RETRY%", []byte{0xff}, false)
	a := testAuthorizer(f)
	f.Fuzz(func(t *testing.T, code int32, key, value string, body []byte, sign bool) {
		ext := map[string]string{key: value}
		var req *remoting.Command
		if sign {
			req = signed("consumer1", code, ext, body)
		} else {
			req = remoting.NewRequest(code, ext, body)
		}
		err := a.Check("10.0.0.1:1", req)
		if err == nil && !sign {
			t.Fatalf("unsigned request allowed: code %d ext %q", code, ext)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "acl: ") {
			t.Fatalf("unexpected error: %v", err)
		}
	})
}

func TestForwardedRequestsCarryTheClientsPermissions(t *testing.T) {
	a := testAuthorizer(t)
	member := ForwardSigner(Credentials{AccessKey: "admin01", SecretKey: testSecrets["admin01"]})
	forward := func(client *remoting.Command) *remoting.Command {
		ext := maps.Clone(client.ExtFields)
		ext["raftmqForwarded"] = "1" // what a member adds, breaking the client's signature
		fr := remoting.NewRequest(client.Code, ext, client.Body)
		member(fr)
		return fr
	}
	// consumer1 may not publish to orders: neither directly nor through a member.
	direct := signed("consumer1", remoting.SendMessage, map[string]string{"topic": "orders"}, []byte("m"))
	if a.Check("1.2.3.4:1", direct) == nil {
		t.Fatal("consumer1 published directly")
	}
	if err := a.Check("10.9.9.9:1", forward(direct)); err == nil || !strings.Contains(err.Error(), `"consumer1"`) {
		t.Fatalf("forwarded for consumer1: %v", err)
	}
	// producer1 may; the forwarded request passes and its own checks use producer1.
	ok := forward(signed("producer1", remoting.SendMessage, map[string]string{"topic": "orders"}, []byte("m")))
	if err := a.Check("10.9.9.9:1", ok); err != nil {
		t.Fatalf("forwarded for producer1: %v", err)
	}
	if err := a.MayUseTopic(ok, "payments", PermPub); err == nil {
		t.Fatal("handler check used the member's admin rights")
	}
	// Only an admin's on-behalf-of counts: a user naming an admin gains nothing.
	sneaky := signed("consumer1", remoting.DeleteTopicInBroker, map[string]string{"topic": "orders", FieldOnBehalfOf: "admin01"}, nil)
	if a.Check("1.2.3.4:1", sneaky) == nil {
		t.Fatal("a user escalated through raftmqOnBehalfOf")
	}
	// An admin naming an unknown account is refused.
	ghost := signed("admin01", remoting.SendMessage, map[string]string{"topic": "orders", FieldOnBehalfOf: "ghost01"}, nil)
	if a.Check("1.2.3.4:1", ghost) == nil {
		t.Fatal("unknown on-behalf-of account accepted")
	}
}
