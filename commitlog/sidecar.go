package commitlog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"

	"golang.org/x/sys/unix"
)

// A sealed segment's record offsets are saved in a sidecar file
// "<segment>.idx" (docs/storage.md §5) so Open does not have to scan every sealed
// segment. Unlike the original design, the active segment has no sidecar at all
// (not even a memory-mapped one); Open always scans the active segment, which
// it must do anyway to find a torn tail. A sidecar is written only after its
// segment is fdatasynced, and a missing or bad one is rebuilt by scanning.
const (
	sidecarMagic     = 0x52514958 // "RQIX"
	sidecarVersion   = 1
	sidecarHeaderLen = 72
	sidecarSuffix    = ".idx"
)

type sidecar struct {
	SegStart      int64
	BaseIndex     uint64
	DataStart     int64
	End           int64
	LastTerm      uint64
	MaxAppendedAt int64
	Offsets       []uint32
}

func (sc *sidecar) encode() []byte {
	b := make([]byte, sidecarHeaderLen+4*len(sc.Offsets))
	be := binary.BigEndian
	be.PutUint32(b[0:], sidecarMagic)
	be.PutUint32(b[4:], sidecarVersion)
	be.PutUint64(b[8:], uint64(sc.SegStart))
	be.PutUint64(b[16:], sc.BaseIndex)
	be.PutUint64(b[24:], uint64(len(sc.Offsets)))
	be.PutUint64(b[32:], uint64(sc.DataStart))
	be.PutUint64(b[40:], uint64(sc.End))
	be.PutUint64(b[48:], sc.LastTerm)
	be.PutUint64(b[56:], uint64(sc.MaxAppendedAt))
	for i, o := range sc.Offsets {
		be.PutUint32(b[sidecarHeaderLen+4*i:], o)
	}
	c := crc32.Checksum(b[:64], castagnoli)
	c = crc32.Update(c, castagnoli, b[sidecarHeaderLen:])
	be.PutUint32(b[64:], c)
	return b
}

// decodeSidecar parses a sidecar for a segment of segSize bytes, checking
// every field against what such a segment can hold.
func decodeSidecar(b []byte, segSize int64) (sidecar, error) {
	var sc sidecar
	if len(b) < sidecarHeaderLen {
		return sc, fmt.Errorf("%w: short sidecar", ErrCorrupt)
	}
	be := binary.BigEndian
	if be.Uint32(b[0:]) != sidecarMagic || be.Uint32(b[4:]) != sidecarVersion {
		return sc, fmt.Errorf("%w: bad sidecar magic/version", ErrCorrupt)
	}
	n := be.Uint64(b[24:])
	if n > uint64(segSize/HeaderSize) || uint64(len(b)) != sidecarHeaderLen+4*n {
		return sc, fmt.Errorf("%w: sidecar count %d does not match its size %d", ErrCorrupt, n, len(b))
	}
	c := crc32.Checksum(b[:64], castagnoli)
	c = crc32.Update(c, castagnoli, b[sidecarHeaderLen:])
	if c != be.Uint32(b[64:]) || be.Uint32(b[68:]) != 0 {
		return sc, fmt.Errorf("%w: sidecar crc", ErrCorrupt)
	}
	sc.SegStart = int64(be.Uint64(b[8:]))
	sc.BaseIndex = be.Uint64(b[16:])
	sc.DataStart = int64(be.Uint64(b[32:]))
	sc.End = int64(be.Uint64(b[40:]))
	sc.LastTerm = be.Uint64(b[48:])
	sc.MaxAppendedAt = int64(be.Uint64(b[56:]))
	if sc.DataStart < 0 || sc.End < sc.DataStart || sc.End > segSize || sc.DataStart%recordAlign != 0 || sc.End%recordAlign != 0 {
		return sc, fmt.Errorf("%w: sidecar bounds", ErrCorrupt)
	}
	sc.Offsets = make([]uint32, n)
	prev := int64(-1)
	for i := range sc.Offsets {
		o := be.Uint32(b[sidecarHeaderLen+4*i:])
		if int64(o) <= prev || int64(o) < sc.DataStart || int64(o)+HeaderSize > sc.End {
			return sc, fmt.Errorf("%w: sidecar offset %d out of order", ErrCorrupt, o)
		}
		prev = int64(o)
		sc.Offsets[i] = o
	}
	return sc, nil
}

// writeSidecar durably writes sc next to segPath (tmp + rename + dir fsync).
func writeSidecar(dir, segPath string, sc *sidecar) error {
	final := segPath + sidecarSuffix
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(sc.encode()); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}
