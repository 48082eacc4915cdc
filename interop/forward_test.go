package interop

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/raftmq/raftmq/interop/internal/harness"
	"github.com/raftmq/raftmq/remoting"
)

// forwardCluster is a namesrv and a three-node group of `raftmq broker`
// processes started through the shared harness.
type forwardCluster struct {
	ns      *harness.Process
	brokers []*harness.Process
}

func startForwardCluster(t *testing.T) *forwardCluster {
	t.Helper()
	c := &forwardCluster{ns: harness.StartNamesrv(t, "-logLevel", "warn")}
	var peers, addrs []string
	for i := 0; i < 3; i++ {
		peers = append(peers, fmt.Sprintf("n%d-%s", i, harness.FreeAddr(t)))
		addrs = append(addrs, harness.FreeAddr(t))
	}
	for i, addr := range addrs {
		port := addr[strings.LastIndexByte(addr, ':')+1:]
		c.brokers = append(c.brokers, harness.Start(t, "broker", harness.Options{
			Addr: addr,
			Args: func(string) []string {
				return []string{"-n", c.ns.Addr, "-brokerIP1", "127.0.0.1", "-brokerIP2", "127.0.0.1", "-listenHost", "127.0.0.1",
					"-listenPort", port, "-storePathRootDir", t.TempDir(), "-brokerName", "broker-a", "-dLegerGroup", "broker-a",
					"-dLegerPeers", strings.Join(peers, ";"), "-dLegerSelfId", fmt.Sprintf("n%d", i), "-logLevel", "warn"}
			},
		}))
	}
	return c
}

// routeHasWriteAliases reports whether the namesrv publishes per-member write
// aliases (broker-a@<member>) for topic.
func routeHasWriteAliases(t *testing.T, namesrv, topic string) bool {
	cl := remoting.NewClient(remoting.ClientConfig{})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	r, err := cl.Invoke(ctx, namesrv, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil))
	return err == nil && r.Code == 0 && strings.Contains(string(r.Body), "broker-a@")
}

// TestForwardLeaderKill9SendsResume kills -9 the leader of a three-node
// group of processes while one official producer (default settings) calls
// SendSync in a loop, and shows that sends resume and nothing acknowledged
// is lost. It logs the ack gap and the failed sends: with the namesrv's
// write aliases, sends go to every member and the survivors forward them to
// the new leader, so the gap is about the election time; without aliases
// the client knows only the leader's address and waits for its next 30 s
// route refresh.
func TestForwardLeaderKill9SendsResume(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a leader and waits for the producer to resume")
	}
	c := startForwardCluster(t)
	topic := uniq("Fwd")
	leader := waitRouteLeader(t, c.ns.Addr, "TBW102", "", 60*time.Second)
	p := newProducer(t, c.ns.Addr)
	sendSync(t, p, topic, "", "warmup")
	aliases := routeHasWriteAliases(t, c.ns.Addr, topic)

	var (
		mu                 sync.Mutex
		acked              = []string{"warmup"}
		ackTimes           []time.Time
		killedAt           time.Time
		ackedPost          int
		failed, failedPost int
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			body := fmt.Sprintf("fwd-%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(body)))
			cancel()
			now := time.Now()
			mu.Lock()
			if err != nil || r.Status != primitive.SendOK {
				failed++
				if !killedAt.IsZero() {
					failedPost++
				}
				mu.Unlock()
				// The client fails at once without a route: do not spin.
				time.Sleep(10 * time.Millisecond)
				continue
			}
			acked = append(acked, body)
			ackTimes = append(ackTimes, now)
			if !killedAt.IsZero() && now.After(killedAt) {
				ackedPost++
			}
			mu.Unlock()
		}
	}()
	waitUntil := func(what string, timeout time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			mu.Lock()
			ok := cond()
			mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				close(stop)
				<-done
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitUntil("acks before the kill", 30*time.Second, func() bool { return len(acked) >= 100 })
	var victim *harness.Process
	for _, b := range c.brokers {
		if b.Addr == leader {
			victim = b
		}
	}
	if victim == nil {
		t.Fatalf("leader %s is none of the members", leader)
	}
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	victim.Kill()
	// Without aliases the producer resumes only after its 30 s route refresh.
	waitUntil("acks after the kill", 90*time.Second, func() bool { return ackedPost >= 100 })
	close(stop)
	<-done

	mu.Lock()
	bodies := append([]string(nil), acked...)
	// The ack gap: the longest time without an acknowledgement, from the
	// last ack before the kill on.
	var gap time.Duration
	for i := 1; i < len(ackTimes); i++ {
		if ackTimes[i].After(killedAt) {
			gap = max(gap, ackTimes[i].Sub(ackTimes[i-1]))
		}
	}
	t.Logf("write aliases in the route: %v; ack gap across kill -9 of the leader %v; %d sends failed after the kill (%d in all); %d acked",
		aliases, gap.Round(time.Millisecond), failedPost, failed, len(bodies))
	mu.Unlock()

	col := newCollector()
	startPushConsumer(t, c.ns.Addr, uniq("fwd"), topic, "*", col)
	col.waitAll(t, bodies, 90*time.Second)
	dups := 0
	col.mu.Lock()
	for _, n := range col.seen {
		if n > 1 {
			dups++
		}
	}
	col.mu.Unlock()
	t.Logf("every acknowledged message consumed; %d bodies delivered more than once", dups)
}
