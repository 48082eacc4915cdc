package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// sample is one run of one shape: msgs/s and latency percentiles in µs.
type sample struct {
	rate     float64
	p50, p99 int64
	msgs     int64
}

// results collects samples per configuration and shape, the host's load
// around each configuration, and notes (failures, errors seen).
type results struct {
	dir     string
	mu      sync.Mutex
	samples map[string]map[string][]sample
	loads   []string
	notes   []string
}

func newResults(dir string) *results {
	return &results{dir: dir, samples: map[string]map[string][]sample{}}
}

func (r *results) add(config, shape string, rep int, s sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.samples[config] == nil {
		r.samples[config] = map[string][]sample{}
	}
	r.samples[config][shape] = append(r.samples[config][shape], s)
}

func (r *results) note(s string) {
	r.mu.Lock()
	r.notes = append(r.notes, s)
	r.mu.Unlock()
}

// load records /proc/loadavg: the machine may be shared, and the load says
// how much to trust the figures.
func (r *results) load(config, when string) {
	b, err := os.ReadFile("/proc/loadavg")
	la := "unknown"
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			la = strings.Join(f[:3], " ")
		}
	}
	r.mu.Lock()
	r.loads = append(r.loads, fmt.Sprintf("%s %s %s: load average %s", time.Now().Format("15:04:05"), config, when, la))
	r.mu.Unlock()
}

// median returns the median sample by rate, and whether there is one.
func (r *results) median(config, shape string) (sample, bool) {
	ss := append([]sample(nil), r.samples[config][shape]...)
	if len(ss) == 0 {
		return sample{}, false
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].rate < ss[j].rate })
	return ss[len(ss)/2], true
}

// shapeTitles label the table rows.
var shapeTitles = map[string]string{
	shapeSync1:   "sync publish, 1 publisher (msg/s)",
	shapeSync16:  "sync publish, 16 publishers",
	shapeAsync:   "async publish, 256 in flight",
	shapeConsume: "consume a backlog",
}

// target is one goal of the issue: raftmq config ≥ factor × NATS config.
type target struct {
	shape, ours, theirs string
	factor              float64
}

var targets = []target{
	{shapeSync1, "raftmq3", "r3sync", 1},
	{shapeSync16, "raftmq3", "r3sync", 2}, {shapeSync16, "raftmq3", "r3", 0.7},
	{shapeAsync, "raftmq3", "r3sync", 1.5}, {shapeAsync, "raftmq3", "r3", 1},
	{shapeConsume, "raftmq3", "r3", 2},
	{shapeSync1, "raftmq1async", "r1", 1}, {shapeSync16, "raftmq1async", "r1", 1},
	{shapeAsync, "raftmq1async", "r1", 1}, {shapeConsume, "raftmq1async", "r1", 1},
}

var titles = map[string]string{
	"raftmq3": "raftmq 3 nodes SYNC", "raftmq1sync": "raftmq 1 node SYNC", "raftmq1async": "raftmq 1 node ASYNC",
	"r3sync": "NATS r3sync", "r3": "NATS r3 default", "r1sync": "NATS r1sync", "r1": "NATS r1 default",
}

