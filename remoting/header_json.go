package remoting

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// The JSON header is encoded by hand: it is on every send and pull, and
// encoding/json's reflection costs several times more (see the benchmarks).

func (c *Command) appendJSONHeader(dst []byte) []byte {
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(c.Code), 10)
	dst = append(dst, `,"language":`...)
	lang := c.Language
	if lang == "" {
		lang = DefaultLanguage
	}
	dst = appendJSONString(dst, lang)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, int64(c.Version), 10)
	dst = append(dst, `,"opaque":`...)
	dst = strconv.AppendInt(dst, int64(c.Opaque), 10)
	dst = append(dst, `,"flag":`...)
	dst = strconv.AppendInt(dst, int64(c.Flag), 10)
	dst = append(dst, `,"remark":`...)
	dst = appendJSONString(dst, c.Remark)
	// extFields is always present: Java NPEs on a response without it (docs/protocol.md G24).
	dst = append(dst, `,"extFields":{`...)
	first := true
	for k, v := range c.ExtFields {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		dst = appendJSONString(dst, v)
	}
	return append(dst, '}', '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Control characters are escaped,
// and invalid UTF-8 becomes U+FFFD, as encoding/json does.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b >= 0x20 && b != '"' && b != '\\' && b < utf8.RuneSelf {
			i++
			continue
		}
		if b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// maxJSONDepth bounds nesting of unknown values we skip over.
const maxJSONDepth = 64

// jsonHeaderParser decodes the JSON header. It works on one string copy of the
// header, so unescaped keys and values are substrings of it: one allocation for
// all of them.
type jsonHeaderParser struct {
	s string
	i int
}

func decodeJSONHeader(header []byte, cmd *Command) error {
	p := jsonHeaderParser{s: string(header)}
	if err := p.parse(cmd); err != nil {
		return err
	}
	return nil
}

func (p *jsonHeaderParser) errorf(format string, args ...any) *FrameError {
	return frameErrorf("json header at byte %d: "+format, append([]any{p.i}, args...)...)
}

func (p *jsonHeaderParser) skipWS() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// consume skips whitespace and then expects byte b.
func (p *jsonHeaderParser) consume(b byte) error {
	p.skipWS()
	if p.i >= len(p.s) {
		return p.errorf("unexpected end, want %q", b)
	}
	if p.s[p.i] != b {
		return p.errorf("unexpected %q, want %q", p.s[p.i], b)
	}
	p.i++
	return nil
}

func (p *jsonHeaderParser) peek() byte {
	p.skipWS()
	if p.i >= len(p.s) {
		return 0
	}
	return p.s[p.i]
}

func (p *jsonHeaderParser) parse(cmd *Command) error {
	if err := p.consume('{'); err != nil {
		return err
	}
	if p.peek() == '}' {
		p.i++
	} else {
		for {
			if p.peek() != '"' {
				return p.errorf("object key must be a string")
			}
			key, err := p.parseString()
			if err != nil {
				return err
			}
			if err := p.consume(':'); err != nil {
				return err
			}
			if err := p.parseField(key, cmd); err != nil {
				return err
			}
			p.skipWS()
			if p.i >= len(p.s) {
				return p.errorf("unterminated object")
			}
			c := p.s[p.i]
			p.i++
			if c == '}' {
				break
			}
			if c != ',' {
				return p.errorf("unexpected %q after value", c)
			}
			p.skipWS()
		}
	}
	p.skipWS()
	if p.i != len(p.s) {
		return p.errorf("trailing data after header object")
	}
	return nil
}

func (p *jsonHeaderParser) parseField(key string, cmd *Command) error {
	var err error
	switch key {
	case "code":
		cmd.Code, err = p.parseInt32(key)
	case "version":
		cmd.Version, err = p.parseInt32(key)
	case "opaque":
		cmd.Opaque, err = p.parseInt32(key)
	case "flag":
		cmd.Flag, err = p.parseInt32(key)
	case "language":
		cmd.Language, err = p.parseNullableString(key)
	case "remark":
		cmd.Remark, err = p.parseNullableString(key)
	case "extFields":
		err = p.parseExtFields(cmd)
	default:
		_, err = p.skipValue(0)
	}
	return err
}

func (p *jsonHeaderParser) parseInt32(key string) (int32, error) {
	if p.peek() == 'n' {
		return 0, p.literal("null")
	}
	start := p.i
	if _, err := p.skipNumber(); err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(p.s[start:p.i], 10, 32)
	if err != nil {
		return 0, p.errorf("%q: %q is not an int32", key, p.s[start:p.i])
	}
	return int32(v), nil
}

func (p *jsonHeaderParser) parseNullableString(key string) (string, error) {
	switch p.peek() {
	case '"':
		return p.parseString()
	case 'n':
		return "", p.literal("null")
	}
	return "", p.errorf("%q must be a string", key)
}

