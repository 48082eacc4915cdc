package dledger

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// storedRecord is a checked view of one RocketMQ stored-message record
// (PROTOCOL.md §3.1) inside an entry payload. It is a small local adapter so
// the hook and the dispatcher need only the handful of fields they touch;
// the message package owns the full codec.
type storedRecord struct {
	b          []byte
	storeTsOff int
	topic      string
	props      []byte
}

const (
	magicV1 = 0xDAA320A7
	magicV2 = 0xDAA320AB

	offQueueID     = 12
	offQueueOffset = 20
	offPhysOffset  = 28
	offSysFlag     = 36
	offBornHost    = 48

	sysFlagBornIPv6  = 0x10
	sysFlagStoreIPv6 = 0x20
	sysFlagTxMask    = 0x0C
	sysFlagTxPrep    = 0x04
	sysFlagTxRoll    = 0x0C

	propKeys    = "KEYS"
	propUniqKey = "UNIQ_KEY"
	propTags    = "TAGS"
)

// parseRecord validates b (exactly one record) and returns a view over it.
func parseRecord(b []byte) (storedRecord, error) {
	if len(b) < minRecordSize || int(binary.BigEndian.Uint32(b)) != len(b) {
		return storedRecord{}, fmt.Errorf("%w: record size", errBadPayload)
	}
	magic := binary.BigEndian.Uint32(b[4:])
	if magic != magicV1 && magic != magicV2 {
		return storedRecord{}, fmt.Errorf("%w: record magic %#x", errBadPayload, magic)
	}
	sys := binary.BigEndian.Uint32(b[offSysFlag:])
	bornLen, storeLen := 8, 8
	if sys&sysFlagBornIPv6 != 0 {
		bornLen = 20
	}
	if sys&sysFlagStoreIPv6 != 0 {
		storeLen = 20
	}
	r := storedRecord{b: b, storeTsOff: offBornHost + bornLen}
	p := r.storeTsOff + 8 + storeLen + 4 + 8 // store ts, store host, reconsume times, prepared offset
	need := func(n int) error {
		if n < 0 || p+n > len(b) {
			return fmt.Errorf("%w: record fields overrun", errBadPayload)
		}
		return nil
	}
	if err := need(4); err != nil {
		return storedRecord{}, err
	}
	bodyLen := int(int32(binary.BigEndian.Uint32(b[p:])))
	p += 4
	if err := need(bodyLen); err != nil {
		return storedRecord{}, err
	}
	p += bodyLen
	topicLen := 0
	if magic == magicV1 {
		if err := need(1); err != nil {
			return storedRecord{}, err
		}
		topicLen = int(b[p])
		p++
	} else {
		if err := need(2); err != nil {
			return storedRecord{}, err
		}
		topicLen = int(binary.BigEndian.Uint16(b[p:]))
		p += 2
	}
	if err := need(topicLen); err != nil {
		return storedRecord{}, err
	}
	r.topic = string(b[p : p+topicLen])
	p += topicLen
	if err := need(2); err != nil {
		return storedRecord{}, err
	}
	propLen := int(binary.BigEndian.Uint16(b[p:]))
	p += 2
	if err := need(propLen); err != nil {
		return storedRecord{}, err
	}
	r.props = b[p : p+propLen]
	if p+propLen != len(b) {
		return storedRecord{}, fmt.Errorf("%w: record has %d trailing bytes", errBadPayload, len(b)-p-propLen)
	}
	return r, nil
}

func (r storedRecord) size() int32     { return int32(len(r.b)) }
func (r storedRecord) queueID() int32  { return int32(binary.BigEndian.Uint32(r.b[offQueueID:])) }
func (r storedRecord) sysFlag() uint32 { return binary.BigEndian.Uint32(r.b[offSysFlag:]) }
func (r storedRecord) queueOffset() int64 {
	return int64(binary.BigEndian.Uint64(r.b[offQueueOffset:]))
}
func (r storedRecord) physOffset() int64 { return int64(binary.BigEndian.Uint64(r.b[offPhysOffset:])) }
func (r storedRecord) storeTimestamp() int64 {
	return int64(binary.BigEndian.Uint64(r.b[r.storeTsOff:]))
}
func (r storedRecord) setQueueOffset(v int64) {
	binary.BigEndian.PutUint64(r.b[offQueueOffset:], uint64(v))
}
func (r storedRecord) setPhysOffset(v int64) {
	binary.BigEndian.PutUint64(r.b[offPhysOffset:], uint64(v))
}
func (r storedRecord) setStoreTimestamp(v int64) {
	binary.BigEndian.PutUint64(r.b[r.storeTsOff:], uint64(v))
}

// dispatchable reports whether the record goes to the ConsumeQueue:
// transaction PREPARED and ROLLBACK records never do (PROTOCOL.md §6.3).
func (r storedRecord) dispatchable() bool {
	t := r.sysFlag() & sysFlagTxMask
	return t != sysFlagTxPrep && t != sysFlagTxRoll
}

// property returns the value of one property ("" if absent).
func (r storedRecord) property(key string) string {
	s := r.props
	for len(s) > 0 {
		end := indexByte(s, 2)
		item := s
		if end >= 0 {
			item, s = s[:end], s[end+1:]
		} else {
			s = nil
		}
		if k := indexByte(item, 1); k > 0 && string(item[:k]) == key {
			return string(item[k+1:])
		}
	}
	return ""
}

// indexKeys returns the IndexFile keys of the record: UNIQ_KEY and every
// space-separated KEYS token.
func (r storedRecord) indexKeys() []string {
	var keys []string
	if u := r.property(propUniqKey); u != "" {
		keys = append(keys, u)
	}
	for _, k := range strings.Fields(r.property(propKeys)) {
		keys = append(keys, k)
	}
	return keys
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
