package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/acl"
	"github.com/raftmq/raftmq/broker/lockmgr"
	"github.com/raftmq/raftmq/broker/schedule"
	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/dledger"
	"github.com/raftmq/raftmq/remoting"
	"github.com/raftmq/raftmq/wire"
)

// Options are a broker's dependencies besides its Config.
type Options struct {
	Logger hclog.Logger
	// Listener, when set, is used instead of listening on Config.ListenAddr();
	// the advertised port is then the listener's (tests use 127.0.0.1:0).
	Listener net.Listener
	// RaftTransport is handed to the group node (tests); nil = TCP.
	RaftTransport raft.Transport
	// RaftTimeouts overrides the node's heartbeat/election timeouts when non-zero.
	RaftHeartbeatTimeout, RaftElectionTimeout time.Duration
	// Namesrv, when set, replaces the remoting client used to register.
	Namesrv NamesrvInvoker
}

// NamesrvInvoker sends a request to a namesrv address and waits for the answer.
type NamesrvInvoker interface {
	Invoke(ctx context.Context, addr string, req *remoting.Command) (*remoting.Command, error)
}

// roleState is what the broker knows about its group's leadership.
type roleState struct {
	leader     bool
	term       uint64
	leaderID   string
	leaderAddr string
}

type roleBox struct {
	mu sync.Mutex
	r  roleState
}

func (b *roleBox) get() roleState  { b.mu.Lock(); defer b.mu.Unlock(); return b.r }
func (b *roleBox) set(r roleState) { b.mu.Lock(); b.r = r; b.mu.Unlock() }

// Broker is one member of a broker group serving RocketMQ clients.
type Broker struct {
	cfg       Config
	log       hclog.Logger
	node      *dledger.Node
	meta      *metaStore
	srv       *remoting.Server
	ln        net.Listener
	addr      string
	storeHost netip.AddrPort
	clients   *clientRegistry
	offsets   *offsetManager
	holds     *pullHolds
	steer     *readSteer
	contact   *contactReport
	locks     *lockmgr.Manager
	namesrv   NamesrvInvoker
	role      roleBox
	stats     runtimeStats
	regKick   chan struct{}
	services  *services
	authz     *acl.Authorizer // nil unless aclEnable
	fwd       *forwarder
	// memberAddr is where the other members forward writes to (brokerIP2:port).
	memberAddr string
	// draining is set by Close once leadership is handed over: new writes
	// are answered 14 while the ones in flight finish.
	draining atomic.Bool
	// writes counts the leader-only writes taken and not yet answered,
	// forwarded ones included (Close waits for them).
	writes atomic.Int64
	// sendDeadline bounds the producer sends waiting for Raft.
	sendDeadline *sharedDeadline
	// writeRunners serve the leader writes off the worker pool
	// (forward.go), at most maxAsyncWrites at once.
	writeRunners *runners

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	unsub     func()
	started   time.Time
	closed    atomic.Bool
	lastPull  atomic.Int64 // unix nanos of the latest pull request (Close drains)
}

