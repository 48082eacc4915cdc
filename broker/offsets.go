package broker

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Offset commit answers.
var (
	// errOffsetsDropped answers commits that were waiting when this member
	// stopped leading: they were never proposed and the new leader does not
	// have them.
	errOffsetsDropped = errors.New("leadership lost before the offset commit was replicated")
	// errCommitTimeout answers a commit not replicated within its budget;
	// the flush carrying it may still be applied.
	errCommitTimeout = errors.New("offset commit not replicated in time")
	// errOffsetsClosed answers commits that arrive or wait while the
	// broker stops.
	errOffsetsClosed = errors.New("broker stopping, offset commit not replicated")
)

const (
	// offsetFlushTimeout bounds one flush's proposal.
	offsetFlushTimeout = 2 * time.Second
	// commitAnswerBudget bounds how long a sync commit waits for its flush:
	// below the 3 s request timeout of the Go clients (the Java client waits
	// 5 s), so that the client gets an answer it can retry.
	commitAnswerBudget = 2500 * time.Millisecond
	// A flush for waiting sync commits starts as soon as the previous one
	// finished and at least interval/earlyFlushDivisor, capped at
	// maxEarlyFlushGap, after it started: a sync commit costs about one
	// Raft round trip (a few ms) plus at most the gap, and however many
	// clients commit, sync commits add at most 100 entries a second.
	earlyFlushDivisor = 10
	maxEarlyFlushGap  = 10 * time.Millisecond
)

// offsetManager coalesces consumer offset commits on the leader: a commit
// lands in a pending table at once (visible to queries), and one Raft entry
// carries every offset that changed since the previous flush. Clients commit
// every 5 s per queue, so this turns N queues × M clients commits into one
// entry per flush.
//
// Invariants:
//   - a sync commit is answered success only after a flush entry carrying it
//     (or a later commit of the same key, or a replicated state already equal
//     to it) has been applied through Raft; any other outcome answers an
//     error, within commitAnswerBudget;
//   - flushes run one at a time (from run), at least once per interval while
//     commits are pending, earlier when sync commits wait;
//   - queries see the newest commit: pending, then in flight, then replicated;
//   - commits of a lost leadership never reach the log: drop forgets them and
//     a failed flush puts its commits back only within the same leadership.
type offsetManager struct {
	meta     *metaStore
	propose  func(ctx context.Context, c *metaCommand) (interface{}, error)
	interval time.Duration
	// isLeader is checked under mu when a commit lands: drop runs after
	// leadership is lost, so a commit either sees the loss or is dropped.
	isLeader func() bool
	kick     chan struct{} // a sync commit waits: flush early

	mu       sync.Mutex
	pending  map[offsetKey]int64 // commits for the next flush, newest per key
	waiters  []*commitWaiter     // sync commits in pending
	inflight map[offsetKey]int64 // commits of the flush being proposed
	epoch    uint64              // bumped by drop: a flush of an older epoch does not put back
	closed   bool
}

// commitWaiter is one sync commit waiting for its flush; done runs once.
type commitWaiter struct {
	once  sync.Once
	done  func(error)
	timer *time.Timer // the budget; set under offsetManager.mu
}

// answer answers w unless its budget did; callers got w from the manager's
// tables under its mutex, after timer was set.
func (w *commitWaiter) answer(err error) {
	if w.timer != nil {
		w.timer.Stop()
	}
	w.reply(err)
}

func (w *commitWaiter) reply(err error) { w.once.Do(func() { w.done(err) }) }

func newOffsetManager(meta *metaStore, propose func(context.Context, *metaCommand) (interface{}, error),
	interval time.Duration, isLeader func() bool) *offsetManager {
	return &offsetManager{meta: meta, propose: propose, interval: interval, isLeader: isLeader,
		kick: make(chan struct{}, 1), pending: map[offsetKey]int64{}}
}

// commit records the next offset group will consume from (topic, queue),
// without an answer to wait for (oneway commits, commits on pulls).
func (o *offsetManager) commit(group, topic string, queue int32, offset int64) {
	if offset < 0 {
		return
	}
	o.mu.Lock()
	if !o.closed && o.isLeader() {
		o.pending[offsetKey{group, topic, queue}] = offset
	}
	o.mu.Unlock()
}

