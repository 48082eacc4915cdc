package broker

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
)

// BenchmarkSendSync measures 1 KiB single sends through the remoting server
// into a single-node group in t.TempDir(), 16 senders in parallel.
func BenchmarkSendSync(b *testing.B) {
	benchSends(b, startEnvB(b), func(int64) map[string]string { return nil })
}

// benchSends sends 1 KiB messages to topic Bench (8 queues) from 16 senders
// in parallel; props gives the n-th send's properties.
func benchSends(b *testing.B, e *testEnv, props func(n int64) map[string]string) {
	e.createTopic("Bench", 8)
	body := make([]byte, 1024)
	b.SetBytes(1024)
	benchCalls(b, e, func(n int64) *remoting.Command {
		return remoting.NewRequest(remoting.SendMessage, sendExt("Bench", int(n%8), props(n)), body)
	})
}

// benchCalls sends the n-th request req(n) from 16 callers in parallel,
// each expecting success.
func benchCalls(b *testing.B, e *testEnv, req func(n int64) *remoting.Command) {
	var q atomic.Int64
	b.SetParallelism(8) // 8 × GOMAXPROCS(2) = 16 callers
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, err := e.client.Invoke(ctx, e.b.Addr(), req(q.Add(1)))
			cancel()
			if err != nil || r.Code != 0 {
				b.Errorf("call: %v %v", err, r)
				return
			}
		}
	})
}

// BenchmarkSendSyncUniqKey is BenchmarkSendSync with a fresh UNIQ_KEY on
// every send (as the clients set it), with the duplicate window on (the
// default) and off: the difference is the cost of deduplication per send.
func BenchmarkSendSyncUniqKey(b *testing.B) {
	for _, window := range []string{"120", "0"} {
		b.Run("duplicateWindowSeconds="+window, func(b *testing.B) {
			e := startEnvTB(b, func(c *Config) {
				if err := c.Set("duplicateWindowSeconds", window); err != nil {
					b.Fatal(err)
				}
			})
			benchSends(b, e, func(n int64) map[string]string {
				return map[string]string{message.PropertyUniqKey: fmt.Sprintf("%032X", n)}
			})
		})
	}
}

// BenchmarkOffsetCommitSync measures sync UPDATE_CONSUMER_OFFSET commits
// (each answered once its flush is applied) from 16 committers over 256
// queues into a single-node group with the default 1 s flush interval, and
// reports the Raft entries they cost (raft-entries/op: group commit makes
// it well below 1).
func BenchmarkOffsetCommitSync(b *testing.B) {
	e := startEnvTB(b, func(c *Config) { c.OffsetFlushInterval = time.Second })
	e.createTopic("Bench", 256)
	first := e.b.node.Status().LastIndex
	benchCalls(b, e, func(n int64) *remoting.Command {
		return remoting.NewRequest(remoting.UpdateConsumerOffset, map[string]string{"consumerGroup": "g", "topic": "Bench",
			"queueId": strconv.FormatInt(n%256, 10), "commitOffset": strconv.FormatInt(n, 10)}, nil)
	})
	b.StopTimer()
	b.ReportMetric(float64(e.b.node.Status().LastIndex-first)/float64(b.N), "raft-entries/op")
}
