package commitlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

func TestEmptyStore(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOpts(dir))
	checkRange(t, s, 0, 0)
	var l raft.Log
	if err := s.GetLog(1, &l); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog on empty = %v", err)
	}
	if err := s.DeleteRange(1, 10); err != nil {
		t.Fatal(err)
	}
	if !s.WasCleanShutdown() {
		t.Fatal("fresh store reported unclean")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, testOpts(dir))
	defer s.Close()
	checkRange(t, s, 0, 0)
	if !s.WasCleanShutdown() {
		t.Fatal("closed store reported unclean")
	}
}

func TestAppendGetReopen(t *testing.T) {
	for _, mode := range []FlushMode{FlushSync, FlushAsync} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			opts := testOpts(dir)
			opts.Flush = mode
			s := mustOpen(t, opts)
			logs := mkLogs(1, 400, 1, varied)
			storeAll(t, s, logs, 7)
			checkRange(t, s, 1, 400)
			for _, l := range logs {
				checkLog(t, s, l)
			}
			if n := len(segFiles(t, dir)); n < 10 {
				t.Fatalf("expected many 64 KiB segments, got %d", n)
			}
			end := s.WriteEnd()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, opts)
			defer s.Close()
			checkRange(t, s, 1, 400)
			if s.WriteEnd() != end {
				t.Fatalf("WriteEnd after reopen %d, want %d", s.WriteEnd(), end)
			}
			for _, l := range logs {
				checkLog(t, s, l)
			}
			more := mkLogs(401, 450, 2, varied)
			storeAll(t, s, more, 5)
			for _, l := range append(logs, more...) {
				checkLog(t, s, l)
			}
		})
	}
}

func TestRecordLayoutAndBlankFiller(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOpts(dir))
	defer s.Close()
	// 3 records of 20000 B data fill 60192 of 65536; the 4th does not fit.
	storeAll(t, s, mkLogs(1, 5, 3, fixed(20000)), 5)
	recLen := recordLen(20000, 0)
	for i := uint64(1); i <= 3; i++ {
		pos, err := s.RecordPos(i)
		if err != nil || pos != int64(i-1)*recLen {
			t.Fatalf("RecordPos(%d) = %d, %v; want %d", i, pos, err, int64(i-1)*recLen)
		}
	}
	if pos, _ := s.RecordPos(4); pos != testSeg {
		t.Fatalf("record 4 at %d, want next segment start %d", pos, testSeg)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "commitlog", segmentName(0)))
	if err != nil {
		t.Fatal(err)
	}
	magic, n := readMagic(raw[3*recLen:])
	if magic != blankMagic || int64(n) != testSeg-3*recLen {
		t.Fatalf("BLANK at %d: magic %#x len %d", 3*recLen, magic, n)
	}
	h, err := decodeHeader(raw[recLen:])
	if err != nil || h.Index != 2 || h.Term != 3 || h.Pos != recLen || h.DataLen != 20000 {
		t.Fatalf("header 2 = %+v, %v", h, err)
	}
	if !bytes.Equal(raw[recLen+HeaderSize:recLen+HeaderSize+20000], payload(2, 3, 20000)) {
		t.Fatal("payload bytes on disk differ")
	}
	// ReadAt and Lease see the same bytes.
	buf := make([]byte, 100)
	if _, err := s.ReadAt(buf, recLen+HeaderSize); err != nil || !bytes.Equal(buf, payload(2, 3, 20000)[:100]) {
		t.Fatalf("ReadAt: %v", err)
	}
	lease, err := s.Lease(recLen+HeaderSize, 100)
	if err != nil || !bytes.Equal(lease.Bytes(), buf) {
		t.Fatalf("Lease: %v", err)
	}
	lease.Release()
	lease.Release()
	if _, err := s.ReadAt(buf, 3*recLen); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("ReadAt over BLANK = %v, want ErrOutOfRange", err)
	}
	if _, err := s.Lease(testSeg-50, 100); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("Lease across segments = %v", err)
	}
}

// TestBatchSpanningSeveralSegments: one StoreLogs whose records need two
// BLANK fillers and two segment switches.
func TestBatchSpanningSeveralSegments(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOpts(dir))
	storeAll(t, s, mkLogs(1, 1, 1, fixed(100)), 1)
	logs := mkLogs(2, 5, 1, fixed(40000))
	storeAll(t, s, logs, 4)
	r := recordLen(40000, 0)
	for i, want := range []int64{recordLen(100, 0), testSeg, 2 * testSeg, 3 * testSeg} {
		if p, _ := s.RecordPos(uint64(i + 2)); p != want {
			t.Fatalf("index %d at %d, want %d", i+2, p, want)
		}
	}
	for k := int64(0); k < 3; k++ {
		end := r
		if k == 0 {
			end = recordLen(100, 0) + r
		}
		buf := make([]byte, 8)
		f, _ := os.Open(filepath.Join(dir, "commitlog", segmentName(k*testSeg)))
		f.ReadAt(buf, end)
		f.Close()
		if magic, n := readMagic(buf); magic != blankMagic || int64(n) != testSeg-end {
			t.Fatalf("segment %d: BLANK at %d = %#x/%d", k, end, magic, n)
		}
	}
	s.Close()
	s = mustOpen(t, testOpts(dir))
	defer s.Close()
	checkRange(t, s, 1, 5)
	for _, l := range logs {
		checkLog(t, s, l)
	}
}

