package txn

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/armon/go-metrics"
	"github.com/hashicorp/go-hclog"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
)

// Store is what the Service needs from the broker (committed data only).
type Store interface {
	// ReadQueueMessages returns up to max committed records of (topic,
	// queueID) from queue offset from (or the queue's minimum, if higher),
	// in queue order, each with QueueOffset, CommitLogOffset and
	// StoreTimestamp set. Empty at the end of the queue.
	ReadQueueMessages(ctx context.Context, topic string, queueID int32, from int64, max int) ([]*message.Ext, error)
	// ReadRecord decodes the committed record at a commit-log offset.
	ReadRecord(ctx context.Context, commitLogOffset int64) (*message.Ext, error)
	// Append stores msgs in order and ATOMICALLY (one Raft entry) through the
	// normal append path and returns once they are committed and
	// dispatched; on success it sets each message's CommitLogOffset,
	// QueueOffset and StoreTimestamp. Atomicity is what makes a commit and
	// its op record inseparable across leader changes.
	Append(ctx context.Context, msgs []*message.Ext) error
}

// Checker sends a CHECK_TRANSACTION_STATE request to the producers.
type Checker interface {
	// SendCheck sends req oneway over one live connection of a producer of
	// producerGroup. It returns an error when there is none.
	SendCheck(ctx context.Context, producerGroup string, req *remoting.Command) error
}

// Progress is the transaction service's replicated checkpoint: every half
// below HalfOffset is resolved, and every op record of a half at or above
// HalfOffset lies at or above OpOffset in the op queue.
type Progress struct {
	HalfOffset int64 `json:"halfOffset"`
	OpOffset   int64 `json:"opOffset"`
}

// MarshalProgress encodes p as JSON for the broker's metadata log.
func MarshalProgress(p Progress) []byte {
	b, _ := json.Marshal(p) // two int64s cannot fail
	return b
}

// UnmarshalProgress decodes MarshalProgress output; negative offsets are
// refused.
func UnmarshalProgress(b []byte) (Progress, error) {
	var p Progress
	if len(b) > 4096 {
		return Progress{}, errors.New("txn: progress record too large")
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return Progress{}, fmt.Errorf("txn: progress: %w", err)
	}
	if p.HalfOffset < 0 || p.OpOffset < 0 {
		return Progress{}, fmt.Errorf("txn: progress has negative offsets %+v", p)
	}
	return p, nil
}

// ProgressStore persists Progress (the broker replicates it through Raft).
type ProgressStore interface {
	LoadTxnProgress(ctx context.Context) (Progress, error)
	SaveTxnProgress(ctx context.Context, p Progress) error
}

// Config configures a Service.
type Config struct {
	Store    Store         // required
	Checker  Checker       // required
	Progress ProgressStore // required
	// BrokerName goes into the bname field of check requests.
	BrokerName string
	// FinalizeCommitted, if set, transforms the final record of a commit
	// before it is stored; pass schedule's delay transform so that a
	// committed message with DELAY is delayed.
	FinalizeCommitted func(*message.Ext) (*message.Ext, error)
	// CheckInterval is transactionCheckInterval (default 30 s).
	CheckInterval time.Duration
	// Timeout is transactionTimeOut: the age of a half before its first
	// check (default 6 s). CHECK_IMMUNITY_TIME_IN_SECONDS overrides it per
	// message.
	Timeout time.Duration
	// CheckMax is transactionCheckMax: checks before a half is discarded to
	// CheckMaxTimeTopic (default 15).
	CheckMax int32
	// MaxPending bounds the unresolved halves held in memory (default
	// 1 << 20); beyond it, newer halves wait until older ones resolve.
	MaxPending int
	// Now is the clock (nil = time.Now).
	Now    func() time.Time
	Logger hclog.Logger
}

// Outcome says what EndTransaction did.
type Outcome int

