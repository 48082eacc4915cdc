package remoting

import (
	"sync"
	"time"
)

// LogLimiter lets through at most one event per interval and counts the ones
// it held back, so a flood of refusals (an attack, a misconfigured client)
// costs one log line per interval instead of one per request. The zero value
// is not usable; see NewLogLimiter.
type LogLimiter struct {
	interval time.Duration
	now      func() time.Time

	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// NewLogLimiter returns a limiter allowing one event per interval, reading
// the time from clock (nil = time.Now; tests pass their own).
func NewLogLimiter(interval time.Duration, clock func() time.Time) *LogLimiter {
	if clock == nil {
		clock = time.Now
	}
	return &LogLimiter{interval: interval, now: clock}
}

// Allow reports whether this event should be logged, and if so how many
// events were suppressed since the last one that was.
func (l *LogLimiter) Allow() (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	l.next = now.Add(l.interval)
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
