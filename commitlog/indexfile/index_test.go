package indexfile

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/raftmq/raftmq/message"
)

func openTest(t testing.TB, dir string, slots, maxIndex int) *Service {
	t.Helper()
	s, err := Open(Options{Dir: dir, SlotNum: slots, MaxIndexNum: maxIndex, FlushInterval: -1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

const t0 = int64(1_700_000_000_000) // a store time in ms

func mustPut(t testing.TB, s *Service, key string, phys, ts int64) {
	t.Helper()
	if err := s.Put(key, phys, ts); err != nil {
		t.Fatalf("Put(%s,%d): %v", key, phys, err)
	}
}

func query(t testing.TB, s *Service, key string, maxNum int, begin, end int64) []int64 {
	t.Helper()
	got, err := s.Query(key, maxNum, begin, end)
	if err != nil {
		t.Fatalf("Query(%s): %v", key, err)
	}
	return got
}

func eq(t testing.TB, what string, got []int64, want ...int64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func TestKeyHash(t *testing.T) {
	cases := map[string]int32{
		"":                   0,
		"TagA":               2598919,
		"hello":              99162322,
		"polygenelubricants": 0, // hashCode is Integer.MIN_VALUE
		"Aa":                 2112,
		"BB":                 2112,
	}
	for k, want := range cases {
		if got := keyHash(k); got != want {
			t.Errorf("keyHash(%q) = %d, want %d", k, got, want)
		}
	}
	// Negative hash codes are made positive.
	if h := message.JavaStringHashCode("TopicTest#KEY_negative_zz"); h < 0 && keyHash("TopicTest#KEY_negative_zz") != -h {
		t.Error("abs not applied")
	}
	// A supplementary character hashes as its two UTF-16 code units.
	want := int32(0xD83D)*31 + int32(0xDE00)
	if got := message.JavaStringHashCode("\U0001F600"); got != want {
		t.Errorf("surrogate hash %d want %d", got, want)
	}
}

func TestPutQuery(t *testing.T) {
	s := openTest(t, t.TempDir(), 7, 100)
	for i := int64(0); i < 30; i++ {
		mustPut(t, s, fmt.Sprintf("T#k%d", i%5), i*100, t0+i*1000)
	}
	eq(t, "k0", query(t, s, "T#k0", 64, 0, 1<<62), 2500, 2000, 1500, 1000, 500, 0)
	eq(t, "k3 max 2", query(t, s, "T#k3", 2, 0, 1<<62), 2800, 2300)
	eq(t, "absent", query(t, s, "T#nope", 64, 0, 1<<62))
	eq(t, "other topic", query(t, s, "U#k0", 64, 0, 1<<62))
	// Time range: messages i=10..20 have store times t0+10 s .. t0+20 s.
	eq(t, "k0 in range", query(t, s, "T#k0", 64, t0+10_000, t0+20_000), 2000, 1500, 1000)
	eq(t, "k0 empty range", query(t, s, "T#k0", 64, t0+11_000, t0+14_000))
	eq(t, "reversed range", query(t, s, "T#k0", 64, t0+20_000, t0+10_000))
	eq(t, "maxNum 0", query(t, s, "T#k0", 0, 0, 1<<62))
	if s.LastPhysOffset() != 2900 {
		t.Fatalf("LastPhysOffset %d", s.LastPhysOffset())
	}
}

// TestCollisions: one slot for everything, and keys with equal hashes.
func TestCollisions(t *testing.T) {
	s := openTest(t, t.TempDir(), 1, 100)
	mustPut(t, s, "Aa", 10, t0)
	mustPut(t, s, "x", 20, t0)
	mustPut(t, s, "BB", 30, t0)
	mustPut(t, s, "y", 40, t0)
	eq(t, "x", query(t, s, "x", 10, 0, 1<<62), 20)
	eq(t, "y", query(t, s, "y", 10, 0, 1<<62), 40)
	// "Aa" and "BB" share a Java hash: both come back; the caller re-checks.
	eq(t, "Aa", query(t, s, "Aa", 10, 0, 1<<62), 30, 10)
}

func TestSecondsResolution(t *testing.T) {
	s := openTest(t, t.TempDir(), 11, 100)
	mustPut(t, s, "k", 1, t0)
	mustPut(t, s, "k", 2, t0+1500) // stored as t0+1 s
	// [t0+1600, t0+1700] lies inside the second t0+1 s .. t0+1.999 s.
	eq(t, "sub-second window", query(t, s, "k", 10, t0+1600, t0+1700), 2)
	eq(t, "before first", query(t, s, "k", 10, t0-5000, t0-1))
	eq(t, "exact first", query(t, s, "k", 10, t0, t0), 1)
	eq(t, "unbounded", query(t, s, "k", 10, math.MinInt64, math.MaxInt64), 2, 1)
}

func TestRollAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, 3, 5) // 4 entries per file
	for i := int64(0); i < 10; i++ {
		mustPut(t, s, "k", i*10, t0+i*1000)
	}
	names := dirNames(t, dir)
	want := []string{formatName(t0), formatName(t0 + 4000), formatName(t0 + 8000)}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("files %v want %v", names, want)
	}
	if names[0] != "20231114221320000" {
		t.Fatalf("name format %s", names[0])
	}
	all := []int64{90, 80, 70, 60, 50, 40, 30, 20, 10, 0}
	eq(t, "all", query(t, s, "k", 64, 0, 1<<62), all...)
	eq(t, "middle file only", query(t, s, "k", 64, t0+4000, t0+7000), 70, 60, 50, 40)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dir, 3, 5)
	eq(t, "reopened", query(t, s2, "k", 64, 0, 1<<62), all...)
	if s2.LastPhysOffset() != 90 {
		t.Fatalf("LastPhysOffset %d", s2.LastPhysOffset())
	}
	mustPut(t, s2, "k", 100, t0+10_000)
	eq(t, "after reopen put", query(t, s2, "k", 3, 0, 1<<62), 100, 90, 80)
	// Store times going backwards still give increasing file names.
	for i := int64(11); i < 16; i++ {
		mustPut(t, s2, "k", i*10, t0)
	}
	names = dirNames(t, dir)
	if !sort.StringsAreSorted(names) || len(names) != 4 || names[3] != formatName(t0+8001) {
		t.Fatalf("names after clock step back %v", names)
	}
	// Wrong settings are refused and change nothing.
	if _, err := Open(Options{Dir: dir, SlotNum: 4, MaxIndexNum: 5, FlushInterval: -1}); err == nil {
		t.Fatal("Open with other SlotNum succeeded")
	}
}

