package broker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// sendDeadlineStep is how long one shared send deadline is handed out: a
// send waits between sendTimeout-sendDeadlineStep and sendTimeout.
const sendDeadlineStep = 100 * time.Millisecond

// sharedDeadline hands out contexts that expire timeout after they were
// made, one per step, so that thousands of concurrent waits share a timer.
type sharedDeadline struct {
	parent  context.Context
	timeout time.Duration
	step    time.Duration

	cur atomic.Pointer[deadlineCtx]
	mu  sync.Mutex // serialises replacing cur
}

type deadlineCtx struct {
	ctx    context.Context
	cancel context.CancelFunc // never called early: sends still wait on ctx; it ends at its deadline or with parent
	fresh  time.Time          // handed out until then
}

func newSharedDeadline(parent context.Context, timeout, step time.Duration) *sharedDeadline {
	return &sharedDeadline{parent: parent, timeout: timeout, step: step}
}

// context returns a context that ends at the latest timeout from now, and
// not before timeout-step from now (or when the parent ends).
func (d *sharedDeadline) context() context.Context {
	now := time.Now()
	if c := d.cur.Load(); c != nil && now.Before(c.fresh) {
		return c.ctx
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.cur.Load(); c != nil && now.Before(c.fresh) {
		return c.ctx
	}
	ctx, cancel := context.WithDeadline(d.parent, now.Add(d.timeout))
	d.cur.Store(&deadlineCtx{ctx: ctx, cancel: cancel, fresh: now.Add(d.step)})
	return ctx
}
