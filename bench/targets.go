package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/raftmq/raftmq/client/admin"
	"github.com/raftmq/raftmq/remoting"
)

// Target is one broker group the run addresses.
type Target struct {
	BrokerName string `json:"brokerName"`
	// Addr is where requests go: the group's leader (brokerId 0 of its plain
	// name), or the direct address given.
	Addr string `json:"addr"`
	// Role and FlushDiskType are what the broker's runtime info says ("" when
	// it does not say).
	Role          string `json:"role,omitempty"`
	FlushDiskType string `json:"flushDiskType,omitempty"`
	// Aliases are the write-alias addresses sends go to with ViaAliases.
	Aliases []string `json:"aliases,omitempty"`
}

// slot is one (address, topic, queue) a producer sends to or a puller drains.
type slot struct {
	addr  string
	topic string
	queue int
}

// isAlias reports a write alias `name@member` of a topic route.
func isAlias(brokerName string) bool { return strings.Contains(brokerName, "@") }

// resolveTargets finds the groups to address: the direct addresses, or each
// group's brokerId 0 from the namesrv's cluster view (aliases skipped).
func resolveTargets(ctx context.Context, cfg *Config) ([]Target, error) {
	if len(cfg.BrokerAddrs) > 0 {
		out := make([]Target, 0, len(cfg.BrokerAddrs))
		for _, a := range cfg.BrokerAddrs {
			out = append(out, Target{BrokerName: a, Addr: a})
		}
		return out, nil
	}
	ac, err := admin.New(cfg.NamesrvAddrs, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	defer ac.Close()
	ci, err := ac.ClusterInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster info: %w", err)
	}
	var out []Target
	for _, bd := range ci.Groups(cfg.Cluster) {
		if isAlias(bd.BrokerName) || (cfg.BrokerName != "" && bd.BrokerName != cfg.BrokerName) {
			continue
		}
		leader := bd.LeaderAddr()
		if leader == "" {
			return nil, fmt.Errorf("broker group %s has no leader (brokerId 0) registered", bd.BrokerName)
		}
		out = append(out, Target{BrokerName: bd.BrokerName, Addr: leader})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no broker group matches cluster=%q brokerName=%q", cfg.Cluster, cfg.BrokerName)
	}
	return out, nil
}

// resolveAliases fills each target's write-alias addresses from the route of
// topic: the BrokerData of every writable QueueData named `<group>@<member>`.
func resolveAliases(ctx context.Context, cfg *Config, topic string, targets []Target) error {
	ac, err := admin.New(cfg.NamesrvAddrs, cfg.Timeout)
	if err != nil {
		return err
	}
	defer ac.Close()
	route, err := ac.TopicRoute(ctx, topic)
	if err != nil {
		return fmt.Errorf("route of %s: %w", topic, err)
	}
	for i := range targets {
		t := &targets[i]
		for _, qd := range route.QueueDatas {
			if !strings.HasPrefix(qd.BrokerName, t.BrokerName+"@") || qd.Perm&permWrite == 0 {
				continue
			}
			if bd, ok := route.Broker(qd.BrokerName); ok && bd.LeaderAddr() != "" {
				t.Aliases = append(t.Aliases, bd.LeaderAddr())
			}
		}
		if len(t.Aliases) == 0 {
			return fmt.Errorf("route of %s lists no write alias of group %s (single-member group, or not registered yet)", topic, t.BrokerName)
		}
	}
	return nil
}

// permWrite is the WRITE bit of a QueueData's perm.
const permWrite = 2

// describeTarget asks the broker for its role and flush mode (runtime info);
// a broker that does not answer them leaves the fields empty.
func describeTarget(ctx context.Context, rc *remoting.Client, cfg *Config, t *Target) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	resp, err := rc.Invoke(ctx, t.Addr, remoting.NewRequest(remoting.GetBrokerRuntimeInfo, nil, nil))
	if err != nil || resp.Code != remoting.Success {
		return
	}
	var kv struct {
		Table map[string]string `json:"table"`
	}
	if json.Unmarshal(resp.Body, &kv) != nil {
		return
	}
	t.Role = kv.Table["brokerRole"]
	t.FlushDiskType = kv.Table["flushDiskType"]
}

// createTopics creates every topic of the run on each target, with cfg.Queues queues.
func createTopics(ctx context.Context, rc *remoting.Client, cfg *Config, targets []Target) error {
	for _, t := range targets {
		for _, topic := range cfg.topicNames() {
			ext := admin.CreateTopicExt(admin.TopicConfig{Topic: topic, ReadQueueNums: cfg.Queues})
			if err := call(ctx, rc, cfg, t.Addr, remoting.UpdateAndCreateTopic, ext); err != nil {
				return fmt.Errorf("create topic %s on %s: %w", topic, t.Addr, err)
			}
		}
	}
	return nil
}

// call sends one admin request and turns a non-success answer into an error.
func call(ctx context.Context, rc *remoting.Client, cfg *Config, addr string, code int32, ext map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	resp, err := rc.Invoke(ctx, addr, remoting.NewRequest(code, ext, nil))
	if err != nil {
		return err
	}
	if resp.Code != remoting.Success {
		return fmt.Errorf("code %d (%s): %s", resp.Code, remoting.ResponseCodeName(resp.Code), resp.Remark)
	}
	return nil
}

// slots lists every (address, topic, queue) of the run. With aliases, each
// queue appears once per alias address, as an official producer spreads it.
func slots(cfg *Config, targets []Target) []slot {
	var out []slot
	for _, t := range targets {
		addrs := []string{t.Addr}
		if cfg.ViaAliases && cfg.Mode == ModeProduce {
			addrs = t.Aliases
		}
		for _, topic := range cfg.topicNames() {
			for q := 0; q < cfg.Queues; q++ {
				for _, a := range addrs {
					out = append(out, slot{addr: a, topic: topic, queue: q})
				}
			}
		}
	}
	return out
}
