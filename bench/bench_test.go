package bench

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/broker"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/remoting"
)

// startGroup starts a namesrv and a single-node broker group (SYNC_FLUSH, the
// default) in-process on loopback and returns their addresses.
func startGroup(t *testing.T) (namesrvAddr, brokerAddr string) {
	t.Helper()
	log := hclog.NewNullLogger()
	ns := namesrv.New(namesrv.Config{ListenAddr: "127.0.0.1:0", Logger: log})
	if err := ns.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ns.Shutdown(ctx)
	})
	cfg := broker.DefaultConfig()
	cfg.NamesrvAddrs = []string{ns.Addr()}
	cfg.BrokerIP1 = "127.0.0.1"
	cfg.StorePathRootDir = t.TempDir()
	cfg.MappedFileSize = 8 << 20
	cfg.DLegerPeers = "n0-127.0.0.1:1"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport(raft.ServerAddress("127.0.0.1:1"))
	b, err := broker.Start(cfg, broker.Options{Logger: log, Listener: ln, RaftTransport: trans,
		RaftHeartbeatTimeout: 100 * time.Millisecond, RaftElectionTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("broker close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.WaitLeader(ctx); err != nil {
		t.Fatalf("single-node group did not elect itself: %v", err)
	}
	// The namesrv must list the group's leader before a namesrv-addressed run.
	ac := remoting.NewClient(remoting.ClientConfig{})
	defer ac.Close()
	for {
		cfg := Config{NamesrvAddrs: []string{ns.Addr()}, Timeout: time.Second}
		if ts, err := resolveTargets(ctx, &cfg); err == nil && len(ts) == 1 && ts[0].Addr == b.Addr() {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the namesrv never listed the broker as brokerId 0")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return ns.Addr(), b.Addr()
}

// TestBenchSmoke is the `make test` guard of `raftmq bench`: a short run of
// each mode against a real broker must move messages without an error, and
// the JSON summary must say so. It asserts counts, never speed.
func TestBenchSmoke(t *testing.T) {
	nsAddr, brokerAddr := startGroup(t)
	ctx := context.Background()
	dir := t.TempDir()

	// Sync producers, duration-bound, through the namesrv; JSON summary.
	cfg := DefaultConfig()
	cfg.NamesrvAddrs = []string{nsAddr}
	cfg.Topic = "SmokeTopic"
	cfg.Queues = 4
	cfg.Connections = 2
	cfg.Producers = 4
	cfg.Duration = 2 * time.Second
	cfg.Interval = 500 * time.Millisecond
	sum, err := Run(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sync.json")
	if err := sum.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	got := readSummary(t, path)
	if got.Messages <= 0 || got.Errors != 0 || got.Requests != got.Messages || got.Latency.Count != got.Messages {
		t.Fatalf("sync run: messages %d requests %d latency count %d errors %d %v",
			got.Messages, got.Requests, got.Latency.Count, got.Errors, got.ErrorsByClass)
	}
	if len(got.Targets) != 1 || got.Targets[0].Addr != brokerAddr || got.Targets[0].Role != "LEADER" ||
		got.Targets[0].FlushDiskType != "SYNC_FLUSH" {
		t.Fatalf("targets %+v, want the leader %s with SYNC_FLUSH", got.Targets, brokerAddr)
	}
	if got.Bytes != got.Messages*1024 || len(got.Intervals) == 0 {
		t.Fatalf("bytes %d for %d messages, %d intervals", got.Bytes, got.Messages, len(got.Intervals))
	}
	sent := got.Messages

	// Async window, count-bound, sent to the broker directly: exactly the budget.
	cfg = DefaultConfig()
	cfg.BrokerAddrs = []string{brokerAddr}
	cfg.Topic = "SmokeTopic"
	cfg.Queues = 4
	cfg.Async = true
	cfg.Window = 32
	cfg.Messages = 3000
	cfg.Duration = 0
	cfg.Interval = -1
	sum, err = Run(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Messages != 3000 || sum.Errors != 0 {
		t.Fatalf("async run: %d messages, %d errors %v; want 3000 and 0", sum.Messages, sum.Errors, sum.ErrorsByClass)
	}
	sent += sum.Messages

	// Consume: the backlog is everything sent above, read once.
	cfg = DefaultConfig()
	cfg.Mode = ModeConsume
	cfg.NamesrvAddrs = []string{nsAddr}
	cfg.Topic = "SmokeTopic"
	cfg.Queues = 4
	cfg.Batch = 64
	cfg.Duration = 0
	cfg.Interval = -1
	sum, err = Run(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Backlog != sent || sum.Messages != sent || sum.Errors != 0 {
		t.Fatalf("consume: backlog %d, read %d, errors %d %v; want %d, %d, 0",
			sum.Backlog, sum.Messages, sum.Errors, sum.ErrorsByClass, sent, sent)
	}
}

// TestBenchErrorsByCode: a refused send is counted under its code, not as a message.
func TestBenchErrorsByCode(t *testing.T) {
	_, brokerAddr := startGroup(t)
	cfg := DefaultConfig()
	cfg.BrokerAddrs = []string{brokerAddr}
	cfg.Topic = "SCHEDULE_TOPIC_XXXX" // a system topic the broker refuses sends to
	cfg.CreateTopic = false
	cfg.Queues = 1
	cfg.Messages = 5
	cfg.Duration = 0
	cfg.Interval = -1
	sum, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := responseClass(remoting.NoPermission)
	if sum.Messages != 0 || sum.Errors != 5 || sum.ErrorsByClass[want] != 5 {
		t.Fatalf("got %d messages, errors %v; want 0 and {%s: 5}", sum.Messages, sum.ErrorsByClass, want)
	}
}

func TestConfigRejectsBadInput(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"no address":    func(c *Config) { c.NamesrvAddrs, c.BrokerAddrs = nil, nil },
		"bad mode":      func(c *Config) { c.Mode = "both" },
		"no end":        func(c *Config) { c.Messages, c.Duration = 0, 0 },
		"huge body":     func(c *Config) { c.Size = maxSize + 1 },
		"too many qs":   func(c *Config) { c.Queues = 1025 },
		"empty topic":   func(c *Config) { c.Topic = "" },
		"negative size": func(c *Config) { c.Messages = -1 },
	} {
		cfg := DefaultConfig()
		cfg.BrokerAddrs = []string{"127.0.0.1:1"}
		mutate(&cfg)
		if _, err := Run(context.Background(), cfg, nil); err == nil {
			t.Errorf("%s: Run accepted it", name)
		}
	}
}

func readSummary(t *testing.T, path string) Summary {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("summary %s: %v", b, err)
	}
	return s
}

func testRecords(t testing.TB, n int) []byte {
	var out []byte
	for i := 0; i < n; i++ {
		e := &message.Ext{Message: message.Message{Topic: "T", Body: make([]byte, i*7),
			Properties: map[string]string{message.PropertyUniqKey: "K"}},
			BornHost: netip.MustParseAddrPort("127.0.0.1:1"), StoreHost: netip.MustParseAddrPort("127.0.0.1:2")}
		var err error
		if out, err = message.AppendRecord(out, e); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestCountRecords(t *testing.T) {
	body := testRecords(t, 5)
	if n, err := countRecords(body); n != 5 || err != nil {
		t.Fatalf("countRecords = %d, %v; want 5", n, err)
	}
	if n, err := countRecords(nil); n != 0 || err != nil {
		t.Fatalf("empty body: %d, %v", n, err)
	}
	for _, cut := range []int{1, 3, 50, len(body) - 1} {
		if _, err := countRecords(body[:cut]); !errors.Is(err, errBadRecord) {
			t.Errorf("body cut at %d: err %v, want errBadRecord", cut, err)
		}
	}
}

// FuzzCountRecords: any pull body is counted or refused, never a panic, and
// a count is never more records than the body could hold.
func FuzzCountRecords(f *testing.F) {
	f.Add(testRecords(f, 3))
	f.Add([]byte{0, 0, 0, 91})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := countRecords(body)
		if n*message.MinRecordSize > len(body) {
			t.Fatalf("counted %d records in %d bytes", n, len(body))
		}
		if err == nil && len(body) > 0 && n == 0 {
			t.Fatalf("non-empty body accepted with no record")
		}
	})
}