func TestHookPatchesVisibleInGetLogAndDisk(t *testing.T) {
	dir := t.TempDir()
	opts := testOpts(dir)
	var seen []int64
	opts.Hook = func(l *raft.Log, pos int64) error {
		if len(l.Data) >= 8 {
			binary.BigEndian.PutUint64(l.Data, uint64(pos+HeaderSize))
		}
		seen = append(seen, pos)
		return nil
	}
	s := mustOpen(t, opts)
	logs := mkLogs(1, 100, 1, func(i uint64) int { return 8 + varied(i) })
	storeAll(t, s, logs, 9)
	for i, l := range logs {
		pos, _ := s.RecordPos(l.Index)
		if seen[i] != pos {
			t.Fatalf("hook saw pos %d for index %d, RecordPos %d", seen[i], l.Index, pos)
		}
		var got raft.Log
		if err := s.GetLog(l.Index, &got); err != nil {
			t.Fatal(err)
		}
		if v := int64(binary.BigEndian.Uint64(got.Data)); v != pos+HeaderSize {
			t.Fatalf("patched offset %d, want %d", v, pos+HeaderSize)
		}
		disk := make([]byte, 8)
		if _, err := s.ReadAt(disk, pos+HeaderSize); err != nil || int64(binary.BigEndian.Uint64(disk)) != pos+HeaderSize {
			t.Fatalf("disk bytes at %d not patched: %v", pos, err)
		}
	}
	s.Close()

	// A failing hook fails the whole batch and leaves nothing behind.
	fail := errors.New("diverged")
	opts.Hook = func(l *raft.Log, pos int64) error {
		if l.Index == 103 {
			return fail
		}
		return nil
	}
	s = mustOpen(t, opts)
	defer s.Close()
	end := s.WriteEnd()
	if err := s.StoreLogs(mkLogs(101, 105, 1, fixed(100))); !errors.Is(err, fail) {
		t.Fatalf("StoreLogs with failing hook = %v", err)
	}
	checkRange(t, s, 1, 100)
	if s.WriteEnd() != end {
		t.Fatal("write end moved after a failed batch")
	}
	storeAll(t, s, mkLogs(101, 102, 1, fixed(100)), 2)
	checkRange(t, s, 1, 102)
}

func TestStoreLogsValidation(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOpts(dir))
	defer s.Close()
	storeAll(t, s, mkLogs(5, 10, 2, fixed(10)), 10)
	checkRange(t, s, 5, 10)
	cases := map[string][]*raft.Log{
		"gap":        {mkLog(12, 2, 1)},
		"overlap":    {mkLog(10, 2, 1)},
		"term down":  {mkLog(11, 1, 1)},
		"not consec": {mkLog(11, 2, 1), mkLog(13, 2, 1)},
		"too large":  {mkLog(11, 2, testSeg)},
	}
	for name, logs := range cases {
		if err := s.StoreLogs(logs); err == nil {
			t.Fatalf("%s: StoreLogs accepted", name)
		}
	}
	if err := s.StoreLogs([]*raft.Log{mkLog(11, 2, testSeg-HeaderSize)}); err != nil {
		t.Fatalf("a record exactly one segment long: %v", err)
	}
	checkRange(t, s, 5, 11)
	checkLog(t, s, mkLog(11, 2, testSeg-HeaderSize))
}

func TestSuffixTruncation(t *testing.T) {
	dir := t.TempDir()
	opts := testOpts(dir)
	s := mustOpen(t, opts)
	logs := mkLogs(1, 300, 1, varied)
	storeAll(t, s, logs, 10)
	for _, cut := range []uint64{290, 200, 57} {
		pos, _ := s.RecordPos(cut)
		prevEnd := func() int64 {
			p, _ := s.RecordPos(cut - 1)
			l := logs[cut-2]
			return p + recordLen(len(l.Data), len(l.Extensions))
		}()
		if err := s.DeleteRange(cut, 1000); err != nil {
			t.Fatal(err)
		}
		checkRange(t, s, 1, cut-1)
		if s.WriteEnd() != prevEnd {
			t.Fatalf("WriteEnd %d after truncating at %d (pos %d), want end of previous record %d", s.WriteEnd(), cut, pos, prevEnd)
		}
		// The removed bytes are zero on disk.
		raw, _ := os.ReadFile(filepath.Join(dir, "commitlog", segmentName(prevEnd-prevEnd%testSeg)))
		if !bytes.Equal(raw[prevEnd%testSeg:], make([]byte, testSeg-prevEnd%testSeg)) {
			t.Fatalf("bytes after %d not zeroed", prevEnd)
		}
		if segs := segFiles(t, dir); len(segs) != int(prevEnd/testSeg)+1 {
			t.Fatalf("segments after truncation: %v", segs)
		}
	}
	// Re-append with a different term: new records land at the old positions' rule.
	newer := mkLogs(57, 120, 2, varied)
	storeAll(t, s, newer, 8)
	for _, l := range append(logs[:56], newer...) {
		checkLog(t, s, l)
	}
	s.Close()
	s = mustOpen(t, opts)
	defer s.Close()
	checkRange(t, s, 1, 120)
	for _, l := range append(logs[:56], newer...) {
		checkLog(t, s, l)
	}
}

