package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
)

// splitPprof removes -pprof <host:port> and -pprofContention from args
// (flags of the binary, not broker.conf keys: RocketMQ has none) and returns
// the address ("" if absent) and whether contention profiles are wanted.
func splitPprof(args []string) (rest []string, addr string, contention bool) {
	rest = make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		name := strings.TrimLeft(args[i], "-")
		switch {
		case strings.HasPrefix(name, "pprof="):
			addr = strings.TrimPrefix(name, "pprof=")
		case name == "pprof" && i+1 < len(args):
			addr = args[i+1]
			i++
		case name == "pprofContention" || name == "pprofContention=true":
			contention = true
		default:
			rest = append(rest, args[i])
		}
	}
	return rest, addr, contention
}

// pprofMutexFraction and pprofBlockRate are the sampling rates set with
// -pprofContention: one mutex contention event in 100, blocking events of
// 10 µs and more. They cost a few per cent of CPU under load, so CPU figures
// are taken without them.
const (
	pprofMutexFraction = 100
	pprofBlockRate     = 10_000 // ns
)

// startPprof serves net/http/pprof on addr, which must be a loopback
// address: profiles expose the heap and goroutine stacks, so they are never
// offered beyond the machine. contention turns on the mutex and block
// profiles. The listener lives as long as the process.
func startPprof(addr string, contention bool) (net.Addr, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-pprof %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("-pprof %q: only a loopback address is allowed", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	if contention {
		runtime.SetMutexProfileFraction(pprofMutexFraction)
		runtime.SetBlockProfileRate(pprofBlockRate)
	}
	go func() { _ = http.Serve(ln, mux) }()
	return ln.Addr(), nil
}