// Start opens the broker's Raft group member, starts serving clients and
// registering with the namesrvs. The client port is bound only once the
// store is recovered, so a restarting member refuses connections instead of
// accepting ones it cannot serve. It returns once the listener is bound; the
// group may not have a leader yet (writes then wait for one, see forward.go).
func Start(cfg Config, opts Options) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	peers, err := dledger.ParsePeers(cfg.DLegerPeers)
	if err != nil {
		return nil, fmt.Errorf("dLegerPeers: %w", err)
	}
	flush, err := commitlog.ParseFlushDiskType(string(cfg.FlushDiskType))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StorePathRootDir, 0o755); err != nil {
		return nil, fmt.Errorf("storePathRootDir: %w", err)
	}
	var accounts *acl.Store // loaded before anything listens: ACL on means no request goes unchecked
	if cfg.ACLEnable {
		if accounts, err = acl.NewStore(cfg.ACLFile, logger.Named("acl")); err != nil {
			return nil, fmt.Errorf("aclFile: %w", err)
		}
	}
	ln := opts.Listener
	if ln != nil {
		cfg.ListenPort = ln.Addr().(*net.TCPAddr).Port
	}
	closeLn := func() {
		if ln != nil {
			ln.Close()
		}
	}
	addr := cfg.AdvertisedAddr()
	storeHost, err := netip.ParseAddrPort(addr)
	if err != nil {
		closeLn()
		return nil, fmt.Errorf("advertised address %s: %w", addr, err)
	}

	b := &Broker{
		cfg:       cfg,
		log:       logger,
		meta:      newMetaStore(),
		ln:        ln,
		addr:      addr,
		storeHost: storeHost,
		clients:   newClientRegistry(nil),
		locks:     lockmgr.New(lockmgr.Config{Logger: logger.Named("locks")}),
		regKick:   make(chan struct{}, 1),
		started:   time.Now(),

		memberAddr: cfg.MemberAddr(),
	}
	b.holds = newPullHolds(b)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.meta.onTopic = b.kickRegister
	b.fwd = newForwarder(b)
	b.writeRunners = newRunners(maxAsyncWrites)
	b.sendDeadline = newSharedDeadline(b.ctx, sendTimeout, sendDeadlineStep)
	b.meta.onMember = b.fwd.kick
	b.offsets = newOffsetManager(b.meta, b.propose, cfg.OffsetFlushInterval, func() bool { return b.node.IsLeader() })
	levels, err := schedule.ParseDelayLevels(cfg.MessageDelayLevel)
	if err != nil {
		closeLn()
		b.cancel()
		return nil, fmt.Errorf("messageDelayLevel: %w", err)
	}

	node, err := dledger.Open(dledger.Config{
		Group:            cfg.DLegerGroup,
		SelfID:           cfg.DLegerSelfID,
		Peers:            peers,
		StoreDir:         filepath.Clean(cfg.StorePathRootDir),
		SegmentSize:      cfg.MappedFileSize,
		Flush:            flush,
		FileReservedTime: cfg.FileReservedTime,
		DeleteWhenHour:   cfg.DeleteWhen,
		HeartbeatTimeout: opts.RaftHeartbeatTimeout,
		ElectionTimeout:  opts.RaftElectionTimeout,
		Logger:           logger.Named("dledger"),
		Meta:             b.meta,
		TagsCode:         levels.TagsCode,
		Transport:        opts.RaftTransport,

		DuplicateWindow:     cfg.DuplicateWindow,
		DuplicateMaxEntries: cfg.DuplicateMaxEntries,
	})
	if err != nil {
		closeLn()
		b.cancel()
		return nil, fmt.Errorf("open raft group %s: %w", cfg.DLegerGroup, err)
	}
	b.node = node
	memberIDs := make([]string, len(peers))
	for i, p := range peers {
		memberIDs[i] = p.ID
	}
	b.steer = newReadSteer(memberIDs, node.SelfOrdinal(), cfg.SlaveReadEnable, node.HeartbeatTimeout(), node.ReadProgress)
	b.contact = &contactReport{steer: b.steer}
	if b.services, err = newServices(b, levels); err != nil {
		b.cancel()
		closeLn()
		node.Close(context.Background())
		return nil, err
	}
	// The store is recovered: only now may clients connect.
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.ListenAddr()); err != nil {
			b.cancel()
			node.Close(context.Background())
			return nil, fmt.Errorf("listen: %w", err)
		}
	}
	b.ln = ln

	if opts.Namesrv != nil {
		b.namesrv = opts.Namesrv
	} else {
		nsCfg := remoting.ClientConfig{Logger: logger.Named("namesrv-client")}
		if cfg.InnerClientCredentials.AccessKey != "" {
			nsCfg.Sign = acl.Signer(cfg.InnerClientCredentials) // a namesrv with ACL on wants registrations signed
		}
		b.namesrv = remoting.NewClient(nsCfg)
	}

	srvCfg := cfg.remotingServerConfig()
	srvCfg.Logger = logger.Named("remoting")
	if accounts != nil {
		// Sends older than the duplicate window are refused; younger replays are deduplicated.
		b.authz = acl.NewAuthorizer(accounts.Accounts, logger.Named("acl"), acl.SendWindow(cfg.DuplicateWindow))
		srvCfg.Authenticate = b.authz.Authenticate
		b.wg.Add(1)
		go func() { defer b.wg.Done(); accounts.Run(b.ctx, acl.DefaultReloadInterval) }()
	}
	b.srv = remoting.NewServer(srvCfg)
	b.registerHandlers()
	b.srv.OnClose(b.onConnClose)

	node.OnDispatch(b.holds.wake)
	node.OnDispatch(b.services.onDispatch)
	b.unsub = node.Subscribe(b.onLeadership)

	b.wg.Add(6)
	go func() { defer b.wg.Done(); b.registerLoop() }()
	go func() { defer b.wg.Done(); b.contact.watch(b.ctx.Done(), b.kickRegister) }()
	go func() { defer b.wg.Done(); b.steer.watch(b.ctx.Done(), b.holds.releaseAll) }()
	go func() {
		defer b.wg.Done()
		b.offsets.run(b.ctx, func(err error) { b.log.Warn("offset flush failed", "error", err) })
	}()
	go func() { defer b.wg.Done(); b.scanClients() }()
	go func() {
		defer b.wg.Done()
		if err := b.srv.Serve(ln); err != nil && !b.closed.Load() {
			b.log.Error("remoting server stopped", "error", err)
		}
	}()
	b.log.Info("broker started", "addr", addr, "member_addr", b.memberAddr, "since_start", time.Since(b.started).Round(time.Millisecond), "group", cfg.DLegerGroup, "self", cfg.DLegerSelfID, "cluster", cfg.BrokerClusterName)
	return b, nil
}

