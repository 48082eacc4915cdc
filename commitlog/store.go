package commitlog

import (
	"context"
	"errors"
	"fmt"
	"github.com/armon/go-metrics"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"
)

// AppendHook runs inside StoreLogs for every record, in log order, before its
// bytes are written or replicated; pos is the global physical offset of the
// record (so l.Data[0] will sit at pos+HeaderSize). The leader's hook patches
// l.Data in place (queue/physical offsets); a follower's hook verifies. The
// hook must not change len(l.Data) or len(l.Extensions). An error fails the
// whole StoreLogs call, which is rolled back.
type AppendHook func(l *raft.Log, pos int64) error

// Options configures a Store.
type Options struct {
	// RootDir is storePathRootDir: the store owns RootDir/commitlog/,
	// RootDir/checkpoint, RootDir/abort and RootDir/lock.
	RootDir string
	// SegmentSize is the size of every segment file (default 1 GiB). It is
	// immutable for a store (checked at Open) and must be a multiple of 4096.
	SegmentSize int64
	Flush       FlushMode
	// FlushInterval is the ASYNC flush period (default 10 ms).
	FlushInterval time.Duration
	Hook          AppendHook
	Logger        hclog.Logger

	// Prealloc selects how segments prepared ahead of time are preallocated
	// (default PreallocZeroFill). A segment needed before the background
	// preparer finished it is created with fallocate so raft is not blocked.
	Prealloc PreallocMode
	// PreallocRate caps the background zero-fill in bytes per second
	// (default 128 MiB/s; negative: unlimited). Zero-filling competes with
	// appends for disk bandwidth; paced, it finishes in time for moderate
	// ingest rates (where low fdatasync latency matters most) and, under a
	// sustained stream, is overtaken and cancelled having cost little.
	PreallocRate int64
	// FileReservedTime is how long DeleteExpired keeps sealed segments
	// (RocketMQ fileReservedTime; default 72 h).
	FileReservedTime time.Duration
}

const (
	minSegmentSize = 4096
	maxSegmentSize = 1 << 31 // record offsets inside a segment are u32; keep headroom
)

// Store is the CommitLog: a raft.LogStore whose entries are RocketMQ-style
// records in preallocated segment files.
//
// Concurrency: raft calls the mutating methods from one goroutine, but they
// are safe to call concurrently (wmu serialises them). Reads (GetLog, ReadAt,
// Lease, positions) run concurrently with appends.
type Store struct {
	opts    Options
	log     hclog.Logger
	root    string
	dir     string // RootDir/commitlog
	segSize int64
	clean   bool // no abort file at Open

	lockFile *os.File
	ckFile   *checkpointFile
	prep     *preparer

	// wmu serialises mutators: StoreLogs, DeleteRange, SetResetIntent,
	// DeleteExpired, Close. Lock order: wmu -> ckMu -> mu.
	wmu sync.Mutex

	// ckMu guards ck (the checkpoint as last written) and the flushed state,
	// and serialises data syncs with truncation.
	ckMu         sync.Mutex
	ck           checkpoint
	flushedPos   int64
	flushedIndex uint64
	flushedTerm  uint64

	// mu guards the published log state read by readers.
	mu       sync.RWMutex
	segs     []*segment // contiguous, ascending; the last one is the active segment
	first    uint64     // index of the first record; 0 when the store is empty
	last     uint64
	lastTerm uint64
	writeEnd int64  // global offset after the last record: the next record goes here
	nextHint uint64 // when empty: the index the next record must carry (0 = any)
	closed   bool

	// gen counts rewrites of stored bytes (suffix truncation, reset), so a
	// read that raced with one can tell a torn copy from real corruption.
	gen atomic.Uint64

	applied    atomic.Uint64
	dispatched atomic.Uint64
	diskFull   atomic.Bool
	failed     atomic.Pointer[failure]

	bgCancel context.CancelFunc
	bgWG     sync.WaitGroup
	sealCh   chan *segment

	// syncData is fdatasync for segment data; tests replace it to inject
	// I/O errors.
	syncData func(fd int) error

	// crashPoint, when set (tests only), is called at interesting points of
	// mutating operations so a test can snapshot the files there.
	crashPoint func(point string)
}

