package commitlog

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// logModel is what the log should contain: entries first..last.
type logModel struct {
	first, last uint64
	logs        map[uint64]*raft.Log
	resetPos    int64 // for an empty model after a reset: where the next record goes
}

func (m logModel) clone() logModel {
	c := logModel{first: m.first, last: m.last, resetPos: m.resetPos, logs: make(map[uint64]*raft.Log, len(m.logs))}
	for k, v := range m.logs {
		c.logs[k] = v
	}
	return c
}

func (m *logModel) append(logs []*raft.Log) {
	for _, l := range logs {
		if m.first == 0 {
			m.first = l.Index
		}
		m.logs[l.Index] = l
		m.last = l.Index
	}
}

func (m *logModel) truncate(from uint64) {
	for i := from; i <= m.last; i++ {
		delete(m.logs, i)
	}
	if from <= m.first {
		m.first, m.last = 0, 0
	} else {
		m.last = from - 1
	}
}

// crashImage is a copy of the store's files taken at a crash point.
type crashImage struct {
	point      string
	dir        string
	before     logModel
	after      logModel
	durable    uint64 // every index in [first, durable] was acked by SYNC StoreLogs
	durableEnd int64  // end position of record durable
	allowEmpty bool   // a reset may legitimately drop everything
	appendOp   bool   // bytes past the durable end may be torn (in-flight appends)
	prevDir    string // for truncate-after-zero: the image before zeroing began
	headMoves  bool   // retention: the first index may be anywhere in [before.first, maxFirst]
	maxFirst   uint64
}

type crashRecorder struct {
	t      *testing.T
	mu     sync.Mutex
	base   string
	src    string
	cur    crashImage
	images []crashImage
}

func (r *crashRecorder) at(point string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	img := r.cur
	img.point = point
	img.dir = filepath.Join(r.base, fmt.Sprintf("img%03d", len(r.images)))
	if point == "seal-before-sidecar" {
		// Taken by the background sealer, concurrently with any operation.
		img.appendOp = false
		img.headMoves, img.maxFirst = true, ^uint64(0)
	}
	if point == "truncate-after-zero" && len(r.images) > 0 {
		img.prevDir = r.images[len(r.images)-1].dir
	}
	copyDir(r.t, r.src, img.dir)
	r.images = append(r.images, img)
}

func (r *crashRecorder) setOp(before, after logModel, durable uint64, durableEnd int64, allowEmpty, appendOp bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cur = crashImage{before: before.clone(), after: after.clone(), durable: durable, durableEnd: durableEnd,
		allowEmpty: allowEmpty, appendOp: appendOp}
}

// TestCrashMatrix snapshots the files at every crash point of append (before
// write, after each segment's write, after sync), segment switch and seal,
// suffix truncation (after checkpoint, after zeroing, after each unlink),
// retention and reset; then opens every image as is, with the unsynced tail
// zeroed, with it garbled, and with a torn checkpoint slot. Recovery must
// always give a prefix of the log before or after the interrupted operation
// and keep every acked (fsynced) record.
//
// In ASYNC mode nothing is acked durably, so only the checkpoint's flushed
// position must survive; torn variants damage bytes past it.
func TestCrashMatrix(t *testing.T) {
	for _, mode := range []FlushMode{FlushSync, FlushAsync} {
		t.Run(mode.String(), func(t *testing.T) { runCrashMatrix(t, mode) })
	}
}

