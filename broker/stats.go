package broker

import (
	"sync/atomic"
	"time"

	"github.com/armon/go-metrics"
)

// runtimeStats counts messages put and served, for GET_BROKER_RUNTIME_INFO,
// and reports them to go-metrics (the registry raft reports to).
type runtimeStats struct {
	put, got atomic.Int64
}

func (s *runtimeStats) putMessages(n int) {
	s.put.Add(int64(n))
	metrics.IncrCounter([]string{"broker", "put", "messages"}, float32(n))
}

func (s *runtimeStats) getMessages(n int) {
	s.got.Add(int64(n))
	metrics.IncrCounter([]string{"broker", "get", "messages"}, float32(n))
}

func (s *runtimeStats) totals() (put, got int64) { return s.put.Load(), s.got.Load() }

// measureSince records the latency of a request kind.
func measureSince(kind string, start time.Time) {
	metrics.MeasureSince([]string{"broker", kind, "latency"}, start)
}
