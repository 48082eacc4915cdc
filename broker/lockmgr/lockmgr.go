// Package lockmgr owns the broker side of RocketMQ's rebalance locks: the
// per-consumer-group, per-message-queue ownership that orderly consumers take
// with LOCK_BATCH_MQ (41) and release with UNLOCK_BATCH_MQ (42)
// (docs/protocol.md §5.5, G21).
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
// # Wiring (broker)
//
//   - The broker holds one Manager, New(Config{Logger: ...}) (60 s TTL, wall
//     clock).
//   - LOCK_BATCH_MQ (41), leader only: body, err := m.HandleLock(req.Body);
//     an error answers SYSTEM_ERROR (1) with err.Error() as remark, else code
//     0 with body.
//   - UNLOCK_BATCH_MQ (42): err := m.HandleUnlock(req.Body); answers 0 or 1.
//   - A closed client connection and UNREGISTER_CLIENT: m.DropClient(clientID).
//     A client whose heartbeats stopped loses its locks by the TTL.
//   - The 10 s client scan: m.Expire().
//   - Leadership lost: m.Reset().
//   - A send to %RETRY%<group> goes to the group's DLQ while
//     m.GroupHasLiveLocks(group, "") (Java 5.x's handleRetryAndDLQ).
package lockmgr

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// defaultLockTTL is how long a lock lives without renewal (Java's
// rocketmq.broker.rebalance.lockMaxLiveTime).
const defaultLockTTL = 60 * time.Second

// maxBodyBytes bounds the JSON body accepted by the decoders. A lock body for
// thousands of queues is a few hundred KiB; anything larger is refused before
// it is parsed.
const maxBodyBytes = 4 << 20

// maxQueuesPerRequest bounds the number of queues in one lock/unlock body.
const maxQueuesPerRequest = 65536

// messageQueue identifies one queue of a topic on a broker, exactly as the
// clients encode it in lock bodies (docs/protocol.md §5.9).
type messageQueue struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int    `json:"queueId"`
}

// lockBatchRequestBody is the body of LOCK_BATCH_MQ and, with the same
// fields, UNLOCK_BATCH_MQ. Go sends consumerGroup, clientId and mqSet; Java
// adds onlyThisBroker.
type lockBatchRequestBody struct {
	ConsumerGroup  string         `json:"consumerGroup"`
	ClientID       string         `json:"clientId"`
	OnlyThisBroker bool           `json:"onlyThisBroker"`
	MQSet          []messageQueue `json:"mqSet"`
}

// lockBatchResponseBody is the body of a successful LOCK_BATCH_MQ answer.
// LockOKMQSet is always encoded as an array (never null).
type lockBatchResponseBody struct {
	LockOKMQSet []messageQueue `json:"lockOKMQSet"`
}

// errInvalidBody is wrapped by every decoding/validation error.
var errInvalidBody = errors.New("lockmgr: invalid lock body")

// decodeLockBatchRequest parses and validates a lock or unlock body. It never
// panics and refuses bodies larger than maxBodyBytes or with more than
// maxQueuesPerRequest queues.
func decodeLockBatchRequest(b []byte) (lockBatchRequestBody, error) {
	var req lockBatchRequestBody
	if len(b) == 0 {
		return req, fmt.Errorf("%w: empty body", errInvalidBody)
	}
	if len(b) > maxBodyBytes {
		return req, fmt.Errorf("%w: body of %d bytes exceeds %d", errInvalidBody, len(b), maxBodyBytes)
	}
	if err := json.Unmarshal(b, &req); err != nil {
		return lockBatchRequestBody{}, fmt.Errorf("%w: %v", errInvalidBody, err)
	}
	if req.ConsumerGroup == "" {
		return lockBatchRequestBody{}, fmt.Errorf("%w: consumerGroup is empty", errInvalidBody)
	}
	if req.ClientID == "" {
		return lockBatchRequestBody{}, fmt.Errorf("%w: clientId is empty", errInvalidBody)
	}
	if len(req.MQSet) > maxQueuesPerRequest {
		return lockBatchRequestBody{}, fmt.Errorf("%w: %d queues exceed %d", errInvalidBody, len(req.MQSet), maxQueuesPerRequest)
	}
	for _, mq := range req.MQSet {
		if mq.Topic == "" || mq.QueueID < 0 {
			return lockBatchRequestBody{}, fmt.Errorf("%w: bad queue %+v", errInvalidBody, mq)
		}
	}
	return req, nil
}

// encodeLockBatchResponse renders the LOCK_BATCH_MQ answer body.
func encodeLockBatchResponse(locked []messageQueue) []byte {
	if locked == nil {
		locked = []messageQueue{}
	}
	b, err := json.Marshal(lockBatchResponseBody{LockOKMQSet: locked})
	if err != nil {
		// Unreachable for strings and ints; answer "nothing locked" rather
		// than a malformed body.
		return []byte(`{"lockOKMQSet":[]}`)
	}
	return b
}

// Config configures a Manager. The zero value is usable.
type Config struct {
	// LockTTL is the lifetime of an unrenewed lock; 0 means defaultLockTTL.
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
	groups map[string]map[messageQueue]*lockEntry
}

// New returns an empty Manager.
func New(cfg Config) *Manager {
	m := &Manager{
		ttl:    cfg.LockTTL,
		now:    cfg.Now,
		logger: cfg.Logger,
		groups: make(map[string]map[messageQueue]*lockEntry),
	}
	if m.ttl <= 0 {
		m.ttl = defaultLockTTL
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

// tryLockBatch locks for clientID every queue of mqs that is free, expired or
// already held by clientID, renews them, and returns them (deduplicated, in
// request order). Queues held by another live client are left out.
func (m *Manager) tryLockBatch(group, clientID string, mqs []messageQueue) []messageQueue {
	if group == "" || clientID == "" {
		return []messageQueue{}
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	table := m.groups[group]
	if table == nil {
		table = make(map[messageQueue]*lockEntry)
		m.groups[group] = table
	}
	locked := make([]messageQueue, 0, len(mqs))
	seen := make(map[messageQueue]struct{}, len(mqs))
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

// unlockBatch releases the queues of mqs that clientID holds and returns how
// many it released. Queues held by others are untouched.
func (m *Manager) unlockBatch(group, clientID string, mqs []messageQueue) int {
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

// isLocked reports whether clientID holds a live lock on mq in group.
func (m *Manager) isLocked(group string, mq messageQueue, clientID string) bool {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.groups[group][mq]
	return e != nil && e.clientID == clientID && !m.expired(e, now)
}

// owner returns the live holder of mq in group, if any.
func (m *Manager) owner(group string, mq messageQueue) (clientID string, ok bool) {
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
	m.groups = make(map[string]map[messageQueue]*lockEntry)
}

// HandleLock serves a LOCK_BATCH_MQ body: decode, lock, encode the answer.
func (m *Manager) HandleLock(body []byte) ([]byte, error) {
	req, err := decodeLockBatchRequest(body)
	if err != nil {
		return nil, err
	}
	return encodeLockBatchResponse(m.tryLockBatch(req.ConsumerGroup, req.ClientID, req.MQSet)), nil
}

// HandleUnlock serves an UNLOCK_BATCH_MQ body.
func (m *Manager) HandleUnlock(body []byte) error {
	req, err := decodeLockBatchRequest(body)
	if err != nil {
		return err
	}
	m.unlockBatch(req.ConsumerGroup, req.ClientID, req.MQSet)
	return nil
}
