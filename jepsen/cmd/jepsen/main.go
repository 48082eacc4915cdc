// Command jepsen runs raftmq's partition and crash tests against a docker-compose
// cluster it brings up itself, checks the history and writes a report.
//
//	jepsen run -nemesis partition-leader,kill-leader -time 60s -runs 1
//	jepsen list
//	jepsen clean
//	jepsen check results/<run>/history.jsonl
//
// A run is bounded in time (-time plus fixed budgets for start-up, recovery and
// drain, and a hard -deadline) and removes its containers, network and volumes on
// every exit path: normal end, error, SIGINT/SIGTERM, or deadline.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/raftmq/raftmq/client/admin"
	"github.com/raftmq/raftmq/jepsen/checker"
	"github.com/raftmq/raftmq/jepsen/cluster"
	"github.com/raftmq/raftmq/jepsen/history"
	"github.com/raftmq/raftmq/jepsen/nemesis"
	"github.com/raftmq/raftmq/jepsen/report"
	"github.com/raftmq/raftmq/jepsen/workload"
	"github.com/raftmq/raftmq/wire"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runCmd(os.Args[2:])
	case "clean":
		err = cleanCmd()
	case "list":
		for _, s := range nemesis.All() {
			fmt.Printf("%-26s %d members  %s\n", s.Name, s.Members, s.Doc)
		}
		fmt.Printf("%-26s %d members  %s\n", "mix", 3, "a random 3-member nemesis per fault window")
	case "check":
		err = checkCmd(os.Args[2:])
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "jepsen:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: jepsen run [flags] | jepsen list | jepsen clean | jepsen check HISTORY.jsonl")
}

type options struct {
	nemeses   []string
	runs      int
	duration  time.Duration
	quiet     time.Duration
	hold      time.Duration
	image     string
	results   string
	producers int
	rate      float64
	queues    int
	official  bool
	consumers bool
	deadline  time.Duration
	verbose   bool
	seed      uint64
	strictOff bool
	sendToAny bool
}

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var o options
	nem := fs.String("nemesis", "all", "comma-separated nemeses, 'all' (every safe one), or 'mix'; see `jepsen list`")
	fs.IntVar(&o.runs, "runs", 1, "runs per nemesis")
	fs.DurationVar(&o.duration, "time", 60*time.Second, "workload time per run (faults come and go within it)")
	fs.DurationVar(&o.quiet, "interval", 8*time.Second, "fault-free time before each fault window")
	fs.DurationVar(&o.hold, "hold", 10*time.Second, "length of each fault window")
	fs.StringVar(&o.image, "image", envOr("RAFTMQ_JEPSEN_IMAGE", "raftmq:jepsen"), "docker image (env RAFTMQ_JEPSEN_IMAGE)")
	fs.StringVar(&o.results, "results", defaultResults(), "results directory")
	fs.IntVar(&o.producers, "producers", 4, "own-client producers (producer p sends to queue p % queues)")
	fs.Float64Var(&o.rate, "rate", 25, "sends per second per producer")
	fs.IntVar(&o.queues, "queues", 4, "queues of the test topic")
	fs.BoolVar(&o.official, "official", true, "also run a producer on the official RocketMQ Go client")
	fs.BoolVar(&o.consumers, "consumers", true, "run consumers that pull and commit offsets")
	fs.DurationVar(&o.deadline, "deadline", 0, "hard bound for the whole command (default: runs x (time + 4 min))")
	fs.BoolVar(&o.verbose, "v", false, "debug logs")
	fs.Uint64Var(&o.seed, "seed", uint64(time.Now().UnixNano()), "random seed for nemesis choices")
	fs.BoolVar(&o.sendToAny, "send-to-any", false, "own-client producers send to a random member, not the leader (tests follower forwarding)")
	fs.BoolVar(&o.strictOff, "strict-offsets", false, "fail a run whose acknowledged consumer offset commits go backward")
	_ = fs.Parse(args)

	specs, err := selectNemeses(*nem)
	if err != nil {
		return err
	}
	if o.deadline <= 0 {
		o.deadline = time.Duration(len(specs)*o.runs) * (o.duration + 4*time.Minute)
	}
	level := hclog.Info
	if o.verbose {
		level = hclog.Debug
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "jepsen", Level: level, Output: os.Stderr})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.deadline)
	defer cancel()

	root, err := filepath.Abs(o.results)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	var runs []*report.Run
	allOK := true
	for _, spec := range specs {
		for i := 1; i <= o.runs; i++ {
			if ctx.Err() != nil {
				break
			}
			name := fmt.Sprintf("%s-%s-%d", time.Now().UTC().Format("20060102T150405"), spec.Name, i)
			run, err := runOne(ctx, log, o, spec, filepath.Join(root, name), name)
			if err != nil {
				log.Error("run failed", "run", name, "err", err)
				allOK = false
				if run == nil {
					continue
				}
			}
			runs = append(runs, run)
			report.Summary(os.Stdout, run)
			if run.Verdict != "PASS" {
				allOK = false
			}
		}
	}
	if err := report.Index(root, append(loadRuns(root, runs), runs...)); err != nil {
		log.Warn("index page", "err", err)
	}
	fmt.Printf("\n%d runs, report: %s\n", len(runs), filepath.Join(root, "index.html"))
	if ctx.Err() != nil {
		return fmt.Errorf("stopped early: %w", context.Cause(ctx))
	}
	if !allOK {
		return errors.New("FAIL")
	}
	fmt.Println("PASS")
	return nil
}

