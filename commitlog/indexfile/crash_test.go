package indexfile

import (
	"encoding/binary"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func onlyFile(t *testing.T, dir string) string {
	t.Helper()
	names := dirNames(t, dir)
	if len(names) != 1 {
		t.Fatalf("files %v", names)
	}
	return filepath.Join(dir, names[0])
}

func patch(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func build(t *testing.T, dir string, n int64) {
	t.Helper()
	s := openTest(t, dir, 5, 50)
	for i := int64(0); i < n; i++ {
		mustPut(t, s, "k", i*10, t0+i*1000)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCrashTruncatedFileRefused(t *testing.T) {
	dir := t.TempDir()
	build(t, dir, 5)
	p := onlyFile(t, dir)
	if err := os.Truncate(p, 100); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Options{Dir: dir, SlotNum: 5, MaxIndexNum: 50, FlushInterval: -1})
	if err == nil || !strings.Contains(err.Error(), "rebuilt") {
		t.Fatalf("Open of a truncated file: %v", err)
	}
	if st, _ := os.Stat(p); st.Size() != 100 {
		t.Fatal("truncated file was modified")
	}
}

func TestCrashGarbageHeader(t *testing.T) {
	for _, count := range []int32{-5, 0, 1 << 30} {
		dir := t.TempDir()
		build(t, dir, 5)
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(count))
		patch(t, onlyFile(t, dir), hIndexCount, b[:])
		s := openTest(t, dir, 5, 50)
		got := query(t, s, "k", 100, 0, 1<<62)
		if len(got) > 5 {
			t.Fatalf("count %d: %v", count, got)
		}
		// Writes still work (into a fresh file if the clamped one is full).
		mustPut(t, s, "k2", 1000, t0+100_000)
		eq(t, "k2", query(t, s, "k2", 10, 0, 1<<62), 1000)
	}
}

func TestCrashGarbageBody(t *testing.T) {
	dir := t.TempDir()
	build(t, dir, 30)
	p := onlyFile(t, dir)
	rng := rand.New(rand.NewSource(1))
	junk := make([]byte, fileSize(5, 50)-headerSize)
	rng.Read(junk)
	patch(t, p, headerSize, junk)
	s := openTest(t, dir, 5, 50)
	for _, k := range []string{"k", "x", "y", "polygenelubricants"} {
		if got := query(t, s, k, 1000, 0, 1<<62); len(got) > 49 {
			t.Fatalf("%s: %d results from a 49-entry file", k, len(got))
		}
	}
	if err := s.TruncateFrom(0); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "fresh", 5, t0)
	eq(t, "fresh", query(t, s, "fresh", 10, 0, 1<<62), 5)
}

// TestCrashStaleHeader: the header page reached the disk before the newest
// entries (or the other way round); replaying the tail restores the index
// without duplicates.
func TestCrashStaleHeader(t *testing.T) {
	dir := t.TempDir()
	build(t, dir, 10)
	p := onlyFile(t, dir)
	// Roll the header back to 6 entries (count 7, end phys 50).
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], 7)
	patch(t, p, hIndexCount, b[:4])
	binary.BigEndian.PutUint64(b[:], 50)
	patch(t, p, hEndPhyOffset, b[:])
	s := openTest(t, dir, 5, 50)
	if s.LastPhysOffset() != 50 {
		t.Fatalf("LastPhysOffset %d", s.LastPhysOffset())
	}
	for i := int64(0); i < 12; i++ {
		mustPut(t, s, "k", i*10, t0+i*1000)
	}
	eq(t, "replayed", query(t, s, "k", 100, 0, 1<<62), 110, 100, 90, 80, 70, 60, 50, 40, 30, 20, 10, 0)
}

func TestCrashStrayFiles(t *testing.T) {
	dir := t.TempDir()
	build(t, dir, 3)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "20231114221399000"), []byte("x"), 0o644) // invalid second
	os.WriteFile(filepath.Join(dir, formatName(t0+5000)+".tmp"), []byte("x"), 0o644)
	s := openTest(t, dir, 5, 50)
	eq(t, "k", query(t, s, "k", 10, 0, 1<<62), 20, 10, 0)
	if _, err := os.Stat(filepath.Join(dir, formatName(t0+5000)+".tmp")); !os.IsNotExist(err) {
		t.Fatal(".tmp not removed")
	}
}
