package interop

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/raftmq/raftmq/client/admin"
	"github.com/raftmq/raftmq/interop/internal/harness"
	"github.com/raftmq/raftmq/wire"
)

// Helpers of services_test.go. Every name starts with svc so that they never
// collide with the broker tests' helpers in the same package.

// svcDelayLevels makes every delay level 1 s: the delayed-message test uses
// level 1 (1 s, as by default) and consumer retries (level 3 + reconsumeTimes)
// come back after 1 s instead of 10 s and more.
const svcDelayLevels = "1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s"

// svcServer is a `raftmq standalone` child process.
type svcServer struct {
	proc        *harness.Process
	namesrvAddr string
	brokerAddr  string
	at          svcPlace
	extra       []string
}

// svcPlace is where a standalone listens and stores: a restart reuses it.
type svcPlace struct {
	namesrvAddr, brokerAddr, raftAddr, storeDir string
}

// svcStartStandalone starts `raftmq standalone` on free loopback ports with
// short delay levels and a small commit-log segment, plus extra broker.conf
// flags (later flags override earlier ones), and waits for its ready line
// (the single-node group has elected itself by then).
func svcStartStandalone(t *testing.T, extra ...string) *svcServer {
	t.Helper()
	at := svcPlace{harness.FreeAddr(t), harness.FreeAddr(t), harness.FreeAddr(t), t.TempDir()}
	return svcStartStandaloneAt(t, at, extra...)
}

// svcStartStandaloneAt starts a standalone at a given place.
func svcStartStandaloneAt(t *testing.T, at svcPlace, extra ...string) *svcServer {
	t.Helper()
	p := harness.Start(t, "standalone", harness.Options{
		Addr: at.brokerAddr,
		Args: func(addr string) []string {
			return append([]string{
				"-storePathRootDir", at.storeDir,
				"-namesrvListen", at.namesrvAddr, "-listen", addr,
				"-dLegerPeers", "n0-" + at.raftAddr,
				"-mappedFileSizeCommitLog", "67108864",
				"-messageDelayLevel", svcDelayLevels,
				"-logLevel", svcLogLevel(),
			}, extra...)
		},
	})
	svcWaitFor(t, 60*time.Second, "standalone ready line", func() bool {
		return strings.Contains(p.Log(), "raftmq standalone ready")
	})
	return &svcServer{proc: p, namesrvAddr: at.namesrvAddr, brokerAddr: at.brokerAddr, at: at, extra: extra}
}

// restart stops the process gracefully and starts a new one on the same
// addresses and store.
func (s *svcServer) restart(t *testing.T) *svcServer {
	t.Helper()
	if err := s.proc.Stop(); err != nil {
		t.Fatalf("stopping standalone (pid %d): %v", s.proc.PID(), err)
	}
	return svcStartStandaloneAt(t, s.at, s.extra...)
}

// svcWaitFor polls cond every 50 ms until it holds; the test fails after timeout.
func svcWaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// svcEventually polls check every 50 ms until it returns nil; the test fails
// after timeout with the last error.
func svcEventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// svcRaceEnabled reports whether the test binary was built with -race.
func svcRaceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// svcName returns a unique topic or group name with the given prefix.
func svcName(prefix string) string {
	return fmt.Sprintf("Svc%s_%d_%d", prefix, time.Now().UnixNano()%1e9, instanceSeq.Add(1))
}

// svcSyncProducer is the part of the official producer the tests use.
type svcSyncProducer interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}

// svcNewProducer starts an official default producer against s.
func svcNewProducer(t *testing.T, s *svcServer) svcSyncProducer {
	t.Helper()
	p, err := producer.NewDefaultProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{s.namesrvAddr})),
		producer.WithGroupName(svcName("pg")),
		producer.WithInstanceName(svcName("p")),
		producer.WithRetry(2),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown() })
	return p
}

// svcSend sends m synchronously and requires SEND_OK with an offsetMsgId.
func svcSend(t *testing.T, p svcSyncProducer, m *primitive.Message) *primitive.SendResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r, err := p.SendSync(ctx, m)
	if err != nil {
		t.Fatalf("send %q to %s: %v", m.Body, m.Topic, err)
	}
	if r.Status != primitive.SendOK || r.OffsetMsgID == "" {
		t.Fatalf("send %q to %s: %+v", m.Body, m.Topic, r)
	}
	return r
}

