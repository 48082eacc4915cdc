package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/raftmq/raftmq/bench"
	"github.com/raftmq/raftmq/client/admin"
)

func init() {
	register("bench", "load a broker group: producers (sync or async window) or a consumer draining a backlog", runBench)
}

func runBench(args []string) int {
	cfg := bench.DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	namesrv := fs.String("n", "127.0.0.1:9876", "namesrv `addrs`, separated by ; (each group's leader, brokerId 0, is addressed)")
	brokers := fs.String("broker", "", "broker `addrs` to send to directly, separated by ; (skips the namesrv)")
	mode := fs.String("mode", string(cfg.Mode), "produce or consume (drain the backlog of the topics)")
	fs.StringVar(&cfg.Cluster, "cluster", "", "only groups of this cluster")
	fs.StringVar(&cfg.BrokerName, "brokerName", "", "only this broker group")
	fs.BoolVar(&cfg.ViaAliases, "aliases", false, "send to the topic's write aliases (name@member) instead of the leader: measures the forwarding hop")
	fs.StringVar(&cfg.Topic, "topic", cfg.Topic, "topic, or name prefix with -topics > 1")
	fs.IntVar(&cfg.Topics, "topics", cfg.Topics, "number of topics")
	fs.IntVar(&cfg.Queues, "queues", cfg.Queues, "queues per topic")
	fs.BoolVar(&cfg.CreateTopic, "create", cfg.CreateTopic, "create the topics on each leader first (produce mode)")
	fs.IntVar(&cfg.Connections, "connections", cfg.Connections, "TCP connections")
	fs.IntVar(&cfg.Producers, "producers", 0, "senders, spread over the connections (default: one per connection)")
	fs.BoolVar(&cfg.Async, "async", false, "keep -window requests in flight per connection instead of one per sender")
	fs.IntVar(&cfg.Window, "window", cfg.Window, "in-flight requests per connection with -async")
	fs.IntVar(&cfg.Size, "size", cfg.Size, "message body bytes")
	fs.BoolVar(&cfg.UniqKey, "uniqkey", cfg.UniqKey, "give every message a UNIQ_KEY, as the official clients do")
	fs.Int64Var(&cfg.Messages, "messages", 0, "stop after this many messages (0 = no limit)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "stop after this long (0 = no limit)")
	fs.StringVar(&cfg.Group, "group", "", "consumer group (consume mode; default bench-<time>)")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "messages asked per pull (consume mode; the broker may answer fewer)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "per-request timeout")
	fs.DurationVar(&cfg.Interval, "interval", cfg.Interval, "progress line period (negative = none)")
	jsonPath := fs.String("json", "", "write the JSON summary to this `file`")
	cpuProfile := fs.String("cpuprofile", "", "write the bench client's own CPU profile to this `file` (what the client costs)")
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, `usage: raftmq bench [flags]

Producers send 1 message per request to every queue of the topics in turn, to each
group's leader; -async keeps -window requests in flight per connection. -mode consume
drains what the queues hold when it starts. A progress line per -interval goes to
stderr, the summary to stdout, -json FILE writes it as JSON. Examples:

  raftmq bench -n 127.0.0.1:9876 -connections 16 -duration 20s         16 sync publishers
  raftmq bench -n 127.0.0.1:9876 -async -window 256 -messages 200000   async, 256 in flight
  raftmq bench -n 127.0.0.1:9876 -mode consume -json consume.json      drain the backlog

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "raftmq bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg.Mode = bench.Mode(*mode)
	cfg.BrokerAddrs = admin.ParseAddrs(*brokers)
	if len(cfg.BrokerAddrs) == 0 {
		cfg.NamesrvAddrs = admin.ParseAddrs(*namesrv)
	}
	if (cfg.Mode == bench.ModeConsume || cfg.Messages > 0) && !isSet(fs, "duration") {
		cfg.Duration = 0 // a count, or the whole backlog, ends the run
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "raftmq bench:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "raftmq bench:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	sum, err := bench.Run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "raftmq bench:", err)
		return 2
	}
	fmt.Print(sum.Text())
	if *jsonPath != "" {
		if err := sum.WriteJSON(*jsonPath); err != nil {
			fmt.Fprintln(os.Stderr, "raftmq bench:", err)
			return 1
		}
	}
	if sum.Messages == 0 {
		return 1
	}
	return 0
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
