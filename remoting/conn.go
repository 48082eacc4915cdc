package remoting

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/armon/go-metrics"
	"github.com/hashicorp/go-hclog"
)

// ErrConnClosed is returned for calls on, or pending on, a closed connection.
var ErrConnClosed = errors.New("remoting: connection closed")

// DefaultIdleTimeout closes connections without inbound bytes for this long
// (Java's serverChannelMaxIdleTimeSeconds and the Go client's read deadline).
const DefaultIdleTimeout = 120 * time.Second

// DefaultFrameTimeout bounds how long a frame may take to arrive once its
// first byte did (ServerConfig.FrameTimeout). The idle deadline alone moves on
// every byte, so a peer trickling one byte a second would hold a connection and
// a growing frame buffer forever. 30 s is ten times the official clients'
// default request timeout: a frame that slow has been given up by its sender.
const DefaultFrameTimeout = 30 * time.Second

// DefaultMaxQueuedBytes is how many response bytes may wait for a peer that does
// not read before its connection is closed (ServerConfig.MaxQueuedBytesPerConn).
const DefaultMaxQueuedBytes = 64 << 20

// How long one write may block on a peer that does not read, and the read buffer.
const (
	defaultWriteTimeout = 30 * time.Second
	readBufferSize      = 16 << 10 // larger frames are read straight into their own buffer
)

// Conn is one remoting connection, on either side. It runs one reader and one
// writer goroutine; requests the peer sends are passed to a dispatch function,
// responses are matched by opaque to the calls made with Invoke.
type Conn struct {
	id       uint64
	side     string // "server" or "client", for metric names
	nc       net.Conn
	logger   hclog.Logger
	maxFrame int
	idle     time.Duration
	frameTTL time.Duration // 0 = no deadline for a whole frame
	version  int32         // stamped on responses

	ctx    context.Context
	cancel context.CancelFunc

	// The write queue: handlers append, the writer takes all. closed is set by
	// the writer's drain, so every queued frame is either written or released.
	qmu       sync.Mutex
	queue     []outFrame
	queued    int // bytes in queue and in the writer's current batch
	maxQueued int
	closed    bool
	wake      chan struct{} // capacity 1: "the queue is not empty"
	wbuf      net.Buffers   // writer goroutine only

	opaque        atomic.Int32
	inflight      atomic.Int32 // server side: requests of this connection queued or running
	inflightBytes atomic.Int64 // server side: body bytes of those requests
	pendMu        sync.Mutex
	pending       map[int32]*pendingCall
	pendEnd       bool // no more pending calls accepted

	dispatch func(*Conn, *Command) // requests from the peer; runs on the reader goroutine
	onClose  func(*Conn)           // once, after both goroutines have ended
	done     chan struct{}         // closed after onClose returned
}

type outFrame struct {
	bufs    net.Buffers
	release func()
	size    int
}

type pendingCall struct {
	done func(*Command, error) // called exactly once by whoever removes the call
	stop func() bool           // stops the context watch of async calls
}

type connOptions struct {
	id        uint64
	side      string
	logger    hclog.Logger
	maxFrame  int
	maxQueued int
	idle      time.Duration
	frameTTL  time.Duration
	version   int32
	dispatch  func(*Conn, *Command)
	onClose   func(*Conn)
}

