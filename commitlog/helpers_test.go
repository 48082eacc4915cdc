package commitlog

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

const testSeg = 64 << 10

func testOpts(dir string) Options {
	return Options{RootDir: dir, SegmentSize: testSeg, Flush: FlushSync, Prealloc: PreallocSparse}
}

func mustOpen(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// payload returns deterministic bytes for (index, term, size).
func payload(index, term uint64, size int) []byte {
	b := make([]byte, size)
	r := rand.New(rand.NewSource(int64(index*1000003 + term)))
	r.Read(b)
	return b
}

func mkLog(index, term uint64, size int) *raft.Log {
	l := &raft.Log{Index: index, Term: term, Type: raft.LogCommand, Data: payload(index, term, size),
		AppendedAt: time.Unix(1700000000, int64(index))}
	if index%5 == 0 {
		l.Extensions = []byte(fmt.Sprintf("ext-%d", index))
	}
	return l
}

func mkLogs(from, to, term uint64, size func(i uint64) int) []*raft.Log {
	var out []*raft.Log
	for i := from; i <= to; i++ {
		out = append(out, mkLog(i, term, size(i)))
	}
	return out
}

func fixed(n int) func(uint64) int { return func(uint64) int { return n } }

// varied gives sizes from 0 to ~5 KiB so records straddle 64 KiB segment ends often.
func varied(i uint64) int { return int((i * 7919) % 5000) }

func storeAll(t testing.TB, s *Store, logs []*raft.Log, batch int) {
	t.Helper()
	for len(logs) > 0 {
		n := min(batch, len(logs))
		if err := s.StoreLogs(logs[:n]); err != nil {
			t.Fatalf("StoreLogs(%d..): %v", logs[0].Index, err)
		}
		logs = logs[n:]
	}
}

func checkLog(t testing.TB, s *Store, want *raft.Log) {
	t.Helper()
	var got raft.Log
	if err := s.GetLog(want.Index, &got); err != nil {
		t.Fatalf("GetLog(%d): %v", want.Index, err)
	}
	if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type ||
		!bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Extensions, want.Extensions) ||
		!got.AppendedAt.Equal(want.AppendedAt) {
		t.Fatalf("GetLog(%d) = idx %d term %d type %v len %d ext %q at %v; want term %d len %d ext %q at %v",
			want.Index, got.Index, got.Term, got.Type, len(got.Data), got.Extensions, got.AppendedAt,
			want.Term, len(want.Data), want.Extensions, want.AppendedAt)
	}
}

func checkRange(t testing.TB, s *Store, first, last uint64) {
	t.Helper()
	f, _ := s.FirstIndex()
	l, _ := s.LastIndex()
	if f != first || l != last {
		t.Fatalf("range = [%d,%d], want [%d,%d]", f, l, first, last)
	}
	var out raft.Log
	if first > 0 {
		if err := s.GetLog(first-1, &out); err != raft.ErrLogNotFound {
			t.Fatalf("GetLog(first-1=%d) = %v, want raft.ErrLogNotFound", first-1, err)
		}
	}
	if err := s.GetLog(last+1, &out); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog(last+1=%d) = %v, want raft.ErrLogNotFound", last+1, err)
	}
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "commitlog"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if _, ok := parseSegmentName(e.Name()); ok {
			out = append(out, e.Name())
		}
	}
	return out
}

// copyDir copies a store directory (a "crash image" of the files as they are now).
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // a temporary file renamed meanwhile
			}
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if fi.Name() == "lock" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// memTempDir returns a temporary directory on tmpfs when available, so
// tests that open thousands of crash images are not bound by fsync latency.
// Crash semantics are simulated by copying files, so the file system does
// not matter for what they check.
func memTempDir(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "commitlog-test-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}
