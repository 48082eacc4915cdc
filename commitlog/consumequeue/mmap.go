package consumequeue

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mappedFile is one preallocated ConsumeQueue file mapped MAP_SHARED.
// The descriptor is closed right after mapping: a broker may hold thousands
// of queues and msync needs only the mapping.
type mappedFile struct {
	path   string
	first  int64 // logical offset of the file's first entry slot
	noSync bool  // tests only
	data   []byte
}

// createMappedFile makes a zero-filled file of size bytes under a temporary
// name, reserves its blocks, and renames it into place, so a crash never
// leaves a short file behind and later stores into the mapping cannot hit
// ENOSPC (which would arrive as SIGBUS).
func createMappedFile(path string, first int64, size int, noSync bool) (*mappedFile, error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	if err := reserve(f, size); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	if !noSync {
		if err := f.Sync(); err != nil {
			f.Close()
			os.Remove(tmp)
			return nil, err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	return mapAndClose(f, path, first, size, noSync)
}

// openMappedFile maps an existing file. A file shorter than size (damaged or
// torn) is extended with zeros, which recovery then reads as "end of queue";
// a longer one means the files were written with another EntriesPerFile.
func openMappedFile(path string, first int64, size int, noSync bool) (m *mappedFile, extended bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, false, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false, err
	}
	switch {
	case st.Size() > int64(size):
		f.Close()
		return nil, false, fmt.Errorf("consumequeue: %s is %d bytes, want %d (was EntriesPerFile changed?)", path, st.Size(), size)
	case st.Size() < int64(size):
		if err := reserve(f, size); err != nil {
			f.Close()
			return nil, false, err
		}
		extended = true
	}
	m, err = mapAndClose(f, path, first, size, noSync)
	return m, extended, err
}

func reserve(f *os.File, size int) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, int64(size))
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		err = f.Truncate(int64(size))
	}
	if err != nil {
		return fmt.Errorf("consumequeue: reserve %d bytes for %s: %w", size, f.Name(), err)
	}
	return nil
}

func mapAndClose(f *os.File, path string, first int64, size int, noSync bool) (*mappedFile, error) {
	defer f.Close()
	data, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("consumequeue: mmap %s: %w", path, err)
	}
	return &mappedFile{path: path, first: first, noSync: noSync, data: data}, nil
}

// syncRange msyncs the bytes [from, to) of the mapping.
func (m *mappedFile) syncRange(from, to int) error {
	if to <= from || m.noSync {
		return nil
	}
	page := os.Getpagesize()
	from -= from % page
	if err := unix.Msync(m.data[from:to], unix.MS_SYNC); err != nil {
		return fmt.Errorf("consumequeue: msync %s: %w", m.path, err)
	}
	return nil
}

func (m *mappedFile) unmap() error {
	if m.data == nil {
		return nil
	}
	err := unix.Munmap(m.data)
	m.data = nil
	return err
}

// syncDir makes directory entry changes (create, rename, unlink) durable.
func syncDir(dir string, skip bool) error {
	if skip {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
