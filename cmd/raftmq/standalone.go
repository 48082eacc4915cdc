package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/raftmq/raftmq/broker"
	"github.com/raftmq/raftmq/namesrv"
)

func init() {
	register("standalone", "run a namesrv and a single-node broker group in one process (make run)", runStandalone)
}

// standaloneDefaults is the configuration of `raftmq standalone`: everything
// on loopback, one-peer group, auto-created topics.
func standaloneDefaults() broker.Config {
	cfg := broker.DefaultConfig()
	cfg.NamesrvAddrs = []string{"127.0.0.1:9876"}
	cfg.BrokerIP1 = "127.0.0.1"
	cfg.ListenHost = "127.0.0.1"
	cfg.ListenPort = 10911
	cfg.DLegerGroup = "broker-a"
	cfg.DLegerSelfID = "n0"
	cfg.DLegerPeers = "n0-127.0.0.1:40911"
	cfg.StorePathRootDir = "data/standalone"
	cfg.AutoCreateTopicEnable = true
	return cfg
}

// takeFlag removes -name value (or -name=value) from args.
func takeFlag(args []string, name string) ([]string, string, bool) {
	out := make([]string, 0, len(args))
	val, found := "", false
	for i := 0; i < len(args); i++ {
		n := strings.TrimLeft(args[i], "-")
		if v, ok := strings.CutPrefix(n, name+"="); ok && strings.HasPrefix(args[i], "-") {
			val, found = v, true
			continue
		}
		if n == name && strings.HasPrefix(args[i], "-") && i+1 < len(args) {
			val, found = args[i+1], true
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out, val, found
}

func runStandalone(args []string) int {
	if wantsHelp(args) {
		printConfigHelp("standalone", " [-listen host:port] [-namesrvListen host:port]")
		return 2
	}
	args, level := splitLogLevel(args)
	args, nsListen, _ := takeFlag(args, "namesrvListen")
	if nsListen == "" {
		nsListen = "127.0.0.1:9876"
	}
	args, listen, hasListen := takeFlag(args, "listen")
	base := standaloneDefaults()
	base.NamesrvAddrs = []string{nsListen}
	cfg, warnings, err := broker.LoadConfig(base, args)
	if err == nil && hasListen {
		err = setListen(&cfg, listen)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "raftmq standalone:", err)
		return 2
	}
	log := newLogger("standalone", level)
	for _, w := range warnings {
		log.Warn(w)
	}

	ns := namesrv.New(namesrv.Config{ListenAddr: nsListen, Logger: log.Named("namesrv")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := ns.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "raftmq standalone:", err)
		return 1
	}
	b, err := broker.Start(cfg, broker.Options{Logger: log.Named("broker")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "raftmq standalone:", err)
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = ns.Shutdown(sctx)
		return 1
	}
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	err = b.WaitLeader(wctx)
	wcancel()
	if err != nil {
		// The ready line promises that a client can send; without a
		// registered leader it could not.
		log.Error("the single-node group did not become leader and register with the namesrv", "error", err)
		sctx, scancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer scancel()
		_ = b.Close(sctx)
		_ = ns.Shutdown(sctx)
		return 1
	}
	fmt.Printf("raftmq standalone ready: namesrv %s, broker %s at %s (cluster %s, raft %s), store %s\n",
		ns.Addr(), cfg.BrokerName, b.Addr(), cfg.BrokerClusterName, cfg.DLegerPeers, cfg.StorePathRootDir)
	sig := waitSignal()
	log.Info("stopping", "signal", sig.String())
	sctx, scancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer scancel()
	code := 0
	if err := b.Close(sctx); err != nil {
		log.Error("broker stop", "error", err)
		code = 1
	}
	if err := ns.Shutdown(sctx); err != nil {
		log.Error("namesrv stop", "error", err)
		code = 1
	}
	return code
}

// setListen applies -listen host:port to the broker's bind and advertised address.
func setListen(cfg *broker.Config, hostport string) error {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 {
		return fmt.Errorf("-listen %q: want host:port", hostport)
	}
	if err := cfg.Set("listenPort", hostport[i+1:]); err != nil {
		return err
	}
	if host := hostport[:i]; host != "" {
		if err := cfg.Set("listenHost", host); err != nil {
			return err
		}
		if host != "0.0.0.0" {
			return cfg.Set("brokerIP1", host)
		}
	}
	return nil
}
