// Package lockmgr owns the broker side of RocketMQ's rebalance locks: the
// per-consumer-group, per-message-queue ownership that orderly consumers take
// with LOCK_BATCH_MQ (41) and release with UNLOCK_BATCH_MQ (42)
// (PROTOCOL.md §5.5, gotcha G21).
//
// # Semantics
//
// A queue (topic, brokerName, queueId) of a group is owned by at most one
// clientID. A lock call takes a queue that is free, already held by the
// caller, or whose holder has not renewed it for LockTTL (60 s by default,
// Java's rocketmq.broker.rebalance.lockMaxLiveTime), and renews the queues it
// returns. An unlock releases only queues held by that clientID. The Go client
// re-locks every 20 s and treats its own lock as stale after 30 s.
//
// # Raft
//
// Locks are leader-local soft state and are deliberately NOT replicated: a
// new leader starts with no locks and the clients re-lock within 20 s (their
// periodic lockAll). Until then an orderly Go consumer does not pull the
// queue, so the cost of a failover is a pause of at most one re-lock period,
// never two owners of a queue on one leader. The broker should call Reset
// when it loses leadership so that a later re-election does not resurrect
// stale owners.
//
// # Wiring (for the broker)
//
//   - Create one Manager per broker with New(Config{}) (zero Config = 60 s
//     TTL, wall clock).
//   - LOCK_BATCH_MQ (41): resp, err := m.HandleLock(req.Body); on error answer
//     SYSTEM_ERROR (1) with err.Error() as remark; else code 0 with body resp.
//   - UNLOCK_BATCH_MQ (42): err := m.HandleUnlock(req.Body); answer 0 or 1.
//   - On a client connection close / heartbeat expiry: m.DropClient(clientID).
//   - Periodically (e.g. with the 10 s channel scan): m.Expire().
//   - On leadership loss: m.Reset().
//   - Pull of an orderly group may consult m.IsLocked; the send path's
//     retry/DLQ decision may consult m.GroupHasLiveLocks (Java 5.x sends
//     retries of a group holding orderly locks to the DLQ).
package lockmgr

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultLockTTL is how long a lock lives without renewal (Java's
// rocketmq.broker.rebalance.lockMaxLiveTime).
const DefaultLockTTL = 60 * time.Second

// MaxBodyBytes bounds the JSON body accepted by the decoders. A lock body for
// thousands of queues is a few hundred KiB; anything larger is refused before
// it is parsed.
const MaxBodyBytes = 4 << 20

// MaxQueuesPerRequest bounds the number of queues in one lock/unlock body.
const MaxQueuesPerRequest = 65536

// MessageQueue identifies one queue of a topic on a broker, exactly as the
// clients encode it in lock bodies (§5.9).
type MessageQueue struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int    `json:"queueId"`
}

// LockBatchRequestBody is the body of LOCK_BATCH_MQ and, with the same
// fields, UNLOCK_BATCH_MQ. Go sends consumerGroup, clientId and mqSet; Java
// adds onlyThisBroker.
type LockBatchRequestBody struct {
	ConsumerGroup  string         `json:"consumerGroup"`
	ClientID       string         `json:"clientId"`
	OnlyThisBroker bool           `json:"onlyThisBroker"`
	MQSet          []MessageQueue `json:"mqSet"`
}

// UnlockBatchRequestBody is the body of UNLOCK_BATCH_MQ.
type UnlockBatchRequestBody = LockBatchRequestBody

// LockBatchResponseBody is the body of a successful LOCK_BATCH_MQ answer.
// LockOKMQSet is always encoded as an array (never null).
type LockBatchResponseBody struct {
	LockOKMQSet []MessageQueue `json:"lockOKMQSet"`
}

// ErrInvalidBody is wrapped by every decoding/validation error.
var ErrInvalidBody = errors.New("lockmgr: invalid lock body")

