package dledger

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/message"
)

// BenchmarkGroupAppend: three nodes on loopback TCP, FlushSync, 1 KiB
// messages, one message per AppendMessages call, 1 and 64 concurrent
// submitters. Reports entries/s, msgs/s, MB/s and p50/p99 commit latency.
//
//	go test -run XXX -bench BenchmarkGroupAppend -benchtime 3000x ./dledger
func BenchmarkGroupAppend(b *testing.B) {
	for _, subs := range []int{1, 64} {
		b.Run(fmt.Sprintf("submitters=%d", subs), func(b *testing.B) {
			c := newClusterWith(b, 3, true, true)
			for i := range c.nodes {
				c.nodes[i].cfg.Logger.SetLevel(0)
			}
			l := c.nodes[c.leader()]
			rec := benchRecord(b, 1024)
			ctx := context.Background()
			var next, retries atomic.Int64
			lat := make([][]time.Duration, subs)
			startIdx := l.raft.LastIndex()
			b.SetBytes(int64(len(rec)))
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for s := 0; s < subs; s++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						r := append([]byte(nil), rec...)
						t0 := time.Now()
						for {
							n := c.anyLeader()
							if n == nil {
								time.Sleep(time.Millisecond)
								continue
							}
							_, err := n.AppendMessages(ctx, [][]byte{r})
							if err == nil {
								break
							}
							if !isRetriable(err) {
								b.Error(err)
								return
							}
							retries.Add(1)
						}
						lat[s] = append(lat[s], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			var all []time.Duration
			for _, l := range lat {
				all = append(all, l...)
			}
			sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
			entries := l.raft.LastIndex() - startIdx
			b.ReportMetric(float64(entries)/el.Seconds(), "entries/s")
			b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
			b.ReportMetric(float64(b.N)/float64(max(entries, 1)), "msgs/entry")
			b.ReportMetric(float64(retries.Load()), "retries")
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}

// BenchmarkCommitlogRaw: one commitlog store, FlushSync, one 1 KiB entry
// per StoreLogs (what a single-message raft entry costs locally).
func BenchmarkCommitlogRaw(b *testing.B) {
	s, err := commitlog.Open(commitlog.Options{RootDir: b.TempDir(), SegmentSize: 64 << 20, Flush: commitlog.FlushSync})
	if err != nil {
		b.Skipf("commitlog: %v", err)
	}
	defer s.Close()
	data := make([]byte, 1024)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		l := &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: data}
		if err := s.StoreLogs([]*raft.Log{l}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
}

// benchRecord encodes a stored record of exactly size bytes.
func benchRecord(b *testing.B, size int) []byte {
	e := &message.Ext{Message: message.Message{Topic: "Bench", Properties: map[string]string{"UNIQ_KEY": "0A0000010000000000000001"}},
		BornTimestamp: 1, BornHost: netip.MustParseAddrPort("127.0.0.1:1000"), StoreHost: netip.MustParseAddrPort("127.0.0.1:2000")}
	empty, err := message.AppendRecord(nil, e)
	if err != nil {
		b.Fatal(err)
	}
	e.Body = []byte(strings.Repeat("x", size-len(empty)))
	rec, err := message.AppendRecord(nil, e)
	if err != nil || len(rec) != size {
		b.Fatalf("record of %d bytes: %v", len(rec), err)
	}
	return rec
}
