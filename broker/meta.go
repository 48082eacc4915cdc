package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Topic permission bits (RocketMQ PermName).
const (
	PermPriority = 8
	PermRead     = 4
	PermWrite    = 2
	PermInherit  = 1
)

// TopicConfig is RocketMQ's TopicConfig, JSON field names included.
type TopicConfig struct {
	TopicName       string            `json:"topicName"`
	ReadQueueNums   int32             `json:"readQueueNums"`
	WriteQueueNums  int32             `json:"writeQueueNums"`
	Perm            int32             `json:"perm"`
	TopicFilterType string            `json:"topicFilterType"`
	TopicSysFlag    int32             `json:"topicSysFlag"`
	Order           bool              `json:"order"`
	Attributes      map[string]string `json:"attributes"`
}

// QueueCount is the number of queues that exist for reads or writes.
func (t TopicConfig) QueueCount() int32 {
	if t.ReadQueueNums > t.WriteQueueNums {
		return t.ReadQueueNums
	}
	return t.WriteQueueNums
}

// GroupConfig is RocketMQ's SubscriptionGroupConfig.
type GroupConfig struct {
	GroupName                      string            `json:"groupName"`
	ConsumeEnable                  bool              `json:"consumeEnable"`
	ConsumeFromMinEnable           bool              `json:"consumeFromMinEnable"`
	ConsumeBroadcastEnable         bool              `json:"consumeBroadcastEnable"`
	ConsumeMessageOrderly          bool              `json:"consumeMessageOrderly"`
	RetryQueueNums                 int32             `json:"retryQueueNums"`
	RetryMaxTimes                  int32             `json:"retryMaxTimes"`
	BrokerID                       int64             `json:"brokerId"`
	WhichBrokerWhenConsumeSlowly   int64             `json:"whichBrokerWhenConsumeSlowly"`
	NotifyConsumerIdsChangedEnable bool              `json:"notifyConsumerIdsChangedEnable"`
	GroupSysFlag                   int32             `json:"groupSysFlag"`
	ConsumeTimeoutMinute           int32             `json:"consumeTimeoutMinute"`
	Attributes                     map[string]string `json:"attributes"`
}

// DefaultGroupConfig is the configuration of an auto-created group (Java defaults).
func DefaultGroupConfig(name string) GroupConfig {
	return GroupConfig{
		GroupName: name, ConsumeEnable: true, ConsumeFromMinEnable: true, ConsumeBroadcastEnable: true,
		RetryQueueNums: 1, RetryMaxTimes: 16, WhichBrokerWhenConsumeSlowly: 1,
		NotifyConsumerIdsChangedEnable: true, ConsumeTimeoutMinute: 15, Attributes: map[string]string{},
	}
}

// OffsetCommit is one consumer offset: the next offset group will consume
// from (topic, queue).
type OffsetCommit struct {
	Group  string `json:"g"`
	Topic  string `json:"t"`
	Queue  int32  `json:"q"`
	Offset int64  `json:"o"`
}

// metaOp names a replicated metadata operation.
type metaOp string

const (
	opPutTopics    metaOp = "topics.put"
	opDeleteTopic  metaOp = "topic.delete"
	opPutGroups    metaOp = "groups.put"
	opDeleteGroup  metaOp = "group.delete"
	opCommitOffset metaOp = "offsets.commit"
	opPutKV        metaOp = "kv.put"
	// opPutMember records a member's addresses in the member directory; a
	// new leader proposes its own entry once its write gate is open.
	opPutMember metaOp = "member.put"
)

// Member is one entry of the replicated member directory: where a member of
// the group serves clients and where the other members forward writes to.
// Term is the term in which the member proposed the entry as leader.
type Member struct {
	ID         string `json:"id"`
	Term       uint64 `json:"term"`
	ClientAddr string `json:"clientAddr"`
	MemberAddr string `json:"memberAddr"`
}

// metaCommandVersion is the version of the command format; a replica refuses
// commands of a later version instead of misreading them.
const metaCommandVersion = 1

// metaCommand is one Raft metadata entry: compact JSON, versioned.
type metaCommand struct {
	V       int            `json:"v"`
	Op      metaOp         `json:"op"`
	Time    int64          `json:"ts,omitempty"` // proposer's clock, ms: keeps DataVersion deterministic
	Topics  []TopicConfig  `json:"topics,omitempty"`
	Groups  []GroupConfig  `json:"groups,omitempty"`
	Name    string         `json:"name,omitempty"`
	Offsets []OffsetCommit `json:"offsets,omitempty"`
	Key     string         `json:"key,omitempty"`
	Value   []byte         `json:"value,omitempty"`
	Member  *Member        `json:"member,omitempty"`
}