// loadRuns reads earlier runs' results.json files in root for the index (the ones
// this invocation produced are passed separately).
func loadRuns(root string, skip []*report.Run) []*report.Run {
	have := map[string]bool{}
	for _, r := range skip {
		have[r.Name] = true
	}
	files, _ := filepath.Glob(filepath.Join(root, "*", "results.json"))
	var out []*report.Run
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var r report.Run
		if json.Unmarshal(b, &r) != nil || r.Result == nil || have[r.Name] {
			continue
		}
		out = append(out, &r)
	}
	return out
}

func selectNemeses(arg string) ([]nemesis.Spec, error) {
	if arg == "all" {
		var out []nemesis.Spec
		for _, s := range nemesis.All() {
			if !s.Unsafe {
				out = append(out, s)
			}
		}
		return out, nil
	}
	var out []nemesis.Spec
	for _, n := range strings.Split(arg, ",") {
		s, err := nemesis.Lookup(strings.TrimSpace(n))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// defaultResults is jepsen/results from the repository root, else results (both
// ignored by git).
func defaultResults() string {
	if _, err := os.Stat(filepath.Join("jepsen", "go.mod")); err == nil {
		return filepath.Join("jepsen", "results")
	}
	return "results"
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// runOne runs one nemesis once, from cluster start to teardown.
func runOne(ctx context.Context, log hclog.Logger, o options, spec nemesis.Spec, dir, name string) (_ *report.Run, err error) {
	log = log.Named(spec.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	project := cluster.NewProjectName()
	log.Info("starting cluster", "project", project, "members", spec.Members, "dir", dir)
	cl, err := cluster.Up(ctx, project, cluster.Config{
		Image: o.image, Members: spec.Members, Dir: dir, Logger: log,
		TmpfsSize: map[bool]string{true: "192m"}[spec.Tmpfs], SegmentSize: spec.SegmentSize,
	})
	if err != nil {
		return nil, err
	}
	// Teardown runs on every path, with its own budget, even after ctx ended.
	defer func() {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if lerr := cl.SaveLogs(tctx, filepath.Join(dir, "logs")); lerr != nil {
			log.Warn("saving logs", "err", lerr)
		}
		if derr := cl.Down(tctx); derr != nil {
			log.Warn("teardown", "err", derr)
		}
		log.Info("cluster removed", "project", project)
	}()

	started := time.Now()
	rec, err := history.NewRecorder(started, filepath.Join(dir, "history.jsonl"))
	if err != nil {
		return nil, err
	}
	defer rec.Close()
	ac, err := admin.New(cl.NamesrvAddrs(), 3*time.Second)
	if err != nil {
		return nil, err
	}
	defer ac.Close()
	client := workload.NewClient()
	defer client.Close()
	tracker := workload.NewTracker(cl.Members, ac)

	// Wait for a leader and the test topic.
	wctx, wcancel := context.WithTimeout(ctx, 90*time.Second)
	defer wcancel()
	l, err := tracker.WaitLeader(wctx)
	if err != nil {
		return nil, fmt.Errorf("no leader within 90 s: %w", err)
	}
	log.Info("leader elected", "leader", l.Name, "after", time.Since(started).Round(time.Millisecond))
	topic := "jepsen"
	for {
		err = ac.CreateTopic(wctx, "", "broker-a", wire.NewTopicConfig(topic, int32(o.queues), wire.PermRead|wire.PermWrite))
		if err == nil {
			break
		}
		if wctx.Err() != nil {
			return nil, fmt.Errorf("create topic: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if _, err := tracker.WaitLeader(wctx); err != nil {
		return nil, err
	}
	log.Info("topic created; workload starts", "queues", o.queues)

	env := &nemesis.Env{Cluster: cl, Tracker: tracker, Admin: ac, Client: client, Log: log, Rand: rand.New(rand.NewPCG(o.seed, uint64(len(name))))}
	trackCtx, trackStop := context.WithCancel(ctx)
	defer trackStop()
	go tracker.Run(trackCtx, 300*time.Millisecond)

	wlCtx, wlStop := context.WithCancel(ctx)
	defer wlStop()
	runner := workload.NewRunner(workload.Config{Topic: topic, Queues: o.queues, Producers: o.producers, Rate: o.rate, Consumers: o.consumers, Pad: spec.Pad, SendToAny: o.sendToAny}, cl, tracker, rec, client)
	wait := runner.Start(wlCtx)
	officialDone := make(chan error, 1)
	officialProc := 50
	if o.official {
		go func() {
			officialDone <- workload.OfficialProducer(wlCtx, rec, cl.NamesrvAddrs(), topic, officialProc, o.rate, filepath.Join(dir, "official-client.log"))
		}()
	} else {
		officialDone <- nil
	}

	// Fault schedule: quiet, fault, heal ... while a full window fits.
	var nemLog []string
	logNem := func(format string, a ...any) {
		line := fmt.Sprintf("%7.1fs ", time.Since(started).Seconds()) + fmt.Sprintf(format, a...)
		nemLog = append(nemLog, line)
		log.Info(line)
	}
	nem := spec.New()
	nemErrors := 0
	end := time.Now().Add(o.duration)
	healedAt := time.Now()
	for ctx.Err() == nil && time.Now().Add(o.quiet+o.hold).Before(end.Add(time.Second)) {
		sleepCtx(ctx, o.quiet)
		if ctx.Err() != nil {
			break
		}
		startedAt := rec.Now()
		desc, serr := nem.Start(ctx, env)
		// A mix names the fault it chose, so the report's windows say what ran.
		window := spec.Name
		if spec.Name == "mix" {
			window = "mix:" + strings.SplitN(desc, ":", 2)[0]
		}
		rec.Add(history.Op{Process: history.NemesisProcess, Type: history.Invoke, F: history.FNemesis, Value: window, Time: startedAt})
		if serr != nil {
			nemErrors++
			logNem("start %s: %s: ERROR %v", spec.Name, desc, serr)
		} else {
			logNem("start %s: %s", spec.Name, desc)
		}
		sleepCtx(ctx, o.hold)
		hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		herr := nem.Stop(hctx, env)
		hcancel()
		typ := history.OK
		if herr != nil {
			typ = history.Info
			logNem("heal %s: ERROR %v", spec.Name, herr)
		} else {
			logNem("heal %s", spec.Name)
		}
		rec.Add(history.Op{Process: history.NemesisProcess, Type: typ, F: history.FNemesis, Value: window, Error: errString(herr)})
		healedAt = time.Now()
	}
	// Final heal of anything left, then let the workload see the recovery.
	hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	if herr := nemesis.HealAll(hctx, env); herr != nil {
		logNem("final heal: ERROR %v", herr)
	}
	hcancel()
	if d := time.Until(end); d > 0 {
		sleepCtx(ctx, d)
	}
	sleepCtx(ctx, max(0, 8*time.Second-time.Since(healedAt)))
	wlStop()
	wait()
	if oerr := <-officialDone; oerr != nil {
		logNem("official producer: ERROR %v", oerr)
	}
	workEnd := time.Now()

	// Converge, then drain every member.
	run := &report.Run{Name: name, Nemesis: spec.Name, Project: project, Image: o.image, Members: spec.Members, Started: started.UTC(),
		Unsafe: spec.Unsafe, HistoryFile: "history.jsonl", ConvergeS: -1}
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	if cerr := tracker.WaitConverged(cctx); cerr != nil {
		run.Notes = append(run.Notes, "members did not converge within 60 s after the workload stopped: "+cerr.Error())
	} else {
		run.ConvergeS = time.Since(workEnd).Seconds()
	}
	ccancel()
	drainStart := time.Now()
	workload.Drain(context.WithoutCancel(ctx), client, rec, cl.Members, topic, o.queues, 60*time.Second)
	run.DrainS = time.Since(drainStart).Seconds()
	run.Duration = time.Since(started).Seconds()
	run.NemesisLog = nemLog
	if err := rec.Close(); err != nil {
		return nil, err
	}

	var memberNames []string
	for _, m := range cl.Members {
		memberNames = append(memberNames, m.Name)
	}
	run.Result = checker.Check(rec.Ops(), checker.Options{Members: memberNames, OfficialProcesses: map[int]bool{officialProc: true}, StrictOffsets: o.strictOff})
	run.Verdict = "FAIL"
	if run.Result.Valid != spec.Unsafe {
		run.Verdict = "PASS"
	}
	if spec.Unsafe {
		if run.Result.LostCount > 0 {
			run.Notes = append(run.Notes, fmt.Sprintf("unsafe mode: the checker reported %d lost acked messages, as it must", run.Result.LostCount))
		} else {
			run.Verdict = "FAIL"
			run.Notes = append(run.Notes, "unsafe mode: the checker found no loss; it proves nothing")
		}
	}
	if run.ConvergeS < 0 && !spec.Unsafe {
		// A group that does not converge after every fault healed is stuck recovery.
		run.Verdict = "FAIL"
	}
	if nemErrors > 0 {
		run.Verdict = "FAIL"
		run.Notes = append(run.Notes, fmt.Sprintf("the nemesis failed to start %d times (see the nemesis log): the run did not test what it claims", nemErrors))
	}
	if err := report.Write(dir, run, rec.Ops()); err != nil {
		return run, err
	}
	return run, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func cleanCmd() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	projects, err := cluster.Clean(ctx)
	for _, p := range projects {
		fmt.Println("removed", p)
	}
	if len(projects) == 0 {
		fmt.Println("no jepsen projects left over")
	}
	return err
}

func checkCmd(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: jepsen check HISTORY.jsonl")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	ops, err := history.Read(f)
	if err != nil {
		return err
	}
	r := checker.Check(ops, checker.Options{OfficialProcesses: map[int]bool{50: true}})
	run := &report.Run{Name: filepath.Base(filepath.Dir(args[0]))}
	// Next to a run's results.json, re-judge the run and rewrite its report.
	resultsPath := filepath.Join(filepath.Dir(args[0]), "results.json")
	if b, err := os.ReadFile(resultsPath); err == nil && json.Unmarshal(b, run) == nil {
		defer func() {
			if err := report.Write(filepath.Dir(args[0]), run, ops); err != nil {
				fmt.Fprintln(os.Stderr, "jepsen: rewriting report:", err)
			}
		}()
	}
	run.Result = r
	run.Verdict = map[bool]string{true: "PASS", false: "FAIL"}[r.Valid != run.Unsafe]
	report.Summary(os.Stdout, run)
	if !r.Valid {
		return errors.New("FAIL")
	}
	return nil
}
