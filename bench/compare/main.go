// Command compare is `make bench-compare`: it measures raftmq and NATS
// JetStream side by side on this machine, with the same shapes (1 KiB
// messages: sync publish with 1 and with 16 publishers, async publish with
// 256 in flight, consuming a backlog) and prints the ratio tables.
//
// It installs nats-server and the nats CLI (`nats bench`) as Go modules into
// <dir>/bin, runs every server on 127.0.0.1 only with its store under <dir>,
// and stops every process it started by its PID (also on Ctrl-C). raftmq is
// driven by `raftmq bench` (the project's own remoting client, sends to the
// group's leader); NATS by `nats bench` connected to the stream leader.
//
// Configurations: raftmq 3 nodes SYNC_FLUSH ("raftmq3"), 1 node SYNC_FLUSH
// ("raftmq1sync") and ASYNC_FLUSH ("raftmq1async"); NATS R3 with fsync on
// every write ("r3sync") and by default ("r3"), R1 likewise ("r1sync", "r1").
// Only ratios from one run mean anything: absolute figures swing about 2x
// between machines of this class and with the load of others on a shared one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	dir         string
	raftmq      string
	configs     []string
	shapes      []string
	reps        int
	size        int
	window      int
	sync1Msgs   int
	sync16Msgs  int
	asyncMsgs   int
	backlog     int
	slowAsync   int // async and backlog counts for r1sync, which fsyncs each message alone
	slowBacklog int
	portBase    int
	natsServer  string
	natsCLI     string
	timeout     time.Duration
}

var allConfigs = []string{"raftmq3", "r3sync", "r3", "raftmq1sync", "raftmq1async", "r1sync", "r1"}
var allShapes = []string{shapeSync1, shapeSync16, shapeAsync, shapeConsume}

// Shapes of load, the same on both systems.
const (
	shapeSync1   = "sync1"
	shapeSync16  = "sync16"
	shapeAsync   = "async"
	shapeConsume = "consume"
)

func main() {
	var o options
	var configs, shapes string
	flag.StringVar(&o.dir, "dir", "/tmp/raftmq-bench", "work directory: tools in bin/, stores, logs and results")
	flag.StringVar(&o.raftmq, "raftmq", "bin/raftmq", "the raftmq binary")
	flag.StringVar(&configs, "configs", strings.Join(allConfigs, ","), "configurations to run, in order")
	flag.StringVar(&shapes, "shapes", strings.Join(allShapes, ","), "shapes to run")
	flag.IntVar(&o.reps, "reps", 1, "runs of each shape (the table shows the median)")
	flag.IntVar(&o.size, "size", 1024, "message bytes")
	flag.IntVar(&o.window, "window", 256, "in-flight sends of the async shape")
	flag.IntVar(&o.sync1Msgs, "sync1-msgs", 10000, "messages of the 1-publisher sync shape")
	flag.IntVar(&o.sync16Msgs, "sync16-msgs", 64000, "messages of the 16-publisher sync shape (in total)")
	flag.IntVar(&o.asyncMsgs, "async-msgs", 200000, "messages of the async shape")
	flag.IntVar(&o.backlog, "backlog", 200000, "messages of the backlog the consume shape reads")
	flag.IntVar(&o.slowAsync, "r1sync-async-msgs", 50000, "async messages for r1sync (no group commit: one fsync per message)")
	flag.IntVar(&o.slowBacklog, "r1sync-backlog", 100000, "backlog for r1sync")
	flag.IntVar(&o.portBase, "port-base", 24000, "first of the loopback ports used (about 1000 above it)")
	flag.StringVar(&o.natsServer, "nats-server-version", "v2.15.2", "github.com/nats-io/nats-server/v2 version")
	flag.StringVar(&o.natsCLI, "natscli-version", "v0.5.1", "github.com/nats-io/natscli version")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "bound of any one benchmark command")
	flag.Parse()
	o.configs = splitList(configs)
	o.shapes = splitList(shapes)
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-compare:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	procs := &processes{}
	err := run(ctx, &o, procs)
	procs.stopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-compare:", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, f)
	}
	return out
}

func (o *options) check() error {
	for _, c := range o.configs {
		if !contains(allConfigs, c) {
			return fmt.Errorf("unknown configuration %q (have %s)", c, strings.Join(allConfigs, ","))
		}
	}
	for _, s := range o.shapes {
		if !contains(allShapes, s) {
			return fmt.Errorf("unknown shape %q (have %s)", s, strings.Join(allShapes, ","))
		}
	}
	if o.reps < 1 || o.size < 1 || o.window < 1 || o.portBase < 1024 || o.portBase > 60000 {
		return errors.New("reps, size and window must be positive, port-base in 1024..60000")
	}
	abs, err := filepath.Abs(o.raftmq)
	if err != nil {
		return err
	}
	o.raftmq = abs
	if _, err := os.Stat(o.raftmq); err != nil {
		return fmt.Errorf("raftmq binary: %w (run make build)", err)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func run(ctx context.Context, o *options, procs *processes) error {
	resDir := filepath.Join(o.dir, "results", time.Now().UTC().Format("20060102T150405Z"))
	if err := os.MkdirAll(filepath.Join(resDir, "logs"), 0o755); err != nil {
		return err
	}
	res := newResults(resDir)
	needNATS := false
	for _, c := range o.configs {
		needNATS = needNATS || !strings.HasPrefix(c, "raftmq")
	}
	if needNATS {
		if err := installNATS(ctx, o); err != nil {
			return err
		}
	}
	for _, c := range o.configs {
		if ctx.Err() != nil {
			break
		}
		res.load(c, "before")
		var err error
		if strings.HasPrefix(c, "raftmq") {
			err = runRaftmq(ctx, o, procs, res, c)
		} else {
			err = runNATS(ctx, o, procs, res, c)
		}
		procs.stopAll()
		// Stores run to gigabytes (preallocated segments, every backlog):
		// nothing reads them once their servers are gone.
		if err := os.RemoveAll(filepath.Join(o.dir, "store", c)); err != nil {
			logf("%s: cannot remove its store: %v", c, err)
		}
		res.load(c, "after")
		if err != nil {
			logf("%s: %v (continuing with the next configuration)", c, err)
			res.note(fmt.Sprintf("%s failed: %v", c, err))
		}
	}
	out := res.render(o)
	fmt.Print(out)
	if err := os.WriteFile(filepath.Join(resDir, "summary.md"), []byte(out), 0o644); err != nil {
		return err
	}
	logf("results in %s", resDir)
	return res.save()
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