// render prints the two ratio tables (three nodes, one node), the targets,
// the latencies, the load and the notes, as Markdown.
func (r *results) render(o *options) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "\n## bench-compare %s (%d cores, %d B messages, %d run(s) per shape, median shown)\n\n",
		time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), o.size, o.reps)
	r.table(&b, o, []string{"raftmq3", "r3sync", "r3"}, [][2]string{{"raftmq3", "r3sync"}, {"raftmq3", "r3"}})
	b.WriteByte('\n')
	r.table(&b, o, []string{"raftmq1sync", "raftmq1async", "r1sync", "r1"},
		[][2]string{{"raftmq1sync", "r1sync"}, {"raftmq1async", "r1"}})

	b.WriteString("\nTargets (issue 12):\n\n")
	for _, t := range targets {
		ours, ok1 := r.median(t.ours, t.shape)
		theirs, ok2 := r.median(t.theirs, t.shape)
		if !ok1 || !ok2 || theirs.rate == 0 {
			continue
		}
		ratio := ours.rate / theirs.rate
		verdict := "met"
		if ratio < t.factor {
			verdict = "MISSED"
		}
		fmt.Fprintf(&b, "- %s: %s / %s = %.2fx, target >= %.1fx: %s\n", t.shape, titles[t.ours], titles[t.theirs], ratio, t.factor, verdict)
	}

	b.WriteString("\nLatency p50 / p99 ms (per publish; per pull for raftmq consume; NATS consume prints none):\n\n")
	b.WriteString("| config | " + strings.Join(o.shapes, " | ") + " |\n|---|" + strings.Repeat("---|", len(o.shapes)) + "\n")
	for _, c := range o.configs {
		fmt.Fprintf(&b, "| %s |", titles[c])
		for _, s := range o.shapes {
			m, ok := r.median(c, s)
			if !ok || m.p50 == 0 {
				b.WriteString(" — |")
				continue
			}
			fmt.Fprintf(&b, " %.2f / %.2f |", float64(m.p50)/1000, float64(m.p99)/1000)
		}
		b.WriteByte('\n')
	}
	if fill := r.fills(o); fill != "" {
		b.WriteString("\nBacklog fill (async window, msg/s): " + fill + "\n")
	}
	b.WriteString("\nNotes: raftmq is driven by `raftmq bench` (own remoting client, sends to the leader, sliding window of " +
		fmt.Sprint(o.window) + " for async); NATS by `nats bench` at the stream leader (async = batches of " + fmt.Sprint(o.window) +
		", then wait for their acks). raftmq consume pulls every queue with large batches; NATS consume is a durable callback consumer, --batch=500.\n")
	b.WriteString("\nHost load:\n\n")
	for _, l := range r.loads {
		b.WriteString("- " + l + "\n")
	}
	if len(r.notes) > 0 {
		b.WriteString("\nProblems:\n\n")
		for _, n := range r.notes {
			b.WriteString("- " + n + "\n")
		}
	}
	return b.String()
}

// table prints one ratio table: a column per configuration, then a ratio
// column per pair.
func (r *results) table(b *strings.Builder, o *options, cols []string, ratios [][2]string) {
	ran := false
	for _, c := range cols {
		ran = ran || len(r.samples[c]) > 0
	}
	if !ran {
		return // none of its configurations was asked for, or all failed (see the problems)
	}
	b.WriteString("| test |")
	for _, c := range cols {
		b.WriteString(" " + titles[c] + " |")
	}
	for _, p := range ratios {
		fmt.Fprintf(b, " %s / %s |", short(p[0]), short(p[1]))
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(cols)+len(ratios)) + "\n")
	for _, s := range o.shapes {
		fmt.Fprintf(b, "| %s |", shapeTitles[s])
		for _, c := range cols {
			if m, ok := r.median(c, s); ok {
				fmt.Fprintf(b, " %s |", thousands(m.rate))
			} else {
				b.WriteString(" — |")
			}
		}
		for _, p := range ratios {
			a, ok1 := r.median(p[0], s)
			c, ok2 := r.median(p[1], s)
			if ok1 && ok2 && c.rate > 0 {
				fmt.Fprintf(b, " %.2fx |", a.rate/c.rate)
			} else {
				b.WriteString(" — |")
			}
		}
		b.WriteByte('\n')
	}
}

func (r *results) fills(o *options) string {
	var parts []string
	for _, c := range o.configs {
		if m, ok := r.median(c, "backlog_fill"); ok {
			parts = append(parts, fmt.Sprintf("%s %s", short(c), thousands(m.rate)))
		}
	}
	return strings.Join(parts, ", ")
}

func short(config string) string {
	switch config {
	case "raftmq3":
		return "3n SYNC"
	case "raftmq1sync":
		return "1n SYNC"
	case "raftmq1async":
		return "1n ASYNC"
	}
	return config
}

// thousands formats a rate with a thin space between thousands, as the tables do.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ' ')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// save writes every sample as results.json beside summary.md.
func (r *results) save() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	type row struct {
		Config string  `json:"config"`
		Shape  string  `json:"shape"`
		Rate   float64 `json:"msgsPerSec"`
		P50    int64   `json:"p50Us"`
		P99    int64   `json:"p99Us"`
	}
	var rows []row
	for c, shapes := range r.samples {
		for s, ss := range shapes {
			for _, x := range ss {
				rows = append(rows, row{c, s, x.rate, x.p50, x.p99})
			}
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Config != rows[j].Config {
			return rows[i].Config < rows[j].Config
		}
		return rows[i].Shape < rows[j].Shape
	})
	out, err := json.MarshalIndent(map[string]any{"samples": rows, "load": r.loads, "problems": r.notes}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.dir, "results.json"), append(out, '\n'), 0o644)
}
