package dledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
	"strconv"
	"strings"
)

// snapshotBlob is the FSM snapshot: metadata, queue offsets and log
// positions only, never message data (docs/raft.md §8 phase 1).
//
//	u32 magic "RMQS"  u8 version
//	u64 appliedIndex  (last entry the FSM applied)
//	u64 raftIndex  u64 raftTerm  (raft's snapshot index/term; 0 if unknown)
//	i64 segmentSize  i64 nextPos (end of raftIndex's record)  i64 minPos
//	u32 nQueues, then per queue: u16 topicLen, topic, i32 qid, i64 maxOffset
//	u32 metaLen, meta
//	u32 CRC32C of everything before
type snapshotBlob struct {
	appliedIndex    uint64
	raftIndex       uint64
	raftTerm        uint64
	segmentSize     int64
	nextPos, minPos int64
	queues          map[queueKey]int64
	meta            []byte
}

const (
	snapshotMagic   = 0x524D5153 // "RMQS"
	snapshotVersion = 1
	// maxSnapshotBytes bounds what Restore reads (metadata only, so small).
	maxSnapshotBytes = 512 << 20
)

var (
	castagnoli     = crc32.MakeTable(crc32.Castagnoli)
	errBadSnapshot = errors.New("dledger: malformed snapshot")
)

func (s *snapshotBlob) encode() []byte {
	keys := make([]queueKey, 0, len(s.queues))
	for k := range s.queues {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].qid < keys[j].qid
	})
	b := make([]byte, 0, 64+len(s.meta)+len(keys)*32)
	b = binary.BigEndian.AppendUint32(b, snapshotMagic)
	b = append(b, snapshotVersion)
	b = binary.BigEndian.AppendUint64(b, s.appliedIndex)
	b = binary.BigEndian.AppendUint64(b, s.raftIndex)
	b = binary.BigEndian.AppendUint64(b, s.raftTerm)
	b = binary.BigEndian.AppendUint64(b, uint64(s.segmentSize))
	b = binary.BigEndian.AppendUint64(b, uint64(s.nextPos))
	b = binary.BigEndian.AppendUint64(b, uint64(s.minPos))
	b = binary.BigEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		t := k.topic
		if len(t) > 0xFFFF {
			t = t[:0xFFFF] // topics are limited to 127 bytes long before this
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(t)))
		b = append(b, t...)
		b = binary.BigEndian.AppendUint32(b, uint32(k.qid))
		b = binary.BigEndian.AppendUint64(b, uint64(s.queues[k]))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.meta)))
	b = append(b, s.meta...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeSnapshot(b []byte) (*snapshotBlob, error) {
	if len(b) < 4+1+6*8+4+4+4 {
		return nil, fmt.Errorf("%w: %d bytes", errBadSnapshot, len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum", errBadSnapshot)
	}
	if binary.BigEndian.Uint32(body) != snapshotMagic || body[4] != snapshotVersion {
		return nil, fmt.Errorf("%w: magic/version", errBadSnapshot)
	}
	r := body[5:]
	u64 := func() uint64 { v := binary.BigEndian.Uint64(r); r = r[8:]; return v }
	s := &snapshotBlob{}
	s.appliedIndex, s.raftIndex, s.raftTerm = u64(), u64(), u64()
	s.segmentSize, s.nextPos, s.minPos = int64(u64()), int64(u64()), int64(u64())
	n := binary.BigEndian.Uint32(r)
	r = r[4:]
	if uint64(n)*14 > uint64(len(r)) { // each queue takes at least 14 bytes
		return nil, fmt.Errorf("%w: %d queues in %d bytes", errBadSnapshot, n, len(r))
	}
	s.queues = make(map[queueKey]int64, n)
	for i := uint32(0); i < n; i++ {
		if len(r) < 2 {
			return nil, fmt.Errorf("%w: queue %d truncated", errBadSnapshot, i)
		}
		tl := int(binary.BigEndian.Uint16(r))
		if len(r) < 2+tl+12 {
			return nil, fmt.Errorf("%w: queue %d truncated", errBadSnapshot, i)
		}
		k := queueKey{topic: string(r[2 : 2+tl]), qid: int32(binary.BigEndian.Uint32(r[2+tl:]))}
		s.queues[k] = int64(binary.BigEndian.Uint64(r[6+tl:]))
		r = r[14+tl:]
	}
	if len(r) < 4 {
		return nil, fmt.Errorf("%w: meta length truncated", errBadSnapshot)
	}
	ml := binary.BigEndian.Uint32(r)
	r = r[4:]
	if uint64(ml) != uint64(len(r)) {
		return nil, fmt.Errorf("%w: meta length %d of %d", errBadSnapshot, ml, len(r))
	}
	s.meta = append([]byte(nil), r...)
	return s, nil
}

// parseSnapshotID extracts term and index from a FileSnapshotStore ID
// ("term-index-millis").
func parseSnapshotID(id string) (term, index uint64, ok bool) {
	parts := strings.Split(id, "-")
	if len(parts) != 3 {
		return 0, 0, false
	}
	t, err1 := strconv.ParseUint(parts[0], 10, 64)
	i, err2 := strconv.ParseUint(parts[1], 10, 64)
	return t, i, err1 == nil && err2 == nil
}