// TestReplayAndRebuild: replaying the same dispatch is a no-op, and a fresh
// build from the same sequence gives identical files.
func TestReplayAndRebuild(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	put := func(s *Service, from, to int64) {
		for i := from; i < to; i++ {
			mustPut(t, s, fmt.Sprintf("T#u%d", i), i*10, t0+i*300)
			mustPut(t, s, fmt.Sprintf("T#k%d", i%3), i*10, t0+i*300)
		}
	}
	s := openTest(t, a, 5, 9)
	put(s, 0, 20)
	put(s, 12, 20) // replay of a suffix
	s.Close()
	s = openTest(t, a, 5, 9)
	put(s, 19, 25) // replay across a restart, partly new
	s.Close()

	r := openTest(t, b, 5, 9)
	put(r, 0, 25)
	r.Close()
	compareDirs(t, a, b)
}

func TestTruncateFrom(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	s := openTest(t, a, 3, 5)
	for i := int64(0); i < 10; i++ {
		mustPut(t, s, fmt.Sprintf("k%d", i%2), i*10, t0+i*1000)
	}
	if err := s.TruncateFrom(35); err != nil {
		t.Fatal(err)
	}
	eq(t, "k0", query(t, s, "k0", 64, 0, 1<<62), 20, 0)
	eq(t, "k1", query(t, s, "k1", 64, 0, 1<<62), 30, 10)
	if s.LastPhysOffset() != 30 || len(dirNames(t, a)) != 1 {
		t.Fatalf("last %d files %v", s.LastPhysOffset(), dirNames(t, a))
	}
	// New records at the truncated offsets are indexed, old ones never return.
	for i := int64(4); i < 7; i++ {
		mustPut(t, s, "new", i*10, t0+i*1000)
	}
	eq(t, "k0 after", query(t, s, "k0", 64, 0, 1<<62), 20, 0)
	eq(t, "new", query(t, s, "new", 64, 0, 1<<62), 60, 50, 40)
	s.Close()
	s = openTest(t, a, 3, 5)
	eq(t, "k1 reopened", query(t, s, "k1", 64, 0, 1<<62), 30, 10)
	if err := s.TruncateFrom(0); err != nil {
		t.Fatal(err)
	}
	eq(t, "all gone", query(t, s, "new", 64, 0, 1<<62))
	if len(dirNames(t, a)) != 0 || s.LastPhysOffset() != 0 {
		t.Fatalf("files left %v", dirNames(t, a))
	}
	s.Close()

	// Truncate then re-put gives the same files as building directly.
	s = openTest(t, a, 3, 5)
	r := openTest(t, b, 3, 5)
	for i := int64(0); i < 7; i++ {
		mustPut(t, s, fmt.Sprintf("k%d", i%3), i*10, t0+i*1000)
		mustPut(t, r, fmt.Sprintf("k%d", i%3), i*10, t0+i*1000)
	}
	for i := int64(7); i < 9; i++ {
		mustPut(t, s, "junk", i*10, t0+i*1000)
	}
	if err := s.TruncateFrom(70); err != nil {
		t.Fatal(err)
	}
	for i := int64(7); i < 12; i++ {
		mustPut(t, s, fmt.Sprintf("k%d", i%3), i*10, t0+i*1000)
		mustPut(t, r, fmt.Sprintf("k%d", i%3), i*10, t0+i*1000)
	}
	s.Close()
	r.Close()
	compareDirs(t, a, b)
}

