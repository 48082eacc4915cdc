// Package admin is the operator's client for a raftmq (or RocketMQ) deployment: topic and
// cluster administration, queue and consumer progress, message lookup, and the Raft
// group controls that raftmq adds. It speaks only the remoting protocol: to the
// namesrvs for routes and cluster membership, and to brokers for everything else, so
// the `raftmq admin` command is a thin flag parser over it.
//
// Topic routes of raftmq groups carry one write alias per member
// ("broker-a@n1", write-only queues that are the group's own); the views here
// fold them into their group (TopicRoute.Groups), so a group is shown, and
// its queues and offsets counted, once, always from its leader.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/raftmq/raftmq/remoting"
)

// Client talks to a set of namesrvs and the brokers they list.
type Client struct {
	rc       *remoting.Client
	namesrvs []string
	timeout  time.Duration
}

// New returns a client for the given namesrv addresses (host:port). timeout bounds
// each request; 0 means 5 s.
func New(namesrvs []string, timeout time.Duration) (*Client, error) {
	if len(namesrvs) == 0 {
		return nil, errors.New("admin: no namesrv address given")
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Client{rc: remoting.NewClient(remoting.ClientConfig{}), namesrvs: namesrvs, timeout: timeout}, nil
}

// Close releases the client's connections.
func (c *Client) Close() error { return c.rc.Close() }

// ParseAddrs splits RocketMQ's `;`-separated address list.
func ParseAddrs(s string) []string {
	var out []string
	for _, a := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' }) {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Error is a non-success answer from a server.
type Error struct {
	Addr   string
	Code   int32
	Remark string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s answered code %d: %s", e.Addr, e.Code, e.Remark)
}

// IsCode reports whether err is a server answer with the given code.
func IsCode(err error, code int32) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

func (c *Client) invoke(ctx context.Context, addr string, code int32, ext map[string]string, body []byte) (*remoting.Command, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.rc.Invoke(ctx, addr, remoting.NewRequest(code, ext, body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	if resp.Code != remoting.Success {
		return resp, &Error{Addr: addr, Code: resp.Code, Remark: resp.Remark}
	}
	return resp, nil
}

// invokeNamesrv asks each namesrv in turn until one answers; a server's error answer
// is final (namesrvs are independent but agree on what they know).
func (c *Client) invokeNamesrv(ctx context.Context, code int32, ext map[string]string, body []byte) (*remoting.Command, error) {
	var lastErr error
	for _, addr := range c.namesrvs {
		resp, err := c.invoke(ctx, addr, code, ext, body)
		if err == nil {
			return resp, nil
		}
		var se *Error
		if errors.As(err, &se) {
			return resp, err
		}
		lastErr = err
	}
	return nil, lastErr
}

// QueueData is one broker group's queues of a topic.
type QueueData struct {
	BrokerName     string `json:"brokerName"`
	ReadQueueNums  int    `json:"readQueueNums"`
	WriteQueueNums int    `json:"writeQueueNums"`
	Perm           int    `json:"perm"`
	TopicSysFlag   int    `json:"topicSysFlag"`
}

// BrokerData is one broker group's members: brokerId -> address, 0 is the leader.
type BrokerData struct {
	Cluster     string            `json:"cluster"`
	BrokerName  string            `json:"brokerName"`
	BrokerAddrs map[string]string `json:"brokerAddrs"`
}

// LeaderAddr is the address registered as brokerId 0, or "".
func (b BrokerData) LeaderAddr() string { return b.BrokerAddrs["0"] }

// Members lists the group's addresses ordered by brokerId.
func (b BrokerData) Members() []Member {
	out := make([]Member, 0, len(b.BrokerAddrs))
	for id, addr := range b.BrokerAddrs {
		n, _ := strconv.ParseInt(id, 10, 64)
		out = append(out, Member{ID: n, Addr: addr})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Member is one registered broker of a group.
type Member struct {
	ID   int64  `json:"brokerId"`
	Addr string `json:"addr"`
}

// TopicRoute is GET_ROUTEINFO_BY_TOPIC's answer.
type TopicRoute struct {
	QueueDatas  []QueueData  `json:"queueDatas"`
	BrokerDatas []BrokerData `json:"brokerDatas"`
}

// Broker returns the group named name, if the route lists it.
func (r *TopicRoute) Broker(name string) (BrokerData, bool) {
	for _, b := range r.BrokerDatas {
		if b.BrokerName == name {
			return b, true
		}
	}
	return BrokerData{}, false
}

// TopicRoute fetches a topic's route from the namesrvs.
func (c *Client) TopicRoute(ctx context.Context, topic string) (*TopicRoute, error) {
	resp, err := c.invokeNamesrv(ctx, remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil)
	if err != nil {
		return nil, err
	}
	var r TopicRoute
	if err := json.Unmarshal(resp.Body, &r); err != nil {
		return nil, fmt.Errorf("decode route of %s: %w", topic, err)
	}
	return &r, nil
}

// ClusterInfo is GET_BROKER_CLUSTER_INFO's answer.
type ClusterInfo struct {
	BrokerAddrTable  map[string]BrokerData `json:"brokerAddrTable"`
	ClusterAddrTable map[string][]string   `json:"clusterAddrTable"`
}

// ClusterInfo fetches the namesrv's view of clusters and broker groups.
func (c *Client) ClusterInfo(ctx context.Context) (*ClusterInfo, error) {
	resp, err := c.invokeNamesrv(ctx, remoting.GetBrokerClusterInfo, nil, nil)
	if err != nil {
		return nil, err
	}
	var ci ClusterInfo
	if err := json.Unmarshal(resp.Body, &ci); err != nil {
		return nil, fmt.Errorf("decode cluster info: %w", err)
	}
	return &ci, nil
}

// Groups returns the broker groups of cluster ("" = all clusters), sorted by name.
func (ci *ClusterInfo) Groups(cluster string) []BrokerData {
	var out []BrokerData
	for name, bd := range ci.BrokerAddrTable {
		if cluster != "" && bd.Cluster != cluster {
			continue
		}
		if bd.BrokerName == "" {
			bd.BrokerName = name
		}
		out = append(out, bd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].BrokerName < out[j].BrokerName })
	return out
}

// TopicList lists every topic the namesrvs know.
func (c *Client) TopicList(ctx context.Context) ([]string, error) {
	resp, err := c.invokeNamesrv(ctx, remoting.GetAllTopicListFromNameserver, nil, nil)
	if err != nil {
		return nil, err
	}
	var tl struct {
		TopicList []string `json:"topicList"`
	}
	if err := json.Unmarshal(resp.Body, &tl); err != nil {
		return nil, fmt.Errorf("decode topic list: %w", err)
	}
	sort.Strings(tl.TopicList)
	return tl.TopicList, nil
}

// TopicConfig is what UPDATE_AND_CREATE_TOPIC sends.
type TopicConfig struct {
	Topic          string
	ReadQueueNums  int
	WriteQueueNums int
	Perm           int // 6 = read+write
	Order          bool
}

// leaders resolves the brokerId-0 addresses of the target groups: one named group,
// or every group of a cluster.
func (c *Client) leaders(ctx context.Context, cluster, brokerName string) (map[string]string, error) {
	ci, err := c.ClusterInfo(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, bd := range ci.Groups(cluster) {
		if brokerName != "" && bd.BrokerName != brokerName {
			continue
		}
		if addr := bd.LeaderAddr(); addr != "" {
			out[bd.BrokerName] = addr
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no broker group with a leader matches cluster=%q broker=%q", cluster, brokerName)
	}
	return out, nil
}

// CreateTopic creates or updates a topic on the leader of each matching group
// (cluster "" = all clusters; brokerName "" = every group of the cluster).
func (c *Client) CreateTopic(ctx context.Context, cluster, brokerName string, tc TopicConfig) error {
	targets, err := c.leaders(ctx, cluster, brokerName)
	if err != nil {
		return err
	}
	ext := CreateTopicExt(tc)
	for _, addr := range sortedValues(targets) {
		if _, err := c.invoke(ctx, addr, remoting.UpdateAndCreateTopic, ext, nil); err != nil {
			return err
		}
	}
	return nil
}

// CreateTopicExt is the UPDATE_AND_CREATE_TOPIC header for tc, defaults filled in
// (8 queues, write queues = read queues, perm 6), for callers that address a
// broker themselves.
func CreateTopicExt(tc TopicConfig) map[string]string {
	if tc.ReadQueueNums <= 0 {
		tc.ReadQueueNums = 8
	}
	if tc.WriteQueueNums <= 0 {
		tc.WriteQueueNums = tc.ReadQueueNums
	}
	if tc.Perm == 0 {
		tc.Perm = 6
	}
	return map[string]string{
		"topic":           tc.Topic,
		"defaultTopic":    "TBW102",
		"readQueueNums":   strconv.Itoa(tc.ReadQueueNums),
		"writeQueueNums":  strconv.Itoa(tc.WriteQueueNums),
		"perm":            strconv.Itoa(tc.Perm),
		"topicFilterType": "SINGLE_TAG",
		"topicSysFlag":    "0",
		"order":           strconv.FormatBool(tc.Order),
	}
}

// DeleteTopic removes a topic from the leaders of the matching groups and from every namesrv.
func (c *Client) DeleteTopic(ctx context.Context, cluster, topic string) error {
	targets, err := c.leaders(ctx, cluster, "")
	if err != nil {
		return err
	}
	for _, addr := range sortedValues(targets) {
		if _, err := c.invoke(ctx, addr, remoting.DeleteTopicInBroker, map[string]string{"topic": topic}, nil); err != nil {
			return err
		}
	}
	ext := map[string]string{"topic": topic}
	if cluster != "" {
		ext["clusterName"] = cluster
	}
	for _, ns := range c.namesrvs {
		if _, err := c.invoke(ctx, ns, remoting.DeleteTopicInNamesrv, ext, nil); err != nil {
			return err
		}
	}
	return nil
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}
