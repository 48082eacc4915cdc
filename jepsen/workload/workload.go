package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/raftmq/raftmq/jepsen/cluster"
	"github.com/raftmq/raftmq/jepsen/history"
	"github.com/raftmq/raftmq/remoting"
)

// Config is the traffic of one run.
type Config struct {
	Topic     string
	Queues    int
	Producers int           // own-client producers; producer p sends to queue p % Queues
	Rate      float64       // sends per second per producer
	Timeout   time.Duration // per request
	Attempts  int           // attempts per value (a retry reuses the value)
	Consumers bool          // one consumer per queue, pulling from the leader and committing
	Group     string
	Pad       int // bytes appended to every own-client send's body after a '|'
	// SendToAny makes producers send each value to a random member instead of the one
	// they last saw leading (exercises followers forwarding writes to the leader).
	SendToAny bool
}

// ValueOf is the value a message body carries (the part before any padding).
func ValueOf(body []byte) string {
	v, _, _ := strings.Cut(string(body), "|")
	return v
}

// Runner runs the workloads of a run against one cluster.
type Runner struct {
	cfg     Config
	cl      *cluster.Cluster
	tracker *Tracker
	rec     *history.Recorder
	client  *Client
	pad     string
}

// NewRunner returns a runner; the caller owns client, tracker and rec.
func NewRunner(cfg Config, cl *cluster.Cluster, tracker *Tracker, rec *history.Recorder, client *Client) *Runner {
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.Group == "" {
		cfg.Group = "jepsen-consumer"
	}
	r := &Runner{cfg: cfg, cl: cl, tracker: tracker, rec: rec, client: client}
	if cfg.Pad > 0 {
		r.pad = "|" + strings.Repeat("x", cfg.Pad)
	}
	return r
}

// Start launches producers and consumers; they run until ctx ends. The returned
// function waits for them.
func (r *Runner) Start(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	for p := 0; p < r.cfg.Producers; p++ {
		wg.Add(1)
		go func() { defer wg.Done(); r.produce(ctx, p, p%r.cfg.Queues) }()
	}
	if r.cfg.Consumers {
		for q := 0; q < r.cfg.Queues; q++ {
			wg.Add(1)
			go func() { defer wg.Done(); r.consume(ctx, 100+q, q) }()
		}
	}
	return wg.Wait
}

// target is the member a send goes to.
func (r *Runner) target() cluster.Node {
	if r.cfg.SendToAny {
		return r.cl.Members[rand.IntN(len(r.cl.Members))]
	}
	return r.leader()
}

func (r *Runner) produce(ctx context.Context, process, queue int) {
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	next := time.Now()
	for counter := 1; ctx.Err() == nil; counter++ {
		value := fmt.Sprintf("%d-%d", process, counter)
		for attempt := 1; attempt <= r.cfg.Attempts && ctx.Err() == nil; attempt++ {
			if r.sendOnce(ctx, process, queue, value, attempt) {
				break
			}
			sleep(ctx, 100*time.Millisecond)
		}
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			sleep(ctx, d)
		} else {
			next = time.Now()
		}
	}
}

func (r *Runner) leader() cluster.Node {
	l, _ := r.tracker.Leader()
	if l.IP == "" {
		l = r.cl.Members[0]
	}
	return l
}

// sendOnce records one attempt; it reports whether the value was acknowledged.
func (r *Runner) sendOnce(ctx context.Context, process, queue int, value string, attempt int) bool {
	m := r.target()
	inv := r.rec.Add(history.Op{Process: process, Type: history.Invoke, F: history.FSend, Value: value, Member: m.Name, Queue: queue, Offset: -1, Attempt: attempt})
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Timeout)
	res, err := r.client.Send(sctx, m.Addr(), r.cfg.Topic, queue, value, r.pad)
	cancel()
	done := history.Op{Process: process, F: history.FSend, Value: value, Member: m.Name, Queue: queue, Offset: -1, Attempt: attempt}
	done.Time = r.rec.Now()
	done.Latency = done.Time - inv.Time
	if err == nil {
		done.Type, done.Queue, done.Offset = history.OK, res.Queue, res.Offset
		r.rec.Add(done)
		return true
	}
	done.Error = err.Error()
	var se *SendError
	if errors.As(err, &se) && se.Definite {
		done.Type = history.Fail
	} else {
		done.Type = history.Info
		if se == nil || se.Err != nil {
			r.client.Drop(m.Addr()) // a timed-out connection may be wedged by a partition
		}
	}
	r.rec.Add(done)
	return false
}