func (c *metaCommand) encode() []byte {
	c.V = metaCommandVersion
	b, err := json.Marshal(c)
	if err != nil {
		// Only plain strings, numbers and maps: Marshal cannot fail.
		panic(err)
	}
	return b
}

// DataVersion is RocketMQ's DataVersion; StateVersion carries the Raft term
// when registering with a namesrv.
type DataVersion struct {
	Timestamp    int64 `json:"timestamp"`
	Counter      int64 `json:"counter"`
	StateVersion int64 `json:"stateVersion"`
}

type offsetKey struct {
	group, topic string
	queue        int32
}

// metaStore is the replicated metadata: topics, subscription groups, consumer
// offsets, a small key/value space for services' progress and the member
// directory (where each member is reached; see forward.go). It implements
// dledger.MetaStateMachine. Every mutation goes through ApplyMeta, so all
// replicas hold the same state.
type metaStore struct {
	mu      sync.RWMutex
	topics  map[string]TopicConfig
	groups  map[string]GroupConfig
	offsets map[offsetKey]int64
	kv      map[string][]byte
	members map[string]Member // member directory by member id
	version DataVersion
	onTopic func() // called after a topic change, outside the lock
	// onMember is called after the member directory changed, outside the lock.
	onMember func()
}

func newMetaStore() *metaStore {
	return &metaStore{
		topics:  map[string]TopicConfig{},
		groups:  map[string]GroupConfig{},
		offsets: map[offsetKey]int64{},
		kv:      map[string][]byte{},
		members: map[string]Member{},
	}
}

// errBadMetaCommand is the result of an entry that does not decode.
var errBadMetaCommand = errors.New("bad metadata command")

// ApplyMeta applies one committed metadata entry. It never panics on bad
// input: a bad entry changes nothing and yields an error result.
func (m *metaStore) ApplyMeta(index uint64, data []byte) interface{} {
	var c metaCommand
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("%w: %v", errBadMetaCommand, err)
	}
	if c.V != metaCommandVersion {
		return fmt.Errorf("%w: version %d", errBadMetaCommand, c.V)
	}
	topicChanged, memberChanged := false, false
	m.mu.Lock()
	switch c.Op {
	case opPutTopics:
		for _, t := range c.Topics {
			if t.TopicName == "" {
				continue
			}
			if t.Attributes == nil {
				t.Attributes = map[string]string{}
			}
			m.topics[t.TopicName] = t
			topicChanged = true
		}
	case opDeleteTopic:
		if _, ok := m.topics[c.Name]; ok {
			delete(m.topics, c.Name)
			topicChanged = true
		}
		for k := range m.offsets {
			if k.topic == c.Name {
				delete(m.offsets, k)
			}
		}
	case opPutGroups:
		for _, g := range c.Groups {
			if g.GroupName != "" {
				m.groups[g.GroupName] = g
			}
		}
	case opDeleteGroup:
		delete(m.groups, c.Name)
		for k := range m.offsets {
			if k.group == c.Name {
				delete(m.offsets, k)
			}
		}
	case opCommitOffset:
		for _, o := range c.Offsets {
			if o.Offset >= 0 && o.Queue >= 0 {
				m.offsets[offsetKey{o.Group, o.Topic, o.Queue}] = o.Offset
			}
		}
	case opPutKV:
		if c.Value == nil {
			delete(m.kv, c.Key)
		} else {
			m.kv[c.Key] = c.Value
		}
	case opPutMember:
		e := c.Member
		if e == nil || e.ID == "" || e.MemberAddr == "" {
			m.mu.Unlock()
			return fmt.Errorf("%w: member entry without id or memberAddr", errBadMetaCommand)
		}
		// An entry of an older term never replaces a newer one.
		if old, ok := m.members[e.ID]; !ok || old.Term <= e.Term {
			m.members[e.ID] = *e
			memberChanged = true
		}
	default:
		m.mu.Unlock()
		return fmt.Errorf("%w: op %q", errBadMetaCommand, c.Op)
	}
	if topicChanged {
		m.version.Counter++
		m.version.Timestamp = c.Time
	}
	cb, mcb := m.onTopic, m.onMember
	m.mu.Unlock()
	if topicChanged && cb != nil {
		cb()
	}
	if memberChanged && mcb != nil {
		mcb()
	}
	return nil
}

