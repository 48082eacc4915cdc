package commitlog

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"
)

const kill9Env = "COMMITLOG_KILL9_DIR"

// TestKill9Child is the child half of TestKill9: it appends in SYNC mode
// forever, printing every acked index, until the parent SIGKILLs it.
func TestKill9Child(t *testing.T) {
	dir := os.Getenv(kill9Env)
	if dir == "" {
		t.Skip("child process of TestKill9")
	}
	opts := testOpts(dir)
	if os.Getenv(kill9Env+"_ASYNC") != "" {
		opts.Flush = FlushAsync
	}
	s, err := Open(opts)
	if err != nil {
		fmt.Printf("open-error %v\n", err)
		os.Exit(2)
	}
	next, _ := s.LastIndex()
	next++
	for {
		batch := 1 + int(next%5)
		logs := mkLogs(next, next+uint64(batch)-1, 1, varied)
		if err := s.StoreLogs(logs); err != nil {
			fmt.Printf("store-error %v\n", err)
			os.Exit(3)
		}
		next += uint64(batch)
		fmt.Printf("acked %d\n", next-1)
	}
}

// TestKill9 runs the child, kills it with SIGKILL mid-stream, reopens the
// store and checks that every index the child saw acked is present and
// intact. Three rounds, each continuing the same store. In ASYNC mode the
// acked records are only in the page cache, which survives a process kill,
// so they must survive too.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, mode := range []FlushMode{FlushSync, FlushAsync} {
		t.Run(mode.String(), func(t *testing.T) { runKill9(t, mode) })
	}
}

func runKill9(t *testing.T, mode FlushMode) {
	dir := t.TempDir()
	var acked uint64
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.count=1")
		cmd.Env = append(os.Environ(), kill9Env+"="+dir)
		if mode == FlushAsync {
			cmd.Env = append(cmd.Env, kill9Env+"_ASYNC=1")
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		target := acked + 150 + uint64(round*37)
		sc := bufio.NewScanner(out)
		killed := false
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "acked "); ok {
				n, err := strconv.ParseUint(rest, 10, 64)
				if err != nil {
					t.Fatalf("bad line %q", line)
				}
				acked = n
				if n >= target && !killed {
					if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					killed = true
				}
			} else if strings.HasPrefix(line, "open-error") || strings.HasPrefix(line, "store-error") {
				t.Fatalf("child: %s", line)
			}
		}
		err = cmd.Wait()
		if !killed {
			t.Fatalf("child exited before being killed: %v", err)
		}
		s, err := Open(testOpts(dir))
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		if s.WasCleanShutdown() {
			t.Fatal("kill -9 looked like a clean shutdown")
		}
		last, _ := s.LastIndex()
		if last < acked {
			t.Fatalf("round %d: recovered through %d, child had acked %d", round, last, acked)
		}
		for i := uint64(1); i <= acked; i++ {
			var l raft.Log
			if err := s.GetLog(i, &l); err != nil {
				t.Fatalf("round %d: acked index %d: %v", round, i, err)
			}
			checkLog(t, s, mkLog(i, 1, varied(i)))
		}
		acked = last // unacked but recovered records are fine; continue from them
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: killed after ack %d, recovered through %d", round, target, last)
	}
}
