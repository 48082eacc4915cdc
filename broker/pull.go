package broker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/armon/go-metrics"
	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/commitlog/consumequeue"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
	"github.com/raftmq/raftmq/wire"
)

// Pull request sysFlag bits (docs/protocol.md §4.1).
const (
	pullFlagCommitOffset = 0x1
	pullFlagSuspend      = 0x2
	pullFlagSubscription = 0x4
)

// Pull limits: messages and bytes per response (Java's in-memory caps), units
// scanned per pull when a filter drops messages, and the longest park.
const (
	pullMaxMessages   = 32
	pullMaxBytes      = 256 << 10
	pullMaxScan       = 2048
	pullMaxSuspend    = 30 * time.Second
	pullNoLongPolling = time.Second
)

// pullHeader is the header of PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361).
type pullHeader struct {
	Group          string
	Topic          string
	QueueID        int32
	QueueOffset    int64
	MaxMsgNums     int32
	SysFlag        int32
	CommitOffset   int64
	SuspendTimeout time.Duration
	Subscription   string
	ExpressionType string
}

func decodePullHeader(req *remoting.Command) (pullHeader, error) {
	var h pullHeader
	h.Group = req.Ext("consumerGroup")
	h.Topic = req.Ext("topic")
	if h.Group == "" || h.Topic == "" {
		return h, fmt.Errorf("pull header: consumerGroup and topic are required")
	}
	var err error
	var ok bool
	if h.QueueID, ok, err = req.ExtInt32("queueId"); err != nil {
		return h, err
	} else if !ok {
		return h, fmt.Errorf("pull header: queueId is missing")
	}
	if h.QueueOffset, ok, err = req.ExtInt64("queueOffset"); err != nil {
		return h, err
	} else if !ok {
		return h, fmt.Errorf("pull header: queueOffset is missing")
	}
	if h.MaxMsgNums, _, err = req.ExtInt32("maxMsgNums"); err != nil {
		return h, err
	}
	if h.SysFlag, _, err = req.ExtInt32("sysFlag"); err != nil {
		return h, err
	}
	if h.CommitOffset, _, err = req.ExtInt64("commitOffset"); err != nil {
		return h, err
	}
	ms, _, err := req.ExtInt64("suspendTimeoutMillis")
	if err != nil {
		return h, err
	}
	if ms < 0 {
		ms = 0
	}
	h.SuspendTimeout = min(time.Duration(ms)*time.Millisecond, pullMaxSuspend)
	h.Subscription = req.Ext("subscription")
	h.ExpressionType = req.Ext("expressionType")
	return h, nil
}

// tagFilter is a TAG subscription: all messages, or those whose tag is one of
// tags (docs/protocol.md §4.5). The consume-queue tag hash is checked first and the
// record's TAGS property only when the hash matches.
type tagFilter struct {
	all   bool
	codes map[int64]bool
	tags  map[string]bool
}

func parseTagFilter(expr string) tagFilter {
	expr = strings.TrimSpace(expr)
	if expr == "" || expr == "*" {
		return tagFilter{all: true}
	}
	f := tagFilter{codes: map[int64]bool{}, tags: map[string]bool{}}
	for _, t := range strings.Split(expr, "||") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if t == "*" {
			return tagFilter{all: true}
		}
		f.tags[t] = true
		f.codes[int64(message.JavaStringHashCode(t))] = true
	}
	if len(f.tags) == 0 {
		return tagFilter{all: true}
	}
	return f
}

func (f tagFilter) matchCode(code int64) bool { return f.all || f.codes[code] }

func (f tagFilter) matchRecord(rec []byte) bool {
	if f.all {
		return true
	}
	r, err := message.ParseRecord(rec)
	if err != nil {
		return true // let the client decide; never hide data because of a parse problem here
	}
	return f.tags[r.Property(message.PropertyTags)]
}