func newConn(parent context.Context, nc net.Conn, o connOptions) *Conn {
	ctx, cancel := context.WithCancel(parent)
	c := &Conn{
		id:        o.id,
		side:      o.side,
		nc:        nc,
		logger:    o.logger,
		maxFrame:  o.maxFrame,
		idle:      o.idle,
		frameTTL:  o.frameTTL,
		version:   o.version,
		ctx:       ctx,
		cancel:    cancel,
		wake:      make(chan struct{}, 1),
		maxQueued: o.maxQueued,
		pending:   make(map[int32]*pendingCall),
		dispatch:  o.dispatch,
		onClose:   o.onClose,
		done:      make(chan struct{}),
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	go func() {
		c.readLoop()
		c.Close()
		<-writerDone
		c.failPending()
		if c.onClose != nil {
			c.onClose(c)
		}
		close(c.done)
	}()
	return c
}

// doneInflight undoes the accounting of one request of size body bytes.
func (c *Conn) doneInflight(size int64) {
	c.inflight.Add(-1)
	c.inflightBytes.Add(-size)
}

// ID returns the connection's id, unique within its server or client.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr returns the peer's address as host:port.
func (c *Conn) RemoteAddr() string { return c.nc.RemoteAddr().String() }

// LocalAddr returns the local address as host:port.
func (c *Conn) LocalAddr() string { return c.nc.LocalAddr().String() }

// Context is cancelled when the connection closes; long polls watch it.
func (c *Conn) Context() context.Context { return c.ctx }

// Done is closed once the connection has fully closed and its close callback ran.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close closes the connection. Queued frames are released, pending calls fail
// with ErrConnClosed. It does not wait; see Done.
func (c *Conn) Close() error {
	c.cancel()
	return c.nc.Close()
}

func (c *Conn) isClosed() bool { return c.ctx.Err() != nil }

// Invoke sends a request initiated by this side and waits for its response
// until ctx ends or the connection closes. It assigns req.Opaque.
func (c *Conn) Invoke(ctx context.Context, req *Command) (*Command, error) {
	type result struct {
		resp *Command
		err  error
	}
	ch := make(chan result, 1)
	opaque, err := c.register(req, func(resp *Command, err error) { ch <- result{resp, err} })
	if err != nil {
		return nil, err
	}
	if err := c.write(req); err != nil {
		c.cancelCall(opaque)
		return nil, err
	}
	select {
	case r := <-ch:
		return r.resp, r.err
	case <-ctx.Done():
		if c.cancelCall(opaque) {
			return nil, ctx.Err()
		}
		r := <-ch // the response won the race
		return r.resp, r.err
	}
}

// InvokeAsync sends a request and calls cb (on its own goroutine) with the response,
// or with an error when ctx ends or the connection closes first.
func (c *Conn) InvokeAsync(ctx context.Context, req *Command, cb func(*Command, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var once sync.Once
	call := func(resp *Command, err error) { once.Do(func() { go cb(resp, err) }) }
	opaque, err := c.register(req, call)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		if c.cancelCall(opaque) {
			call(nil, ctx.Err())
		}
	})
	c.pendMu.Lock()
	if p := c.pending[opaque]; p != nil {
		p.stop = stop
	}
	c.pendMu.Unlock()
	if err := c.write(req); err != nil {
		if c.cancelCall(opaque) {
			stop()
			return err
		}
	}
	return nil
}

// InvokeOneway sends a request marked oneway; the peer does not answer.
func (c *Conn) InvokeOneway(req *Command) error {
	req.MarkOneway()
	req.Flag &^= flagResponse
	req.Opaque = c.opaque.Add(1)
	return c.write(req)
}

// Send writes a response out of band, e.g. a parked long poll answered later.
// resp.Opaque must be the request's (Command.Reply does that). The response flag
// is set, the version stamped and ExtFields made non-nil.
func (c *Conn) Send(resp *Command) error {
	c.prepareResponse(resp)
	return c.write(resp)
}

func (c *Conn) prepareResponse(resp *Command) {
	resp.markResponse()
	resp.Flag &^= flagOneway
	if resp.Version < c.version {
		resp.Version = c.version
	}
	if resp.Language == "" {
		resp.Language = DefaultLanguage
	}
	if resp.ExtFields == nil {
		resp.ExtFields = make(map[string]string)
	}
}

