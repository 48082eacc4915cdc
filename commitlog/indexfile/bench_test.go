package indexfile

import (
	"fmt"
	"testing"
)

// BenchmarkQuery looks up one key in an index of 1M entries at RocketMQ's
// default geometry (5M slots, 20M entries per file).
func BenchmarkQuery(b *testing.B) {
	const n = 1_000_000
	s, err := Open(Options{Dir: b.TempDir(), FlushInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for i := int64(0); i < n; i++ {
		// Every message has a unique key; one in 1000 shares a hot key.
		if err := s.Put(fmt.Sprintf("BenchTopic#key-%d", i), i*200, t0+i); err != nil {
			b.Fatal(err)
		}
	}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("BenchTopic#key-%d", (i*7919)%n)
	}
	b.ReportAllocs()
	cpu := startThreadCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := s.Query(keys[i%len(keys)], 64, 0, 1<<62)
		if err != nil || len(got) == 0 {
			b.Fatalf("Query: %v %v", got, err)
		}
	}
	cpu.report(b)
}

func BenchmarkPut(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir(), FlushInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("BenchTopic#key-%d", i)
	}
	b.ReportAllocs()
	cpu := startThreadCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Put(keys[i%len(keys)], int64(i)*200, t0+int64(i)); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}
