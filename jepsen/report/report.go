// Package report renders one jepsen run: results.json, an HTML page with SVG plots
// (drawn with gonum.org/v1/plot and embedded inline, so the page needs no network)
// of throughput and latency over time with the nemesis windows shaded, the
// availability table and the anomalies, and a one-screen text summary.
package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/raftmq/raftmq/jepsen/checker"
	"github.com/raftmq/raftmq/jepsen/history"
)

// Run is everything known about one run.
type Run struct {
	Name        string          `json:"name"`
	Nemesis     string          `json:"nemesis"`
	Project     string          `json:"project"`
	Image       string          `json:"image"`
	Members     int             `json:"members"`
	Started     time.Time       `json:"started"`
	Duration    float64         `json:"duration_s"`
	Unsafe      bool            `json:"unsafe"`
	ConvergeS   float64         `json:"converge_s"` // heal to all members applied the commit index (-1: never)
	DrainS      float64         `json:"drain_s"`
	Verdict     string          `json:"verdict"` // PASS or FAIL (for unsafe runs: PASS = the checker caught it)
	Notes       []string        `json:"notes,omitempty"`
	NemesisLog  []string        `json:"nemesis_log"`
	Result      *checker.Result `json:"result"`
	HistoryFile string          `json:"history"`
}

// Write stores results.json and index.html in dir.
func Write(dir string, run *Run, ops []history.Op) error {
	b, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644); err != nil {
		return err
	}
	thr, err := throughputSVG(ops, run.Result.Windows)
	if err != nil {
		return fmt.Errorf("throughput plot: %w", err)
	}
	lat, err := latencySVG(ops, run.Result.Windows)
	if err != nil {
		return fmt.Errorf("latency plot: %w", err)
	}
	var buf bytes.Buffer
	err = page.Execute(&buf, map[string]any{
		"Run": run, "R": run.Result, "Throughput": template.HTML(thr), "Latency": template.HTML(lat),
		"JSON": string(b),
	})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "index.html"), buf.Bytes(), 0o644)
}

// Summary writes the one-screen text verdict.
func Summary(w io.Writer, run *Run) {
	r := run.Result
	fmt.Fprintf(w, "== %s  [%s]  %d members, %.0fs, image %s\n", run.Name, run.Verdict, run.Members, run.Duration, run.Image)
	fmt.Fprintf(w, "   sends: %d attempted, %d acked, %d failed, %d unknown (%d recovered); consumers read %d\n",
		r.Attempted, r.Acked, r.Failed, r.Unknown, r.Recovered, r.Polled)
	fmt.Fprintf(w, "   lost %d  lost-on-member %d  divergent %d  unexpected %d  dup(no cause) %d/%d  collisions %d  ack-mismatch %d  order %d  failed-but-read %d  offset-regressions %d\n",
		r.LostCount, r.LostOnMemberN, r.DivergentCount, r.UnexpectedCount, r.CauselessDups, len(r.Duplicates), r.CollisionCount, r.MismatchCount, r.OrderCount, r.G1aCount, r.BackwardCount)
	fmt.Fprintf(w, "   latency p50 %.1f ms p99 %.1f ms max %.0f ms; converge %.1fs; drain %.1fs; longest gap outside faults %.1fs\n",
		r.SendLatencyP50Ms, r.SendLatencyP99Ms, r.SendLatencyMaxMs, run.ConvergeS, run.DrainS, r.LongestNormalGap)
	worstGap, worstHeal, fails := 0.0, 0.0, 0
	for _, win := range r.Windows {
		worstGap = math.Max(worstGap, win.LongestAckGap)
		worstHeal = math.Max(worstHeal, win.HealToFirstAck)
		fails += win.FailedSends + win.InfoSends
	}
	fmt.Fprintf(w, "   %d fault windows: longest ack gap %.1fs, worst heal-to-first-ack %.1fs, %d failed/unknown sends in windows\n",
		len(r.Windows), worstGap, worstHeal, fails)
	if o := r.Official; o != nil {
		fmt.Fprintf(w, "   official client: %d sent, %d acked, %d unknown, longest ack gap %.1fs\n", o.Attempted, o.Acked, o.Unknown, o.LongestAckGap)
	}
	if len(r.Failures) > 0 {
		fmt.Fprintf(w, "   anomalies: %s\n", strings.Join(r.Failures, ", "))
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "   warning: %s\n", warn)
	}
	for _, n := range run.Notes {
		fmt.Fprintf(w, "   note: %s\n", n)
	}
}

const bucket = time.Second

func shade(p *plot.Plot, wins []checker.Window, top float64) error {
	for _, w := range wins {
		poly, err := plotter.NewPolygon(plotter.XYs{{X: w.Start, Y: 0}, {X: w.Heal, Y: 0}, {X: w.Heal, Y: top}, {X: w.Start, Y: top}})
		if err != nil {
			return err
		}
		poly.Color = color.NRGBA{R: 255, G: 120, B: 80, A: 60}
		poly.LineStyle.Width = 0
		p.Add(poly)
	}
	return nil
}

