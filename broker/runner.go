package broker

import (
	"sync/atomic"
	"time"
)

// runnerIdle is how long an idle runner goroutine waits for more work
// before it exits.
const runnerIdle = 2 * time.Second

// runners runs functions on goroutines that are kept for a while once
// done, up to max at once. A fresh goroutine per write would start on a
// small stack and grow it (copy it) on every send: the send path is deep;
// a kept one has grown it already.
type runners struct {
	max  int64
	busy atomic.Int64 // functions taken and not finished
	jobs chan func()  // unbuffered: a send succeeds only if a runner is idle
}

func newRunners(max int) *runners {
	return &runners{max: int64(max), jobs: make(chan func())}
}

// tryGo runs f on an idle or a new runner and reports true, or reports
// false without running it when max functions are running.
func (r *runners) tryGo(f func()) bool {
	if r.busy.Add(1) > r.max {
		r.busy.Add(-1)
		return false
	}
	select {
	case r.jobs <- f:
	default:
		go r.loop(f)
	}
	return true
}

func (r *runners) loop(f func()) {
	idle := time.NewTimer(runnerIdle)
	defer idle.Stop()
	for {
		f()
		r.busy.Add(-1)
		idle.Reset(runnerIdle)
		select {
		case f = <-r.jobs:
		case <-idle.C:
			return
		}
	}
}