type failure struct{ err error }

// Open opens (creating if needed) the store under opts.RootDir. It takes the
// RootDir/lock flock (a second Open of the same directory fails), recovers
// after a crash (docs/storage.md §10) and creates RootDir/abort until Close.
func Open(opts Options) (*Store, error) {
	if opts.RootDir == "" {
		return nil, errors.New("commitlog: Options.RootDir is required")
	}
	if opts.SegmentSize == 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.SegmentSize < minSegmentSize || opts.SegmentSize > maxSegmentSize || opts.SegmentSize%minSegmentSize != 0 {
		return nil, fmt.Errorf("commitlog: SegmentSize %d must be a multiple of %d in [%d, %d]", opts.SegmentSize, minSegmentSize, minSegmentSize, maxSegmentSize)
	}
	if opts.Flush != FlushSync && opts.Flush != FlushAsync {
		return nil, fmt.Errorf("commitlog: unknown flush mode %d", opts.Flush)
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 10 * time.Millisecond
	}
	if opts.PreallocRate == 0 {
		opts.PreallocRate = 128 << 20
	}
	if opts.FileReservedTime <= 0 {
		opts.FileReservedTime = 72 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	s := &Store{
		opts:    opts,
		log:     opts.Logger.Named("commitlog"),
		root:    opts.RootDir,
		dir:     filepath.Join(opts.RootDir, "commitlog"),
		segSize: opts.SegmentSize,
		sealCh:  make(chan *segment, 64),
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("commitlog: %w", err)
	}
	if err := s.lock(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			s.releaseAll()
		}
	}()
	abortPath := filepath.Join(s.root, "abort")
	if _, err := os.Stat(abortPath); errors.Is(err, os.ErrNotExist) {
		s.clean = true
	}
	if err := s.loadCheckpoint(); err != nil {
		return nil, err
	}
	if err := s.recover(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(abortPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("commitlog: create abort file: %w", err)
	}
	f.Close()
	if err := syncDir(s.root); err != nil {
		return nil, err
	}
	s.prep = newPreparer(s.dir, s.segSize, opts.Prealloc, max(opts.PreallocRate, 0), s.log)
	ctx, cancel := context.WithCancel(context.Background())
	s.bgCancel = cancel
	s.bgWG.Add(2)
	go s.runFlusher(ctx)
	go s.runSealer(ctx)
	s.mu.RLock()
	for _, seg := range s.segs {
		if seg.sealed && !sidecarExists(seg) {
			s.enqueueSeal(seg)
		}
	}
	s.mu.RUnlock()
	s.maybePrepareNext()
	ok = true
	s.log.Info("opened", "dir", s.dir, "clean", s.clean, "first", s.first, "last", s.last, "writeEnd", s.writeEnd, "flush", opts.Flush)
	return s, nil
}

func (s *Store) lock() error {
	f, err := os.OpenFile(filepath.Join(s.root, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("commitlog: open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("commitlog: %s is locked by another store (another process or Open is using it)", s.root)
		}
		return fmt.Errorf("commitlog: lock %s: %w", s.root, err)
	}
	s.lockFile = f
	return nil
}

// loadCheckpoint reads RootDir/checkpoint, creating it for a new store.
func (s *Store) loadCheckpoint() error {
	cf, created, err := openCheckpointFile(filepath.Join(s.root, "checkpoint"))
	if err != nil {
		return fmt.Errorf("commitlog: open checkpoint: %w", err)
	}
	s.ckFile = cf
	ck, err := cf.load()
	if err != nil {
		ents, _ := os.ReadDir(s.dir)
		hasSegments := false
		for _, e := range ents {
			if _, ok := parseSegmentName(e.Name()); ok {
				hasSegments = true
			}
		}
		if hasSegments {
			return fmt.Errorf("commitlog: segments exist but the checkpoint is unreadable, refusing to guess what was fsynced: %w", err)
		}
		if !created {
			s.log.Warn("checkpoint unreadable but no segments exist; starting a new store", "error", err)
		}
		ck = checkpoint{Seq: 1, SegSize: s.segSize}
		if err := cf.store(&ck); err != nil {
			return err
		}
		if err := syncDir(s.root); err != nil {
			return err
		}
	}
	if ck.SegSize != s.segSize {
		return fmt.Errorf("commitlog: store was created with SegmentSize %d, opened with %d (segment size is immutable)", ck.SegSize, s.segSize)
	}
	s.ck = ck
	s.applied.Store(ck.Applied)
	s.dispatched.Store(ck.Dispatched)
	return nil
}

// WasCleanShutdown reports whether the previous run closed the store cleanly
// (no abort file at Open). ConsumeQueue/IndexFile use it to pick their
// recovery depth.
func (s *Store) WasCleanShutdown() bool { return s.clean }

// Close flushes, writes the checkpoint, removes the abort file and releases
// the lock. After a fatal I/O error the abort file is left in place.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.bgCancel()
	s.bgWG.Wait()
	s.prep.close()

	var errs []error
	if err := s.Err(); err != nil {
		errs = append(errs, err)
	} else {
		if err := s.flush(); err != nil {
			errs = append(errs, err)
		} else if err := os.Remove(filepath.Join(s.root, "abort")); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		} else if err := syncDir(s.root); err != nil {
			errs = append(errs, err)
		}
	}
	s.releaseAll()
	return errors.Join(errs...)
}