func throughputSVG(ops []history.Op, wins []checker.Window) (string, error) {
	counts := map[string]map[int]float64{}
	last := 0
	for _, op := range ops {
		if op.F != history.FSend || op.Type == history.Invoke {
			continue
		}
		b := int(op.Time / int64(bucket))
		last = max(last, b)
		if counts[op.Type] == nil {
			counts[op.Type] = map[int]float64{}
		}
		counts[op.Type][b]++
	}
	p := plot.New()
	p.Title.Text = "sends per second (shaded: nemesis active)"
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "ops/s"
	top := 1.0
	for _, m := range counts {
		for _, v := range m {
			top = math.Max(top, v)
		}
	}
	if err := shade(p, wins, top*1.05); err != nil {
		return "", err
	}
	colors := map[string]color.Color{history.OK: color.NRGBA{G: 140, B: 60, A: 255}, history.Fail: color.NRGBA{R: 200, A: 255}, history.Info: color.NRGBA{R: 230, G: 160, A: 255}}
	for _, typ := range []string{history.OK, history.Info, history.Fail} {
		xy := make(plotter.XYs, 0, last+1)
		for b := 0; b <= last; b++ {
			xy = append(xy, plotter.XY{X: float64(b), Y: counts[typ][b]})
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return "", err
		}
		l.Color = colors[typ]
		l.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(typ, l)
	}
	p.Legend.Top = true
	return svg(p)
}

func latencySVG(ops []history.Op, wins []checker.Window) (string, error) {
	// Per-second quantiles of acked sends' latency, and every failed/unknown send as
	// a point: a few hundred elements whatever the run's length.
	perSec := map[int][]float64{}
	var bad plotter.XYs
	top, last := 1.0, 0
	for _, op := range ops {
		if op.F != history.FSend || op.Type == history.Invoke {
			continue
		}
		ms := math.Max(float64(op.Latency)/1e6, 0.1)
		top = math.Max(top, ms)
		if op.Type == history.OK {
			b := int(op.Time / int64(bucket))
			last = max(last, b)
			perSec[b] = append(perSec[b], ms)
		} else if len(bad) < 2000 {
			bad = append(bad, plotter.XY{X: float64(op.Time) / 1e9, Y: ms})
		}
	}
	p := plot.New()
	p.Title.Text = "send latency per second (ms, log scale; shaded: nemesis active)"
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "latency (ms)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min = 0.1
	p.Y.Max = top * 1.2
	for _, w := range wins {
		poly, err := plotter.NewPolygon(plotter.XYs{{X: w.Start, Y: 0.1}, {X: w.Heal, Y: 0.1}, {X: w.Heal, Y: top * 1.2}, {X: w.Start, Y: top * 1.2}})
		if err != nil {
			return "", err
		}
		poly.Color = color.NRGBA{R: 255, G: 120, B: 80, A: 60}
		poly.LineStyle.Width = 0
		p.Add(poly)
	}
	for _, q := range []struct {
		name string
		q    float64
		c    color.Color
	}{{"p50", 0.5, color.NRGBA{G: 120, B: 200, A: 255}}, {"p99", 0.99, color.NRGBA{R: 120, B: 160, A: 255}}, {"max", 1, color.NRGBA{R: 90, G: 90, B: 90, A: 255}}} {
		var xy plotter.XYs
		for b := 0; b <= last; b++ {
			v := perSec[b]
			if len(v) == 0 {
				continue
			}
			sort.Float64s(v)
			xy = append(xy, plotter.XY{X: float64(b), Y: v[min(len(v)-1, int(q.q*float64(len(v))))]})
		}
		if len(xy) == 0 {
			continue
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return "", err
		}
		l.Color = q.c
		l.Width = vg.Points(1)
		p.Add(l)
		p.Legend.Add(q.name+" (ok)", l)
	}
	if len(bad) > 0 {
		sc, err := plotter.NewScatter(bad)
		if err != nil {
			return "", err
		}
		sc.GlyphStyle.Color = color.NRGBA{R: 220, A: 200}
		sc.GlyphStyle.Radius = vg.Points(1.2)
		p.Add(sc)
		p.Legend.Add("fail/info", sc)
	}
	p.Legend.Top = true
	return svg(p)
}

func svg(p *plot.Plot) (string, error) {
	wt, err := p.WriterTo(10*vg.Inch, 3.5*vg.Inch, "svg")
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return "", err
	}
	s := buf.String()
	if i := strings.Index(s, "<svg"); i > 0 {
		s = s[i:] // drop the XML prolog: the SVG sits inline in HTML
	}
	return s, nil
}

// Index writes an overview page of several runs into dir.
func Index(dir string, runs []*Run) error {
	sort.Slice(runs, func(i, j int) bool { return runs[i].Name < runs[j].Name })
	var buf bytes.Buffer
	if err := indexPage.Execute(&buf, runs); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "index.html"), buf.Bytes(), 0o644)
}

var funcs = template.FuncMap{
	"f1": func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"worstGap": func(ws []checker.Window) float64 {
		worst := 0.0
		for _, w := range ws {
			worst = math.Max(worst, w.LongestAckGap)
		}
		return worst
	},
}

