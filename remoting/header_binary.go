package remoting

import (
	"encoding/binary"
	"fmt"
	"math"
)

// languageNames maps the binary language byte to its name (docs/protocol.md §1.3).
var languageNames = [...]string{"JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY",
	"OTHER", "HTTP", "GO", "PHP", "OMS", "RUST", "NODE_JS"}

const languageOther = 7

func languageCode(name string) byte {
	for i, n := range languageNames {
		if n == name {
			return byte(i)
		}
	}
	if name == "" {
		return 0
	}
	return languageOther
}

func languageName(code byte) string {
	if int(code) < len(languageNames) {
		return languageNames[code]
	}
	return languageNames[languageOther]
}

// rocketMQFixedLen is the fixed part of the binary header, ext length included.
const rocketMQFixedLen = 21

func (c *Command) appendRocketMQHeader(dst []byte) ([]byte, error) {
	if c.Code < math.MinInt16 || c.Code > math.MaxInt16 {
		return dst, fmt.Errorf("remoting: code %d does not fit the binary header", c.Code)
	}
	if c.Version < math.MinInt16 || c.Version > math.MaxInt16 {
		return dst, fmt.Errorf("remoting: version %d does not fit the binary header", c.Version)
	}
	extLen := 0
	for k, v := range c.ExtFields {
		if len(k) > math.MaxInt16 {
			return dst, fmt.Errorf("remoting: ext key of %d bytes does not fit the binary header", len(k))
		}
		extLen += 2 + len(k) + 4 + len(v)
	}
	if extLen > maxHeaderLen || len(c.Remark) > maxHeaderLen {
		return dst, fmt.Errorf("remoting: binary header too large")
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(c.Code)))
	dst = append(dst, languageCode(c.Language))
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(c.Version)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.Opaque))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.Flag))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.Remark)))
	dst = append(dst, c.Remark...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(extLen))
	for k, v := range c.ExtFields {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(k)))
		dst = append(dst, k...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		dst = append(dst, v...)
	}
	return dst, nil
}

// decodeRocketMQHeader decodes the binary header. Every length is checked
// against the bytes present before it is used; strings are substrings of one
// copy of the header.
func decodeRocketMQHeader(header []byte, cmd *Command) error {
	if len(header) < rocketMQFixedLen {
		return frameErrorf("binary header of %d bytes is shorter than %d", len(header), rocketMQFixedLen)
	}
	s := string(header)
	be := binary.BigEndian
	cmd.Code = int32(int16(be.Uint16(header[0:])))
	cmd.Language = languageName(header[2])
	cmd.Version = int32(int16(be.Uint16(header[3:])))
	cmd.Opaque = int32(be.Uint32(header[5:]))
	cmd.Flag = int32(be.Uint32(header[9:]))
	pos := 13
	remarkLen := int64(int32(be.Uint32(header[pos:])))
	pos += 4
	if remarkLen < 0 || remarkLen > int64(len(header)-pos-4) {
		return frameErrorf("binary header: remark length %d exceeds the header", remarkLen)
	}
	cmd.Remark = s[pos : pos+int(remarkLen)]
	pos += int(remarkLen)
	extLen := int64(int32(be.Uint32(header[pos:])))
	pos += 4
	if extLen < 0 || extLen > int64(len(header)-pos) {
		return frameErrorf("binary header: ext length %d exceeds the header", extLen)
	}
	if pos+int(extLen) != len(header) {
		return frameErrorf("binary header: %d trailing bytes", len(header)-pos-int(extLen))
	}
	end := pos + int(extLen)
	if extLen > 0 {
		cmd.ExtFields = make(map[string]string, 16)
	}
	for pos < end {
		if end-pos < 2 {
			return frameErrorf("binary header: truncated ext key length")
		}
		keyLen := int(int16(be.Uint16(header[pos:])))
		pos += 2
		if keyLen < 0 || keyLen > end-pos {
			return frameErrorf("binary header: ext key length %d exceeds the ext block", keyLen)
		}
		key := s[pos : pos+keyLen]
		pos += keyLen
		if end-pos < 4 {
			return frameErrorf("binary header: truncated ext value length")
		}
		valLen := int64(int32(be.Uint32(header[pos:])))
		pos += 4
		if valLen < 0 || valLen > int64(end-pos) {
			return frameErrorf("binary header: ext value length %d exceeds the ext block", valLen)
		}
		if _, dup := cmd.ExtFields[key]; !dup && len(cmd.ExtFields) >= MaxExtFields {
			return frameErrorf("binary header: more than %d ext fields", MaxExtFields)
		}
		cmd.ExtFields[key] = s[pos : pos+int(valLen)]
		pos += int(valLen)
	}
	return nil
}
