package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/raftmq/raftmq/acl"
	"github.com/raftmq/raftmq/broker/retry"
	"github.com/raftmq/raftmq/broker/schedule"
	"github.com/raftmq/raftmq/broker/txn"
	"github.com/raftmq/raftmq/dledger"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
	"github.com/raftmq/raftmq/wire"
)

// Keys of the replicated key/value space used by the services.
const (
	kvDelayOffsets = "schedule.offsets"
	kvTxnProgress  = "txn.progress"
)

// services wires the leader-only background services (delayed-message
// re-put, transaction checks) to the broker: it is their Store, OffsetStore,
// ProgressStore and Checker.
type services struct {
	b      *Broker
	levels schedule.Levels
	sched  *schedule.Service
	txn    *txn.Service

	mu      sync.Mutex
	running bool
}

func newServices(b *Broker, levels schedule.Levels) (*services, error) {
	s := &services{b: b, levels: levels}
	var err error
	s.sched, err = schedule.NewService(schedule.Config{Levels: levels, Store: s, Offsets: s, Logger: b.log})
	if err != nil {
		return nil, err
	}
	s.txn, err = txn.NewService(s.txnConfig(levels))
	if err != nil {
		return nil, err
	}
	return s, nil
}

// txnConfig is the transaction service's configuration: broker.conf's
// transactionCheckInterval, transactionTimeOut and transactionCheckMax.
func (s *services) txnConfig(levels schedule.Levels) txn.Config {
	b := s.b
	return txn.Config{
		Store: s, Checker: s, Progress: s, BrokerName: b.cfg.BrokerName, Logger: b.log,
		CheckInterval: b.cfg.TransactionCheckInterval, Timeout: b.cfg.TransactionTimeout,
		CheckMax: int32(b.cfg.TransactionCheckMax),
		FinalizeCommitted: func(e *message.Ext) (*message.Ext, error) {
			out, _, err := levels.ToDelayQueue(e)
			return out, err
		},
	}
}

// startLeader starts the leader-only services for the current term.
func (s *services) startLeader() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running || !s.b.node.IsLeader() {
		return
	}
	s.running = true
	if err := s.sched.Start(s.b.ctx); err != nil {
		s.b.log.Error("starting the delay service failed", "error", err)
	}
	if err := s.txn.Start(s.b.ctx); err != nil {
		s.b.log.Error("starting the transaction service failed", "error", err)
	}
}

// stopLeader stops them and waits.
func (s *services) stopLeader() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return
	}
	s.running = false
	s.sched.Stop()
	s.txn.Stop()
}

func (s *services) stop() { s.stopLeader() }

// onDispatch wakes the delay service when its queues grow.
func (s *services) onDispatch(topic string, _ int32, _ int64) {
	if topic == schedule.Topic {
		s.sched.Notify()
	}
}

// ReadQueue implements schedule.Store.
func (s *services) ReadQueue(_ context.Context, topic string, queueID int32, from int64, max int) ([]schedule.QueueEntry, error) {
	cq := s.b.node.ConsumeQueue()
	if m := cq.MinOffset(topic, queueID); from < m {
		from = m
	}
	if from >= cq.MaxOffset(topic, queueID) || max <= 0 {
		return nil, nil
	}
	entries, err := cq.Read(topic, queueID, from, max, nil)
	if err != nil {
		return nil, err
	}
	out := make([]schedule.QueueEntry, len(entries))
	for i, e := range entries {
		out[i] = schedule.QueueEntry{QueueOffset: from + int64(i), CommitLogOffset: e.PhysOffset, Size: e.Size, TagsCode: e.TagsCode}
	}
	return out, nil
}

