// Package indexfile owns RocketMQ IndexFiles (docs/protocol.md §6.4): a hash
// index from "topic#key" (each KEYS token and the UNIQ_KEY) to CommitLog
// physical offsets, used by QUERY_MESSAGE. The FSM adds keys as it
// dispatches committed records; query handlers look them up.
//
// Each file is RocketMQ's layout: a 40-byte header, SlotNum 4-byte hash
// slots and MaxIndexNum 20-byte entries chained newest to oldest per slot.
// The hash is abs(Java String.hashCode) of the key, slot = hash % SlotNum,
// and an entry stores its store time as whole seconds since the file's
// first entry. Two consequences callers must handle:
//   - hashes collide, so Query returns every offset whose hash matches: the
//     caller must read each record and re-check its topic and keys;
//   - times are kept in seconds, so Query may return records whose store
//     time is up to 1 s outside [begin, end]; the caller re-checks that too
//     if it matters.
//
// Files are named yyyyMMddHHmmssSSS in UTC after the store time of their
// first entry (not the wall clock, as Java does), so deleting the directory
// and replaying the CommitLog gives identical files. They are preallocated,
// mapped MAP_SHARED and written through the mapping; Flush, and a
// background flusher, msync them.
//
// Recovery and replay: a full file is synced before the next one is
// created, so after a crash only the newest file can be torn; Open checks it
// and, if its header, slots and entries disagree, rebuilds the slots and
// chain links from the longest plausible run of entries. Put ignores
// offsets below LastPhysOffset and a key already indexed at LastPhysOffset,
// so the FSM can replay from its durable point without duplicates.
package indexfile

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/armon/go-metrics"
	"github.com/hashicorp/go-hclog"
)

// Defaults are RocketMQ's (a 420 000 040-byte file).
const (
	DefaultSlotNum     = 5_000_000
	DefaultMaxIndexNum = 20_000_000
)

// maxFileSize bounds SlotNum and MaxIndexNum so offsets stay in int32 range.
const maxFileSize = 1 << 31

// ErrClosed is returned after Close.
var ErrClosed = fmt.Errorf("indexfile: closed")

// Options configures a Service.
type Options struct {
	Dir         string // storePathRootDir/index
	SlotNum     int    // default 5_000_000
	MaxIndexNum int    // default 20_000_000
	// FlushInterval is the background msync period; 0 means 1 s, negative
	// disables the background flusher (Flush and Close still sync).
	FlushInterval time.Duration
	Logger        hclog.Logger

	noSync bool // tests only: skip msync/fsync so fuzzing runs at CPU speed
}

// Service owns the index files of a broker.
//
// Locking: putMu serialises the mutators (Put, TruncateFrom, DeleteBelow,
// Close). mu guards the file list and the mappings' lifetime: readers and
// Put hold it shared, rolling, deleting and closing hold it exclusively.
// Each file's own RWMutex orders Put's writes against concurrent queries.
type Service struct {
	dir         string
	slotNum     int
	maxIndexNum int
	log         hclog.Logger
	noSync      bool

	putMu  sync.Mutex
	mu     sync.RWMutex
	files  []*fileState // oldest first
	closed bool

	lastPhys atomic.Int64 // highest phys offset indexed
	minPhys  atomic.Int64 // retention floor: offsets below are never returned

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

type fileState struct {
	mu    sync.RWMutex
	f     *indexFile
	dirty atomic.Bool
}

// Open loads the index files in opts.Dir (creating it if needed).
func Open(opts Options) (*Service, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("indexfile: Options.Dir is empty")
	}
	slotNum, maxIndex := opts.SlotNum, opts.MaxIndexNum
	if slotNum <= 0 {
		slotNum = DefaultSlotNum
	}
	if maxIndex <= 0 {
		maxIndex = DefaultMaxIndexNum
	}
	if maxIndex < 2 || fileSize(slotNum, maxIndex) > maxFileSize || slotNum > maxFileSize || maxIndex > maxFileSize {
		return nil, fmt.Errorf("indexfile: SlotNum %d / MaxIndexNum %d out of range", slotNum, maxIndex)
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	s := &Service{dir: opts.Dir, slotNum: slotNum, maxIndexNum: maxIndex, log: log, noSync: opts.noSync,
		stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.load(); err != nil {
		return nil, err
	}
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

func (s *Service) load() error {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		name := de.Name()
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(s.dir, name)) // an interrupted create
			continue
		}
		t, ok := parseName(name)
		if !ok || !de.Type().IsRegular() {
			s.log.Warn("ignoring unexpected file in index directory", "name", name)
			continue
		}
		f, err := openIndexFile(filepath.Join(s.dir, name), t, s.slotNum, s.maxIndexNum, s.noSync)
		if err != nil {
			s.unmapAll()
			return err
		}
		if c := f.i32(hIndexCount); c < 0 || int(c) > s.maxIndexNum {
			s.log.Warn("index file header has an invalid entry count; clamped", "path", f.path, "count", c)
		}
		s.files = append(s.files, &fileState{f: f})
	}
	sort.Slice(s.files, func(i, j int) bool { return s.files[i].f.nameTime < s.files[j].f.nameTime })
	// Older files were synced when the next one was created; only the
	// newest can hold a torn tail.
	if n := len(s.files); n > 0 {
		if f := s.files[n-1].f; f.verify() {
			s.log.Warn("index file was inconsistent (unclean shutdown?); rebuilt its slots from its entries",
				"path", f.path, "entries", f.count()-1)
			if err := f.sync(); err != nil {
				s.unmapAll()
				return err
			}
		}
	}
	s.lastPhys.Store(s.newestPhys())
	return nil
}

