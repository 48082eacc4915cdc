package broker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/raftmq/raftmq/acl"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
)

// Ext fields a member adds to a write it forwards to the leader.
const (
	// ExtForwarded marks a forwarded write ("1"): a member that is not the
	// leader answers it 14 at once instead of forwarding it again.
	ExtForwarded = "raftmqForwarded"
	// ExtBornHost is the original client's address (ip:port), stored as the
	// message's BornHost instead of the forwarding member's.
	ExtBornHost = "raftmqBornHost"
)

const (
	// forwardBudget is how long a write may wait for a leader to be known
	// (an election) before it is answered 14; below the 3 s send timeout of
	// the clients so that they still get an answer they retry.
	forwardBudget = 2500 * time.Millisecond
	// forwardCallTimeout bounds the leader's answer to one forwarded frame,
	// measured from the request's arrival: the client has given up by then.
	forwardCallTimeout = 3 * time.Second
	// maxInflightForwards caps the writes being forwarded at once; beyond it
	// a write is answered SYSTEM_BUSY. They share one connection to the
	// leader, so the cap is also held below the leader's per-connection
	// in-flight limit (serverMaxInflightPerConnection, see forwardCap).
	maxInflightForwards = 4096
	// forwardRetryPoll re-checks the leader when a forward failed and no
	// leadership or directory change was reported.
	forwardRetryPoll = 100 * time.Millisecond
	// forwardDialTimeout bounds connecting to the leader: an address that
	// vanished (a killed container) must not hold writes for the election.
	forwardDialTimeout = 500 * time.Millisecond
	// forwardMovedGrace is how long a forwarded write still waits for the
	// old leader's answer once another member leads: a live old leader
	// (a transfer) answers within it, a stopped or cut-off one is given up
	// and the write goes to the new leader.
	forwardMovedGrace = 500 * time.Millisecond
)

// errLeaderMoved ends a forward to a leader that stopped answering after
// another member took over.
var errLeaderMoved = errors.New("another member took over while the old leader did not answer")

// forwarder relays the writes a non-leader receives to the leader through
// one multiplexed connection per leader address, waiting out elections
// within forwardBudget. Each write in flight costs one goroutine, bounded
// by maxInflightForwards.
type forwarder struct {
	b      *Broker
	log    hclog.Logger
	client *remoting.Client
	runs   *runners // the forwards in flight, at most forwardCap; kept goroutines as for leader writes

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every leadership or directory change
}

func newForwarder(b *Broker) *forwarder {
	cc := remoting.ClientConfig{MaxFrameSize: b.cfg.MaxFrameSize, DialTimeout: forwardDialTimeout, Logger: b.log.Named("forward-client")}
	if b.cfg.ACLEnable {
		// The fields added below break the client's signature (checked here
		// already): re-sign as this member, naming the client for the leader.
		cc.Sign = acl.ForwardSigner(b.cfg.InnerClientCredentials)
	}
	return &forwarder{
		b:       b,
		runs:    newRunners(int(b.forwardCap())),
		log:     b.log.Named("forward"),
		client:  remoting.NewClient(cc),
		changed: make(chan struct{}),
	}
}

// kick wakes every forward waiting for a leader.
func (f *forwarder) kick() {
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *forwarder) changes() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// target is the member address of the current leader, from the replicated
// member directory.
func (f *forwarder) target() (string, bool) {
	r := f.b.role.get()
	if r.leaderID == "" || r.leaderID == f.b.cfg.DLegerSelfID {
		return "", false
	}
	e, ok := f.b.meta.Member(r.leaderID)
	if !ok {
		return "", false
	}
	return e.MemberAddr, true
}

// close closes the connections to the leader.
func (f *forwarder) close() { f.client.Close() }

