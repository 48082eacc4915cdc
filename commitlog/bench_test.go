package commitlog

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"
)

// Benchmarks: go test -run '^$' -bench . ./commitlog/
//
// BenchmarkAppend reports MB/s (b.SetBytes) and msgs/s, counting 1 KiB
// messages packed into entries of 1, 64 and 1024 messages. BenchmarkRawWrite
// is the same disk's pwrite+fdatasync rate for the same bytes per sync, into
// a preallocated (zero-filled) file: the ceiling for SYNC appends.

const benchSegSize = 256 << 20

type benchShape struct {
	name       string
	entryBytes int // Log.Data per entry
	perBatch   int // entries per StoreLogs call
}

var benchShapes = []benchShape{
	{"entry=1KiB/batch=64", 1 << 10, 64},
	{"entry=64KiB/batch=16", 64 << 10, 16},
	{"entry=1MiB/batch=4", 1 << 20, 4},
}

func BenchmarkAppend(b *testing.B) {
	for _, mode := range []FlushMode{FlushSync, FlushAsync} {
		for _, sh := range benchShapes {
			b.Run(fmt.Sprintf("%s/%s", mode, sh.name), func(b *testing.B) {
				dir := b.TempDir()
				s, err := Open(Options{RootDir: dir, SegmentSize: benchSegSize, Flush: mode, Prealloc: benchPrealloc()})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				data := make([]byte, sh.entryBytes)
				for i := range data {
					data[i] = byte(i)
				}
				logs := make([]*raft.Log, sh.perBatch)
				for i := range logs {
					logs[i] = &raft.Log{Type: raft.LogCommand, Term: 1, Data: data}
				}
				b.SetBytes(int64(sh.entryBytes * sh.perBatch))
				b.ResetTimer()
				next := uint64(1)
				for i := 0; i < b.N; i++ {
					for _, l := range logs {
						l.Index = next
						next++
					}
					if err := s.StoreLogs(logs); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				msgs := float64(b.N*sh.perBatch) * float64(sh.entryBytes/1024)
				b.ReportMetric(msgs/b.Elapsed().Seconds(), "msgs/s")
				b.ReportMetric(float64(b.N*sh.perBatch)/b.Elapsed().Seconds(), "entries/s")
			})
		}
	}
}

// BenchmarkRawWrite: pwrite + fdatasync of the same batch sizes,
// sequentially, into a file that is zero-filled beforehand (pure overwrite:
// the ceiling), fallocated beforehand (unwritten extents), or extended by
// the writes (what `dd oflag=dsync` to a new file does).
func BenchmarkRawWrite(b *testing.B) {
	for _, prep := range []string{"zerofilled", "fallocated", "extending"} {
		for _, sh := range benchShapes {
			b.Run(prep+"/"+sh.name, func(b *testing.B) {
				dir := b.TempDir()
				var f *os.File
				var err error
				switch prep {
				case "zerofilled", "fallocated":
					mode := PreallocZeroFill
					if prep == "fallocated" {
						mode = PreallocFallocate
					}
					var path string
					path, err = createSegmentFile(context.Background(), dir, 0, benchSegSize, mode, 0)
					if err == nil {
						f, err = os.OpenFile(path, os.O_RDWR, 0)
					}
				default:
					f, err = os.Create(dir + "/raw")
				}
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				buf := make([]byte, sh.entryBytes*sh.perBatch)
				b.SetBytes(int64(len(buf)))
				b.ResetTimer()
				off := int64(0)
				for i := 0; i < b.N; i++ {
					if off+int64(len(buf)) > benchSegSize {
						// Start a fresh file so every write sees the same kind of extent.
						b.StopTimer()
						f.Close()
						os.RemoveAll(dir)
						os.MkdirAll(dir, 0o755)
						switch prep {
						case "zerofilled", "fallocated":
							mode := PreallocZeroFill
							if prep == "fallocated" {
								mode = PreallocFallocate
							}
							path, err := createSegmentFile(context.Background(), dir, 0, benchSegSize, mode, 0)
							if err != nil {
								b.Fatal(err)
							}
							f, _ = os.OpenFile(path, os.O_RDWR, 0)
						default:
							f, _ = os.Create(dir + "/raw")
						}
						off = 0
						b.StartTimer()
					}
					if _, err := unix.Pwrite(int(f.Fd()), buf, off); err != nil {
						b.Fatal(err)
					}
					if err := unix.Fdatasync(int(f.Fd())); err != nil {
						b.Fatal(err)
					}
					off += int64(len(buf))
				}
			})
		}
	}
}

func BenchmarkGetLog(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("entry=%dKiB", size>>10), func(b *testing.B) {
			dir := b.TempDir()
			s, err := Open(Options{RootDir: dir, SegmentSize: benchSegSize, Flush: FlushAsync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const n = 2000
			data := make([]byte, size)
			var logs []*raft.Log
			for i := uint64(1); i <= n; i++ {
				logs = append(logs, &raft.Log{Index: i, Term: 1, Data: data})
			}
			storeAll(b, s, logs, 100)
			b.SetBytes(int64(size))
			b.ResetTimer()
			var out raft.Log
			for i := 0; i < b.N; i++ {
				if err := s.GetLog(uint64(i%n)+1, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchPrealloc lets a run compare preallocation modes:
// COMMITLOG_BENCH_PREALLOC=zero|fallocate|sparse (default zero).
func benchPrealloc() PreallocMode {
	switch os.Getenv("COMMITLOG_BENCH_PREALLOC") {
	case "fallocate":
		return PreallocFallocate
	case "sparse":
		return PreallocSparse
	}
	return PreallocZeroFill
}
