package broker

import "sync/atomic"

// runtimeStats counts messages put and served, for GET_BROKER_RUNTIME_INFO.
type runtimeStats struct {
	put, got atomic.Int64
}

func (s *runtimeStats) putMessages(n int)        { s.put.Add(int64(n)) }
func (s *runtimeStats) getMessages(n int)        { s.got.Add(int64(n)) }
func (s *runtimeStats) totals() (put, got int64) { return s.put.Load(), s.got.Load() }
