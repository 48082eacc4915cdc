package remoting

import (
	"fmt"
	"testing"
	"time"

	"github.com/armon/go-metrics"
)

// TestMetrics installs an in-memory sink as the global registry (the one raft
// reports to) and checks the per-code request counter, busy counter and timer.
func TestMetrics(t *testing.T) {
	sink := metrics.NewInmemSink(time.Hour, time.Hour)
	cfg := metrics.DefaultConfig("test")
	cfg.EnableHostname = false
	cfg.EnableRuntimeMetrics = false
	if _, err := metrics.NewGlobal(cfg, sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { metrics.NewGlobal(metrics.DefaultConfig("test"), &metrics.BlackholeSink{}) })

	_, addr := startServer(t, ServerConfig{}, func(s *Server) { s.Handle(HeartBeat, "", echo) })
	c := newTestClient(t, ClientConfig{})
	for range 3 {
		if _, err := c.Invoke(testCtx(t), addr, NewRequest(HeartBeat, nil, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Invoke(testCtx(t), addr, NewRequest(9999, nil, nil)); err != nil {
		t.Fatal(err)
	}
	counters := map[string]int{}
	timers := map[string]int{}
	// The server records metrics before it writes the response, so they are in.
	for _, iv := range sink.Data() {
		iv.RLock()
		for k, v := range iv.Counters {
			counters[k] = int(v.Sum)
		}
		for k, v := range iv.Samples {
			timers[k] = v.Count
		}
		iv.RUnlock()
	}
	if timers["test.remoting.server.handle;code=34"] != 3 {
		t.Fatalf("timers: %v", timers)
	}
	if counters["test.remoting.server.requests;code=34"] != 3 || counters["test.remoting.server.requests;code=other"] != 1 {
		t.Fatalf("counters: %s", fmt.Sprint(counters))
	}
}
