package broker

import (
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/raftmq/raftmq/remoting"
)

// heartbeatData is the HEART_BEAT body (docs/protocol.md §5.3). codeSet and
// subVersion are ignored: tag codes are recomputed from tagsSet (docs/protocol.md G16) and
// the version is not compared (docs/protocol.md G25).
type heartbeatData struct {
	ClientID        string `json:"clientID"`
	ProducerDataSet []struct {
		GroupName string `json:"groupName"`
	} `json:"producerDataSet"`
	ConsumerDataSet []consumerData `json:"consumerDataSet"`
}

type consumerData struct {
	GroupName           string             `json:"groupName"`
	ConsumeType         string             `json:"consumeType"`
	MessageModel        string             `json:"messageModel"`
	ConsumeFromWhere    string             `json:"consumeFromWhere"`
	SubscriptionDataSet []subscriptionData `json:"subscriptionDataSet"`
	UnitMode            bool               `json:"unitMode"`
}

type subscriptionData struct {
	Topic          string `json:"topic"`
	SubString      string `json:"subString"`
	ExpressionType string `json:"expressionType"`
}

// maxHeartbeatGroups bounds what one heartbeat may register.
const maxHeartbeatGroups = 1024

func decodeHeartbeat(body []byte) (heartbeatData, error) {
	var hb heartbeatData
	if err := json.Unmarshal(body, &hb); err != nil {
		return hb, err
	}
	if hb.ClientID == "" {
		return hb, errors.New("heartbeat without clientID")
	}
	if len(hb.ConsumerDataSet)+len(hb.ProducerDataSet) > maxHeartbeatGroups {
		return hb, errors.New("heartbeat registers too many groups")
	}
	return hb, nil
}

// clientChannel is one client connection of a group.
type clientChannel struct {
	conn     *remoting.Conn
	clientID string
	lastSeen time.Time
}

// consumerGroupInfo is what heartbeats tell about one consumer group.
type consumerGroupInfo struct {
	channels     map[uint64]*clientChannel // by connection id
	subs         map[string]string         // topic -> subscription expression
	messageModel string
	consumeType  string
}

func (g *consumerGroupInfo) clientIDs() []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(g.channels))
	for _, c := range g.channels {
		if !seen[c.clientID] {
			seen[c.clientID] = true
			out = append(out, c.clientID)
		}
	}
	sort.Strings(out)
	return out
}

// clientRegistry tracks producer and consumer connections by group, from
// heartbeats; entries go on TCP close and after maxIdle without heartbeat.
type clientRegistry struct {
	mu        sync.Mutex
	consumers map[string]*consumerGroupInfo
	producers map[string]map[uint64]*clientChannel
	now       func() time.Time
}

func newClientRegistry(now func() time.Time) *clientRegistry {
	if now == nil {
		now = time.Now
	}
	return &clientRegistry{consumers: map[string]*consumerGroupInfo{}, producers: map[string]map[uint64]*clientChannel{}, now: now}
}

// heartbeat records hb from conn and returns the consumer groups whose set of
// client ids changed.
func (r *clientRegistry) heartbeat(conn *remoting.Conn, connID uint64, hb heartbeatData) (changed []string) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range hb.ProducerDataSet {
		if p.GroupName == "" {
			continue
		}
		set := r.producers[p.GroupName]
		if set == nil {
			set = map[uint64]*clientChannel{}
			r.producers[p.GroupName] = set
		}
		set[connID] = &clientChannel{conn: conn, clientID: hb.ClientID, lastSeen: now}
	}
	for _, c := range hb.ConsumerDataSet {
		if c.GroupName == "" {
			continue
		}
		g := r.consumers[c.GroupName]
		if g == nil {
			g = &consumerGroupInfo{channels: map[uint64]*clientChannel{}}
			r.consumers[c.GroupName] = g
		}
		before := g.clientIDs()
		if ch := g.channels[connID]; ch != nil && ch.clientID == hb.ClientID {
			ch.lastSeen = now
		} else {
			g.channels[connID] = &clientChannel{conn: conn, clientID: hb.ClientID, lastSeen: now}
		}
		subs := make(map[string]string, len(c.SubscriptionDataSet))
		for _, s := range c.SubscriptionDataSet {
			subs[s.Topic] = s.SubString
		}
		g.subs = subs
		g.messageModel = c.MessageModel
		g.consumeType = c.ConsumeType
		if !equalStrings(before, g.clientIDs()) {
			changed = append(changed, c.GroupName)
		}
	}
	return changed
}

