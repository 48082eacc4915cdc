package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/hashicorp/raft"
)

// Record framing (docs/storage.md §3). Big-endian like RocketMQ; every record is
// 8-byte aligned so a BLANK filler (magic + length) always fits in the
// remainder of a segment.
//
//	off size field
//	0   4    magic (recordMagic, blankMagic, or 0 = never written)
//	4   4    recLen: header + data + ext + pad, a multiple of 8
//	8   8    raft index
//	16  8    raft term
//	24  8    pos: global physical offset of this record
//	32  8    appendedAt (unix ns, 0 = zero time)
//	40  1    raft.LogType
//	41  1    reserved (0)
//	42  2    extLen
//	44  4    dataLen
//	48  4    payloadCRC = CRC32C(data || ext)
//	52  4    headerCRC  = CRC32C(bytes 0..51)
//	56  ...  Log.Data, Log.Extensions, zero pad
const (
	// HeaderSize is the size of a record header; a record's Log.Data starts at pos+HeaderSize.
	HeaderSize = 56

	// DefaultSegmentSize is the default (and RocketMQ's) segment file size.
	DefaultSegmentSize = 1 << 30

	recordMagic uint32 = 0x52514C31 // "RQL1"
	blankMagic  uint32 = 0xBBBBBBBB
	blankSize          = 8 // magic + recLen
	recordAlign        = 8

	// MaxExtensionsSize is the largest Log.Extensions a record can carry (u16 length field).
	MaxExtensionsSize = 1<<16 - 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors returned by the store. GetLog returns raft.ErrLogNotFound unwrapped.
var (
	// ErrCorrupt marks data that fails a structural or CRC check.
	ErrCorrupt = errors.New("commitlog: corrupt data")
	// ErrTooLarge is returned for an entry whose record would not fit in one segment.
	ErrTooLarge = errors.New("commitlog: entry larger than a segment")
	// ErrClosed is returned by operations on a closed store.
	ErrClosed = errors.New("commitlog: store closed")
	// ErrOutOfRange is returned by position-based reads outside the stored records.
	ErrOutOfRange = errors.New("commitlog: position out of range")
)

// recordHeader is the decoded form of a record header.
type recordHeader struct {
	Magic      uint32
	RecLen     uint32
	Index      uint64
	Term       uint64
	Pos        int64
	AppendedAt int64
	Type       raft.LogType
	ExtLen     uint16
	DataLen    uint32
	PayloadCRC uint32
}

// recordLen returns the aligned on-disk length of a record carrying
// dataLen+extLen payload bytes.
func recordLen(dataLen, extLen int) int64 {
	return align8(int64(HeaderSize) + int64(dataLen) + int64(extLen))
}

func align8(n int64) int64 { return (n + recordAlign - 1) &^ (recordAlign - 1) }

func appendedAtNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// payloadCRC returns CRC32C(data || ext).
func payloadCRC(data, ext []byte) uint32 {
	c := crc32.Update(0, castagnoli, data)
	return crc32.Update(c, castagnoli, ext)
}

// encodeHeader writes the header for l at pos into b[:HeaderSize].
func encodeHeader(b []byte, l *raft.Log, pos int64) {
	_ = b[HeaderSize-1]
	be := binary.BigEndian
	be.PutUint32(b[0:], recordMagic)
	be.PutUint32(b[4:], uint32(recordLen(len(l.Data), len(l.Extensions))))
	be.PutUint64(b[8:], l.Index)
	be.PutUint64(b[16:], l.Term)
	be.PutUint64(b[24:], uint64(pos))
	be.PutUint64(b[32:], uint64(appendedAtNanos(l.AppendedAt)))
	b[40] = byte(l.Type)
	b[41] = 0
	be.PutUint16(b[42:], uint16(len(l.Extensions)))
	be.PutUint32(b[44:], uint32(len(l.Data)))
	be.PutUint32(b[48:], payloadCRC(l.Data, l.Extensions))
	be.PutUint32(b[52:], crc32.Checksum(b[:52], castagnoli))
}

// encodeBlank writes a BLANK filler header covering n bytes into b[:blankSize].
func encodeBlank(b []byte, n int64) {
	binary.BigEndian.PutUint32(b[0:], blankMagic)
	binary.BigEndian.PutUint32(b[4:], uint32(n))
}

// decodeHeader parses and validates a record header. It checks the magic,
// the header CRC and that the lengths are self-consistent; it does not
// check the payload CRC or the position (callers know what to expect).
func decodeHeader(b []byte) (recordHeader, error) {
	var h recordHeader
	if len(b) < HeaderSize {
		return h, fmt.Errorf("%w: short header (%d bytes)", ErrCorrupt, len(b))
	}
	be := binary.BigEndian
	h.Magic = be.Uint32(b[0:])
	if h.Magic != recordMagic {
		return h, fmt.Errorf("%w: bad record magic %#x", ErrCorrupt, h.Magic)
	}
	if got, want := crc32.Checksum(b[:52], castagnoli), be.Uint32(b[52:]); got != want {
		return h, fmt.Errorf("%w: header crc %#x, want %#x", ErrCorrupt, got, want)
	}
	h.RecLen = be.Uint32(b[4:])
	h.Index = be.Uint64(b[8:])
	h.Term = be.Uint64(b[16:])
	h.Pos = int64(be.Uint64(b[24:]))
	h.AppendedAt = int64(be.Uint64(b[32:]))
	h.Type = raft.LogType(b[40])
	h.ExtLen = be.Uint16(b[42:])
	h.DataLen = be.Uint32(b[44:])
	h.PayloadCRC = be.Uint32(b[48:])
	if b[41] != 0 {
		return h, fmt.Errorf("%w: reserved header byte %#x", ErrCorrupt, b[41])
	}
	if int64(h.RecLen) != recordLen(int(h.DataLen), int(h.ExtLen)) {
		return h, fmt.Errorf("%w: record length %d does not match payload %d+%d", ErrCorrupt, h.RecLen, h.DataLen, h.ExtLen)
	}
	if h.Pos < 0 {
		return h, fmt.Errorf("%w: negative position", ErrCorrupt)
	}
	return h, nil
}

// appendedAtTime converts the stored nanoseconds back to a time.Time.
func appendedAtTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// readMagic returns the magic and length words at the start of b (len(b) >= 8).
func readMagic(b []byte) (magic, n uint32) {
	return binary.BigEndian.Uint32(b[0:]), binary.BigEndian.Uint32(b[4:])
}
