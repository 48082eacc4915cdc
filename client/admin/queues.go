package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
)

// QueueStatus is one queue's offsets on its group's leader (write aliases
// folded into their group).
type QueueStatus struct {
	BrokerName string `json:"brokerName"`
	QueueID    int    `json:"queueId"`
	MinOffset  int64  `json:"minOffset"`
	MaxOffset  int64  `json:"maxOffset"`
}

func (c *Client) offset(ctx context.Context, addr string, code int32, topic string, qid int) (int64, error) {
	resp, err := c.invoke(ctx, addr, code, map[string]string{"topic": topic, "queueId": strconv.Itoa(qid)}, nil)
	if err != nil {
		return 0, err
	}
	v, _, err := resp.ExtInt64("offset")
	if err != nil {
		return 0, fmt.Errorf("%s: %w", addr, err)
	}
	return v, nil
}

// TopicStatus reports min and max offsets of every queue of a topic.
func (c *Client) TopicStatus(ctx context.Context, topic string) ([]QueueStatus, error) {
	route, err := c.TopicRoute(ctx, topic)
	if err != nil {
		return nil, err
	}
	var out []QueueStatus
	// Write aliases are the same queues as their group's: fold them so each
	// queue is asked for (and counted) once, on the group's leader.
	for _, g := range route.Groups() {
		if g.LeaderAddr() == "" {
			return nil, fmt.Errorf("broker group %s of topic %s has no leader registered", g.BrokerName, topic)
		}
		n := max(g.ReadQueueNums, g.WriteQueueNums)
		for q := 0; q < n; q++ {
			minOff, err := c.offset(ctx, g.LeaderAddr(), remoting.GetMinOffset, topic, q)
			if err != nil {
				return nil, err
			}
			maxOff, err := c.offset(ctx, g.LeaderAddr(), remoting.GetMaxOffset, topic, q)
			if err != nil {
				return nil, err
			}
			out = append(out, QueueStatus{BrokerName: g.BrokerName, QueueID: q, MinOffset: minOff, MaxOffset: maxOff})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].BrokerName != out[j].BrokerName {
			return out[i].BrokerName < out[j].BrokerName
		}
		return out[i].QueueID < out[j].QueueID
	})
	return out, nil
}

// QueueProgress is a consumer group's position in one queue.
type QueueProgress struct {
	QueueStatus
	ConsumerOffset int64 `json:"consumerOffset"` // -1 when the group has committed nothing
	Lag            int64 `json:"lag"`
}