// leaderWrite wraps the handler of a leader-only write: the leader serves
// it, a forwarded write reaching a non-leader is refused with 14, any other
// write is forwarded to the leader. Every write taken is counted until it is
// answered, so that Close can wait for them.
func (b *Broker) leaderWrite(h remoting.Handler) remoting.Handler {
	return func(ctx context.Context, conn *remoting.Conn, req *remoting.Command) *remoting.Command {
		// Count first, then look at draining: Close sets draining, then
		// waits for the count, so no write slips between the two.
		b.writes.Add(1)
		if b.draining.Load() {
			b.writes.Add(-1)
			return b.drainingAnswer()
		}
		forwarded := req.Ext(ExtForwarded) == "1"
		if b.node.IsLeader() {
			// Served off the pool: the handler waits for Raft, and a
			// worker held for that wait would make the pool size the
			// bound on what is in flight (and on how many sends share an
			// entry). Beyond maxAsyncWrites the worker serves it, which
			// pushes back through the pool's queue.
			if !b.writeRunners.tryGo(func() { b.serveLeaderWrite(ctx, conn, req, h, forwarded) }) {
				b.serveLeaderWrite(ctx, conn, req, h, forwarded)
			}
			return nil
		} else if forwarded {
			b.writes.Add(-1)
			return remoting.NewResponse(remoting.ServiceNotAvailable, b.notLeaderRemark()+" (forwarded write)")
		}
		resp, async := b.fwd.start(ctx, conn, req, h)
		if !async {
			b.writes.Add(-1)
		}
		return resp
	}
}

// callWrite runs h, turning a panic into a SystemError answer as the
// server does for handlers it runs (this one may run off its pool).
func (b *Broker) callWrite(ctx context.Context, conn *remoting.Conn, req *remoting.Command, h remoting.Handler) (resp *remoting.Command) {
	defer func() {
		if v := recover(); v != nil {
			b.log.Error("write handler panicked", "code", req.Code, "panic", v, "stack", string(debug.Stack()))
			resp = remoting.NewResponse(remoting.SystemError, fmt.Sprintf("internal error: %v", v))
		}
	}()
	return h(ctx, conn, req)
}

// maxAsyncWrites caps the leader writes served off the worker pool at once.
const maxAsyncWrites = 4096

// serveLeaderWrite serves a write taken by the leader, answers it with
// conn.Send and stops counting it, or forwards it when it was not stored
// because leadership moved meanwhile.
func (b *Broker) serveLeaderWrite(ctx context.Context, conn *remoting.Conn, req *remoting.Command, h remoting.Handler, forwarded bool) {
	resp := b.callWrite(ctx, conn, req, h)
	// 14 means not stored (leadership moved while serving it): a write
	// from a client goes on to the new leader.
	if forwarded || resp == nil || resp.Code != remoting.ServiceNotAvailable {
		// Queue the answer before the write stops counting, so that
		// Close's flush covers it.
		b.fwd.answer(conn, req, resp)
		b.writes.Add(-1)
		return
	}
	resp, async := b.fwd.start(ctx, conn, req, h)
	if !async {
		b.fwd.answer(conn, req, resp)
		b.writes.Add(-1)
	}
}

func (b *Broker) drainingAnswer() *remoting.Command {
	return remoting.NewResponse(remoting.ServiceNotAvailable,
		fmt.Sprintf("broker %s (%s) is shutting down, retry", b.addr, b.cfg.DLegerSelfID))
}

// start forwards req in the background and returns (nil, true): the answer
// is sent with conn.Send and the write's count released then. It answers at
// once (resp, false) when the forward cannot start.
func (f *forwarder) start(ctx context.Context, conn *remoting.Conn, req *remoting.Command, local remoting.Handler) (*remoting.Command, bool) {
	arrived := time.Now()
	if !f.runs.tryGo(func() {
		defer f.b.writes.Add(-1)
		f.answer(conn, req, f.forward(ctx, conn, req, local, arrived))
	}) {
		return remoting.NewResponse(remoting.SystemBusy,
			"[REJECTREQUEST]system busy, start flow control for a while (too many writes forwarded to the leader)"), false
	}
	return nil, true
}

