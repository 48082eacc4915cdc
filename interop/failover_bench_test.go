package interop

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/raftmq/raftmq/client/admin"
	"github.com/raftmq/raftmq/interop/internal/failover"
	"github.com/raftmq/raftmq/interop/internal/harness"
	"github.com/raftmq/raftmq/wire"
)

// processCluster is a namesrv and a three-member broker group as child processes on
// loopback; members restart on their own store and ports.
type processCluster struct {
	t       *testing.T
	members []failover.Member
	args    map[string][]string
	dirs    map[string]string

	mu    sync.Mutex
	procs map[string]*harness.Process
}

func startProcessCluster(t *testing.T, namesrv string) *processCluster {
	c := &processCluster{t: t, args: map[string][]string{}, dirs: map[string]string{}, procs: map[string]*harness.Process{}}
	var peers []string
	for i := 0; i < 3; i++ {
		peers = append(peers, fmt.Sprintf("n%d-%s", i, harness.FreeAddr(t)))
	}
	for i := 0; i < 3; i++ {
		addr := harness.FreeAddr(t)
		port := addr[strings.LastIndexByte(addr, ':')+1:]
		m := failover.Member{Name: fmt.Sprintf("n%d", i), Addr: addr}
		c.members = append(c.members, m)
		c.dirs[m.Name] = t.TempDir()
		c.args[m.Name] = []string{"-n", namesrv, "-brokerIP1", "127.0.0.1", "-listenHost", "127.0.0.1",
			"-listenPort", port, "-storePathRootDir", c.dirs[m.Name],
			"-brokerName", "broker-a", "-dLegerGroup", "broker-a", "-flushDiskType", "SYNC_FLUSH",
			"-dLegerPeers", strings.Join(peers, ";"), "-dLegerSelfId", m.Name, "-logLevel", "warn"}
	}
	for _, m := range c.members {
		if err := c.Start(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *processCluster) Members() []failover.Member { return c.members }

func (c *processCluster) proc(m failover.Member) *harness.Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[m.Name]
}

func (c *processCluster) Kill(_ context.Context, m failover.Member) error {
	c.proc(m).Kill()
	return nil
}

func (c *processCluster) Stop(_ context.Context, m failover.Member) error {
	return c.proc(m).Stop()
}

func (c *processCluster) Pause(_ context.Context, m failover.Member) error { return c.proc(m).Pause() }

func (c *processCluster) Unpause(_ context.Context, m failover.Member) error {
	return c.proc(m).Resume()
}

func (c *processCluster) Start(_ context.Context, m failover.Member) error {
	p := harness.Start(c.t, "broker", harness.Options{
		Addr: m.Addr, Dir: c.dirs[m.Name], StopTimeout: 30 * time.Second,
		Args: func(string) []string { return c.args[m.Name] },
	})
	c.mu.Lock()
	c.procs[m.Name] = p
	c.mu.Unlock()
	return nil
}

// TestProcessClusterFailover runs the failover trials of `make failover-bench` against
// child processes instead of containers (`make failover-bench-process`). Like the
// compose test it asserts no loss and that every send was answered; speed is judged by
// cmd/failovergate from the JSON summary.
func TestProcessClusterFailover(t *testing.T) {
	if os.Getenv("RAFTMQ_FAILOVER_BENCH") != "1" {
		t.Skip("the process-cluster failover bench runs under `make failover-bench-process` (RAFTMQ_FAILOVER_BENCH=1)")
	}
	plan, err := failover.PlanFromEnv(failover.Plan{LeaderKills: 2, FollowerKills: 1})
	if err != nil {
		t.Fatal(err)
	}
	rlog.SetLogLevel("fatal") // the client logs every refused dial of a killed member
	ns := harness.StartNamesrv(t)
	topic := uniq("Failover")
	load, err := failover.WorkloadFromEnv(failover.WorkloadConfig{Namesrvs: []string{ns.Addr}, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	cl := startProcessCluster(t, ns.Addr)
	ctx := context.Background()
	adm, err := admin.New([]string{ns.Addr}, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	svcEventually(t, 90*time.Second, "a leader and three members of broker-a", func() error {
		ci, err := adm.ClusterInfo(ctx)
		if err != nil {
			return err
		}
		bd, ok := ci.BrokerAddrTable["broker-a"]
		if !ok || bd.LeaderAddr() == "" || len(bd.BrokerAddrs) < 3 {
			return fmt.Errorf("group not complete yet: %+v", bd)
		}
		return nil
	})
	svcEventually(t, 30*time.Second, "topic creation", func() error {
		return adm.CreateTopic(ctx, "", "broker-a", wire.TopicConfig{TopicName: topic, ReadQueueNums: 4, WriteQueueNums: 4})
	})
	s, err := failover.Run(ctx, failover.Config{
		Deployment: "child processes on loopback, one three-member group",
		Group:      "broker-a", Workload: load, Plan: plan, Logf: t.Logf,
	}, cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(os.Stdout, os.Getenv(failover.EnvJSON)); err != nil {
		t.Errorf("write summary: %v", err)
	}
	for _, v := range s.Violations() {
		t.Error(v)
	}
}