// parseExtFields decodes the extFields object. Values may be strings, numbers,
// booleans or nested JSON (kept as text); null values are skipped as Java does.
func (p *jsonHeaderParser) parseExtFields(cmd *Command) error {
	switch p.peek() {
	case 'n':
		return p.literal("null")
	case '{':
		p.i++
	default:
		return p.errorf("extFields must be an object")
	}
	if cmd.ExtFields == nil {
		// Each field has a ':'; values may add a few more. Sizing the map once
		// avoids both growth and a large map for a 3-field response.
		hint := min(strings.Count(p.s[p.i:], ":"), MaxExtFields)
		cmd.ExtFields = make(map[string]string, hint)
	}
	if p.peek() == '}' {
		p.i++
		return nil
	}
	for {
		if p.peek() != '"' {
			return p.errorf("extFields key must be a string")
		}
		key, err := p.parseString()
		if err != nil {
			return err
		}
		if err := p.consume(':'); err != nil {
			return err
		}
		var val string
		isNull := false
		switch p.peek() {
		case '"':
			val, err = p.parseString()
		case 'n':
			isNull = true
			err = p.literal("null")
		default:
			var start int
			start, err = p.skipValue(0)
			val = p.s[start:p.i]
		}
		if err != nil {
			return err
		}
		if !isNull {
			if _, dup := cmd.ExtFields[key]; !dup && len(cmd.ExtFields) >= MaxExtFields {
				return p.errorf("more than %d extFields", MaxExtFields)
			}
			cmd.ExtFields[key] = val
		}
		p.skipWS()
		if p.i >= len(p.s) {
			return p.errorf("unterminated extFields")
		}
		c := p.s[p.i]
		p.i++
		if c == '}' {
			return nil
		}
		if c != ',' {
			return p.errorf("unexpected %q in extFields", c)
		}
	}
}

func (p *jsonHeaderParser) literal(word string) error {
	if len(p.s)-p.i < len(word) || p.s[p.i:p.i+len(word)] != word {
		return p.errorf("invalid literal")
	}
	p.i += len(word)
	return nil
}

// skipValue skips any JSON value and returns where it started.
func (p *jsonHeaderParser) skipValue(depth int) (int, error) {
	if depth > maxJSONDepth {
		return 0, p.errorf("nesting deeper than %d", maxJSONDepth)
	}
	p.skipWS()
	start := p.i
	if p.i >= len(p.s) {
		return start, p.errorf("unexpected end, want a value")
	}
	switch c := p.s[p.i]; {
	case c == '"':
		_, err := p.scanString()
		return start, err
	case c == 't':
		return start, p.literal("true")
	case c == 'f':
		return start, p.literal("false")
	case c == 'n':
		return start, p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.skipNumber()
	case c == '{' || c == '[':
		return start, p.skipContainer(c, depth)
	default:
		return start, p.errorf("unexpected %q, want a value", c)
	}
}

func (p *jsonHeaderParser) skipContainer(open byte, depth int) error {
	close := byte('}')
	if open == '[' {
		close = ']'
	}
	p.i++
	if p.peek() == close {
		p.i++
		return nil
	}
	for {
		if open == '{' {
			if p.peek() != '"' {
				return p.errorf("object key must be a string")
			}
			if _, err := p.scanString(); err != nil {
				return err
			}
			if err := p.consume(':'); err != nil {
				return err
			}
		}
		if _, err := p.skipValue(depth + 1); err != nil {
			return err
		}
		p.skipWS()
		if p.i >= len(p.s) {
			return p.errorf("unterminated container")
		}
		c := p.s[p.i]
		p.i++
		if c == close {
			return nil
		}
		if c != ',' {
			return p.errorf("unexpected %q in container", c)
		}
	}
}

// skipNumber skips a JSON number (RFC 8259 grammar) and returns where it started.
func (p *jsonHeaderParser) skipNumber() (int, error) {
	p.skipWS()
	start := p.i
	s := p.s
	i := p.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if digits() == 0 {
		p.i = i
		return start, p.errorf("invalid number")
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			p.i = i
			return start, p.errorf("invalid number")
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			p.i = i
			return start, p.errorf("invalid number")
		}
	}
	p.i = i
	return start, nil
}

// scanString moves past a string starting at p.i and reports whether it has escapes.
func (p *jsonHeaderParser) scanString() (escaped bool, err error) {
	i := p.i + 1
	for i < len(p.s) {
		switch p.s[i] {
		case '"':
			p.i = i + 1
			return escaped, nil
		case '\\':
			escaped = true
			i += 2
		default:
			i++
		}
	}
	p.i = len(p.s)
	return false, p.errorf("unterminated string")
}

// parseString decodes the string starting at p.i. Without escapes it is a
// substring of the header copy (no allocation).
func (p *jsonHeaderParser) parseString() (string, error) {
	start := p.i
	escaped, err := p.scanString()
	if err != nil {
		return "", err
	}
	raw := p.s[start+1 : p.i-1]
	if !escaped {
		return raw, nil
	}
	return p.unescape(raw)
}

func (p *jsonHeaderParser) unescape(raw string) (string, error) {
	// strings.Builder hands its buffer over as the string: one allocation.
	var out strings.Builder
	out.Grow(len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			j := strings.IndexByte(raw[i:], '\\')
			if j < 0 {
				j = len(raw) - i
			}
			out.WriteString(raw[i : i+j])
			i += j
			continue
		}
		if i+1 >= len(raw) {
			return "", p.errorf("bad escape at end of string")
		}
		e := raw[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
			out.WriteByte(e)
		case 'b':
			out.WriteByte('\b')
		case 'f':
			out.WriteByte('\f')
		case 'n':
			out.WriteByte('\n')
		case 'r':
			out.WriteByte('\r')
		case 't':
			out.WriteByte('\t')
		case 'u':
			r, ok := hex4(raw, i)
			if !ok {
				return "", p.errorf("bad \\u escape")
			}
			i += 4
			if r >= 0xD800 && r < 0xDC00 {
				// High surrogate: combine with a following low surrogate if present.
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if lo, ok := hex4(raw, i+2); ok && lo >= 0xDC00 && lo < 0xE000 {
						r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			} else if r >= 0xDC00 && r < 0xE000 {
				r = utf8.RuneError
			}
			out.WriteRune(r)
		default:
			return "", p.errorf("bad escape \\%c", e)
		}
	}
	return out.String(), nil
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}
