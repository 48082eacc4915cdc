package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/raftmq/raftmq/broker"
)

func init() {
	register("broker", "run a broker (one member of a Raft broker group): -c broker.conf [-n namesrv] [-key value ...]", runBroker)
}

// splitLogLevel removes -logLevel <level> from args (a flag of the binary,
// not a broker.conf key) and returns the level, default info.
func splitLogLevel(args []string) ([]string, hclog.Level) {
	level := hclog.Info
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		name := strings.TrimLeft(args[i], "-")
		if v, ok := strings.CutPrefix(name, "logLevel="); ok {
			level = hclog.LevelFromString(v)
			continue
		}
		if name == "logLevel" && i+1 < len(args) {
			level = hclog.LevelFromString(args[i+1])
			i++
			continue
		}
		out = append(out, args[i])
	}
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	return out, level
}

func newLogger(name string, level hclog.Level) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: level, Output: os.Stderr})
}

// waitSignal blocks until SIGINT or SIGTERM.
func waitSignal() os.Signal {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(ch)
	return <-ch
}

// wantsHelp reports -h/-help/--help among args.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

// printConfigHelp lists the flags and broker.conf keys a broker verb accepts.
func printConfigHelp(verb, extra string) {
	fmt.Fprintf(os.Stderr, "usage: raftmq %s [-c broker.conf] [-n namesrvAddr] [-key value ...] [-logLevel level] [-pprof 127.0.0.1:port [-pprofContention]]%s\n\nbroker.conf keys (also accepted as -key value):\n", verb, extra)
	for _, k := range broker.ConfigKeys() {
		fmt.Fprintf(os.Stderr, "  %s\n", k)
	}
}

func runBroker(args []string) int {
	if wantsHelp(args) {
		printConfigHelp("broker", "")
		return 2
	}
	args, level := splitLogLevel(args)
	args, pprofAddr, contention := splitPprof(args)
	cfg, warnings, err := broker.LoadConfig(broker.DefaultConfig(), args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "raftmq broker:", err)
		return 2
	}
	log := newLogger("broker", level)
	if pprofAddr != "" {
		a, err := startPprof(pprofAddr, contention)
		if err != nil {
			fmt.Fprintln(os.Stderr, "raftmq broker:", err)
			return 2
		}
		log.Info("pprof listening", "addr", a.String(), "mutexAndBlockProfiles", contention)
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	b, err := broker.Start(cfg, broker.Options{Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "raftmq broker:", err)
		return 1
	}
	fmt.Printf("raftmq broker ready: %s at %s, group %s member %s (members forward to %s; peers %s), namesrv %s, store %s\n",
		cfg.BrokerName, b.Addr(), cfg.DLegerGroup, cfg.DLegerSelfID, b.MemberAddr(), cfg.DLegerPeers,
		strings.Join(cfg.NamesrvAddrs, ";"), cfg.StorePathRootDir)
	sig := waitSignal()
	log.Info("stopping", "signal", sig.String())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		log.Error("stop", "error", err)
		return 1
	}
	return 0
}
