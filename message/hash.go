package message

import "unicode/utf8"

// JavaStringHashCode is Java's String.hashCode of s: s[0]*31^(n-1) + ... over
// the UTF-16 code units of s, in int32 arithmetic. Invalid UTF-8 bytes count
// as U+FFFD each (Java's decoder may merge a malformed sequence into fewer).
func JavaStringHashCode(s string) int32 {
	var h int32
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			h = 31*h + int32(c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		h = hashRune(h, r)
		i += n
	}
	return h
}

// javaHashBytes is JavaStringHashCode of string(b), without converting.
func javaHashBytes(b []byte) int32 {
	var h int32
	for i := 0; i < len(b); {
		if c := b[i]; c < utf8.RuneSelf {
			h = 31*h + int32(c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		h = hashRune(h, r)
		i += n
	}
	return h
}

// hashRune folds the UTF-16 code units of r (a surrogate pair above U+FFFF)
// into h.
func hashRune(h int32, r rune) int32 {
	if r > 0xFFFF {
		r -= 0x10000
		h = 31*h + int32(0xD800+(r>>10))
		return 31*h + int32(0xDC00+(r&0x3FF))
	}
	return 31*h + int32(r)
}

// TagsHashCode is the consume-queue tagsCode RocketMQ stores for a message's
// TAGS: 0 for no tag, else the tag's Java hash code.
func TagsHashCode(tags string) int64 {
	if tags == "" {
		return 0
	}
	return int64(JavaStringHashCode(tags))
}
