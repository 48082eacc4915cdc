package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// installNATS puts nats-server and nats (the CLI with `nats bench`) of the
// chosen versions into <dir>/bin with `go install`, unless they are there.
func installNATS(ctx context.Context, o *options) error {
	bin := filepath.Join(o.dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	tools := []struct{ exe, module, version string }{
		{"nats-server", "github.com/nats-io/nats-server/v2", o.natsServer},
		{"nats", "github.com/nats-io/natscli/nats", o.natsCLI},
	}
	for _, t := range tools {
		exe := filepath.Join(bin, t.exe)
		if out, err := exec.CommandContext(ctx, exe, "--version").CombinedOutput(); err == nil &&
			strings.Contains(string(out), strings.TrimPrefix(t.version, "v")) {
			continue
		}
		logf("installing %s@%s into %s (a few minutes from a cold module cache)", t.module, t.version, bin)
		cmd := exec.CommandContext(ctx, "go", "install", t.module+"@"+t.version)
		cmd.Dir = o.dir // outside any module: the tool's own go.mod decides its dependencies
		cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go install %s@%s: %w: %s", t.module, t.version, err, tail(out, 800))
		}
	}
	return nil
}

// natsLayout is a NATS configuration: nodes (and stream replicas) and
// whether JetStream fsyncs every write.
func natsLayout(config string) (nodes int, syncAlways bool) {
	switch config {
	case "r3sync":
		return 3, true
	case "r3":
		return 3, false
	case "r1sync":
		return 1, true
	default:
		return 1, false
	}
}

// natsEnv is a running NATS configuration.
type natsEnv struct {
	o        *options
	bin      string
	nodes    int
	urls     []string // client URL of each node
	monitors []int
}

func (e *natsEnv) nats() string { return filepath.Join(e.bin, "nats") }
func (e *natsEnv) all() string  { return strings.Join(e.urls, ",") }