// commitSync records a commit like commit and calls done once it is
// replicated (nil) or cannot be (an error), at the latest after budget.
// done must not block; it may run on the caller's goroutine.
func (o *offsetManager) commitSync(group, topic string, queue int32, offset int64, budget time.Duration, done func(error)) {
	w := &commitWaiter{done: done}
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		w.reply(errOffsetsClosed)
		return
	}
	if !o.isLeader() {
		o.mu.Unlock()
		w.reply(errOffsetsDropped)
		return
	}
	o.pending[offsetKey{group, topic, queue}] = offset
	o.waiters = append(o.waiters, w)
	// Under the lock, so that a flush answering w stops the timer.
	w.timer = time.AfterFunc(budget, func() { w.reply(errCommitTimeout) })
	o.mu.Unlock()
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// query returns the latest commit, pending and in-flight ones included.
func (o *offsetManager) query(group, topic string, queue int32) (int64, bool) {
	k := offsetKey{group, topic, queue}
	o.mu.Lock()
	off, ok := o.pending[k]
	if !ok {
		off, ok = o.inflight[k]
	}
	o.mu.Unlock()
	if ok {
		return off, true
	}
	return o.meta.Offset(group, topic, queue)
}

// drop forgets pending commits and answers their waiters with
// errOffsetsDropped (leadership lost: the new leader has the replicated
// ones; clients retry, and re-commit within 5 s anyway).
func (o *offsetManager) drop() { o.forget(errOffsetsDropped, false) }

// close answers every waiting commit with errOffsetsClosed and refuses new
// commits; run calls it on its way out.
func (o *offsetManager) close() { o.forget(errOffsetsClosed, true) }

// forget empties the pending table, answers its waiters with why and keeps
// a flush in flight from putting its commits back.
func (o *offsetManager) forget(why error, closing bool) {
	o.mu.Lock()
	o.closed = o.closed || closing
	o.pending = map[offsetKey]int64{}
	waiters := o.waiters
	o.waiters = nil
	o.epoch++
	o.mu.Unlock()
	for _, w := range waiters {
		w.answer(why)
	}
}

// flush proposes the pending commits as one entry and answers their
// waiters with its outcome. On failure the commits are put back for the
// next flush unless a newer commit replaced them or leadership changed
// meanwhile. Only run (or a test) calls it, never concurrently.
func (o *offsetManager) flush(ctx context.Context) error {
	o.mu.Lock()
	if len(o.pending) == 0 {
		o.mu.Unlock()
		return nil
	}
	batch, waiters, epoch := o.pending, o.waiters, o.epoch
	o.pending, o.waiters, o.inflight = map[offsetKey]int64{}, nil, batch
	o.mu.Unlock()
	cmd := &metaCommand{Op: opCommitOffset, Offsets: make([]OffsetCommit, 0, len(batch))}
	for k, v := range batch {
		// Already the replicated state (applied on this leader): nothing
		// to propose, and its waiters are answered at once.
		if cur, ok := o.meta.Offset(k.group, k.topic, k.queue); ok && cur == v {
			continue
		}
		cmd.Offsets = append(cmd.Offsets, OffsetCommit{k.group, k.topic, k.queue, v})
	}
	var err error
	if len(cmd.Offsets) > 0 {
		pctx, cancel := context.WithTimeout(ctx, offsetFlushTimeout)
		_, err = o.propose(pctx, cmd)
		cancel()
	}
	o.mu.Lock()
	o.inflight = nil
	if err != nil && epoch == o.epoch && !o.closed {
		for k, v := range batch {
			if _, newer := o.pending[k]; !newer {
				o.pending[k] = v
			}
		}
	}
	o.mu.Unlock()
	for _, w := range waiters {
		w.answer(err)
	}
	return err
}

// earlyFlushGap is the least time between the starts of two flushes when
// the second one is for waiting sync commits.
func (o *offsetManager) earlyFlushGap() time.Duration {
	return min(o.interval/earlyFlushDivisor, maxEarlyFlushGap)
}

// run flushes every interval, and early (earlyFlushGap after the previous
// flush started, once it finished) when sync commits wait, while this
// member leads, until ctx ends; a last flush is attempted on the way out,
// and whatever still waits then is answered errOffsetsClosed.
func (o *offsetManager) run(ctx context.Context, onErr func(error)) {
	defer o.close()
	t := time.NewTicker(o.interval)
	defer t.Stop()
	early := time.NewTimer(0)
	early.Stop()
	defer early.Stop()
	earlyArmed := false
	var lastStart time.Time
	for {
		select {
		case <-ctx.Done():
			if o.isLeader() {
				fctx, cancel := context.WithTimeout(context.Background(), offsetFlushTimeout)
				_ = o.flush(fctx)
				cancel()
			}
			return
		case <-t.C:
		case <-o.kick:
			if earlyArmed {
				continue
			}
			if wait := time.Until(lastStart.Add(o.earlyFlushGap())); wait > 0 {
				early.Reset(wait)
				earlyArmed = true
				continue
			}
		case <-early.C:
			earlyArmed = false
		}
		if !o.isLeader() {
			o.drop()
			continue
		}
		lastStart = time.Now()
		if err := o.flush(ctx); err != nil && onErr != nil {
			onErr(err)
		}
	}
}