// DecodeLockBatchRequest parses and validates a lock or unlock body. It never
// panics and refuses bodies larger than MaxBodyBytes or with more than
// MaxQueuesPerRequest queues.
func DecodeLockBatchRequest(b []byte) (LockBatchRequestBody, error) {
	var req LockBatchRequestBody
	if len(b) == 0 {
		return req, fmt.Errorf("%w: empty body", ErrInvalidBody)
	}
	if len(b) > MaxBodyBytes {
		return req, fmt.Errorf("%w: body of %d bytes exceeds %d", ErrInvalidBody, len(b), MaxBodyBytes)
	}
	if err := json.Unmarshal(b, &req); err != nil {
		return LockBatchRequestBody{}, fmt.Errorf("%w: %v", ErrInvalidBody, err)
	}
	if req.ConsumerGroup == "" {
		return LockBatchRequestBody{}, fmt.Errorf("%w: consumerGroup is empty", ErrInvalidBody)
	}
	if req.ClientID == "" {
		return LockBatchRequestBody{}, fmt.Errorf("%w: clientId is empty", ErrInvalidBody)
	}
	if len(req.MQSet) > MaxQueuesPerRequest {
		return LockBatchRequestBody{}, fmt.Errorf("%w: %d queues exceed %d", ErrInvalidBody, len(req.MQSet), MaxQueuesPerRequest)
	}
	for _, mq := range req.MQSet {
		if mq.Topic == "" || mq.QueueID < 0 {
			return LockBatchRequestBody{}, fmt.Errorf("%w: bad queue %+v", ErrInvalidBody, mq)
		}
	}
	return req, nil
}

// EncodeLockBatchResponse renders the LOCK_BATCH_MQ answer body.
func EncodeLockBatchResponse(locked []MessageQueue) []byte {
	if locked == nil {
		locked = []MessageQueue{}
	}
	b, err := json.Marshal(LockBatchResponseBody{LockOKMQSet: locked})
	if err != nil {
		// Unreachable for strings and ints; answer "nothing locked" rather
		// than a malformed body.
		return []byte(`{"lockOKMQSet":[]}`)
	}
	return b
}

// Config configures a Manager. The zero value is usable.
type Config struct {
	// LockTTL is the lifetime of an unrenewed lock; 0 means DefaultLockTTL.
	LockTTL time.Duration
	// Now is the clock; nil means time.Now. Tests inject a fake.
	Now func() time.Time
	// Logger receives debug logs of lock changes; nil means a null logger.
	Logger hclog.Logger
}

// lockEntry is the current owner of one queue of one group.
type lockEntry struct {
	clientID  string
	lastRenew time.Time
}

// Manager holds the rebalance locks of all groups. It is safe for concurrent
// use.
type Manager struct {
	ttl    time.Duration
	now    func() time.Time
	logger hclog.Logger

	mu     sync.Mutex
	groups map[string]map[MessageQueue]*lockEntry
}

