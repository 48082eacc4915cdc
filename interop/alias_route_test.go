package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/raftmq/raftmq/interop/internal/harness"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/remoting"

	rmqadmin "github.com/raftmq/raftmq/client/admin"
)

// aliasCluster is `raftmq namesrv` and a three-member group of `raftmq broker`
// processes on loopback, started with the interop harness.
type aliasCluster struct {
	namesrv string
	brokers []*harness.Process // index = ordinal; member id n<ordinal>
}

func startAliasCluster(t *testing.T) *aliasCluster {
	t.Helper()
	ns := harness.StartNamesrv(t, "-logLevel", "warn")
	c := &aliasCluster{namesrv: ns.Addr}
	var peers []string
	addrs := make([]string, 3)
	for i := range addrs {
		addrs[i] = harness.FreeAddr(t)
		peers = append(peers, fmt.Sprintf("n%d-%s", i, harness.FreeAddr(t)))
	}
	for i, addr := range addrs {
		store := t.TempDir()
		port := addr[strings.LastIndexByte(addr, ':')+1:]
		p := harness.Start(t, "broker", harness.Options{
			Addr: addr,
			Args: func(string) []string {
				return []string{"-n", ns.Addr, "-brokerIP1", "127.0.0.1", "-listenHost", "127.0.0.1",
					"-listenPort", port, "-storePathRootDir", store,
					"-brokerName", "broker-a", "-dLegerGroup", "broker-a",
					"-dLegerPeers", strings.Join(peers, ";"), "-dLegerSelfId", fmt.Sprintf("n%d", i),
					"-logLevel", "warn"}
			},
		})
		c.brokers = append(c.brokers, p)
	}
	for _, p := range c.brokers {
		if err := p.WaitForLog("raftmq broker ready", 60*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// route fetches topic's route over the wire; nil when the namesrv has none.
func (c *aliasCluster) route(t *testing.T, cl *remoting.Client, topic string) *namesrv.TopicRouteData {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	r, err := cl.Invoke(ctx, c.namesrv, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil))
	if err != nil || r.Code != remoting.Success {
		return nil
	}
	var rd namesrv.TopicRouteData
	if err := json.Unmarshal(r.Body, &rd); err != nil {
		t.Fatalf("route of %s: %v", topic, err)
	}
	return &rd
}

// waitAliases waits until topic's route lists the group and a write alias per
// member, every member live, and returns it. Every route seen on the way must
// have brokerId 0.
func (c *aliasCluster) waitAliases(t *testing.T, topic string) *namesrv.TopicRouteData {
	t.Helper()
	cl := remoting.NewClient(remoting.ClientConfig{})
	defer cl.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if rd := c.route(t, cl, topic); rd != nil {
			for _, bd := range rd.BrokerDatas {
				if bd.BrokerAddrs[namesrv.MasterID] == "" {
					t.Fatalf("route of %s without brokerId 0: %+v", topic, rd)
				}
			}
			if len(rd.BrokerDatas) == 4 {
				return rd
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("route of %s never listed three write aliases", topic)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAliasRouteOfficialClient checks the write-alias route against the
// official Go client on a three-process group: producers get 3×N write
// queues, one alias per member; consumers get the group's N read queues;
// every acknowledged send lands in the group's queues once, and a consumer
// receives each message once; heartbeats reach every member.
//
// Until followers forward writes to the leader, a send that picks a
// follower's alias is refused with code 14 and the client's round-robin retry
// moves on to the next alias (it tries the three in turn), so every send
// still succeeds, acknowledged by the leader's alias. Once forwarding is in,
// the test also requires acknowledgements through every alias.
func TestAliasRouteOfficialClient(t *testing.T) {
	c := startAliasCluster(t)
	base := c.waitAliases(t, "DefaultCluster")
	leader := base.BrokerDatas[0].BrokerAddrs[namesrv.MasterID]

	topic := uniq("Alias")
	ra, err := rmqadmin.New([]string{c.namesrv}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	ctx := context.Background()
	if err := ra.CreateTopic(ctx, "", "broker-a", rmqadmin.TopicConfig{Topic: topic, ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}); err != nil {
		t.Fatal(err)
	}
	rd := c.waitAliases(t, topic)
	aliasAddr := map[string]string{}
	leaderAlias := ""
	for _, bd := range rd.BrokerDatas[1:] {
		aliasAddr[bd.BrokerName] = bd.BrokerAddrs[namesrv.MasterID]
		if bd.BrokerAddrs[namesrv.MasterID] == leader {
			leaderAlias = bd.BrokerName
		}
	}
	if leaderAlias == "" {
		t.Fatalf("no alias for the leader %s in %+v", leader, rd)
	}

	// The official client's view of the route.
	mqs, err := newAdmin(t, c.namesrv).FetchPublishMessageQueues(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	perAlias := map[string]int{}
	for _, mq := range mqs {
		perAlias[mq.BrokerName]++
	}
	if len(mqs) != 12 || len(perAlias) != 3 || perAlias["broker-a@n0"] != 4 || perAlias["broker-a@n1"] != 4 || perAlias["broker-a@n2"] != 4 {
		t.Fatalf("publish queues %v", perAlias)
	}
	pull, err := consumer.NewPullConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver([]string{c.namesrv})),
		consumer.WithGroupName(uniq("pull")), consumer.WithInstance(uniq("pc")))
	if err != nil {
		t.Fatal(err)
	}
	if err := pull.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"}); err != nil {
		t.Fatal(err)
	}
	if err := pull.Start(); err != nil {
		t.Fatal(err)
	}
	defer pull.Shutdown()
	sub, err := pull.GetTopicRouteInfo(topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(sub) != 4 {
		t.Fatalf("subscribe queues %v", sub)
	}
	for _, mq := range sub {
		if mq.BrokerName != "broker-a" {
			t.Fatalf("consumer sees queue %v of a write alias", mq)
		}
	}

	// Sends with the default settings (round-robin selector, 2 retries).
	p := newProducer(t, c.namesrv)
	const n = 60
	var bodies []string
	acks := map[string]int{}
	for i := 0; i < n; i++ {
		b := fmt.Sprintf("alias-%d", i)
		r := sendSync(t, p, topic, "", b)
		if _, ok := aliasAddr[r.MessageQueue.BrokerName]; !ok {
			t.Fatalf("send %q acknowledged by %q, not a write alias", b, r.MessageQueue.BrokerName)
		}
		acks[r.MessageQueue.BrokerName]++
		bodies = append(bodies, b)
	}
	t.Logf("acknowledgements per alias (leader's is %s): %v", leaderAlias, acks)
	if acks[leaderAlias] < n {
		// Some follower took a send: forwarding works, so every member must.
		for alias := range aliasAddr {
			if acks[alias] == 0 {
				t.Fatalf("forwarding works for some followers but no send went through %s: %v", alias, acks)
			}
		}
	}

	// The messages are in the group's queues, counted once.
	st, err := ra.TopicStatus(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var stored int64
	for _, q := range st {
		if q.BrokerName != "broker-a" {
			t.Fatalf("topic status lists %s", q.BrokerName)
		}
		stored += q.MaxOffset - q.MinOffset
	}
	if len(st) != 4 || stored != n {
		t.Fatalf("topic status %+v: %d stored, want %d", st, stored, n)
	}

	// A push consumer gets each message once, from the group's queues.
	col := newCollector()
	group := uniq("alias")
	startPushConsumer(t, c.namesrv, group, topic, "*", col)
	col.waitAll(t, bodies, 60*time.Second)
	col.mu.Lock()
	for b, k := range col.seen {
		if k != 1 {
			t.Errorf("%q consumed %d times", b, k)
		}
	}
	for _, m := range col.msgs {
		if m.Queue == nil || m.Queue.BrokerName != "broker-a" {
			t.Errorf("message %q consumed from %v", m.Body, m.Queue)
		}
	}
	col.mu.Unlock()

	// Its heartbeats reach every member (through the group's addresses and
	// the members' aliases): each lists the consumer.
	cl := remoting.NewClient(remoting.ClientConfig{})
	defer cl.Close()
	addrs := make([]string, 0, len(aliasAddr))
	for _, a := range aliasAddr {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	var wg sync.WaitGroup
	missing := make([]string, len(addrs))
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				r, err := cl.Invoke(cctx, a, remoting.NewRequest(remoting.GetConsumerListByGroup, map[string]string{"consumerGroup": group}, nil))
				cancel()
				if err == nil && r.Code == remoting.Success && strings.Contains(string(r.Body), "consumerIdList") && !strings.Contains(string(r.Body), "[]") {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			missing[i] = a
		}()
	}
	wg.Wait()
	for _, a := range missing {
		if a != "" {
			t.Errorf("member %s never heard of consumer group %s", a, group)
		}
	}
}
