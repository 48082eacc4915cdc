// Package consumequeue owns RocketMQ ConsumeQueue files (docs/protocol.md §6.3):
// per topic/queue directories of fixed 20-byte entries (CommitLog offset,
// record size, tag hash) that turn a logical queue offset into a position in
// the CommitLog. The FSM dispatches committed records into it; pull handlers
// read it.
//
// Layout is RocketMQ's: <Dir>/<topic>/<queueId>/<20-digit first byte offset>,
// 300 000 entries per file, big-endian. Files are preallocated (fallocate),
// mapped MAP_SHARED and written through the mapping: a dispatch is a 20-byte
// store with no system call, which keeps the FSM's apply loop short. Flush
// (every FlushInterval and on demand) msyncs what was written since the last
// flush.
//
// A queue may start at any logical offset. The slots of its first file below
// that offset hold RocketMQ's blank entry (offset 0, size MaxInt32), which is
// also what retention writes over dropped entries; recovery takes the first
// non-blank slot as MinOffset and the first zero or invalid slot as the end,
// so reopening, or deleting the directory and replaying the retained log,
// gives the same queue.
//
// Concurrency: one goroutine (the FSM) calls Put; any number call Get, Read,
// MinOffset and MaxOffset. The queue table is a copy-on-write map behind an
// atomic pointer, offsets are atomics, and readers take only a per-queue
// read lock that keeps mappings alive while they copy entries out.
//
// Choices beyond RocketMQ (docs/storage.md §13):
//   - Put checks that CommitLog offsets move forward within a queue and
//     recovery uses the same rule, so garbage or a stale tail ends the queue
//     instead of being served.
//   - Recovery scans each queue's written entries (not only the last three
//     files, as Java does); it stops at the first zero slot, so the cost is
//     the number of entries, not the file size.
//   - Retention keeps the file holding a queue's newest entry even when all
//     of it is below the floor, so MaxOffset survives a restart.
//   - New files are created under a temporary name, fallocated, fsynced and
//     renamed: no short file after a crash, and no SIGBUS from a full disk
//     when a store into the mapping needs a block.
package consumequeue

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/armon/go-metrics"
	"github.com/hashicorp/go-hclog"
)

// Options configures a Store.
type Options struct {
	Dir            string // storePathRootDir/consumequeue
	EntriesPerFile int    // default DefaultEntriesPerFile
	// FlushInterval is the background msync period; 0 means 1 s, negative
	// disables the background flusher (Flush and Close still sync).
	FlushInterval time.Duration
	Logger        hclog.Logger

	noSync bool // tests only: skip msync/fsync so fuzzing runs at CPU speed
}

