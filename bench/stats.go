package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/raftmq/raftmq/remoting"
)

// Histogram bounds: 1 µs to 5 min at 3 significant digits. A value above the
// top is clamped (and so still counted) rather than dropped.
const (
	histMinMicros = 1
	histMaxMicros = int64(5 * time.Minute / time.Microsecond)
	histSigFigs   = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinMicros, histMaxMicros, histSigFigs)
}

// recorder accumulates one run's outcomes. Every request ends in exactly one
// call of ok or fail. Histograms are kept per interval (for progress lines)
// and in total; the interval's is merged into the total when it is taken.
type recorder struct {
	mu       sync.Mutex
	interval *hdrhistogram.Histogram
	total    *hdrhistogram.Histogram
	msgs     int64 // messages moved (sent, or received by pulls)
	bytes    int64
	reqs     int64 // successful requests
	errs     map[string]int64
	intMsgs  int64
	intErrs  int64
}

func newRecorder() *recorder {
	return &recorder{interval: newHistogram(), total: newHistogram(), errs: map[string]int64{}}
}

// ok records a successful request that moved msgs messages of bytes bytes.
func (r *recorder) ok(lat time.Duration, msgs, bytes int64) {
	us := min(max(lat.Microseconds(), histMinMicros), histMaxMicros)
	r.mu.Lock()
	_ = r.interval.RecordValue(us) // in range by the clamp above
	r.msgs += msgs
	r.intMsgs += msgs
	r.bytes += bytes
	r.reqs++
	r.mu.Unlock()
}

// fail records a failed request under its error class.
func (r *recorder) fail(class string) {
	r.mu.Lock()
	r.errs[class]++
	r.intErrs++
	r.mu.Unlock()
}

// responseClass names a non-success answer: its code and the code's name.
func responseClass(code int32) string {
	return fmt.Sprintf("%d %s", code, remoting.ResponseCodeName(code))
}

// transportClass names a request that got no answer.
func transportClass(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, remoting.ErrConnClosed):
		return "connection closed"
	case errors.Is(err, remoting.ErrClientClosed):
		return "client closed"
	}
	return "transport"
}

// intervalStats is one progress line's figures.
type intervalStats struct {
	Msgs     int64   `json:"msgs"`
	Errors   int64   `json:"errors"`
	Rate     float64 `json:"msgsPerSec"`
	P50Micro int64   `json:"p50Us"`
	P99Micro int64   `json:"p99Us"`
}

// takeInterval returns the figures since the last call over elapsed and
// folds the interval histogram into the total.
func (r *recorder) takeInterval(elapsed time.Duration) intervalStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := intervalStats{Msgs: r.intMsgs, Errors: r.intErrs}
	if elapsed > 0 {
		s.Rate = float64(r.intMsgs) / elapsed.Seconds()
	}
	if r.interval.TotalCount() > 0 {
		s.P50Micro = r.interval.ValueAtQuantile(50)
		s.P99Micro = r.interval.ValueAtQuantile(99)
	}
	r.total.Merge(r.interval)
	r.interval.Reset()
	r.intMsgs, r.intErrs = 0, 0
	return s
}

// Latency is a run's latency distribution in microseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"meanUs"`
	P50   int64   `json:"p50Us"`
	P90   int64   `json:"p90Us"`
	P99   int64   `json:"p99Us"`
	P999  int64   `json:"p999Us"`
	Max   int64   `json:"maxUs"`
}

// totals folds the open interval in and returns the counters and distribution.
func (r *recorder) totals() (msgs, bytes, reqs int64, errs map[string]int64, lat Latency) {
	r.takeInterval(0)
	r.mu.Lock()
	defer r.mu.Unlock()
	errs = make(map[string]int64, len(r.errs))
	for k, v := range r.errs {
		errs[k] = v
	}
	h := r.total
	lat = Latency{Count: h.TotalCount()}
	if lat.Count > 0 {
		lat.Mean = h.Mean()
		lat.P50 = h.ValueAtQuantile(50)
		lat.P90 = h.ValueAtQuantile(90)
		lat.P99 = h.ValueAtQuantile(99)
		lat.P999 = h.ValueAtQuantile(99.9)
		lat.Max = h.Max()
	}
	return r.msgs, r.bytes, r.reqs, errs, lat
}
