// Package compose holds the docker compose failover test: the real deployment (image,
// docker-compose.yml, two namesrvs, a three-node broker group) driven by the official
// RocketMQ Go client from the host while the trial runner of interop/internal/failover
// kills, stops, restarts and transfers the group's members.
//
// It runs only when RAFTMQ_COMPOSE_TEST=1 (set by `make compose-test` and `make
// failover-bench`, which build the image first); otherwise it skips and says why. The
// test asserts what must always hold (every acknowledged message consumed, every send
// acknowledged or reported, every trial recovered); the speed targets are checked from
// its JSON summary by `make failover-bench`, never asserted here.
package compose

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/raftmq/raftmq/client/admin"
	"github.com/raftmq/raftmq/interop/internal/failover"
	"github.com/raftmq/raftmq/wire"
)

const (
	project  = "raftmqcompose"
	group    = "broker-a"
	topic    = "ComposeFailover"
	namesrvs = "127.0.0.1:9876;127.0.0.1:9877"
	// stopGrace matches stop_grace_period in docker-compose.yml.
	stopGrace = 30
)

// The short run `make test` does: a few kills and a transfer, well under three minutes even when each
// costs a 30 s route refresh.
var shortPlan = failover.Plan{LeaderKills: 2, FollowerKills: 1, Transfers: 1}

// brokers are the compose services of broker-a and the addresses they advertise.
var brokers = []failover.Member{
	{Name: "broker-a-n0", Addr: "127.0.0.1:10911"},
	{Name: "broker-a-n1", Addr: "127.0.0.1:10921"},
	{Name: "broker-a-n2", Addr: "127.0.0.1:10931"},
}

func composeFile(t *testing.T) string {
	p, err := filepath.Abs("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// composeCluster acts on the compose services with the docker CLI.
type composeCluster struct {
	file       string
	containers map[string]string // service -> container id
}

func (c *composeCluster) dc(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "docker-compose", append([]string{"-p", project, "-f", c.file}, args...)...)
}

func (c *composeCluster) Members() []failover.Member { return brokers }

func (c *composeCluster) Kill(ctx context.Context, m failover.Member) error {
	_, err := run(ctx, "docker", "kill", "-s", "KILL", c.containers[m.Name])
	return err
}

func (c *composeCluster) Stop(ctx context.Context, m failover.Member) error {
	_, err := run(ctx, "docker", "stop", "-t", fmt.Sprint(stopGrace), c.containers[m.Name])
	return err
}

func (c *composeCluster) Start(ctx context.Context, m failover.Member) error {
	_, err := run(ctx, "docker", "start", c.containers[m.Name])
	return err
}

func (c *composeCluster) Pause(ctx context.Context, m failover.Member) error {
	_, err := run(ctx, "docker", "pause", c.containers[m.Name])
	return err
}

func (c *composeCluster) Unpause(ctx context.Context, m failover.Member) error {
	_, err := run(ctx, "docker", "unpause", c.containers[m.Name])
	return err
}

// waitFor polls cond until it returns nil or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
}

// TestComposeFailover runs the failover trials against `docker-compose up`: by default
// the short plan; RAFTMQ_FAILOVER_* variables choose more (see failover.PlanFromEnv).
func TestComposeFailover(t *testing.T) {
	if os.Getenv("RAFTMQ_COMPOSE_TEST") != "1" {
		t.Skip("compose test runs only under `make compose-test` (RAFTMQ_COMPOSE_TEST=1), which builds the image")
	}
	plan, err := failover.PlanFromEnv(shortPlan)
	if err != nil {
		t.Fatal(err)
	}
	load, err := failover.WorkloadFromEnv(failover.WorkloadConfig{Namesrvs: admin.ParseAddrs(namesrvs), Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	rlog.SetLogLevel("fatal")
	ctx := context.Background()
	cl := &composeCluster{file: composeFile(t), containers: map[string]string{}}
	if out, err := cl.dc(ctx, "down", "-v", "--remove-orphans"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := cl.dc(context.Background(), "logs", "--tail=80")
			t.Logf("compose logs:\n%s", out)
		}
		cl.dc(context.Background(), "down", "-v", "--remove-orphans")
	})
	if out, err := cl.dc(ctx, "up", "-d"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, m := range brokers {
		id, err := cl.dc(ctx, "ps", "-q", m.Name)
		if err != nil || id == "" {
			t.Fatalf("container of %s: %q %v", m.Name, id, err)
		}
		cl.containers[m.Name] = id
	}

	adm, err := admin.New(admin.ParseAddrs(namesrvs), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	// The group is up when a leader is registered as brokerId 0 and all three members appear.
	waitFor(t, "a leader and three members of "+group, 90*time.Second, func() error {
		ci, err := adm.ClusterInfo(ctx)
		if err != nil {
			return err
		}
		bd, ok := ci.BrokerAddrTable[group]
		if !ok || bd.LeaderAddr() == "" || len(bd.BrokerAddrs) < 3 {
			return fmt.Errorf("group not complete yet: %+v", bd)
		}
		return nil
	})
	waitFor(t, "topic creation", 30*time.Second, func() error {
		return adm.CreateTopic(ctx, "", group, wire.TopicConfig{TopicName: topic, ReadQueueNums: 4, WriteQueueNums: 4})
	})

	s, err := failover.Run(ctx, failover.Config{
		Deployment: "docker compose, one three-member group",
		Group:      group,
		Workload:   load,
		Plan:       plan,
		Logf:       t.Logf,
	}, cl)
	if err != nil {
		t.Fatal(err)
	}
	report(t, s)
}

// report prints the figures, writes the JSON summary when asked, and asserts what
// must hold regardless of speed.
func report(t *testing.T, s *failover.Summary) {
	t.Helper()
	if err := s.Publish(os.Stdout, os.Getenv(failover.EnvJSON)); err != nil {
		t.Errorf("write summary: %v", err)
	}
	for _, v := range s.Violations() {
		t.Error(v)
	}
}
