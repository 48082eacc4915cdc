package bench

import (
	"context"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
)

// producerGroup is the producer group the bench's sends carry.
const producerGroup = "raftmq_bench"

// sender builds send requests. Requests are SEND_MESSAGE_V2 (one-letter
// header keys), as the Java client sends by default.
type sender struct {
	cfg  *Config
	body []byte
	ids  *message.UniqIDGenerator
}

func newSender(cfg *Config) *sender {
	body := make([]byte, cfg.Size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	return &sender{cfg: cfg, body: body, ids: message.NewUniqIDGenerator(netip.AddrFrom4([4]byte{127, 0, 0, 1}), os.Getpid())}
}

// request builds one send to s. Each request gets its own header map: the
// client owns it while the request is in flight.
func (p *sender) request(s slot) *remoting.Command {
	props := message.PropertyWaitStoreMsgOK + string(message.NameValueSeparator) + "true" + string(message.PropertySeparator)
	if p.cfg.UniqKey {
		props += message.PropertyUniqKey + string(message.NameValueSeparator) + p.ids.Next() + string(message.PropertySeparator)
	}
	ext := map[string]string{
		"a": producerGroup, "b": s.topic, "c": "TBW102", "d": "4", "e": strconv.Itoa(s.queue),
		"f": "0", "g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": "0", "i": props,
		"j": "0", "k": "false", "m": "false",
	}
	return remoting.NewRequest(remoting.SendMessageV2, ext, p.body)
}

// tickets hands out the run's message budget; take reports false once it is
// spent (a zero budget never is).
type tickets struct {
	limit  int64
	issued atomic.Int64
}

func (t *tickets) take() bool { return t.limit <= 0 || t.issued.Add(1) <= t.limit }

// produce runs cfg.Producers senders until stop ends or the budget is spent,
// then waits for every request in flight. Requests use reqCtx (not stop), so
// the end of the run does not turn answers on their way into errors.
func produce(stop, reqCtx context.Context, cfg *Config, clients []*remoting.Client, sl []slot, rec *recorder) {
	p := newSender(cfg)
	budget := &tickets{limit: cfg.Messages}
	var windows []chan struct{}
	if cfg.Async {
		windows = make([]chan struct{}, len(clients))
		for i := range windows {
			windows[i] = make(chan struct{}, cfg.Window)
		}
	}
	var senders, inflight sync.WaitGroup
	for i := 0; i < cfg.Producers; i++ {
		senders.Add(1)
		go func(i int) {
			defer senders.Done()
			rc := clients[i%len(clients)]
			for n := i; ; n++ {
				s := sl[n%len(sl)]
				if cfg.Async {
					win := windows[i%len(clients)]
					select {
					case win <- struct{}{}:
					case <-stop.Done():
						return
					}
					if stop.Err() != nil || !budget.take() {
						<-win
						return
					}
					inflight.Add(1)
					sendAsync(reqCtx, cfg, rc, p.request(s), s.addr, rec, func() { <-win; inflight.Done() })
					continue
				}
				if stop.Err() != nil || !budget.take() {
					return
				}
				sendSync(reqCtx, cfg, rc, p.request(s), s.addr, rec)
			}
		}(i)
	}
	senders.Wait()
	inflight.Wait()
}

// sendSync sends one request and records its outcome.
func sendSync(ctx context.Context, cfg *Config, rc *remoting.Client, req *remoting.Command, addr string, rec *recorder) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	t0 := time.Now()
	resp, err := rc.Invoke(ctx, addr, req)
	recordSend(rec, time.Since(t0), int64(len(req.Body)), resp, err)
}

// sendAsync sends one request; done runs once its outcome is recorded.
func sendAsync(ctx context.Context, cfg *Config, rc *remoting.Client, req *remoting.Command, addr string, rec *recorder, done func()) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	size := int64(len(req.Body))
	t0 := time.Now()
	err := rc.InvokeAsync(ctx, addr, req, func(resp *remoting.Command, err error) {
		recordSend(rec, time.Since(t0), size, resp, err)
		cancel()
		done()
	})
	if err != nil { // the callback will not run
		recordSend(rec, 0, size, nil, err)
		cancel()
		done()
	}
}

func recordSend(rec *recorder, lat time.Duration, size int64, resp *remoting.Command, err error) {
	switch {
	case err != nil:
		rec.fail(transportClass(err))
	case resp.Code != remoting.Success:
		rec.fail(responseClass(resp.Code))
	default:
		rec.ok(lat, 1, size)
	}
}
