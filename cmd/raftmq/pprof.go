package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
)

// splitPprof removes -pprof <host:port> from args (a flag of the binary, not
// a broker.conf key: RocketMQ has none) and returns the address, "" if absent.
func splitPprof(args []string) ([]string, string) {
	addr := ""
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		name := strings.TrimLeft(args[i], "-")
		if v, ok := strings.CutPrefix(name, "pprof="); ok {
			addr = v
			continue
		}
		if name == "pprof" && i+1 < len(args) {
			addr = args[i+1]
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out, addr
}

// pprofMutexFraction and pprofBlockRate are the sampling rates set while the
// pprof listener runs: one mutex contention event in 100, blocking events of
// 10 µs and more, cheap enough to leave on under a benchmark.
const (
	pprofMutexFraction = 100
	pprofBlockRate     = 10_000 // ns
)

// startPprof serves net/http/pprof on addr, which must be a loopback
// address: profiles expose the heap and goroutine stacks, so they are never
// offered beyond the machine. It also turns on the mutex and block
// profiles. The listener lives as long as the process.
func startPprof(addr string) (net.Addr, error) {
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
	runtime.SetMutexProfileFraction(pprofMutexFraction)
	runtime.SetBlockProfileRate(pprofBlockRate)
	go func() { _ = http.Serve(ln, mux) }()
	return ln.Addr(), nil
}
