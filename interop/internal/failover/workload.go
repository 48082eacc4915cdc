package failover

import (
	"context"
	"fmt"
	"sync"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// WorkloadConfig is the load the trials run under.
type WorkloadConfig struct {
	Namesrvs    []string
	Topic       string
	SyncWorkers int           // SendSync goroutines; default 4
	BatchSize   int           // messages per batch send; default 4
	Interval    time.Duration // each producer begins a send at most this often; default 20 ms
	// AsyncInFlight bounds outstanding SendAsync calls; default 64.
	AsyncInFlight int
}

func (c *WorkloadConfig) defaults() {
	if c.SyncWorkers <= 0 {
		c.SyncWorkers = 4
	}
	if c.BatchSize <= 1 {
		c.BatchSize = 4
	}
	if c.Interval <= 0 {
		c.Interval = 20 * time.Millisecond
	}
	if c.AsyncInFlight <= 0 {
		c.AsyncInFlight = 64
	}
}

// recorder is the run's log, shared by the producers, the consumer and the runner.
type recorder struct {
	mu         sync.Mutex
	sends      []Send
	deliveries []Delivery
	sendOf     map[string]int // body -> index in sends
}

func newRecorder() *recorder { return &recorder{sendOf: map[string]int{}} }

func (r *recorder) begin(k Kind, worker int, bodies []string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sends = append(r.sends, Send{Kind: k, Worker: worker, Begun: time.Now(), Bodies: bodies})
	i := len(r.sends) - 1
	for _, b := range bodies {
		r.sendOf[b] = i
	}
	return i
}

func (r *recorder) finish(i int, ok bool, err error) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.sends[i]
	s.Done, s.OK = now, ok
	if err != nil {
		s.Err = err.Error()
	}
}

func (r *recorder) deliver(msgs []*primitive.MessageExt) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		d := Delivery{Body: string(m.Body), At: now, Offset: m.QueueOffset}
		if m.Queue != nil {
			d.Queue = m.Queue.QueueId
		}
		r.deliveries = append(r.deliveries, d)
	}
}

// snapshot copies the log.
func (r *recorder) snapshot() *Log {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &Log{Sends: append([]Send(nil), r.sends...), Deliveries: append([]Delivery(nil), r.deliveries...)}
}

// progress reports, per kind, whether a send begun at or after t was acknowledged
// (oneway: consumed), and whether a message sent at or after t was consumed.
func (r *recorder) progress(t time.Time) (acked map[Kind]int, consumed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	acked = map[Kind]int{}
	// Sends are in begin order; walk back to the first begun before t.
	for i := len(r.sends) - 1; i >= 0 && !r.sends[i].Begun.Before(t); i-- {
		if s := r.sends[i]; s.OK && s.Kind.acked() {
			acked[s.Kind]++
		}
	}
	counted := map[int]bool{}
	for i := len(r.deliveries) - 1; i >= 0 && !r.deliveries[i].At.Before(t); i-- {
		j, ok := r.sendOf[r.deliveries[i].Body]
		if !ok || r.sends[j].Begun.Before(t) {
			continue
		}
		consumed++
		if s := r.sends[j]; s.Kind == KindOneway && !counted[j] {
			counted[j] = true
			acked[KindOneway]++
		}
	}
	return acked, consumed
}

// unconsumed counts acknowledged messages not consumed yet, and calls still in flight.
func (r *recorder) unconsumed() (missing, inFlight int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[string]bool, len(r.deliveries))
	for _, d := range r.deliveries {
		seen[d.Body] = true
	}
	for _, s := range r.sends {
		if s.Done.IsZero() {
			inFlight++
		}
		if s.OK && s.Kind.acked() {
			for _, b := range s.Bodies {
				if !seen[b] {
					missing++
				}
			}
		}
	}
	return missing, inFlight
}

// Workload is the official client's producers and a push consumer running against one
// topic: several SendSync goroutines, a batch sender, a oneway sender and an async
// sender, each with the client's default options (round-robin selector, 2 retries,
// 3 s timeout) and its own client instance, as separate applications would have.
type Workload struct {
	cfg   WorkloadConfig
	rec   *recorder
	stop  chan struct{}
	wg    sync.WaitGroup // producer loops
	async sync.WaitGroup // outstanding async callbacks

	producers []rocketmq.Producer
	consumer  rocketmq.PushConsumer
}

func newProducer(cfg WorkloadConfig, name string) (rocketmq.Producer, error) {
	p, err := producer.NewDefaultProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver(cfg.Namesrvs)),
		producer.WithGroupName("failover-"+name),
		producer.WithInstanceName("failover-"+name),
	)
	if err != nil {
		return nil, err
	}
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("start producer %s: %w", name, err)
	}
	return p, nil
}

