package consumequeue

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func qfile(dir, topic string, q int, first int64) string {
	return filepath.Join(dir, topic, strconv.Itoa(q), fileName(first*EntrySize))
}

func writeQueue(t *testing.T, dir string, perFile int, from, to int64) {
	t.Helper()
	s := openTest(t, dir, perFile)
	putRange(t, s, "T", 0, from, to)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func patchFile(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func TestCrashGarbageAfterTail(t *testing.T) {
	dir := t.TempDir()
	writeQueue(t, dir, 10, 0, 14)
	// Garbage where entries 16.. would be (offset 15 stays zero) and a
	// half-written entry at 14: only the PhysOffset reached the disk.
	p := qfile(dir, "T", 0, 10)
	patchFile(t, p, 6*EntrySize, []byte("garbage garbage garbage garbage"))
	patchFile(t, p, 4*EntrySize, []byte{0, 0, 0, 0, 0, 0, 0x10, 0})
	s := openTest(t, dir, 10)
	checkRange(t, s, "T", 0, 0, 14)
	putRange(t, s, "T", 0, 14, 25)
	checkRange(t, s, "T", 0, 0, 25)
	s.Close()
	s2 := openTest(t, dir, 10)
	checkRange(t, s2, "T", 0, 0, 25)
}

func TestCrashGarbageMidQueue(t *testing.T) {
	dir := t.TempDir()
	writeQueue(t, dir, 10, 0, 30)
	// Entry 13 points backwards in the CommitLog: the queue ends there and
	// the later file is removed.
	bad := make([]byte, EntrySize)
	encodeEntry(bad, Entry{PhysOffset: 5, Size: 10})
	patchFile(t, qfile(dir, "T", 0, 10), 3*EntrySize, bad)
	s := openTest(t, dir, 10)
	checkRange(t, s, "T", 0, 0, 13)
	if _, err := os.Stat(qfile(dir, "T", 0, 20)); !os.IsNotExist(err) {
		t.Fatalf("file after the cut still exists: %v", err)
	}
	// A blank after data is not a valid entry either.
	s.Close()
	encodeEntry(bad, blankEntry)
	patchFile(t, qfile(dir, "T", 0, 0), 7*EntrySize, bad)
	s2 := openTest(t, dir, 10)
	checkRange(t, s2, "T", 0, 0, 7)
}

func TestCrashTruncatedFiles(t *testing.T) {
	dir := t.TempDir()
	writeQueue(t, dir, 10, 0, 25)
	// Last file cut in the middle of entry 23.
	if err := os.Truncate(qfile(dir, "T", 0, 20), 3*EntrySize+7); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, dir, 10)
	checkRange(t, s, "T", 0, 0, 23)
	putRange(t, s, "T", 0, 23, 26)
	checkRange(t, s, "T", 0, 0, 26)
	s.Close()
	if st, _ := os.Stat(qfile(dir, "T", 0, 20)); st.Size() != 10*EntrySize {
		t.Fatalf("file not extended back: %d", st.Size())
	}

	// A middle file cut to zero length: the queue ends at its start.
	if err := os.Truncate(qfile(dir, "T", 0, 10), 0); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dir, 10)
	checkRange(t, s2, "T", 0, 0, 10)
	putRange(t, s2, "T", 0, 10, 12)
	checkRange(t, s2, "T", 0, 0, 12)
}

func TestCrashMissingFile(t *testing.T) {
	dir := t.TempDir()
	writeQueue(t, dir, 10, 0, 35)
	if err := os.Remove(qfile(dir, "T", 0, 20)); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, dir, 10)
	checkRange(t, s, "T", 0, 0, 20)
	if got := fileNames(t, filepath.Join(dir, "T", "0")); len(got) != 2 {
		t.Fatalf("files %v", got)
	}
}

func TestCrashStrayFiles(t *testing.T) {
	dir := t.TempDir()
	writeQueue(t, dir, 10, 0, 5)
	os.WriteFile(filepath.Join(dir, "T", "0", "README"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "T", "0", fileName(200)+".tmp"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(dir, "T", "notanumber"), 0o755)
	os.MkdirAll(filepath.Join(dir, "T", "007"), 0o755)
	os.MkdirAll(filepath.Join(dir, "bad.topic", "0"), 0o755)
	os.WriteFile(filepath.Join(dir, "afile"), []byte("x"), 0o644)
	s := openTest(t, dir, 10)
	checkRange(t, s, "T", 0, 0, 5)
	if q := s.Queues(); len(q) != 1 {
		t.Fatalf("queues %v", q)
	}
	if _, err := os.Stat(filepath.Join(dir, "T", "0", fileName(200)+".tmp")); !os.IsNotExist(err) {
		t.Fatal(".tmp left behind")
	}
}

func TestCrashConfigMismatch(t *testing.T) {
	dir := t.TempDir()
	writeQueue(t, dir, 10, 0, 15)
	// Files of 10 entries opened as 4-entry files: too long, refused.
	if _, err := Open(Options{Dir: dir, EntriesPerFile: 4, FlushInterval: -1}); err == nil {
		t.Fatal("Open with a smaller EntriesPerFile succeeded")
	}
	// Opened as 20-entry files: the name 00000000000000000200 is misaligned.
	if _, err := Open(Options{Dir: dir, EntriesPerFile: 20, FlushInterval: -1}); err == nil {
		t.Fatal("Open with a larger EntriesPerFile succeeded")
	}
	// The files are untouched: the right config still opens them.
	s := openTest(t, dir, 10)
	checkRange(t, s, "T", 0, 0, 15)
}
