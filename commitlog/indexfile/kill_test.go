package indexfile

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

const killDirEnv = "INDEXFILE_KILL_TEST_DIR"

// TestKillChildWriter is the child half of TestKillNine.
func TestKillChildWriter(t *testing.T) {
	dir := os.Getenv(killDirEnv)
	if dir == "" {
		t.Skip("child process of TestKillNine")
	}
	s, err := Open(Options{Dir: dir, SlotNum: 101, MaxIndexNum: 3000})
	if err != nil {
		t.Fatal(err)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := int64(0); i < 2_000_000; i++ {
		if err := s.Put(fmt.Sprintf("T#u%d", i), i*10, t0+i); err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 {
			fmt.Fprintln(out, i+1)
			out.Flush()
		}
	}
}

// TestKillNine kills an indexing process with SIGKILL and checks every key
// it had reported is found after reopening, across several rolled files.
func TestKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChildWriter$")
	cmd.Env = append(os.Environ(), killDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var reported int64
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if n, err := strconv.ParseInt(sc.Text(), 10, 64); err == nil {
			reported = n
			if n >= 10_000 {
				break
			}
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if reported < 10_000 {
		t.Fatalf("child reported only %d entries", reported)
	}
	s := openTest(t, dir, 101, 3000)
	if s.LastPhysOffset() < (reported-1)*10 {
		t.Fatalf("LastPhysOffset %d below %d", s.LastPhysOffset(), (reported-1)*10)
	}
	for i := int64(0); i < reported; i++ {
		got := query(t, s, fmt.Sprintf("T#u%d", i), 64, 0, 1<<62)
		found := false
		for _, p := range got {
			found = found || p == i*10
		}
		if !found {
			t.Fatalf("key %d (phys %d) lost after kill -9: %v", i, i*10, got)
		}
	}
	// Replay of the reported prefix adds nothing; new keys still index.
	last := s.LastPhysOffset()
	for i := int64(0); i*10 <= last; i++ {
		mustPut(t, s, fmt.Sprintf("T#u%d", i), i*10, t0+i)
	}
	if got := query(t, s, "T#u7", 64, 0, 1<<62); len(got) != 1 {
		t.Fatalf("replay duplicated: %v", got)
	}
}
