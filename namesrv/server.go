package namesrv

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	metrics "github.com/armon/go-metrics"
	"github.com/hashicorp/go-hclog"

	"github.com/raftmq/raftmq/remoting"
	"github.com/raftmq/raftmq/wire"
)

// Defaults of Config.
const (
	DefaultListenAddr    = "0.0.0.0:9876"
	DefaultScanInterval  = 10 * time.Second
	DefaultBrokerTimeout = 120 * time.Second
)

// Request codes the remoting package does not name (RocketMQ RequestCode).
const (
	codeUpdateNamesrvConfig int32 = 318
	codeGetNamesrvConfig    int32 = 319
)

// poolName is the worker pool the namesrv's handlers run on when it owns the
// remoting server.
const poolName = "namesrv"

// Config configures a Server.
type Config struct {
	// ListenAddr is where Start listens; default DefaultListenAddr.
	ListenAddr string
	// ScanInterval is how often silent brokers are looked for; default 10 s.
	ScanInterval time.Duration
	// BrokerTimeout is how long a broker may stay silent unless it registered with
	// heartbeatTimeoutMillis; default 120 s.
	BrokerTimeout time.Duration
	// Logger receives the namesrv's logs; default a null logger.
	Logger hclog.Logger
	// Clock returns the current time; default time.Now. Tests move it forward to
	// expire brokers without waiting.
	Clock func() time.Time
	// Workers and Queue size the handler pool when the Server owns its remoting
	// server; defaults 8 and 10000.
	Workers, Queue int
	// Authenticate, when set, checks every request before any handler runs
	// (remoting.ServerConfig.Authenticate; the acl package's hook).
	Authenticate func(*remoting.Conn, *remoting.Command) *remoting.Command
}

// Server is a namesrv: the route table and KV store behind the remoting handlers.
type Server struct {
	cfg   Config
	log   hclog.Logger
	now   func() time.Time
	table *RouteTable
	kv    *KVStore

	mu       sync.Mutex
	own      *remoting.Server // the remoting server Start/Serve created, if any
	addr     net.Addr
	scanStop context.CancelFunc
	scanDone chan struct{}
	serveErr chan error
}

// New returns a namesrv with an empty route table; nothing runs until Start,
// Serve or Register.
func New(cfg Config) *Server {
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = DefaultListenAddr
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = DefaultScanInterval
	}
	if cfg.BrokerTimeout <= 0 {
		cfg.BrokerTimeout = DefaultBrokerTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 10000
	}
	return &Server{
		cfg:   cfg,
		log:   cfg.Logger,
		now:   cfg.Clock,
		table: NewRouteTable(cfg.BrokerTimeout),
		kv:    NewKVStore(),
	}
}

// Table exposes the route table (read-mostly uses: tests, admin, standalone).
func (s *Server) Table() *RouteTable { return s.table }

// KV exposes the KV config store.
func (s *Server) KV() *KVStore { return s.kv }

// Start listens on Config.ListenAddr and serves in the background until Shutdown.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("namesrv: listen %s: %w", s.cfg.ListenAddr, err)
	}
	rs, err := s.ownServer(ln)
	if err != nil {
		ln.Close()
		return err
	}
	errc := make(chan error, 1)
	s.mu.Lock()
	s.serveErr = errc
	s.mu.Unlock()
	go func() {
		err := rs.Serve(ln)
		if err != nil {
			s.log.Error("namesrv stopped serving", "error", err)
		}
		errc <- err
	}()
	return nil
}

// Serve serves on ln until Shutdown; it returns what the remoting server's Serve
// returns.
func (s *Server) Serve(ln net.Listener) error {
	rs, err := s.ownServer(ln)
	if err != nil {
		return err
	}
	return rs.Serve(ln)
}

// ownServer creates the remoting server this Server owns and registers the handlers.
func (s *Server) ownServer(ln net.Listener) (*remoting.Server, error) {
	s.mu.Lock()
	if s.own != nil {
		s.mu.Unlock()
		return nil, errors.New("namesrv: already serving")
	}
	rs := remoting.NewServer(remoting.ServerConfig{Logger: s.log.Named("remoting"), Authenticate: s.cfg.Authenticate})
	s.own = rs
	s.addr = ln.Addr()
	s.mu.Unlock()
	rs.AddPool(poolName, s.cfg.Workers, s.cfg.Queue)
	s.Register(rs)
	s.log.Info("namesrv serving", "addr", ln.Addr().String())
	return rs, nil
}

