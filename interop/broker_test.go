package interop

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// Tests of the broker with the official Go client, unchanged, against
// `raftmq standalone` and a three-node group of `raftmq broker` processes.

var instanceSeq atomic.Int64

func uniq(prefix string) string {
	return fmt.Sprintf("%s%d_%d", prefix, time.Now().UnixNano()%1e9, instanceSeq.Add(1))
}

func newProducer(t *testing.T, namesrv string, opts ...producer.Option) interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
	SendAsync(context.Context, func(context.Context, *primitive.SendResult, error), ...*primitive.Message) error
	SendOneWay(context.Context, ...*primitive.Message) error
	Shutdown() error
} {
	t.Helper()
	base := []producer.Option{
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{namesrv})),
		producer.WithGroupName(uniq("pg")),
		producer.WithInstanceName(uniq("p")),
		producer.WithRetry(2),
	}
	p, err := producer.NewDefaultProducer(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown() })
	return p
}

// collector records consumed bodies.
type collector struct {
	mu   sync.Mutex
	seen map[string]int
	msgs []*primitive.MessageExt
}

func newCollector() *collector { return &collector{seen: map[string]int{}} }

func (c *collector) add(msgs ...*primitive.MessageExt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		c.seen[string(m.Body)]++
		c.msgs = append(c.msgs, m)
	}
}

func (c *collector) has(body string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[body] > 0
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// waitAll waits until every body was consumed.
func (c *collector) waitAll(t *testing.T, bodies []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		missing := 0
		first := ""
		for _, b := range bodies {
			if !c.has(b) {
				if missing == 0 {
					first = b
				}
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages not consumed after %v (first missing %q)", missing, len(bodies), timeout, first)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func startPushConsumer(t *testing.T, namesrv, group, topic, expr string, c *collector, opts ...consumer.Option) interface{ Shutdown() error } {
	t.Helper()
	base := []consumer.Option{
		consumer.WithNsResolver(primitive.NewPassthroughResolver([]string{namesrv})),
		consumer.WithGroupName(group),
		consumer.WithInstance(uniq("c")),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	}
	pc, err := consumer.NewPushConsumer(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	err = pc.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: expr},
		func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			c.add(msgs...)
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	var mu sync.Mutex
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			pc.Shutdown()
		}
	})
	return shutdownOnce{f: func() error {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		return pc.Shutdown()
	}}
}

type shutdownOnce struct{ f func() error }

func (s shutdownOnce) Shutdown() error { return s.f() }

