package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Record is a zero-copy view of one encoded stored record. Accessors never
// allocate (except Topic and Property, which return strings) and never panic:
// on a record too short for a field they return the zero value and setters
// do nothing. Call Valid (or build the view with ParseRecord) before trusting
// what they return.
type Record []byte

// Errors returned by Valid, ParseRecord and DecodeRecord.
var (
	ErrShortRecord = errors.New("message: record shorter than its fields")
	ErrBadMagic    = errors.New("message: bad record magic code")
	ErrBadSize     = errors.New("message: record TOTALSIZE does not match its fields")
)

// ParseRecord validates the record at the start of b and returns the view of
// exactly that record (b[:TOTALSIZE]).
func ParseRecord(b []byte) (Record, error) {
	r := Record(b)
	if err := r.Valid(); err != nil {
		return nil, err
	}
	return r[:r.TotalSize()], nil
}

// Valid checks everything the accessors read: the magic is V1 or V2,
// TOTALSIZE fits in r, body, topic and properties lengths are non-negative
// and within TOTALSIZE, and the fields end exactly at TOTALSIZE. r may be
// longer than the record.
func (r Record) Valid() error {
	if len(r) < MinRecordSize {
		return fmt.Errorf("%w: %d bytes, need at least %d", ErrShortRecord, len(r), MinRecordSize)
	}
	magic := r.Magic()
	if magic != MagicCodeV1 && magic != MagicCodeV2 {
		return fmt.Errorf("%w: %#08x", ErrBadMagic, magic)
	}
	total := int64(r.TotalSize())
	if total < MinRecordSize || total > int64(len(r)) {
		return fmt.Errorf("%w: TOTALSIZE %d with %d bytes available", ErrBadSize, total, len(r))
	}
	t := r[:total]
	bodyPos := int64(BodySizePos(t.SysFlag()))
	if bodyPos+4 > total {
		return fmt.Errorf("%w: hosts end past TOTALSIZE %d", ErrBadSize, total)
	}
	bodyLen := int64(int32(binary.BigEndian.Uint32(t[bodyPos:])))
	if bodyLen < 0 {
		return fmt.Errorf("%w: negative body length %d", ErrBadSize, bodyLen)
	}
	p := bodyPos + 4 + bodyLen
	var topicLen int64
	if magic == MagicCodeV2 {
		if p+2 > total {
			return fmt.Errorf("%w: body length %d overruns TOTALSIZE %d", ErrBadSize, bodyLen, total)
		}
		topicLen = int64(int16(binary.BigEndian.Uint16(t[p:])))
		if topicLen < 0 {
			return fmt.Errorf("%w: negative topic length %d", ErrBadSize, topicLen)
		}
		p += 2
	} else {
		if p+1 > total {
			return fmt.Errorf("%w: body length %d overruns TOTALSIZE %d", ErrBadSize, bodyLen, total)
		}
		topicLen = int64(t[p])
		p++
	}
	p += topicLen
	if p+2 > total {
		return fmt.Errorf("%w: topic length %d overruns TOTALSIZE %d", ErrBadSize, topicLen, total)
	}
	propLen := int64(int16(binary.BigEndian.Uint16(t[p:])))
	if propLen < 0 {
		return fmt.Errorf("%w: negative properties length %d", ErrBadSize, propLen)
	}
	p += 2 + propLen
	if p != total {
		return fmt.Errorf("%w: fields end at %d, TOTALSIZE is %d", ErrBadSize, p, total)
	}
	if port := r.bornPort(); port < 0 || port > 0xFFFF {
		return fmt.Errorf("message: born host port %d out of range", port)
	}
	if port := r.storePort(); port < 0 || port > 0xFFFF {
		return fmt.Errorf("message: store host port %d out of range", port)
	}
	return nil
}

func (r Record) u32(pos int) uint32 {
	if pos < 0 || len(r) < pos+4 {
		return 0
	}
	return binary.BigEndian.Uint32(r[pos:])
}

func (r Record) u64(pos int) uint64 {
	if pos < 0 || len(r) < pos+8 {
		return 0
	}
	return binary.BigEndian.Uint64(r[pos:])
}

func (r Record) put64(pos int, v int64) {
	if pos >= 0 && len(r) >= pos+8 {
		binary.BigEndian.PutUint64(r[pos:], uint64(v))
	}
}

// TotalSize is TOTALSIZE, the record length including this field.
func (r Record) TotalSize() int32 { return int32(r.u32(PosTotalSize)) }

// Magic is MAGICCODE.
func (r Record) Magic() uint32 { return r.u32(PosMagic) }

// BodyCRC is BODYCRC as stored.
func (r Record) BodyCRC() uint32 { return r.u32(PosBodyCRC) }

// QueueID is QUEUEID.
func (r Record) QueueID() int32 { return int32(r.u32(PosQueueID)) }

// Flag is the user flag.
func (r Record) Flag() int32 { return int32(r.u32(PosFlag)) }

// QueueOffset is QUEUEOFFSET, the logical offset in the consume queue.
func (r Record) QueueOffset() int64 { return int64(r.u64(PosQueueOffset)) }

// PhysicalOffset is PHYSICALOFFSET, the commit-log offset of the record.
func (r Record) PhysicalOffset() int64 { return int64(r.u64(PosPhysicalOffset)) }

// SysFlag is SYSFLAG.
func (r Record) SysFlag() int32 { return int32(r.u32(PosSysFlag)) }

// BornTimestamp is BORNTIMESTAMP (ms).
func (r Record) BornTimestamp() int64 { return int64(r.u64(PosBornTimestamp)) }

// StoreTimestamp is STORETIMESTAMP (ms).
func (r Record) StoreTimestamp() int64 { return int64(r.u64(StoreTimestampPos(r.SysFlag()))) }

