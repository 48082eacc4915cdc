package remoting

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/armon/go-metrics"
	"github.com/hashicorp/go-hclog"
)

// ClientConfig configures a Client. Zero values select the defaults.
type ClientConfig struct {
	MaxFrameSize int
	DialTimeout  time.Duration // default 3 s
	IdleTimeout  time.Duration // default 120 s
	Logger       hclog.Logger
	Handler      Handler // optional: serves requests the server initiates (e.g. NOTIFY_CONSUMER_IDS_CHANGED)
	// Sign, when set, is applied to every request this client sends, before
	// it is written (the acl package's Signer adds ACL 1.0's signature).
	Sign func(req *Command)
}

// DefaultDialTimeout bounds connection setup when ctx has an earlier deadline or none.
const DefaultDialTimeout = 3 * time.Second

// maxClientHandlers bounds concurrently running ClientConfig.Handler calls;
// further server-initiated requests are answered SystemBusy.
const maxClientHandlers = 64

// ErrClientClosed is returned by calls on a closed Client.
var ErrClientClosed = errors.New("remoting: client closed")

// Client keeps one multiplexed connection per address, dialled on demand and
// re-dialled after it breaks. Requests must not be reused while in flight: the
// client assigns their opaque.
type Client struct {
	cfg    ClientConfig
	logger hclog.Logger
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	mu      sync.Mutex
	entries map[string]*clientEntry
	closed  bool

	nextID   atomic.Uint64
	handlers chan struct{} // semaphore for Handler calls
}

// clientEntry holds the connection to one address. dialing serialises dials so
// concurrent callers share one connection.
type clientEntry struct {
	conn    atomic.Pointer[Conn]
	dialing chan struct{} // capacity 1
}

// NewClient creates a client; connections are dialled on first use.
func NewClient(cfg ClientConfig) *Client {
	if cfg.MaxFrameSize <= 0 {
		cfg.MaxFrameSize = DefaultMaxFrameSize
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{
		cfg:      cfg,
		logger:   logger,
		ctx:      ctx,
		cancel:   cancel,
		entries:  make(map[string]*clientEntry),
		handlers: make(chan struct{}, maxClientHandlers),
	}
}

// Invoke sends req to addr and waits for the response; ctx's deadline is the
// timeout. It fails promptly with ErrConnClosed if the connection dies.
func (c *Client) Invoke(ctx context.Context, addr string, req *Command) (*Command, error) {
	conn, err := c.conn(ctx, addr)
	if err != nil {
		return nil, err
	}
	c.sign(req)
	return conn.Invoke(ctx, req)
}

// InvokeAsync sends req to addr; cb runs on its own goroutine with the response,
// or with an error when ctx ends or the connection dies first. An error returned
// here means cb will not be called.
func (c *Client) InvokeAsync(ctx context.Context, addr string, req *Command, cb func(*Command, error)) error {
	conn, err := c.conn(ctx, addr)
	if err != nil {
		return err
	}
	c.sign(req)
	return conn.InvokeAsync(ctx, req, cb)
}

// InvokeOneway sends req to addr with the oneway flag; no response is expected.
func (c *Client) InvokeOneway(ctx context.Context, addr string, req *Command) error {
	conn, err := c.conn(ctx, addr)
	if err != nil {
		return err
	}
	c.sign(req)
	return conn.InvokeOneway(req)
}

func (c *Client) sign(req *Command) {
	if c.cfg.Sign != nil {
		c.cfg.Sign(req)
	}
}

// CloseConn closes the connection to addr, if any; the next call re-dials.
func (c *Client) CloseConn(addr string) {
	c.mu.Lock()
	e := c.entries[addr]
	delete(c.entries, addr)
	c.mu.Unlock()
	if e != nil {
		if conn := e.conn.Load(); conn != nil {
			conn.Close()
		}
	}
}

// Close closes all connections; pending calls fail with ErrConnClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	entries := c.entries
	c.entries = make(map[string]*clientEntry)
	c.mu.Unlock()
	c.cancel()
	for _, e := range entries {
		if conn := e.conn.Load(); conn != nil {
			conn.Close()
			<-conn.Done()
		}
	}
	return nil
}

// conn returns a live connection to addr, dialling one if needed.
func (c *Client) conn(ctx context.Context, addr string) (*Conn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClientClosed
	}
	e := c.entries[addr]
	if e == nil {
		e = &clientEntry{dialing: make(chan struct{}, 1)}
		c.entries[addr] = e
	}
	c.mu.Unlock()
	if conn := e.conn.Load(); conn != nil && !conn.isClosed() {
		return conn, nil
	}
	select {
	case e.dialing <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-e.dialing }()
	if conn := e.conn.Load(); conn != nil && !conn.isClosed() {
		return conn, nil // another caller dialled meanwhile
	}
	dialCtx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dialCtx, "tcp", addr)
	if err != nil {
		metrics.IncrCounter([]string{"remoting", "client", "dial_errors"}, 1)
		return nil, fmt.Errorf("remoting: dial %s: %w", addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	conn := newConn(c.ctx, nc, connOptions{
		id:        c.nextID.Add(1),
		side:      "client",
		logger:    c.logger.With("addr", addr),
		maxFrame:  c.cfg.MaxFrameSize,
		maxQueued: DefaultMaxQueuedBytes,
		idle:      c.cfg.IdleTimeout,
		version:   DefaultVersion,
		dispatch:  c.serve,
	})
	e.conn.Store(conn)
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed { // Close ran while we dialled
		conn.Close()
		return nil, ErrClientClosed
	}
	return conn, nil
}

// serve handles a request the server initiated; it runs on the reader goroutine
// and hands the work to a goroutine bounded by the handler semaphore.
func (c *Client) serve(conn *Conn, req *Command) {
	h := c.cfg.Handler
	if h == nil {
		if !req.IsOneway() {
			c.reply(conn, req, NewResponse(RequestCodeNotSupported,
				fmt.Sprintf("request code %d not supported by this client", req.Code)))
		}
		return
	}
	select {
	case c.handlers <- struct{}{}:
	default:
		if !req.IsOneway() {
			c.reply(conn, req, NewResponse(SystemBusy, "client busy"))
		}
		return
	}
	go func() {
		defer func() { <-c.handlers }()
		resp := c.callHandler(h, conn, req)
		if resp == nil {
			return
		}
		if req.IsOneway() {
			resp.release()
			return
		}
		c.reply(conn, req, resp)
	}()
}

func (c *Client) callHandler(h Handler, conn *Conn, req *Command) (resp *Command) {
	defer func() {
		if v := recover(); v != nil {
			c.logger.Error("client handler panicked", "code", req.Code, "panic", v)
			resp = NewResponse(SystemError, fmt.Sprintf("internal error: %v", v))
		}
	}()
	return h(conn.Context(), conn, req)
}

func (c *Client) reply(conn *Conn, req, resp *Command) {
	resp.Opaque = req.Opaque
	resp.SerializeType = req.SerializeType
	if err := conn.Send(resp); err != nil && !errors.Is(err, ErrConnClosed) {
		c.logger.Warn("cannot send response", "code", req.Code, "error", err)
	}
}
