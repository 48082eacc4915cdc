package broker

import (
	"runtime"
	"sync"
	"testing"
)

// TestRunnersBound: at most max functions run at once; beyond it tryGo
// refuses (the caller then serves the write itself), and a finished slot is
// taken again.
func TestRunnersBound(t *testing.T) {
	r := newRunners(3)
	release := make(chan struct{})
	var started, done sync.WaitGroup
	for i := 0; i < 3; i++ {
		started.Add(1)
		done.Add(1)
		if !r.tryGo(func() { started.Done(); <-release; done.Done() }) {
			t.Fatalf("run %d refused below the bound", i)
		}
	}
	started.Wait()
	if r.tryGo(func() { t.Error("ran beyond the bound") }) {
		t.Fatal("a fourth function was taken while three run")
	}
	close(release)
	done.Wait()
	for r.busy.Load() != 0 { // the runners count down right after their function returns
		runtime.Gosched()
	}
	ran := make(chan struct{})
	if !r.tryGo(func() { close(ran) }) {
		t.Fatal("refused after the others finished")
	}
	<-ran
}
