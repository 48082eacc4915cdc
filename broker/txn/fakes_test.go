package txn

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
)

var storeHost = netip.MustParseAddrPort("10.0.0.1:10911")

// fakeStore is an in-memory CommitLog with consume queues. Records are
// encoded and decoded with the real codec so the tests exercise it.
type fakeStore struct {
	now func() time.Time

	mu         sync.Mutex
	log        map[int64][]byte             // commit-log offset -> record
	queues     map[string]map[int32][]int64 // topic -> queue -> commit-log offsets
	nextPhys   int64
	failAppend int
	appends    int
	// appendGate, when set, is received from before an append is stored.
	appendGate chan struct{}
	progress   Progress
	saves      int
}

func newFakeStore(now func() time.Time) *fakeStore {
	return &fakeStore{now: now, log: map[int64][]byte{}, queues: map[string]map[int32][]int64{}, nextPhys: 5000}
}

func (s *fakeStore) putLocked(m *message.Ext) error {
	cp := *m
	cp.StoreHost = storeHost
	cp.StoreTimestamp = s.now().UnixMilli()
	cp.CommitLogOffset = s.nextPhys
	q := s.queues[cp.Topic]
	if q == nil {
		q = map[int32][]int64{}
		s.queues[cp.Topic] = q
	}
	cp.QueueOffset = int64(len(q[cp.QueueID]))
	b, err := message.AppendRecord(nil, &cp)
	if err != nil {
		return err
	}
	q[cp.QueueID] = append(q[cp.QueueID], cp.CommitLogOffset)
	s.log[cp.CommitLogOffset] = b
	s.nextPhys += int64(len(b))
	m.CommitLogOffset, m.QueueOffset, m.StoreTimestamp, m.StoreHost = cp.CommitLogOffset, cp.QueueOffset, cp.StoreTimestamp, cp.StoreHost
	return nil
}

func (s *fakeStore) Append(_ context.Context, msgs []*message.Ext) error {
	s.mu.Lock()
	gate := s.appendGate
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAppend > 0 {
		s.failAppend--
		return errors.New("injected append failure")
	}
	s.appends++
	for _, m := range msgs {
		if err := s.putLocked(m); err != nil {
			return err
		}
	}
	return nil
}

func (s *fakeStore) decodeLocked(off int64) (*message.Ext, error) {
	b, ok := s.log[off]
	if !ok {
		return nil, fmt.Errorf("no record at %d", off)
	}
	e, _, err := message.DecodeRecord(b)
	return e, err
}

func (s *fakeStore) ReadRecord(_ context.Context, off int64) (*message.Ext, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.decodeLocked(off)
}

func (s *fakeStore) ReadQueueMessages(_ context.Context, topic string, qid int32, from int64, max int) ([]*message.Ext, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[topic][qid]
	var out []*message.Ext
	for i := max64(from, 0); i < int64(len(q)) && len(out) < max; i++ {
		e, err := s.decodeLocked(q[i])
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func (s *fakeStore) LoadTxnProgress(context.Context) (Progress, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.progress, nil
}

func (s *fakeStore) SaveTxnProgress(_ context.Context, p Progress) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.progress = p
	s.saves++
	return nil
}

// queue returns the decoded records of every queue of a topic.
func (s *fakeStore) queue(t testing.TB, topic string) []*message.Ext {
	t.Helper()
	s.mu.Lock()
	var qids []int32
	for qid := range s.queues[topic] {
		qids = append(qids, qid)
	}
	s.mu.Unlock()
	var all []*message.Ext
	for _, qid := range qids {
		m, err := s.ReadQueueMessages(context.Background(), topic, qid, 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m...)
	}
	return all
}

// fakeChecker records the check requests.
type fakeChecker struct {
	mu     sync.Mutex
	groups []string
	reqs   []*remoting.Command
	n      atomic.Int32
}

func (c *fakeChecker) SendCheck(_ context.Context, group string, req *remoting.Command) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.groups = append(c.groups, group)
	c.reqs = append(c.reqs, req)
	c.n.Add(1)
	return nil
}

func (c *fakeChecker) sent() []*remoting.Command {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*remoting.Command(nil), c.reqs...)
}

// manualClock is a settable clock.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	t       testing.TB
	clock   *manualClock
	store   *fakeStore
	checker *fakeChecker
	svc     *Service
}

func newHarness(t testing.TB, mut func(*Config)) *harness {
	t.Helper()
	clk := &manualClock{t: time.UnixMilli(1_700_000_000_000)}
	h := &harness{t: t, clock: clk, store: newFakeStore(clk.Now), checker: &fakeChecker{}}
	h.svc = h.newService(mut)
	return h
}

func (h *harness) newService(mut func(*Config)) *Service {
	h.t.Helper()
	cfg := Config{Store: h.store, Checker: h.checker, Progress: h.store, BrokerName: "broker-a",
		Now: h.clock.Now, CheckInterval: time.Hour, Timeout: 6 * time.Second, CheckMax: 3}
	if mut != nil {
		mut(&cfg)
	}
	svc, err := NewService(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return svc
}

func (h *harness) start() {
	h.t.Helper()
	if err := h.svc.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(h.svc.Stop)
}

// sendHalf stores a transactional message the way the broker's send path
// does and returns the producer's view of the answer.
func (h *harness) sendHalf(body string, queueID int32) (HalfSendResult, *message.Ext) {
	h.t.Helper()
	return h.sendHalfWithProps(body, queueID, nil)
}

// sendHalfWithProps is sendHalf with extra message properties.
func (h *harness) sendHalfWithProps(body string, queueID int32, extra map[string]string) (HalfSendResult, *message.Ext) {
	h.t.Helper()
	msg := &message.Ext{
		Message: message.Message{Topic: "Orders", Flag: 1, Body: []byte(body), Properties: map[string]string{
			message.PropertyTransactionPrepared: "true",
			message.PropertyProducerGroup:       "pg",
			message.PropertyUniqKey:             "UNIQ-" + body,
			message.PropertyTags:                "TagA",
		}},
		QueueID:       queueID,
		SysFlag:       message.TransactionPreparedType,
		BornTimestamp: h.clock.Now().UnixMilli(),
		BornHost:      netip.MustParseAddrPort("10.9.9.9:1234"),
	}
	for k, v := range extra {
		msg.Properties[k] = v
	}
	half, err := PrepareHalf(msg)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.store.Append(context.Background(), []*message.Ext{half}); err != nil {
		h.t.Fatal(err)
	}
	return SendResult(half, queueID), half
}

// endRequest builds END_TRANSACTION as the Go producer does from a send result.
func (h *harness) endRequest(r HalfSendResult, state int32) EndRequest {
	h.t.Helper()
	_, off, err := message.ParseOffsetMsgID(r.MsgID)
	if err != nil {
		h.t.Fatal(err)
	}
	req, err := ParseEndTransactionHeader(map[string]string{
		"producerGroup": "pg", "tranStateTableOffset": strconv.FormatInt(r.QueueOffset, 10),
		"commitLogOffset": strconv.Itoa(int(off)), "commitOrRollback": strconv.Itoa(int(state)),
		"fromTransactionCheck": "false", "msgId": "UNIQ", "transactionId": r.TransactionID, "bname": "broker-a",
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return req
}

func (h *harness) end(req EndRequest) (Outcome, error) {
	return h.svc.EndTransaction(context.Background(), req)
}
