package consumequeue

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

func openTest(t testing.TB, dir string, perFile int) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir, EntriesPerFile: perFile, FlushInterval: -1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// entryAt is a deterministic entry for logical offset i of a queue.
func entryAt(i int64) Entry {
	return Entry{PhysOffset: 1000 + i*100, Size: 100, TagsCode: i * 7}
}

func putRange(t testing.TB, s *Store, topic string, q int32, from, to int64) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.Put(topic, q, i, entryAt(i)); err != nil {
			t.Fatalf("Put(%s,%d,%d): %v", topic, q, i, err)
		}
	}
}

func checkRange(t testing.TB, s *Store, topic string, q int32, from, to int64) {
	t.Helper()
	if got := s.MinOffset(topic, q); got != from {
		t.Fatalf("MinOffset = %d, want %d", got, from)
	}
	if got := s.MaxOffset(topic, q); got != to {
		t.Fatalf("MaxOffset = %d, want %d", got, to)
	}
	for i := from; i < to; i++ {
		e, err := s.Get(topic, q, i)
		if err != nil || e != entryAt(i) {
			t.Fatalf("Get(%d) = %+v, %v; want %+v", i, e, err, entryAt(i))
		}
	}
	got, err := s.Read(topic, q, from, int(to-from)+5, nil)
	if err != nil || int64(len(got)) != to-from {
		t.Fatalf("Read(%d) = %d entries, %v; want %d", from, len(got), err, to-from)
	}
	for i, e := range got {
		if e != entryAt(from+int64(i)) {
			t.Fatalf("Read[%d] = %+v", i, e)
		}
	}
}

func TestPutGetReadAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, 10)
	putRange(t, s, "TopicA", 0, 0, 35)
	checkRange(t, s, "TopicA", 0, 0, 35)

	// Read windows that straddle file boundaries.
	for _, from := range []int64{0, 5, 9, 10, 19, 28, 34, 35} {
		got, err := s.Read("TopicA", 0, from, 12, nil)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		want := min(12, 35-from)
		if int64(len(got)) != want {
			t.Fatalf("Read(%d) len %d want %d", from, len(got), want)
		}
		for i, e := range got {
			if e != entryAt(from+int64(i)) {
				t.Fatalf("Read(%d)[%d] = %+v", from, i, e)
			}
		}
	}
	if _, err := s.Get("TopicA", 0, 35); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Get(max) err = %v", err)
	}
	if _, err := s.Get("TopicA", 0, -1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Get(-1) err = %v", err)
	}
	if _, err := s.Read("TopicA", 0, 36, 1, nil); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read(max+1) err = %v", err)
	}
	if got, err := s.Read("Nope", 0, 0, 10, nil); err != nil || len(got) != 0 {
		t.Fatalf("Read(unknown, 0) = %v, %v", got, err)
	}
	if got, err := s.Read("TopicA", 0, 0, 1<<40, nil); err != nil || len(got) != 35 {
		t.Fatalf("Read(huge max) = %d, %v", len(got), err)
	}
	if _, err := s.Get("Nope", 0, 0); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Get(unknown) err = %v", err)
	}
	if s.MaxOffset("Nope", 3) != 0 || s.MinOffset("Nope", 3) != 0 {
		t.Fatal("unknown queue offsets not 0")
	}
	names := fileNames(t, filepath.Join(dir, "TopicA", "0"))
	want := []string{"00000000000000000000", "00000000000000000200", "00000000000000000400", "00000000000000000600"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("files %v want %v", names, want)
	}
	for _, n := range names {
		st, err := os.Stat(filepath.Join(dir, "TopicA", "0", n))
		if err != nil || st.Size() != 200 {
			t.Fatalf("file %s: %v size %d", n, err, st.Size())
		}
	}
	if got := s.MaxPhysOffset(); got != entryAt(34).end() {
		t.Fatalf("MaxPhysOffset %d", got)
	}
}

func TestOnDiskFormat(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, 4)
	e := Entry{PhysOffset: 0x0102030405060708, Size: 0x0a0b0c0d, TagsCode: -2}
	if err := s.Put("T", 1, 0, e); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "T", "1", "00000000000000000000"))
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x0b, 0x0c, 0x0d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}
	if !bytes.Equal(b[:20], want) || !allZero(b[20:]) || len(b) != 80 {
		t.Fatalf("file bytes % x", b)
	}
}

func TestNonZeroStartAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, 10)
	putRange(t, s, "T", 2, 27, 45)
	checkRange(t, s, "T", 2, 27, 45)
	if _, err := s.Get("T", 2, 26); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Get below min: %v", err)
	}
	if got := fileNames(t, filepath.Join(dir, "T", "2")); fmt.Sprint(got) != "[00000000000000000400 00000000000000000600 00000000000000000800]" {
		t.Fatalf("files %v", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dir, 10)
	checkRange(t, s2, "T", 2, 27, 45)
	putRange(t, s2, "T", 2, 45, 52)
	checkRange(t, s2, "T", 2, 27, 52)
	if q := s2.Queues(); len(q) != 1 || q[0] != (QueueID{"T", 2}) {
		t.Fatalf("Queues %v", q)
	}
}

func TestPutRules(t *testing.T) {
	s := openTest(t, t.TempDir(), 10)
	putRange(t, s, "T", 0, 0, 15)
	// Idempotent replay of stored entries.
	for i := int64(0); i < 15; i++ {
		if err := s.Put("T", 0, i, entryAt(i)); err != nil {
			t.Fatalf("replay %d: %v", i, err)
		}
	}
	// Different content below max.
	if err := s.Put("T", 0, 3, entryAt(4)); !errors.Is(err, ErrConflict) {
		t.Fatalf("conflicting replay: %v", err)
	}
	// Gap.
	if err := s.Put("T", 0, 16, entryAt(16)); !errors.Is(err, ErrConflict) {
		t.Fatalf("gap: %v", err)
	}
	// Backwards in the commitlog.
	if err := s.Put("T", 0, 15, entryAt(2)); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("backwards: %v", err)
	}
	for _, e := range []Entry{{PhysOffset: -1, Size: 10}, {PhysOffset: 1 << 40, Size: 0}, blankEntry} {
		if err := s.Put("T", 0, 15, e); !errors.Is(err, ErrInvalidEntry) {
			t.Fatalf("Put(%+v): %v", e, err)
		}
	}
	for _, topic := range []string{"", "a/b", "..", "a.b", "x\x00", string(make([]byte, 256))} {
		if err := s.Put(topic, 0, 0, entryAt(0)); !errors.Is(err, ErrInvalidName) {
			t.Fatalf("Put(topic %q): %v", topic, err)
		}
	}
	if err := s.Put("T", -1, 0, entryAt(0)); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("negative queue: %v", err)
	}
	if err := s.Put("%RETRY%g|x_y-1", 0, -1, entryAt(0)); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("negative offset: %v", err)
	}
	checkRange(t, s, "T", 0, 0, 15)
}

func TestTruncateFrom(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, 10)
	putRange(t, s, "A", 0, 0, 25)
	putRange(t, s, "B", 0, 5, 8)
	// Drop entries 18.. of A (PhysOffset >= entryAt(18)) and everything of B at 7 and above.
	cut := entryAt(18).PhysOffset - 1
	if err := s.TruncateFrom(cut); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, "A", 0, 0, 18)
	checkRange(t, s, "B", 0, 5, 8) // B's entries end below entryAt(8)
	if err := s.TruncateFrom(entryAt(6).PhysOffset); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, "A", 0, 0, 6)
	checkRange(t, s, "B", 0, 5, 6)
	if got := fileNames(t, filepath.Join(dir, "A", "0")); len(got) != 1 {
		t.Fatalf("A files after truncate %v", got)
	}
	if got := s.MaxPhysOffset(); got != entryAt(5).end() {
		t.Fatalf("MaxPhysOffset %d", got)
	}
	// Appending after a truncate reuses the offsets.
	putRange(t, s, "A", 0, 6, 12)
	s.Close()
	s2 := openTest(t, dir, 10)
	checkRange(t, s2, "A", 0, 0, 12)
	checkRange(t, s2, "B", 0, 5, 6)
	// Truncating everything leaves an empty queue at the same offset.
	if err := s2.TruncateFrom(0); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s2, "B", 0, 5, 5)
	checkRange(t, s2, "A", 0, 0, 0)
	s2.Close()
	s3 := openTest(t, dir, 10)
	checkRange(t, s3, "B", 0, 5, 5)
	checkRange(t, s3, "A", 0, 0, 0)
	putRange(t, s3, "B", 0, 5, 7)
	checkRange(t, s3, "B", 0, 5, 7)
}