func runCrashMatrix(t *testing.T, mode FlushMode) {
	src := memTempDir(t)
	rec := &crashRecorder{t: t, base: memTempDir(t), src: src}
	opts := testOpts(src)
	opts.Flush = mode
	s := mustOpen(t, opts)
	s.crashPoint = rec.at

	model := logModel{logs: map[uint64]*raft.Log{}}
	var durable uint64
	var durableEnd int64
	endOf := func(i uint64) int64 {
		p, err := s.RecordPos(i)
		if err != nil {
			t.Fatal(err)
		}
		l := model.logs[i]
		return p + recordLen(len(l.Data), len(l.Extensions))
	}
	appendOp := func(from, to, term uint64, batch int) {
		for i := from; i <= to; i += uint64(batch) {
			logs := mkLogs(i, min(i+uint64(batch)-1, to), term, varied)
			after := model.clone()
			after.append(logs)
			rec.setOp(model, after, durable, durableEnd, false, true)
			if err := s.StoreLogs(logs); err != nil {
				t.Fatal(err)
			}
			model = after
			if mode == FlushSync {
				durable = model.last
				durableEnd = endOf(durable)
			}
		}
	}
	truncOp := func(from uint64) {
		after := model.clone()
		after.truncate(from)
		newDurable := min(durable, from-1)
		newEnd := durableEnd
		if newDurable != durable {
			newEnd = endOf(newDurable)
		}
		rec.setOp(model, after, newDurable, newEnd, false, false)
		if err := s.DeleteRange(from, model.last); err != nil {
			t.Fatal(err)
		}
		model, durable, durableEnd = after, newDurable, newEnd
	}

	appendOp(1, 120, 1, 17)
	truncOp(100)
	appendOp(100, 180, 2, 19)
	truncOp(151)
	appendOp(151, 260, 3, 23)

	// Retention: the first segments hold indexes below 60.
	after := model.clone()
	rec.setOp(model, after, durable, durableEnd, false, false)
	n, err := s.DeleteExpired(time.Now().Add(100*365*24*time.Hour), 60, false)
	if err != nil || n == 0 {
		t.Fatalf("DeleteExpired = %d, %v", n, err)
	}
	first, _ := s.FirstIndex()
	for i := model.first; i < first; i++ {
		delete(model.logs, i)
	}
	model.first = first
	after = model.clone()
	rec.mu.Lock()
	for i := range rec.images {
		if rec.images[i].point == "retention-after-checkpoint" {
			rec.images[i].after = after
			rec.images[i].headMoves, rec.images[i].maxFirst = true, after.first
		}
	}
	rec.mu.Unlock()

	// Reset: intent, then the wipe, then appends at the reset position.
	resetPos := (s.WriteEnd()/testSeg+3)*testSeg + 512
	empty := logModel{logs: map[uint64]*raft.Log{}, resetPos: resetPos}
	rec.setOp(model, empty, 0, 0, true, false)
	if err := s.SetResetIntent(5000, 9, resetPos); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(model.first, model.last); err != nil {
		t.Fatal(err)
	}
	model, durable, durableEnd = empty, 0, resetPos
	appendOp(5001, 5060, 9, 21)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	points := map[string]int{}
	for _, img := range rec.images {
		points[img.point]++
	}
	for _, p := range []string{"append-before-write", "append-after-write", "append-after-sync", "seal-before-sidecar",
		"truncate-after-checkpoint", "truncate-after-zero", "truncate-after-unlink", "retention-after-checkpoint",
		"reset-intent-written", "reset-after-delete"} {
		if points[p] == 0 && !(p == "append-after-sync" && mode == FlushAsync) {
			t.Errorf("crash point %s never reached", p)
		}
	}
	t.Logf("%d crash images: %v", len(rec.images), points)

	for i, img := range rec.images {
		variants := []string{"as-is", "torn-checkpoint-slot"}
		if img.appendOp {
			variants = append(variants, "torn-tail-zeroed", "torn-tail-garbled")
		}
		if img.prevDir != "" {
			variants = append(variants, "torn-zeroing")
		}
		for _, variant := range variants {
			dir := filepath.Join(memTempDir(t), "v")
			copyDir(t, img.dir, dir)
			damage(t, dir, variant, img, int64(i))
			verifyRecovered(t, fmt.Sprintf("image %d (%s, %s)", i, img.point, variant), dir, img)
		}
	}
}