// newestPhys is the end phys offset of the newest non-empty file.
func (s *Service) newestPhys() int64 {
	for i := len(s.files) - 1; i >= 0; i-- {
		if f := s.files[i].f; !f.empty() {
			return f.endPhys()
		}
	}
	return 0
}

func (s *Service) flushLoop(interval time.Duration) {
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
			metrics.MeasureSince([]string{"indexfile", "flush"}, start)
			if err != nil {
				s.log.Error("index flush failed", "error", err)
			}
		}
	}
}

// Put indexes key (topic + "#" + key) for the record at physOffset.
// Dispatch runs in CommitLog order, so a physOffset below LastPhysOffset is
// a replay and ignored, as is the same key again at LastPhysOffset; this
// makes replaying after a crash safe. A full file rolls to a new one.
func (s *Service) Put(key string, physOffset int64, storeTimestamp int64) error {
	s.putMu.Lock()
	defer s.putMu.Unlock()
	if physOffset < 0 {
		return fmt.Errorf("indexfile: negative phys offset %d", physOffset)
	}
	hash := keyHash(key)
	last := s.lastPhys.Load()
	if physOffset < last {
		return nil
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	if physOffset == last && s.has(hash, physOffset) {
		s.mu.RUnlock()
		return nil
	}
	var fs *fileState
	if n := len(s.files); n > 0 && !s.files[n-1].f.full() {
		fs = s.files[n-1]
	}
	s.mu.RUnlock()
	if fs == nil {
		var err error
		if fs, err = s.roll(storeTimestamp); err != nil {
			return err
		}
	}
	fs.mu.Lock()
	fs.f.add(hash, physOffset, storeTimestamp)
	fs.mu.Unlock()
	fs.dirty.Store(true)
	s.lastPhys.Store(physOffset)
	return nil
}

// has reports whether an entry (hash, phys) exists; chains run newest to
// oldest, so the walk stops at the first older offset. Caller holds mu.
func (s *Service) has(hash int32, phys int64) bool {
	for i := len(s.files) - 1; i >= 0; i-- {
		fs := s.files[i]
		fs.mu.RLock()
		found, older := fs.f.find(hash, phys)
		fs.mu.RUnlock()
		if found {
			return true
		}
		if older {
			return false
		}
	}
	return false
}

// roll creates the next file, named after storeTimestamp but always after
// the previous file so names sort in creation order.
func (s *Service) roll(storeTimestamp int64) (*fileState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	// The full file is final: make it durable before moving on, so after a
	// crash only the newest file needs checking.
	if n := len(s.files); n > 0 {
		if err := s.files[n-1].f.sync(); err != nil {
			return nil, err
		}
	}
	t := clampNameTime(storeTimestamp)
	if n := len(s.files); n > 0 && t <= s.files[n-1].f.nameTime {
		t = s.files[n-1].f.nameTime + 1
	}
	if t > maxNameTime {
		return nil, fmt.Errorf("indexfile: no file name left after %d", s.files[len(s.files)-1].f.nameTime)
	}
	f, err := createIndexFile(filepath.Join(s.dir, formatName(t)), t, s.slotNum, s.maxIndexNum, s.noSync)
	if err != nil {
		return nil, err
	}
	if err := s.syncDir(); err != nil {
		f.unmap()
		return nil, err
	}
	fs := &fileState{f: f}
	s.files = append(s.files, fs)
	return fs, nil
}

// MaxQueryNum caps the results of one Query, whatever maxNum a caller
// passes on from the network (Java caps at maxMsgsNumBatch, 64).
const MaxQueryNum = 1024

// Query returns up to maxNum (at most MaxQueryNum) physical offsets indexed under key whose store
// time may lie in [begin, end] (ms), newest first, without duplicates.
// Matches are by hash only: the caller must re-check the key (and, to the
// second, the time) on each record.
func (s *Service) Query(key string, maxNum int, begin, end int64) ([]int64, error) {
	if maxNum <= 0 || begin > end {
		return nil, nil
	}
	maxNum = min(maxNum, MaxQueryNum)
	hash := keyHash(key)
	minPhys := s.minPhys.Load()
	// An entry stored as second t covers [t, t+999] ms: it may match if
	// t >= begin-999 (saturating, so begin = MinInt64 means "no bound").
	lo := begin
	if lo > math.MinInt64+999 {
		lo -= 999
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	out := make([]int64, 0, min(maxNum, 64))
	seen := make(map[int64]struct{})
	for i := len(s.files) - 1; i >= 0 && len(out) < maxNum; i-- {
		fs := s.files[i]
		fs.mu.RLock()
		f := fs.f
		if !f.empty() && f.endTimestamp() >= lo && f.beginTimestamp() <= end {
			out = f.collect(hash, lo, end, minPhys, maxNum, out, seen)
		}
		fs.mu.RUnlock()
	}
	return out, nil
}

// TruncateFrom removes every entry with a phys offset >= physEnd (crash
// recovery, unsafe rollback), so they are never returned again and
// re-dispatching the same offsets indexes them afresh.
func (s *Service) TruncateFrom(physEnd int64) error {
	s.putMu.Lock()
	defer s.putMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for i := len(s.files) - 1; i >= 0; i-- {
		f := s.files[i].f
		if f.empty() || f.endPhys() < physEnd {
			if f.empty() && i == len(s.files)-1 {
				continue
			}
			break
		}
		for !f.empty() && f.entry(f.count()-1).phys >= physEnd {
			f.removeLast()
		}
		if f.empty() {
			// A rebuild would never have created it.
			f.unmap()
			if err := os.Remove(f.path); err != nil {
				return err
			}
			s.files = append(s.files[:i], s.files[i+1:]...)
			continue
		}
		if err := f.sync(); err != nil {
			return err
		}
	}
	s.lastPhys.Store(s.newestPhys())
	return s.syncDir()
}

// DeleteBelow applies retention: files whose entries all point below minPhys
// are removed (never the newest, which is still being written), and no
// offset below minPhys is returned by Query any more.
func (s *Service) DeleteBelow(minPhys int64) error {
	s.putMu.Lock()
	defer s.putMu.Unlock()
	if minPhys > s.minPhys.Load() {
		s.minPhys.Store(minPhys)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	n := 0
	for n < len(s.files)-1 && s.files[n].f.endPhys() < minPhys {
		n++
	}
	if n == 0 {
		return nil
	}
	for _, fs := range s.files[:n] {
		fs.f.unmap()
		if err := os.Remove(fs.f.path); err != nil {
			return err
		}
	}
	s.files = append([]*fileState(nil), s.files[n:]...)
	s.log.Debug("deleted index files", "count", n, "minPhys", minPhys)
	return s.syncDir()
}

// LastPhysOffset is the highest phys offset indexed (for resuming dispatch).
func (s *Service) LastPhysOffset() int64 { return s.lastPhys.Load() }

// Flush makes every Put so far durable.
func (s *Service) Flush() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	for _, fs := range s.files {
		if fs.dirty.Swap(false) {
			if err := fs.f.sync(); err != nil {
				fs.dirty.Store(true)
				return err
			}
		}
	}
	return nil
}

// Close stops the flusher, flushes and unmaps everything.
func (s *Service) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	s.putMu.Lock()
	defer s.putMu.Unlock()
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil
	}
	err := s.Flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.unmapAll()
	return err
}

func (s *Service) unmapAll() {
	for _, fs := range s.files {
		fs.f.unmap()
	}
	s.files = nil
}

// syncDir makes file creations and removals durable.
func (s *Service) syncDir() error {
	if s.noSync {
		return nil
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
