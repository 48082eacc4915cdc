package consumequeue

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// maxLogicalOffset keeps offset*EntrySize (the file name) inside int64.
const maxLogicalOffset = int64(1) << 58

// queue is one topic/queueId: a contiguous run of mapped files.
//
// Locking: every mutation (put, truncate, delete, close) holds writeMu, so a
// writeMu holder may read files without mapMu. Changing files or unmapping
// also takes mapMu exclusively; readers hold mapMu shared while they copy
// bytes out of a mapping. min and max are atomics so MaxOffset and the range
// checks never block, and a Put publishes an entry by storing max after the
// bytes are written.
type queue struct {
	id       QueueID
	dir      string
	perFile  int64 // entries per file
	fileSize int
	noSync   bool // tests only
	log      hclog.Logger

	writeMu sync.Mutex
	mapMu   sync.RWMutex
	files   []*mappedFile
	closed  bool

	min     atomic.Int64
	max     atomic.Int64
	flushed atomic.Int64 // max at the last successful flush
	physEnd atomic.Int64 // PhysOffset+Size of the newest entry (0 if none)
}

func newQueue(dir string, id QueueID, perFile int64, noSync bool, log hclog.Logger) *queue {
	return &queue{id: id, dir: dir, perFile: perFile, fileSize: int(perFile) * EntrySize, noSync: noSync, log: log}
}

// fileFor returns the index in files of the file holding offset, or -1.
// Callers hold writeMu or mapMu.
func (q *queue) fileFor(offset int64) int {
	if len(q.files) == 0 || offset < q.files[0].first {
		return -1
	}
	i := (offset - q.files[0].first) / q.perFile
	if i >= int64(len(q.files)) {
		return -1
	}
	return int(i)
}

// slot returns the 20 bytes of offset; the file must exist.
func (q *queue) slot(offset int64) []byte {
	f := q.files[q.fileFor(offset)]
	pos := (offset - f.first) * EntrySize
	return f.data[pos : pos+EntrySize]
}

// load opens every file of the queue directory and recovers the valid
// prefix: leading blanks give MinOffset, then entries must be valid and move
// forward in the CommitLog; the first zero or invalid slot is the end. Slots
// past the end are zeroed and files past it removed, so garbage can never
// resurface as entries.
func (q *queue) load() error {
	names, err := os.ReadDir(q.dir)
	if err != nil {
		return err
	}
	type found struct {
		name  string
		first int64
	}
	var files []found
	for _, de := range names {
		name := de.Name()
		if strings.HasSuffix(name, ".tmp") {
			// An interrupted create; never renamed into place, so never used.
			os.Remove(filepath.Join(q.dir, name))
			continue
		}
		start, ok := parseFileName(name)
		if !ok || !de.Type().IsRegular() {
			q.log.Warn("ignoring unexpected file in consume queue directory", "path", filepath.Join(q.dir, name))
			continue
		}
		if start%int64(q.fileSize) != 0 || start/EntrySize >= maxLogicalOffset {
			return fmt.Errorf("consumequeue: %s: file name is not a multiple of the file size %d (was EntriesPerFile changed?)",
				filepath.Join(q.dir, name), q.fileSize)
		}
		files = append(files, found{name: name, first: start / EntrySize})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].first < files[j].first })

	// Only a contiguous run is a queue; anything after a gap is dropped below.
	keep := len(files)
	for i := 1; i < len(files); i++ {
		if files[i].first != files[i-1].first+q.perFile {
			q.log.Warn("consume queue file missing; dropping the files after the gap",
				"queue", q.dir, "after", files[i-1].name)
			keep = i
			break
		}
	}
	for _, f := range files[keep:] {
		if err := os.Remove(filepath.Join(q.dir, f.name)); err != nil {
			return err
		}
	}
	files = files[:keep]
	for _, f := range files {
		m, extended, err := openMappedFile(filepath.Join(q.dir, f.name), f.first, q.fileSize, q.noSync)
		if err != nil {
			q.unmapAll()
			return err
		}
		if extended {
			q.log.Warn("consume queue file was short; extended with zeros", "path", m.path)
		}
		q.files = append(q.files, m)
	}
	if len(q.files) == 0 {
		return nil
	}
	return q.recover()
}

// recover scans the mapped files and sets min, max and physEnd.
func (q *queue) recover() error {
	first := q.files[0].first
	last := first + int64(len(q.files))*q.perFile
	off := first
	for off < last && decodeEntry(q.slot(off)).isBlank() {
		off++
	}
	minOff := off
	var physEnd int64
	for ; off < last; off++ {
		e := decodeEntry(q.slot(off))
		if !e.valid() || e.PhysOffset < physEnd {
			if !e.isZero() {
				q.log.Warn("invalid consume queue entry; queue ends here", "queue", q.dir, "offset", off,
					"phys", e.PhysOffset, "size", e.Size)
			}
			break
		}
		physEnd = e.end()
	}
	q.min.Store(minOff)
	q.max.Store(off)
	q.flushed.Store(off)
	q.physEnd.Store(physEnd)
	return q.cutAfter(off)
}