// Store holds every consume queue of a broker.
type Store struct {
	dir     string
	perFile int64
	noSync  bool
	log     hclog.Logger

	mu     sync.Mutex // serialises queue creation, deletion and Close
	queues atomic.Pointer[map[QueueID]*queue]
	closed atomic.Bool

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// Open loads every <topic>/<queueId>/<file> under opts.Dir (creating the
// directory if needed), recovers each queue's valid prefix, and starts the
// background flusher.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("consumequeue: Options.Dir is empty")
	}
	perFile := opts.EntriesPerFile
	if perFile <= 0 {
		perFile = DefaultEntriesPerFile
	}
	if perFile > (1<<31-1)/EntrySize {
		return nil, fmt.Errorf("consumequeue: EntriesPerFile %d too large", perFile)
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	s := &Store{dir: opts.Dir, perFile: int64(perFile), noSync: opts.noSync, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	queues, err := s.loadAll()
	if err != nil {
		return nil, err
	}
	s.queues.Store(&queues)

	interval := opts.FlushInterval
	if interval == 0 {
		interval = time.Second
	}
	if interval > 0 {
		go s.flushLoop(interval)
	} else {
		close(s.done)
	}
	return s, nil
}

func (s *Store) loadAll() (map[QueueID]*queue, error) {
	queues := make(map[QueueID]*queue)
	fail := func(err error) (map[QueueID]*queue, error) {
		for _, q := range queues {
			q.unmapAll()
		}
		return nil, err
	}
	topics, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	for _, td := range topics {
		if !td.IsDir() || !validTopic(td.Name()) {
			s.log.Warn("ignoring unexpected entry in consumequeue directory", "name", td.Name())
			continue
		}
		topicDir := filepath.Join(s.dir, td.Name())
		ids, err := os.ReadDir(topicDir)
		if err != nil {
			return fail(err)
		}
		for _, qd := range ids {
			id, err := strconv.ParseInt(qd.Name(), 10, 32)
			if !qd.IsDir() || err != nil || id < 0 || strconv.FormatInt(id, 10) != qd.Name() {
				s.log.Warn("ignoring unexpected entry in topic directory", "topic", td.Name(), "name", qd.Name())
				continue
			}
			qid := QueueID{Topic: td.Name(), ID: int32(id)}
			q := newQueue(filepath.Join(topicDir, qd.Name()), qid, s.perFile, s.noSync, s.log)
			if err := q.load(); err != nil {
				return fail(fmt.Errorf("consumequeue: load %s/%d: %w", qid.Topic, qid.ID, err))
			}
			queues[qid] = q
		}
	}
	return queues, nil
}

func (s *Store) flushLoop(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			start := time.Now()
			err := s.Flush()
			metrics.MeasureSince([]string{"consumequeue", "flush"}, start)
			if err != nil {
				s.log.Error("consume queue flush failed", "error", err)
			}
		}
	}
}

func (s *Store) lookup(topic string, queueID int32) *queue {
	return (*s.queues.Load())[QueueID{Topic: topic, ID: queueID}]
}

