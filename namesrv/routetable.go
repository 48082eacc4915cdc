package namesrv

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// MasterID is the brokerId of the broker that takes writes (the Raft leader).
const MasterID int64 = 0

// Registration is one REGISTER_BROKER call, decoded.
type Registration struct {
	ClusterName        string
	BrokerName         string
	BrokerAddr         string
	BrokerID           int64
	HAServerAddr       string
	ZoneName           string
	EnableActingMaster bool
	// HeartbeatTimeout overrides the table's default expiry for this broker when > 0.
	HeartbeatTimeout time.Duration
	// DataVersion versions the topic table; StateVersion carries the Raft term.
	DataVersion DataVersion
	// Topics is the broker's topic table; nil means the registration carries none.
	Topics map[string]TopicConfig
	// Conn identifies the connection the registration came on (any comparable
	// value, e.g. *remoting.Conn); its close removes the broker. nil: none.
	Conn any
}

// RegisterResult is what a registering broker is told.
type RegisterResult struct {
	MasterAddr   string // brokerId-0 address of the group, for followers
	HAServerAddr string // the master's HA address, for followers
}

// FencedError refuses a registration whose Raft term is older than that of the
// registration it would displace.
type FencedError struct {
	BrokerName string
	BrokerID   int64
	Addr       string
	Term       int64
	HolderAddr string
	HolderTerm int64
}

func (e *FencedError) Error() string {
	if e.HolderAddr == e.Addr {
		return fmt.Sprintf("stale term: %s brokerId %d from %s has term %d, but %s already registered term %d",
			e.BrokerName, e.BrokerID, e.Addr, e.Term, e.HolderAddr, e.HolderTerm)
	}
	return fmt.Sprintf("stale term: %s brokerId %d from %s has term %d, but %s holds it with term %d",
		e.BrokerName, e.BrokerID, e.Addr, e.Term, e.HolderAddr, e.HolderTerm)
}

// liveKey identifies a live broker, as in Java's BrokerAddrInfo.
type liveKey struct {
	cluster string
	addr    string
}

// liveBroker is what the table knows about one registered broker process.
type liveBroker struct {
	brokerName   string
	brokerID     int64
	lastUpdate   time.Time
	timeout      time.Duration
	dataVersion  DataVersion
	haServerAddr string
	conn         any
}

// brokerGroup is the table's BrokerData: one brokerName and its addresses.
type brokerGroup struct {
	cluster            string
	zoneName           string
	enableActingMaster bool
	addrs              map[int64]string
}

// RouteTable is the namesrv's routing state, RocketMQ's RouteInfoManager without
// I/O: live brokers, broker groups, clusters and topic queues. Time comes in as
// arguments so tests control it. It is safe for concurrent use.
type RouteTable struct {
	defaultTimeout time.Duration

	mu       sync.RWMutex
	topics   map[string]map[string]QueueData // topic -> brokerName -> queues
	groups   map[string]*brokerGroup         // brokerName -> group
	clusters map[string]map[string]struct{}  // cluster -> brokerNames
	live     map[liveKey]*liveBroker

	// routeJSON caches encoded routes: clients ask for the same routes every 30 s
	// and the answer changes only when a route-relevant mutation clears the cache
	// (under mu's write lock). Filled under mu's read lock, hence its own mutex.
	cacheMu   sync.RWMutex
	routeJSON map[string][]byte
}

// NewRouteTable returns an empty table whose brokers expire after defaultTimeout
// without registration unless they asked for another timeout.
func NewRouteTable(defaultTimeout time.Duration) *RouteTable {
	return &RouteTable{
		defaultTimeout: defaultTimeout,
		topics:         make(map[string]map[string]QueueData),
		groups:         make(map[string]*brokerGroup),
		clusters:       make(map[string]map[string]struct{}),
		live:           make(map[liveKey]*liveBroker),
		routeJSON:      make(map[string][]byte),
	}
}

// routesChangedLocked drops the encoded routes; the caller holds mu for writing.
func (t *RouteTable) routesChangedLocked() {
	t.cacheMu.Lock()
	clear(t.routeJSON)
	t.cacheMu.Unlock()
}

