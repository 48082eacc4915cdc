package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/jepsen/checker"
	"github.com/raftmq/raftmq/jepsen/history"
)

func TestWriteProducesResultsAndPageWithPlots(t *testing.T) {
	var ops []history.Op
	add := func(op history.Op) { ops = append(ops, op) }
	add(history.Op{Process: history.NemesisProcess, Type: history.Invoke, F: history.FNemesis, Value: "kill-leader", Time: int64(2 * time.Second)})
	for i := 0; i < 50; i++ {
		at := int64(i) * int64(100*time.Millisecond)
		v := "0-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		add(history.Op{Process: 0, Type: history.Invoke, F: history.FSend, Value: v, Time: at})
		typ := history.OK
		if i%7 == 0 {
			typ = history.Info
		}
		add(history.Op{Process: 0, Type: typ, F: history.FSend, Value: v, Offset: int64(i), Time: at + 1e6, Latency: 1e6})
		add(history.Op{Process: 1000, Type: history.OK, F: history.FDrain, Member: "n0", Value: v, Offset: int64(i), Time: at + 2e6})
	}
	add(history.Op{Process: history.NemesisProcess, Type: history.OK, F: history.FNemesis, Value: "kill-leader", Time: int64(4 * time.Second)})
	run := &Run{Name: "test-run", Nemesis: "kill-leader", Members: 1, Verdict: "PASS", Result: checker.Check(ops, checker.Options{Members: []string{"n0"}})}
	dir := t.TempDir()
	if err := Write(dir, run, ops); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Run
	if err := json.Unmarshal(b, &back); err != nil || back.Result == nil || back.Result.Acked != run.Result.Acked {
		t.Fatalf("results.json does not round-trip: %v", err)
	}
	page, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	if n := strings.Count(html, "<svg"); n != 2 {
		t.Fatalf("page has %d inline SVG plots, want 2", n)
	}
	if !strings.Contains(html, "<td>kill-leader</td>") || strings.Contains(html, "http://") && strings.Contains(html, "<script") {
		t.Fatalf("page lacks the window table or loads scripts")
	}
	var sb strings.Builder
	Summary(&sb, run)
	if !strings.Contains(sb.String(), "[PASS]") {
		t.Fatalf("summary: %s", sb.String())
	}
}