// metaSnapshot is the JSON form of the whole metadata.
type metaSnapshot struct {
	V       int                    `json:"v"`
	Version DataVersion            `json:"dataVersion"`
	Topics  map[string]TopicConfig `json:"topics"`
	Groups  map[string]GroupConfig `json:"groups"`
	Offsets []OffsetCommit         `json:"offsets"`
	KV      map[string][]byte      `json:"kv"`
	Members []Member               `json:"members,omitempty"`
}

// SnapshotMeta serialises the metadata.
func (m *metaStore) SnapshotMeta() ([]byte, error) {
	m.mu.RLock()
	s := metaSnapshot{V: metaCommandVersion, Version: m.version, Topics: m.topics, Groups: m.groups, KV: m.kv}
	for k, o := range m.offsets {
		s.Offsets = append(s.Offsets, OffsetCommit{k.group, k.topic, k.queue, o})
	}
	for _, e := range m.members {
		s.Members = append(s.Members, e)
	}
	sort.Slice(s.Members, func(i, j int) bool { return s.Members[i].ID < s.Members[j].ID })
	b, err := json.Marshal(s)
	m.mu.RUnlock()
	return b, err
}

// RestoreMeta replaces the metadata with a snapshot. A snapshot that does not
// decode leaves the current state untouched.
func (m *metaStore) RestoreMeta(data []byte) error {
	var s metaSnapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("metadata snapshot: %w", err)
	}
	if s.V != metaCommandVersion {
		return fmt.Errorf("metadata snapshot: version %d", s.V)
	}
	offsets := make(map[offsetKey]int64, len(s.Offsets))
	for _, o := range s.Offsets {
		offsets[offsetKey{o.Group, o.Topic, o.Queue}] = o.Offset
	}
	if s.Topics == nil {
		s.Topics = map[string]TopicConfig{}
	}
	if s.Groups == nil {
		s.Groups = map[string]GroupConfig{}
	}
	if s.KV == nil {
		s.KV = map[string][]byte{}
	}
	members := make(map[string]Member, len(s.Members))
	for _, e := range s.Members {
		if e.ID != "" && e.MemberAddr != "" {
			members[e.ID] = e
		}
	}
	m.mu.Lock()
	m.topics, m.groups, m.offsets, m.kv, m.version = s.Topics, s.Groups, offsets, s.KV, s.Version
	m.members = members
	cb, mcb := m.onTopic, m.onMember
	m.mu.Unlock()
	if cb != nil {
		cb()
	}
	if mcb != nil {
		mcb()
	}
	return nil
}

// Member returns the directory entry of a member.
func (m *metaStore) Member(id string) (Member, bool) {
	m.mu.RLock()
	e, ok := m.members[id]
	m.mu.RUnlock()
	return e, ok
}

// Members returns the member directory sorted by id.
func (m *metaStore) Members() []Member {
	m.mu.RLock()
	out := make([]Member, 0, len(m.members))
	for _, e := range m.members {
		out = append(out, e)
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Topic returns the configuration of a topic.
func (m *metaStore) Topic(name string) (TopicConfig, bool) {
	m.mu.RLock()
	t, ok := m.topics[name]
	m.mu.RUnlock()
	return t, ok
}

// Topics returns a copy of the topic table and its data version.
func (m *metaStore) Topics() (map[string]TopicConfig, DataVersion) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[string]TopicConfig, len(m.topics))
	for k, v := range m.topics {
		out[k] = v
	}
	return out, m.version
}

// TopicNames returns the sorted topic names.
func (m *metaStore) TopicNames() []string {
	m.mu.RLock()
	out := make([]string, 0, len(m.topics))
	for k := range m.topics {
		out = append(out, k)
	}
	m.mu.RUnlock()
	sort.Strings(out)
	return out
}

// Group returns a subscription group's configuration.
func (m *metaStore) Group(name string) (GroupConfig, bool) {
	m.mu.RLock()
	g, ok := m.groups[name]
	m.mu.RUnlock()
	return g, ok
}

// Groups returns a copy of the subscription group table.
func (m *metaStore) Groups() map[string]GroupConfig {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[string]GroupConfig, len(m.groups))
	for k, v := range m.groups {
		out[k] = v
	}
	return out
}

// Offset returns the committed offset of group on (topic, queue).
func (m *metaStore) Offset(group, topic string, queue int32) (int64, bool) {
	m.mu.RLock()
	o, ok := m.offsets[offsetKey{group, topic, queue}]
	m.mu.RUnlock()
	return o, ok
}

// KV returns a value of the key/value space.
func (m *metaStore) KV(key string) ([]byte, bool) {
	m.mu.RLock()
	v, ok := m.kv[key]
	m.mu.RUnlock()
	return v, ok
}
