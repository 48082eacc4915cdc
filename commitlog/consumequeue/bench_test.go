package consumequeue

import (
	"testing"
)

func benchStore(b *testing.B, n int64) *Store {
	b.Helper()
	s, err := Open(Options{Dir: b.TempDir(), FlushInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for i := int64(0); i < n; i++ {
		if err := s.Put("BenchTopic", 3, i, entryAt(i)); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkPut(b *testing.B) {
	s := benchStore(b, 0)
	b.ReportAllocs()
	cpu := startThreadCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Put("BenchTopic", 3, int64(i), entryAt(int64(i))); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}

func BenchmarkGet(b *testing.B) {
	const n = 1 << 20
	s := benchStore(b, n)
	b.ReportAllocs()
	cpu := startThreadCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Get("BenchTopic", 3, int64(i*7919)%n); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}

func BenchmarkRead32(b *testing.B) {
	const n = 1 << 20
	s := benchStore(b, n)
	buf := make([]Entry, 0, 32)
	b.ReportAllocs()
	cpu := startThreadCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var err error
		buf, err = s.Read("BenchTopic", 3, int64(i*7919)%(n-32), 32, buf[:0])
		if err != nil || len(buf) != 32 {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}

// BenchmarkGetParallel measures the read path with concurrent readers.
func BenchmarkGetParallel(b *testing.B) {
	const n = 1 << 20
	s := benchStore(b, n)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int64(0)
		for pb.Next() {
			i++
			if _, err := s.Get("BenchTopic", 3, (i*7919)%n); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
