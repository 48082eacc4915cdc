package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/raftmq/raftmq/bench"
	"github.com/raftmq/raftmq/client/admin"
)

// raftmqLayout is a raftmq configuration: how many members and the flush mode.
func raftmqLayout(config string) (members int, flush string) {
	switch config {
	case "raftmq3":
		return 3, "SYNC_FLUSH"
	case "raftmq1sync":
		return 1, "SYNC_FLUSH"
	default:
		return 1, "ASYNC_FLUSH"
	}
}

// runRaftmq starts a namesrv and one broker group, runs every shape with
// `raftmq bench` and stops them.
func runRaftmq(ctx context.Context, o *options, procs *processes, res *results, config string) error {
	members, flush := raftmqLayout(config)
	store := filepath.Join(o.dir, "store", config)
	if err := os.RemoveAll(store); err != nil {
		return err
	}
	logs := filepath.Join(res.dir, "logs")
	ns := fmt.Sprintf("127.0.0.1:%d", o.portBase+876)
	if err := procs.start(filepath.Join(logs, config+"_namesrv.log"), o.raftmq, "namesrv", "-listen", ns); err != nil {
		return err
	}
	var peers []string
	for i := 0; i < members; i++ {
		peers = append(peers, fmt.Sprintf("n%d-127.0.0.1:%d", i, o.portBase+941+i))
	}
	for i := 0; i < members; i++ {
		args := []string{"broker",
			"-brokerClusterName", "BenchCluster", "-brokerName", "broker-a", "-namesrvAddr", ns,
			"-brokerIP1", "127.0.0.1", "-listenHost", "127.0.0.1", "-listenPort", strconv.Itoa(o.portBase + 911 + 10*i),
			"-storePathRootDir", filepath.Join(store, fmt.Sprintf("n%d", i)), "-flushDiskType", flush,
			"-autoCreateTopicEnable", "true", "-enableDLegerCommitLog", "true", "-dLegerGroup", "broker-a",
			"-dLegerPeers", strings.Join(peers, ";"), "-dLegerSelfId", fmt.Sprintf("n%d", i), "-logLevel", "warn"}
		if err := procs.start(filepath.Join(logs, fmt.Sprintf("%s_n%d.log", config, i)), o.raftmq, args...); err != nil {
			return err
		}
	}
	if err := waitLeader(ctx, ns, members, 90*time.Second); err != nil {
		return err
	}
	logf("%s: %d member(s) %s up, namesrv %s", config, members, flush, ns)

	for rep := 1; rep <= o.reps; rep++ {
		for _, shape := range o.shapes {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			topic := fmt.Sprintf("Bench_%s_%d", shape, rep)
			base := []string{"bench", "-n", ns, "-topic", topic, "-size", strconv.Itoa(o.size), "-interval", "-1s"}
			var args []string
			switch shape {
			case shapeSync1:
				args = append(base, "-connections", "1", "-messages", strconv.Itoa(o.sync1Msgs))
			case shapeSync16:
				args = append(base, "-connections", "16", "-messages", strconv.Itoa(o.sync16Msgs))
			case shapeAsync:
				args = append(base, "-async", "-window", strconv.Itoa(o.window), "-messages", strconv.Itoa(o.asyncMsgs))
			case shapeConsume:
				fill := append(base, "-async", "-window", strconv.Itoa(o.window), "-messages", strconv.Itoa(o.backlog))
				s, err := raftmqBench(ctx, o, res, config, "backlog_fill", rep, fill)
				if err != nil {
					return err
				}
				res.add(config, "backlog_fill", rep, sample{rate: s.MsgsPerSec, p50: s.Latency.P50, p99: s.Latency.P99, msgs: s.Messages})
				args = append(base, "-mode", "consume")
			}
			s, err := raftmqBench(ctx, o, res, config, shape, rep, args)
			if err != nil {
				res.note(fmt.Sprintf("%s %s rep %d failed: %v", config, shape, rep, err))
				continue
			}
			if s.Errors > 0 {
				res.note(fmt.Sprintf("%s %s rep %d: %d errors %v", config, shape, rep, s.Errors, s.ErrorsByClass))
			}
			res.add(config, shape, rep, sample{rate: s.MsgsPerSec, p50: s.Latency.P50, p99: s.Latency.P99, msgs: s.Messages})
		}
	}
	return nil
}

// raftmqBench runs one `raftmq bench` and reads its JSON summary.
func raftmqBench(ctx context.Context, o *options, res *results, config, shape string, rep int, args []string) (*bench.Summary, error) {
	jsonPath := filepath.Join(res.dir, "logs", fmt.Sprintf("%s_%s_%d.json", config, shape, rep))
	args = append(args, "-json", jsonPath)
	logf("%s %s rep %d", config, shape, rep)
	if _, err := runTool(ctx, o.timeout, strings.TrimSuffix(jsonPath, ".json")+".log", o.raftmq, args...); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		return nil, err
	}
	var s bench.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", jsonPath, err)
	}
	logf("  %.0f msg/s, p50 %.2f ms, p99 %.2f ms, %d errors", s.MsgsPerSec, float64(s.Latency.P50)/1000, float64(s.Latency.P99)/1000, s.Errors)
	return &s, nil
}

// waitLeader waits until the namesrv lists broker-a with a leader (brokerId
// 0) and all members registered.
func waitLeader(ctx context.Context, ns string, members int, timeout time.Duration) error {
	ac, err := admin.New([]string{ns}, 2*time.Second)
	if err != nil {
		return err
	}
	defer ac.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if ci, err := ac.ClusterInfo(ctx); err == nil {
			if bd, ok := ci.BrokerAddrTable["broker-a"]; ok && bd.LeaderAddr() != "" && len(distinct(bd.BrokerAddrs)) >= members {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("broker-a has no leader with %d member(s) registered at %s: %w", members, ns, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func distinct(m map[string]string) map[string]bool {
	out := map[string]bool{}
	for _, v := range m {
		out[v] = true
	}
	return out
}
