package commitlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// segmentName is the file name of the segment starting at global offset start:
// 20 decimal digits, as RocketMQ names its CommitLog files.
func segmentName(start int64) string { return fmt.Sprintf("%020d", start) }

// parseSegmentName returns the start offset encoded in a segment file name.
func parseSegmentName(name string) (int64, bool) {
	if len(name) != 20 {
		return 0, false
	}
	for _, c := range name {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(name, 10, 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return v, true
}

// segment is one preallocated file of segSize bytes, appended with pwritev
// and read through a read-only MAP_SHARED mapping. Its lifetime is
// refcounted: the store holds one reference while the segment is part of the
// log, and every Lease or in-flight read holds another; the mapping and file
// are released when the count drops to zero, so retention or truncation never
// unmaps bytes a reader is still using.
//
// Fields below mu-guarded comment are guarded by Store.mu.
type segment struct {
	start int64 // global offset of file byte 0
	size  int64
	path  string
	f     *os.File
	data  []byte // PROT_READ mapping of the whole file
	refs  atomic.Int64

	// guarded by Store.mu
	baseIndex     uint64   // index of the first record (next index if count == 0)
	dataStart     int64    // file offset of the first record (non-zero only after a reset)
	offsets       []uint32 // file offset of each record
	end           int64    // file offset after the last record (a BLANK, if any, starts here)
	lastTerm      uint64
	maxAppendedAt int64
	sealed        bool // a later segment exists; the BLANK (if any) is written
}

// openSegmentFile opens and maps an existing segment file of exactly size bytes.
func openSegmentFile(path string, start, size int64) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.Size() != size {
		f.Close()
		return nil, fmt.Errorf("%w: segment %s has size %d, want %d", ErrCorrupt, path, fi.Size(), size)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("commitlog: mmap %s: %w", path, err)
	}
	s := &segment{start: start, size: size, path: path, f: f, data: data}
	s.refs.Store(1)
	return s, nil
}

// acquire takes a reference; the caller must hold one already (directly or via Store.mu).
func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference and frees the mapping and file on the last one.
func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		_ = unix.Munmap(s.data)
		_ = s.f.Close()
	}
}

// count is the number of records in the segment.
func (s *segment) count() int { return len(s.offsets) }

// lastIndex is the index of the last record (baseIndex-1 when empty).
func (s *segment) lastIndex() uint64 { return s.baseIndex + uint64(len(s.offsets)) - 1 }

func (s *segment) fd() int { return int(s.f.Fd()) }

// pwritevAll writes iovs at off, retrying short writes.
func pwritevAll(fd int, iovs [][]byte, off int64) error {
	const maxIov = 1024 // IOV_MAX on Linux
	for len(iovs) > 0 {
		chunk := iovs
		if len(chunk) > maxIov {
			chunk = chunk[:maxIov]
		}
		want := 0
		for _, b := range chunk {
			want += len(b)
		}
		n, err := unix.Pwritev(fd, chunk, off)
		if err != nil {
			return err
		}
		off += int64(n)
		if n == want {
			iovs = iovs[len(chunk):]
			continue
		}
		// Short write: drop what was written and retry the rest.
		rest := make([][]byte, 0, len(iovs))
		for _, b := range iovs {
			if n >= len(b) {
				n -= len(b)
				continue
			}
			rest = append(rest, b[n:])
			n = 0
		}
		iovs = rest
	}
	return nil
}

var zeroBlock = make([]byte, 1<<20)

// zeroRange overwrites [off, off+n) of fd with zeros using pwrite. Zeros are
// written rather than punched (FALLOC_FL_ZERO_RANGE) so the extents stay
// written and later fdatasyncs stay cheap (docs/storage.md §11).
func zeroRange(fd int, off, n int64) error {
	for n > 0 {
		c := int64(len(zeroBlock))
		if c > n {
			c = n
		}
		w, err := unix.Pwrite(fd, zeroBlock[:c], off)
		if err != nil {
			return err
		}
		off += int64(w)
		n -= int64(w)
	}
	return nil
}

// syncDir fsyncs a directory so created/removed entries are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("commitlog: fsync dir %s: %w", dir, err)
	}
	return nil
}

// PreallocMode selects how a new segment file is preallocated.
type PreallocMode int

const (
	// PreallocZeroFill writes zeros over the whole file in the background
	// before it is needed; fdatasync into written extents is cheapest (docs/storage.md §11).
	PreallocZeroFill PreallocMode = iota
	// PreallocFallocate reserves blocks with fallocate (unwritten extents).
	PreallocFallocate
	// PreallocSparse only sets the file size (ftruncate): fastest to create,
	// slowest to append.
	PreallocSparse
)

// createSegmentFile creates dir/name(start) of size bytes via a temporary
// file and rename, so a crash never leaves a half-prepared file under a
// segment name; the directory is fsynced.
// A zero-fill stops early with ctx's error when ctx is cancelled, and is
// paced to at most rate bytes per second when rate > 0.
func createSegmentFile(ctx context.Context, dir string, start, size int64, mode PreallocMode, rate int64) (string, error) {
	final := filepath.Join(dir, segmentName(start))
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", err
	}
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("commitlog: prepare segment %s: %w", final, err)
	}
	switch mode {
	case PreallocZeroFill:
		began := time.Now()
		for off := int64(0); off < size; off += int64(len(zeroBlock)) {
			if err := ctx.Err(); err != nil {
				return fail(err)
			}
			n := min(int64(len(zeroBlock)), size-off)
			if err := zeroRange(int(f.Fd()), off, n); err != nil {
				return fail(err)
			}
			if rate > 0 {
				due := time.Duration(float64(off+n) / float64(rate) * float64(time.Second))
				if wait := due - time.Since(began); wait > 0 {
					t := time.NewTimer(wait)
					select {
					case <-ctx.Done():
						t.Stop()
						return fail(ctx.Err())
					case <-t.C:
					}
				}
			}
		}
	case PreallocFallocate:
		if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
			if err := f.Truncate(size); err != nil {
				return fail(err)
			}
		}
	default:
		if err := f.Truncate(size); err != nil {
			return fail(err)
		}
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := syncDir(dir); err != nil {
		return "", err
	}
	return final, nil
}