// remove drops channels matching pred and returns the consumer groups whose
// client ids changed.
func (r *clientRegistry) remove(pred func(id uint64, ch *clientChannel) bool) (changed []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, g := range r.consumers {
		before := g.clientIDs()
		for id, ch := range g.channels {
			if pred(id, ch) {
				delete(g.channels, id)
			}
		}
		if !equalStrings(before, g.clientIDs()) {
			changed = append(changed, name)
		}
		if len(g.channels) == 0 {
			delete(r.consumers, name)
		}
	}
	for name, set := range r.producers {
		for id, ch := range set {
			if pred(id, ch) {
				delete(set, id)
			}
		}
		if len(set) == 0 {
			delete(r.producers, name)
		}
	}
	sort.Strings(changed)
	return changed
}

// connClosed drops every channel of a closed connection. It returns the
// consumer groups whose client ids changed and the client ids that were
// heard on that connection.
func (r *clientRegistry) connClosed(connID uint64) (changed, clientIDs []string) {
	seen := map[string]bool{}
	changed = r.remove(func(id uint64, ch *clientChannel) bool {
		if id != connID {
			return false
		}
		if !seen[ch.clientID] {
			seen[ch.clientID] = true
			clientIDs = append(clientIDs, ch.clientID)
		}
		return true
	})
	return changed, clientIDs
}

// expire drops channels without a heartbeat for maxIdle.
func (r *clientRegistry) expire(maxIdle time.Duration) []string {
	deadline := r.now().Add(-maxIdle)
	return r.remove(func(_ uint64, ch *clientChannel) bool { return ch.lastSeen.Before(deadline) })
}

// unregister drops a client from the named groups (UNREGISTER_CLIENT).
func (r *clientRegistry) unregister(clientID, producerGroup, consumerGroup string) []string {
	r.mu.Lock()
	if set := r.producers[producerGroup]; set != nil {
		for id, ch := range set {
			if ch.clientID == clientID {
				delete(set, id)
			}
		}
	}
	var changed []string
	if g := r.consumers[consumerGroup]; g != nil {
		n := len(g.channels)
		for id, ch := range g.channels {
			if ch.clientID == clientID {
				delete(g.channels, id)
			}
		}
		if len(g.channels) != n {
			changed = append(changed, consumerGroup)
		}
	}
	r.mu.Unlock()
	return changed
}

// consumerIDs returns the sorted client ids of a consumer group.
func (r *clientRegistry) consumerIDs(group string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g := r.consumers[group]; g != nil {
		return g.clientIDs()
	}
	return nil
}

// consumerConns returns one connection per channel of a consumer group.
func (r *clientRegistry) consumerConns(group string) []*remoting.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.consumers[group]
	if g == nil {
		return nil
	}
	out := make([]*remoting.Conn, 0, len(g.channels))
	for _, ch := range g.channels {
		out = append(out, ch.conn)
	}
	return out
}

// producerConn returns a live connection of a producer group, the most
// recently heard one, or nil.
func (r *clientRegistry) producerConn(group string) *remoting.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best *clientChannel
	for _, ch := range r.producers[group] {
		if best == nil || ch.lastSeen.After(best.lastSeen) {
			best = ch
		}
	}
	if best == nil {
		return nil
	}
	return best.conn
}

// connOf returns a connection of the client with that id (from any group), or nil.
func (r *clientRegistry) connOf(clientID string) *remoting.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, set := range r.producers {
		for _, ch := range set {
			if ch.clientID == clientID {
				return ch.conn
			}
		}
	}
	for _, g := range r.consumers {
		for _, ch := range g.channels {
			if ch.clientID == clientID {
				return ch.conn
			}
		}
	}
	return nil
}

// subscription returns the expression a consumer group subscribed to topic with.
func (r *clientRegistry) subscription(group, topic string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g := r.consumers[group]; g != nil {
		s, ok := g.subs[topic]
		return s, ok
	}
	return "", false
}

// groupSummary is one consumer group for runtime info.
func (r *clientRegistry) counts() (producers, consumers int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.producers), len(r.consumers)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
