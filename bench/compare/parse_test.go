package main

import "testing"

// Outputs of `nats bench` v0.5.1 as printed on this machine.
const (
	natsSyncOne = `09:17:23 Starting JetStream synchronous publisher benchmark [batch=0, clients=1, msg-size=1.0 KiB, msgs=2,000]
09:17:23 [1] Starting JetStream synchronous publisher, publishing 2,000 messages

NATS JetStream synchronous publisher stats: 9,079 msgs/sec ~ 8.9 MiB/sec ~ min: 27.13us ~ avg: 110.04us ~ max: 25,385.20us ~ P50: 53.32us ~ P90: 90.14us ~ P99: 1,259.78us ~ P99.9: 10,541.53us
`
	natsSyncMany = `  [15] 1,717 msgs/sec ~ 1.7 MiB/sec ~ min: 54.57us ~ avg: 582.04us ~ max: 10,524.57us ~ P50: 458.60us ~ P90: 827.45us ~ P99: 1,710.26us ~ P99.9: 10,524.57us (200 msgs)
  [16] 1,720 msgs/sec ~ 1.7 MiB/sec ~ min: 33.23us ~ avg: 581.13us ~ max: 10,462.40us ~ P50: 455.47us ~ P90: 789.13us ~ P99: 2,778.64us ~ P99.9: 10,462.40us (200 msgs)

 NATS JetStream synchronous publisher aggregated stats: 27,393 msgs/sec ~ 27 MiB/sec
 message rates min 1,714 | avg 1,748 | max 2,066 | stddev 82 msgs
 latencies per operation min 29.91us | avg 571.48us | max 10,548.20us | stddev 925.62us | P50 455.71us | P90 787.78us | P99 2,811.51us | P99.9: 10,512.59us
`
	natsConsume = `09:17:28 [1] Starting JetStream durable consumer (callback), expecting 20,000 messages

NATS JetStream durable consumer (callback) stats: 110,703 msgs/sec ~ 108 MiB/sec
`
)

func TestParseNATSBench(t *testing.T) {
	for _, c := range []struct {
		name     string
		out      string
		rate     float64
		p50, p99 int64
	}{
		{"one client", natsSyncOne, 9079, 53, 1260},
		{"16 clients: the aggregated figures", natsSyncMany, 27393, 456, 2812},
		{"consumer: no latencies", natsConsume, 110703, 0, 0},
	} {
		s, err := parseNATSBench(c.out)
		if err != nil || s.rate != c.rate || s.p50 != c.p50 || s.p99 != c.p99 {
			t.Errorf("%s: got %+v, %v; want rate %v p50 %d p99 %d", c.name, s, err, c.rate, c.p50, c.p99)
		}
	}
	if _, err := parseNATSBench("nats: error: nats: no servers available for connection"); err == nil {
		t.Error("an error output parsed as a result")
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1 000", 43071.4: "43 071", 1234567: "1 234 567"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}
