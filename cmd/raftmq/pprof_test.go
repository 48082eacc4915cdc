package main

import (
	"io"
	"net/http"
	"slices"
	"testing"
)

func TestSplitPprof(t *testing.T) {
	rest, addr, contention := splitPprof([]string{"-c", "b.conf", "-pprof", "127.0.0.1:0", "-pprofContention", "-listenPort", "1"})
	if addr != "127.0.0.1:0" || !contention || !slices.Equal(rest, []string{"-c", "b.conf", "-listenPort", "1"}) {
		t.Fatalf("got %q %v %q", addr, contention, rest)
	}
	rest, addr, contention = splitPprof([]string{"-pprof=localhost:6060", "-c", "x"})
	if addr != "localhost:6060" || contention || !slices.Equal(rest, []string{"-c", "x"}) {
		t.Fatalf("got %q %v %q", addr, contention, rest)
	}
}

func TestStartPprofLoopbackOnly(t *testing.T) {
	for _, bad := range []string{"0.0.0.0:0", ":0", "10.1.2.3:0", "example.com:0", "nonsense"} {
		if _, err := startPprof(bad, false); err == nil {
			t.Errorf("startPprof(%q) accepted a non-loopback address", bad)
		}
	}
	a, err := startPprof("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + a.String() + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("goroutine profile: %d, %d bytes", resp.StatusCode, len(body))
	}
}