// handlePull serves PULL_MESSAGE and LITE_PULL_MESSAGE. An empty result with
// SUSPEND set parks the request without holding a worker: it is answered
// later through Conn.Send by a dispatch wake-up or its timer.
//
// Followers serve committed data only (the ConsumeQueue is built by the FSM
// from committed entries), and never answer OFFSET_MOVED: an offset their
// data cannot judge (beyond their applied end, below their first message, in
// a topic or queue they have not applied yet) is answered "no new message"
// at the same offset and sends the consumer to the leader, which can.
func (b *Broker) handlePull(ctx context.Context, conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	defer measureSince("pull", time.Now())
	b.lastPull.Store(time.Now().UnixNano())
	h, err := decodePullHeader(req)
	if err != nil {
		return pullError(remoting.InvalidParameter, err.Error())
	}
	leader := b.node.IsLeader()
	if !b.cfg.SlaveReadEnable && !leader {
		return pullError(remoting.ServiceNotAvailable, b.notLeaderRemark())
	}
	d := b.steer.decide(h.Topic, h.QueueID)
	tc, ok := b.meta.Topic(h.Topic)
	switch {
	case !ok && !leader:
		return pullNotHere(h, d.authority, "topic "+h.Topic+" is not known to this follower yet")
	case !ok:
		return pullError(remoting.TopicNotExist, fmt.Sprintf("topic %s does not exist", h.Topic))
	case tc.Perm&wire.PermRead == 0:
		return pullError(remoting.NoPermission, fmt.Sprintf("topic %s is not readable", h.Topic))
	case (h.QueueID < 0 || h.QueueID >= tc.QueueCount()) && !leader && h.QueueID >= 0:
		return pullNotHere(h, d.authority, fmt.Sprintf("queueId %d is not known to this follower yet", h.QueueID))
	case h.QueueID < 0 || h.QueueID >= tc.QueueCount():
		return pullError(remoting.InvalidParameter,
			fmt.Sprintf("queueId %d out of range: topic %s has %d queues", h.QueueID, h.Topic, tc.QueueCount()))
	}
	var filter tagFilter
	if h.SysFlag&pullFlagSubscription != 0 {
		if h.ExpressionType != "" && h.ExpressionType != "TAG" {
			return pullError(remoting.SubscriptionParseFailed, "only TAG expressions are supported, not "+h.ExpressionType)
		}
		filter = parseTagFilter(h.Subscription)
	} else if sub, ok := b.clients.subscription(h.Group, h.Topic); ok {
		filter = parseTagFilter(sub)
	} else {
		// The heartbeat has not reached this node (yet): deliver everything,
		// the client filters again by tag. Cheaper than a 3 s client stall.
		filter = tagFilter{all: true}
	}
	// The piggybacked commit goes to the leader's offset table, which
	// replicates it through Raft. Clients clear the flag for pulls from
	// brokerId != 0 and commit to brokerId 0 every 5 s anyway, so a follower
	// ignores it: no local-only state, and a lost commit costs at most a
	// redelivery.
	if h.SysFlag&pullFlagCommitOffset != 0 && h.CommitOffset >= 0 && leader {
		b.offsets.commit(h.Group, h.Topic, h.QueueID, h.CommitOffset)
	}
	suspend := h.SysFlag&pullFlagSuspend != 0
	resp, empty := b.pullOnce(h, filter, d)
	if resp.Code == remoting.PullOffsetMoved {
		// Rare and costly for the client (a 10 s pause on the queue): worth a line.
		b.log.Info("pull offset moved", "group", h.Group, "topic", h.Topic, "queue", h.QueueID,
			"requested", h.QueueOffset, "next", resp.Ext("nextBeginOffset"), "min", resp.Ext("minOffset"), "max", resp.Ext("maxOffset"))
	}
	if !empty || !suspend || b.steer.closing.Load() {
		return resp
	}
	timeout := h.SuspendTimeout
	if !b.cfg.LongPollingEnable || timeout <= 0 {
		timeout = pullNoLongPolling
	}
	if !d.serveHere || (!leader && h.QueueOffset > b.node.ConsumeQueue().MaxOffset(h.Topic, h.QueueID)) {
		// Nothing new will arrive here soon, or this follower is behind
		// the offset the consumer already reached (normally by a few
		// entries, which its dispatch covers in milliseconds; if not, it is
		// catching up and the leader should serve): answer within a
		// heartbeat timeout, pointing elsewhere (no busy loop either).
		timeout = min(timeout, b.steer.hb)
	}
	if resp.Release != nil {
		resp.Release()
	}
	metrics.IncrCounter([]string{"broker", "pull", "parked"}, 1)
	b.holds.park(&heldPull{conn: conn, req: req, h: h, filter: filter}, timeout)
	return nil
}

func pullError(code int32, remark string) *remoting.Command {
	r := remoting.NewResponse(code, remark)
	// Clients unbox these on every pull response (docs/protocol.md G14).
	r.SetExt("suggestWhichBrokerId", "0")
	r.SetExt("nextBeginOffset", "0")
	r.SetExt("minOffset", "0")
	r.SetExt("maxOffset", "0")
	return r
}