// queueFor returns the queue, creating its directory if it is new.
func (s *Store) queueFor(topic string, queueID int32) (*queue, error) {
	if q := s.lookup(topic, queueID); q != nil {
		return q, nil
	}
	if err := checkName(topic, queueID); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	old := *s.queues.Load()
	qid := QueueID{Topic: topic, ID: queueID}
	if q := old[qid]; q != nil {
		return q, nil
	}
	topicDir := filepath.Join(s.dir, topic)
	dir := filepath.Join(topicDir, strconv.Itoa(int(queueID)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := syncDir(topicDir, s.noSync); err != nil {
		return nil, err
	}
	if err := syncDir(s.dir, s.noSync); err != nil {
		return nil, err
	}
	q := newQueue(dir, qid, s.perFile, s.noSync, s.log)
	next := make(map[QueueID]*queue, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[qid] = q
	s.queues.Store(&next)
	return q, nil
}

// Put writes e at logical offset. offset must equal MaxOffset (append); a
// queue without files may start at any non-negative offset. An offset below
// MaxOffset whose stored entry equals e is a no-op (FSM replay), as is one
// below MinOffset (already dropped by retention); anything else is an error
// and changes nothing. PhysOffsets must not go backwards within a queue.
func (s *Store) Put(topic string, queueID int32, offset int64, e Entry) error {
	if s.closed.Load() {
		return ErrClosed
	}
	// Checked before the queue is created so bad input leaves no trace.
	if offset < 0 || offset >= maxLogicalOffset {
		return fmt.Errorf("%w: %s/%d offset %d", ErrOffsetOutOfRange, topic, queueID, offset)
	}
	if !e.valid() {
		return fmt.Errorf("%w: %+v", ErrInvalidEntry, e)
	}
	q, err := s.queueFor(topic, queueID)
	if err != nil {
		return err
	}
	return q.put(offset, e)
}

// Get returns the entry at offset, or ErrOffsetOutOfRange outside
// [MinOffset, MaxOffset).
func (s *Store) Get(topic string, queueID int32, offset int64) (Entry, error) {
	if s.closed.Load() {
		return Entry{}, ErrClosed
	}
	q := s.lookup(topic, queueID)
	if q == nil {
		return Entry{}, ErrOffsetOutOfRange
	}
	return q.get(offset)
}

// MaxReadEntries caps one Read, whatever max a caller passes on from the
// network.
const MaxReadEntries = 1 << 16

// Read appends up to max (at most MaxReadEntries) entries starting at
// offset to dst and returns it. offset == MaxOffset yields no entries and
// no error (nothing new yet); outside [MinOffset, MaxOffset] it returns
// ErrOffsetOutOfRange.
func (s *Store) Read(topic string, queueID int32, offset int64, max int, dst []Entry) ([]Entry, error) {
	if s.closed.Load() {
		return dst, ErrClosed
	}
	q := s.lookup(topic, queueID)
	if q == nil {
		if offset == 0 {
			return dst, nil
		}
		return dst, ErrOffsetOutOfRange
	}
	if max <= 0 {
		return dst, nil
	}
	return q.read(offset, min(max, MaxReadEntries), dst)
}

// MinOffset is the first logical offset still held (0 for an unknown queue).
func (s *Store) MinOffset(topic string, queueID int32) int64 {
	if q := s.lookup(topic, queueID); q != nil {
		return q.min.Load()
	}
	return 0
}

// MaxOffset is the next logical offset to be written (0 for an unknown queue).
func (s *Store) MaxOffset(topic string, queueID int32) int64 {
	if q := s.lookup(topic, queueID); q != nil {
		return q.max.Load()
	}
	return 0
}

// Queues lists every known queue, sorted by topic then id.
func (s *Store) Queues() []QueueID {
	m := *s.queues.Load()
	out := make([]QueueID, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (s *Store) each(fn func(*queue) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	var first error
	for _, q := range *s.queues.Load() {
		if err := fn(q); err != nil && first == nil {
			first = fmt.Errorf("consumequeue: %s/%d: %w", q.id.Topic, q.id.ID, err)
		}
	}
	return first
}

// TruncateFrom drops every entry whose PhysOffset >= physEnd, in every
// queue (crash recovery, unsafe rollback). The change is synced before it
// returns.
func (s *Store) TruncateFrom(physEnd int64) error {
	return s.each(func(q *queue) error { return q.truncateFrom(physEnd) })
}

// DeleteBelow applies retention: in every queue MinOffset advances to the
// first entry whose PhysOffset >= minPhys and files holding only older
// entries are removed. The file holding a queue's newest entry is kept even
// if all of it is older, so MaxOffset survives a restart.
func (s *Store) DeleteBelow(minPhys int64) error {
	return s.each(func(q *queue) error { return q.deleteBelow(minPhys) })
}

// DeleteTopic removes every queue of topic and its directory.
func (s *Store) DeleteTopic(topic string) error {
	if !validTopic(topic) {
		return fmt.Errorf("%w: %q", ErrInvalidName, topic)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	old := *s.queues.Load()
	next := make(map[QueueID]*queue, len(old))
	var victims []*queue
	for k, v := range old {
		if k.Topic == topic {
			victims = append(victims, v)
		} else {
			next[k] = v
		}
	}
	s.queues.Store(&next)
	for _, q := range victims {
		q.close()
	}
	if err := os.RemoveAll(filepath.Join(s.dir, topic)); err != nil {
		return err
	}
	return syncDir(s.dir, s.noSync)
}

// MaxPhysOffset is the highest PhysOffset+Size over all queues: the end of
// the CommitLog as far as dispatch has got (a recovery aid).
func (s *Store) MaxPhysOffset() int64 {
	var m int64
	for _, q := range *s.queues.Load() {
		m = max(m, q.physEnd.Load())
	}
	return m
}

// Flush makes every entry Put so far durable.
func (s *Store) Flush() error {
	return s.flushLocked()
}

// flushLocked is Flush for callers that hold s.mu (it does not take it).
func (s *Store) flushLocked() error {
	return s.each(func(q *queue) error { return q.flush() })
}

// Close stops the flusher, flushes and unmaps everything.
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil
	}
	err := s.Flush()
	s.closed.Store(true)
	for _, q := range *s.queues.Load() {
		q.close()
	}
	return err
}
