package schedule

import (
	"context"
	"errors"
	"maps"
	"sync"
	"time"

	"github.com/armon/go-metrics"
	"github.com/hashicorp/go-hclog"
	"github.com/raftmq/raftmq/message"
)

// QueueEntry is one ConsumeQueue entry of SCHEDULE_TOPIC_XXXX as the Store
// returns it.
type QueueEntry struct {
	QueueOffset     int64 // logical offset in the queue
	CommitLogOffset int64 // physical offset of the record
	Size            int32 // record size
	TagsCode        int64 // delivery time in ms (Levels.TagsCode)
}

// Store is what the Service needs from the broker. The same broker type can
// also satisfy txn.Store: the method sets are compatible.
type Store interface {
	// ReadQueue returns up to max committed entries of (topic, queueID)
	// starting at queue offset from, in queue order. If from is below the
	// queue's minimum offset it starts at the minimum. It returns an empty
	// slice (not an error) at the end of the queue.
	ReadQueue(ctx context.Context, topic string, queueID int32, from int64, max int) ([]QueueEntry, error)
	// ReadRecord decodes the committed record at a commit-log offset.
	ReadRecord(ctx context.Context, commitLogOffset int64) (*message.Ext, error)
	// Append stores msgs, in order and atomically (one Raft entry), through
	// the normal append path (tagsCode, UNIQ_KEY, CQ dispatch) and returns
	// once they are committed. On success it sets each message's
	// CommitLogOffset, QueueOffset and StoreTimestamp. An error means the
	// messages may or may not be stored.
	Append(ctx context.Context, msgs []*message.Ext) error
}

// OffsetStore persists delay progress: per level (1..MaxLevel), the next
// SCHEDULE_TOPIC_XXXX queue offset to deliver. The broker replicates it
// through Raft so that a new leader continues where the old one stopped.
type OffsetStore interface {
	LoadDelayOffsets(ctx context.Context) (map[int32]int64, error)
	SaveDelayOffsets(ctx context.Context, offsets map[int32]int64) error
}

// Clock is the time source of the Service; tests inject a fake.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the Service uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type wallClock struct{}

func (wallClock) Now() time.Time                 { return time.Now() }
func (wallClock) NewTimer(d time.Duration) Timer { return wallTimer{time.NewTimer(d)} }

type wallTimer struct{ t *time.Timer }

func (w wallTimer) C() <-chan time.Time { return w.t.C }
func (w wallTimer) Stop() bool          { return w.t.Stop() }

// Config configures a Service.
type Config struct {
	Levels  Levels      // delay table; nil means Default()
	Store   Store       // required
	Offsets OffsetStore // required
	Clock   Clock       // nil means the wall clock
	Logger  hclog.Logger
	// BatchSize is the most entries of one level re-put in one Append
	// (default 32).
	BatchSize int
	// RetryBackoff is the wait after a failed read or append (default 1 s).
	RetryBackoff time.Duration
}

// Service delivers due delayed messages. It runs on the leader only.
type Service struct {
	cfg    Config
	logger hclog.Logger
	notify chan struct{}

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	offsets map[int32]int64 // level -> next queue offset; owned by run while running
}

// NewService returns a stopped Service.
func NewService(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Offsets == nil {
		return nil, errors.New("schedule: Config.Store and Config.Offsets are required")
	}
	if cfg.Levels == nil {
		cfg.Levels = Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = wallClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 32
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = time.Second
	}
	return &Service{cfg: cfg, logger: cfg.Logger.Named("schedule"), notify: make(chan struct{}, 1)}, nil
}

// Notify wakes the Service because new SCHEDULE_TOPIC_XXXX entries were
// dispatched. It never blocks and may be called when stopped.
func (s *Service) Notify() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Start loads the delay offsets and starts delivering. It fails if the
// Service is running or the offsets cannot be loaded.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return errors.New("schedule: service already running")
	}
	loaded, err := s.cfg.Offsets.LoadDelayOffsets(ctx)
	if err != nil {
		return err
	}
	offsets := make(map[int32]int64, len(s.cfg.Levels))
	for level := int32(1); level <= s.cfg.Levels.MaxLevel(); level++ {
		if off := loaded[level]; off > 0 {
			offsets[level] = off
		} else {
			offsets[level] = 0
		}
	}
	s.offsets = offsets
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan struct{})
	go s.run(runCtx, s.done)
	s.logger.Info("delay service started", "levels", len(s.cfg.Levels))
	return nil
}

// Stop stops delivering and waits for the delivery goroutine to end. Offsets
// already delivered but not yet saved are saved by the next leader's replay
// at the cost of duplicates (see the package doc).
func (s *Service) Stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel, s.done = nil, nil
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	s.logger.Info("delay service stopped")
}

