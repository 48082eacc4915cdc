package indexfile

import "github.com/raftmq/raftmq/message"

// keyHash is RocketMQ's index key hash: abs(String.hashCode), and 0 for
// Integer.MIN_VALUE, whose absolute value overflows.
func keyHash(key string) int32 {
	h := message.JavaStringHashCode(key)
	if h < 0 {
		h = -h
	}
	if h < 0 {
		h = 0
	}
	return h
}
