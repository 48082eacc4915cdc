package namesrv

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftmq/raftmq/remoting"
	"github.com/raftmq/raftmq/wire"
)

// benchTable is three groups of three members serving 1000 topics.
func benchTable(b *testing.B) *RouteTable {
	rt := NewRouteTable(time.Minute)
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("topic-%04d", i)
	}
	for g := 0; g < 3; g++ {
		for id := int64(0); id < 3; id++ {
			_, err := rt.Register(Registration{
				ClusterName: "c", BrokerName: fmt.Sprintf("broker-%d", g),
				BrokerAddr: fmt.Sprintf("10.0.%d.%d:10911", g, id), BrokerID: id,
				DataVersion: wire.DataVersion{Counter: 1, StateVersion: 1}, Topics: topics(names...),
			}, time.Now())
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	return rt
}

// BenchmarkRouteTableLookup is the handlers' path in the pure table: the cached
// encoded route of one of 1000 topics, from all Ps at once.
func BenchmarkRouteTableLookup(b *testing.B) {
	rt := benchTable(b)
	b.ReportAllocs()
	b.ResetTimer()
	var n atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok, err := rt.TopicRouteJSON(topicName(n.Add(1) % 1000)); !ok || err != nil {
				b.Fatal("no route", err)
			}
		}
	})
}

// topicName avoids fmt in the measured loops.
func topicName(i uint64) string {
	const digits = "0123456789"
	return "topic-" + string([]byte{digits[i/1000%10], digits[i/100%10], digits[i/10%10], digits[i%10]})
}

// BenchmarkRouteTableEncode is a cache miss: route assembly and JSON encoding.
func BenchmarkRouteTableEncode(b *testing.B) {
	rt := benchTable(b)
	b.ReportAllocs()
	b.ResetTimer()
	var n atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rd, ok := rt.TopicRoute(topicName(n.Add(1) % 1000))
			if !ok {
				b.Fatal("no route")
			}
			if _, err := wire.Marshal(rd); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRouteLookupLoopback is GET_ROUTEINFO_BY_TOPIC over loopback from 8
// remoting clients (8 TCP connections) shared by the parallel goroutines.
func BenchmarkRouteLookupLoopback(b *testing.B) {
	srv := New(Config{ListenAddr: "127.0.0.1:0"})
	srv.table = benchTable(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	clients := make([]*remoting.Client, 8)
	for i := range clients {
		clients[i] = remoting.NewClient(remoting.ClientConfig{})
		defer clients[i].Close()
	}
	addr := srv.Addr()
	b.ReportAllocs()
	b.SetParallelism(4) // 4×GOMAXPROCS callers in flight
	b.ResetTimer()
	var n atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		cli := clients[n.Add(1)%uint64(len(clients))]
		for pb.Next() {
			i := n.Add(1)
			req := remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": topicName(i % 1000)}, nil)
			resp, err := cli.Invoke(context.Background(), addr, req)
			if err != nil {
				b.Fatal(err)
			}
			if resp.Code != remoting.Success {
				b.Fatalf("code %d %s", resp.Code, resp.Remark)
			}
		}
	})
}