var page = template.Must(template.New("run").Funcs(funcs).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>jepsen {{.Run.Name}}: {{.Run.Verdict}}</title>
<style>body{font:14px sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#eee}.PASS{color:#080}.FAIL{color:#c00}pre{background:#f6f6f6;padding:1em;overflow:auto;max-height:30em}</style></head><body>
<h1>{{.Run.Name}} <span class="{{.Run.Verdict}}">{{.Run.Verdict}}</span></h1>
<p>nemesis <b>{{.Run.Nemesis}}</b>, {{.Run.Members}} members, {{f1 .Run.Duration}} s, image {{.Run.Image}}, project {{.Run.Project}}, started {{.Run.Started}}.
{{if .Run.Unsafe}}<b>Unsafe run: PASS means the checker reported the loss it had to find.</b>{{end}}</p>
{{if .R.Failures}}<p class="FAIL">anomalies: {{range .R.Failures}}{{.}}; {{end}}</p>{{end}}
{{range .R.Warnings}}<p><b>warning:</b> {{.}}</p>{{end}}
{{with .R.Official}}<p>official RocketMQ Go client producer: {{.Attempted}} sent, {{.Acked}} acked, {{.Unknown}} unknown, longest gap between its acks {{f1 .LongestAckGap}} s.</p>{{end}}
<table><tr><th>attempted</th><th>acked</th><th>failed</th><th>unknown</th><th>recovered</th><th>lost</th><th>lost on member</th><th>divergent</th><th>unexpected</th><th>dups (no cause)</th><th>collisions</th><th>order</th><th>failed but read</th><th>offset regressions</th></tr>
<tr><td>{{.R.Attempted}}</td><td>{{.R.Acked}}</td><td>{{.R.Failed}}</td><td>{{.R.Unknown}}</td><td>{{.R.Recovered}}</td><td>{{.R.LostCount}}</td><td>{{.R.LostOnMemberN}}</td><td>{{.R.DivergentCount}}</td><td>{{.R.UnexpectedCount}}</td><td>{{len .R.Duplicates}} ({{.R.CauselessDups}})</td><td>{{.R.CollisionCount}}</td><td>{{.R.OrderCount}}</td><td>{{.R.G1aCount}}</td><td>{{.R.BackwardCount}}</td></tr></table>
<p>send latency p50 {{f1 .R.SendLatencyP50Ms}} ms, p99 {{f1 .R.SendLatencyP99Ms}} ms, max {{f1 .R.SendLatencyMaxMs}} ms; convergence after the final heal {{f1 .Run.ConvergeS}} s; drain {{f1 .Run.DrainS}} s; longest ack gap outside fault windows {{f1 .R.LongestNormalGap}} s.</p>
<h2>Throughput</h2>{{.Throughput}}
<h2>Latency</h2>{{.Latency}}
<h2>Availability per fault window</h2>
<table><tr><th>nemesis</th><th>start s</th><th>heal s</th><th>acks</th><th>failed</th><th>unknown</th><th>longest ack gap s</th><th>first failure to next ack s</th><th>heal to first ack s</th></tr>
{{range .R.Windows}}<tr><td>{{.Nemesis}}</td><td>{{f1 .Start}}</td><td>{{f1 .Heal}}</td><td>{{.Acks}}</td><td>{{.FailedSends}}</td><td>{{.InfoSends}}</td><td>{{f1 .LongestAckGap}}</td><td>{{f1 .FirstFailToOK}}</td><td>{{f1 .HealToFirstAck}}</td></tr>
{{end}}</table>
<h2>Nemesis log</h2><pre>{{range .Run.NemesisLog}}{{.}}
{{end}}</pre>
<h2>Files</h2><p><a href="history.jsonl">history.jsonl</a> · <a href="results.json">results.json</a> · member logs: <a href="logs/">logs/</a></p>
<h2>results.json</h2><pre>{{.JSON}}</pre>
</body></html>
`))

var indexPage = template.Must(template.New("index").Funcs(funcs).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>jepsen runs</title>
<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}.PASS{color:#080}.FAIL{color:#c00}</style></head><body>
<h1>jepsen runs</h1><table><tr><th>run</th><th>verdict</th><th>acked</th><th>lost</th><th>lost on member</th><th>unexpected</th><th>dups (no cause)</th><th>order</th><th>offset regr.</th><th>longest ack gap in a fault window s</th><th>p99 ms</th></tr>
{{range .}}<tr><td><a href="{{.Name}}/index.html">{{.Name}}</a></td><td class="{{.Verdict}}">{{.Verdict}}</td><td>{{.Result.Acked}}</td><td>{{.Result.LostCount}}</td><td>{{.Result.LostOnMemberN}}</td><td>{{.Result.UnexpectedCount}}</td><td>{{len .Result.Duplicates}} ({{.Result.CauselessDups}})</td><td>{{.Result.OrderCount}}</td><td>{{.Result.BackwardCount}}</td><td>{{f1 (worstGap .Result.Windows)}}</td><td>{{f1 .Result.SendLatencyP99Ms}}</td></tr>
{{end}}</table></body></html>
`))
