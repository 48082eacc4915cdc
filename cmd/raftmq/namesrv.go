package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/raftmq/raftmq/acl"
	"github.com/raftmq/raftmq/namesrv"
)

func init() {
	register("namesrv", "run a name server (route registry): [-listen 0.0.0.0:9876] [-c namesrv.conf]", runNamesrv)
}

// namesrvFlags is the namesrv's command line; a RocketMQ namesrv.conf given with
// -c supplies defaults that explicit flags override.
type namesrvFlags struct {
	listen        string
	confFile      string
	scanInterval  time.Duration
	brokerTimeout time.Duration
	logLevel      string
	aclEnable     bool   // aclEnable: authenticate every request (ACL 1.0)
	aclFile       string // aclFile: the plain_acl.yml
}

func parseNamesrvFlags(args []string) (namesrvFlags, error) {
	var f namesrvFlags
	fs := flag.NewFlagSet("namesrv", flag.ContinueOnError)
	fs.StringVar(&f.listen, "listen", namesrv.DefaultListenAddr, "address to listen on (host:port)")
	fs.StringVar(&f.confFile, "c", "", "RocketMQ namesrv.conf properties file (listenPort, bindAddress, scanNotActiveBrokerInterval)")
	fs.DurationVar(&f.scanInterval, "scanInterval", namesrv.DefaultScanInterval, "how often silent brokers are looked for")
	fs.DurationVar(&f.brokerTimeout, "brokerTimeout", namesrv.DefaultBrokerTimeout, "silence after which a broker is dropped, unless it registered its own timeout")
	fs.StringVar(&f.logLevel, "logLevel", "info", "trace, debug, info, warn or error")
	fs.BoolVar(&f.aclEnable, "aclEnable", false, "authenticate and authorize every request with the accounts of -aclFile")
	fs.StringVar(&f.aclFile, "aclFile", "", "plain_acl.yml with the accounts (re-read on change)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if f.confFile != "" {
		props, err := readProperties(f.confFile)
		if err != nil {
			return f, err
		}
		if err := applyNamesrvConf(&f, props, set); err != nil {
			return f, fmt.Errorf("%s: %w", f.confFile, err)
		}
	}
	if _, _, err := net.SplitHostPort(f.listen); err != nil {
		return f, fmt.Errorf("-listen %q: %w", f.listen, err)
	}
	if f.scanInterval <= 0 || f.brokerTimeout <= 0 {
		return f, errors.New("-scanInterval and -brokerTimeout must be positive")
	}
	if f.aclEnable && f.aclFile == "" {
		return f, errors.New("-aclEnable needs -aclFile")
	}
	return f, nil
}

// applyNamesrvConf takes the namesrv.conf keys raftmq understands; flags given
// explicitly (set) win.
func applyNamesrvConf(f *namesrvFlags, props map[string]string, set map[string]bool) error {
	if !set["listen"] {
		host, port, err := net.SplitHostPort(f.listen)
		if err != nil {
			return err
		}
		if v, ok := props["bindAddress"]; ok && v != "" {
			host = v
		}
		if v, ok := props["listenPort"]; ok {
			p, err := strconv.Atoi(v)
			if err != nil || p <= 0 || p > 65535 {
				return fmt.Errorf("listenPort %q is not a port", v)
			}
			port = v
		}
		f.listen = net.JoinHostPort(host, port)
	}
	if v, ok := props["scanNotActiveBrokerInterval"]; ok && !set["scanInterval"] {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 {
			return fmt.Errorf("scanNotActiveBrokerInterval %q is not a positive number of milliseconds", v)
		}
		f.scanInterval = time.Duration(ms) * time.Millisecond
	}
	if v, ok := props["aclEnable"]; ok && !set["aclEnable"] {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("aclEnable %q: want true or false", v)
		}
		f.aclEnable = b
	}
	if v, ok := props["aclFile"]; ok && !set["aclFile"] {
		f.aclFile = v
	}
	return nil
}

// readProperties reads a Java properties file: key=value or key: value lines,
// '#' and '!' comments. Line continuations and escapes are not needed by any
// namesrv key and are not supported.
func readProperties(path string) (map[string]string, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	props := map[string]string{}
	sc := bufio.NewScanner(file)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			return nil, fmt.Errorf("%s:%d: expected key=value", path, n)
		}
		props[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	return props, sc.Err()
}

func runNamesrv(args []string) int {
	f, err := parseNamesrvFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "raftmq namesrv:", err)
		return 2
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "namesrv", Level: hclog.LevelFromString(f.logLevel), Output: os.Stderr})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg := namesrv.Config{
		ListenAddr:    f.listen,
		ScanInterval:  f.scanInterval,
		BrokerTimeout: f.brokerTimeout,
		Logger:        log,
	}
	if f.aclEnable {
		accounts, err := acl.NewStore(f.aclFile, log.Named("acl"))
		if err != nil {
			log.Error("cannot start", "error", err)
			return 1
		}
		go accounts.Run(ctx, acl.DefaultReloadInterval)
		cfg.Authenticate = acl.NewAuthorizer(accounts.Accounts, log.Named("acl")).Authenticate
	}
	ns := namesrv.New(cfg)
	if err := ns.Start(ctx); err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	fmt.Printf("The Name Server boot success. listen=%s\n", ns.Addr())
	<-ctx.Done()
	log.Info("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ns.Shutdown(sctx); err != nil {
		log.Error("shutdown", "error", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
