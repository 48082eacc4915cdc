package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/raftmq/raftmq/remoting"
)

// Summary is a run's result; WriteJSON writes it as the `-json FILE` summary.
type Summary struct {
	Mode        Mode     `json:"mode"`
	Async       bool     `json:"async"`
	Window      int      `json:"window,omitempty"`
	Connections int      `json:"connections"`
	Producers   int      `json:"producers,omitempty"`
	Size        int      `json:"size,omitempty"`
	Topics      int      `json:"topics"`
	Queues      int      `json:"queues"`
	Batch       int      `json:"batch,omitempty"`
	ViaAliases  bool     `json:"viaAliases,omitempty"`
	Targets     []Target `json:"targets"`

	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	// Backlog is how many messages the queues held when a consume run started.
	Backlog    int64   `json:"backlog,omitempty"`
	Messages   int64   `json:"messages"`
	Bytes      int64   `json:"bytes"`
	Requests   int64   `json:"requests"`
	MsgsPerSec float64 `json:"msgsPerSec"`
	MiBPerSec  float64 `json:"mibPerSec"`
	// Errors counts failed requests; ErrorsByClass splits them by response
	// code ("14 SERVICE_NOT_AVAILABLE") or transport failure ("timeout").
	Errors        int64            `json:"errors"`
	ErrorsByClass map[string]int64 `json:"errorsByClass"`
	// Latency is per request: send to answer, or one pull's round trip.
	Latency   Latency         `json:"latency"`
	Intervals []intervalStats `json:"intervals"`
}

// WriteJSON writes s to path, indented.
func (s *Summary) WriteJSON(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Run performs one run and returns its summary. Progress lines go to
// progress (nil = none). The run ends at its budget or duration, or when ctx
// ends; requests in flight then are still awaited.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Summary, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	setup := remoting.NewClient(remoting.ClientConfig{})
	defer setup.Close()
	targets, err := resolveTargets(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	for i := range targets {
		describeTarget(ctx, setup, &cfg, &targets[i])
	}
	if cfg.CreateTopic && cfg.Mode == ModeProduce {
		if err := createTopics(ctx, setup, &cfg, targets); err != nil {
			return nil, err
		}
	}
	if cfg.ViaAliases && cfg.Mode == ModeProduce {
		if len(cfg.BrokerAddrs) > 0 {
			return nil, fmt.Errorf("aliases come from the namesrv: give -n, not broker addresses")
		}
		if err := resolveAliases(ctx, &cfg, cfg.topicNames()[0], targets); err != nil {
			return nil, err
		}
	}
	sl := slots(&cfg, targets)

	// One remoting.Client per connection: a client multiplexes one
	// connection per address.
	clients := make([]*remoting.Client, cfg.Connections)
	for i := range clients {
		clients[i] = remoting.NewClient(remoting.ClientConfig{})
		defer clients[i].Close()
	}

	sum := &Summary{Mode: cfg.Mode, Connections: cfg.Connections, Topics: cfg.Topics, Queues: cfg.Queues,
		ViaAliases: cfg.ViaAliases, Targets: targets}
	var ranges []queueRange
	if cfg.Mode == ModeConsume {
		sum.Batch = cfg.Batch
		if ranges, sum.Backlog, err = backlog(ctx, &cfg, setup, sl); err != nil {
			return nil, err
		}
	} else {
		sum.Async, sum.Producers, sum.Size = cfg.Async, cfg.Producers, cfg.Size
		if cfg.Async {
			sum.Window = cfg.Window
		}
	}

	rec := newRecorder()
	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		stop, cancel = context.WithTimeout(stop, cfg.Duration)
		defer cancel()
	}
	sum.Started = time.Now()
	done := make(chan struct{})
	var reporter sync.WaitGroup
	reporter.Add(1)
	go func() {
		defer reporter.Done()
		sum.Intervals = report(done, rec, cfg.Interval, sum.Started, progress)
	}()
	if cfg.Mode == ModeConsume {
		consume(stop, ctx, &cfg, clients, ranges, rec)
	} else {
		produce(stop, ctx, &cfg, clients, sl, rec)
	}
	elapsed := time.Since(sum.Started)
	close(done)
	reporter.Wait()

	var errs map[string]int64
	sum.Messages, sum.Bytes, sum.Requests, errs, sum.Latency = rec.totals()
	sum.ErrorsByClass = errs
	for _, v := range errs {
		sum.Errors += v
	}
	sum.Seconds = elapsed.Seconds()
	if sum.Seconds > 0 {
		sum.MsgsPerSec = float64(sum.Messages) / sum.Seconds
		sum.MiBPerSec = float64(sum.Bytes) / sum.Seconds / (1 << 20)
	}
	return sum, nil
}

// report prints a progress line every interval until done closes and
// returns the intervals seen (each interval's figures, also when lines are
// off). An interval < 0 prints nothing and keeps nothing.
func report(done <-chan struct{}, rec *recorder, interval time.Duration, start time.Time, w io.Writer) []intervalStats {
	if interval < 0 {
		<-done
		return nil
	}
	var out []intervalStats
	t := time.NewTicker(interval)
	defer t.Stop()
	last := start
	var total int64
	for {
		select {
		case <-done:
			return out
		case now := <-t.C:
			s := rec.takeInterval(now.Sub(last))
			last = now
			total += s.Msgs
			out = append(out, s)
			if w != nil {
				fmt.Fprintf(w, "%6.1fs %10.0f msg/s  p50 %8.3f ms  p99 %8.3f ms  errors %d  total %d\n",
					now.Sub(start).Seconds(), s.Rate, ms(s.P50Micro), ms(s.P99Micro), s.Errors, total)
			}
		}
	}
}

func ms(us int64) float64 { return float64(us) / 1000 }

// Text renders the summary for people.
func (s *Summary) Text() string {
	var b strings.Builder
	kind := "sync"
	if s.Async {
		kind = fmt.Sprintf("async window %d", s.Window)
	}
	switch s.Mode {
	case ModeConsume:
		fmt.Fprintf(&b, "consume: backlog %d, batch %d, %d connection(s), %d topic(s) x %d queue(s)\n",
			s.Backlog, s.Batch, s.Connections, s.Topics, s.Queues)
	default:
		fmt.Fprintf(&b, "produce: %s, %d producer(s) over %d connection(s), %d B, %d topic(s) x %d queue(s)\n",
			kind, s.Producers, s.Connections, s.Size, s.Topics, s.Queues)
	}
	for _, t := range s.Targets {
		fmt.Fprintf(&b, "  target %s at %s role=%s flushDiskType=%s", t.BrokerName, t.Addr, orUnknown(t.Role), orUnknown(t.FlushDiskType))
		if len(t.Aliases) > 0 {
			fmt.Fprintf(&b, " via aliases %s", strings.Join(t.Aliases, ","))
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "messages %d in %.2fs: %.0f msg/s, %.2f MiB/s, %d requests\n",
		s.Messages, s.Seconds, s.MsgsPerSec, s.MiBPerSec, s.Requests)
	l := s.Latency
	fmt.Fprintf(&b, "latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f\n",
		ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max), l.Mean/1000)
	fmt.Fprintf(&b, "errors %d", s.Errors)
	classes := make([]string, 0, len(s.ErrorsByClass))
	for k := range s.ErrorsByClass {
		classes = append(classes, k)
	}
	sort.Strings(classes)
	for _, k := range classes {
		fmt.Fprintf(&b, "  [%s: %d]", k, s.ErrorsByClass[k])
	}
	b.WriteByte('\n')
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