// Register applies a broker registration (the rules are in the package doc). A
// refused registration returns a *FencedError and changes nothing.
func (t *RouteTable) Register(r Registration, now time.Time) (RegisterResult, error) {
	if err := validateRegistration(&r); err != nil {
		return RegisterResult{}, err
	}
	term := r.DataVersion.StateVersion
	key := liveKey{r.ClusterName, r.BrokerAddr}

	t.mu.Lock()
	defer t.mu.Unlock()

	prev := t.live[key]
	// A registration carrying an older term than this very address already
	// registered was overtaken in flight (e.g. the follower registration sent just
	// before a promotion); applying it would undo the newer one.
	if prev != nil && term < prev.dataVersion.StateVersion {
		return RegisterResult{}, &FencedError{BrokerName: r.BrokerName, BrokerID: r.BrokerID, Addr: r.BrokerAddr,
			Term: term, HolderAddr: r.BrokerAddr, HolderTerm: prev.dataVersion.StateVersion}
	}

	group := t.groups[r.BrokerName]
	if group != nil && group.cluster != r.ClusterName {
		// Fencing and liveness look members up by the group's cluster; a group
		// spanning clusters is a misconfiguration.
		return RegisterResult{}, fmt.Errorf("brokerName %s belongs to cluster %s, not %s", r.BrokerName, group.cluster, r.ClusterName)
	}
	if group != nil {
		if holder, ok := group.addrs[r.BrokerID]; ok && holder != r.BrokerAddr {
			if hl := t.live[liveKey{group.cluster, holder}]; hl != nil {
				ht := hl.dataVersion.StateVersion
				// Raft has at most one leader per term, so another address claiming
				// brokerId 0 in the holder's term (> 0) is as stale as a lower term.
				// Term 0 means "no fencing information" (e.g. a plain Java broker):
				// last registration wins, as in Java.
				if term < ht || (r.BrokerID == MasterID && term == ht && term > 0) {
					return RegisterResult{}, &FencedError{BrokerName: r.BrokerName, BrokerID: r.BrokerID,
						Addr: r.BrokerAddr, Term: term, HolderAddr: holder, HolderTerm: ht}
				}
			}
		}
	}

	// Accepted: from here on the registration is applied; dirty records whether
	// any route can have changed.
	dirty := false
	if prev != nil && prev.brokerName != r.BrokerName {
		// The address moved to another group: it leaves the old one.
		t.dropAddrLocked(prev.brokerName, r.BrokerAddr)
		group = t.groups[r.BrokerName]
	}
	names := t.clusters[r.ClusterName]
	if names == nil {
		names = make(map[string]struct{})
		t.clusters[r.ClusterName] = names
	}
	names[r.BrokerName] = struct{}{}
	if group == nil {
		group = &brokerGroup{cluster: r.ClusterName, addrs: make(map[int64]string)}
		t.groups[r.BrokerName] = group
		dirty = true
	}
	if group.enableActingMaster != r.EnableActingMaster {
		group.enableActingMaster = r.EnableActingMaster
		dirty = true
	}
	if r.ZoneName != "" && r.ZoneName != group.zoneName {
		group.zoneName = r.ZoneName
		dirty = true
	}
	// One address holds one brokerId: a node that changed role leaves its old id.
	for id, addr := range group.addrs {
		if addr == r.BrokerAddr && id != r.BrokerID {
			delete(group.addrs, id)
			dirty = true
		}
	}
	oldAddr := group.addrs[r.BrokerID]
	if oldAddr != r.BrokerAddr {
		group.addrs[r.BrokerID] = r.BrokerAddr
		dirty = true
	}

	// Topic queues come from the master. While a group has no master, a member's
	// table is used instead: Raft replicates topic configs, so every member's
	// table is the group's, and readers keep their routes during an election.
	_, hasMaster := group.addrs[MasterID]
	if r.Topics != nil && (r.BrokerID == MasterID || !hasMaster) {
		changed := prev == nil || prev.dataVersion != r.DataVersion || oldAddr != r.BrokerAddr
		if changed {
			t.replaceTopicsLocked(r.BrokerName, r.Topics)
			dirty = true
		}
	}
	if dirty {
		t.routesChangedLocked()
	}

	timeout := r.HeartbeatTimeout
	if timeout <= 0 {
		timeout = t.defaultTimeout
	}
	t.live[key] = &liveBroker{
		brokerName:   r.BrokerName,
		brokerID:     r.BrokerID,
		lastUpdate:   now,
		timeout:      timeout,
		dataVersion:  r.DataVersion,
		haServerAddr: r.HAServerAddr,
		conn:         r.Conn,
	}

	var res RegisterResult
	if r.BrokerID != MasterID {
		if master, ok := group.addrs[MasterID]; ok {
			res.MasterAddr = master
			if ml := t.live[liveKey{group.cluster, master}]; ml != nil {
				res.HAServerAddr = ml.haServerAddr
			}
		}
	}
	return res, nil
}

func validateRegistration(r *Registration) error {
	if err := validateName("clusterName", r.ClusterName); err != nil {
		return err
	}
	if err := validateName("brokerName", r.BrokerName); err != nil {
		return err
	}
	if err := ValidateBrokerAddr(r.BrokerAddr); err != nil {
		return err
	}
	if r.BrokerID < 0 {
		return fmt.Errorf("brokerId %d is negative", r.BrokerID)
	}
	return nil
}

