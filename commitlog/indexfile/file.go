package indexfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// On-disk layout (docs/protocol.md §6.4), big-endian.
const (
	headerSize = 40
	slotSize   = 4
	entrySize  = 20

	hBeginTimestamp = 0
	hEndTimestamp   = 8
	hBeginPhyOffset = 16
	hEndPhyOffset   = 24
	hHashSlotCount  = 32
	hIndexCount     = 36
)

// entry is one index entry. Index numbers start at 1; 0 means "none".
type entry struct {
	hash     int32
	phys     int64
	timeDiff int32 // seconds since the header's beginTimestamp
	prev     int32 // index number of the previous entry in the slot's chain
}

// indexFile is one mapped IndexFile. The header's indexCount is the next
// index number to use (1 in a fresh file), as in RocketMQ.
type indexFile struct {
	path     string
	nameTime int64 // ms, from the file name
	slotNum  int
	maxIndex int
	noSync   bool
	data     []byte
}

func fileSize(slotNum, maxIndex int) int {
	return headerSize + slotNum*slotSize + maxIndex*entrySize
}

// createIndexFile makes a preallocated file under a temporary name and
// renames it into place, so a crash never leaves a short index file and
// stores into the mapping cannot hit ENOSPC (SIGBUS).
func createIndexFile(path string, nameTime int64, slotNum, maxIndex int, noSync bool) (*indexFile, error) {
	size := fileSize(slotNum, maxIndex)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*indexFile, error) {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	err = unix.Fallocate(int(f.Fd()), 0, 0, int64(size))
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		err = f.Truncate(int64(size))
	}
	if err != nil {
		return fail(fmt.Errorf("indexfile: reserve %d bytes for %s: %w", size, path, err))
	}
	var hdr [headerSize]byte
	binary.BigEndian.PutUint32(hdr[hIndexCount:], 1)
	if _, err := f.WriteAt(hdr[:], 0); err != nil {
		return fail(err)
	}
	if !noSync {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return mapIndexFile(f, path, nameTime, slotNum, maxIndex, noSync)
}

// openIndexFile maps an existing file, which must have the configured size:
// SlotNum and MaxIndexNum are not recorded in the file, so any other size
// cannot be interpreted.
func openIndexFile(path string, nameTime int64, slotNum, maxIndex int, noSync bool) (*indexFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if want := fileSize(slotNum, maxIndex); st.Size() != int64(want) {
		f.Close()
		return nil, fmt.Errorf("indexfile: %s is %d bytes, want %d for SlotNum %d and MaxIndexNum %d "+
			"(damaged, or written with other settings; the index can be rebuilt from the CommitLog after removing it)",
			path, st.Size(), want, slotNum, maxIndex)
	}
	return mapIndexFile(f, path, nameTime, slotNum, maxIndex, noSync)
}

func mapIndexFile(f *os.File, path string, nameTime int64, slotNum, maxIndex int, noSync bool) (*indexFile, error) {
	defer f.Close()
	data, err := unix.Mmap(int(f.Fd()), 0, fileSize(slotNum, maxIndex), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("indexfile: mmap %s: %w", path, err)
	}
	return &indexFile{path: path, nameTime: nameTime, slotNum: slotNum, maxIndex: maxIndex, noSync: noSync, data: data}, nil
}

func (f *indexFile) i64(off int) int64      { return int64(binary.BigEndian.Uint64(f.data[off:])) }
func (f *indexFile) i32(off int) int32      { return int32(binary.BigEndian.Uint32(f.data[off:])) }
func (f *indexFile) put64(off int, v int64) { binary.BigEndian.PutUint64(f.data[off:], uint64(v)) }
func (f *indexFile) put32(off int, v int32) { binary.BigEndian.PutUint32(f.data[off:], uint32(v)) }