// svcDelivery is one call of a consumer's callback for one message.
type svcDelivery struct {
	at  time.Time // when the callback saw it
	msg *primitive.MessageExt
}

// svcRecorder records deliveries by body and decides the consume result.
type svcRecorder struct {
	mu    sync.Mutex
	byKey map[string][]svcDelivery
	// result decides the answer for a message given how many times its body
	// was delivered before (0 the first time); nil means success.
	result func(m *primitive.MessageExt, before int) consumer.ConsumeResult
}

func newSvcRecorder(result func(m *primitive.MessageExt, before int) consumer.ConsumeResult) *svcRecorder {
	return &svcRecorder{byKey: map[string][]svcDelivery{}, result: result}
}

func (r *svcRecorder) consume(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	res := consumer.ConsumeSuccess
	for _, m := range msgs {
		b := string(m.Body)
		before := len(r.byKey[b])
		r.byKey[b] = append(r.byKey[b], svcDelivery{at: now, msg: m})
		if r.result != nil {
			if v := r.result(m, before); v != consumer.ConsumeSuccess {
				res = v
			}
		}
	}
	return res, nil
}

// deliveries returns a copy of the deliveries of body.
func (r *svcRecorder) deliveries(body string) []svcDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]svcDelivery(nil), r.byKey[body]...)
}

// bodies returns every body delivered at least once.
func (r *svcRecorder) bodies() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.byKey))
	for b := range r.byKey {
		out = append(out, b)
	}
	return out
}

// waitDeliveries waits until body was delivered at least n times and returns
// its deliveries.
func (r *svcRecorder) waitDeliveries(t *testing.T, body string, n int, timeout time.Duration) []svcDelivery {
	t.Helper()
	svcWaitFor(t, timeout, fmt.Sprintf("%d deliveries of %q", n, body), func() bool {
		return len(r.deliveries(body)) >= n
	})
	return r.deliveries(body)
}

// svcStartConsumer starts an official push consumer (clustering, from the
// first offset) of group on topic whose callback is rec.
func svcStartConsumer(t *testing.T, s *svcServer, group, topic string, rec *svcRecorder, opts ...consumer.Option) {
	t.Helper()
	base := []consumer.Option{
		consumer.WithNsResolver(primitive.NewPassthroughResolver([]string{s.namesrvAddr})),
		consumer.WithGroupName(group),
		consumer.WithInstance(svcName("c")),
		consumer.WithConsumerModel(consumer.Clustering),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	}
	pc, err := consumer.NewPushConsumer(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"}, rec.consume); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Shutdown() })
}

// svcAdmin returns raftmq's own admin client for s.
func svcAdmin(t *testing.T, s *svcServer) *admin.Client {
	t.Helper()
	a, err := admin.New([]string{s.namesrvAddr}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// svcCreateRetryTopic creates %RETRY%<group> (1 queue, read+write: the
// broker's own default) and waits until the namesrv routes it.
//
// Why: the broker creates the retry topic when the group's first heartbeat
// arrives (as RocketMQ does), but the official Go push consumer fetches the
// routes of its topics, %RETRY%<group> included, before it sends that
// heartbeat, and fetches them again only every 30 s, with a rebalance every
// 20 s: a brand-new group would see its first retry 30-50 s late (against
// RocketMQ's broker too). An existing retry topic, as in any group that ran
// before, avoids that wait.
func svcCreateRetryTopic(t *testing.T, a *admin.Client, group string) {
	t.Helper()
	topic := "%RETRY%" + group
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.CreateTopic(ctx, "", "", wire.TopicConfig{TopicName: topic, ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	svcEventually(t, 30*time.Second, "a route of "+topic, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := a.TopicRoute(ctx, topic)
		return err
	})
}

// svcTopicMessages sums the max offsets of a topic's queues: how many
// messages it holds, as nothing is deleted during a test.
func svcTopicMessages(a *admin.Client, topic string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := a.TopicStatus(ctx, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, q := range st {
		n += q.MaxOffset
	}
	return n, nil
}

func svcLogLevel() string {
	if v := os.Getenv("SVC_LOGLEVEL"); v != "" {
		return v
	}
	return "warn"
}
