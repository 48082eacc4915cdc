package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"net/netip"
)

// BodyCRC is RocketMQ's body checksum: CRC32-IEEE of the stored body bytes
// masked to 31 bits (UtilAll.crc32).
func BodyCRC(body []byte) uint32 { return crc32.ChecksumIEEE(body) & 0x7FFFFFFF }

// hostV6 reports whether a host is written in the 16-byte form. IPv4-mapped
// IPv6 addresses are written as IPv4, as Java sees them.
func hostV6(h netip.AddrPort) bool {
	a := h.Addr()
	return a.Is6() && !a.Is4In6()
}

// sysFlagFor returns sysFlag with the host v6 bits set from the actual hosts.
func sysFlagFor(e *Ext) int32 {
	f := e.SysFlag &^ (SysFlagBornHostV6 | SysFlagStoreHostV6)
	if hostV6(e.BornHost) {
		f |= SysFlagBornHostV6
	}
	if hostV6(e.StoreHost) {
		f |= SysFlagStoreHostV6
	}
	return f
}

// EncodedSize returns the size of the record AppendRecord would write for e,
// or the error it would return.
func EncodedSize(e *Ext) (int, error) {
	if len(e.Topic) == 0 {
		return 0, errors.New("message: empty topic")
	}
	if len(e.Topic) > MaxTopicLength {
		return 0, fmt.Errorf("message: topic of %d bytes is longer than %d", len(e.Topic), MaxTopicLength)
	}
	propLen, err := ValidateProperties(e.Properties)
	if err != nil {
		return 0, err
	}
	topicLenSize := 1
	if len(e.Topic) > MaxTopicLengthV1 {
		topicLenSize = 2
	}
	fixed := BodySizePos(sysFlagFor(e)) + 4 + topicLenSize + 2
	size := fixed + len(e.Topic) + propLen
	if len(e.Body) > math.MaxInt32-size {
		return 0, fmt.Errorf("message: body of %d bytes makes the record exceed the int32 size field", len(e.Body))
	}
	return size + len(e.Body), nil
}

// AppendRecord appends the stored-record encoding of e to dst (docs/protocol.md
// §3.1). It uses the V1 layout unless the topic is longer than 127 bytes (then
// V2), sets the v6 sysflag bits from the actual hosts, computes TOTALSIZE and
// BODYCRC (ignoring e.StoreSize and e.BodyCRC) and writes properties sorted
// by name. On error dst is returned unchanged.
func AppendRecord(dst []byte, e *Ext) ([]byte, error) {
	size, err := EncodedSize(e)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	if cap(dst)-start < size {
		grown := make([]byte, start, start+size)
		copy(grown, dst)
		dst = grown
	}
	sysFlag := sysFlagFor(e)
	magic := MagicCodeV1
	if len(e.Topic) > MaxTopicLengthV1 {
		magic = MagicCodeV2
	}
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(size))
	dst = be.AppendUint32(dst, magic)
	dst = be.AppendUint32(dst, BodyCRC(e.Body))
	dst = be.AppendUint32(dst, uint32(e.QueueID))
	dst = be.AppendUint32(dst, uint32(e.Flag))
	dst = be.AppendUint64(dst, uint64(e.QueueOffset))
	dst = be.AppendUint64(dst, uint64(e.CommitLogOffset))
	dst = be.AppendUint32(dst, uint32(sysFlag))
	dst = be.AppendUint64(dst, uint64(e.BornTimestamp))
	dst = appendHost(dst, e.BornHost)
	dst = be.AppendUint64(dst, uint64(e.StoreTimestamp))
	dst = appendHost(dst, e.StoreHost)
	dst = be.AppendUint32(dst, uint32(e.ReconsumeTimes))
	dst = be.AppendUint64(dst, uint64(e.PreparedTransactionOffset))
	dst = be.AppendUint32(dst, uint32(len(e.Body)))
	dst = append(dst, e.Body...)
	if magic == MagicCodeV2 {
		dst = be.AppendUint16(dst, uint16(len(e.Topic)))
	} else {
		dst = append(dst, byte(len(e.Topic)))
	}
	dst = append(dst, e.Topic...)
	propStart := len(dst) + 2
	dst = be.AppendUint16(dst, 0) // patched below
	dst = appendProperties(dst, e.Properties)
	be.PutUint16(dst[propStart-2:], uint16(len(dst)-propStart))
	if len(dst)-start != size {
		// EncodedSize and the writer above disagree: a bug here, never input.
		return dst[:start], fmt.Errorf("message: internal error: encoded %d bytes, computed %d", len(dst)-start, size)
	}
	return dst, nil
}

// appendHost writes ip (4 or 16 bytes) and the port as int32.
func appendHost(dst []byte, h netip.AddrPort) []byte {
	a := h.Addr()
	switch {
	case hostV6(h):
		b := a.As16()
		dst = append(dst, b[:]...)
	case a.IsValid():
		b := a.Unmap().As4()
		dst = append(dst, b[:]...)
	default:
		dst = append(dst, 0, 0, 0, 0)
	}
	return binary.BigEndian.AppendUint32(dst, uint32(h.Port()))
}

// DecodeRecord decodes the record at the start of b and returns it with its
// size. It checks the magic, every length against TOTALSIZE and len(b), and
// that the fields end exactly at TOTALSIZE. The Ext does not alias b.
func DecodeRecord(b []byte) (*Ext, int, error) {
	r, err := ParseRecord(b)
	if err != nil {
		return nil, 0, err
	}
	e := &Ext{
		Message: Message{
			Topic:      string(r.TopicBytes()),
			Flag:       r.Flag(),
			Properties: decodePropertiesBytes(r.PropertiesBytes()),
			Body:       append([]byte(nil), r.Body()...),
		},
		StoreSize:                 r.TotalSize(),
		QueueID:                   r.QueueID(),
		QueueOffset:               r.QueueOffset(),
		CommitLogOffset:           r.PhysicalOffset(),
		SysFlag:                   r.SysFlag(),
		BornTimestamp:             r.BornTimestamp(),
		BornHost:                  r.BornHost(),
		StoreTimestamp:            r.StoreTimestamp(),
		StoreHost:                 r.StoreHost(),
		ReconsumeTimes:            r.ReconsumeTimes(),
		PreparedTransactionOffset: r.PreparedTransactionOffset(),
		BodyCRC:                   r.BodyCRC(),
	}
	return e, len(r), nil
}

// DecodeRecords decodes a concatenation of records, such as a pull response
// body. Any trailing bytes that are not a whole valid record are an error.
func DecodeRecords(b []byte) ([]*Ext, error) {
	var out []*Ext
	for off := 0; off < len(b); {
		e, n, err := DecodeRecord(b[off:])
		if err != nil {
			return nil, fmt.Errorf("message: record %d at byte %d: %w", len(out), off, err)
		}
		out = append(out, e)
		off += n
	}
	return out, nil
}
