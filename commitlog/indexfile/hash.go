package indexfile

import "unicode/utf16"

// javaStringHash is Java's String.hashCode: s[0]*31^(n-1) + ... over the
// UTF-16 code units. Go decodes invalid UTF-8 as U+FFFD, as Java's UTF-8
// decoder does, so keys read from message properties hash the same.
func javaStringHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			h = 31*h + hi
			h = 31*h + lo
			continue
		}
		h = 31*h + r
	}
	return h
}

// keyHash is RocketMQ's index key hash: abs(String.hashCode), and 0 for
// Integer.MIN_VALUE, whose absolute value overflows.
func keyHash(key string) int32 {
	h := javaStringHash(key)
	if h < 0 {
		h = -h
	}
	if h < 0 {
		h = 0
	}
	return h
}
