package message

import (
	"net/netip"
	"strings"
)

// Message is what a producer sends: a topic, a user flag, properties and a
// body (stored as sent, compressed when the sysflag says so).
type Message struct {
	Topic      string
	Flag       int32
	Properties map[string]string
	Body       []byte
}

// Property returns the value of property k, or "" when it is absent.
func (m *Message) Property(k string) string { return m.Properties[k] }

// SetProperty sets property k to v, creating the map if needed.
func (m *Message) SetProperty(k, v string) {
	if m.Properties == nil {
		m.Properties = make(map[string]string)
	}
	m.Properties[k] = v
}

// RemoveProperty deletes property k.
func (m *Message) RemoveProperty(k string) { delete(m.Properties, k) }

// Tags returns the TAGS property.
func (m *Message) Tags() string { return m.Properties[PropertyTags] }

// Keys returns the KEYS property split on spaces, empty keys dropped.
func (m *Message) Keys() []string { return SplitKeys(m.Properties[PropertyKeys]) }

// SplitKeys splits a KEYS value on single spaces (as RocketMQ's index does)
// and drops empty keys.
func SplitKeys(keys string) []string {
	if keys == "" {
		return nil
	}
	out := make([]string, 0, strings.Count(keys, KeySeparator)+1)
	for k := range strings.SplitSeq(keys, KeySeparator) {
		if k != "" {
			out = append(out, k)
		}
	}
	return out
}

// UniqKey returns the client message id (UNIQ_KEY property).
func (m *Message) UniqKey() string { return m.Properties[PropertyUniqKey] }

// Ext is a stored message (a CommitLog record). StoreSize and BodyCRC are
// outputs of encoding: AppendRecord computes them and ignores the values here.
type Ext struct {
	Message
	StoreSize                 int32
	QueueID                   int32
	QueueOffset               int64
	CommitLogOffset           int64 // PHYSICALOFFSET
	SysFlag                   int32
	BornTimestamp             int64
	BornHost                  netip.AddrPort
	StoreTimestamp            int64
	StoreHost                 netip.AddrPort
	ReconsumeTimes            int32
	PreparedTransactionOffset int64
	BodyCRC                   uint32
}

// OffsetMsgID returns the broker-side message id (store host + commit-log
// offset), as clients compute it from the record.
func (e *Ext) OffsetMsgID() string { return OffsetMsgID(e.StoreHost, e.CommitLogOffset) }

// MsgID returns what clients show as the message id: UNIQ_KEY when present,
// else the offsetMsgId.
func (e *Ext) MsgID() string {
	if id := e.UniqKey(); id != "" {
		return id
	}
	return e.OffsetMsgID()
}