// answer sends resp to req's connection (nothing for oneway requests or a
// nil resp), as the server would for a handler's return value.
func (f *forwarder) answer(conn *remoting.Conn, req, resp *remoting.Command) {
	if resp == nil {
		return
	}
	if req.IsOneway() {
		if resp.Release != nil {
			resp.Release()
		}
		return
	}
	resp.Opaque = req.Opaque
	resp.SerializeType = req.SerializeType
	err := conn.Send(resp)
	if err == nil || errors.Is(err, remoting.ErrConnClosed) {
		return
	}
	f.log.Warn("cannot send a write's answer", "code", req.Code, "remote", conn.RemoteAddr(), "error", err)
	// Not encodable: answer something the client can decode.
	_ = conn.Send(req.Reply(remoting.SystemError, "cannot encode response: "+err.Error()))
}

// forward sends req to the leader until one answers it with something else
// than "not leader", waiting for leadership or directory changes in between,
// or serves it locally if this member becomes the leader meanwhile.
func (f *forwarder) forward(ctx context.Context, conn *remoting.Conn, req *remoting.Command, local remoting.Handler, arrived time.Time) *remoting.Command {
	waitUntil := arrived.Add(forwardBudget)
	cctx, cancel := context.WithDeadline(ctx, arrived.Add(forwardCallTimeout))
	defer cancel()
	why := "no leader known"
	for attempt := 0; ; attempt++ {
		changed := f.changes()
		poll := false
		if f.b.node.IsLeader() {
			resp := local(ctx, conn, req)
			if resp == nil || resp.Code != remoting.ServiceNotAvailable {
				return resp
			}
			why, poll = "served locally: "+resp.Remark, true
		} else if addr, ok := f.target(); ok {
			fr := forwardedCopy(req, conn)
			if req.IsOneway() {
				err := f.client.InvokeOneway(cctx, addr, fr)
				if err == nil {
					return nil
				}
				why = "forwarding to the leader at " + addr + " failed: " + err.Error()
			} else {
				resp, err := f.call(cctx, addr, fr, changed)
				switch {
				case err == nil && isIndeterminate(resp) && f.b.retrySafe(req):
					// The old leader lost its leadership with the write in
					// flight. The write carries a UNIQ_KEY inside the
					// duplicate window, so asking the next leader is safe:
					// it answers with the original if the entry committed.
					why = "the leader at " + addr + " answered: " + resp.Remark
				case err == nil && resp.Code != remoting.ServiceNotAvailable:
					return resp
				case err == nil:
					why = "the leader at " + addr + " answered: " + resp.Remark
				default:
					why = "forwarding to the leader at " + addr + " failed: " + err.Error()
				}
			}
			poll = true
			if attempt > 0 {
				f.log.Debug("forward retry", "code", req.Code, "attempt", attempt, "why", why)
			}
		}
		if cctx.Err() != nil || !time.Now().Before(waitUntil) {
			break
		}
		pause := time.Until(waitUntil)
		if poll {
			pause = min(pause, forwardRetryPoll)
		}
		wait := time.NewTimer(pause)
		select {
		case <-changed:
		case <-wait.C:
		case <-cctx.Done():
		}
		wait.Stop()
	}
	return remoting.NewResponse(remoting.ServiceNotAvailable,
		fmt.Sprintf("%s; gave up forwarding after %v (%s), retry", f.b.notLeaderRemark(), time.Since(arrived).Round(time.Millisecond), why))
}