func TestDeleteBelow(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, 10)
	putRange(t, s, "A", 0, 0, 35)
	putRange(t, s, "B", 1, 0, 3)
	if err := s.DeleteBelow(entryAt(23).PhysOffset); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, "A", 0, 23, 35)
	if got := fileNames(t, filepath.Join(dir, "A", "0")); fmt.Sprint(got) != "[00000000000000000400 00000000000000000600]" {
		t.Fatalf("files %v", got)
	}
	// B is wholly below: emptied, but its max is kept.
	checkRange(t, s, "B", 1, 3, 3)
	s.Close()
	s2 := openTest(t, dir, 10)
	checkRange(t, s2, "A", 0, 23, 35)
	checkRange(t, s2, "B", 1, 3, 3)
	putRange(t, s2, "B", 1, 3, 4)
	checkRange(t, s2, "B", 1, 3, 4)

	// Everything of A below, max at a file boundary.
	putRange(t, s2, "A", 0, 35, 40)
	if err := s2.DeleteBelow(entryAt(1000).PhysOffset); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s2, "A", 0, 40, 40)
	s2.Close()
	s3 := openTest(t, dir, 10)
	checkRange(t, s3, "A", 0, 40, 40)
	putRange(t, s3, "A", 0, 40, 42)
	checkRange(t, s3, "A", 0, 40, 42)
	if err := s3.DeleteBelow(entryAt(41).PhysOffset); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s3, "A", 0, 41, 42)
	if got := fileNames(t, filepath.Join(dir, "A", "0")); fmt.Sprint(got) != "[00000000000000000800]" {
		t.Fatalf("files %v", got)
	}
}

// TestRebuildIdentical: deleting the directory and replaying the retained
// log gives byte-identical files.
func TestRebuildIdentical(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	s := openTest(t, a, 10)
	putRange(t, s, "A", 0, 0, 37)
	putRange(t, s, "A", 1, 4, 9)
	if err := s.DeleteBelow(entryAt(13).PhysOffset); err != nil {
		t.Fatal(err)
	}
	s.Close()

	r := openTest(t, b, 10)
	// The replay covers only what the CommitLog retains.
	putRange(t, r, "A", 0, 13, 37)
	r.Close()
	// A/1 was emptied by retention; it has no retained entries to replay.
	os.RemoveAll(filepath.Join(a, "A", "1"))
	compareTrees(t, a, b)
}

func TestDeleteTopic(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, 10)
	putRange(t, s, "A", 0, 0, 5)
	putRange(t, s, "B", 0, 0, 5)
	if err := s.DeleteTopic("A"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "A")); !os.IsNotExist(err) {
		t.Fatalf("A dir still there: %v", err)
	}
	if s.MaxOffset("A", 0) != 0 {
		t.Fatal("A still has offsets")
	}
	checkRange(t, s, "B", 0, 0, 5)
	putRange(t, s, "A", 0, 7, 9) // recreated at any offset
	checkRange(t, s, "A", 0, 7, 9)
	if err := s.DeleteTopic("../x"); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("DeleteTopic(bad) %v", err)
	}
}