// releaseAll drops the store's references and the lock (used by Close and by a failed Open).
func (s *Store) releaseAll() {
	s.mu.Lock()
	segs := s.segs
	s.segs = nil
	s.mu.Unlock()
	for _, seg := range segs {
		seg.release()
	}
	if s.ckFile != nil {
		s.ckFile.close()
	}
	if s.lockFile != nil {
		_ = unix.Flock(int(s.lockFile.Fd()), unix.LOCK_UN)
		s.lockFile.Close()
	}
}

// usable returns the error that makes the store refuse writes, if any.
func (s *Store) usable() error {
	if f := s.failed.Load(); f != nil {
		return f.err
	}
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return nil
}

// fail records a fatal I/O error: after a failed fsync the state of the page
// cache is unknowable, so the store refuses every later write.
func (s *Store) fail(err error) error {
	err = fmt.Errorf("commitlog: store failed, refusing further writes: %w", err)
	if s.failed.CompareAndSwap(nil, &failure{err: err}) {
		metrics.IncrCounter([]string{"commitlog", "failed"}, 1)
		s.log.Error("fatal I/O error", "error", err)
	}
	return s.failed.Load().err
}

// Err returns the fatal error that stopped the store, or nil.
func (s *Store) Err() error {
	if f := s.failed.Load(); f != nil {
		return f.err
	}
	return nil
}

// datasync fdatasyncs segment data.
func (s *Store) datasync(fd int) error {
	defer metrics.MeasureSince([]string{"commitlog", "fdatasync"}, time.Now())
	if s.syncData != nil {
		return s.syncData(fd)
	}
	return unix.Fdatasync(fd)
}

func (s *Store) hit(point string) {
	if s.crashPoint != nil {
		s.crashPoint(point)
	}
}

// SetApplied records the committed and applied index; it is persisted with
// the next checkpoint (clamped to the flushed index).
func (s *Store) SetApplied(index uint64) { s.applied.Store(index) }

// SetDispatched records D_durable: ConsumeQueue and IndexFile are flushed
// through index. Persisted with the next checkpoint.
func (s *Store) SetDispatched(index uint64) { s.dispatched.Store(index) }

// Applied returns the value last set with SetApplied (or loaded at Open).
func (s *Store) Applied() uint64 { return s.applied.Load() }

// Dispatched returns the value last set with SetDispatched (or loaded at Open).
func (s *Store) Dispatched() uint64 { return s.dispatched.Load() }

// SegmentSize returns the store's segment size.
func (s *Store) SegmentSize() int64 { return s.segSize }

var (
	_ raft.LogStore          = (*Store)(nil)
	_ raft.MonotonicLogStore = (*Store)(nil)
)