// pullNotHere answers a follower's pull for a topic or queue it has not
// applied yet: no new message at the requested offset, ask the leader.
func pullNotHere(h pullHeader, authority int64, remark string) *remoting.Command {
	r := remoting.NewResponse(remoting.PullNotFound, remark)
	r.SetExt("suggestWhichBrokerId", itoa64(authority))
	r.SetExt("nextBeginOffset", itoa64(max(h.QueueOffset, 0)))
	r.SetExt("minOffset", "0")
	r.SetExt("maxOffset", "0")
	return r
}

// pullOnce reads up to h.MaxMsgNums matching messages at h.QueueOffset.
// empty reports an answer without messages that may be parked: the
// OFFSET_OVERFLOW_ONE case, and on a follower every offset beyond its data.
func (b *Broker) pullOnce(h pullHeader, filter tagFilter, d steerDecision) (resp *remoting.Command, empty bool) {
	cq := b.node.ConsumeQueue()
	minOff := cq.MinOffset(h.Topic, h.QueueID)
	maxOff := cq.MaxOffset(h.Topic, h.QueueID)
	req := h.QueueOffset
	build := func(code int32, next int64, suggest int64, remark string) *remoting.Command {
		r := remoting.NewResponse(code, remark)
		r.SetExt("suggestWhichBrokerId", strconv.FormatInt(suggest, 10))
		r.SetExt("nextBeginOffset", strconv.FormatInt(next, 10))
		r.SetExt("minOffset", strconv.FormatInt(minOff, 10))
		r.SetExt("maxOffset", strconv.FormatInt(maxOff, 10))
		return r
	}
	if !b.node.IsLeader() {
		// The leader's answer is authoritative for offsets outside this
		// follower's data; here they only mean "not applied yet".
		switch {
		case req > maxOff:
			// A healthy follower waits for its dispatch (the long poll is
			// woken by it); whatever is answered without messages sends the
			// consumer to the leader, or elsewhere when this member lags.
			to := d.suggest
			if d.serveHere {
				to = d.authority
			}
			return build(remoting.PullNotFound, req, to, "offset beyond this follower's applied messages"), true
		case req < minOff:
			return build(remoting.PullNotFound, req, d.authority, "offset below this follower's first message"), false
		}
	}
	switch {
	case maxOff == 0:
		if req != 0 {
			return build(remoting.PullOffsetMoved, 0, d.suggest, "queue is empty"), false
		}
		return build(remoting.PullNotFound, 0, d.suggest, "no message in queue"), true
	case req < minOff:
		return build(remoting.PullOffsetMoved, minOff, d.suggest, "offset too small"), false
	case req == maxOff:
		return build(remoting.PullNotFound, req, d.suggest, "no new message"), true
	case req > maxOff:
		return build(remoting.PullOffsetMoved, maxOff, d.suggest, "offset overflow"), false
	}

	want := int(h.MaxMsgNums)
	if want <= 0 || want > pullMaxMessages {
		want = pullMaxMessages
	}
	cl := b.node.CommitLog()
	// A scan step reads up to min(2*want, 256) entries: size buf for that so
	// Read never regrows it, and parts/leases for the answer's message count.
	var (
		parts  = make([][]byte, 0, want)
		leases = make([]*commitlog.Lease, 0, want)
		bytes  int
		next   = req
		buf    = make([]consumequeue.Entry, 0, min(want*2, 256))
	)
	release := func() {
		for _, l := range leases {
			l.Release()
		}
	}
scan:
	for next < maxOff && next-req < pullMaxScan && len(parts) < want {
		n := min(int(maxOff-next), want*2, 256)
		entries, err := cq.Read(h.Topic, h.QueueID, next, n, buf[:0])
		if err != nil || len(entries) == 0 {
			break
		}
		for _, e := range entries {
			if len(parts) >= want || (bytes > 0 && bytes+int(e.Size) > pullMaxBytes) {
				break scan
			}
			next++
			if !filter.matchCode(e.TagsCode) {
				continue
			}
			l, err := cl.Lease(e.PhysOffset, int(e.Size))
			if err != nil {
				continue // removed by retention: skip it, as MESSAGE_WAS_REMOVING does
			}
			if !filter.matchRecord(l.Bytes()) {
				l.Release()
				continue
			}
			leases = append(leases, l)
			parts = append(parts, l.Bytes())
			bytes += int(e.Size)
		}
	}
	if len(parts) == 0 {
		release()
		if next == req {
			// Nothing readable although the queue says there is: try again soon.
			return build(remoting.PullRetryImmediately, req, d.suggest, "no readable message"), false
		}
		return build(remoting.PullRetryImmediately, next, d.suggest, "no matched message"), false
	}
	r := build(remoting.Success, next, d.suggest, "")
	r.BodyParts = parts
	r.Release = release
	b.stats.getMessages(len(parts))
	return r, false
}

