package dledger

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Entry payload (raft.Log.Data of a LogCommand entry), replicated byte for byte:
//
//	0  u8  kind     1 = messages, 2 = meta
//	1  u8  flags    bit0 ASSIGNED, bit1 VOID (messages only; set by the leader's hook)
//	2  u8  version  payloadVersion
//	3  u8  reserved 0
//	4  u32 count    number of message records (messages) / 0 (meta)
//	8  ... records  stored-message records back to back, each starting with its
//	                big-endian TOTALSIZE; or the meta command bytes
const (
	payloadHeaderSize = 8
	payloadVersion    = 1

	kindMessages byte = 1
	kindMeta     byte = 2

	flagAssigned byte = 1 << 0
	flagVoid     byte = 1 << 1

	// minRecordSize is the smallest stored-message record (IPv4 hosts, empty
	// body, topic and properties): 4+4+4+4+4+8+8+4+8+8+8+8+4+8+4+1+2.
	minRecordSize = 91
)

var errBadPayload = errors.New("dledger: malformed entry payload")

// payload is a parsed view of an entry payload; body aliases the input.
type payload struct {
	kind, flags byte
	count       uint32
	body        []byte
}

func parsePayload(data []byte) (payload, error) {
	if len(data) < payloadHeaderSize {
		return payload{}, fmt.Errorf("%w: %d bytes", errBadPayload, len(data))
	}
	p := payload{kind: data[0], flags: data[1], count: binary.BigEndian.Uint32(data[4:8]), body: data[payloadHeaderSize:]}
	if data[2] != payloadVersion {
		return payload{}, fmt.Errorf("%w: version %d", errBadPayload, data[2])
	}
	switch p.kind {
	case kindMessages:
		if p.flags&^(flagAssigned|flagVoid) != 0 || p.flags == flagAssigned|flagVoid {
			return payload{}, fmt.Errorf("%w: flags %#x", errBadPayload, p.flags)
		}
		if uint64(p.count)*minRecordSize > uint64(len(p.body)) {
			return payload{}, fmt.Errorf("%w: %d records in %d bytes", errBadPayload, p.count, len(p.body))
		}
	case kindMeta:
	default:
		return payload{}, fmt.Errorf("%w: kind %d", errBadPayload, p.kind)
	}
	return p, nil
}

// records splits a messages payload body into its records, checking every
// TOTALSIZE against the bytes that are there.
func (p payload) records() ([][]byte, error) {
	out := make([][]byte, 0, p.count)
	b := p.body
	for i := uint32(0); i < p.count; i++ {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: record %d truncated", errBadPayload, i)
		}
		n := binary.BigEndian.Uint32(b)
		if n < minRecordSize || uint64(n) > uint64(len(b)) {
			return nil, fmt.Errorf("%w: record %d size %d of %d", errBadPayload, i, n, len(b))
		}
		out = append(out, b[:n:n])
		b = b[n:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBadPayload, len(b))
	}
	return out, nil
}

// encodeMessages packs records into one messages payload.
func encodeMessages(records [][]byte) []byte {
	n := payloadHeaderSize
	for _, r := range records {
		n += len(r)
	}
	buf := make([]byte, payloadHeaderSize, n)
	buf[0], buf[2] = kindMessages, payloadVersion
	binary.BigEndian.PutUint32(buf[4:], uint32(len(records)))
	for _, r := range records {
		buf = append(buf, r...)
	}
	return buf
}

// encodeMeta wraps a metadata command.
func encodeMeta(cmd []byte) []byte {
	buf := make([]byte, payloadHeaderSize, payloadHeaderSize+len(cmd))
	buf[0], buf[2] = kindMeta, payloadVersion
	return append(buf, cmd...)
}