// ReadQueueMessages implements txn.Store.
func (s *services) ReadQueueMessages(ctx context.Context, topic string, queueID int32, from int64, max int) ([]*message.Ext, error) {
	entries, err := s.ReadQueue(ctx, topic, queueID, from, max)
	if err != nil {
		return nil, err
	}
	out := make([]*message.Ext, 0, len(entries))
	for _, e := range entries {
		m, err := s.ReadRecord(ctx, e.CommitLogOffset)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, nil
}

// ReadRecord implements schedule.Store and txn.Store.
func (s *services) ReadRecord(_ context.Context, off int64) (*message.Ext, error) {
	rec, err := s.b.readRecord(off)
	if err != nil {
		return nil, err
	}
	m, _, err := message.DecodeRecord(rec)
	return m, err
}

// Append implements schedule.Store and txn.Store: one Raft entry.
func (s *services) Append(ctx context.Context, msgs []*message.Ext) error {
	return s.b.appendExts(ctx, msgs)
}

// LoadDelayOffsets implements schedule.OffsetStore.
func (s *services) LoadDelayOffsets(context.Context) (map[int32]int64, error) {
	v, ok := s.b.meta.KV(kvDelayOffsets)
	if !ok {
		return map[int32]int64{}, nil
	}
	return schedule.UnmarshalOffsets(v)
}

// SaveDelayOffsets implements schedule.OffsetStore.
func (s *services) SaveDelayOffsets(ctx context.Context, offsets map[int32]int64) error {
	_, err := s.b.propose(ctx, &metaCommand{Op: opPutKV, Key: kvDelayOffsets, Value: schedule.MarshalOffsets(offsets)})
	return err
}

// LoadTxnProgress implements txn.ProgressStore.
func (s *services) LoadTxnProgress(context.Context) (txn.Progress, error) {
	v, ok := s.b.meta.KV(kvTxnProgress)
	if !ok {
		return txn.Progress{}, nil
	}
	return txn.UnmarshalProgress(v)
}

// SaveTxnProgress implements txn.ProgressStore.
func (s *services) SaveTxnProgress(ctx context.Context, p txn.Progress) error {
	_, err := s.b.propose(ctx, &metaCommand{Op: opPutKV, Key: kvTxnProgress, Value: txn.MarshalProgress(p)})
	return err
}

// SendCheck implements txn.Checker: CHECK_TRANSACTION_STATE to one producer.
func (s *services) SendCheck(_ context.Context, group string, req *remoting.Command) error {
	c := s.b.clients.producerConn(group)
	if c == nil {
		return fmt.Errorf("no live producer of group %s", group)
	}
	return c.InvokeOneway(req)
}

// appendExts stores msgs as one Raft entry and fills in their offsets. It is
// the path of the broker's own appends (delayed delivery, transaction
// commit, send-back, DLQ), which carry their original's UNIQ_KEY and must
// never be taken for duplicates.
func (b *Broker) appendExts(ctx context.Context, msgs []*message.Ext) error {
	_, err := b.appendRecords(ctx, msgs, false)
	return err
}

// appendSends stores a producer's msgs deduplicated by (topic, UNIQ_KEY)
// within duplicateWindowSeconds: a message already stored in the window is
// not stored again and is replaced in msgs by the stored original (its
// offsets, store host and properties); dup[i] says which.
func (b *Broker) appendSends(ctx context.Context, msgs []*message.Ext) (dup []bool, err error) {
	return b.appendRecords(ctx, msgs, true)
}

func (b *Broker) appendRecords(ctx context.Context, msgs []*message.Ext, send bool) ([]bool, error) {
	records := make([][]byte, 0, len(msgs))
	now := time.Now().UnixMilli()
	for _, m := range msgs {
		m.StoreHost = b.storeHost
		if m.StoreTimestamp == 0 {
			m.StoreTimestamp = now
		}
		rec, err := message.AppendRecord(nil, m)
		if err != nil {
			return nil, encodeError{err}
		}
		records = append(records, rec)
	}
	var res []dledger.AppendResult
	var err error
	if send {
		// A producer's send waits under a deadline shared by the sends of
		// the same 100 ms instead of a timer of its own: a timer per send
		// cost the leader 6% of its CPU (timer heap locks) under load. The
		// connection closing does not cut the wait short; the answer is
		// then dropped.
		res, err = b.node.AppendSends(b.sendDeadline.context(), records)
	} else {
		actx, cancel := context.WithTimeout(ctx, sendTimeout)
		res, err = b.node.AppendMessages(actx, records)
		cancel()
	}
	if err != nil {
		return nil, err
	}
	if len(res) != len(msgs) {
		return nil, fmt.Errorf("append stored %d of %d messages", len(res), len(msgs))
	}
	dup := make([]bool, len(msgs))
	stored := 0
	for i, r := range res {
		if r.Duplicate {
			orig, _, err := message.DecodeRecord(r.Record)
			if err != nil {
				return nil, fmt.Errorf("stored original of a duplicate at %d: %w", r.PhysicalOffset, err)
			}
			*msgs[i], dup[i] = *orig, true
			continue
		}
		msgs[i].CommitLogOffset = r.PhysicalOffset
		msgs[i].QueueOffset = r.QueueOffset
		msgs[i].StoreTimestamp = r.StoreTimestamp
		stored++
	}
	b.stats.putMessages(stored)
	return dup, nil
}

// encodeError is a message that cannot be encoded as a record: bad input,
// nothing was stored.
type encodeError struct{ error }

func (e encodeError) Unwrap() error { return e.error }

// sendKind says how the send path rewrote a message.
type sendKind int

const (
	sendPlain sendKind = iota
	sendDelayed
	sendHalf
)

// rewriteForServices turns a transactional message into its half and a
// delayed one into its SCHEDULE_TOPIC_XXXX record.
func (b *Broker) rewriteForServices(m *message.Ext) (sendKind, error) {
	if txn.IsHalfSend(&m.Message) || message.TransactionType(m.SysFlag) == message.TransactionPreparedType {
		half, err := txn.PrepareHalf(m)
		if err != nil {
			return sendPlain, err
		}
		*m = *half
		return sendHalf, nil
	}
	out, delayed, err := b.services.levels.ToDelayQueue(m)
	if err != nil {
		return sendPlain, err
	}
	if delayed {
		*m = *out
		return sendDelayed, nil
	}
	return sendPlain, nil
}

// handleSendBack serves CONSUMER_SEND_MSG_BACK (36).
func (b *Broker) handleSendBack(ctx context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	sb, err := retry.ParseSendBackHeader(req.ExtFields)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	if resp := b.writableOrError(); resp != nil {
		return resp
	}
	orig, err := b.services.ReadRecord(ctx, sb.Offset)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, fmt.Sprintf("no message at offset %d: %v", sb.Offset, err))
	}
	if b.authz != nil {
		// The offset may name any topic's message; copying it into the caller's
		// retry topic would let a consumer read what it may not subscribe to.
		if err := b.authz.MayUseTopic(req, orig.Topic, acl.PermSub); err != nil {
			return remoting.NewResponse(remoting.NoPermission, err.Error())
		}
	}
	g, found := b.meta.Group(sb.Group)
	if !found {
		if !b.cfg.AutoCreateSubGroup {
			return remoting.NewResponse(remoting.SubscriptionGroupNotExist, "subscription group "+sb.Group+" does not exist")
		}
		g = DefaultGroupConfig(sb.Group)
		if _, err := b.propose(ctx, &metaCommand{Op: opPutGroups, Groups: []GroupConfig{g}}); err != nil {
			return b.writeError(err)
		}
	}
	res, err := retry.SendBack(sb, orig, retry.GroupConfig{RetryQueueNums: g.RetryQueueNums, RetryMaxTimes: g.RetryMaxTimes})
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	if res.Drop {
		return ok()
	}
	m := res.Message
	tc := retry.RetryTopicConfig(sb.Group, g.RetryQueueNums)
	if res.ToDLQ {
		tc = retry.DLQTopicConfig(sb.Group)
	}
	if err := b.ensureTopic(ctx, tc); err != nil {
		return b.writeError(err)
	}
	if _, err := b.rewriteForServices(m); err != nil {
		return remoting.NewResponse(remoting.MessageIllegal, err.Error())
	}
	if err := b.appendExts(ctx, []*message.Ext{m}); err != nil {
		return b.writeError(err)
	}
	return ok()
}

