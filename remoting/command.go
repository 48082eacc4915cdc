package remoting

import (
	"fmt"
	"strconv"
	"strings"
)

// SerializeType selects the header encoding of a frame (docs/protocol.md §1.1).
type SerializeType byte

const (
	// SerializeJSON is the JSON header, what the Go client always sends.
	SerializeJSON SerializeType = 0
	// SerializeRocketMQ is the binary header (docs/protocol.md §1.3).
	SerializeRocketMQ SerializeType = 1
)

// Flag bits (docs/protocol.md §1.4).
const (
	flagResponse int32 = 1 << 0
	flagOneway   int32 = 1 << 1
)

// DefaultVersion is the MQVersion ordinal (V4_9_4) stamped on frames this package
// creates; docs/protocol.md §1.5 recommends ≥ 401 so Java tools use modern behaviour.
const DefaultVersion int32 = 401

// DefaultLanguage is the language name written in frames this package creates.
const DefaultLanguage = "JAVA"

// Command is one remoting frame: a request or a response.
type Command struct {
	Code     int32  // request code, or response code in a response
	Language string // "JAVA" etc; server frames say "JAVA"
	Version  int32  // MQVersion ordinal; server responses stamp 401 or higher (docs/protocol.md §1.5)
	Opaque   int32
	Flag     int32
	Remark   string
	// ExtFields are the custom header fields; always strings on the wire.
	ExtFields map[string]string
	Body      []byte
	// BodyParts, when set, are written after Body with writev (net.Buffers) without copying:
	// the broker uses it to send message bytes straight from mmap'd segments.
	BodyParts [][]byte
	// Release, when set, is called exactly once after the frame carrying this command has been
	// written to the socket or dropped (connection closed): it ends BodyParts' lease.
	Release       func()
	SerializeType SerializeType
}

// NewRequest builds a request with the given code, extension fields and body.
// The opaque is assigned when the request is sent.
func NewRequest(code int32, ext map[string]string, body []byte) *Command {
	return &Command{
		Code:      code,
		Language:  DefaultLanguage,
		Version:   DefaultVersion,
		ExtFields: ext,
		Body:      body,
	}
}

// NewResponse builds a response with the given code and remark. The server copies
// the request's opaque, sets the response flag and mirrors the request's serialize
// type when the handler returns it; for out-of-band responses use Command.Reply.
func NewResponse(code int32, remark string) *Command {
	return &Command{
		Code:      code,
		Language:  DefaultLanguage,
		Version:   DefaultVersion,
		Flag:      flagResponse,
		Remark:    remark,
		ExtFields: make(map[string]string),
	}
}

// Reply builds a response to request c: opaque copied, response flag set,
// serialize type mirrored. Use it for responses sent later with Conn.Send.
func (c *Command) Reply(code int32, remark string) *Command {
	r := NewResponse(code, remark)
	r.Opaque = c.Opaque
	r.SerializeType = c.SerializeType
	return r
}

// IsResponse reports whether the response flag (bit 0) is set.
func (c *Command) IsResponse() bool { return c.Flag&flagResponse != 0 }

// IsOneway reports whether the oneway flag (bit 1) is set.
func (c *Command) IsOneway() bool { return c.Flag&flagOneway != 0 }

// MarkOneway sets the oneway flag: the peer must not answer.
func (c *Command) MarkOneway() { c.Flag |= flagOneway }

// markResponse sets the response flag.
func (c *Command) markResponse() { c.Flag |= flagResponse }

// SetExt sets one extension field, allocating the map on demand.
func (c *Command) SetExt(key, value string) {
	if c.ExtFields == nil {
		c.ExtFields = make(map[string]string)
	}
	c.ExtFields[key] = value
}

// Ext returns an extension field, "" when absent.
func (c *Command) Ext(key string) string { return c.ExtFields[key] }

// ExtInt32 parses an int32 extension field. ok is false when the field is absent
// or "" (Go clients send every key, often empty).
func (c *Command) ExtInt32(key string) (v int32, ok bool, err error) {
	s := c.ExtFields[key]
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, false, fmt.Errorf("ext field %q: %q is not an int32", key, s)
	}
	return int32(n), true, nil
}

// ExtInt64 parses an int64 extension field; see ExtInt32.
func (c *Command) ExtInt64(key string) (v int64, ok bool, err error) {
	s := c.ExtFields[key]
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("ext field %q: %q is not an int64", key, s)
	}
	return n, true, nil
}

// ExtBool parses a boolean extension field ("true"/"false", any case); see ExtInt32.
func (c *Command) ExtBool(key string) (v bool, ok bool, err error) {
	s := c.ExtFields[key]
	if s == "" {
		return false, false, nil
	}
	switch {
	case strings.EqualFold(s, "true"):
		return true, true, nil
	case strings.EqualFold(s, "false"):
		return false, true, nil
	}
	return false, false, fmt.Errorf("ext field %q: %q is not a boolean", key, s)
}

// String summarises the command for logs (no body bytes).
func (c *Command) String() string {
	kind, name := "request", CodeName(c.Code)
	if c.IsResponse() {
		kind, name = "response", ResponseCodeName(c.Code)
	}
	return fmt.Sprintf("%s{code=%s opaque=%d flag=%d remark=%q ext=%d body=%d}",
		kind, name, c.Opaque, c.Flag, c.Remark, len(c.ExtFields), c.bodyLen())
}

func (c *Command) bodyLen() int {
	n := len(c.Body)
	for _, p := range c.BodyParts {
		n += len(p)
	}
	return n
}

// release calls Release at most once.
func (c *Command) release() {
	if f := c.Release; f != nil {
		c.Release = nil
		f()
	}
}
