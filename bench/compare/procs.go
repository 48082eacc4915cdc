package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// processes are the servers this command started; stopAll ends each by its
// PID (SIGTERM, then SIGKILL after a grace period) and reaps it.
type processes struct {
	mu   sync.Mutex
	list []*exec.Cmd
}

// start runs a server in the background with its output in logPath.
func (p *processes) start(logPath string, name string, args ...string) error {
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	f.Close() // the child holds its own descriptor
	p.mu.Lock()
	p.list = append(p.list, cmd)
	p.mu.Unlock()
	logf("started %s (pid %d), log %s", name, cmd.Process.Pid, logPath)
	return nil
}

// stopGrace is how long a server gets to stop after SIGTERM.
const stopGrace = 20 * time.Second

func (p *processes) stopAll() {
	p.mu.Lock()
	list := p.list
	p.list = nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, cmd := range list {
		wg.Add(1)
		go func(cmd *exec.Cmd) {
			defer wg.Done()
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(stopGrace):
				logf("pid %d did not stop in %s: killing it", cmd.Process.Pid, stopGrace)
				_ = cmd.Process.Kill()
				<-done
			}
		}(cmd)
	}
	wg.Wait()
}

// runTool runs a client command to completion within timeout, with its
// combined output copied to logPath, and returns that output.
func runTool(ctx context.Context, timeout time.Duration, logPath string, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if logPath != "" {
		_ = os.WriteFile(logPath, append([]byte(fmt.Sprintf("$ %s %v\n", name, args)), out.Bytes()...), 0o644)
	}
	if err != nil {
		return out.Bytes(), fmt.Errorf("%s %v: %w: %s", name, args, err, tail(out.Bytes(), 400))
	}
	return out.Bytes(), nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}
