package interop

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/raftmq/raftmq/remoting"
)

// This file is the broker tests' own small process harness: it builds
// bin/raftmq once per test binary, starts namesrv/broker/standalone child
// processes on free loopback ports and stops them by PID.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// raftmqBinary builds cmd/raftmq into a temporary directory once.
func raftmqBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		rlog.SetLogLevel("error")
		dir, err := os.MkdirTemp("", "raftmq-interop-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "raftmq")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/raftmq")
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func loopback(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// proc is one child process.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	ready   chan struct{}
}

// startProc runs the binary with args; readyWord, when non-empty, is a
// stdout substring that marks the process ready.
func startProc(t *testing.T, name, readyWord string, args ...string) *proc {
	t.Helper()
	bin := raftmqBinary(t)
	// RAFTMQ_INTEROP_LOGDIR keeps the child logs after the test.
	logDir := os.Getenv("RAFTMQ_INTEROP_LOGDIR")
	if logDir == "" {
		logDir = t.TempDir()
	}
	logPath := filepath.Join(logDir, fmt.Sprintf("%s-%s-%d.log", strings.ReplaceAll(t.Name(), "/", "_"), name, time.Now().UnixNano()))
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{}), ready: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if readyWord != "" && strings.Contains(sc.Text(), readyWord) {
				once.Do(func() { close(p.ready) })
			}
		}
	}()
	go func() {
		cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(10 * time.Second)
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				tail := b
				if len(tail) > 6000 {
					tail = tail[len(tail)-6000:]
				}
				t.Logf("---- %s log tail ----\n%s", name, tail)
			}
		}
	})
	return p
}

// waitReady waits for the ready line.
func (p *proc) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.ready:
	case <-p.done:
		t.Fatalf("%s exited before it was ready (log %s)", p.name, p.logPath)
	case <-time.After(timeout):
		t.Fatalf("%s not ready after %v", p.name, timeout)
	}
}

// stop sends SIGTERM and waits, then SIGKILL.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitTCP waits until addr accepts connections.
func waitTCP(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening after %v", addr, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// standalone is a `raftmq standalone` process.
type standalone struct {
	proc                   *proc
	namesrvAddr, brokerAdr string
}

func startStandalone(t *testing.T, extra ...string) *standalone {
	t.Helper()
	return startStandaloneAt(t, standaloneSpec{dir: t.TempDir(), ns: freePort(t), broker: freePort(t), raft: freePort(t)}, extra...)
}

// standaloneSpec fixes a standalone's store and ports, so that a test can
// restart it in place.
type standaloneSpec struct {
	dir              string
	ns, broker, raft int
}

func startStandaloneAt(t *testing.T, s standaloneSpec, extra ...string) *standalone {
	t.Helper()
	args := append([]string{"standalone", "-storePathRootDir", s.dir,
		"-namesrvListen", loopback(s.ns), "-listen", loopback(s.broker),
		"-dLegerPeers", "n0-" + loopback(s.raft), "-logLevel", "warn"}, extra...)
	p := startProc(t, "standalone", "ready", args...)
	p.waitReady(t, 60*time.Second)
	return &standalone{proc: p, namesrvAddr: loopback(s.ns), brokerAdr: loopback(s.broker)}
}

// cluster is a namesrv and a three-node broker group as separate processes.
type cluster struct {
	namesrvAddr string
	namesrv     *proc
	brokers     []*proc
	addrs       []string
}

func startCluster(t *testing.T, extra ...string) *cluster {
	t.Helper()
	nsPort := freePort(t)
	c := &cluster{namesrvAddr: loopback(nsPort)}
	c.namesrv = startProc(t, "namesrv", "", "namesrv", "-listen", c.namesrvAddr, "-logLevel", "warn")
	waitTCP(t, c.namesrvAddr, 30*time.Second)
	var peers []string
	var ports []int
	for i := 0; i < 3; i++ {
		ports = append(ports, freePort(t))
		peers = append(peers, fmt.Sprintf("n%d-%s", i, loopback(freePort(t))))
	}
	for i := 0; i < 3; i++ {
		addr := loopback(ports[i])
		args := []string{"broker",
			"-n", c.namesrvAddr, "-brokerIP1", "127.0.0.1", "-listenHost", "127.0.0.1",
			"-listenPort", fmt.Sprint(ports[i]), "-storePathRootDir", t.TempDir(),
			"-brokerName", "broker-a", "-dLegerGroup", "broker-a",
			"-dLegerPeers", strings.Join(peers, ";"), "-dLegerSelfId", fmt.Sprintf("n%d", i),
			"-logLevel", "warn"}
		p := startProc(t, fmt.Sprintf("broker-n%d", i), "ready", append(args, extra...)...)
		c.brokers = append(c.brokers, p)
		c.addrs = append(c.addrs, addr)
	}
	for _, p := range c.brokers {
		p.waitReady(t, 60*time.Second)
	}
	return c
}

// routeLeader asks the namesrv which address is brokerId 0 for topic, "" if none.
func routeLeader(t *testing.T, cl *remoting.Client, namesrvAddr, topic string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	r, err := cl.Invoke(ctx, namesrvAddr, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil))
	if err != nil || r.Code != 0 {
		return ""
	}
	s := string(r.Body)
	i := strings.Index(s, `"0":"`)
	if i < 0 {
		return ""
	}
	s = s[i+5:]
	return s[:strings.IndexByte(s, '"')]
}

// waitRouteLeader waits until the namesrv names a brokerId 0 for topic that
// is not excluded, and returns it.
func waitRouteLeader(t *testing.T, namesrvAddr, topic, exclude string, timeout time.Duration) string {
	t.Helper()
	cl := remoting.NewClient(remoting.ClientConfig{})
	defer cl.Close()
	deadline := time.Now().Add(timeout)
	for {
		if a := routeLeader(t, cl, namesrvAddr, topic); a != "" && a != exclude {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("no brokerId 0 for %s (excluding %q) after %v", topic, exclude, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
