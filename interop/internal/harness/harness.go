// Package harness starts raftmq's own binary (bin/raftmq) as child processes for
// end-to-end tests: it locates or builds the binary, runs a subcommand with
// flags, waits until the process's port answers, captures its output (written
// to the test log when the test fails), and stops it by PID on cleanup.
//
// Typical use:
//
//	ns := harness.Start(t, "namesrv", harness.Options{
//		Addr: harness.FreeAddr(t),
//		Args: func(addr string) []string { return []string{"-listen", addr} },
//	})
//	// ... talk to ns.Addr ...
//
// Every process is stopped when the test ends (SIGTERM, then SIGKILL after
// Options.StopTimeout). Tests may also Stop, Kill, Pause and Resume it to inject
// faults.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Environment variables understood by the harness.
const (
	// EnvBinary, when set, is the raftmq binary to run (no build, no staleness check).
	EnvBinary = "RAFTMQ_BIN"
	// EnvVerbose, when set to 1, writes process logs to the test log even when the
	// test passes.
	EnvVerbose = "RAFTMQ_HARNESS_LOG"
)

const mainModule = "module github.com/raftmq/raftmq\n"

// RepoRoot returns the directory of the main raftmq module, found by walking up
// from the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := findRoot()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return root
}

func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte(mainModule)) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of github.com/raftmq/raftmq above the working directory")
		}
		dir = parent
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the raftmq binary tests run: $RAFTMQ_BIN if set; else
// <root>/bin/raftmq when it is newer than every Go source of the main module
// (what `make interop` builds); else a fresh build into <root>/interop/bin
// (git-ignored), done once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() { binPath, binErr = locateBinary() })
	if binErr != nil {
		t.Fatalf("harness: raftmq binary: %v", binErr)
	}
	return binPath
}

func locateBinary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBinary, p, err)
		}
		return p, nil
	}
	root, err := findRoot()
	if err != nil {
		return "", err
	}
	made := filepath.Join(root, "bin", "raftmq")
	if fresh, err := newerThanSources(made, root); err == nil && fresh {
		return made, nil
	}
	dir := filepath.Join(root, "interop", "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Build to a private name and rename: test binaries of several packages may
	// build at the same time.
	tmp := filepath.Join(dir, fmt.Sprintf("raftmq.%d.tmp", os.Getpid()))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, "./cmd/raftmq")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build ./cmd/raftmq: %v\n%s", err, out)
	}
	final := filepath.Join(dir, "raftmq")
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return final, nil
}

// newerThanSources reports whether bin exists and is newer than every .go file,
// go.mod and go.sum of the main module (the interop module excluded).
func newerThanSources(bin, root string) (bool, error) {
	st, err := os.Stat(bin)
	if err != nil {
		return false, err
	}
	built := st.ModTime()
	stale := errors.New("stale")
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "bin", "data", "interop", "testdata", "node_modules":
				if p != root {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if name := d.Name(); strings.HasSuffix(name, ".go") || name == "go.mod" || name == "go.sum" {
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.ModTime().After(built) {
				return stale
			}
		}
		return nil
	})
	if errors.Is(err, stale) {
		return false, nil
	}
	return err == nil, err
}

// FreeAddr returns a loopback address with a port that was free a moment ago
// (the usual listen-on-0-and-close trick; a child process must bind it itself).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: free port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Options describe one child process.
type Options struct {
	// Addr is the host:port the process will listen on; Start waits until it
	// accepts TCP connections. Empty: do not wait.
	Addr string
	// Args returns the subcommand's arguments given Addr.
	Args func(addr string) []string
	// Env is added to the test process's environment.
	Env []string
	// Dir is the working directory; default a fresh t.TempDir().
	Dir string
	// ReadyTimeout bounds the wait for Addr; default 60 s.
	ReadyTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL; default 15 s.
	StopTimeout time.Duration
}

// Process is a running raftmq subcommand.
type Process struct {
	Name string // subcommand, for messages
	Addr string // Options.Addr
	Dir  string // working directory

	t    testing.TB
	cmd  *exec.Cmd
	out  *logBuffer
	opts Options

	done    chan struct{} // closed when the process has exited
	waitErr error

	stopOnce sync.Once
	stopErr  error
}

// Start runs `raftmq <subcommand> <args>` and waits until Addr answers. The
// process is stopped when the test ends; its output goes to the test log if the
// test failed (or $RAFTMQ_HARNESS_LOG=1).
func Start(t testing.TB, subcommand string, opts Options) *Process {
	t.Helper()
	p, err := start(t, subcommand, opts)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return p
}

