package dledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/armon/go-metrics"
	"github.com/hashicorp/raft"
)

// appendReq is one AppendMessages call waiting for its entry.
type appendReq struct {
	records [][]byte
	size    int
	done    chan appendResp // buffered 1
	// claim, if set, is released once the request's outcome is known (after done
	// is answered), even when the submitter stopped waiting.
	claim *dedupClaim
}

// finish answers r and releases its claim.
func (r *appendReq) finish(resp appendResp) {
	r.done <- resp
	r.claim.release()
}

type appendResp struct {
	res []AppendResult
	err error
}

// inflight is one raft entry and the requests packed into it, in order.
type inflight struct {
	fut   raft.ApplyFuture
	data  []byte // the entry as handed to raft (patched in place by the hook)
	reqs  []*appendReq
	start time.Time
	bytes int
}

// resolveFunc settles an entry whose future failed with
// raft.ErrLeadershipLost: such an entry may still commit under the next
// leader. It reports the entry's results once it committed, a definite
// error once another entry took its index, and ok=false when the outcome
// is still unknown after a bounded wait.
type resolveFunc func(ctx context.Context, index uint64, data []byte) (res []AppendResult, err error, ok bool)

// appender packs concurrent submissions into Raft entries: one goroutine
// drains whatever is queued (no timer), up to maxBytes, and calls
// raft.Apply once per entry; a second goroutine waits for the entries in
// order and answers each submitter with its own slice of results.
type appender struct {
	ctx       context.Context
	raft      *raft.Raft
	maxBytes  int
	notLeader func() error
	resolve   resolveFunc // nil: leadership-lost entries are answered notLeader
	reqs      chan *appendReq
	pending   chan *inflight
	// slots bounds the entries in flight. Without a bound every request
	// would become its own entry (raft's apply channel is buffered), and
	// packing would never happen; with it, requests arriving while the
	// slots are busy are packed into the next entry.
	slots chan struct{}
}

// maxInflightEntries is how many entries the appender keeps in raft at
// once: enough to overlap one entry's replication with the next one's
// local write (raft pipelines two AppendEntries RPCs), few enough that
// concurrent producers share entries.
const maxInflightEntries = 3

func newAppender(ctx context.Context, r *raft.Raft, maxBytes int, notLeader func() error) *appender {
	return &appender{ctx: ctx, raft: r, maxBytes: maxBytes, notLeader: notLeader,
		reqs: make(chan *appendReq, 4096), pending: make(chan *inflight, maxInflightEntries),
		slots: make(chan struct{}, maxInflightEntries)}
}

func (a *appender) submit(ctx context.Context, records [][]byte, size int, claim *dedupClaim) ([]AppendResult, error) {
	req := &appendReq{records: records, size: size, done: make(chan appendResp, 1), claim: claim}
	select {
	case a.reqs <- req:
	case <-ctx.Done():
		req.finish(appendResp{})
		return nil, ctx.Err()
	case <-a.ctx.Done():
		req.finish(appendResp{})
		return nil, ErrClosed
	}
	select {
	case r := <-req.done:
		return r.res, r.err
	case <-ctx.Done():
		// The entry may still commit: the outcome is unknown to the caller.
		return nil, indeterminate(ctx.Err())
	case <-a.ctx.Done():
		// Shutting down: a request that raced past failQueued is never
		// answered, so don't wait for it.
		select {
		case r := <-req.done:
			return r.res, r.err
		default:
			return nil, indeterminate(ErrClosed)
		}
	}
}

func (a *appender) run() {
	waitDone := make(chan struct{})
	go func() { defer close(waitDone); a.wait() }()
	defer func() { close(a.pending); <-waitDone; a.failQueued() }()
	var carry *appendReq
	for {
		var first *appendReq
		if carry != nil {
			first, carry = carry, nil
		} else {
			select {
			case first = <-a.reqs:
			case <-a.ctx.Done():
				return
			}
		}
		// Wait for a free slot before draining, so that whatever queues up
		// meanwhile goes into this entry.
		select {
		case a.slots <- struct{}{}:
		case <-a.ctx.Done():
			a.answer([]*appendReq{first}, nil, ErrClosed)
			return
		}
		batch := []*appendReq{first}
		size, count := payloadHeaderSize+first.size, len(first.records)
	drain:
		for count < 1<<16 {
			select {
			case r := <-a.reqs:
				if size+r.size > a.maxBytes {
					carry = r
					break drain
				}
				batch = append(batch, r)
				size += r.size
				count += len(r.records)
			default:
				break drain
			}
		}
		records := make([][]byte, 0, count)
		for _, r := range batch {
			records = append(records, r.records...)
		}
		data := encodeMessages(records)
		// Data is never reused: raft's LogCache and in-flight RPCs keep it.
		fut := a.raft.Apply(data, 0)
		metrics.AddSample([]string{"dledger", "append", "entry_bytes"}, float32(len(data)))
		metrics.AddSample([]string{"dledger", "append", "entry_messages"}, float32(count))
		select {
		case a.pending <- &inflight{fut: fut, data: data, reqs: batch, start: time.Now(), bytes: len(data)}:
		case <-a.ctx.Done():
			a.answer(batch, nil, indeterminate(ErrClosed)) // already handed to raft
			return
		}
	}
}

// wait answers entries in order as raft applies them.
func (a *appender) wait() {
	for in := range a.pending {
		err := futureError(a.ctx, in.fut)
		<-a.slots
		metrics.MeasureSince([]string{"dledger", "append", "commit_latency"}, in.start)
		if err != nil && errors.Is(err, raft.ErrLeadershipLost) && a.resolve != nil && in.fut.Index() != 0 {
			// Leadership moved (a transfer, a stop) after the entry was
			// written: wait for the next leader's verdict instead of
			// answering "retry" for an entry that may be committed.
			if res, rerr, ok := a.resolve(a.ctx, in.fut.Index(), in.data); ok {
				if rerr == nil {
					metrics.IncrCounter([]string{"dledger", "append", "resolved_committed"}, 1)
				}
				a.answer(in.reqs, res, rerr)
				continue
			}
		}
		if err != nil {
			a.answer(in.reqs, nil, mapRaftErr(err, a.notLeader))
			continue
		}
		switch resp := in.fut.Response().(type) {
		case []AppendResult:
			a.answer(in.reqs, resp, nil)
		case error:
			a.answer(in.reqs, nil, resp)
		default:
			a.answer(in.reqs, nil, fmt.Errorf("dledger: unexpected entry response %T", resp))
		}
	}
}

// answer splits res among reqs in order (or sends err to all).
func (a *appender) answer(reqs []*appendReq, res []AppendResult, err error) {
	if err == nil {
		total := 0
		for _, r := range reqs {
			total += len(r.records)
		}
		if len(res) != total {
			err = fmt.Errorf("dledger: entry applied %d results for %d records", len(res), total)
		}
	}
	for _, r := range reqs {
		if err != nil {
			r.finish(appendResp{err: err})
			continue
		}
		n := len(r.records)
		r.finish(appendResp{res: res[:n:n]})
		res = res[n:]
	}
}

// failQueued answers requests still queued at shutdown.
func (a *appender) failQueued() {
	for {
		select {
		case r := <-a.reqs:
			r.finish(appendResp{err: ErrClosed})
		default:
			return
		}
	}
}

// futureError waits for fut, or for ctx: raft does not answer futures still
// queued in its apply channel when it shuts down.
func futureError(ctx context.Context, fut raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- fut.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ErrClosed
	}
}
