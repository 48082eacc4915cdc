package remoting

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/armon/go-metrics"
	"github.com/hashicorp/go-hclog"
)

// Handler serves one request. Returning nil sends no response (the handler may
// answer later with Conn.Send). ctx is cancelled when the connection closes.
type Handler func(ctx context.Context, conn *Conn, req *Command) *Command

// ServerConfig configures a Server. Zero values select the defaults.
type ServerConfig struct {
	MaxFrameSize int           // default 16 MiB
	IdleTimeout  time.Duration // default 120 s: close connections with no inbound bytes for that long
	Logger       hclog.Logger
	Version      int32 // stamped on responses, default 401
	// MaxConns, when > 0, closes connections accepted beyond this many.
	MaxConns int
	// MaxInflightPerConn, when > 0, answers SystemBusy to a connection that has
	// this many requests queued or running, so one peer cannot fill the pools.
	MaxInflightPerConn int
	// MaxQueuedBytesPerConn bounds the response bytes waiting for a peer that
	// does not read (default DefaultMaxQueuedBytes); beyond it the connection is
	// closed, so handlers never block on a slow peer and memory stays bounded.
	MaxQueuedBytesPerConn int
}

// DefaultPool is the name of the pool used when Handle is given pool "".
const DefaultPool = "default"

// defaultPoolQueue absorbs bursts before a pool answers SystemBusy.
const defaultPoolQueue = 4096

// defaultPoolWorkers: enough workers that short blocking handlers overlap.
func defaultPoolWorkers() int { return max(16, 4*runtime.GOMAXPROCS(0)) }

// Server accepts remoting connections and dispatches their requests to handlers
// running on bounded worker pools.
type Server struct {
	cfg     ServerConfig
	logger  hclog.Logger
	metrics serverMetrics

	mu        sync.RWMutex
	routes    map[int32]*route
	pools     map[string]*pool
	fallback  *route // unknown codes
	onConnect []func(*Conn)
	onClose   []func(*Conn)

	lnMu     sync.Mutex
	ln       net.Listener
	conns    map[uint64]*Conn
	shutdown bool

	nextID    atomic.Uint64
	ctx       context.Context // cancelled by Shutdown; parent of connection contexts
	cancel    context.CancelFunc
	serveDone chan struct{}
	connWG    sync.WaitGroup // connection goroutines until close callbacks ran
	inflight  sync.WaitGroup // requests queued or running
	stopPools chan struct{}
	workersWG sync.WaitGroup
}

// route binds a request code to its handler and pool; labels are precomputed so
// metrics cost no allocation per request.
type route struct {
	handler Handler
	pool    *pool
	labels  []metrics.Label
}

type pool struct {
	name string
	jobs chan job
}

type job struct {
	conn  *Conn
	req   *Command
	route *route
}

// serverMetrics holds the metric keys, built once per server so reporting a
// request allocates nothing.
type serverMetrics struct {
	requests, busy, panics, handle, sendErrors []string
}

func newServerMetrics() serverMetrics {
	return serverMetrics{
		requests:   []string{"remoting", "server", "requests"},
		busy:       []string{"remoting", "server", "busy"},
		panics:     []string{"remoting", "server", "panics"},
		handle:     []string{"remoting", "server", "handle"},
		sendErrors: []string{"remoting", "server", "send_errors"},
	}
}

