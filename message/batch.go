package message

import (
	"encoding/binary"
	"fmt"
	"math"
)

// batchItemFixed is the size of a batch item with empty body and properties:
// TOTALSIZE, MAGICCODE, BODYCRC, FLAG, BODYLEN (4 each) and PROPLEN (2).
const batchItemFixed = 22

// DecodeBatch decodes a SEND_BATCH_MESSAGE body (PROTOCOL.md §3.5): a
// concatenation of items TOTALSIZE, MAGICCODE, BODYCRC, FLAG, BODYLEN+BODY,
// PROPLEN+PROPERTIES. Magic and CRC are ignored (clients send 0); TOTALSIZE
// must match the item's fields. The returned messages have no topic (the
// request header carries it) and do not alias body.
func DecodeBatch(body []byte) ([]Message, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("message: empty batch body")
	}
	var out []Message
	be := binary.BigEndian
	for off := 0; off < len(body); {
		item := body[off:]
		if len(item) < batchItemFixed {
			return nil, fmt.Errorf("message: batch item %d at byte %d: %d bytes, need at least %d", len(out), off, len(item), batchItemFixed)
		}
		total := int64(int32(be.Uint32(item)))
		if total < batchItemFixed || total > int64(len(item)) {
			return nil, fmt.Errorf("message: batch item %d at byte %d: TOTALSIZE %d with %d bytes available", len(out), off, total, len(item))
		}
		item = item[:total]
		flag := int32(be.Uint32(item[12:]))
		bodyLen := int64(int32(be.Uint32(item[16:])))
		if bodyLen < 0 || 20+bodyLen+2 > total {
			return nil, fmt.Errorf("message: batch item %d at byte %d: body length %d overruns TOTALSIZE %d", len(out), off, bodyLen, total)
		}
		p := 20 + bodyLen
		propLen := int64(int16(be.Uint16(item[p:])))
		if propLen < 0 || p+2+propLen != total {
			return nil, fmt.Errorf("message: batch item %d at byte %d: properties length %d does not end at TOTALSIZE %d", len(out), off, propLen, total)
		}
		out = append(out, Message{
			Flag:       flag,
			Body:       append([]byte(nil), item[20:p]...),
			Properties: decodePropertiesBytes(item[p+2 : p+2+propLen]),
		})
		off += int(total)
	}
	return out, nil
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