// Offsets returns a copy of the current delivery offsets (level -> next
// queue offset), for admin and tests.
func (s *Service) Offsets() map[int32]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.offsets)
}

func (s *Service) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	dirty := false
	for {
		next, progressed, err := s.deliverAll(ctx)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			dirty = true
		}
		if dirty {
			snapshot := s.Offsets()
			if serr := s.cfg.Offsets.SaveDelayOffsets(ctx, snapshot); serr != nil {
				s.logger.Warn("saving delay offsets failed; will retry", "error", serr)
				if err == nil {
					err = serr
				}
			} else {
				dirty = false
			}
		}
		var wait time.Duration
		switch {
		case err != nil:
			wait = s.cfg.RetryBackoff
		case progressed:
			continue // more may be due right away
		case next != 0:
			wait = time.Duration(next-s.cfg.Clock.Now().UnixMilli()) * time.Millisecond
			if wait <= 0 {
				continue
			}
		default:
			wait = -1 // nothing queued: wait for Notify only
		}
		if !s.sleep(ctx, wait) {
			return
		}
	}
}

// sleep waits for d (forever if d < 0), a Notify, or cancellation. It
// reports false on cancellation.
func (s *Service) sleep(ctx context.Context, d time.Duration) bool {
	var timerC <-chan time.Time
	if d >= 0 {
		t := s.cfg.Clock.NewTimer(d)
		defer t.Stop()
		timerC = t.C()
	}
	select {
	case <-ctx.Done():
		return false
	case <-s.notify:
	case <-timerC:
	}
	return true
}

// deliverAll runs one batch of every level. It returns the earliest pending
// delivery time in ms (0 if no level has a pending entry), whether any
// offset advanced, and the first error.
func (s *Service) deliverAll(ctx context.Context) (next int64, progressed bool, firstErr error) {
	for level := int32(1); level <= s.cfg.Levels.MaxLevel(); level++ {
		due, adv, err := s.deliverLevel(ctx, level)
		if ctx.Err() != nil {
			return 0, progressed, ctx.Err()
		}
		if err != nil {
			s.logger.Warn("delay delivery failed; will retry", "level", level, "error", err)
			if firstErr == nil {
				firstErr = err
			}
		}
		progressed = progressed || adv
		if due != 0 && (next == 0 || due < next) {
			next = due
		}
	}
	return next, progressed, firstErr
}

// deliverLevel re-puts the due entries of one level, up to BatchSize. It
// returns the delivery time of the first entry that is not yet due (0 if
// none was seen) and whether the level's offset advanced.
func (s *Service) deliverLevel(ctx context.Context, level int32) (notDueAt int64, advanced bool, err error) {
	s.mu.Lock()
	from := s.offsets[level]
	s.mu.Unlock()

	entries, err := s.cfg.Store.ReadQueue(ctx, Topic, QueueID(level), from, s.cfg.BatchSize)
	if err != nil {
		return 0, false, err
	}
	now := s.cfg.Clock.Now().UnixMilli()
	delay := s.cfg.Levels.Delay(level).Milliseconds()
	var batch []*message.Ext
	nextOffset := from
	for _, e := range entries {
		deliverAt := e.TagsCode
		// A delivery time further away than the level's delay cannot be
		// right (clock moved back, level table changed): deliver it now
		// rather than hold the whole level, as RocketMQ does.
		if deliverAt > now+delay {
			deliverAt = now
		}
		if deliverAt > now {
			notDueAt = deliverAt
			break
		}
		nextOffset = e.QueueOffset + 1
		stored, rerr := s.cfg.Store.ReadRecord(ctx, e.CommitLogOffset)
		if rerr != nil {
			if ctx.Err() != nil {
				return 0, false, ctx.Err()
			}
			s.logger.Error("delayed record unreadable; skipped", "level", level,
				"queue_offset", e.QueueOffset, "commitlog_offset", e.CommitLogOffset, "error", rerr)
			metrics.IncrCounter([]string{"broker", "schedule", "skipped"}, 1)
			continue
		}
		msg, berr := RePut(stored)
		if berr != nil {
			s.logger.Error("delayed record cannot be delivered; skipped", "level", level,
				"queue_offset", e.QueueOffset, "error", berr)
			metrics.IncrCounter([]string{"broker", "schedule", "skipped"}, 1)
			continue
		}
		batch = append(batch, msg)
	}
	if nextOffset == from {
		return notDueAt, false, nil
	}
	if len(batch) > 0 {
		if err := s.cfg.Store.Append(ctx, batch); err != nil {
			return 0, false, err
		}
		metrics.IncrCounter([]string{"broker", "schedule", "delivered"}, float32(len(batch)))
	}
	s.mu.Lock()
	s.offsets[level] = nextOffset
	s.mu.Unlock()
	return notDueAt, true, nil
}