// StartWorkload starts the consumer (from the topic's first offset) and the producers.
func StartWorkload(cfg WorkloadConfig) (*Workload, error) {
	cfg.defaults()
	w := &Workload{cfg: cfg, rec: newRecorder(), stop: make(chan struct{})}
	c, err := consumer.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver(cfg.Namesrvs)),
		consumer.WithGroupName("failover-consumer"),
		consumer.WithInstance("failover-consumer"),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		return nil, err
	}
	err = c.Subscribe(cfg.Topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		w.rec.deliver(msgs)
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("start consumer: %w", err)
	}
	w.consumer = c

	for _, k := range Kinds {
		n := 1
		if k == KindSync {
			n = cfg.SyncWorkers
		}
		p, err := newProducer(cfg, string(k))
		if err != nil {
			w.shutdown()
			return nil, err
		}
		w.producers = append(w.producers, p)
		for i := 0; i < n; i++ {
			w.wg.Add(1)
			go w.loop(p, k, i)
		}
	}
	return w, nil
}

func (w *Workload) loop(p rocketmq.Producer, k Kind, worker int) {
	defer w.wg.Done()
	tick := time.NewTicker(w.cfg.Interval)
	defer tick.Stop()
	sem := make(chan struct{}, w.cfg.AsyncInFlight)
	for seq := 0; ; seq++ {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		n := 1
		if k == KindBatch {
			n = w.cfg.BatchSize
		}
		bodies := make([]string, n)
		msgs := make([]*primitive.Message, n)
		for j := range bodies {
			bodies[j] = fmt.Sprintf("%s-%d-%07d-%d", k, worker, seq, j)
			msgs[j] = primitive.NewMessage(w.cfg.Topic, []byte(bodies[j]))
		}
		switch k {
		case KindSync, KindBatch:
			w.sendSync(p, k, worker, bodies, msgs)
		case KindOneway:
			// A generous bound only: the client's own 3 s per attempt decides.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			i := w.rec.begin(k, worker, bodies)
			err := p.SendOneWay(ctx, msgs...)
			w.rec.finish(i, err == nil, err)
			cancel()
		case KindAsync:
			select {
			case sem <- struct{}{}:
			case <-w.stop:
				return
			}
			i := w.rec.begin(k, worker, bodies)
			w.async.Add(1)
			var once sync.Once
			done := func(ok bool, err error) {
				once.Do(func() {
					w.rec.finish(i, ok, err)
					<-sem
					w.async.Done()
				})
			}
			// The client bounds the call with its own send timeout.
			err := p.SendAsync(context.Background(), func(_ context.Context, res *primitive.SendResult, err error) {
				ok := err == nil && res != nil && res.Status == primitive.SendOK
				if err == nil && !ok && res != nil {
					err = fmt.Errorf("send status %d", res.Status)
				}
				done(ok, err)
			}, msgs...)
			if err != nil {
				done(false, err)
			}
		}
	}
}

func (w *Workload) sendSync(p rocketmq.Producer, k Kind, worker int, bodies []string, msgs []*primitive.Message) {
	// A generous bound only: the client's own 3 s per attempt decides.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	i := w.rec.begin(k, worker, bodies)
	res, err := p.SendSync(ctx, msgs...)
	ok := err == nil && res != nil && res.Status == primitive.SendOK
	if err == nil && !ok && res != nil {
		err = fmt.Errorf("send status %d", res.Status)
	}
	w.rec.finish(i, ok, err)
}

// StopProducers stops beginning sends and waits up to timeout for every call in
// flight (async callbacks included) to return. The consumer keeps running.
func (w *Workload) StopProducers(timeout time.Duration) error {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	done := make(chan struct{})
	go func() { w.wg.Wait(); w.async.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		_, inFlight := w.rec.unconsumed()
		return fmt.Errorf("%d sends still in flight %v after the producers stopped", inFlight, timeout)
	}
}

func (w *Workload) shutdown() {
	for _, p := range w.producers {
		_ = p.Shutdown()
	}
	w.producers = nil
	if w.consumer != nil {
		_ = w.consumer.Shutdown()
		w.consumer = nil
	}
}

// Close stops the producers (if running) and shuts every client down.
func (w *Workload) Close() {
	_ = w.StopProducers(30 * time.Second)
	w.shutdown()
}

// Log returns a copy of everything recorded so far.
func (w *Workload) Log() *Log { return w.rec.snapshot() }