// damage applies a crash variant to an image:
//   - torn-tail-*: pages past the durable end (in-flight appends) are lost
//     (zeroed) or torn (bytes garbled);
//   - torn-zeroing: a truncation's zeroing reached disk only for some pages
//     (the others keep their old bytes, taken from the image before it);
//   - torn-checkpoint-slot: the slot the next checkpoint write would
//     overwrite is garbage.
func damage(t *testing.T, dir, variant string, img crashImage, seed int64) {
	ck := readCheckpoint(t, dir)
	r := rand.New(rand.NewSource(seed))
	const page = 4096
	switch variant {
	case "torn-tail-zeroed", "torn-tail-garbled":
		from := max(img.durableEnd, ck.FlushedPos)
		for _, name := range segFiles(t, dir) {
			start, _ := parseSegmentName(name)
			if start+testSeg <= from {
				continue
			}
			if _, err := os.Stat(filepath.Join(dir, "commitlog", name+sidecarSuffix)); err == nil {
				continue // the sealer fdatasynced this segment before writing its sidecar
			}
			p := filepath.Join(dir, "commitlog", name)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			lo := max(from-start, 0)
			for k := 0; k < 6; k++ {
				off := lo + r.Int63n(int64(len(b))-lo)
				if variant == "torn-tail-zeroed" {
					pg := max(off&^(page-1), lo)
					clear(b[pg:min(pg+page, int64(len(b)))])
				} else {
					b[off] ^= byte(1 + r.Intn(255))
				}
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	case "torn-zeroing":
		for _, name := range segFiles(t, dir) {
			p := filepath.Join(dir, "commitlog", name)
			old, err := os.ReadFile(filepath.Join(img.prevDir, "commitlog", name))
			if err != nil {
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for pg := 0; pg+page <= len(b); pg += page {
				if r.Intn(2) == 0 {
					copy(b[pg:pg+page], old[pg:pg+page])
				}
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	case "torn-checkpoint-slot":
		// The slot with the older seq is the one the next checkpoint write
		// would overwrite; tear it.
		p := filepath.Join(dir, "checkpoint")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		slot := int64((ck.Seq + 1) % 2)
		if int64(len(b)) >= (slot+1)*checkpointSlotSize {
			for k := slot * checkpointSlotSize; k < slot*checkpointSlotSize+64; k++ {
				b[k] ^= 0x5a
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func readCheckpoint(t *testing.T, dir string) checkpoint {
	cf, _, err := openCheckpointFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	defer cf.close()
	ck, err := cf.load()
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

// verifyRecovered opens an image and checks the recovered log against the
// models of the interrupted operation.
func verifyRecovered(t *testing.T, name, dir string, img crashImage) {
	t.Helper()
	s, err := Open(testOpts(dir))
	if err != nil {
		t.Fatalf("%s: Open: %v", name, err)
	}
	defer s.Close()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	matches := func(m logModel) bool {
		if first == 0 {
			return true
		}
		if last > m.last || first < m.first || (first != m.first && !(img.headMoves && first <= img.maxFirst)) {
			return false
		}
		for i := first; i <= last; i++ {
			var got raft.Log
			if err := s.GetLog(i, &got); err != nil {
				t.Logf("%s: GetLog(%d): %v", name, i, err)
				return false
			}
			want := m.logs[i]
			if want == nil || got.Term != want.Term || !bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Extensions, want.Extensions) {
				t.Logf("%s: index %d differs", name, i)
				return false
			}
		}
		return true
	}
	if !matches(img.before) && !matches(img.after) {
		t.Fatalf("%s: recovered [%d,%d] is not a prefix of the log before [%d,%d] or after [%d,%d]",
			name, first, last, img.before.first, img.before.last, img.after.first, img.after.last)
	}
	if img.durable > 0 && (first == 0 || last < img.durable) {
		t.Fatalf("%s: lost acked records: recovered [%d,%d], acked through %d", name, first, last, img.durable)
	}
	if first == 0 && !img.allowEmpty && img.durable > 0 {
		t.Fatalf("%s: recovered an empty log", name)
	}
	// The store is usable: append the next index and read it back.
	next := last + 1
	if first == 0 {
		next = 0
		if img.allowEmpty && s.WriteEnd() == img.after.resetPos {
			next = 5001
		}
	}
	if next != 0 {
		l := mkLog(next, 100, 300)
		if err := s.StoreLogs([]*raft.Log{l}); err != nil {
			t.Fatalf("%s: append after recovery: %v", name, err)
		}
		checkLog(t, s, l)
	}
}

// TestRecoveryRefusesCorruptFsyncedData flips a byte inside a record below
// the checkpoint's flushed position: Open must refuse, not silently drop it.
func TestRecoveryRefusesCorruptFsyncedData(t *testing.T) {
	for _, where := range []string{"payload", "header", "missing-segment", "sealed-segment"} {
		t.Run(where, func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, testOpts(dir))
			storeAll(t, s, mkLogs(1, 200, 1, varied), 10)
			var target int64
			switch where {
			case "payload":
				p, _ := s.RecordPos(190)
				target = p + HeaderSize + 1
			case "header":
				p, _ := s.RecordPos(198)
				target = p + 10
			case "sealed-segment":
				p, _ := s.RecordPos(20)
				target = p + 3
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// Make the store look crashed so the tail is scanned.
			if err := os.WriteFile(filepath.Join(dir, "abort"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			segs := segFiles(t, dir)
			sort.Strings(segs)
			if where == "missing-segment" {
				os.Remove(filepath.Join(dir, "commitlog", segs[len(segs)-2]))
				os.Remove(filepath.Join(dir, "commitlog", segs[len(segs)-2]+sidecarSuffix))
			} else {
				if where == "sealed-segment" {
					// Without its sidecar the sealed segment is rescanned.
					os.Remove(filepath.Join(dir, "commitlog", segmentName(target-target%testSeg)+sidecarSuffix))
				}
				p := filepath.Join(dir, "commitlog", segmentName(target-target%testSeg))
				b, _ := os.ReadFile(p)
				b[target%testSeg] ^= 0xff
				os.WriteFile(p, b, 0o644)
			}
			_, err := Open(testOpts(dir))
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open after corrupting fsynced data = %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestCorruptSealedRecordDetectedOnRead: sealed segments with a valid
// sidecar are not rescanned at Open (that is what the sidecar is for), so
// damage inside them surfaces as ErrCorrupt from GetLog, never as wrong data.
func TestCorruptSealedRecordDetectedOnRead(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOpts(dir))
	storeAll(t, s, mkLogs(1, 200, 1, varied), 10)
	p, _ := s.RecordPos(50)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close seals what was queued, so the sidecar exists now.
	if _, err := os.Stat(filepath.Join(dir, "commitlog", segmentName(p-p%testSeg)+sidecarSuffix)); err != nil {
		t.Fatalf("no sidecar after Close: %v", err)
	}
	path := filepath.Join(dir, "commitlog", segmentName(p-p%testSeg))
	b, _ := os.ReadFile(path)
	b[p%testSeg+HeaderSize+2] ^= 1
	os.WriteFile(path, b, 0o644)
	s = mustOpen(t, testOpts(dir))
	defer s.Close()
	var l raft.Log
	if err := s.GetLog(50, &l); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("GetLog of a corrupted record = %v, want ErrCorrupt", err)
	}
	checkLog(t, s, mkLog(51, 1, varied(51)))
}

// TestRecoveryDropsTornTail writes records past the flushed position by
// hand (as a crash in ASYNC mode leaves them) and checks they are dropped and
// zeroed.
func TestRecoveryDropsTornTail(t *testing.T) {
	dir := t.TempDir()
	opts := testOpts(dir)
	s := mustOpen(t, opts)
	storeAll(t, s, mkLogs(1, 30, 1, fixed(1000)), 10)
	end := s.WriteEnd()
	s.Close()
	os.WriteFile(filepath.Join(dir, "abort"), nil, 0o644)
	p := filepath.Join(dir, "commitlog", segmentName(end-end%testSeg))
	b, _ := os.ReadFile(p)
	// A valid-looking header for index 31 with a wrong payload CRC, then junk.
	l := mkLog(31, 1, 100)
	encodeHeader(b[end%testSeg:], l, end)
	copy(b[end%testSeg+HeaderSize:], bytes.Repeat([]byte{7}, 100))
	b[end%testSeg+4000] = 9
	os.WriteFile(p, b, 0o644)

	s = mustOpen(t, opts)
	defer s.Close()
	if s.WasCleanShutdown() {
		t.Fatal("abort file ignored")
	}
	checkRange(t, s, 1, 30)
	b, _ = os.ReadFile(p)
	if !bytes.Equal(b[end%testSeg:], make([]byte, testSeg-end%testSeg)) {
		t.Fatal("torn tail not zeroed")
	}
}