// ConsumerProgress reports, for each queue of topic, the group's committed offset and its lag.
func (c *Client) ConsumerProgress(ctx context.Context, group, topic string) ([]QueueProgress, error) {
	status, err := c.TopicStatus(ctx, topic)
	if err != nil {
		return nil, err
	}
	route, err := c.TopicRoute(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make([]QueueProgress, 0, len(status))
	for _, qs := range status {
		bd, _ := route.Broker(qs.BrokerName)
		ext := map[string]string{"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(qs.QueueID)}
		p := QueueProgress{QueueStatus: qs, ConsumerOffset: -1}
		resp, err := c.invoke(ctx, bd.LeaderAddr(), remoting.QueryConsumerOffset, ext, nil)
		switch {
		case err == nil:
			if p.ConsumerOffset, _, err = resp.ExtInt64("offset"); err != nil {
				return nil, err
			}
		case IsCode(err, remoting.QueryNotFound):
		default:
			return nil, err
		}
		from := p.ConsumerOffset
		if from < 0 {
			from = qs.MinOffset
		}
		p.Lag = max(qs.MaxOffset-from, 0)
		out = append(out, p)
	}
	return out, nil
}

// BrokerRuntimeInfo returns GET_BROKER_RUNTIME_INFO's key/value table from one broker.
func (c *Client) BrokerRuntimeInfo(ctx context.Context, addr string) (map[string]string, error) {
	resp, err := c.invoke(ctx, addr, remoting.GetBrokerRuntimeInfo, nil, nil)
	if err != nil {
		return nil, err
	}
	var kv struct {
		Table map[string]string `json:"table"`
	}
	if err := json.Unmarshal(resp.Body, &kv); err != nil {
		return nil, fmt.Errorf("decode runtime info of %s: %w", addr, err)
	}
	return kv.Table, nil
}

// ViewMessage fetches the message an offsetMsgId names, from the broker encoded in the id.
func (c *Client) ViewMessage(ctx context.Context, offsetMsgID string) (*message.Ext, error) {
	host, off, err := message.ParseOffsetMsgID(offsetMsgID)
	if err != nil {
		return nil, err
	}
	resp, err := c.invoke(ctx, host.String(), remoting.ViewMessageByID, map[string]string{"offset": strconv.FormatInt(off, 10)}, nil)
	if err != nil {
		return nil, err
	}
	m, _, err := message.DecodeRecord(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("decode message %s: %w", offsetMsgID, err)
	}
	return m, nil
}

// QueryMessageByKey finds messages of topic whose KEYS (or UNIQ_KEY) contain key, stored
// between begin and end (unix ms), asking the leader of every group of the topic.
func (c *Client) QueryMessageByKey(ctx context.Context, topic, key string, maxNum int, begin, end int64) ([]*message.Ext, error) {
	route, err := c.TopicRoute(ctx, topic)
	if err != nil {
		return nil, err
	}
	if maxNum <= 0 {
		maxNum = 64
	}
	var out []*message.Ext
	for _, g := range route.Groups() { // each group once, not once per write alias
		addr := g.LeaderAddr()
		if addr == "" {
			continue
		}
		ext := map[string]string{
			"topic": topic, "key": key, "maxNum": strconv.Itoa(maxNum),
			"beginTimestamp": strconv.FormatInt(begin, 10), "endTimestamp": strconv.FormatInt(end, 10),
		}
		resp, err := c.invoke(ctx, addr, remoting.QueryMessage, ext, nil)
		if IsCode(err, remoting.QueryNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		msgs, err := message.DecodeRecords(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("decode query answer of %s: %w", addr, err)
		}
		out = append(out, msgs...)
	}
	return out, nil
}

// RaftPeer is one member of a broker group as its node reports it.
type RaftPeer struct {
	ID        string `json:"id"`
	Addr      string `json:"addr"`
	Suffrage  string `json:"suffrage"`
	LastIndex uint64 `json:"lastIndex,omitempty"`
}

// RaftStatus is a broker node's view of its Raft group.
type RaftStatus struct {
	Group        string     `json:"group"`
	SelfID       string     `json:"selfId"`
	Role         string     `json:"role"`
	Term         uint64     `json:"term"`
	LeaderID     string     `json:"leaderId"`
	LeaderAddr   string     `json:"leaderAddr"`
	CommitIndex  uint64     `json:"commitIndex"`
	AppliedIndex uint64     `json:"appliedIndex"`
	LastIndex    uint64     `json:"lastIndex"`
	Peers        []RaftPeer `json:"peers"`
	BrokerAddr   string     `json:"brokerAddr"`
	// DuplicateKeys is how many (topic, UNIQ_KEY) the node remembers;
	// DuplicatesSuppressed counts the sends it answered from them (as
	// leader) since it started.
	DuplicateKeys        int    `json:"duplicateKeys"`
	DuplicatesSuppressed uint64 `json:"duplicatesSuppressed"`
}

// RaftStatus asks one broker for its Raft status.
func (c *Client) RaftStatus(ctx context.Context, brokerAddr string) (*RaftStatus, error) {
	resp, err := c.invoke(ctx, brokerAddr, remoting.RaftStatus, nil, nil)
	if err != nil {
		return nil, err
	}
	var st RaftStatus
	if err := json.Unmarshal(resp.Body, &st); err != nil {
		return nil, fmt.Errorf("decode raft status of %s: %w", brokerAddr, err)
	}
	if st.BrokerAddr == "" {
		st.BrokerAddr = brokerAddr
	}
	return &st, nil
}

// GroupRaftStatus asks every registered member of a broker group for its Raft status.
// Unreachable members are reported with Role "unreachable".
func (c *Client) GroupRaftStatus(ctx context.Context, brokerName string) ([]RaftStatus, error) {
	ci, err := c.ClusterInfo(ctx)
	if err != nil {
		return nil, err
	}
	bd, ok := ci.BrokerAddrTable[brokerName]
	if !ok {
		return nil, fmt.Errorf("broker group %q is not registered", brokerName)
	}
	var out []RaftStatus
	asked := map[string]bool{}
	for _, m := range bd.Members() {
		// During an election the last leader is listed at 0 and at its own id.
		if asked[m.Addr] {
			continue
		}
		asked[m.Addr] = true
		st, err := c.RaftStatus(ctx, m.Addr)
		if err != nil {
			out = append(out, RaftStatus{Group: brokerName, Role: "unreachable", BrokerAddr: m.Addr})
			continue
		}
		out = append(out, *st)
	}
	return out, nil
}

// TransferLeader asks the group's leader to hand leadership to the node toID ("" = any).
func (c *Client) TransferLeader(ctx context.Context, brokerName, toID string) error {
	leaders, err := c.leaders(ctx, "", brokerName)
	if err != nil {
		return err
	}
	ext := map[string]string{}
	if toID != "" {
		ext["targetId"] = toID
	}
	_, err = c.invoke(ctx, leaders[brokerName], remoting.RaftTransferLeader, ext, nil)
	return err
}