// heldPull is a parked long-polling pull.
type heldPull struct {
	conn   *remoting.Conn
	req    *remoting.Command
	h      pullHeader
	filter tagFilter
	timer  *time.Timer
	once   sync.Once
}

// pullHolds parks long-polling pulls per queue and resumes them on dispatch
// or timeout. A resumed pull runs on its own goroutine and answers with
// Conn.Send; no worker waits.
type pullHolds struct {
	b       *Broker
	mu      sync.Mutex
	waiting map[string]map[*heldPull]struct{}
	closed  bool
}

func newPullHolds(b *Broker) *pullHolds {
	return &pullHolds{b: b, waiting: map[string]map[*heldPull]struct{}{}}
}

func queueKey(topic string, qid int32) string { return topic + "@" + strconv.Itoa(int(qid)) }

func (p *pullHolds) park(hp *heldPull, timeout time.Duration) {
	key := queueKey(hp.h.Topic, hp.h.QueueID)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	set := p.waiting[key]
	if set == nil {
		set = map[*heldPull]struct{}{}
		p.waiting[key] = set
	}
	set[hp] = struct{}{}
	hp.timer = time.AfterFunc(timeout, func() { p.resume(key, hp) })
	p.mu.Unlock()
	// A message dispatched between the pull and the park must not wait for
	// the timer, nor a pull that raced with Close.
	if p.b.node.ConsumeQueue().MaxOffset(hp.h.Topic, hp.h.QueueID) > hp.h.QueueOffset || p.b.steer.closing.Load() {
		p.resume(key, hp)
	}
}

// wake resumes the pulls parked on (topic, qid) that maxOffset satisfies.
func (p *pullHolds) wake(topic string, qid int32, maxOffset int64) {
	key := queueKey(topic, qid)
	p.mu.Lock()
	var ready []*heldPull
	for hp := range p.waiting[key] {
		if maxOffset > hp.h.QueueOffset {
			ready = append(ready, hp)
		}
	}
	p.mu.Unlock()
	for _, hp := range ready {
		go p.resume(key, hp)
	}
}

func (p *pullHolds) resume(key string, hp *heldPull) {
	hp.once.Do(func() {
		p.mu.Lock()
		if set := p.waiting[key]; set != nil {
			delete(set, hp)
			if len(set) == 0 {
				delete(p.waiting, key)
			}
		}
		closed := p.closed
		p.mu.Unlock()
		hp.timer.Stop()
		if closed {
			return
		}
		resp, _ := p.b.pullOnce(hp.h, hp.filter, p.b.steer.decide(hp.h.Topic, hp.h.QueueID))
		resp.Opaque = hp.req.Opaque
		resp.SerializeType = hp.req.SerializeType
		if err := hp.conn.Send(resp); err != nil {
			p.b.log.Debug("answering a parked pull failed", "remote", hp.conn.RemoteAddr(), "error", err)
		}
	})
}

// releaseAll answers every parked pull now, with the member's current
// suggestion: used when this member stops being a good place to wait and
// when it is closing, so that consumers move on at once instead of waiting
// out the long poll (or, if the process were gone, their 30 s timeout).
func (p *pullHolds) releaseAll() {
	p.mu.Lock()
	type held struct {
		key string
		hp  *heldPull
	}
	var all []held
	for key, set := range p.waiting {
		for hp := range set {
			all = append(all, held{key, hp})
		}
	}
	p.mu.Unlock()
	for _, h := range all {
		p.resume(h.key, h.hp)
	}
}

// close drops every parked pull; their connections are closing anyway.
func (p *pullHolds) close() {
	p.mu.Lock()
	p.closed = true
	var all []*heldPull
	for _, set := range p.waiting {
		for hp := range set {
			all = append(all, hp)
		}
	}
	p.waiting = map[string]map[*heldPull]struct{}{}
	p.mu.Unlock()
	for _, hp := range all {
		hp.once.Do(func() { hp.timer.Stop() })
	}
}