// Addr is the advertised broker address (brokerIP1:port).
func (b *Broker) Addr() string { return b.addr }

// MemberAddr is where the group's other members forward writes to (brokerIP2:port).
func (b *Broker) MemberAddr() string { return b.memberAddr }

// Members is the replicated member directory.
func (b *Broker) Members() []Member { return b.meta.Members() }

// Node is the broker's Raft group member.
func (b *Broker) Node() *dledger.Node { return b.node }

// IsLeader reports whether this broker is its group's leader (brokerId 0).
func (b *Broker) IsLeader() bool { return b.node.IsLeader() }

// WaitLeader blocks until this broker is the leader with its system topics in
// place and every namesrv has accepted its registration as brokerId 0, or ctx
// ends. Clients that start after it returns find TBW102 in the routes, with a
// leader to send to.
func (b *Broker) WaitLeader(ctx context.Context) error {
	for {
		// The role must say leader too: registrations are built from it, and
		// a registration as follower would not give the group brokerId 0.
		if b.node.IsLeader() && b.role.get().leader {
			if _, ok := b.meta.Topic(b.cfg.BrokerClusterName); ok && b.registerAll(ctx) == len(b.cfg.NamesrvAddrs) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close stops the broker without losing an answer: it unregisters from the
// namesrvs, hands leadership to another member if it leads (writes arriving
// meanwhile are forwarded to the new leader), answers every write it had
// taken (those committed get their result, see dledger's resolution of
// leadership-lost entries), refuses new writes with 14 while it drains,
// then closes connections and the node.
func (b *Broker) Close(ctx context.Context) error {
	var err error
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		// Parked pulls are answered first, pointing their consumers at
		// another member, so a planned stop costs consumers no long poll
		// (the answers leave while the namesrvs are told).
		b.steer.closing.Store(true)
		b.holds.releaseAll()
		b.ln.Close() // no new connections; the open ones are drained below
		b.services.stop()
		b.unregisterAll(ctx)
		b.handOver(ctx)
		b.draining.Store(true)
		b.drainWrites(ctx)
		b.drainPulls(ctx)
		if ferr := b.srv.Flush(ctx); ferr != nil {
			b.log.Warn("stopping before every answer was written", "error", ferr)
		}
		if b.unsub != nil {
			b.unsub()
		}
		b.cancel()
		b.holds.close()
		err = b.srv.Shutdown(ctx)
		b.wg.Wait()
		// A registration that raced the first unregistration (a leadership
		// change while handing over) is undone now that the loop has ended.
		b.unregisterAll(ctx)
		if cerr := b.node.Close(ctx); cerr != nil && err == nil {
			err = cerr
		}
		if c, ok := b.namesrv.(interface{ Close() error }); ok {
			c.Close()
		}
	})
	return err
}

// handOver transfers leadership before a stop, so that the group keeps
// accepting writes without waiting for an election timeout.
func (b *Broker) handOver(ctx context.Context) {
	if len(b.node.Status().Peers) < 2 || !b.node.IsLeader() {
		return
	}
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := b.node.TransferLeadership(tctx, ""); err != nil {
		b.log.Warn("leadership transfer before stop failed", "error", err)
		return
	}
	// Wait until the new leader is known here so writes in flight can be
	// forwarded to it.
	for tctx.Err() == nil {
		if r := b.role.get(); !r.leader && r.leaderID != "" && r.leaderID != b.cfg.DLegerSelfID {
			if _, ok := b.meta.Member(r.leaderID); ok {
				break
			}
		}
		select {
		case <-b.fwd.changes():
		case <-time.After(20 * time.Millisecond):
		case <-tctx.Done():
		}
	}
	b.log.Info("leadership handed over before stop", "to", b.role.get().leaderID, "took", time.Since(start).Round(time.Millisecond))
}

// drainWrites waits, bounded by ctx, until every write taken before
// draining began has been answered.
func (b *Broker) drainWrites(ctx context.Context) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for b.writes.Load() > 0 {
		select {
		case <-ctx.Done():
			b.log.Warn("stopping with writes still in flight", "writes", b.writes.Load(), "error", ctx.Err())
			b.fwd.close()
			return
		case <-t.C:
		}
	}
	b.fwd.close()
}