// cutAfter zeroes the slots from end to the end of its file and removes the
// files after it, keeping at least one file so min and max survive a reopen.
// Callers hold writeMu and mapMu exclusively (or own q exclusively).
func (q *queue) cutAfter(end int64) error {
	idx := q.fileFor(end)
	if idx < 0 { // end is the end of the last file
		return nil
	}
	if end == q.files[idx].first && idx > 0 {
		idx-- // the file starting at end would be empty
	}
	f := q.files[idx]
	from := int((end - f.first) * EntrySize)
	if from < 0 {
		from = 0
	}
	if from < len(f.data) && !allZero(f.data[from:]) {
		clear(f.data[from:])
		if err := f.syncRange(from, len(f.data)); err != nil {
			return err
		}
	}
	if idx+1 < len(q.files) {
		for _, g := range q.files[idx+1:] {
			g.unmap()
			if err := os.Remove(g.path); err != nil {
				return err
			}
		}
		q.files = q.files[:idx+1]
		return syncDir(q.dir, q.noSync)
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// put appends e at offset (see Store.Put for the rules).
func (q *queue) put(offset int64, e Entry) error {
	q.writeMu.Lock()
	defer q.writeMu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if offset < 0 || offset >= maxLogicalOffset {
		return fmt.Errorf("%w: %s/%d offset %d", ErrOffsetOutOfRange, q.id.Topic, q.id.ID, offset)
	}
	mx := q.max.Load()
	if offset < mx {
		if offset < q.min.Load() {
			return nil // already dropped by retention: nothing to compare with
		}
		if got := decodeEntry(q.slot(offset)); got != e {
			return fmt.Errorf("%w: %s/%d offset %d holds %+v, put %+v", ErrConflict, q.id.Topic, q.id.ID, offset, got, e)
		}
		return nil
	}
	if !e.valid() {
		return fmt.Errorf("%w: %+v", ErrInvalidEntry, e)
	}
	if e.PhysOffset < q.physEnd.Load() {
		return fmt.Errorf("%w: %s/%d offset %d: phys offset %d below the previous entry's end %d",
			ErrInvalidEntry, q.id.Topic, q.id.ID, offset, e.PhysOffset, q.physEnd.Load())
	}
	if offset > mx {
		if len(q.files) > 0 {
			return fmt.Errorf("%w: %s/%d put at %d leaves a gap after max offset %d", ErrConflict, q.id.Topic, q.id.ID, offset, mx)
		}
		if err := q.startAt(offset); err != nil {
			return err
		}
	}
	if q.fileFor(offset) < 0 {
		if err := q.addFile(offset - offset%q.perFile); err != nil {
			return err
		}
	}
	encodeEntry(q.slot(offset), e)
	q.physEnd.Store(e.end())
	q.max.Store(offset + 1) // publishes the entry to readers
	return nil
}

// startAt makes an empty queue begin at offset: its file is created and the
// slots before offset are blank, exactly as a queue that had held entries
// from the file start and lost them to retention.
func (q *queue) startAt(offset int64) error {
	first := offset - offset%q.perFile
	if err := q.addFile(first); err != nil {
		return err
	}
	f := q.files[0]
	for o := first; o < offset; o++ {
		encodeEntry(f.data[(o-first)*EntrySize:], blankEntry)
	}
	q.min.Store(offset)
	q.max.Store(offset)
	q.flushed.Store(first)
	return nil
}

func (q *queue) addFile(first int64) error {
	if len(q.files) > 0 && first != q.files[len(q.files)-1].first+q.perFile {
		return fmt.Errorf("consumequeue: internal: file %d does not follow %d", first, q.files[len(q.files)-1].first)
	}
	m, err := createMappedFile(filepath.Join(q.dir, fileName(first*EntrySize)), first, q.fileSize, q.noSync)
	if err != nil {
		return err
	}
	if err := syncDir(q.dir, q.noSync); err != nil {
		m.unmap()
		return err
	}
	q.mapMu.Lock()
	q.files = append(q.files, m)
	q.mapMu.Unlock()
	return nil
}

// get returns the entry at offset.
func (q *queue) get(offset int64) (Entry, error) {
	q.mapMu.RLock()
	defer q.mapMu.RUnlock()
	if q.closed {
		return Entry{}, ErrClosed
	}
	if offset < q.min.Load() || offset >= q.max.Load() {
		return Entry{}, ErrOffsetOutOfRange
	}
	return decodeEntry(q.slot(offset)), nil
}

// read appends up to n entries from offset to dst.
func (q *queue) read(offset int64, n int, dst []Entry) ([]Entry, error) {
	q.mapMu.RLock()
	defer q.mapMu.RUnlock()
	if q.closed {
		return dst, ErrClosed
	}
	mx := q.max.Load()
	if offset < q.min.Load() || offset > mx {
		return dst, ErrOffsetOutOfRange
	}
	if avail := mx - offset; int64(n) > avail {
		n = int(avail)
	}
	for n > 0 {
		f := q.files[q.fileFor(offset)]
		pos := (offset - f.first) * EntrySize
		k := min(int64(n), q.perFile-(offset-f.first))
		for i := int64(0); i < k; i++ {
			dst = append(dst, decodeEntry(f.data[pos+i*EntrySize:]))
		}
		offset += k
		n -= int(k)
	}
	return dst, nil
}

// search returns the first offset in [lo, hi) whose entry satisfies pred
// (hi if none); pred must be monotonic over the range. Caller holds writeMu.
func (q *queue) search(lo, hi int64, pred func(Entry) bool) int64 {
	for lo < hi {
		mid := lo + (hi-lo)/2
		if pred(decodeEntry(q.slot(mid))) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// truncateFrom drops every entry whose PhysOffset >= physEnd.
func (q *queue) truncateFrom(physEnd int64) error {
	q.writeMu.Lock()
	defer q.writeMu.Unlock()
	if q.closed || q.physEnd.Load() <= physEnd {
		return nil
	}
	mn, mx := q.min.Load(), q.max.Load()
	k := q.search(mn, mx, func(e Entry) bool { return e.PhysOffset >= physEnd })
	if k == mx {
		return nil
	}
	q.mapMu.Lock()
	defer q.mapMu.Unlock()
	q.max.Store(k)
	if q.flushed.Load() > k {
		q.flushed.Store(k)
	}
	if k > mn {
		q.physEnd.Store(decodeEntry(q.slot(k - 1)).end())
	} else {
		q.physEnd.Store(0)
	}
	q.log.Info("truncated consume queue", "queue", q.dir, "from", k, "was", mx)
	return q.cutAfter(k)
}

// deleteBelow drops the entries pointing below minPhys: MinOffset moves to
// the first entry at or above it, files wholly below are removed, and the
// dropped slots of the first kept file are blanked so a reopen (or a rebuild
// from the retained log) sees the same MinOffset. The file holding the last
// entry is always kept so MaxOffset survives a reopen.
func (q *queue) deleteBelow(minPhys int64) error {
	q.writeMu.Lock()
	defer q.writeMu.Unlock()
	if q.closed || len(q.files) == 0 {
		return nil
	}
	mn, mx := q.min.Load(), q.max.Load()
	k := q.search(mn, mx, func(e Entry) bool { return e.PhysOffset >= minPhys })
	idx := q.fileFor(k)
	if idx < 0 {
		idx = len(q.files) - 1
	}
	if k == mn && idx == 0 {
		return nil
	}
	q.mapMu.Lock()
	defer q.mapMu.Unlock()
	q.min.Store(k)
	dropped := q.files[:idx]
	keep := q.files[idx]
	q.files = append([]*mappedFile(nil), q.files[idx:]...)
	from := max(mn, keep.first)
	to := min(k, keep.first+q.perFile)
	for o := from; o < to; o++ {
		encodeEntry(keep.data[(o-keep.first)*EntrySize:], blankEntry)
	}
	if to > from {
		if err := keep.syncRange(int((from-keep.first)*EntrySize), int((to-keep.first)*EntrySize)); err != nil {
			return err
		}
	}
	for _, f := range dropped {
		f.unmap()
		if err := os.Remove(f.path); err != nil {
			return err
		}
	}
	if len(dropped) > 0 {
		q.log.Debug("deleted consume queue files", "queue", q.dir, "files", len(dropped), "min", k)
		return syncDir(q.dir, q.noSync)
	}
	return nil
}

// flush msyncs the entries written since the last flush.
func (q *queue) flush() error {
	q.mapMu.RLock()
	defer q.mapMu.RUnlock()
	if q.closed || len(q.files) == 0 {
		return nil
	}
	from, to := q.flushed.Load(), q.max.Load()
	if from >= to {
		return nil
	}
	from = max(from, q.files[0].first)
	for o := from; o < to; {
		idx := q.fileFor(o)
		if idx < 0 {
			break
		}
		f := q.files[idx]
		end := min(to, f.first+q.perFile)
		if err := f.syncRange(int((o-f.first)*EntrySize), int((end-f.first)*EntrySize)); err != nil {
			return err
		}
		o = end
	}
	// A concurrent put may have raised max; only what was synced is flushed.
	q.flushed.Store(to)
	return nil
}

// close unmaps everything; the queue answers ErrClosed afterwards.
func (q *queue) close() {
	q.writeMu.Lock()
	defer q.writeMu.Unlock()
	q.mapMu.Lock()
	defer q.mapMu.Unlock()
	q.closed = true
	q.unmapAll()
}

func (q *queue) unmapAll() {
	for _, f := range q.files {
		f.unmap()
	}
	q.files = nil
}
