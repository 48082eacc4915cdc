package interop

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// Throughput of the official Go client against raftmq: 1 KiB messages, 16
// concurrent synchronous senders, then one push consumer reading everything
// from the first offset. Run with RAFTMQ_BENCH=1 (RAFTMQ_BENCH_MESSAGES sets
// the count, default 20000); it only reports figures, it asserts delivery.

// benchArgs passes RAFTMQ_BENCH_FLUSH (SYNC_FLUSH or ASYNC_FLUSH) to the broker.
func benchArgs() []string {
	if f := os.Getenv("RAFTMQ_BENCH_FLUSH"); f != "" {
		return []string{"-flushDiskType", f}
	}
	return nil
}

func benchCount() int {
	if n, err := strconv.Atoi(os.Getenv("RAFTMQ_BENCH_MESSAGES")); err == nil && n > 0 {
		return n
	}
	return 20000
}

func TestBenchStandaloneThroughput(t *testing.T) {
	if os.Getenv("RAFTMQ_BENCH") == "" {
		t.Skip("set RAFTMQ_BENCH=1 to measure throughput")
	}
	s := startStandalone(t, benchArgs()...)
	runThroughput(t, s.namesrvAddr, "standalone")
}

func TestBenchThreeNodeThroughput(t *testing.T) {
	if os.Getenv("RAFTMQ_BENCH") == "" {
		t.Skip("set RAFTMQ_BENCH=1 to measure throughput")
	}
	c := startCluster(t, benchArgs()...)
	waitRouteLeader(t, c.namesrvAddr, "TBW102", "", 60*time.Second)
	runThroughput(t, c.namesrvAddr, "three-node")
}

func runThroughput(t *testing.T, namesrv, label string) {
	const senders = 16
	total := benchCount()
	topic := uniq("Bench")
	p := newProducer(t, namesrv)
	sendSync(t, p, topic, "", "warmup")
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < senders; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				body := append([]byte(fmt.Sprintf("%08d", i)), payload[8:]...)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := p.SendSync(ctx, primitive.NewMessage(topic, body))
				cancel()
				if err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	sendDur := time.Since(start)
	if failed.Load() > 0 {
		t.Fatalf("%d sends failed", failed.Load())
	}
	var got atomic.Int64
	seen := sync.Map{}
	done := make(chan struct{})
	var once sync.Once
	pc, err := consumer.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver([]string{namesrv})),
		consumer.WithGroupName(uniq("bench")),
		consumer.WithInstance(uniq("c")),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithConsumeMessageBatchMaxSize(32),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = pc.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			if _, dup := seen.LoadOrStore(string(m.Body[:8]), true); !dup && got.Add(1) == int64(total+1) {
				once.Do(func() { close(done) })
			}
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cstart := time.Now()
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		t.Fatalf("consumed %d of %d", got.Load(), total+1)
	}
	consDur := time.Since(cstart)
	t.Logf("%s: send %d x 1 KiB with %d sync senders in %v = %.0f msg/s; consume %d in %v = %.0f msg/s (includes consumer start and rebalance)",
		label, total, senders, sendDur.Round(time.Millisecond), float64(total)/sendDur.Seconds(),
		total+1, consDur.Round(time.Millisecond), float64(total+1)/consDur.Seconds())
}