const (
	// Ignored: state UNKNOWN (0); the half stays and will be checked.
	Ignored Outcome = iota
	// Committed: the final record and the op record were stored.
	Committed
	// RolledBack: the op record was stored.
	RolledBack
	// AlreadyResolved: the half was committed, rolled back or discarded
	// before; nothing was stored (duplicate answer).
	AlreadyResolved
	// InProgress: another END_TRANSACTION or a discard of the same half is
	// being stored right now; nothing was stored by this call.
	InProgress
)

func (o Outcome) String() string {
	switch o {
	case Ignored:
		return "ignored"
	case Committed:
		return "committed"
	case RolledBack:
		return "rolled back"
	case AlreadyResolved:
		return "already resolved"
	case InProgress:
		return "in progress"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// ErrNotReady is returned by EndTransaction when the Service is not running
// (not the leader, or still rebuilding its state).
var ErrNotReady = errors.New("txn: transaction service not running on this broker (not leader?)")

// pendingHalf is an unresolved half message.
type pendingHalf struct {
	queueOffset     int64
	commitLogOffset int64
	storeTimestamp  int64 // ms
	group           string
	waitMs          int64 // age before it may be checked
	checks          int32 // checks sent by this leader
	busy            bool  // an end or discard is being stored
	opMark          int64 // op-queue offset below which no op of this half lies
}

// Service resolves transactions: it serves END_TRANSACTION and checks and
// discards stale halves. It runs on the leader only.
type Service struct {
	cfg    Config
	logger hclog.Logger

	lifeMu sync.Mutex // Start/Stop
	cancel context.CancelFunc
	done   chan struct{}

	checkMu sync.Mutex // one check round at a time

	mu       sync.Mutex
	ready    bool
	pending  map[int64]*pendingHalf // by half-queue offset
	readEnd  int64                  // next half-queue offset to read
	opEnd    int64                  // lower bound of the op-queue end
	lastSave Progress
}

// NewService returns a stopped Service.
func NewService(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Checker == nil || cfg.Progress == nil {
		return nil, errors.New("txn: Config.Store, Checker and Progress are required")
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = 30 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 6 * time.Second
	}
	if cfg.CheckMax <= 0 {
		cfg.CheckMax = 15
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 1 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Service{cfg: cfg, logger: cfg.Logger.Named("txn")}, nil
}

const readBatch = 256

// Start rebuilds the unresolved halves from the replicated progress, the op
// queue and the half queue, then starts the periodic check. Call it on
// becoming leader, after the Barrier.
func (s *Service) Start(ctx context.Context) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.cancel != nil {
		return errors.New("txn: service already running")
	}
	if err := s.rebuild(ctx); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go s.run(runCtx, s.done)
	return nil
}

// Stop stops checking and makes EndTransaction answer ErrNotReady. Call it
// on losing leadership.
func (s *Service) Stop() {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
	s.cancel, s.done = nil, nil
	s.mu.Lock()
	s.ready = false
	s.pending = nil
	s.mu.Unlock()
	s.logger.Info("transaction service stopped")
}

func (s *Service) rebuild(ctx context.Context) error {
	prog, err := s.cfg.Progress.LoadTxnProgress(ctx)
	if err != nil {
		return fmt.Errorf("txn: loading progress: %w", err)
	}
	// Ops from prog.OpOffset cover every resolved half >= prog.HalfOffset.
	resolved := make(map[int64]struct{})
	opEnd := prog.OpOffset
	for {
		ops, err := s.cfg.Store.ReadQueueMessages(ctx, OpTopic, 0, opEnd, readBatch)
		if err != nil {
			return fmt.Errorf("txn: reading op queue: %w", err)
		}
		if len(ops) == 0 {
			break
		}
		for _, op := range ops {
			opEnd = max(opEnd, op.QueueOffset+1)
			offs, perr := ParseOpBody(op.Body)
			if perr != nil {
				s.logger.Warn("op record ignored", "op_offset", op.QueueOffset, "error", perr)
				continue
			}
			for _, o := range offs {
				if o >= prog.HalfOffset {
					resolved[o] = struct{}{}
				}
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = make(map[int64]*pendingHalf)
	s.readEnd = prog.HalfOffset
	// Halves read now may have ops anywhere from prog.OpOffset on.
	s.opEnd = prog.OpOffset
	if err := s.catchUpLocked(ctx, resolved); err != nil {
		return err
	}
	s.opEnd = opEnd
	s.lastSave = prog
	s.ready = true
	s.logger.Info("transaction service started", "pending", len(s.pending),
		"half_offset", prog.HalfOffset, "op_offset", prog.OpOffset, "half_end", s.readEnd, "op_end", opEnd)
	return nil
}

// catchUpLocked reads new halves into pending. resolved (rebuild only) lists
// halves that already have an op record.
func (s *Service) catchUpLocked(ctx context.Context, resolved map[int64]struct{}) error {
	for len(s.pending) < s.cfg.MaxPending {
		halves, err := s.cfg.Store.ReadQueueMessages(ctx, HalfTopic, 0, s.readEnd, readBatch)
		if err != nil {
			return fmt.Errorf("txn: reading half queue: %w", err)
		}
		if len(halves) == 0 {
			return nil
		}
		for _, h := range halves {
			if h.QueueOffset < s.readEnd {
				continue
			}
			if len(s.pending) >= s.cfg.MaxPending {
				s.logger.Warn("too many unresolved transactions; reading of newer halves paused",
					"pending", len(s.pending))
				return nil
			}
			s.readEnd = h.QueueOffset + 1
			if _, done := resolved[h.QueueOffset]; done {
				continue
			}
			s.pending[h.QueueOffset] = &pendingHalf{
				queueOffset:     h.QueueOffset,
				commitLogOffset: h.CommitLogOffset,
				storeTimestamp:  h.StoreTimestamp,
				group:           h.Properties[message.PropertyProducerGroup],
				waitMs:          s.waitMs(h),
				opMark:          s.opEnd,
			}
		}
	}
	return nil
}

// waitMs is the age a half must reach before it is checked.
func (s *Service) waitMs(h *message.Ext) int64 {
	if v := h.Properties[message.PropertyCheckImmunityTimeInSeconds]; v != "" {
		if sec, err := strconv.ParseInt(v, 10, 64); err == nil && sec > 0 && sec < 365*24*3600 {
			return sec * 1000
		}
	}
	return s.cfg.Timeout.Milliseconds()
}

// EndTransaction serves END_TRANSACTION. Commit (8) stores the final record
// and the op record in one Append; rollback (12) stores the op record;
// unknown (0) does nothing. A half that is already resolved (a check answer
// racing the producer's own END_TRANSACTION) yields AlreadyResolved and
// stores nothing. Errors (answer SYSTEM_ERROR with err.Error()): not
// running, half not found, header not matching the half, store failures.
func (s *Service) EndTransaction(ctx context.Context, req EndRequest) (Outcome, error) {
	switch req.CommitOrRollback {
	case StateUnknown:
		return Ignored, nil
	case StateCommit, StateRollback:
	default:
		return Ignored, fmt.Errorf("%w: commitOrRollback %d", ErrBadHeader, req.CommitOrRollback)
	}

	s.mu.Lock()
	if !s.ready {
		s.mu.Unlock()
		return Ignored, ErrNotReady
	}
	if req.TranStateTableOffset >= s.readEnd {
		if err := s.catchUpLocked(ctx, nil); err != nil {
			s.mu.Unlock()
			return Ignored, err
		}
	}
	p := s.pending[req.TranStateTableOffset]
	switch {
	case p == nil && req.TranStateTableOffset < s.readEnd:
		s.mu.Unlock()
		return AlreadyResolved, nil
	case p == nil:
		s.mu.Unlock()
		return Ignored, fmt.Errorf("txn: no half message at tranStateTableOffset %d", req.TranStateTableOffset)
	case p.busy:
		s.mu.Unlock()
		return InProgress, nil
	case p.commitLogOffset != req.CommitLogOffset:
		s.mu.Unlock()
		return Ignored, fmt.Errorf("txn: commitLogOffset %d does not match the half at tranStateTableOffset %d (stored at %d)",
			req.CommitLogOffset, req.TranStateTableOffset, p.commitLogOffset)
	case p.group != req.ProducerGroup:
		s.mu.Unlock()
		return Ignored, fmt.Errorf("txn: producerGroup %q does not match the half's PGROUP %q",
			req.ProducerGroup, p.group)
	}
	p.busy = true
	s.mu.Unlock()

	outcome, err := s.resolve(ctx, p, req.CommitOrRollback)
	s.finish(p, err)
	if err == nil {
		metrics.IncrCounter([]string{"broker", "txn", "ended"}, 1)
	}
	return outcome, err
}

// resolve stores the records that end the transaction of p.
func (s *Service) resolve(ctx context.Context, p *pendingHalf, state int32) (Outcome, error) {
	half, err := s.cfg.Store.ReadRecord(ctx, p.commitLogOffset)
	if err != nil {
		return Ignored, fmt.Errorf("txn: reading half at %d: %w", p.commitLogOffset, err)
	}
	if half.Topic != HalfTopic || half.QueueOffset != p.queueOffset || half.CommitLogOffset != p.commitLogOffset {
		return Ignored, fmt.Errorf("txn: record at commitLogOffset %d is not the half at tranStateTableOffset %d",
			p.commitLogOffset, p.queueOffset)
	}
	op := buildOp(s.cfg.Now().UnixMilli(), p.queueOffset)
	msgs := []*message.Ext{op}
	outcome := RolledBack
	if state == StateCommit {
		final, err := BuildCommitted(half)
		if err != nil {
			return Ignored, err
		}
		if s.cfg.FinalizeCommitted != nil {
			if final, err = s.cfg.FinalizeCommitted(final); err != nil {
				return Ignored, err
			}
		}
		msgs = []*message.Ext{final, op}
		outcome = Committed
	}
	if err := s.cfg.Store.Append(ctx, msgs); err != nil {
		return Ignored, fmt.Errorf("txn: storing %s of half %d: %w", outcome, p.queueOffset, err)
	}
	s.mu.Lock()
	s.opEnd = max(s.opEnd, op.QueueOffset+1)
	s.mu.Unlock()
	return outcome, nil
}

// finish removes p after a successful resolution or frees it for another
// attempt after a failure.
func (s *Service) finish(p *pendingHalf, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.busy = false
	if err == nil && s.pending[p.queueOffset] == p {
		delete(s.pending, p.queueOffset)
	}
}

func (s *Service) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(s.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.CheckOnce(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("transaction check round failed", "error", err)
		}
	}
}

// CheckOnce runs one check round now: read new halves, send a check for
// every unresolved half older than its timeout, discard those checked
// CheckMax times, and save the progress. The Service runs it every
// CheckInterval; it is exported for tests and admin commands.
func (s *Service) CheckOnce(ctx context.Context) error {
	s.checkMu.Lock()
	defer s.checkMu.Unlock()

	s.mu.Lock()
	if !s.ready {
		s.mu.Unlock()
		return ErrNotReady
	}
	if err := s.catchUpLocked(ctx, nil); err != nil {
		s.mu.Unlock()
		return err
	}
	now := s.cfg.Now().UnixMilli()
	var toCheck, toDiscard []*pendingHalf
	for _, p := range s.pending {
		if p.busy || now-p.storeTimestamp < p.waitMs {
			continue
		}
		if p.checks >= s.cfg.CheckMax {
			p.busy = true
			toDiscard = append(toDiscard, p)
			continue
		}
		p.checks++
		toCheck = append(toCheck, p)
	}
	s.mu.Unlock()

	byOffset := func(a, b *pendingHalf) int { return cmp.Compare(a.queueOffset, b.queueOffset) }
	slices.SortFunc(toCheck, byOffset)
	slices.SortFunc(toDiscard, byOffset)
	var firstErr error
	for _, p := range toDiscard {
		err := s.discard(ctx, p)
		s.finish(p, err)
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for _, p := range toCheck {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.check(ctx, p)
	}
	if err := s.saveProgress(ctx); err != nil && firstErr == nil {
		firstErr = err
	}
	return firstErr
}

// check sends one CHECK_TRANSACTION_STATE for p. Failures are logged: the
// half is checked again next round.
func (s *Service) check(ctx context.Context, p *pendingHalf) {
	half, err := s.cfg.Store.ReadRecord(ctx, p.commitLogOffset)
	if err != nil {
		s.logger.Warn("half record unreadable; not checked", "half_offset", p.queueOffset, "error", err)
		return
	}
	req, err := BuildCheckRequest(half, s.cfg.BrokerName)
	if err != nil {
		s.logger.Warn("cannot build transaction check", "half_offset", p.queueOffset, "error", err)
		return
	}
	metrics.IncrCounter([]string{"broker", "txn", "checks"}, 1)
	if err := s.cfg.Checker.SendCheck(ctx, p.group, req); err != nil {
		s.logger.Debug("transaction check not sent", "group", p.group, "half_offset", p.queueOffset, "error", err)
	}
}

// discard moves a half checked CheckMax times to CheckMaxTimeTopic and
// resolves it. A half whose record is gone is resolved with the op alone.
func (s *Service) discard(ctx context.Context, p *pendingHalf) error {
	op := buildOp(s.cfg.Now().UnixMilli(), p.queueOffset)
	msgs := []*message.Ext{op}
	half, err := s.cfg.Store.ReadRecord(ctx, p.commitLogOffset)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.logger.Warn("half record unreadable; resolved without a copy", "half_offset", p.queueOffset, "error", err)
	} else {
		msgs = []*message.Ext{buildDiscarded(half, p.checks), op}
	}
	if err := s.cfg.Store.Append(ctx, msgs); err != nil {
		return fmt.Errorf("txn: discarding half %d: %w", p.queueOffset, err)
	}
	metrics.IncrCounter([]string{"broker", "txn", "discarded"}, 1)
	s.logger.Info("transaction discarded after max checks", "half_offset", p.queueOffset,
		"group", p.group, "checks", p.checks)
	s.mu.Lock()
	s.opEnd = max(s.opEnd, op.QueueOffset+1)
	s.mu.Unlock()
	return nil
}

// progressLocked is the checkpoint for the current state.
func (s *Service) progressLocked() Progress {
	p := Progress{HalfOffset: s.readEnd, OpOffset: s.opEnd}
	for off, h := range s.pending {
		if off < p.HalfOffset {
			p.HalfOffset, p.OpOffset = off, h.opMark
		}
	}
	return p
}

func (s *Service) saveProgress(ctx context.Context) error {
	s.mu.Lock()
	if !s.ready {
		s.mu.Unlock()
		return nil
	}
	p := s.progressLocked()
	changed := p != s.lastSave
	metrics.SetGauge([]string{"broker", "txn", "pending"}, float32(len(s.pending)))
	s.mu.Unlock()
	if !changed {
		return nil
	}
	if err := s.cfg.Progress.SaveTxnProgress(ctx, p); err != nil {
		return fmt.Errorf("txn: saving progress: %w", err)
	}
	s.mu.Lock()
	s.lastSave = p
	s.mu.Unlock()
	return nil
}

// Pending returns the number of unresolved halves known to the Service.
func (s *Service) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}