func TestSearchOffsetByTime(t *testing.T) {
	s := openTest(t, t.TempDir(), 10)
	// Offsets 3..12 with store times 100,100,200,200,200,300,400,400,500,600.
	times := []int64{100, 100, 200, 200, 200, 300, 400, 400, 500, 600}
	byPhys := map[int64]int64{}
	for i, ts := range times {
		off := int64(3 + i)
		if err := s.Put("T", 0, off, entryAt(off)); err != nil {
			t.Fatal(err)
		}
		byPhys[entryAt(off).PhysOffset] = ts
	}
	storeTime := func(e Entry) (int64, error) { return byPhys[e.PhysOffset], nil }
	cases := []struct {
		ts    int64
		upper bool
		want  int64
	}{
		{50, false, 3}, {50, true, 3}, // all newer: min
		{100, false, 3}, {100, true, 4},
		{150, false, 5}, {150, true, 4},
		{200, false, 5}, {200, true, 7},
		{400, false, 9}, {400, true, 10},
		{600, false, 12}, {600, true, 12},
		{700, false, 13}, {700, true, 12}, // all older: max (lower), last (upper)
	}
	for _, c := range cases {
		got, err := s.SearchOffsetByTime("T", 0, c.ts, c.upper, storeTime)
		if err != nil || got != c.want {
			t.Errorf("Search(%d, upper=%v) = %d, %v; want %d", c.ts, c.upper, got, err, c.want)
		}
	}
	boom := errors.New("boom")
	if _, err := s.SearchOffsetByTime("T", 0, 300, false, func(Entry) (int64, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("error not propagated: %v", err)
	}
	if got, err := s.SearchOffsetByTime("None", 0, 300, false, storeTime); err != nil || got != 0 {
		t.Fatalf("unknown queue: %d %v", got, err)
	}
}

// TestConcurrentPutRead runs one writer against many readers; run with -race.
func TestConcurrentPutRead(t *testing.T) {
	s := openTest(t, t.TempDir(), 64)
	const n = 5000
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 8)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []Entry
			next := int64(0)
			for {
				mx := s.MaxOffset("T", 0)
				if next < mx {
					var err error
					buf, err = s.Read("T", 0, next, 32, buf[:0])
					if err != nil {
						errs <- err
						return
					}
					for i, e := range buf {
						if e != entryAt(next+int64(i)) {
							errs <- fmt.Errorf("offset %d: %+v", next+int64(i), e)
							return
						}
					}
					next += int64(len(buf))
				}
				if next == n {
					return
				}
				select {
				case <-done:
					errs <- fmt.Errorf("reader stopped at %d", next)
					return
				default:
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if err := s.Flush(); err != nil {
				errs <- err
				return
			}
			if s.MaxOffset("T", 0) == n {
				return
			}
		}
	}()
	for i := int64(0); i < n; i++ {
		if err := s.Put("T", 0, i, entryAt(i)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(done)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestBackgroundFlushAndClose(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, EntriesPerFile: 10, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	putRange(t, s, "T", 0, 0, 25)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Put("T", 0, 25, entryAt(25)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	if _, err := s.Get("T", 0, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	s2 := openTest(t, dir, 10)
	checkRange(t, s2, "T", 0, 0, 25)
}

func fileNames(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range des {
		out = append(out, d.Name())
	}
	sort.Strings(out)
	return out
}

func compareTrees(t *testing.T, a, b string) {
	t.Helper()
	list := func(root string) map[string][]byte {
		m := map[string][]byte{}
		filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			if !info.IsDir() {
				rel, _ := filepath.Rel(root, p)
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				m[rel] = data
			}
			return nil
		})
		return m
	}
	ma, mb := list(a), list(b)
	if len(ma) != len(mb) {
		t.Fatalf("trees differ: %d files vs %d", len(ma), len(mb))
	}
	for k, v := range ma {
		if !bytes.Equal(v, mb[k]) {
			t.Fatalf("file %s differs", k)
		}
	}
}

// TestConcurrentRetention: readers keep reading while the writer appends and
// retention removes (unmaps) old files underneath them. A reader must get
// either the right entry or ErrOffsetOutOfRange, never garbage or a fault.
func TestConcurrentRetention(t *testing.T) {
	s := openTest(t, t.TempDir(), 16)
	const n = 3000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			var buf []Entry
			for i := int64(r); ; i += 7 {
				select {
				case <-stop:
					return
				default:
				}
				off := s.MinOffset("T", 0) + i%32
				var err error
				buf, err = s.Read("T", 0, off, 20, buf[:0])
				if err != nil && !errors.Is(err, ErrOffsetOutOfRange) {
					errs <- err
					return
				}
				for j, e := range buf {
					if e != entryAt(off+int64(j)) {
						errs <- fmt.Errorf("offset %d: %+v", off+int64(j), e)
						return
					}
				}
			}
		}(r)
	}
	for i := int64(0); i < n; i++ {
		if err := s.Put("T", 0, i, entryAt(i)); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			if err := s.DeleteBelow(entryAt(i - 40).PhysOffset); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkRange(t, s, "T", 0, n-1-40, n)
}

func TestReset(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, 10)
	putRange(t, s, "A", 0, 0, 25)
	putRange(t, s, "B", 1, 3, 5)
	if err := s.Reset(map[QueueID]int64{{"A", 0}: 40, {"C", 2}: 0, {"a/b", 0}: 1}); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("Reset with a bad name: %v", err)
	}
	checkRange(t, s, "A", 0, 0, 25) // unchanged
	if err := s.Reset(map[QueueID]int64{{"A", 0}: 40, {"C", 2}: 0}); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, "A", 0, 40, 40)
	checkRange(t, s, "C", 2, 0, 0)
	if s.MaxOffset("B", 1) != 0 {
		t.Fatal("B survived Reset")
	}
	if err := s.Put("A", 0, 39, entryAt(39)); err != nil { // below min: no-op
		t.Fatal(err)
	}
	putRange(t, s, "A", 0, 40, 43)
	s.Close()
	s2 := openTest(t, dir, 10)
	checkRange(t, s2, "A", 0, 40, 43)
	checkRange(t, s2, "C", 2, 0, 0)
	if q := s2.Queues(); len(q) != 2 {
		t.Fatalf("queues after reopen %v", q)
	}
}
