package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// batchItemFixed is the size of a batch item with empty body and properties:
// TOTALSIZE, MAGICCODE, BODYCRC, FLAG, BODYLEN (4 each) and PROPLEN (2).
const batchItemFixed = 22

// BatchLimits bound a SEND_BATCH_MESSAGE body before anything is allocated per
// item. A 15 MiB body of 700 000 empty items otherwise costs half a gigabyte
// of decoded messages before any later size check can refuse it.
type BatchLimits struct {
	// MaxBytes caps the whole body. RocketMQ checks a batch's body, not its
	// items, against maxMessageSize, and answers MESSAGE_ILLEGAL beyond it.
	MaxBytes int
	// MaxItems caps the number of items.
	MaxItems int
}

// Defaults of BatchLimits: RocketMQ's default maxMessageSize, and an item count
// that no client batch within it plausibly needs (10 000 items of 4 MiB is
// 420 bytes each) while bounding the per-item cost to a few megabytes.
const (
	DefaultBatchMaxBytes = 4 << 20
	DefaultBatchMaxItems = 10_000
)

// DefaultBatchLimits returns the limits DecodeBatch applies.
func DefaultBatchLimits() BatchLimits {
	return BatchLimits{MaxBytes: DefaultBatchMaxBytes, MaxItems: DefaultBatchMaxItems}
}

// ErrBatchTooLarge is wrapped by the errors of a batch over its BatchLimits.
// Like a malformed batch it is the sender's fault and not worth a retry
// (brokers answer MESSAGE_ILLEGAL, 13).
var ErrBatchTooLarge = errors.New("message: batch too large")

// DecodeBatch is DecodeBatchLimited with DefaultBatchLimits.
func DecodeBatch(body []byte) ([]Message, error) {
	return DecodeBatchLimited(body, DefaultBatchLimits())
}

// DecodeBatchLimited decodes a SEND_BATCH_MESSAGE body (docs/protocol.md §3.5): a
// concatenation of items TOTALSIZE, MAGICCODE, BODYCRC, FLAG, BODYLEN+BODY,
// PROPLEN+PROPERTIES. Magic and CRC are ignored (clients send 0); TOTALSIZE
// must match the item's fields. The returned messages have no topic (the
// request header carries it) and do not alias body.
//
// The body's size is checked first and every item's framing is then walked
// without allocating, so an over-size or malformed batch is refused having
// cost nothing; only then are the messages decoded, into a slice of the exact
// count. Limits ≤ 0 are not applied.
func DecodeBatchLimited(body []byte, limits BatchLimits) ([]Message, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("message: empty batch body")
	}
	if limits.MaxBytes > 0 && len(body) > limits.MaxBytes {
		return nil, fmt.Errorf("%w: body of %d bytes exceeds %d", ErrBatchTooLarge, len(body), limits.MaxBytes)
	}
	count := 0
	for off := 0; off < len(body); count++ {
		if limits.MaxItems > 0 && count == limits.MaxItems {
			return nil, fmt.Errorf("%w: more than %d items", ErrBatchTooLarge, limits.MaxItems)
		}
		it, err := batchItemAt(body, off, count)
		if err != nil {
			return nil, err
		}
		off = it.end
	}
	out := make([]Message, 0, count)
	for off := 0; off < len(body); {
		it, _ := batchItemAt(body, off, len(out)) // validated above
		out = append(out, Message{
			Flag:       it.flag,
			Body:       append([]byte(nil), body[it.bodyStart:it.bodyEnd]...),
			Properties: decodePropertiesBytes(body[it.bodyEnd+2 : it.end]),
		})
		off = it.end
	}
	return out, nil
}

// batchItem locates one batch item's fields inside the batch body.
type batchItem struct {
	flag               int32
	bodyStart, bodyEnd int // the body; the properties follow their 2-byte length
	end                int // offset of the next item
}

// batchItemAt checks the framing of item number n, which starts at off.
func batchItemAt(body []byte, off, n int) (batchItem, error) {
	be := binary.BigEndian
	item := body[off:]
	if len(item) < batchItemFixed {
		return batchItem{}, fmt.Errorf("message: batch item %d at byte %d: %d bytes, need at least %d", n, off, len(item), batchItemFixed)
	}
	total := int64(int32(be.Uint32(item)))
	if total < batchItemFixed || total > int64(len(item)) {
		return batchItem{}, fmt.Errorf("message: batch item %d at byte %d: TOTALSIZE %d with %d bytes available", n, off, total, len(item))
	}
	item = item[:total]
	bodyLen := int64(int32(be.Uint32(item[16:])))
	if bodyLen < 0 || 20+bodyLen+2 > total {
		return batchItem{}, fmt.Errorf("message: batch item %d at byte %d: body length %d overruns TOTALSIZE %d", n, off, bodyLen, total)
	}
	p := 20 + bodyLen
	propLen := int64(int16(be.Uint16(item[p:])))
	if propLen < 0 || p+2+propLen != total {
		return batchItem{}, fmt.Errorf("message: batch item %d at byte %d: properties length %d does not end at TOTALSIZE %d", n, off, propLen, total)
	}
	return batchItem{
		flag:      int32(be.Uint32(item[12:])),
		bodyStart: off + 20,
		bodyEnd:   off + int(p),
		end:       off + int(total),
	}, nil
}

// EncodeBatch encodes msgs as a SEND_BATCH_MESSAGE body, the way clients do
// (MAGICCODE and BODYCRC zero). Topics are not encoded.
func EncodeBatch(msgs []Message) ([]byte, error) {
	size := 0
	for i := range msgs {
		propLen, err := ValidateProperties(msgs[i].Properties)
		if err != nil {
			return nil, fmt.Errorf("message: batch item %d: %w", i, err)
		}
		n := batchItemFixed + propLen
		if len(msgs[i].Body) > math.MaxInt32-n || size > math.MaxInt32-n-len(msgs[i].Body) {
			return nil, fmt.Errorf("message: batch item %d: body of %d bytes too large", i, len(msgs[i].Body))
		}
		size += n + len(msgs[i].Body)
	}
	be := binary.BigEndian
	out := make([]byte, 0, size)
	for i := range msgs {
		m := &msgs[i]
		start := len(out)
		out = be.AppendUint32(out, 0) // TOTALSIZE, patched below
		out = be.AppendUint32(out, 0) // MAGICCODE
		out = be.AppendUint32(out, 0) // BODYCRC
		out = be.AppendUint32(out, uint32(m.Flag))
		out = be.AppendUint32(out, uint32(len(m.Body)))
		out = append(out, m.Body...)
		propStart := len(out) + 2
		out = be.AppendUint16(out, 0)
		out = appendProperties(out, m.Properties)
		be.PutUint16(out[propStart-2:], uint16(len(out)-propStart))
		be.PutUint32(out[start:], uint32(len(out)-start))
	}
	return out, nil
}
