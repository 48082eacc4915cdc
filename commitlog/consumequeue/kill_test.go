package consumequeue

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

const killDirEnv = "CONSUMEQUEUE_KILL_TEST_DIR"

// TestKillChildWriter is the child half of TestKillNine: it appends until
// it is killed (or gives up after a bound, so it always ends), printing how
// many entries Put has returned for.
func TestKillChildWriter(t *testing.T) {
	dir := os.Getenv(killDirEnv)
	if dir == "" {
		t.Skip("child process of TestKillNine")
	}
	s, err := Open(Options{Dir: dir, EntriesPerFile: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := int64(0); i < 2_000_000; i++ {
		if err := s.Put("T", 0, i, entryAt(i)); err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 {
			fmt.Fprintln(out, i+1)
			out.Flush()
		}
	}
}

// TestKillNine kills a writer process with SIGKILL mid-stream and checks
// that reopening gives a valid prefix holding at least every entry the
// writer had reported.
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
			if n >= 20_000 {
				break
			}
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if reported < 20_000 {
		t.Fatalf("child reported only %d entries", reported)
	}
	s := openTest(t, dir, 1000)
	mx := s.MaxOffset("T", 0)
	if mx < reported {
		t.Fatalf("after kill -9: MaxOffset %d < %d reported", mx, reported)
	}
	checkRange(t, s, "T", 0, 0, mx)
	putRange(t, s, "T", 0, mx, mx+10)
}