func TestDeleteBelow(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, 3, 5)
	for i := int64(0); i < 10; i++ {
		mustPut(t, s, "k", i*10, t0+i*1000)
	}
	if err := s.DeleteBelow(45); err != nil {
		t.Fatal(err)
	}
	if n := len(dirNames(t, dir)); n != 2 {
		t.Fatalf("files left %d", n)
	}
	eq(t, "above floor", query(t, s, "k", 64, 0, 1<<62), 90, 80, 70, 60, 50)
	// The newest file is kept even when wholly below.
	if err := s.DeleteBelow(1000); err != nil {
		t.Fatal(err)
	}
	if n := len(dirNames(t, dir)); n != 1 {
		t.Fatalf("files left %d", n)
	}
	eq(t, "nothing above floor", query(t, s, "k", 64, 0, 1<<62))
	mustPut(t, s, "k", 1000, t0+20_000)
	eq(t, "new after delete", query(t, s, "k", 64, 0, 1<<62), 1000)
}

func TestConcurrentPutQuery(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), SlotNum: 17, MaxIndexNum: 200, FlushInterval: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 3000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := s.Query("k7", 1000, 0, 1<<62)
				if err != nil {
					errs <- err
					return
				}
				for i, p := range got {
					if p%70 != 49 || (i > 0 && p >= got[i-1]) {
						errs <- fmt.Errorf("bad result %v", got)
						return
					}
				}
			}
		}()
	}
	for i := int64(0); i < n; i++ {
		mustPut(t, s, fmt.Sprintf("k%d", i%10), i*7, t0+i)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := query(t, s, "k7", 1000, 0, 1<<62); len(got) != n/10 {
		t.Fatalf("k7 has %d entries", len(got))
	}
}

func dirNames(t testing.TB, dir string) []string {
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

func compareDirs(t *testing.T, a, b string) {
	t.Helper()
	na, nb := dirNames(t, a), dirNames(t, b)
	if fmt.Sprint(na) != fmt.Sprint(nb) {
		t.Fatalf("file names differ: %v vs %v", na, nb)
	}
	for _, n := range na {
		da, _ := os.ReadFile(filepath.Join(a, n))
		db, _ := os.ReadFile(filepath.Join(b, n))
		if !bytes.Equal(da, db) {
			t.Fatalf("file %s differs", n)
		}
	}
}

func TestReset(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, 3, 5)
	for i := int64(0); i < 10; i++ {
		mustPut(t, s, "k", i*10, t0+i*1000)
	}
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	if n := len(dirNames(t, dir)); n != 0 || s.LastPhysOffset() != 0 {
		t.Fatalf("files %d last %d", n, s.LastPhysOffset())
	}
	eq(t, "after reset", query(t, s, "k", 64, 0, 1<<62))
	mustPut(t, s, "k", 500, t0)
	eq(t, "new", query(t, s, "k", 64, 0, 1<<62), 500)
}