// replaceTopicsLocked makes brokerName's queues exactly those of topics.
func (t *RouteTable) replaceTopicsLocked(brokerName string, topics map[string]TopicConfig) {
	for name, byBroker := range t.topics {
		if _, keep := topics[name]; keep {
			continue
		}
		if _, ok := byBroker[brokerName]; ok {
			delete(byBroker, brokerName)
			if len(byBroker) == 0 {
				delete(t.topics, name)
			}
		}
	}
	for name, tc := range topics {
		byBroker := t.topics[name]
		if byBroker == nil {
			byBroker = make(map[string]QueueData)
			t.topics[name] = byBroker
		}
		byBroker[brokerName] = QueueData{
			BrokerName:     brokerName,
			Perm:           tc.Perm,
			ReadQueueNums:  tc.ReadQueueNums,
			TopicSysFlag:   tc.TopicSysFlag,
			WriteQueueNums: tc.WriteQueueNums,
		}
	}
}

// Unregister removes the broker registered from addr in cluster (UNREGISTER_BROKER)
// and reports whether it was known. Its brokerName and brokerId come from the
// table, so a request cannot remove another broker's address.
func (t *RouteTable) Unregister(cluster, addr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.removeLocked(liveKey{cluster, addr})
}

// removeLocked drops a live broker and its address; when a group loses its last
// address the group, its cluster membership and its topic queues go too.
func (t *RouteTable) removeLocked(key liveKey) bool {
	lb := t.live[key]
	if lb == nil {
		return false
	}
	delete(t.live, key)
	t.dropAddrLocked(lb.brokerName, key.addr)
	return true
}

// dropAddrLocked removes addr from group brokerName; a group left without
// addresses goes, with its cluster membership and its topic queues.
func (t *RouteTable) dropAddrLocked(brokerName, addr string) {
	t.routesChangedLocked()
	group := t.groups[brokerName]
	if group == nil {
		return
	}
	for id, a := range group.addrs {
		if a == addr {
			delete(group.addrs, id)
		}
	}
	if len(group.addrs) > 0 {
		return
	}
	delete(t.groups, brokerName)
	if names := t.clusters[group.cluster]; names != nil {
		delete(names, brokerName)
		if len(names) == 0 {
			delete(t.clusters, group.cluster)
		}
	}
	for name, byBroker := range t.topics {
		delete(byBroker, brokerName)
		if len(byBroker) == 0 {
			delete(t.topics, name)
		}
	}
}

// ConnClosed removes every broker that registered over conn and returns their
// addresses. A broker that has since registered over another connection stays.
func (t *RouteTable) ConnClosed(conn any) []string {
	if conn == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var removed []string
	for key, lb := range t.live {
		if lb.conn == conn {
			t.removeLocked(key)
			removed = append(removed, key.addr)
		}
	}
	sort.Strings(removed)
	return removed
}

// ScanExpired removes brokers silent for longer than their timeout at now and
// returns their addresses.
func (t *RouteTable) ScanExpired(now time.Time) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var removed []string
	for key, lb := range t.live {
		if now.Sub(lb.lastUpdate) > lb.timeout {
			t.removeLocked(key)
			removed = append(removed, key.addr)
		}
	}
	sort.Strings(removed)
	return removed
}

// Heartbeat refreshes a live broker's timestamp (BROKER_HEARTBEAT). It reports
// whether the broker is known; an unknown one must register first.
func (t *RouteTable) Heartbeat(cluster, addr string, timeout time.Duration, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	lb := t.live[liveKey{cluster, addr}]
	if lb == nil {
		return false
	}
	lb.lastUpdate = now
	if timeout > 0 {
		lb.timeout = timeout
	}
	return true
}

// QueryDataVersion answers QUERY_DATA_VERSION: changed reports whether dv differs
// from what the broker last registered (then it should register again); stored
// is that registered version, nil when the broker is unknown. An unchanged
// broker counts as alive.
func (t *RouteTable) QueryDataVersion(cluster, addr string, dv DataVersion, now time.Time) (changed bool, stored *DataVersion) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lb := t.live[liveKey{cluster, addr}]
	if lb == nil {
		return true, nil
	}
	if lb.dataVersion != dv {
		v := lb.dataVersion
		return true, &v
	}
	lb.lastUpdate = now
	v := lb.dataVersion
	return false, &v
}

// TopicRoute returns the route of topic, or false when no live group serves it.
// Queue and broker data are sorted by brokerName; the result is a copy.
func (t *RouteTable) TopicRoute(topic string) (*TopicRouteData, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.topicRouteLocked(topic)
}

