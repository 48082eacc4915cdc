package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/raftmq/raftmq/remoting"
)

// consumeClock records when each message body was first consumed, and on
// which queue.
type consumeClock struct {
	mu    sync.Mutex
	at    map[string]time.Time
	seq   []time.Time
	queue map[int][]time.Time
	dups  int
}

func newConsumeClock() *consumeClock {
	return &consumeClock{at: map[string]time.Time{}, queue: map[int][]time.Time{}}
}

func (c *consumeClock) consume(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		if _, seen := c.at[string(m.Body)]; seen {
			c.dups++
			continue
		}
		c.at[string(m.Body)] = now
		c.seq = append(c.seq, now)
		if m.Queue != nil {
			c.queue[m.Queue.QueueId] = append(c.queue[m.Queue.QueueId], now)
		}
	}
	return consumer.ConsumeSuccess, nil
}

func (c *consumeClock) count() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.seq) }

// longestGap is the longest time without a newly consumed message from
// from on (counting from from itself), and how many came after from.
func longestGap(seq []time.Time, from time.Time) (time.Duration, int) {
	ts := append([]time.Time(nil), seq...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	var gap time.Duration
	prev, after := from, 0
	for _, t := range ts {
		if t.Before(from) {
			continue
		}
		gap = max(gap, t.Sub(prev))
		prev = t
		after++
	}
	return gap, after
}

// gaps returns the longest pause from from on over all queues together and
// the longest of any single queue that still had messages to consume.
func (c *consumeClock) gaps(from time.Time) (overall, perQueue time.Duration, after int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	overall, after = longestGap(c.seq, from)
	for _, ts := range c.queue {
		if g, n := longestGap(ts, from); n > 0 {
			perQueue = max(perQueue, g)
		}
	}
	return overall, perQueue, after
}

// sendBatchSync sends bodies as one batch and fails the test on error.
func sendBatchSync(t *testing.T, p interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}, topic string, bodies []string) {
	t.Helper()
	var batch []*primitive.Message
	for _, b := range bodies {
		batch = append(batch, primitive.NewMessage(topic, []byte(b)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r, err := p.SendSync(ctx, batch...)
	if err != nil || r.Status != primitive.SendOK {
		t.Fatalf("batch send of %d: %v %+v", len(bodies), err, r)
	}
}

// getTotals asks every member how many messages it has served to pulls.
func getTotals(t *testing.T, addrs []string) []int64 {
	t.Helper()
	cl := remoting.NewClient(remoting.ClientConfig{})
	defer cl.Close()
	out := make([]int64, len(addrs))
	for i, a := range addrs {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		r, err := cl.Invoke(ctx, a, remoting.NewRequest(remoting.GetBrokerRuntimeInfo, nil, nil))
		cancel()
		if err != nil || r.Code != 0 {
			continue // a killed member
		}
		var info struct {
			Table map[string]string `json:"table"`
		}
		if err := json.Unmarshal(r.Body, &info); err != nil {
			t.Fatalf("runtime info of %s: %v", a, err)
		}
		out[i], _ = strconv.ParseInt(info.Table["msgGetTotalTodayNow"], 10, 64)
	}
	return out
}

// followerReadTrial runs the official push consumer against a three-process
// group while a producer sends a message every 5 ms, ends member
// victim(leader) with end (SIGKILL or SIGTERM), and logs the longest pauses
// in consumption and acknowledgements from then on. With backlog > 0 that
// many messages are stored first and the consumer is paced so that it is
// still reading them at the end of the member (what was committed before
// must stay readable); with 0 it is caught up and long-polling (new messages
// must keep arriving). Every stored and acknowledged message must be
// consumed.
func followerReadTrial(t *testing.T, backlog int, victim func(leader int) int, how string, end func(*proc)) {
	c := startCluster(t)
	leaderAddr := waitRouteLeader(t, c.namesrvAddr, "TBW102", "", 60*time.Second)
	leader := -1
	for i, a := range c.addrs {
		if a == leaderAddr {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatalf("leader %s is none of %v", leaderAddr, c.addrs)
	}
	topic := uniq("FollowerRead")
	p := newProducer(t, c.namesrvAddr)
	bodies := []string{"fr-first"} // creates the topic
	sendSync(t, p, topic, "", bodies[0])
	for i := 0; i < backlog; i += 16 {
		var batch []string
		for j := i; j < i+16; j++ {
			batch = append(batch, fmt.Sprintf("fr-%d", j))
		}
		sendBatchSync(t, p, topic, batch)
		bodies = append(bodies, batch...)
	}

	clock := newConsumeClock()
	opts := []consumer.Option{
		consumer.WithNsResolver(primitive.NewPassthroughResolver([]string{c.namesrvAddr})),
		consumer.WithGroupName(uniq("frg")),
		consumer.WithInstance(uniq("c")),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	}
	if backlog > 0 {
		// Paced: 8 queues x 2 messages per 20 ms, about 800 messages/s, and
		// almost nothing cached in the client, so a stalled pull shows.
		opts = append(opts, consumer.WithPullBatchSize(2), consumer.WithPullInterval(20*time.Millisecond))
	}
	pc, err := consumer.NewPushConsumer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"}, clock.consume); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Shutdown() })

	var live *liveProducer
	if backlog > 0 {
		svcWaitFor(t, 60*time.Second, "a quarter of the backlog consumed", func() bool { return clock.count() >= backlog/4 })
	} else {
		live = startLiveProducer(t, p, topic)
		svcWaitFor(t, 60*time.Second, "live messages consumed", func() bool { return clock.count() >= 400 })
	}
	served := getTotals(t, c.addrs)
	var byFollowers int64
	for i, n := range served {
		if i != leader {
			byFollowers += n
		}
	}
	t.Logf("messages served to pulls before the kill, by member (leader n%d): %v", leader, served)
	if byFollowers <= served[leader] {
		t.Fatalf("followers served %d messages, the leader %d: pulls were not steered to followers", byFollowers, served[leader])
	}

	// The producer keeps sending across the end of the member (sends resume
	// after a leader loss only with write aliases and forwarding).
	if live == nil {
		live = startLiveProducer(t, p, topic)
	}
	v := victim(leader)
	endedAt := time.Now()
	end(c.brokers[v])
	t.Logf("%s of n%d (leader n%d) with %d consumed", how, v, leader, clock.count())
	if backlog > 0 {
		svcWaitFor(t, 120*time.Second, "the whole backlog consumed", func() bool { return clock.consumedAll(bodies) })
	} else {
		svcWaitFor(t, 120*time.Second, "sends acknowledged after the end", func() bool { return live.ackedSince(endedAt) >= 400 })
	}
	acked, sendGap := live.stop(endedAt)
	svcWaitFor(t, 120*time.Second, "every acknowledged live message consumed", func() bool { return clock.consumedAll(acked) })
	overall, perQueue, after := clock.gaps(endedAt)
	t.Logf("after the %s: %d messages consumed; longest consumer gap %v (any queue: %v); %d redeliveries; "+
		"live sends: %d acknowledged, %d failed, longest ack gap %v",
		how, after, overall.Round(time.Millisecond), perQueue.Round(time.Millisecond), clock.dups,
		len(acked), live.failed.Load(), sendGap.Round(time.Millisecond))
}

func (c *consumeClock) consumedAll(bodies []string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range bodies {
		if _, ok := c.at[b]; !ok {
			return false
		}
	}
	return true
}

// liveProducer sends one message every 5 ms until stopped.
type liveProducer struct {
	mu     sync.Mutex
	acked  []string
	ackAt  []time.Time
	failed atomic.Int64
	done   chan struct{}
	wg     sync.WaitGroup
}

func startLiveProducer(t *testing.T, p interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}, topic string) *liveProducer {
	l := &liveProducer{done: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-l.done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			b := fmt.Sprintf("live-%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(b)))
			cancel()
			if err != nil || r.Status != primitive.SendOK {
				l.failed.Add(1)
				continue
			}
			l.mu.Lock()
			l.acked = append(l.acked, b)
			l.ackAt = append(l.ackAt, time.Now())
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { l.stop(time.Now()) })
	return l
}

func (l *liveProducer) ackedSince(from time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.ackAt {
		if at.After(from) {
			n++
		}
	}
	return n
}

// stop ends the sends and returns the acknowledged bodies and the longest
// time without an acknowledgement from from on.
func (l *liveProducer) stop(from time.Time) ([]string, time.Duration) {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	gap, _ := longestGap(l.ackAt, from)
	return append([]string(nil), l.acked...), gap
}

// TestFollowerReadLeaderKill: consumers read from followers, so SIGKILL of
// the leader does not pause consumption of what was committed before it.
func TestFollowerReadLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("three-process failover")
	}
	followerReadTrial(t, 4000, func(leader int) int { return leader }, "SIGKILL", (*proc).kill)
}

// TestFollowerReadLeaderKillCaughtUp: a caught-up consumer long-polling on
// followers gets new messages again as soon as sends resume after SIGKILL of
// the leader.
func TestFollowerReadLeaderKillCaughtUp(t *testing.T) {
	if testing.Short() {
		t.Skip("three-process failover")
	}
	followerReadTrial(t, 0, func(leader int) int { return leader }, "SIGKILL", (*proc).kill)
}

// TestFollowerReadFollowerKill measures a follower kill: the queues read
// from it wait for the client's pull error pause and route refresh (the Go
// client retries the same member until its route drops it; up to ~33 s), so
// it takes about a minute and runs only with RAFTMQ_INTEROP_SLOW=1.
func TestFollowerReadFollowerKill(t *testing.T) {
	if os.Getenv("RAFTMQ_INTEROP_SLOW") != "1" {
		t.Skip("takes about a minute; set RAFTMQ_INTEROP_SLOW=1")
	}
	followerReadTrial(t, 4000, func(leader int) int { return (leader + 1) % 3 }, "SIGKILL", (*proc).kill)
}

// TestFollowerReadFollowerStop: a follower stopped gracefully (a rolling
// restart) answers its pulls pointing elsewhere before it closes, so its
// consumers move on at once.
func TestFollowerReadFollowerStop(t *testing.T) {
	if testing.Short() {
		t.Skip("three-process failover")
	}
	followerReadTrial(t, 4000, func(leader int) int { return (leader + 1) % 3 }, "SIGTERM",
		func(p *proc) { p.stop(15 * time.Second) })
}

// TestFollowerReadLeaderStop: a graceful stop of the leader (a rolling
// restart) does not pause consumers reading from followers.
func TestFollowerReadLeaderStop(t *testing.T) {
	if testing.Short() {
		t.Skip("three-process failover")
	}
	followerReadTrial(t, 4000, func(leader int) int { return leader }, "SIGTERM", func(p *proc) { p.stop(15 * time.Second) })
}