// Pull drain on Close: keep answering pulls (each pointing elsewhere) until
// none arrived for pullDrainQuiet, at most pullDrainMax, so consumers that
// were between two pulls move too instead of meeting a closed port (which
// costs them a 3 s pause per try until their route refresh).
const (
	pullDrainQuiet = 100 * time.Millisecond
	pullDrainMax   = time.Second
)

func (b *Broker) drainPulls(ctx context.Context) {
	deadline := time.Now().Add(pullDrainMax)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for time.Now().Before(deadline) && time.Since(time.Unix(0, b.lastPull.Load())) < pullDrainQuiet {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// onLeadership follows the group's leadership: registers the new role at
// once, creates the system topics on a new leader and starts or stops the
// leader-only services.
func (b *Broker) onLeadership(ev dledger.LeadershipEvent) {
	prev := b.role.get()
	b.role.set(roleState{leader: ev.Leader, term: ev.Term, leaderID: ev.LeaderID, leaderAddr: ev.LeaderAddr})
	b.log.Info("leadership changed", "leader", ev.Leader, "term", ev.Term, "leaderID", ev.LeaderID)
	b.fwd.kick()
	if ev.Leader && (!prev.leader || prev.term != ev.Term) {
		b.wg.Add(1)
		go func() { defer b.wg.Done(); b.announceMember(ev.Term) }()
	}
	// Offset commits taken in a leadership that ended never reach the log,
	// even when this member leads again (another may have led in between
	// and acknowledged newer commits).
	if prev.leader && (!ev.Leader || ev.Term != prev.term) {
		b.offsets.drop()
	}
	if ev.Leader && !prev.leader {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.ensureSystemTopics()
			b.services.startLeader()
		}()
	} else if !ev.Leader && prev.leader {
		b.locks.Reset()
		b.services.stopLeader()
	}
	b.kickRegister()
}

// systemTopics are the topics every broker has (docs/protocol.md §6.2).
func (b *Broker) systemTopics() []wire.TopicConfig {
	mk := wire.NewTopicConfig
	out := []wire.TopicConfig{
		mk("SELF_TEST_TOPIC", 1, wire.PermRead|wire.PermWrite),
		mk(b.cfg.BrokerClusterName, 16, wire.PermRead|wire.PermWrite),
		mk(b.cfg.BrokerName, 1, wire.PermRead|wire.PermWrite),
		mk("RMQ_SYS_TRACE_TOPIC", 1, wire.PermRead|wire.PermWrite),
		mk("OFFSET_MOVED_EVENT", 1, wire.PermRead|wire.PermWrite),
		mk(b.cfg.BrokerClusterName+"_REPLY_TOPIC", 1, wire.PermRead|wire.PermWrite),
	}
	out = append(out, b.serviceTopics()...)
	if b.cfg.AutoCreateTopicEnable {
		out = append(out, mk(wire.AutoCreateTopic, int32(b.cfg.DefaultTopicQueueNums), wire.PermRead|wire.PermWrite|wire.PermInherit))
	}
	return out
}

// ensureSystemTopics creates the missing system topics; the cluster-name
// topic goes last, so its presence means all exist (WaitLeader checks it).
func (b *Broker) ensureSystemTopics() {
	var missing []wire.TopicConfig
	var cluster *wire.TopicConfig
	for _, tc := range b.systemTopics() {
		if _, ok := b.meta.Topic(tc.TopicName); ok {
			continue
		}
		if tc.TopicName == b.cfg.BrokerClusterName {
			c := tc
			cluster = &c
			continue
		}
		missing = append(missing, tc)
	}
	if cluster != nil {
		missing = append(missing, *cluster)
	}
	if len(missing) == 0 {
		return
	}
	for attempt := 0; b.node.IsLeader() && b.ctx.Err() == nil; attempt++ {
		err := b.putTopics(b.ctx, missing...)
		if err == nil {
			return
		}
		b.log.Warn("creating system topics failed", "error", err, "attempt", attempt)
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (b *Broker) onConnClose(c *remoting.Conn) {
	changed, ids := b.clients.connClosed(c.ID())
	// A Go client has one connection per broker: its rebalance locks go with it.
	for _, id := range ids {
		b.locks.DropClient(id)
	}
	b.notifyConsumers(changed)
}

// scanClients expires clients without heartbeat and stale locks every 10 s.
func (b *Broker) scanClients() {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		b.notifyConsumers(b.clients.expire(b.cfg.ClientChannelMaxIdle))
		b.locks.Expire()
	}
}

// notifyConsumers sends NOTIFY_CONSUMER_IDS_CHANGED to every consumer of the groups.
func (b *Broker) notifyConsumers(groups []string) {
	for _, g := range groups {
		for _, c := range b.clients.consumerConns(g) {
			req := remoting.NewRequest(remoting.NotifyConsumerIdsChanged, map[string]string{"consumerGroup": g}, nil)
			if err := c.InvokeOneway(req); err != nil {
				b.log.Debug("notify consumer ids changed failed", "group", g, "remote", c.RemoteAddr(), "error", err)
			}
		}
	}
}

func connAddrPort(c *remoting.Conn) netip.AddrPort {
	ap, err := netip.ParseAddrPort(c.RemoteAddr())
	if err != nil {
		return netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// brokerID is the id this node registers with: 0 as leader, else its stable
// id 1+ordinal.
func (b *Broker) brokerID() int64 {
	if b.role.get().leader {
		return 0
	}
	return b.stableID()
}

var errClosed = errors.New("broker closed")

func itoa64(v int64) string { return strconv.FormatInt(v, 10) }
