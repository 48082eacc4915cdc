package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// The checkpoint (docs/storage.md §10) lives in RootDir/checkpoint as two 4 KiB
// slots written alternately (slot = seq % 2) with pwrite + fdatasync. Each
// slot carries a CRC32C; on load the valid slot with the highest seq wins, so a
// torn checkpoint write leaves the previous one intact.
const (
	checkpointSlotSize = 4096
	checkpointMagic    = 0x52514350 // "RQCP"
	checkpointVersion  = 1
	checkpointBodyLen  = 120
)

// checkpoint is the persisted state of a store besides its segments.
type checkpoint struct {
	Seq     uint64
	SegSize int64

	// FlushedPos is the end of the last record known to be on stable storage;
	// FlushedIndex/FlushedTerm identify that record (0 when none).
	FlushedPos   int64
	FlushedIndex uint64
	FlushedTerm  uint64

	// FirstIndex/FirstPos identify the first retained record (FirstIndex 0:
	// the store is empty and the next record goes to FirstPos).
	FirstIndex uint64
	FirstPos   int64

	// Reset intent (docs/storage.md §9): the next wipe makes ResetIndex+1 land at ResetPos.
	ResetPending bool
	ResetIndex   uint64
	ResetTerm    uint64
	ResetPos     int64

	Applied    uint64
	Dispatched uint64

	// RaftPrefixOK is the highest index raft allowed to be deleted (docs/storage.md §6); informational.
	RaftPrefixOK uint64
}

func (c *checkpoint) encode() []byte {
	b := make([]byte, checkpointSlotSize)
	be := binary.BigEndian
	be.PutUint32(b[0:], checkpointMagic)
	be.PutUint32(b[4:], checkpointVersion)
	be.PutUint64(b[8:], c.Seq)
	be.PutUint64(b[16:], uint64(c.SegSize))
	be.PutUint64(b[24:], uint64(c.FlushedPos))
	be.PutUint64(b[32:], c.FlushedIndex)
	be.PutUint64(b[40:], c.FlushedTerm)
	be.PutUint64(b[48:], c.FirstIndex)
	be.PutUint64(b[56:], uint64(c.FirstPos))
	if c.ResetPending {
		b[64] = 1
	}
	be.PutUint64(b[72:], c.ResetIndex)
	be.PutUint64(b[80:], c.ResetTerm)
	be.PutUint64(b[88:], uint64(c.ResetPos))
	be.PutUint64(b[96:], c.Applied)
	be.PutUint64(b[104:], c.Dispatched)
	be.PutUint64(b[112:], c.RaftPrefixOK)
	be.PutUint32(b[checkpointBodyLen:], crc32.Checksum(b[:checkpointBodyLen], castagnoli))
	return b
}

// decodeCheckpoint parses one slot.
func decodeCheckpoint(b []byte) (checkpoint, error) {
	var c checkpoint
	if len(b) < checkpointBodyLen+4 {
		return c, fmt.Errorf("%w: short checkpoint slot", ErrCorrupt)
	}
	be := binary.BigEndian
	if be.Uint32(b[0:]) != checkpointMagic {
		return c, fmt.Errorf("%w: bad checkpoint magic", ErrCorrupt)
	}
	if got, want := crc32.Checksum(b[:checkpointBodyLen], castagnoli), be.Uint32(b[checkpointBodyLen:]); got != want {
		return c, fmt.Errorf("%w: checkpoint crc %#x, want %#x", ErrCorrupt, got, want)
	}
	if v := be.Uint32(b[4:]); v != checkpointVersion {
		return c, fmt.Errorf("%w: unsupported checkpoint version %d", ErrCorrupt, v)
	}
	c.Seq = be.Uint64(b[8:])
	c.SegSize = int64(be.Uint64(b[16:]))
	c.FlushedPos = int64(be.Uint64(b[24:]))
	c.FlushedIndex = be.Uint64(b[32:])
	c.FlushedTerm = be.Uint64(b[40:])
	c.FirstIndex = be.Uint64(b[48:])
	c.FirstPos = int64(be.Uint64(b[56:]))
	c.ResetPending = b[64] == 1
	c.ResetIndex = be.Uint64(b[72:])
	c.ResetTerm = be.Uint64(b[80:])
	c.ResetPos = int64(be.Uint64(b[88:]))
	c.Applied = be.Uint64(b[96:])
	c.Dispatched = be.Uint64(b[104:])
	c.RaftPrefixOK = be.Uint64(b[112:])
	if c.SegSize <= 0 || c.FlushedPos < 0 || c.FirstPos < 0 || c.ResetPos < 0 || b[64] > 1 ||
		c.SegSize%recordAlign != 0 || c.FlushedPos%recordAlign != 0 || c.FirstPos%recordAlign != 0 || c.ResetPos%recordAlign != 0 {
		return c, fmt.Errorf("%w: checkpoint fields out of range", ErrCorrupt)
	}
	return c, nil
}

// checkpointFile writes and reads the two-slot checkpoint file.
type checkpointFile struct {
	f *os.File
}

var errNoCheckpoint = errors.New("commitlog: no valid checkpoint")

func openCheckpointFile(path string) (*checkpointFile, bool, error) {
	created := false
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		created = true
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, err
	}
	return &checkpointFile{f: f}, created, nil
}

// load returns the newest valid slot.
func (cf *checkpointFile) load() (checkpoint, error) {
	var best checkpoint
	found := false
	var firstErr error
	for slot := 0; slot < 2; slot++ {
		b := make([]byte, checkpointSlotSize)
		n, err := cf.f.ReadAt(b, int64(slot)*checkpointSlotSize)
		if err != nil && !errors.Is(err, io.EOF) {
			return best, err
		}
		c, err := decodeCheckpoint(b[:n])
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if !found || c.Seq > best.Seq {
			best, found = c, true
		}
	}
	if !found {
		return best, fmt.Errorf("%w (%v)", errNoCheckpoint, firstErr)
	}
	return best, nil
}

// store writes c into the slot for its seq and makes it durable.
func (cf *checkpointFile) store(c *checkpoint) error {
	off := int64(c.Seq%2) * checkpointSlotSize
	if _, err := cf.f.WriteAt(c.encode(), off); err != nil {
		return fmt.Errorf("commitlog: write checkpoint: %w", err)
	}
	if err := unix.Fdatasync(int(cf.f.Fd())); err != nil {
		return fmt.Errorf("commitlog: fdatasync checkpoint: %w", err)
	}
	return nil
}

func (cf *checkpointFile) close() error { return cf.f.Close() }