// handleEndTransaction serves END_TRANSACTION (37).
func (b *Broker) handleEndTransaction(ctx context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	er, err := txn.ParseEndTransactionHeader(req.ExtFields)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	if b.authz != nil {
		// The header names the half by offset only: it must be one the caller may publish.
		if half, err := b.services.ReadRecord(ctx, er.CommitLogOffset); err == nil {
			topic := half.Properties[message.PropertyRealTopic]
			if topic == "" {
				topic = half.Topic
			}
			if err := b.authz.MayUseTopic(req, topic, acl.PermPub); err != nil {
				return remoting.NewResponse(remoting.NoPermission, err.Error())
			}
		}
	}
	outcome, err := b.services.txn.EndTransaction(ctx, er)
	if err != nil {
		if errors.Is(err, txn.ErrNotReady) {
			return remoting.NewResponse(remoting.ServiceNotAvailable, err.Error()+"; "+b.notLeaderRemark())
		}
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	if outcome == txn.Ignored || req.IsOneway() {
		return nil
	}
	r := ok()
	r.Remark = outcome.String()
	return r
}

// serviceTopics are the topics the services write to.
func (b *Broker) serviceTopics() []wire.TopicConfig {
	mk := func(name string, queues int32) wire.TopicConfig {
		return wire.NewTopicConfig(name, queues, wire.PermRead|wire.PermWrite)
	}
	return []wire.TopicConfig{
		mk(schedule.Topic, b.services.levels.MaxLevel()),
		mk(txn.HalfTopic, 1),
		mk(txn.OpTopic, 1),
		mk(txn.CheckMaxTimeTopic, 1),
	}
}

func itoa32(v int32) string { return strconv.Itoa(int(v)) }