// Addr returns the address Start or Serve listens on, "" before.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == nil {
		return ""
	}
	return s.addr.String()
}

// Register installs the namesrv's handlers and connection-close hook on srv and
// starts the expiry scan (stopped by Shutdown). A process hosting both a broker
// and a namesrv on one remoting server (standalone mode) calls it directly; the
// handlers then run on srv's default pool.
func (s *Server) Register(srv *remoting.Server) {
	pool := ""
	s.mu.Lock()
	if srv == s.own {
		pool = poolName
	}
	s.mu.Unlock()
	h := map[int32]remoting.Handler{
		remoting.RegisterBroker:                s.handleRegisterBroker,
		remoting.UnregisterBroker:              s.handleUnregisterBroker,
		remoting.GetRouteInfoByTopic:           s.handleGetRouteInfo,
		remoting.GetBrokerClusterInfo:          s.handleClusterInfo,
		remoting.GetAllTopicListFromNameserver: s.handleAllTopics,
		remoting.GetTopicsByCluster:            s.handleTopicsByCluster,
		remoting.DeleteTopicInNamesrv:          s.handleDeleteTopic,
		remoting.PutKVConfig:                   s.handlePutKV,
		remoting.GetKVConfig:                   s.handleGetKV,
		remoting.DeleteKVConfig:                s.handleDeleteKV,
		remoting.GetKVListByNamespace:          s.handleKVList,
		remoting.WipeWritePermOfBroker:         s.handleWipeWritePerm,
		remoting.AddWritePermOfBroker:          s.handleAddWritePerm,
		remoting.QueryDataVersion:              s.handleQueryDataVersion,
		remoting.BrokerHeartbeat:               s.handleBrokerHeartbeat,
		codeGetNamesrvConfig:                   s.handleGetConfig,
		codeUpdateNamesrvConfig:                s.handleUpdateConfig,
	}
	for code, handler := range h {
		srv.Handle(code, pool, handler)
	}
	srv.OnClose(s.connClosed)
	s.startScanner()
}

// startScanner runs the expiry scan once per Server.
func (s *Server) startScanner() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scanDone != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.scanStop = cancel
	s.scanDone = make(chan struct{})
	go s.scanLoop(ctx, s.scanDone)
}

func (s *Server) scanLoop(ctx context.Context, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(s.cfg.ScanInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.ScanNow()
		}
	}
}

// ScanNow drops brokers silent for longer than their timeout (the periodic scan
// calls it; tests may call it after moving the clock).
func (s *Server) ScanNow() []string {
	removed := s.table.ScanExpired(s.now())
	for _, addr := range removed {
		s.log.Warn("broker expired: no registration within its timeout", "addr", addr)
		metrics.IncrCounter([]string{"namesrv", "broker", "expired"}, 1)
	}
	return removed
}

func (s *Server) connClosed(c *remoting.Conn) {
	for _, addr := range s.table.ConnClosed(c) {
		s.log.Info("broker connection closed, broker removed", "addr", addr)
		metrics.IncrCounter([]string{"namesrv", "broker", "conn_closed"}, 1)
	}
}

