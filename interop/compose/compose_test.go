// Package compose holds the docker compose test: the real deployment (image,
// docker-compose.yml, two namesrvs, a three-node broker group) driven by the official
// RocketMQ Go client from the host, losing its leader mid-stream.
//
// It runs only when RAFTMQ_COMPOSE_TEST=1 (set by `make compose-test`, which builds the
// image first); otherwise it skips and says why.
package compose

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/raftmq/raftmq/client/admin"
	"github.com/raftmq/raftmq/wire"
)

const (
	project  = "raftmqcompose"
	group    = "broker-a"
	topic    = "ComposeFailover"
	namesrvs = "127.0.0.1:9876;127.0.0.1:9877"
)

// brokerPorts maps each broker service to the port it listens on and advertises.
var brokerPorts = map[string]string{
	"broker-a-n0": "10911",
	"broker-a-n1": "10921",
	"broker-a-n2": "10931",
}

func composeFile(t *testing.T) string {
	p, err := filepath.Abs("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dc(t *testing.T, args ...string) string {
	t.Helper()
	full := append([]string{"-p", project, "-f", composeFile(t)}, args...)
	out, err := exec.Command("docker-compose", full...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// waitFor polls cond until it returns nil or the deadline passes.
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

type ack struct {
	body  string
	begun time.Time // when the send started
	at    time.Time // when its acknowledgement arrived
}

func TestComposeLeaderLoss(t *testing.T) {
	if os.Getenv("RAFTMQ_COMPOSE_TEST") != "1" {
		t.Skip("compose test runs only under `make compose-test` (RAFTMQ_COMPOSE_TEST=1), which builds the image")
	}
	rlog.SetLogLevel("error")
	dc(t, "down", "-v", "--remove-orphans")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker-compose", "-p", project, "-f", composeFile(t), "logs", "--tail=80").CombinedOutput()
			t.Logf("compose logs:\n%s", out)
		}
		exec.Command("docker-compose", "-p", project, "-f", composeFile(t), "down", "-v", "--remove-orphans").Run()
	})
	dc(t, "up", "-d")

	adm, err := admin.New(admin.ParseAddrs(namesrvs), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx := context.Background()

	// The group is up when a leader is registered as brokerId 0 and all three members appear.
	var leaderAddr string
	waitFor(t, "a leader and three members of "+group, 90*time.Second, func() error {
		ci, err := adm.ClusterInfo(ctx)
		if err != nil {
			return err
		}
		bd, ok := ci.BrokerAddrTable[group]
		if !ok || bd.LeaderAddr() == "" || len(bd.BrokerAddrs) < 3 {
			return fmt.Errorf("group not complete yet: %+v", bd)
		}
		leaderAddr = bd.LeaderAddr()
		return nil
	})
	waitFor(t, "topic creation", 30*time.Second, func() error {
		return adm.CreateTopic(ctx, "", group, wire.TopicConfig{TopicName: topic, ReadQueueNums: 4, WriteQueueNums: 4})
	})

	p, err := producer.NewDefaultProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver(admin.ParseAddrs(namesrvs))),
		producer.WithGroupName("compose-producer"),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(3*time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()

	var (
		mu      sync.Mutex
		acks    []ack
		failed  int
		stop    = make(chan struct{})
		stopped = make(chan struct{})
	)
	ackCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acks) }
	go func() {
		defer close(stopped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			body := fmt.Sprintf("compose-%06d", i)
			begun := time.Now()
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			res, err := p.SendSync(sctx, primitive.NewMessage(topic, []byte(body)))
			cancel()
			mu.Lock()
			if err == nil && res.Status == primitive.SendOK {
				acks = append(acks, ack{body: body, begun: begun, at: time.Now()})
			} else {
				failed++
			}
			mu.Unlock()
			if err != nil {
				// Pace retries while the client still points at the dead leader.
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()

	waitFor(t, "200 acknowledged sends", 60*time.Second, func() error {
		if n := ackCount(); n < 200 {
			return fmt.Errorf("%d acks", n)
		}
		return nil
	})

	victim := ""
	for svc, port := range brokerPorts {
		if strings.HasSuffix(leaderAddr, ":"+port) {
			victim = svc
		}
	}
	if victim == "" {
		t.Fatalf("leader address %s is none of the compose brokers", leaderAddr)
	}
	container := strings.TrimSpace(dc(t, "ps", "-q", victim))
	mu.Lock()
	acksAtKill := len(acks)
	mu.Unlock()
	docker(t, "kill", container)
	// docker kill returns once SIGKILL is delivered; sends begun before that may
	// still have reached the live leader.
	killedAt := time.Now()
	t.Logf("killed leader %s (%s) after %d acks", victim, leaderAddr, acksAtKill)

	// Keep producing: the group elects a new leader and the client finds it.
	waitFor(t, "200 acknowledged sends after the kill", 3*time.Minute, func() error {
		if n := ackCount(); n < acksAtKill+200 {
			return fmt.Errorf("%d acks after the kill", n-acksAtKill)
		}
		return nil
	})
	mu.Lock()
	var lastBefore, firstAfter time.Time
	// A send in flight at the kill may still be acknowledged by the old leader, so
	// the gap ends with the first acknowledgement of a send begun after the kill.
	for _, a := range acks {
		if a.at.Before(killedAt) {
			lastBefore = a.at
		} else if firstAfter.IsZero() && !a.begun.Before(killedAt) {
			firstAfter = a.at
		}
	}
	mu.Unlock()
	gap := firstAfter.Sub(lastBefore)

	// Restart the killed node and time how long it takes to rejoin as a caught-up follower.
	restartedAt := time.Now()
	docker(t, "start", container)
	victimAddr := "127.0.0.1:" + brokerPorts[victim]
	waitFor(t, victim+" to rejoin as a caught-up follower", 2*time.Minute, func() error {
		st, err := adm.RaftStatus(ctx, victimAddr)
		if err != nil {
			return err
		}
		if !strings.EqualFold(st.Role, "follower") || st.LeaderID == "" {
			return fmt.Errorf("role %s leader %q", st.Role, st.LeaderID)
		}
		all, err := adm.GroupRaftStatus(ctx, group)
		if err != nil {
			return err
		}
		for _, o := range all {
			if strings.EqualFold(o.Role, "leader") && st.AppliedIndex+64 < o.CommitIndex {
				return fmt.Errorf("applied %d, leader commit %d", st.AppliedIndex, o.CommitIndex)
			}
		}
		return nil
	})
	rejoin := time.Since(restartedAt)

	close(stop)
	<-stopped
	mu.Lock()
	want := make(map[string]bool, len(acks))
	for _, a := range acks {
		want[a.body] = true
	}
	sendFailures := failed
	mu.Unlock()

	// Consume everything from the first offset and check every acknowledged message arrived.
	var (
		gotMu sync.Mutex
		got   = map[string]bool{}
	)
	c, err := consumer.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver(admin.ParseAddrs(namesrvs))),
		consumer.WithGroupName("compose-verifier"),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		gotMu.Lock()
		for _, m := range msgs {
			got[string(m.Body)] = true
		}
		gotMu.Unlock()
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	waitFor(t, "every acknowledged message to be consumed", 3*time.Minute, func() error {
		gotMu.Lock()
		defer gotMu.Unlock()
		missing := 0
		for b := range want {
			if !got[b] {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d acknowledged messages not consumed yet", missing, len(want))
		}
		return nil
	})

	report := fmt.Sprintf("compose leader loss: %d acknowledged, %d failed sends, all consumed; "+
		"ack gap across the kill %v; killed node rejoined in %v", len(want), sendFailures, gap.Round(time.Millisecond), rejoin.Round(time.Millisecond))
	t.Log(report)
	fmt.Println(report)
}