func (f *indexFile) beginTimestamp() int64 { return f.i64(hBeginTimestamp) }
func (f *indexFile) endTimestamp() int64   { return f.i64(hEndTimestamp) }
func (f *indexFile) beginPhys() int64      { return f.i64(hBeginPhyOffset) }
func (f *indexFile) endPhys() int64        { return f.i64(hEndPhyOffset) }

// count is the header's indexCount clamped to [1, maxIndex], so a damaged
// header can never send a reader outside the file.
func (f *indexFile) count() int32 {
	c := f.i32(hIndexCount)
	if c < 1 {
		return 1
	}
	if int(c) > f.maxIndex {
		return int32(f.maxIndex)
	}
	return c
}

func (f *indexFile) empty() bool { return f.count() <= 1 }
func (f *indexFile) full() bool  { return int(f.count()) >= f.maxIndex }

func (f *indexFile) slotOff(hash int32) int {
	return headerSize + (int(hash)%f.slotNum)*slotSize
}

// slot returns the chain head for hash, or 0 when empty or out of range.
func (f *indexFile) slot(hash int32, count int32) int32 {
	v := f.i32(f.slotOff(hash))
	if v < 1 || v >= count {
		return 0
	}
	return v
}

func (f *indexFile) entryOff(n int32) int {
	return headerSize + f.slotNum*slotSize + int(n)*entrySize
}

func (f *indexFile) entry(n int32) entry {
	o := f.entryOff(n)
	return entry{hash: f.i32(o), phys: f.i64(o + 4), timeDiff: f.i32(o + 12), prev: f.i32(o + 16)}
}

// add appends an entry and links it at the head of its slot's chain.
// The caller checked !full().
func (f *indexFile) add(hash int32, phys, storeTimestamp int64) {
	n := f.count()
	head := f.slot(hash, n)
	if n == 1 {
		f.put64(hBeginTimestamp, storeTimestamp)
		f.put64(hBeginPhyOffset, phys)
	}
	diff := (storeTimestamp - f.beginTimestamp()) / 1000
	switch {
	case diff < 0:
		diff = 0
	case diff > 1<<31-1:
		diff = 1<<31 - 1
	}
	o := f.entryOff(n)
	f.put32(o, hash)
	f.put64(o+4, phys)
	f.put32(o+12, int32(diff))
	f.put32(o+16, head)
	f.put32(f.slotOff(hash), n)
	if head == 0 {
		f.put32(hHashSlotCount, f.i32(hHashSlotCount)+1)
	}
	f.put32(hIndexCount, n+1)
	f.put64(hEndPhyOffset, phys)
	f.put64(hEndTimestamp, storeTimestamp)
}

// removeLast undoes the newest add: the slot gets its previous head back
// and the entry is zeroed. indexCount drops first, so a crash in between
// leaves at worst an unreferenced entry.
func (f *indexFile) removeLast() {
	n := f.count() - 1
	if n < 1 {
		return
	}
	e := f.entry(n)
	f.put32(hIndexCount, n)
	so := f.slotOff(e.hash & 0x7fffffff)
	if f.i32(so) == n {
		prev := e.prev
		if prev < 0 || prev >= n {
			prev = 0
		}
		f.put32(so, prev)
		if prev == 0 {
			f.put32(hHashSlotCount, max(0, f.i32(hHashSlotCount)-1))
		}
	}
	clear(f.data[f.entryOff(n) : f.entryOff(n)+entrySize])
	if n > 1 {
		last := f.entry(n - 1)
		f.put64(hEndPhyOffset, last.phys)
		f.put64(hEndTimestamp, f.beginTimestamp()+int64(last.timeDiff)*1000)
	}
}

func (f *indexFile) sync() error {
	if f.noSync {
		return nil
	}
	if err := unix.Msync(f.data, unix.MS_SYNC); err != nil {
		return fmt.Errorf("indexfile: msync %s: %w", f.path, err)
	}
	return nil
}

func (f *indexFile) unmap() {
	if f.data != nil {
		unix.Munmap(f.data)
		f.data = nil
	}
}