// Shutdown stops the expiry scan and, when the Server owns its remoting server,
// stops serving.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	stop, done, own, errc := s.scanStop, s.scanDone, s.own, s.serveErr
	s.mu.Unlock()
	if stop != nil {
		stop()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if own == nil {
		return nil
	}
	err := own.Shutdown(ctx)
	if errc != nil {
		select {
		case <-errc:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

// ---- handlers ----

func errorResponse(code int32, format string, args ...any) *remoting.Command {
	return remoting.NewResponse(code, fmt.Sprintf(format, args...))
}

func success() *remoting.Command { return remoting.NewResponse(remoting.Success, "") }

// requiredExt returns the listed ext fields or an INVALID_PARAMETER answer naming
// the first missing one.
func requiredExt(req *remoting.Command, keys ...string) ([]string, *remoting.Command) {
	out := make([]string, len(keys))
	for i, k := range keys {
		v := req.Ext(k)
		if v == "" {
			return nil, errorResponse(remoting.InvalidParameter, "missing header field %s", k)
		}
		out[i] = v
	}
	return out, nil
}

func (s *Server) handleRegisterBroker(_ context.Context, conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	f, bad := requiredExt(req, "brokerName", "brokerAddr", "clusterName")
	if bad != nil {
		return bad
	}
	reg := Registration{
		BrokerName:   f[0],
		BrokerAddr:   f[1],
		ClusterName:  f[2],
		HAServerAddr: req.Ext("haServerAddr"),
		ZoneName:     req.Ext("__ZONE_NAME"),
		Conn:         conn,
	}
	id, ok, err := req.ExtInt64("brokerId")
	if err != nil || !ok {
		return errorResponse(remoting.InvalidParameter, "header field brokerId missing or not a number")
	}
	reg.BrokerID = id
	reg.MemberID = req.Ext(wire.ExtMemberID)
	for _, m := range strings.Split(req.Ext(wire.ExtUnreachable), ",") {
		if m != "" {
			reg.Unreachable = append(reg.Unreachable, m)
		}
	}
	reg.MemberOrdinal = -1
	if v, ok, err := req.ExtInt64(wire.ExtMemberOrdinal); err != nil {
		return errorResponse(remoting.InvalidParameter, "%v", err)
	} else if ok {
		if v < 0 || v > MaxMemberOrdinal {
			return errorResponse(remoting.InvalidParameter, "%s %d outside 0..%d", wire.ExtMemberOrdinal, v, MaxMemberOrdinal)
		}
		reg.MemberOrdinal = int(v)
	}
	if ms, ok, err := req.ExtInt64("heartbeatTimeoutMillis"); err != nil {
		return errorResponse(remoting.InvalidParameter, "%v", err)
	} else if ok && ms > 0 {
		reg.HeartbeatTimeout = time.Duration(min(ms, int64(24*time.Hour/time.Millisecond))) * time.Millisecond
	}
	if v, _, err := req.ExtBool("enableActingMaster"); err != nil {
		return errorResponse(remoting.InvalidParameter, "%v", err)
	} else {
		reg.EnableActingMaster = v
	}
	if v, _, err := req.ExtBool("compressed"); err != nil {
		return errorResponse(remoting.InvalidParameter, "%v", err)
	} else if v {
		return errorResponse(remoting.SystemError,
			"compressed wire.RegisterBrokerBody is not supported by this namesrv; register with compressedRegister=false")
	}
	if want, ok, err := req.ExtInt64("bodyCrc32"); err != nil {
		return errorResponse(remoting.InvalidParameter, "%v", err)
	} else if ok && want != 0 {
		if got := int64(crc32.ChecksumIEEE(req.Body) & 0x7FFFFFFF); got != want {
			return errorResponse(remoting.SystemError, "crc32 not match: body %d, header %d", got, want)
		}
	}
	body, err := DecodeRegisterBrokerBody(req.Body)
	if err != nil {
		return errorResponse(remoting.InvalidParameter, "bad RegisterBrokerBody: %v", err)
	}
	if len(req.Body) > 0 {
		reg.DataVersion = body.TopicConfigSerializeWrapper.DataVersion
		reg.Topics = body.TopicConfigSerializeWrapper.TopicConfigTable
		if reg.Topics == nil {
			reg.Topics = map[string]wire.TopicConfig{}
		}
	}
	res, err := s.table.Register(reg, s.now())
	if err != nil {
		var fe *FencedError
		if errors.As(err, &fe) {
			s.log.Warn("registration refused", "reason", err.Error())
			metrics.IncrCounter([]string{"namesrv", "register", "fenced"}, 1)
			return errorResponse(remoting.SystemError, "register broker failed: %v", err)
		}
		return errorResponse(remoting.InvalidParameter, "register broker failed: %v", err)
	}
	metrics.IncrCounter([]string{"namesrv", "register", "ok"}, 1)
	s.log.Debug("broker registered", "cluster", reg.ClusterName, "broker", reg.BrokerName,
		"id", reg.BrokerID, "member", reg.MemberID, "addr", reg.BrokerAddr, "term", reg.DataVersion.StateVersion, "topics", len(reg.Topics))
	resp := success()
	if res.HAServerAddr != "" {
		resp.SetExt("haServerAddr", res.HAServerAddr)
	}
	if res.MasterAddr != "" {
		resp.SetExt("masterAddr", res.MasterAddr)
	}
	if order := s.kv.List(NamespaceOrderTopicConfig); order != nil {
		b, err := wire.Marshal(wire.KVTable{Table: order})
		if err == nil {
			resp.Body = b
		}
	}
	return resp
}

func (s *Server) handleUnregisterBroker(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	f, bad := requiredExt(req, "clusterName", "brokerAddr")
	if bad != nil {
		return bad
	}
	if s.table.Unregister(f[0], f[1]) {
		s.log.Info("broker unregistered", "cluster", f[0], "addr", f[1])
	}
	return success()
}

func (s *Server) handleGetRouteInfo(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic := req.Ext("topic")
	if topic == "" {
		return errorResponse(remoting.InvalidParameter, "missing header field topic")
	}
	notFound := func() *remoting.Command {
		return errorResponse(remoting.TopicNotExist, "No topic route info in name server for the topic: %s", topic)
	}
	if conf, ok := s.kv.Get(NamespaceOrderTopicConfig, topic); ok {
		rd, ok := s.table.TopicRoute(topic)
		if !ok {
			return notFound()
		}
		rd.OrderTopicConf = conf
		return bodyResponse(rd)
	}
	b, ok, err := s.table.TopicRouteJSON(topic)
	if err != nil {
		return errorResponse(remoting.SystemError, "%v", err)
	}
	if !ok {
		return notFound()
	}
	resp := success()
	resp.Body = b
	metrics.IncrCounter([]string{"namesrv", "route", "lookup"}, 1)
	return resp
}

func bodyResponse(v any) *remoting.Command {
	b, err := wire.Marshal(v)
	if err != nil {
		return errorResponse(remoting.SystemError, "%v", err)
	}
	resp := success()
	resp.Body = b
	return resp
}

func (s *Server) handleClusterInfo(context.Context, *remoting.Conn, *remoting.Command) *remoting.Command {
	return bodyResponse(s.table.ClusterInfo())
}

func (s *Server) handleAllTopics(context.Context, *remoting.Conn, *remoting.Command) *remoting.Command {
	return bodyResponse(wire.TopicList{TopicList: s.table.AllTopics()})
}

func (s *Server) handleTopicsByCluster(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	f, bad := requiredExt(req, "cluster")
	if bad != nil {
		return bad
	}
	return bodyResponse(wire.TopicList{TopicList: s.table.TopicsByCluster(f[0])})
}

func (s *Server) handleDeleteTopic(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	f, bad := requiredExt(req, "topic")
	if bad != nil {
		return bad
	}
	if s.table.DeleteTopic(f[0], req.Ext("clusterName")) {
		s.log.Info("topic deleted", "topic", f[0], "cluster", req.Ext("clusterName"))
	}
	return success()
}

func (s *Server) handlePutKV(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	f, bad := requiredExt(req, "namespace", "key")
	if bad != nil {
		return bad
	}
	if _, ok := req.ExtFields["value"]; !ok {
		return errorResponse(remoting.InvalidParameter, "missing header field value")
	}
	if err := s.kv.Put(f[0], f[1], req.Ext("value")); err != nil {
		return errorResponse(remoting.SystemError, "put kv config: %v", err)
	}
	return success()
}

func (s *Server) handleGetKV(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	f, bad := requiredExt(req, "namespace", "key")
	if bad != nil {
		return bad
	}
	v, ok := s.kv.Get(f[0], f[1])
	if !ok {
		return errorResponse(remoting.QueryNotFound, "No config item, Namespace: %s Key: %s", f[0], f[1])
	}
	resp := success()
	resp.SetExt("value", v)
	return resp
}

func (s *Server) handleDeleteKV(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	f, bad := requiredExt(req, "namespace", "key")
	if bad != nil {
		return bad
	}
	s.kv.Delete(f[0], f[1])
	return success()
}

func (s *Server) handleKVList(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	f, bad := requiredExt(req, "namespace")
	if bad != nil {
		return bad
	}
	t := s.kv.List(f[0])
	if t == nil {
		return errorResponse(remoting.QueryNotFound, "No config item, Namespace: %s", f[0])
	}
	return bodyResponse(wire.KVTable{Table: t})
}

func (s *Server) handleWipeWritePerm(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	f, bad := requiredExt(req, "brokerName")
	if bad != nil {
		return bad
	}
	n := s.table.WipeWritePerm(f[0])
	s.log.Info("write permission wiped", "broker", f[0], "topics", n)
	resp := success()
	resp.SetExt("wipeTopicCount", strconv.Itoa(n))
	return resp
}

func (s *Server) handleAddWritePerm(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	f, bad := requiredExt(req, "brokerName")
	if bad != nil {
		return bad
	}
	n := s.table.AddWritePerm(f[0])
	s.log.Info("write permission added", "broker", f[0], "topics", n)
	resp := success()
	resp.SetExt("addTopicCount", strconv.Itoa(n))
	return resp
}

func (s *Server) handleQueryDataVersion(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	f, bad := requiredExt(req, "clusterName", "brokerAddr")
	if bad != nil {
		return bad
	}
	var dv wire.DataVersion
	if len(req.Body) > 0 {
		if err := decodeDataVersion(req.Body, &dv); err != nil {
			return errorResponse(remoting.InvalidParameter, "bad wire.DataVersion body: %v", err)
		}
	}
	changed, stored := s.table.QueryDataVersion(f[0], f[1], dv, s.now())
	resp := success()
	resp.SetExt("changed", strconv.FormatBool(changed))
	if stored != nil {
		b, err := wire.Marshal(stored)
		if err != nil {
			return errorResponse(remoting.SystemError, "%v", err)
		}
		resp.Body = b
	}
	return resp
}

func (s *Server) handleBrokerHeartbeat(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	cluster, addr := req.Ext("clusterName"), req.Ext("brokerAddr")
	var timeout time.Duration
	if ms, ok, err := req.ExtInt64("heartbeatTimeoutMills"); err == nil && ok && ms > 0 {
		timeout = time.Duration(min(ms, int64(24*time.Hour/time.Millisecond))) * time.Millisecond
	}
	known := cluster != "" && addr != "" && s.table.Heartbeat(cluster, addr, timeout, s.now())
	if req.IsOneway() {
		return nil // Java answers nothing; a oneway request must get no answer.
	}
	if !known {
		return errorResponse(remoting.SystemError, "broker %s of cluster %s is not registered", addr, cluster)
	}
	return success()
}

// handleGetConfig answers GET_NAMESRV_CONFIG (mqadmin getNamesrvConfig) with the
// configuration as Java properties text.
func (s *Server) handleGetConfig(context.Context, *remoting.Conn, *remoting.Command) *remoting.Command {
	port := ""
	if _, p, err := net.SplitHostPort(s.cfg.ListenAddr); err == nil {
		port = p
	}
	if a := s.Addr(); a != "" {
		if _, p, err := net.SplitHostPort(a); err == nil {
			port = p
		}
	}
	resp := success()
	resp.Body = fmt.Appendf(nil, "listenPort=%s\nscanNotActiveBrokerInterval=%d\nbrokerTimeoutMillis=%d\n",
		port, s.cfg.ScanInterval.Milliseconds(), s.cfg.BrokerTimeout.Milliseconds())
	return resp
}

// handleUpdateConfig refuses UPDATE_NAMESRV_CONFIG: changing a running namesrv's
// configuration over an unauthenticated connection is what CVE-2023-37582 abused.
func (s *Server) handleUpdateConfig(context.Context, *remoting.Conn, *remoting.Command) *remoting.Command {
	return errorResponse(remoting.NoPermission, "updating the namesrv configuration over the network is disabled; restart with new flags")
}
