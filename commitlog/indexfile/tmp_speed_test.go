package indexfile

import (
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestTmpSpeed(t *testing.T) {
	size := fileSize(4, 12)
	rng := rand.New(rand.NewSource(1))
	start := time.Now()
	for i := 0; i < 200; i++ {
		dir := t.TempDir()
		content := make([]byte, size)
		rng.Read(content[:rng.Intn(size)])
		os.WriteFile(filepath.Join(dir, formatName(t0)), content, 0o644)
		t1 := time.Now()
		s, err := Open(Options{Dir: dir, SlotNum: 4, MaxIndexNum: 12, FlushInterval: -1, noSync: true})
		if err != nil {
			t.Fatal(err)
		}
		s.Query("k", 100, 0, 1<<62)
		for j := int64(0); j < 5; j++ {
			s.Put("k", j, t0)
		}
		s.TruncateFrom(2)
		s.Close()
		if d := time.Since(t1); d > 50*time.Millisecond {
			t.Logf("iteration %d took %v", i, d)
		}
	}
	t.Logf("200 iterations: %v", time.Since(start))
}