// NewServer creates a server with a default pool; register handlers, then Serve.
func NewServer(cfg ServerConfig) *Server {
	if cfg.MaxFrameSize <= 0 {
		cfg.MaxFrameSize = DefaultMaxFrameSize
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Version <= 0 {
		cfg.Version = DefaultVersion
	}
	if cfg.MaxQueuedBytesPerConn <= 0 {
		cfg.MaxQueuedBytesPerConn = DefaultMaxQueuedBytes
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:       cfg,
		logger:    logger,
		metrics:   newServerMetrics(),
		routes:    make(map[int32]*route),
		pools:     make(map[string]*pool),
		conns:     make(map[uint64]*Conn),
		ctx:       ctx,
		cancel:    cancel,
		serveDone: make(chan struct{}),
		stopPools: make(chan struct{}),
	}
	s.AddPool(DefaultPool, defaultPoolWorkers(), defaultPoolQueue)
	s.fallback = &route{
		handler: unsupported,
		pool:    s.pools[DefaultPool],
		labels:  []metrics.Label{{Name: "code", Value: "other"}},
	}
	return s
}

func unsupported(_ context.Context, _ *Conn, req *Command) *Command {
	return NewResponse(RequestCodeNotSupported, fmt.Sprintf("request code %d not supported", req.Code))
}

// AddPool creates a bounded worker pool: workers goroutines and a queue of queue
// requests. A request arriving while the queue is full is answered SystemBusy at
// once. Adding an existing name is a no-op.
func (s *Server) AddPool(name string, workers, queue int) {
	if workers <= 0 {
		workers = 1
	}
	if queue < 0 {
		queue = 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pools[name]; ok {
		return
	}
	p := &pool{name: name, jobs: make(chan job, queue)}
	s.pools[name] = p
	for range workers {
		s.workersWG.Add(1)
		go s.work(p)
	}
}

// Handle routes a request code to h on the named pool ("" = DefaultPool).
// An unknown pool name is created with the default pool's size.
func (s *Server) Handle(code int32, poolName string, h Handler) {
	if poolName == "" {
		poolName = DefaultPool
	}
	s.mu.RLock()
	p, ok := s.pools[poolName]
	s.mu.RUnlock()
	if !ok {
		s.AddPool(poolName, defaultPoolWorkers(), defaultPoolQueue)
		s.mu.RLock()
		p = s.pools[poolName]
		s.mu.RUnlock()
	}
	r := &route{handler: h, pool: p, labels: []metrics.Label{{Name: "code", Value: strconv.Itoa(int(code))}}}
	s.mu.Lock()
	s.routes[code] = r
	s.mu.Unlock()
}

// HandleDefault sets the handler for codes without a route. Without it they are
// answered RequestCodeNotSupported with a remark naming the code.
func (s *Server) HandleDefault(h Handler) {
	s.mu.Lock()
	s.fallback = &route{handler: h, pool: s.pools[DefaultPool], labels: s.fallback.labels}
	s.mu.Unlock()
}

// OnConnect registers a callback run for each accepted connection before its
// first request is dispatched.
func (s *Server) OnConnect(f func(*Conn)) {
	s.mu.Lock()
	s.onConnect = append(s.onConnect, f)
	s.mu.Unlock()
}

// OnClose registers a callback run once per connection after it closed.
func (s *Server) OnClose(f func(*Conn)) {
	s.mu.Lock()
	s.onClose = append(s.onClose, f)
	s.mu.Unlock()
}

// ErrServerClosed is returned by Serve when called after Shutdown.
var ErrServerClosed = errors.New("remoting: server closed")

// Serve accepts connections on ln until Shutdown, then returns nil. It returns
// the accept error if the listener fails otherwise.
func (s *Server) Serve(ln net.Listener) error {
	s.lnMu.Lock()
	if s.shutdown || s.ln != nil {
		s.lnMu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.ln = ln
	s.lnMu.Unlock()
	defer close(s.serveDone)
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			if isTemporaryAcceptError(err) {
				// Out of file descriptors or an aborted handshake: back off and retry.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger.Warn("accept failed, retrying", "error", err, "backoff", backoff)
				select {
				case <-time.After(backoff):
				case <-s.ctx.Done():
					return nil
				}
				continue
			}
			return err
		}
		backoff = 0
		s.accept(nc)
	}
}

func isTemporaryAcceptError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

func (s *Server) accept(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	s.lnMu.Lock()
	if s.shutdown {
		s.lnMu.Unlock()
		nc.Close()
		return
	}
	if s.cfg.MaxConns > 0 && len(s.conns) >= s.cfg.MaxConns {
		s.lnMu.Unlock()
		s.logger.Warn("too many connections, closing a new one", "remote", nc.RemoteAddr(), "max", s.cfg.MaxConns)
		nc.Close()
		return
	}
	s.connWG.Add(1)
	s.mu.RLock()
	onConnect := s.onConnect
	s.mu.RUnlock()
	// Dispatch and close wait for the OnConnect callbacks, so those see the conn first.
	ready := make(chan struct{})
	c := newConn(s.ctx, nc, connOptions{
		id:        s.nextID.Add(1),
		side:      "server",
		logger:    s.logger,
		maxFrame:  s.cfg.MaxFrameSize,
		maxQueued: s.cfg.MaxQueuedBytesPerConn,
		idle:      s.cfg.IdleTimeout,
		version:   s.cfg.Version,
		dispatch: func(c *Conn, req *Command) {
			<-ready
			s.dispatch(c, req)
		},
		onClose: func(c *Conn) {
			<-ready // OnClose callbacks never run before OnConnect ones
			s.closed(c)
		},
	})
	s.conns[c.id] = c
	s.lnMu.Unlock()
	for _, f := range onConnect {
		f(c)
	}
	close(ready)
}

func (s *Server) closed(c *Conn) {
	s.lnMu.Lock()
	delete(s.conns, c.id)
	s.lnMu.Unlock()
	s.mu.RLock()
	onClose := s.onClose
	s.mu.RUnlock()
	for _, f := range onClose {
		f(c)
	}
	s.connWG.Done()
}

// Addr returns the listener's address, or nil before Serve.
func (s *Server) Addr() net.Addr {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// dispatch runs on the connection's reader goroutine: it must not block.
func (s *Server) dispatch(c *Conn, req *Command) {
	s.mu.RLock()
	r, ok := s.routes[req.Code]
	if !ok {
		r = s.fallback
	}
	s.mu.RUnlock()
	metrics.IncrCounterWithLabels(s.metrics.requests, 1, r.labels)
	if n := c.inflight.Add(1); s.cfg.MaxInflightPerConn > 0 && int(n) > s.cfg.MaxInflightPerConn {
		c.inflight.Add(-1)
		s.busy(c, req, r, "connection has too many requests in flight")
		return
	}
	s.inflight.Add(1)
	select {
	case r.pool.jobs <- job{conn: c, req: req, route: r}:
	default:
		s.inflight.Done()
		c.inflight.Add(-1)
		s.busy(c, req, r, "pool full")
	}
}

// busy answers SystemBusy at once (Java's flow-control remark, which Java
// producers recognise and retry).
func (s *Server) busy(c *Conn, req *Command, r *route, why string) {
	metrics.IncrCounterWithLabels(s.metrics.busy, 1, r.labels)
	s.logger.Debug("answering SYSTEM_BUSY", "reason", why, "pool", r.pool.name, "code", req.Code, "remote", c.RemoteAddr())
	if !req.IsOneway() {
		s.respond(c, req, NewResponse(SystemBusy,
			"[REJECTREQUEST]system busy, start flow control for a while"))
	}
}

func (s *Server) work(p *pool) {
	defer s.workersWG.Done()
	for {
		select {
		case j := <-p.jobs:
			s.run(j)
		case <-s.stopPools:
			return
		}
	}
}

func (s *Server) run(j job) {
	defer s.inflight.Done()
	defer j.conn.inflight.Add(-1)
	start := time.Now()
	resp := s.call(j)
	metrics.MeasureSinceWithLabels(s.metrics.handle, start, j.route.labels)
	if resp == nil {
		return
	}
	if j.req.IsOneway() {
		resp.release()
		return
	}
	s.respond(j.conn, j.req, resp)
}

// call runs the handler, turning a panic into a SystemError answer.
func (s *Server) call(j job) (resp *Command) {
	defer func() {
		if v := recover(); v != nil {
			metrics.IncrCounterWithLabels(s.metrics.panics, 1, j.route.labels)
			buf := make([]byte, 4096)
			buf = buf[:runtime.Stack(buf, false)]
			s.logger.Error("handler panicked", "code", j.req.Code, "panic", v, "stack", string(buf))
			resp = NewResponse(SystemError, fmt.Sprintf("internal error: %v", v))
		}
	}()
	return j.route.handler(j.conn.Context(), j.conn, j.req)
}

func (s *Server) respond(c *Conn, req, resp *Command) {
	resp.Opaque = req.Opaque
	resp.SerializeType = req.SerializeType
	if err := c.Send(resp); err != nil && !errors.Is(err, ErrConnClosed) {
		s.logger.Warn("cannot send response", "code", req.Code, "remote", c.RemoteAddr(), "error", err)
		metrics.IncrCounter(s.metrics.sendErrors, 1)
		// The response could not be encoded (e.g. a code too wide for the binary
		// header): answer something the client can decode rather than let it time out.
		fallback := NewResponse(SystemError, "cannot encode response: "+err.Error())
		fallback.Opaque = req.Opaque
		fallback.SerializeType = req.SerializeType
		_ = c.Send(fallback)
	}
}

// Flush waits, bounded by ctx, until every connection has written the
// responses queued so far, so that a graceful stop does not drop answers
// already given.
func (s *Server) Flush(ctx context.Context) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		s.lnMu.Lock()
		pending := 0
		for _, c := range s.conns {
			pending += c.queuedBytes()
		}
		s.lnMu.Unlock()
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Shutdown stops accepting, closes every connection and waits, bounded by ctx,
// for their close callbacks and for running handlers to return.
func (s *Server) Shutdown(ctx context.Context) error {
	s.lnMu.Lock()
	if s.shutdown {
		s.lnMu.Unlock()
		return nil
	}
	s.shutdown = true
	ln := s.ln
	conns := make([]*Conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.lnMu.Unlock()
	s.cancel()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.Close()
	}
	finished := make(chan struct{})
	go func() {
		if ln != nil {
			<-s.serveDone
		}
		s.connWG.Wait()
		s.inflight.Wait()
		close(s.stopPools)
		s.workersWG.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