func start(t testing.TB, subcommand string, opts Options) (*Process, error) {
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 60 * time.Second
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 15 * time.Second
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	var args []string
	if opts.Args != nil {
		args = opts.Args(opts.Addr)
	}
	bin := Binary(t)
	p := &Process{
		Name: subcommand, Addr: opts.Addr, Dir: opts.Dir,
		t: t, out: &logBuffer{limit: 4 << 20}, opts: opts, done: make(chan struct{}),
	}
	p.cmd = exec.Command(bin, append([]string{subcommand}, args...)...)
	p.cmd.Dir = opts.Dir
	p.cmd.Env = append(os.Environ(), opts.Env...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", subcommand, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Logf("harness: stopping %s (pid %d): %v", p.Name, p.PID(), err)
		}
		if t.Failed() || os.Getenv(EnvVerbose) == "1" {
			t.Logf("harness: output of %s %s (pid %d):\n%s", subcommand, strings.Join(args, " "), p.PID(), p.Log())
		}
	})
	if opts.Addr != "" {
		if err := p.waitReady(); err != nil {
			return nil, fmt.Errorf("%s on %s: %w\n--- output ---\n%s", subcommand, opts.Addr, err, p.Log())
		}
	}
	return p, nil
}

func (p *Process) waitReady() error {
	deadline := time.Now().Add(p.opts.ReadyTimeout)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("exited before listening: %v", p.waitErr)
		default:
		}
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening after %v: %v", p.opts.ReadyTimeout, err)
		}
		select {
		case <-p.done:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// PID returns the child's process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Log returns everything the process wrote to stdout and stderr so far (the
// last 4 MiB).
func (p *Process) Log() string { return p.out.String() }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process (e.g. syscall.SIGSTOP to simulate a hang).
func (p *Process) Signal(sig os.Signal) error {
	select {
	case <-p.done:
		return os.ErrProcessDone
	default:
	}
	return p.cmd.Process.Signal(sig)
}

// Pause stops the process with SIGSTOP; Resume continues it.
func (p *Process) Pause() error { return p.Signal(syscall.SIGSTOP) }

// Resume continues a paused process.
func (p *Process) Resume() error { return p.Signal(syscall.SIGCONT) }

// Stop ends the process gracefully: SIGCONT (in case it is paused), SIGTERM, and
// SIGKILL if it has not exited after Options.StopTimeout. It returns the exit
// error of a process that did not exit cleanly on SIGTERM. Safe to call twice.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.stop(syscall.SIGTERM) })
	return p.stopErr
}

// Kill ends the process with SIGKILL (a crash) and waits for it.
func (p *Process) Kill() {
	p.stopOnce.Do(func() { p.stop(syscall.SIGKILL) })
}

func (p *Process) stop(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil // exited by itself; Wait's error is in the log
	default:
	}
	if sig != syscall.SIGKILL {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
		if sig == syscall.SIGKILL {
			return nil
		}
		return p.waitErr
	case <-time.After(p.opts.StopTimeout):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("did not exit within %v of %v; killed", p.opts.StopTimeout, sig)
}

// logBuffer is a concurrency-safe buffer keeping the last limit bytes.
type logBuffer struct {
	mu    sync.Mutex
	buf   []byte
	limit int
	cut   bool
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.limit; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.cut = true
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut {
		return "[... earlier output dropped ...]\n" + string(b.buf)
	}
	return string(b.buf)
}

// StartNamesrv starts `raftmq namesrv` on a free loopback port with extra flags
// and waits until it answers; its address is the returned Process's Addr.
func StartNamesrv(t testing.TB, extraArgs ...string) *Process {
	t.Helper()
	return Start(t, "namesrv", Options{
		Addr: FreeAddr(t),
		Args: func(addr string) []string { return append([]string{"-listen", addr}, extraArgs...) },
	})
}

// WaitForLog waits until the process's output contains substr (e.g. a "ready"
// line). It fails early when the process exits.
func (p *Process) WaitForLog(substr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(p.Log(), substr) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %q not logged within %v", p.Name, substr, timeout)
		}
		select {
		case <-p.done:
			if strings.Contains(p.Log(), substr) {
				return nil
			}
			return fmt.Errorf("%s exited (%v) before logging %q", p.Name, p.waitErr, substr)
		case <-tick.C:
		}
	}
	return nil
}