// TopicRouteJSON returns the route of topic encoded as GET_ROUTEINFO_BY_TOPIC's
// body, or false when no live group serves it. The bytes are shared: callers
// must not modify them.
func (t *RouteTable) TopicRouteJSON(topic string) ([]byte, bool, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	t.cacheMu.RLock()
	b, ok := t.routeJSON[topic]
	t.cacheMu.RUnlock()
	if ok {
		return b, true, nil
	}
	rd, ok := t.topicRouteLocked(topic)
	if !ok {
		return nil, false, nil
	}
	b, err := marshalCompact(rd)
	if err != nil {
		return nil, false, err
	}
	// Holding the read lock, no mutation can have cleared the cache since rd
	// was read, so b is current.
	t.cacheMu.Lock()
	t.routeJSON[topic] = b
	t.cacheMu.Unlock()
	return b, true, nil
}

func (t *RouteTable) topicRouteLocked(topic string) (*TopicRouteData, bool) {
	byBroker := t.topics[topic]
	if len(byBroker) == 0 {
		return nil, false
	}
	rd := &TopicRouteData{
		QueueDatas:        make([]QueueData, 0, len(byBroker)),
		BrokerDatas:       make([]BrokerData, 0, len(byBroker)),
		FilterServerTable: map[string][]string{},
	}
	for name, qd := range byBroker {
		rd.QueueDatas = append(rd.QueueDatas, qd)
		if g := t.groups[name]; g != nil {
			rd.BrokerDatas = append(rd.BrokerDatas, g.export(name))
		}
	}
	if len(rd.BrokerDatas) == 0 {
		return nil, false
	}
	sort.Slice(rd.QueueDatas, func(i, j int) bool { return rd.QueueDatas[i].BrokerName < rd.QueueDatas[j].BrokerName })
	sort.Slice(rd.BrokerDatas, func(i, j int) bool { return rd.BrokerDatas[i].BrokerName < rd.BrokerDatas[j].BrokerName })
	return rd, true
}

func (g *brokerGroup) export(name string) BrokerData {
	addrs := make(map[int64]string, len(g.addrs))
	for id, a := range g.addrs {
		addrs[id] = a
	}
	return BrokerData{
		BrokerAddrs:        addrs,
		BrokerName:         name,
		Cluster:            g.cluster,
		EnableActingMaster: g.enableActingMaster,
		ZoneName:           g.zoneName,
	}
}

// ClusterInfo returns every group and every cluster's brokerNames (sorted).
func (t *RouteTable) ClusterInfo() ClusterInfo {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ci := ClusterInfo{
		BrokerAddrTable:  make(map[string]BrokerData, len(t.groups)),
		ClusterAddrTable: make(map[string][]string, len(t.clusters)),
	}
	for name, g := range t.groups {
		ci.BrokerAddrTable[name] = g.export(name)
	}
	for cluster, names := range t.clusters {
		ci.ClusterAddrTable[cluster] = sortedKeys(names)
	}
	return ci
}

// AllTopics returns every routed topic, sorted.
func (t *RouteTable) AllTopics() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, 0, len(t.topics))
	for name := range t.topics {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// TopicsByCluster returns the topics with queues on any group of cluster, sorted.
func (t *RouteTable) TopicsByCluster(cluster string) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	names := t.clusters[cluster]
	out := []string{}
	for topic, byBroker := range t.topics {
		for bn := range byBroker {
			if _, ok := names[bn]; ok {
				out = append(out, topic)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// DeleteTopic removes topic's queues: from the groups of cluster when cluster is
// not empty, else everywhere. It reports whether anything was removed.
func (t *RouteTable) DeleteTopic(topic, cluster string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	byBroker, ok := t.topics[topic]
	if !ok {
		return false
	}
	t.routesChangedLocked()
	if cluster == "" {
		delete(t.topics, topic)
		return true
	}
	removed := false
	for bn := range t.clusters[cluster] {
		if _, ok := byBroker[bn]; ok {
			delete(byBroker, bn)
			removed = true
		}
	}
	if len(byBroker) == 0 {
		delete(t.topics, topic)
	}
	return removed
}

// WipeWritePerm clears the write bit of every topic queue of brokerName (drain
// before maintenance) and returns how many topics changed. A later registration
// with a new data version restores the broker's own permissions, as in Java.
func (t *RouteTable) WipeWritePerm(brokerName string) int {
	return t.changePerm(brokerName, func(p int32) int32 { return p &^ PermWrite })
}

// AddWritePerm sets the write bit again; it returns how many topics changed.
func (t *RouteTable) AddWritePerm(brokerName string) int {
	return t.changePerm(brokerName, func(p int32) int32 { return p | PermWrite })
}

func (t *RouteTable) changePerm(brokerName string, f func(int32) int32) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, byBroker := range t.topics {
		qd, ok := byBroker[brokerName]
		if !ok {
			continue
		}
		if p := f(qd.Perm); p != qd.Perm {
			qd.Perm = p
			byBroker[brokerName] = qd
			n++
		}
	}
	if n > 0 {
		t.routesChangedLocked()
	}
	return n
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
