package remoting

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
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

// Writer tuning: how many frames one writev may carry, how long a stuck peer may
// block the writer, and how many frames may wait for the writer.
const (
	maxBatchFrames      = 64
	maxBatchBytes       = 1 << 20
	defaultWriteTimeout = 30 * time.Second
	writeQueueLen       = 128      // per connection: keep idle connections cheap
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
	version  int32 // stamped on responses

	ctx    context.Context
	cancel context.CancelFunc

	// out feeds the writer. closeMu makes "closed" and sends on out exclusive, so
	// every queued frame is either written or released by the writer's drain.
	out     chan outFrame
	wbuf    net.Buffers // writer goroutine only
	closeMu sync.RWMutex
	closed  bool

	opaque   atomic.Int32
	inflight atomic.Int32 // server side: requests of this connection queued or running
	pendMu   sync.Mutex
	pending  map[int32]*pendingCall
	pendEnd  bool // no more pending calls accepted

	dispatch func(*Conn, *Command) // requests from the peer; runs on the reader goroutine
	onClose  func(*Conn)           // once, after both goroutines have ended
	done     chan struct{}         // closed after onClose returned
}

type outFrame struct {
	bufs    net.Buffers
	release func()
}

type pendingCall struct {
	done func(*Command, error) // called exactly once by whoever removes the call
	stop func() bool           // stops the context watch of async calls
}

type connOptions struct {
	id       uint64
	side     string
	logger   hclog.Logger
	maxFrame int
	idle     time.Duration
	version  int32
	dispatch func(*Conn, *Command)
	onClose  func(*Conn)
}

func newConn(parent context.Context, nc net.Conn, o connOptions) *Conn {
	ctx, cancel := context.WithCancel(parent)
	c := &Conn{
		id:       o.id,
		side:     o.side,
		nc:       nc,
		logger:   o.logger,
		maxFrame: o.maxFrame,
		idle:     o.idle,
		version:  o.version,
		ctx:      ctx,
		cancel:   cancel,
		out:      make(chan outFrame, writeQueueLen),
		pending:  make(map[int32]*pendingCall),
		dispatch: o.dispatch,
		onClose:  o.onClose,
		done:     make(chan struct{}),
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

// write queues a frame for the writer. The command's Release moves to the frame:
// it runs after the write, or now if the frame cannot be queued.
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
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	if c.closed {
		if release != nil {
			release()
		}
		return ErrConnClosed
	}
	select {
	case c.out <- outFrame{bufs: bufs, release: release}:
		return nil
	case <-c.ctx.Done():
		if release != nil {
			release()
		}
		return ErrConnClosed
	}
}

func (c *Conn) writeLoop() {
	var (
		batch    net.Buffers
		releases []func()
	)
	for {
		var f outFrame
		select {
		case f = <-c.out:
		case <-c.ctx.Done():
			c.drain()
			return
		}
		batch, releases = batch[:0], releases[:0]
		size := 0
		for n := 0; ; n++ {
			batch = append(batch, f.bufs...)
			for _, b := range f.bufs {
				size += len(b)
			}
			if f.release != nil {
				releases = append(releases, f.release)
			}
			if n+1 >= maxBatchFrames || size >= maxBatchBytes {
				break
			}
			var more bool
			select {
			case f, more = <-c.out:
			default:
			}
			if !more {
				break
			}
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(defaultWriteTimeout))
		c.wbuf = batch // WriteTo consumes its receiver; a field keeps it off the heap
		_, err := c.wbuf.WriteTo(c.nc)
		for _, r := range releases {
			r()
		}
		clear(batch[:cap(batch)])
		clear(releases[:cap(releases)])
		if err != nil {
			if !c.isClosed() {
				c.logger.Debug("write failed, closing connection", "remote", c.RemoteAddr(), "error", err)
			}
			c.Close()
		}
	}
}

// drain releases frames that will never be written. After closed is set under
// the write lock, no sender can add more.
func (c *Conn) drain() {
	c.closeMu.Lock()
	c.closed = true
	c.closeMu.Unlock()
	for {
		select {
		case f := <-c.out:
			if f.release != nil {
				f.release()
			}
		default:
			return
		}
	}
}

func (c *Conn) readLoop() {
	br := bufio.NewReaderSize(idleReader{c.nc, c.idle}, readBufferSize)
	for {
		cmd, err := ReadCommand(br, c.maxFrame)
		if err != nil {
			c.logReadError(err)
			return
		}
		if cmd.IsResponse() {
			c.deliver(cmd)
			continue
		}
		c.dispatch(c, cmd)
	}
}

func (c *Conn) logReadError(err error) {
	var fe *FrameError
	switch {
	case c.isClosed():
	case errors.As(err, &fe):
		metrics.IncrCounter([]string{"remoting", c.side, "bad_frames"}, 1)
		c.logger.Warn("closing connection after a bad frame", "remote", c.RemoteAddr(), "error", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		metrics.IncrCounter([]string{"remoting", c.side, "idle_closes"}, 1)
		c.logger.Debug("closing idle connection", "remote", c.RemoteAddr(), "idle", c.idle)
	case errors.Is(err, io.EOF):
		c.logger.Trace("connection closed by peer", "remote", c.RemoteAddr())
	default:
		c.logger.Debug("read failed, closing connection", "remote", c.RemoteAddr(), "error", err)
	}
}

// idleReader pushes the read deadline forward on every read, so only a
// connection without inbound bytes for the idle period times out.
type idleReader struct {
	nc   net.Conn
	idle time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	if r.idle > 0 {
		if err := r.nc.SetReadDeadline(time.Now().Add(r.idle)); err != nil {
			return 0, err
		}
	}
	return r.nc.Read(p)
}