// ReconsumeTimes is RECONSUMETIMES.
func (r Record) ReconsumeTimes() int32 { return int32(r.u32(ReconsumeTimesPos(r.SysFlag()))) }

// PreparedTransactionOffset is PREPARED_TRANSACTION_OFFSET.
func (r Record) PreparedTransactionOffset() int64 {
	return int64(r.u64(PreparedTransactionOffsetPos(r.SysFlag())))
}

func (r Record) host(pos int, v6 bool) netip.AddrPort {
	if v6 {
		if pos < 0 || len(r) < pos+20 {
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(r[pos:pos+16])), uint16(r.u32(pos+16)))
	}
	if pos < 0 || len(r) < pos+8 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(r[pos:pos+4])), uint16(r.u32(pos+4)))
}

func (r Record) bornPort() int32 {
	if r.SysFlag()&SysFlagBornHostV6 != 0 {
		return int32(r.u32(PosBornHost + 16))
	}
	return int32(r.u32(PosBornHost + 4))
}

func (r Record) storePort() int32 {
	f := r.SysFlag()
	if f&SysFlagStoreHostV6 != 0 {
		return int32(r.u32(StoreHostPos(f) + 16))
	}
	return int32(r.u32(StoreHostPos(f) + 4))
}

// BornHost is BORNHOST.
func (r Record) BornHost() netip.AddrPort {
	return r.host(PosBornHost, r.SysFlag()&SysFlagBornHostV6 != 0)
}

// StoreHost is STOREHOST.
func (r Record) StoreHost() netip.AddrPort {
	f := r.SysFlag()
	return r.host(StoreHostPos(f), f&SysFlagStoreHostV6 != 0)
}

// bodyBounds returns the body's start and end, or (0, 0) when out of range.
func (r Record) bodyBounds() (int, int) {
	pos := BodySizePos(r.SysFlag())
	if len(r) < pos+4 {
		return 0, 0
	}
	n := int32(binary.BigEndian.Uint32(r[pos:]))
	if n < 0 || int64(len(r)) < int64(pos)+4+int64(n) {
		return 0, 0
	}
	return pos + 4, pos + 4 + int(n)
}

// Body is the stored body (compressed when SysFlag says so), aliasing r.
func (r Record) Body() []byte {
	s, e := r.bodyBounds()
	if e == 0 {
		return nil
	}
	return r[s:e:e]
}

// topicBounds returns the topic's start and end, or (0, 0) when out of range.
func (r Record) topicBounds() (int, int) {
	_, p := r.bodyBounds()
	if p == 0 {
		return 0, 0
	}
	var n int
	if r.Magic() == MagicCodeV2 {
		if len(r) < p+2 {
			return 0, 0
		}
		n = int(int16(binary.BigEndian.Uint16(r[p:])))
		p += 2
	} else {
		if len(r) < p+1 {
			return 0, 0
		}
		n = int(r[p])
		p++
	}
	if n < 0 || len(r) < p+n {
		return 0, 0
	}
	return p, p + n
}

// TopicBytes is the topic, aliasing r.
func (r Record) TopicBytes() []byte {
	s, e := r.topicBounds()
	if e == 0 {
		return nil
	}
	return r[s:e:e]
}

// Topic is the topic as a string (allocates).
func (r Record) Topic() string { return string(r.TopicBytes()) }

// PropertiesBytes is the encoded properties string, aliasing r.
func (r Record) PropertiesBytes() []byte {
	_, p := r.topicBounds()
	if p == 0 || len(r) < p+2 {
		return nil
	}
	n := int(int16(binary.BigEndian.Uint16(r[p:])))
	p += 2
	if n < 0 || len(r) < p+n {
		return nil
	}
	return r[p : p+n : p+n]
}

// PropertyBytes returns the value of property key, aliasing r, and whether
// it is present. It scans without building a map.
func (r Record) PropertyBytes(key string) ([]byte, bool) {
	return lookupProperty(r.PropertiesBytes(), key)
}

// Property returns the value of property key, or "" when absent.
func (r Record) Property(key string) string {
	v, _ := r.PropertyBytes(key)
	return string(v)
}

// VerifyBodyCRC reports whether BODYCRC matches the stored body.
func (r Record) VerifyBodyCRC() error {
	if got, want := r.BodyCRC(), BodyCRC(r.Body()); got != want {
		return fmt.Errorf("message: body CRC %#x stored, %#x computed", got, want)
	}
	return nil
}

// SetQueueOffset patches QUEUEOFFSET in place.
func (r Record) SetQueueOffset(v int64) { r.put64(PosQueueOffset, v) }

// SetPhysicalOffset patches PHYSICALOFFSET in place.
func (r Record) SetPhysicalOffset(v int64) { r.put64(PosPhysicalOffset, v) }

// SetStoreTimestamp patches STORETIMESTAMP in place.
func (r Record) SetStoreTimestamp(v int64) { r.put64(StoreTimestampPos(r.SysFlag()), v) }

// SetPreparedTransactionOffset patches PREPARED_TRANSACTION_OFFSET in place.
func (r Record) SetPreparedTransactionOffset(v int64) {
	r.put64(PreparedTransactionOffsetPos(r.SysFlag()), v)
}

// TagsCode is TagsHashCode of the TAGS property, computed without allocating.
func (r Record) TagsCode() int64 {
	tags, _ := r.PropertyBytes(PropertyTags)
	if len(tags) == 0 {
		return 0
	}
	return int64(javaHashBytes(tags))
}

// TransactionType is the transaction type bits of SYSFLAG. Records typed
// PREPARED or ROLLBACK are not dispatched to consume queues.
func (r Record) TransactionType() int32 { return TransactionType(r.SysFlag()) }
