package dledger

import (
	"bytes"
	"fmt"

	"github.com/raftmq/raftmq/message"
)

// storedRecord is one RocketMQ stored-message record inside an entry payload,
// with its topic decoded once: the hook and the dispatcher each need it for
// every message. Field access and validation are message.Record's.
type storedRecord struct {
	b     []byte
	topic string
}

// parseRecord validates b (exactly one record) and returns a view over it,
// its topic name taken from names (nil: a fresh string).
func parseRecord(b []byte, names topicNames) (storedRecord, error) {
	r, err := checkRecord(b)
	if err != nil {
		return storedRecord{}, err
	}
	return storedRecord{b: b, topic: names.name(r.TopicBytes())}, nil
}

// checkRecord validates b (exactly one record).
func checkRecord(b []byte) (message.Record, error) {
	r, err := message.ParseRecord(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadPayload, err)
	}
	if len(r) != len(b) {
		return nil, fmt.Errorf("%w: record has %d trailing bytes", errBadPayload, len(b)-len(r))
	}
	return r, nil
}

// maxTopicNames bounds a topicNames table: beyond it the table starts over.
const maxTopicNames = 4096

// topicNames hands out one string per topic name, so that the per-message
// paths (the offset hook, the dispatcher) do not allocate the topic of
// every record. Not safe for concurrent use: each user owns its table.
type topicNames map[string]string

func newTopicNames() topicNames { return make(topicNames) }

func (t topicNames) name(b []byte) string {
	if t == nil {
		return string(b)
	}
	if s, ok := t[string(b)]; ok { // no allocation for the lookup
		return s
	}
	if len(t) >= maxTopicNames {
		clear(t)
	}
	s := string(b)
	t[s] = s
	return s
}

func (r storedRecord) rec() message.Record    { return message.Record(r.b) }
func (r storedRecord) size() int32            { return int32(len(r.b)) }
func (r storedRecord) queueID() int32         { return r.rec().QueueID() }
func (r storedRecord) queueOffset() int64     { return r.rec().QueueOffset() }
func (r storedRecord) physOffset() int64      { return r.rec().PhysicalOffset() }
func (r storedRecord) storeTimestamp() int64  { return r.rec().StoreTimestamp() }
func (r storedRecord) setQueueOffset(v int64) { r.rec().SetQueueOffset(v) }
func (r storedRecord) setPhysOffset(v int64)  { r.rec().SetPhysicalOffset(v) }
func (r storedRecord) setStoreTimestamp(v int64) {
	r.rec().SetStoreTimestamp(v)
}

// dispatchable reports whether the record goes to the ConsumeQueue:
// transaction PREPARED and ROLLBACK records never do (docs/protocol.md §6.3).
func (r storedRecord) dispatchable() bool {
	t := message.TransactionType(r.rec().SysFlag())
	return t != message.TransactionPreparedType && t != message.TransactionRollbackType
}

// property returns the value of one property ("" if absent).
func (r storedRecord) property(key string) string { return r.rec().Property(key) }

// indexKeys returns the IndexFile keys of the record: UNIQ_KEY and every
// space-separated KEYS token.
func (r storedRecord) indexKeys() []string {
	var keys []string
	r.eachIndexKey(func(k []byte) { keys = append(keys, string(k)) })
	return keys
}

// eachIndexKey calls fn with each IndexFile key of the record (UNIQ_KEY,
// then every space-separated KEYS token), aliasing the record: the
// dispatcher indexes every message, so this allocates nothing.
func (r storedRecord) eachIndexKey(fn func(key []byte)) {
	if u, ok := r.rec().PropertyBytes(message.PropertyUniqKey); ok && len(u) > 0 {
		fn(u)
	}
	ks, _ := r.rec().PropertyBytes(message.PropertyKeys)
	for len(ks) > 0 {
		k := ks
		if i := bytes.IndexByte(ks, message.KeySeparator[0]); i >= 0 {
			k, ks = ks[:i], ks[i+1:]
		} else {
			ks = nil
		}
		if len(k) > 0 {
			fn(k)
		}
	}
}
