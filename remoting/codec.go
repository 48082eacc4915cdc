package remoting

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
)

// DefaultMaxFrameSize is the largest frame accepted by default (Java's frameMaxLength).
const DefaultMaxFrameSize = 16 << 20

// maxHeaderLen is the largest header the 24-bit length field can describe.
const maxHeaderLen = 1<<24 - 1

// MaxExtFields caps the number of extension fields decoded from one header, so a
// header of many tiny keys cannot make the map cost a large multiple of the frame.
const MaxExtFields = 1024

// initialFrameChunk bounds the first allocation of the frame reader: bigger frames
// grow their buffer only as their bytes actually arrive.
const initialFrameChunk = 64 << 10

// FrameError reports a frame that cannot be decoded: bad lengths, an unknown
// serialize type or a malformed header. A connection that produced one is closed.
type FrameError struct {
	Reason string
}

func (e *FrameError) Error() string { return "remoting: bad frame: " + e.Reason }

func frameErrorf(format string, args ...any) *FrameError {
	return &FrameError{Reason: fmt.Sprintf(format, args...)}
}

// MarshalFrame appends the full frame (length prefix included) to dst.
// BodyParts, if any, are copied after Body; use FrameBuffers to avoid the copy.
func (c *Command) MarshalFrame(dst []byte) ([]byte, error) {
	start := len(dst)
	dst, err := c.appendFramePrefix(dst)
	if err != nil {
		return dst[:start], err
	}
	dst = append(dst, c.Body...)
	for _, p := range c.BodyParts {
		dst = append(dst, p...)
	}
	return dst, nil
}

// FrameBuffers returns the frame as buffers: length prefix and header, then Body,
// then each of BodyParts, which are not copied.
func (c *Command) FrameBuffers() (net.Buffers, error) {
	head, err := c.appendFramePrefix(make([]byte, 0, c.headerSizeHint()))
	if err != nil {
		return nil, err
	}
	bufs := make(net.Buffers, 0, 2+len(c.BodyParts))
	bufs = append(bufs, head)
	if len(c.Body) > 0 {
		bufs = append(bufs, c.Body)
	}
	for _, p := range c.BodyParts {
		if len(p) > 0 {
			bufs = append(bufs, p)
		}
	}
	return bufs, nil
}

// headerSizeHint estimates the encoded frame prefix so it is allocated once.
func (c *Command) headerSizeHint() int {
	n := 128 + len(c.Remark) + len(c.Language)
	for k, v := range c.ExtFields {
		n += len(k) + len(v) + 8
	}
	return n + n/16 // room for a few escapes
}

// appendFramePrefix appends frame length, header word and header.
func (c *Command) appendFramePrefix(dst []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	var err error
	switch c.SerializeType {
	case SerializeJSON:
		dst = c.appendJSONHeader(dst)
	case SerializeRocketMQ:
		dst, err = c.appendRocketMQHeader(dst)
	default:
		err = fmt.Errorf("remoting: unknown serialize type %d", c.SerializeType)
	}
	if err != nil {
		return dst[:start], err
	}
	headerLen := len(dst) - start - 8
	if headerLen > maxHeaderLen {
		return dst[:start], fmt.Errorf("remoting: header of %d bytes exceeds the 24-bit limit", headerLen)
	}
	frameLen := int64(4) + int64(headerLen) + int64(c.bodyLen())
	if frameLen > math.MaxInt32 {
		return dst[:start], fmt.Errorf("remoting: frame of %d bytes exceeds the int32 limit", frameLen)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(frameLen))
	binary.BigEndian.PutUint32(dst[start+4:], uint32(c.SerializeType)<<24|uint32(headerLen))
	return dst, nil
}

// ReadCommand reads one frame from r. Frames longer than maxFrame (DefaultMaxFrameSize
// when ≤ 0), lengths that lie, and malformed headers yield a *FrameError; the
// buffer grows with the bytes received, never ahead of them beyond a small chunk.
// A clean EOF before the first byte returns io.EOF.
func ReadCommand(r *bufio.Reader, maxFrame int) (*Command, error) {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrameSize
	}
	var lenBuf [4]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, frameErrorf("truncated length prefix")
		}
		return nil, err
	}
	frameLen := int64(binary.BigEndian.Uint32(lenBuf[:]))
	if frameLen < 4 {
		return nil, frameErrorf("frame length %d is shorter than the header word", frameLen)
	}
	if frameLen > int64(maxFrame) {
		return nil, frameErrorf("frame length %d exceeds the limit of %d", frameLen, maxFrame)
	}
	n := int(frameLen)
	// Validate the header word before trusting the rest of the length.
	word, err := r.Peek(4)
	if err != nil {
		return nil, truncated(err)
	}
	if err := checkHeaderWord(binary.BigEndian.Uint32(word), n); err != nil {
		return nil, err
	}
	frame, err := readGrowing(r, n)
	if err != nil {
		return nil, err
	}
	return DecodeFrame(frame)
}

// readGrowing reads exactly n bytes, growing the buffer as data arrives.
func readGrowing(r io.Reader, n int) ([]byte, error) {
	if n <= initialFrameChunk {
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, truncated(err)
		}
		return buf, nil
	}
	buf := make([]byte, 0, initialFrameChunk)
	for len(buf) < n {
		if len(buf) == cap(buf) {
			newCap := min(2*cap(buf), n)
			grown := make([]byte, len(buf), newCap)
			copy(grown, buf)
			buf = grown
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < n {
			return nil, truncated(err)
		}
	}
	return buf, nil
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return frameErrorf("truncated frame")
	}
	return err
}

func checkHeaderWord(word uint32, frameLen int) error {
	st := SerializeType(word >> 24)
	if st != SerializeJSON && st != SerializeRocketMQ {
		return frameErrorf("unknown serialize type %d", st)
	}
	if h := int(word & maxHeaderLen); h > frameLen-4 {
		return frameErrorf("header length %d exceeds frame length %d", h, frameLen)
	}
	return nil
}

// DecodeFrame decodes a frame without its 4-byte length prefix. Body aliases frame.
func DecodeFrame(frame []byte) (*Command, error) {
	if len(frame) < 4 {
		return nil, frameErrorf("frame of %d bytes has no header word", len(frame))
	}
	word := binary.BigEndian.Uint32(frame)
	if err := checkHeaderWord(word, len(frame)); err != nil {
		return nil, err
	}
	headerLen := int(word & maxHeaderLen)
	header := frame[4 : 4+headerLen]
	cmd := &Command{SerializeType: SerializeType(word >> 24)}
	var err error
	if cmd.SerializeType == SerializeJSON {
		err = decodeJSONHeader(header, cmd)
	} else {
		err = decodeRocketMQHeader(header, cmd)
	}
	if err != nil {
		return nil, err
	}
	if body := frame[4+headerLen:]; len(body) > 0 {
		cmd.Body = body[:len(body):len(body)]
	}
	return cmd, nil
}