// register assigns an opaque and records the pending call.
func (c *Conn) register(req *Command, done func(*Command, error)) (int32, error) {
	req.Flag &^= flagResponse | flagOneway
	opaque := c.opaque.Add(1)
	req.Opaque = opaque
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	if c.pendEnd {
		return 0, ErrConnClosed
	}
	c.pending[opaque] = &pendingCall{done: done}
	return opaque, nil
}

// take removes a pending call; nil if it was already completed or cancelled.
func (c *Conn) take(opaque int32) *pendingCall {
	c.pendMu.Lock()
	p := c.pending[opaque]
	delete(c.pending, opaque)
	c.pendMu.Unlock()
	return p
}

// cancelCall removes a pending call without completing it; false if it was
// already taken.
func (c *Conn) cancelCall(opaque int32) bool {
	return c.take(opaque) != nil
}

func (c *Conn) deliver(resp *Command) {
	p := c.take(resp.Opaque)
	if p == nil {
		// Go clients send "oneway" calls with flag 0 and drop the answer; we do the same.
		c.logger.Trace("dropping response with unknown opaque", "opaque", resp.Opaque, "code", resp.Code)
		return
	}
	if p.stop != nil {
		p.stop()
	}
	p.done(resp, nil)
}

func (c *Conn) failPending() {
	c.pendMu.Lock()
	c.pendEnd = true
	calls := c.pending
	c.pending = make(map[int32]*pendingCall)
	c.pendMu.Unlock()
	for _, p := range calls {
		if p.stop != nil {
			p.stop()
		}
		p.done(nil, ErrConnClosed)
	}
}

// write queues a frame for the writer without blocking: a handler never waits
// for a slow peer. The command's Release moves to the frame: it runs after the
// write, or now if the frame cannot be queued. A peer that lets more than
// maxQueued bytes pile up is not reading; its connection is closed.
func (c *Conn) write(cmd *Command) error {
	release := cmd.Release
	cmd.Release = nil
	bufs, err := cmd.FrameBuffers()
	if err != nil {
		if release != nil {
			release()
		}
		return err
	}
	size := 0
	for _, b := range bufs {
		size += len(b)
	}
	c.qmu.Lock()
	if c.closed {
		c.qmu.Unlock()
		if release != nil {
			release()
		}
		return ErrConnClosed
	}
	if c.maxQueued > 0 && c.queued > 0 && c.queued+size > c.maxQueued {
		queued := c.queued
		c.qmu.Unlock()
		if release != nil {
			release()
		}
		metrics.IncrCounter([]string{"remoting", c.side, "slow_peer_closes"}, 1)
		c.logger.Warn("peer is not reading its responses, closing connection",
			"remote", c.RemoteAddr(), "queued_bytes", queued)
		c.Close()
		return fmt.Errorf("%w: peer not reading (%d bytes queued)", ErrConnClosed, queued)
	}
	c.queue = append(c.queue, outFrame{bufs: bufs, release: release, size: size})
	c.queued += size
	c.qmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // the writer is already due to look at the queue
	}
	return nil
}

// writeLoop takes everything queued and writes it with one writev (net.Buffers
// splits it into syscalls of at most IOV_MAX buffers), then releases it.
func (c *Conn) writeLoop() {
	var (
		spare []outFrame
		batch net.Buffers
	)
	for {
		select {
		case <-c.wake:
		case <-c.ctx.Done():
			c.drain()
			return
		}
		// Let the goroutines that are runnable now (handlers finishing
		// together, e.g. the sends of one Raft entry) queue their frames
		// first, so that one writev carries them all instead of one each.
		runtime.Gosched()
		// Double buffering: the queue and the batch being written swap arrays.
		c.qmu.Lock()
		frames := c.queue
		c.queue = spare[:0]
		c.qmu.Unlock()
		if len(frames) == 0 {
			spare = frames
			continue
		}
		batch = batch[:0]
		written := 0
		for _, f := range frames {
			batch = append(batch, f.bufs...)
			written += f.size
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(defaultWriteTimeout))
		c.wbuf = batch // WriteTo consumes its receiver; a field keeps it off the heap
		_, err := c.wbuf.WriteTo(c.nc)
		for _, f := range frames {
			if f.release != nil {
				f.release()
			}
		}
		clear(batch[:cap(batch)])
		clear(frames)
		spare = frames
		c.qmu.Lock()
		c.queued -= written
		c.qmu.Unlock()
		if err != nil {
			if !c.isClosed() {
				c.logger.Debug("write failed, closing connection", "remote", c.RemoteAddr(), "error", err)
			}
			c.Close()
		}
	}
}