func TestWipeWithoutIntentKeepsPosition(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOpts(dir))
	defer s.Close()
	storeAll(t, s, mkLogs(1, 50, 1, varied), 10)
	if err := s.DeleteRange(1, 50); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 0, 0)
	if s.WriteEnd() != 0 {
		t.Fatalf("WriteEnd %d after wipe", s.WriteEnd())
	}
	storeAll(t, s, mkLogs(1, 10, 2, varied), 10)
	if p, _ := s.RecordPos(1); p != 0 {
		t.Fatalf("first record at %d", p)
	}
	checkRange(t, s, 1, 10)
}

func TestPrefixDeleteOnlyRecordsPermission(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOpts(dir))
	defer s.Close()
	storeAll(t, s, mkLogs(1, 100, 1, varied), 10)
	if err := s.DeleteRange(1, 60); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 1, 100)
	if err := s.DeleteRange(20, 30); err == nil {
		t.Fatal("a middle DeleteRange was accepted")
	}
}

func TestResetIntent(t *testing.T) {
	dir := t.TempDir()
	opts := testOpts(dir)
	s := mustOpen(t, opts)
	storeAll(t, s, mkLogs(1, 50, 1, varied), 10)
	resetPos := int64(5*testSeg + 4096)
	if err := s.SetResetIntent(1000, 4, resetPos); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 50); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 0, 0)
	if s.WriteEnd() != resetPos {
		t.Fatalf("WriteEnd %d, want %d", s.WriteEnd(), resetPos)
	}
	if err := s.StoreLogs([]*raft.Log{mkLog(1002, 5, 10)}); err == nil {
		t.Fatal("accepted an index other than the reset index + 1")
	}
	logs := mkLogs(1001, 1100, 5, varied)
	storeAll(t, s, logs, 10)
	if p, _ := s.RecordPos(1001); p != resetPos {
		t.Fatalf("1001 at %d, want %d", p, resetPos)
	}
	if s.MinPos() != resetPos {
		t.Fatalf("MinPos %d", s.MinPos())
	}
	s.Close()
	s = mustOpen(t, opts)
	defer s.Close()
	checkRange(t, s, 1001, 1100)
	for _, l := range logs {
		checkLog(t, s, l)
	}
	if segs := segFiles(t, dir); segs[0] != segmentName(5*testSeg) {
		t.Fatalf("segments %v", segs)
	}
}

func TestResetIntentIntoEmptyStore(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOpts(dir))
	defer s.Close()
	// The reset position leaves only 64 bytes in its segment: the first record
	// needs a BLANK and goes to the next segment.
	resetPos := int64(testSeg - 64)
	if err := s.SetResetIntent(7, 1, resetPos); err != nil {
		t.Fatal(err)
	}
	logs := mkLogs(8, 20, 1, fixed(100))
	storeAll(t, s, logs, 3)
	if p, _ := s.RecordPos(8); p != testSeg {
		t.Fatalf("8 at %d", p)
	}
	checkRange(t, s, 8, 20)
	for _, l := range logs {
		checkLog(t, s, l)
	}
}

func TestLockRefusesSecondOpen(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOpts(dir))
	if _, err := Open(testOpts(dir)); err == nil {
		t.Fatal("second Open of the same dir succeeded")
	}
	s.Close()
	s2 := mustOpen(t, testOpts(dir))
	s2.Close()
}

func TestSegmentSizeImmutable(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOpts(dir))
	s.Close()
	opts := testOpts(dir)
	opts.SegmentSize = 2 * testSeg
	if _, err := Open(opts); err == nil {
		t.Fatal("Open with another segment size succeeded")
	}
}

func TestParseFlushDiskType(t *testing.T) {
	if m, err := ParseFlushDiskType("SYNC_FLUSH"); err != nil || m != FlushSync {
		t.Fatal(m, err)
	}
	if m, err := ParseFlushDiskType("ASYNC_FLUSH"); err != nil || m != FlushAsync {
		t.Fatal(m, err)
	}
	if _, err := ParseFlushDiskType("sync"); err == nil {
		t.Fatal("accepted junk")
	}
}

func TestAppliedDispatchedPersisted(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOpts(dir))
	storeAll(t, s, mkLogs(1, 10, 1, fixed(10)), 10)
	s.SetApplied(9)
	s.SetDispatched(7)
	s.Close()
	s = mustOpen(t, testOpts(dir))
	defer s.Close()
	if s.Applied() != 9 || s.Dispatched() != 7 {
		t.Fatalf("applied %d dispatched %d", s.Applied(), s.Dispatched())
	}
	if err := s.DeleteRange(9, 10); !errors.Is(err, ErrTruncateBelowApplied) {
		t.Fatalf("truncating applied entries = %v", err)
	}
}
