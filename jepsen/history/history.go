// Package history is the record of one jepsen run: every operation a workload or the
// nemesis performed, as invoke/completion pairs, written as JSON lines as it happens.
//
// Invariants: every completion (ok, fail, info) follows its invoke with the same
// Process and Value; a process has at most one operation in flight; "fail" is written
// only when the operation certainly had no effect (a send that never reached the
// Raft log), everything indeterminate (timeouts, lost connections, errors after the
// request left) is "info". Times are nanoseconds since the run started.
package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Op types.
const (
	Invoke = "invoke"
	OK     = "ok"
	Fail   = "fail"
	Info   = "info"
)

// Operation functions.
const (
	FSend    = "send"    // a producer's send of Value to Queue; ok carries Offset
	FPoll    = "poll"    // a consumer read Value at Queue/Offset (ok only)
	FCommit  = "commit"  // a consumer committed Offset for Queue
	FFetch   = "fetch"   // a consumer fetched the group's committed Offset for Queue
	FDrain   = "drain"   // the final read found Value at Queue/Offset on Member (ok only)
	FNemesis = "nemesis" // the nemesis started (invoke) or healed (ok) fault Value
)

// NemesisProcess is the process id of nemesis operations.
const NemesisProcess = -1

// Op is one line of the history.
type Op struct {
	Process int    `json:"process"`
	Type    string `json:"type"`
	F       string `json:"f"`
	Value   string `json:"value,omitempty"`
	Member  string `json:"member,omitempty"`
	Queue   int    `json:"queue"`
	Offset  int64  `json:"offset"`
	Time    int64  `json:"time"`              // ns since run start
	Latency int64  `json:"latency,omitempty"` // ns from invoke, on completions
	Attempt int    `json:"attempt,omitempty"` // 1-based attempt number of a send of Value
	Group   string `json:"group,omitempty"`   // consumer group of poll/commit/fetch
	Error   string `json:"error,omitempty"`
}

// Recorder appends operations to an in-memory history and, optionally, a JSONL file.
// It is safe for concurrent use.
type Recorder struct {
	start time.Time

	mu  sync.Mutex
	ops []Op
	w   *bufio.Writer
	f   *os.File
	err error
}

// NewRecorder starts a history at start; path "" keeps it in memory only.
func NewRecorder(start time.Time, path string) (*Recorder, error) {
	r := &Recorder{start: start}
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		r.f, r.w = f, bufio.NewWriter(f)
	}
	return r, nil
}

// Since is the run-relative time of t.
func (r *Recorder) Since(t time.Time) int64 { return int64(t.Sub(r.start)) }

// Now is the run-relative time of now.
func (r *Recorder) Now() int64 { return r.Since(time.Now()) }

// Start is the run's start.
func (r *Recorder) Start() time.Time { return r.start }

// Add appends op, stamping Time with now when it is zero.
func (r *Recorder) Add(op Op) Op {
	if op.Time == 0 {
		op.Time = r.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
	if r.w != nil && r.err == nil {
		b, _ := json.Marshal(op)
		b = append(b, '\n')
		_, r.err = r.w.Write(b)
	}
	return op
}

// Ops returns a copy of the history so far.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// Close flushes and closes the file.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return r.err
	}
	if err := r.w.Flush(); err != nil && r.err == nil {
		r.err = err
	}
	if err := r.f.Close(); err != nil && r.err == nil {
		r.err = err
	}
	r.f = nil
	return r.err
}

// Read parses a JSONL history.
func Read(rd io.Reader) ([]Op, error) {
	var out []Op
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var op Op
		if err := json.Unmarshal(sc.Bytes(), &op); err != nil {
			return nil, fmt.Errorf("history line %d: %w", line, err)
		}
		out = append(out, op)
	}
	return out, sc.Err()
}