// queuedBytes is what waits to be written or is being written.
func (c *Conn) queuedBytes() int {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.closed {
		return 0
	}
	return c.queued
}

// drain releases frames that will never be written. Once closed is set, no
// sender can add more.
func (c *Conn) drain() {
	c.qmu.Lock()
	c.closed = true
	frames := c.queue
	c.queue = nil
	c.queued = 0
	c.qmu.Unlock()
	for _, f := range frames {
		if f.release != nil {
			f.release()
		}
	}
}

func (c *Conn) readLoop() {
	dr := &deadlineReader{nc: c.nc, idle: c.idle}
	br := bufio.NewReaderSize(dr, readBufferSize)
	for {
		// Between frames only the idle deadline applies. Once a frame's first
		// byte is here (read now or already buffered), the whole frame must
		// arrive within frameTTL however steadily its bytes trickle in.
		if _, err := br.Peek(1); err != nil {
			c.logReadError(err, false)
			return
		}
		if c.frameTTL > 0 {
			dr.frameDeadline = time.Now().Add(c.frameTTL)
		}
		cmd, err := ReadCommand(br, c.maxFrame)
		if err != nil {
			c.logReadError(err, !dr.frameDeadline.IsZero())
			return
		}
		dr.frameDeadline = time.Time{}
		if cmd.IsResponse() {
			c.deliver(cmd)
			continue
		}
		c.dispatch(c, cmd)
	}
}

func (c *Conn) logReadError(err error, inFrame bool) {
	var fe *FrameError
	switch {
	case c.isClosed():
	case errors.As(err, &fe):
		metrics.IncrCounter([]string{"remoting", c.side, "bad_frames"}, 1)
		c.logger.Warn("closing connection after a bad frame", "remote", c.RemoteAddr(), "error", err)
	case errors.Is(err, os.ErrDeadlineExceeded) && inFrame:
		metrics.IncrCounter([]string{"remoting", c.side, "frame_timeouts"}, 1)
		c.logger.Debug("closing connection: frame not completed in time", "remote", c.RemoteAddr(), "frame_timeout", c.frameTTL)
	case errors.Is(err, os.ErrDeadlineExceeded):
		metrics.IncrCounter([]string{"remoting", c.side, "idle_closes"}, 1)
		c.logger.Debug("closing idle connection", "remote", c.RemoteAddr(), "idle", c.idle)
	case errors.Is(err, io.EOF):
		c.logger.Trace("connection closed by peer", "remote", c.RemoteAddr())
	default:
		c.logger.Debug("read failed, closing connection", "remote", c.RemoteAddr(), "error", err)
	}
}

// deadlineReader sets the read deadline before every read: the idle period
// from now, or the current frame's deadline if that comes first. Only the
// reader goroutine touches it.
type deadlineReader struct {
	nc            net.Conn
	idle          time.Duration
	frameDeadline time.Time // zero between frames
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	var d time.Time
	if r.idle > 0 {
		d = time.Now().Add(r.idle)
	}
	if !r.frameDeadline.IsZero() && (d.IsZero() || r.frameDeadline.Before(d)) {
		d = r.frameDeadline
	}
	if !d.IsZero() {
		if err := r.nc.SetReadDeadline(d); err != nil {
			return 0, err
		}
	}
	return r.nc.Read(p)
}