// New returns an empty Manager.
func New(cfg Config) *Manager {
	m := &Manager{
		ttl:    cfg.LockTTL,
		now:    cfg.Now,
		logger: cfg.Logger,
		groups: make(map[string]map[MessageQueue]*lockEntry),
	}
	if m.ttl <= 0 {
		m.ttl = DefaultLockTTL
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.logger == nil {
		m.logger = hclog.NewNullLogger()
	}
	return m
}

func (m *Manager) expired(e *lockEntry, now time.Time) bool {
	return now.Sub(e.lastRenew) > m.ttl
}

// TryLockBatch locks for clientID every queue of mqs that is free, expired or
// already held by clientID, renews them, and returns them (deduplicated, in
// request order). Queues held by another live client are left out.
func (m *Manager) TryLockBatch(group, clientID string, mqs []MessageQueue) []MessageQueue {
	if group == "" || clientID == "" {
		return []MessageQueue{}
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	table := m.groups[group]
	if table == nil {
		table = make(map[MessageQueue]*lockEntry)
		m.groups[group] = table
	}
	locked := make([]MessageQueue, 0, len(mqs))
	seen := make(map[MessageQueue]struct{}, len(mqs))
	for _, mq := range mqs {
		if _, dup := seen[mq]; dup {
			continue
		}
		seen[mq] = struct{}{}
		e := table[mq]
		switch {
		case e == nil:
			table[mq] = &lockEntry{clientID: clientID, lastRenew: now}
			m.logger.Debug("queue locked", "group", group, "mq", mq, "client", clientID)
		case e.clientID == clientID:
			e.lastRenew = now
		case m.expired(e, now):
			m.logger.Info("expired queue lock taken over", "group", group, "mq", mq,
				"old_client", e.clientID, "new_client", clientID)
			e.clientID = clientID
			e.lastRenew = now
		default:
			continue
		}
		locked = append(locked, mq)
	}
	if len(table) == 0 {
		delete(m.groups, group)
	}
	return locked
}

// UnlockBatch releases the queues of mqs that clientID holds and returns how
// many it released. Queues held by others are untouched.
func (m *Manager) UnlockBatch(group, clientID string, mqs []MessageQueue) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	table := m.groups[group]
	n := 0
	for _, mq := range mqs {
		if e := table[mq]; e != nil && e.clientID == clientID {
			delete(table, mq)
			n++
		}
	}
	if table != nil && len(table) == 0 {
		delete(m.groups, group)
	}
	return n
}

// IsLocked reports whether clientID holds a live lock on mq in group.
func (m *Manager) IsLocked(group string, mq MessageQueue, clientID string) bool {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.groups[group][mq]
	return e != nil && e.clientID == clientID && !m.expired(e, now)
}

// Owner returns the live holder of mq in group, if any.
func (m *Manager) Owner(group string, mq MessageQueue) (clientID string, ok bool) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.groups[group][mq]
	if e == nil || m.expired(e, now) {
		return "", false
	}
	return e.clientID, true
}

// GroupHasLiveLocks reports whether any queue of topic ("" = any topic) is
// locked (unexpired) in group. Java 5.x sends retries of a group that holds
// orderly locks straight to its DLQ (handleRetryAndDLQ, isLockAllExpired).
func (m *Manager) GroupHasLiveLocks(group, topic string) bool {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for mq, e := range m.groups[group] {
		if (topic == "" || mq.Topic == topic) && !m.expired(e, now) {
			return true
		}
	}
	return false
}

// Expire drops every lock not renewed within the TTL and returns how many it
// dropped. Expired locks are already ignored by the lookups; this only frees
// memory.
func (m *Manager) Expire() int {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for group, table := range m.groups {
		for mq, e := range table {
			if m.expired(e, now) {
				delete(table, mq)
				n++
			}
		}
		if len(table) == 0 {
			delete(m.groups, group)
		}
	}
	return n
}

// DropClient releases every lock held by clientID in any group (its
// connection closed or its heartbeats expired) and returns how many.
func (m *Manager) DropClient(clientID string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for group, table := range m.groups {
		for mq, e := range table {
			if e.clientID == clientID {
				delete(table, mq)
				n++
			}
		}
		if len(table) == 0 {
			delete(m.groups, group)
		}
	}
	if n > 0 {
		m.logger.Debug("client locks dropped", "client", clientID, "count", n)
	}
	return n
}

// Reset drops all locks (leadership lost).
func (m *Manager) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.groups = make(map[string]map[MessageQueue]*lockEntry)
}

// HandleLock serves a LOCK_BATCH_MQ body: decode, lock, encode the answer.
func (m *Manager) HandleLock(body []byte) ([]byte, error) {
	req, err := DecodeLockBatchRequest(body)
	if err != nil {
		return nil, err
	}
	return EncodeLockBatchResponse(m.TryLockBatch(req.ConsumerGroup, req.ClientID, req.MQSet)), nil
}

// HandleUnlock serves an UNLOCK_BATCH_MQ body.
func (m *Manager) HandleUnlock(body []byte) error {
	req, err := DecodeLockBatchRequest(body)
	if err != nil {
		return err
	}
	m.UnlockBatch(req.ConsumerGroup, req.ClientID, req.MQSet)
	return nil
}
