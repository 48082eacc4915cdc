package harness

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/remoting"
)

func startNamesrv(t *testing.T) *Process { return StartNamesrv(t, "-logLevel", "debug") }

func topicList(cli *remoting.Client, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := cli.Invoke(ctx, addr, remoting.NewRequest(remoting.GetAllTopicListFromNameserver, nil, nil))
	if err != nil {
		return err
	}
	if resp.Code != remoting.Success {
		return errors.New(resp.Remark)
	}
	return nil
}

func TestStartPauseResumeStop(t *testing.T) {
	p := startNamesrv(t)
	cli := remoting.NewClient(remoting.ClientConfig{})
	defer cli.Close()
	if err := topicList(cli, p.Addr, 10*time.Second); err != nil {
		t.Fatalf("namesrv does not answer: %v", err)
	}
	if err := p.WaitForLog("boot success", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitForLog("no such line", 50*time.Millisecond); err == nil {
		t.Fatal("WaitForLog found a line never logged")
	}
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := topicList(cli, p.Addr, 300*time.Millisecond); err == nil {
		t.Fatal("a paused process answered")
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := topicList(cli, p.Addr, 10*time.Second); err != nil {
		t.Fatalf("resumed namesrv does not answer: %v", err)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("SIGTERM did not end the namesrv cleanly: %v", err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned before the process exited")
	}
	if !strings.Contains(p.Log(), "boot success") || !strings.Contains(p.Log(), "stopped") {
		t.Fatalf("log not captured:\n%s", p.Log())
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestKill(t *testing.T) {
	p := startNamesrv(t)
	p.Kill()
	if err := p.WaitForLog("never", time.Minute); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("WaitForLog on a dead process: %v", err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Kill returned before the process exited")
	}
	if err := p.Signal(nil); err == nil {
		t.Fatal("signalling an exited process succeeded")
	}
}

func TestStartFailsWhenProcessExits(t *testing.T) {
	// A bad flag makes the subcommand exit at once; start must say so rather
	// than wait for the port.
	_, err := start(t, "namesrv", Options{
		Addr:         FreeAddr(t),
		Args:         func(string) []string { return []string{"-no-such-flag"} },
		ReadyTimeout: time.Minute,
	})
	if err == nil || !strings.Contains(err.Error(), "exited before listening") {
		t.Fatalf("start error: %v", err)
	}
}

func TestLogBufferKeepsTail(t *testing.T) {
	b := &logBuffer{limit: 8}
	b.Write([]byte("0123456789"))
	b.Write([]byte("ab"))
	if got := b.String(); !strings.HasSuffix(got, "456789ab") || !strings.HasPrefix(got, "[...") {
		t.Fatalf("got %q", got)
	}
}