// sendSync sends one message and fails the test on error.
func sendSync(t *testing.T, p interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}, topic, tag, body string) *primitive.SendResult {
	t.Helper()
	m := primitive.NewMessage(topic, []byte(body))
	if tag != "" {
		m.WithTag(tag)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r, err := p.SendSync(ctx, m)
	if err != nil {
		t.Fatalf("send %q: %v", body, err)
	}
	if r.Status != primitive.SendOK || r.OffsetMsgID == "" {
		t.Fatalf("send %q: %+v", body, r)
	}
	return r
}

func TestStandaloneSendModesAndClusteringConsumer(t *testing.T) {
	s := startStandalone(t)
	topic := uniq("SendModes")
	p := newProducer(t, s.namesrvAddr)
	var bodies []string
	// sync: the first send also auto-creates the topic from TBW102.
	for i := 0; i < 10; i++ {
		b := fmt.Sprintf("sync-%d", i)
		sendSync(t, p, topic, "", b)
		bodies = append(bodies, b)
	}
	// async
	var wg sync.WaitGroup
	var asyncErr atomic.Value
	for i := 0; i < 10; i++ {
		b := fmt.Sprintf("async-%d", i)
		bodies = append(bodies, b)
		wg.Add(1)
		err := p.SendAsync(context.Background(), func(_ context.Context, r *primitive.SendResult, err error) {
			defer wg.Done()
			if err != nil {
				asyncErr.Store(err)
			} else if r.Status != primitive.SendOK {
				asyncErr.Store(fmt.Errorf("status %v", r.Status))
			}
		}, primitive.NewMessage(topic, []byte(b)))
		if err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if e := asyncErr.Load(); e != nil {
		t.Fatalf("async send: %v", e)
	}
	// oneway
	for i := 0; i < 10; i++ {
		b := fmt.Sprintf("oneway-%d", i)
		bodies = append(bodies, b)
		if err := p.SendOneWay(context.Background(), primitive.NewMessage(topic, []byte(b))); err != nil {
			t.Fatal(err)
		}
	}
	// batch
	var batch []string
	for i := 0; i < 10; i++ {
		batch = append(batch, fmt.Sprintf("batch-%d", i))
	}
	sendBatchSync(t, p, topic, batch)
	bodies = append(bodies, batch...)
	// A large body (compressed by the client) survives unchanged.
	big := strings.Repeat("0123456789abcdef", 1024) + "-big"
	sendSync(t, p, topic, "", big)
	bodies = append(bodies, big)

	c := newCollector()
	startPushConsumer(t, s.namesrvAddr, uniq("cg"), topic, "*", c, consumer.WithConsumerModel(consumer.Clustering))
	c.waitAll(t, bodies, 60*time.Second)
}

func TestStandaloneBroadcastingAndTags(t *testing.T) {
	s := startStandalone(t)
	topic := uniq("Tags")
	p := newProducer(t, s.namesrvAddr)
	sendSync(t, p, topic, "TagA", "warmup-A") // creates the topic
	group := uniq("bcast")
	c1, c2 := newCollector(), newCollector()
	startPushConsumer(t, s.namesrvAddr, group, topic, "*", c1, consumer.WithConsumerModel(consumer.BroadCasting))
	startPushConsumer(t, s.namesrvAddr, group, topic, "*", c2, consumer.WithConsumerModel(consumer.BroadCasting))
	tagged := newCollector()
	startPushConsumer(t, s.namesrvAddr, uniq("tagged"), topic, "TagB || TagC", tagged, consumer.WithConsumerModel(consumer.Clustering))

	var all, wantTagged []string
	for i := 0; i < 30; i++ {
		tag := []string{"TagA", "TagB", "TagC"}[i%3]
		b := fmt.Sprintf("%s-%d", tag, i)
		sendSync(t, p, topic, tag, b)
		all = append(all, b)
		if tag != "TagA" {
			wantTagged = append(wantTagged, b)
		}
	}
	c1.waitAll(t, all, 60*time.Second)
	c2.waitAll(t, all, 60*time.Second)
	tagged.waitAll(t, wantTagged, 60*time.Second)
	tagged.mu.Lock()
	defer tagged.mu.Unlock()
	for _, m := range tagged.msgs {
		if m.GetTags() == "TagA" {
			t.Fatalf("tag filter delivered %q", m.Body)
		}
	}
}

func TestStandaloneOrderlyConsumerKeepsPerKeyOrder(t *testing.T) {
	s := startStandalone(t)
	topic := uniq("Orderly")
	p := newProducer(t, s.namesrvAddr, producer.WithQueueSelector(producer.NewHashQueueSelector()))
	sendSync(t, p, topic, "", "warmup")
	const keys, perKey = 4, 25
	var mu sync.Mutex
	got := map[string][]int{}
	var total atomic.Int64
	pc, err := consumer.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver([]string{s.namesrvAddr})),
		consumer.WithGroupName(uniq("orderly")),
		consumer.WithInstance(uniq("c")),
		consumer.WithConsumerOrder(true),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = pc.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			parts := strings.Split(string(m.Body), ":")
			if len(parts) != 2 {
				continue
			}
			n, _ := strconv.Atoi(parts[1])
			got[parts[0]] = append(got[parts[0]], n)
			total.Add(1)
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Shutdown() })
	for i := 0; i < perKey; i++ {
		for k := 0; k < keys; k++ {
			key := fmt.Sprintf("key%d", k)
			m := primitive.NewMessage(topic, []byte(fmt.Sprintf("%s:%d", key, i))).WithShardingKey(key)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			if _, err := p.SendSync(ctx, m); err != nil {
				cancel()
				t.Fatal(err)
			}
			cancel()
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for total.Load() < keys*perKey {
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d of %d", total.Load(), keys*perKey)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for k, seq := range got {
		for i := 1; i < len(seq); i++ {
			if seq[i] < seq[i-1] {
				t.Fatalf("key %s out of order: %v", k, seq)
			}
		}
	}
}

func TestStandaloneOffsetsSurviveConsumerRestart(t *testing.T) {
	s := startStandalone(t)
	topic := uniq("Restart")
	group := uniq("restart")
	p := newProducer(t, s.namesrvAddr)
	var first []string
	for i := 0; i < 20; i++ {
		b := fmt.Sprintf("first-%d", i)
		sendSync(t, p, topic, "", b)
		first = append(first, b)
	}
	c1 := newCollector()
	pc1 := startPushConsumer(t, s.namesrvAddr, group, topic, "*", c1)
	c1.waitAll(t, first, 60*time.Second)
	// The client commits offsets every 5 s and on shutdown.
	time.Sleep(6 * time.Second) // wait one client persist period: the client has no hook to await
	if err := pc1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	var second []string
	for i := 0; i < 20; i++ {
		b := fmt.Sprintf("second-%d", i)
		sendSync(t, p, topic, "", b)
		second = append(second, b)
	}
	c2 := newCollector()
	startPushConsumer(t, s.namesrvAddr, group, topic, "*", c2)
	c2.waitAll(t, second, 60*time.Second)
	for _, b := range first {
		if c2.has(b) {
			t.Fatalf("%q consumed again after restart: offsets were not kept", b)
		}
	}
}

func TestThreeNodeGroupLeaderKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node failover takes up to a minute")
	}
	c := startCluster(t)
	topic := uniq("Failover")
	leader := waitRouteLeader(t, c.namesrvAddr, "TBW102", "", 60*time.Second)
	p := newProducer(t, c.namesrvAddr, producer.WithRetry(3))
	sendSync(t, p, topic, "", "warmup")

	var (
		mu           sync.Mutex
		acked        = []string{"warmup"}
		killedAt     time.Time
		firstAfter   time.Duration
		ackedAfter   int
		stop         = make(chan struct{})
		wg           sync.WaitGroup
		seq          atomic.Int64
		sendFailures atomic.Int64
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				b := fmt.Sprintf("fo-%d", seq.Add(1))
				started := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				r, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(b)))
				cancel()
				if err != nil || r.Status != primitive.SendOK {
					sendFailures.Add(1)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked = append(acked, b)
				// Only sends begun after the kill measure the failover.
				if !killedAt.IsZero() && started.After(killedAt) {
					if ackedAfter == 0 {
						firstAfter = time.Since(killedAt)
					}
					ackedAfter++
				}
				mu.Unlock()
			}
		}()
	}
	waitCount := func(what string, timeout time.Duration, cond func() bool) {
		deadline := time.Now().Add(timeout)
		for !cond() {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitCount("acks before the kill", 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 200 })
	var victim *proc
	for i, a := range c.addrs {
		if a == leader {
			victim = c.brokers[i]
		}
	}
	if victim == nil {
		t.Fatalf("leader %s is none of %v", leader, c.addrs)
	}
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	victim.kill()
	newLeader := waitRouteLeader(t, c.namesrvAddr, topic, leader, 30*time.Second)
	t.Logf("leader %s killed; namesrv names %s after %v", leader, newLeader, time.Since(killedAt))
	waitCount("acks after the kill", 90*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return ackedAfter >= 200 })
	close(stop)
	wg.Wait()
	mu.Lock()
	bodies := append([]string(nil), acked...)
	t.Logf("first successful send %v after SIGKILL of the leader; %d acked in total, %d failed attempts", firstAfter, len(bodies), sendFailures.Load())
	mu.Unlock()

	col := newCollector()
	startPushConsumer(t, c.namesrvAddr, uniq("fo"), topic, "*", col)
	col.waitAll(t, bodies, 90*time.Second)
}