// call sends fr to addr and waits for the answer, giving up
// forwardMovedGrace after another member became the leader without addr
// having answered.
func (f *forwarder) call(ctx context.Context, addr string, fr *remoting.Command, changed <-chan struct{}) (*remoting.Command, error) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		resp *remoting.Command
		err  error
	}
	answered := make(chan result, 1)
	if err := f.client.InvokeAsync(actx, addr, fr, func(r *remoting.Command, err error) { answered <- result{r, err} }); err != nil {
		return nil, err
	}
	var grace <-chan time.Time
	for {
		select {
		case r := <-answered:
			return r.resp, r.err
		case <-grace:
			return nil, errLeaderMoved
		case <-changed:
			changed = f.changes()
			if cur, ok := f.target(); grace == nil && (!ok || cur != addr) {
				t := time.NewTimer(forwardMovedGrace)
				defer t.Stop()
				grace = t.C
			}
		}
	}
}

// forwardedCopy is req as the leader must see it: marked forwarded and
// carrying the original client's address.
func forwardedCopy(req *remoting.Command, conn *remoting.Conn) *remoting.Command {
	ext := make(map[string]string, len(req.ExtFields)+2)
	for k, v := range req.ExtFields {
		ext[k] = v
	}
	ext[ExtForwarded] = "1"
	if _, ok := ext[ExtBornHost]; !ok {
		ext[ExtBornHost] = connAddrPort(conn).String()
	}
	fr := remoting.NewRequest(req.Code, ext, req.Body)
	fr.Remark = req.Remark
	fr.Language = req.Language
	fr.Version = req.Version
	fr.SerializeType = req.SerializeType
	return fr
}

// bornHost is the address a stored message records as its producer's: the
// connection's peer, or for a forwarded write the client the forwarding
// member received it from.
func bornHost(conn *remoting.Conn, req *remoting.Command) netip.AddrPort {
	if req.Ext(ExtForwarded) == "1" {
		if ap, err := netip.ParseAddrPort(req.Ext(ExtBornHost)); err == nil {
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	return connAddrPort(conn)
}

// announceMember proposes this member's directory entry for the term it
// leads, so that the other members know where to forward writes. It retries
// while this member leads term.
func (b *Broker) announceMember(term uint64) {
	e := Member{ID: b.cfg.DLegerSelfID, Term: term, ClientAddr: b.addr, MemberAddr: b.memberAddr}
	for attempt := 0; b.ctx.Err() == nil; attempt++ {
		if r := b.role.get(); !r.leader || r.term != term {
			return
		}
		if cur, ok := b.meta.Member(e.ID); ok && cur == e {
			return
		}
		_, err := b.propose(b.ctx, &metaCommand{Op: opPutMember, Time: time.Now().UnixMilli(), Member: &e})
		if err == nil {
			return
		}
		b.log.Warn("announcing the member directory entry failed", "error", err, "attempt", attempt)
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// isIndeterminate reports an answer to a write whose outcome is unknown.
func isIndeterminate(resp *remoting.Command) bool {
	return resp != nil && resp.Code == remoting.SystemError && strings.HasPrefix(resp.Remark, indeterminateRemark)
}

// retrySafe reports whether sending req again cannot store it twice: a
// single message carrying a UNIQ_KEY while the duplicate window is on.
// (Batches are left to the client: the Go client puts no UNIQ_KEY on their
// items.)
func (b *Broker) retrySafe(req *remoting.Command) bool {
	if b.cfg.DuplicateWindow <= 0 || req.Code == remoting.SendBatchMessage {
		return false
	}
	h, err := decodeSendHeader(req)
	return err == nil && !h.Batch && !isClientSendBack(h.Topic) &&
		message.DecodeProperties(h.Properties)[message.PropertyUniqKey] != ""
}

// forwardCap is how many writes may be forwarded at once: maxInflightForwards,
// or less when the members' per-connection in-flight limit is lower (the
// leader would answer the excess SYSTEM_BUSY on the shared connection).
func (b *Broker) forwardCap() int64 {
	if n := b.cfg.ServerMaxInflight; n > 0 && n < maxInflightForwards {
		return int64(n)
	}
	return maxInflightForwards
}
