package indexfile

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// threadCPU measures the on-CPU time of the benchmark's own thread, so a
// figure can be reported that does not depend on how busy the shared
// machine is: b.ReportMetric(cpu-ns/op) next to the wall-clock ns/op.
type threadCPU struct{ start int64 }

func startThreadCPU(b *testing.B) *threadCPU {
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
	return &threadCPU{start: threadCPUNanos()}
}

func (c *threadCPU) report(b *testing.B) {
	b.ReportMetric(float64(threadCPUNanos()-c.start)/float64(b.N), "cpu-ns/op")
}

func threadCPUNanos() int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