// startNATS writes the configuration files and starts the servers.
func startNATS(ctx context.Context, o *options, procs *processes, res *results, config string) (*natsEnv, error) {
	nodes, syncAlways := natsLayout(config)
	root := filepath.Join(o.dir, "store", config)
	if err := os.RemoveAll(root); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	e := &natsEnv{o: o, bin: filepath.Join(o.dir, "bin"), nodes: nodes}
	syncLine := ""
	if syncAlways {
		syncLine = "  sync_interval: always\n"
	}
	var routes []string
	for i := 0; i < nodes; i++ {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", o.portBase+2222+i))
	}
	for i := 0; i < nodes; i++ {
		client, monitor := o.portBase+222+i, o.portBase+1222+i
		conf := fmt.Sprintf("server_name: n%d\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n"+
			"jetstream {\n  store_dir: %q\n  max_file_store: 20GB\n  max_memory_store: 256MB\n%s}\n",
			i+1, client, monitor, filepath.Join(root, fmt.Sprintf("n%d", i+1)), syncLine)
		if nodes > 1 {
			conf += fmt.Sprintf("cluster {\n  name: bench\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n",
				o.portBase+2222+i, strings.Join(routes, ", "))
		}
		path := filepath.Join(root, fmt.Sprintf("n%d.conf", i+1))
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		log := filepath.Join(res.dir, "logs", fmt.Sprintf("%s_n%d.log", config, i+1))
		if err := procs.start(log, filepath.Join(e.bin, "nats-server"), "-c", path); err != nil {
			return nil, err
		}
		e.urls = append(e.urls, fmt.Sprintf("nats://127.0.0.1:%d", client))
		e.monitors = append(e.monitors, monitor)
	}
	for _, m := range e.monitors {
		if err := waitHealthy(ctx, m, 60*time.Second); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// waitHealthy polls a server's /healthz until it answers 200.
func waitHealthy(ctx context.Context, port int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nats-server with monitor port %d not healthy: %w", port, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// newStream deletes and re-creates the stream benchstream (subjects bench.>,
// file storage, one replica per node) and returns its leader's client URL:
// publishers talk to the leader, as a RocketMQ producer talks to the master.
func (e *natsEnv) newStream(ctx context.Context) (string, error) {
	_, _ = runTool(ctx, 30*time.Second, "", e.nats(), "-s", e.all(), "stream", "rm", "benchstream", "-f")
	var err error
	for try := 0; try < 20; try++ {
		_, err = runTool(ctx, 30*time.Second, "", e.nats(), "-s", e.all(), "stream", "add", "benchstream",
			"--subjects=bench.>", "--storage=file", "--replicas="+strconv.Itoa(e.nodes), "--retention=limits",
			"--discard=old", "--max-bytes=4GB", "--max-msgs=-1", "--max-age=0", "--dupe-window=2m", "--defaults")
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if err != nil {
		return "", err
	}
	out, err := runTool(ctx, 30*time.Second, "", e.nats(), "-s", e.all(), "stream", "info", "benchstream", "-j")
	if err != nil {
		return "", err
	}
	var info struct {
		Cluster struct {
			Leader string `json:"leader"`
		} `json:"cluster"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("stream info: %w", err)
	}
	// Servers are named n1..nN after their index.
	if n, err := strconv.Atoi(strings.TrimPrefix(info.Cluster.Leader, "n")); err == nil && n >= 1 && n <= len(e.urls) {
		return e.urls[n-1], nil
	}
	return e.urls[0], nil
}

// runNATS starts one NATS configuration, runs every shape with `nats bench`
// and stops it.
func runNATS(ctx context.Context, o *options, procs *processes, res *results, config string) error {
	e, err := startNATS(ctx, o, procs, res, config)
	if err != nil {
		return err
	}
	logf("%s: %d node(s) up", config, e.nodes)
	asyncMsgs, backlog := o.asyncMsgs, o.backlog
	if config == "r1sync" {
		asyncMsgs, backlog = o.slowAsync, o.slowBacklog
	}
	size := fmt.Sprintf("--size=%dB", o.size)
	for rep := 1; rep <= o.reps; rep++ {
		for _, shape := range o.shapes {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			leader, err := e.newStream(ctx)
			if err != nil {
				return err
			}
			bench := []string{"bench", "js", "-s", leader}
			var args []string
			switch shape {
			case shapeSync1:
				args = append(bench, "pub", "sync", "bench.s", "--msgs="+strconv.Itoa(o.sync1Msgs), size, "--clients=1", "--no-progress")
			case shapeSync16:
				args = append(bench, "pub", "sync", "bench.s", "--msgs="+strconv.Itoa(o.sync16Msgs), size, "--clients=16", "--no-progress")
			case shapeAsync:
				args = append(bench, "pub", "async", "bench.a", "--msgs="+strconv.Itoa(asyncMsgs), size, "--clients=1",
					"--batch="+strconv.Itoa(o.window), "--no-progress")
			case shapeConsume:
				fill := append(bench, "pub", "async", "bench.b", "--msgs="+strconv.Itoa(backlog), size, "--clients=1",
					"--batch="+strconv.Itoa(o.window), "--no-progress")
				if s, err := natsBench(ctx, o, e, res, config, "backlog_fill", rep, fill); err == nil {
					res.add(config, "backlog_fill", rep, s)
				} else {
					return err
				}
				args = append(bench, "consume", "--msgs="+strconv.Itoa(backlog), size, "--clients=1", "--batch=500", "--no-progress")
			}
			s, err := natsBench(ctx, o, e, res, config, shape, rep, args)
			if err != nil {
				res.note(fmt.Sprintf("%s %s rep %d failed: %v", config, shape, rep, err))
				continue
			}
			res.add(config, shape, rep, s)
		}
	}
	_, _ = runTool(ctx, 30*time.Second, "", e.nats(), "-s", e.all(), "stream", "rm", "benchstream", "-f")
	return nil
}

func natsBench(ctx context.Context, o *options, e *natsEnv, res *results, config, shape string, rep int, args []string) (sample, error) {
	logf("%s %s rep %d (leader %s)", config, shape, rep, args[3])
	log := filepath.Join(res.dir, "logs", fmt.Sprintf("%s_%s_%d.log", config, shape, rep))
	out, err := runTool(ctx, o.timeout, log, e.nats(), args...)
	if err != nil {
		return sample{}, err
	}
	s, err := parseNATSBench(string(out))
	if err == nil {
		logf("  %.0f msg/s, p50 %.2f ms, p99 %.2f ms", s.rate, float64(s.p50)/1000, float64(s.p99)/1000)
	}
	return s, err
}

var (
	natsRate    = regexp.MustCompile(`stats: ([\d,]+) msgs/sec`)
	natsAggLats = regexp.MustCompile(`latencies per operation.*`)
	natsP50     = regexp.MustCompile(`P50:? ([\d,.]+)us`)
	natsP99     = regexp.MustCompile(`P99:? ([\d,.]+)us`)
)

// parseNATSBench reads the rate and the p50/p99 latencies (µs) from `nats
// bench` output: the aggregated line of a multi-client run when present, else
// the single client's stats line. Latencies are 0 when it prints none
// (consumers).
func parseNATSBench(out string) (sample, error) {
	var s sample
	rates := natsRate.FindAllStringSubmatch(out, -1)
	if len(rates) == 0 {
		return s, errors.New("nats bench output has no msgs/sec figure")
	}
	// With several clients the aggregated stats come last.
	r, err := strconv.ParseFloat(strings.ReplaceAll(rates[len(rates)-1][1], ",", ""), 64)
	if err != nil {
		return s, err
	}
	s.rate = r
	src := natsAggLats.FindString(out)
	if src == "" {
		for _, line := range strings.Split(out, "\n") {
			if natsRate.MatchString(line) {
				src = line
			}
		}
	}
	s.p50 = micros(natsP50.FindStringSubmatch(src))
	s.p99 = micros(natsP99.FindStringSubmatch(src))
	return s, nil
}

func micros(m []string) int64 {
	if len(m) < 2 {
		return 0
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(m[1], ",", ""), 64)
	if err != nil {
		return 0
	}
	return int64(v + 0.5)
}