// consume pulls queue from the current leader, recording every message read, and
// commits its position about once a second; after an error, and every 5 s, it
// fetches the group's committed offset again.
func (r *Runner) consume(ctx context.Context, process, queue int) {
	offset := int64(-1)
	lastCommit, lastFetch := time.Time{}, time.Time{}
	committed := int64(-1)
	for ctx.Err() == nil {
		m := r.leader()
		if offset < 0 || time.Since(lastFetch) > 5*time.Second {
			off, ok := r.fetch(ctx, process, m, queue)
			lastFetch = time.Now()
			if !ok {
				sleep(ctx, 300*time.Millisecond)
				continue
			}
			if offset < 0 || off > offset {
				// Resume from the committed offset (a re-read is a redelivery).
				offset = off
			}
		}
		pctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		res, err := r.client.Pull(pctx, m.Addr(), r.cfg.Group, r.cfg.Topic, queue, offset, -1)
		cancel()
		if err != nil {
			r.client.Drop(m.Addr())
			offset = -1
			sleep(ctx, 300*time.Millisecond)
			continue
		}
		switch res.Code {
		case remoting.Success:
			for _, msg := range res.Messages {
				r.rec.Add(history.Op{Process: process, Type: history.OK, F: history.FPoll, Value: ValueOf(msg.Body), Member: m.Name,
					Queue: queue, Offset: msg.QueueOffset, Group: r.cfg.Group})
			}
			offset = res.Next
		case remoting.PullOffsetMoved:
			r.rec.Add(history.Op{Process: process, Type: history.Info, F: history.FPoll, Member: m.Name, Queue: queue, Offset: offset,
				Group: r.cfg.Group, Error: fmt.Sprintf("offset moved to %d", res.Next)})
			offset = res.Next
		default:
			sleep(ctx, 200*time.Millisecond)
		}
		if offset > committed && time.Since(lastCommit) > time.Second {
			if r.commit(ctx, process, m, queue, offset) {
				committed = offset
			}
			lastCommit = time.Now()
		}
	}
}

func (r *Runner) fetch(ctx context.Context, process int, m cluster.Node, queue int) (int64, bool) {
	inv := r.rec.Add(history.Op{Process: process, Type: history.Invoke, F: history.FFetch, Member: m.Name, Queue: queue, Offset: -1, Group: r.cfg.Group})
	fctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	off, err := r.client.FetchOffset(fctx, m.Addr(), r.cfg.Group, r.cfg.Topic, queue)
	cancel()
	done := history.Op{Process: process, F: history.FFetch, Member: m.Name, Queue: queue, Offset: off, Group: r.cfg.Group}
	done.Time = r.rec.Now()
	done.Latency = done.Time - inv.Time
	switch {
	case errors.Is(err, ErrNoOffset):
		done.Type, done.Offset = history.OK, 0
		r.rec.Add(done)
		return 0, true
	case err != nil:
		done.Type, done.Error, done.Offset = history.Info, err.Error(), -1
		r.rec.Add(done)
		return 0, false
	}
	done.Type = history.OK
	r.rec.Add(done)
	return off, true
}

func (r *Runner) commit(ctx context.Context, process int, m cluster.Node, queue int, offset int64) bool {
	inv := r.rec.Add(history.Op{Process: process, Type: history.Invoke, F: history.FCommit, Member: m.Name, Queue: queue, Offset: offset, Group: r.cfg.Group})
	cctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	err := r.client.CommitOffset(cctx, m.Addr(), r.cfg.Group, r.cfg.Topic, queue, offset)
	cancel()
	done := history.Op{Process: process, Type: history.OK, F: history.FCommit, Member: m.Name, Queue: queue, Offset: offset, Group: r.cfg.Group}
	done.Time = r.rec.Now()
	done.Latency = done.Time - inv.Time
	if err != nil {
		done.Type, done.Error = history.Info, err.Error()
	}
	r.rec.Add(done)
	return err == nil
}

// DrainProcess is the process id of drain reads.
const DrainProcess = 1000

// Drain reads every queue of the topic from offset 0 on every member (committed
// data; followers serve reads) and records each message found. budget bounds each
// member's drain.
func Drain(ctx context.Context, c *Client, rec *history.Recorder, members []cluster.Node, topic string, queues int, budget time.Duration) {
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mctx, cancel := context.WithTimeout(ctx, budget)
			defer cancel()
			for q := 0; q < queues; q++ {
				drainQueue(mctx, c, rec, DrainProcess+i, m, topic, q)
			}
		}()
	}
	wg.Wait()
}

func drainQueue(ctx context.Context, c *Client, rec *history.Recorder, process int, m cluster.Node, topic string, q int) {
	rec.Add(history.Op{Process: process, Type: history.Invoke, F: history.FDrain, Member: m.Name, Queue: q, Offset: 0})
	offset := int64(0)
	var lastErr error
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := c.Pull(pctx, m.Addr(), "jepsen-drain", topic, q, offset, -1)
		cancel()
		if err != nil {
			lastErr = err
			c.Drop(m.Addr())
			sleep(ctx, 500*time.Millisecond)
			continue
		}
		switch res.Code {
		case remoting.Success:
			for _, msg := range res.Messages {
				rec.Add(history.Op{Process: process, Type: history.OK, F: history.FDrain, Member: m.Name, Queue: q, Offset: msg.QueueOffset, Value: ValueOf(msg.Body)})
			}
			offset = res.Next
		case remoting.PullNotFound:
			return
		case remoting.PullRetryImmediately:
			if res.Next > offset {
				offset = res.Next
			} else {
				sleep(ctx, 100*time.Millisecond)
			}
		case remoting.PullOffsetMoved:
			rec.Add(history.Op{Process: process, Type: history.Info, F: history.FDrain, Member: m.Name, Queue: q, Offset: offset,
				Error: fmt.Sprintf("offset %d moved (next %d, max %d)", offset, res.Next, res.Max)})
			return
		}
	}
	msg := "drain budget spent"
	if lastErr != nil {
		msg += ": " + lastErr.Error()
	}
	rec.Add(history.Op{Process: process, Type: history.Info, F: history.FDrain, Member: m.Name, Queue: q, Offset: offset, Error: msg})
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
