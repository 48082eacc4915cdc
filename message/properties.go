package message

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// EncodeProperties encodes p as name\x01value\x02 pairs (docs/protocol.md §3.3),
// sorted by name so that equal maps encode to equal bytes. It does not check
// the content; AppendRecord and EncodeBatch do (see ValidateProperties).
func EncodeProperties(p map[string]string) string {
	if len(p) == 0 {
		return ""
	}
	var sb strings.Builder
	sb.Grow(propertiesSize(p))
	var stack [32]string
	for _, k := range sortedKeys(p, stack[:0]) {
		sb.WriteString(k)
		sb.WriteByte(NameValueSeparator)
		sb.WriteString(p[k])
		sb.WriteByte(PropertySeparator)
	}
	return sb.String()
}

// appendProperties appends the encoding of p to dst without allocating for
// maps of up to 32 properties.
func appendProperties(dst []byte, p map[string]string) []byte {
	var stack [32]string
	for _, k := range sortedKeys(p, stack[:0]) {
		dst = append(dst, k...)
		dst = append(dst, NameValueSeparator)
		dst = append(dst, p[k]...)
		dst = append(dst, PropertySeparator)
	}
	return dst
}

func sortedKeys(p map[string]string, keys []string) []string {
	for k := range p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// propertiesSize is the encoded length of p.
func propertiesSize(p map[string]string) int {
	n := 0
	for k, v := range p {
		n += len(k) + len(v) + 2
	}
	return n
}

// ErrPropertiesTooLong reports properties that do not fit the int16 length field.
var ErrPropertiesTooLong = errors.New("message: properties longer than 32767 bytes")

// ValidateProperties checks that p can be encoded and decoded back
// unchanged: no empty name, no separator byte in a name or value, and an
// encoded length of at most MaxPropertiesLength. It returns the encoded length.
func ValidateProperties(p map[string]string) (int, error) {
	n := 0
	for k, v := range p {
		if k == "" {
			return 0, errors.New("message: property with an empty name")
		}
		if strings.ContainsAny(k, "\x01\x02") {
			return 0, fmt.Errorf("message: property name %q contains a separator byte", k)
		}
		if strings.ContainsAny(v, "\x01\x02") {
			return 0, fmt.Errorf("message: value of property %q contains a separator byte", k)
		}
		n += len(k) + len(v) + 2
	}
	if n > MaxPropertiesLength {
		return 0, ErrPropertiesTooLong
	}
	return n, nil
}

// DecodeProperties parses a properties string. Items are separated by \x02
// (a trailing one is optional); each item is split at its first \x01. Items
// without \x01 or with an empty name are skipped, as Java does; an empty
// value is kept. It never fails: garbage yields fewer properties.
func DecodeProperties(s string) map[string]string {
	m := make(map[string]string, strings.Count(s, "\x02")+1)
	for len(s) > 0 {
		item := s
		if i := strings.IndexByte(s, PropertySeparator); i >= 0 {
			item, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		if i := strings.IndexByte(item, NameValueSeparator); i > 0 {
			m[item[:i]] = item[i+1:]
		}
	}
	return m
}

// decodePropertiesBytes is DecodeProperties over bytes; it copies each
// name and value once.
func decodePropertiesBytes(b []byte) map[string]string {
	if len(b) == 0 {
		return map[string]string{}
	}
	return DecodeProperties(string(b))
}

// lookupProperty scans encoded properties for key without allocating and
// returns the value bytes (aliasing b) and whether key was found. The last
// occurrence wins, as when decoding into a map.
func lookupProperty(b []byte, key string) ([]byte, bool) {
	var (
		val   []byte
		found bool
	)
	for len(b) > 0 {
		item := b
		if i := bytes.IndexByte(b, PropertySeparator); i >= 0 {
			item, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		i := bytes.IndexByte(item, NameValueSeparator)
		if i > 0 && string(item[:i]) == key {
			val, found = item[i+1:], true
		}
	}
	return val, found
}
