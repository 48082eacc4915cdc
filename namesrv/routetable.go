package namesrv

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/raftmq/raftmq/wire"
)

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
	DataVersion wire.DataVersion
	// Topics is the broker's topic table; nil means the registration carries none.
	Topics map[string]wire.TopicConfig
	// Conn identifies the connection the registration came on (any comparable
	// value, e.g. *remoting.Conn); its close removes the broker. nil: none.
	Conn any
	// MemberID is a raftmq group member's stable id (its dLegerSelfId, ext
	// raftmqMemberId); "" for plain RocketMQ brokers. Members get write aliases
	// and a sticky brokerId 0 (package doc).
	MemberID string
	// MemberOrdinal is the member's 0-based position in the group's peer list
	// (ext raftmqMemberOrdinal); its stable brokerId is 1+MemberOrdinal. -1 =
	// not sent: a follower's registered brokerId then gives it.
	MemberOrdinal int
	// Unreachable are the member ids a leader (a member registering as
	// brokerId 0) has not heard from lately (ext raftmqUnreachable); topic
	// routes leave them out while this registration's view holds (package
	// doc, "Unreachable members"). Ignored from anyone else.
	Unreachable []string
}

// MaxMemberOrdinal bounds raftmqMemberOrdinal: stable ids stay small numbers.
const MaxMemberOrdinal = 1023

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
	dataVersion  wire.DataVersion
	haServerAddr string
	conn         any
	memberID     string // "" for plain brokers
	stableID     int64  // 1+ordinal for members whose ordinal is known, else -1
}

// brokerGroup is the table's BrokerData: one brokerName and its addresses.
type brokerGroup struct {
	cluster            string
	zoneName           string
	enableActingMaster bool
	// addrs maps the non-zero brokerIds to live addresses: every live broker at
	// the id it registered, and every live member also at its stable id (so the
	// leader, registered as 0, appears at 1+ordinal too). One address holds at
	// most one non-zero id.
	addrs map[int64]string
	// master holds brokerId 0: the address of the registration with the
	// highest term, masterTerm. A member's claim (masterMember) outlives its
	// step-down, expiry and unregistration until another registration takes
	// id 0 or the group has no live broker left; a plain broker's claim ends
	// with its registration, as in Java.
	master       string
	masterTerm   int64
	masterMember bool
	// members are the addresses of the group's live registrations.
	members map[string]struct{}
	// cutOff is the member ids the leader at cutOffAddr reported unreachable
	// in term cutOffTerm; it holds only while that registration still holds
	// brokerId 0 with that term and is live (see cutOffLocked).
	cutOff     map[string]struct{}
	cutOffAddr string
	cutOffTerm int64
}

// RouteTable is the namesrv's routing state, RocketMQ's RouteInfoManager without
// I/O: live brokers, broker groups, clusters and topic queues. Time comes in as
// arguments so tests control it. It is safe for concurrent use.
type RouteTable struct {
	defaultTimeout time.Duration

	mu       sync.RWMutex
	topics   map[string]map[string]wire.QueueData // topic -> brokerName -> queues
	groups   map[string]*brokerGroup              // brokerName -> group
	clusters map[string]map[string]struct{}       // cluster -> brokerNames
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
		topics:         make(map[string]map[string]wire.QueueData),
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
// refused registration returns an error (a *FencedError when fenced) and
// changes nothing.
func (t *RouteTable) Register(r Registration, now time.Time) (RegisterResult, error) {
	if err := validateRegistration(&r); err != nil {
		return RegisterResult{}, err
	}
	term := r.DataVersion.StateVersion
	key := liveKey{r.ClusterName, r.BrokerAddr}
	stableID := int64(-1)
	if r.MemberID != "" && r.MemberOrdinal >= 0 {
		stableID = int64(1 + r.MemberOrdinal)
	}

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
		if err := t.fenceLocked(group, &r, term); err != nil {
			return RegisterResult{}, err
		}
	}

	// Accepted: from here on the registration is applied; dirty records whether
	// any route can have changed.
	dirty := false
	if prev != nil && prev.brokerName != r.BrokerName {
		// The address moved to another group: it leaves the old one.
		t.dropAddrLocked(prev.brokerName, r.BrokerAddr)
		group = t.groups[r.BrokerName]
		prev = nil
	}
	names := t.clusters[r.ClusterName]
	if names == nil {
		names = make(map[string]struct{})
		t.clusters[r.ClusterName] = names
	}
	names[r.BrokerName] = struct{}{}
	if group == nil {
		group = &brokerGroup{cluster: r.ClusterName, addrs: make(map[int64]string), members: make(map[string]struct{})}
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
	if r.MemberID != "" {
		// A member has one address: the same member registered from another
		// address (it restarted elsewhere) is gone.
		for _, addr := range sortedKeys(group.members) {
			if lb := t.live[liveKey{group.cluster, addr}]; addr != r.BrokerAddr && lb != nil && lb.memberID == r.MemberID {
				t.removeLocked(liveKey{group.cluster, addr})
				dirty = true
			}
		}
		if t.groups[r.BrokerName] != group {
			// The removal emptied the group; start it again.
			group = &brokerGroup{cluster: r.ClusterName, addrs: make(map[int64]string), members: make(map[string]struct{}),
				zoneName: r.ZoneName, enableActingMaster: r.EnableActingMaster}
			t.groups[r.BrokerName] = group
			t.clusters[r.ClusterName] = names
			names[r.BrokerName] = struct{}{}
		}
	}
	if _, ok := group.members[r.BrokerAddr]; !ok {
		group.members[r.BrokerAddr] = struct{}{}
		dirty = true
	}

	// The non-zero ids this address holds now: its registered id, or its
	// stable id when it registered as 0.
	var id int64 = -1
	switch {
	case r.BrokerID != wire.MasterID:
		id = r.BrokerID
	case stableID > 0:
		id = stableID
	}
	for i, addr := range group.addrs {
		if addr == r.BrokerAddr && i != id {
			delete(group.addrs, i)
			dirty = true
		}
	}
	tookID := false
	if id > 0 && group.addrs[id] != r.BrokerAddr {
		group.addrs[id] = r.BrokerAddr // a displaced holder passed fencing: it loses the id
		tookID, dirty = true, true
	}

	oldMaster := group.master
	if r.BrokerID == wire.MasterID {
		if group.master != r.BrokerAddr || group.masterTerm != term || group.masterMember != (r.MemberID != "") {
			dirty = true
		}
		group.master, group.masterTerm, group.masterMember = r.BrokerAddr, term, r.MemberID != ""
		tookID = tookID || oldMaster != r.BrokerAddr
	} else if group.master == r.BrokerAddr && !group.masterMember {
		// A plain master that re-registers under another id gives up id 0.
		group.master = ""
		dirty = true
	}
	if r.BrokerID == wire.MasterID && r.MemberID != "" {
		// Only the holder of id 0 reports, and each of its registrations
		// replaces its view (none listed: everyone reachable). A member's own
		// registrations never clear it: a follower cut off from its leader
		// keeps registering with the namesrv.
		cut := make(map[string]struct{}, len(r.Unreachable))
		for _, m := range r.Unreachable {
			if m != r.MemberID { // the leader never drops itself
				cut[m] = struct{}{}
			}
		}
		if group.cutOffAddr != r.BrokerAddr || group.cutOffTerm != term || !sameKeys(group.cutOff, cut) {
			dirty = true
		}
		group.cutOff, group.cutOffAddr, group.cutOffTerm = cut, r.BrokerAddr, term
	}

	// Topic queues come from the registration holding brokerId 0. While no
	// live registration claims it (an election, or before the first leader),
	// a member's table is used instead: Raft replicates topic configs, so
	// every member's table is the group's, and readers keep their routes.
	if r.Topics != nil && (r.BrokerID == wire.MasterID || !t.masterClaimLiveLocked(group, r.BrokerAddr)) {
		changed := prev == nil || prev.dataVersion != r.DataVersion || tookID
		if changed {
			t.replaceTopicsLocked(r.BrokerName, r.Topics)
			dirty = true
		}
	}
	if prev == nil || prev.memberID != r.MemberID || prev.brokerID != r.BrokerID {
		dirty = true // aliases and cluster info depend on them
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
		memberID:     r.MemberID,
		stableID:     stableID,
	}

	var res RegisterResult
	if r.BrokerID != wire.MasterID && group.master != "" && group.master != r.BrokerAddr {
		res.MasterAddr = group.master
		if ml := t.live[liveKey{group.cluster, group.master}]; ml != nil {
			res.HAServerAddr = ml.haServerAddr
		}
	}
	return res, nil
}

// fenceLocked refuses r when a live registration holds the id r asks for with
// a higher term (for brokerId 0 also an equal term > 0: one leader per term).
// For brokerId 0 the holder's term is the one it took id 0 with, so a leader
// that stepped down (and registers as follower in a newer term) still yields
// id 0 to the next term's leader.
func (t *RouteTable) fenceLocked(group *brokerGroup, r *Registration, term int64) error {
	holder, ht := "", int64(0)
	if r.BrokerID == wire.MasterID {
		if group.master != "" && group.master != r.BrokerAddr && t.live[liveKey{group.cluster, group.master}] != nil {
			holder, ht = group.master, group.masterTerm
		}
	} else if a, ok := group.addrs[r.BrokerID]; ok && a != r.BrokerAddr {
		if hl := t.live[liveKey{group.cluster, a}]; hl != nil {
			holder, ht = a, hl.dataVersion.StateVersion
		}
	}
	if holder == "" {
		return nil
	}
	// Term 0 means "no fencing information" (e.g. a plain Java broker): last
	// registration wins, as in Java.
	if term < ht || (r.BrokerID == wire.MasterID && term == ht && term > 0) {
		return &FencedError{BrokerName: r.BrokerName, BrokerID: r.BrokerID,
			Addr: r.BrokerAddr, Term: term, HolderAddr: holder, HolderTerm: ht}
	}
	return nil
}

// masterClaimLiveLocked reports whether group's brokerId 0 is held by a live
// registration as 0, not counting the one from addr being applied.
func (t *RouteTable) masterClaimLiveLocked(group *brokerGroup, addr string) bool {
	if group.master == "" || group.master == addr {
		return false
	}
	lb := t.live[liveKey{group.cluster, group.master}]
	return lb != nil && lb.brokerID == wire.MasterID
}

func validateRegistration(r *Registration) error {
	if err := validateName("clusterName", r.ClusterName); err != nil {
		return err
	}
	if err := validateName("brokerName", r.BrokerName); err != nil {
		return err
	}
	if strings.Contains(r.BrokerName, wire.AliasSeparator) {
		return fmt.Errorf("brokerName %q contains %q, which raftmq reserves for write aliases", r.BrokerName, wire.AliasSeparator)
	}
	if err := ValidateBrokerAddr(r.BrokerAddr); err != nil {
		return err
	}
	if r.BrokerID < 0 {
		return fmt.Errorf("brokerId %d is negative", r.BrokerID)
	}
	if r.MemberID == "" {
		r.MemberOrdinal = -1
		return nil
	}
	if err := validateName(wire.ExtMemberID, r.MemberID); err != nil {
		return err
	}
	if len(r.MemberID) > 64 || strings.Contains(r.MemberID, wire.AliasSeparator) {
		return fmt.Errorf("raftmqMemberId %q: at most 64 bytes, no %q", r.MemberID, wire.AliasSeparator)
	}
	if len(r.Unreachable) > MaxMemberOrdinal+1 {
		return fmt.Errorf("%s lists %d members, more than %d", wire.ExtUnreachable, len(r.Unreachable), MaxMemberOrdinal+1)
	}
	for _, m := range r.Unreachable {
		if err := validateName(wire.ExtUnreachable, m); err != nil {
			return err
		}
	}
	if r.MemberOrdinal > MaxMemberOrdinal || r.MemberOrdinal < -1 {
		return fmt.Errorf("raftmqMemberOrdinal %d outside 0..%d", r.MemberOrdinal, MaxMemberOrdinal)
	}
	if r.MemberOrdinal < 0 && r.BrokerID != wire.MasterID {
		r.MemberOrdinal = int(r.BrokerID - 1)
		if r.MemberOrdinal > MaxMemberOrdinal {
			return fmt.Errorf("member brokerId %d outside 1..%d", r.BrokerID, MaxMemberOrdinal+1)
		}
	}
	if r.MemberOrdinal >= 0 && r.BrokerID != wire.MasterID && r.BrokerID != int64(1+r.MemberOrdinal) {
		return fmt.Errorf("member %s registers brokerId %d, but its stable id is 1+raftmqMemberOrdinal = %d",
			r.MemberID, r.BrokerID, 1+r.MemberOrdinal)
	}
	return nil
}

// replaceTopicsLocked makes brokerName's queues exactly those of topics.
func (t *RouteTable) replaceTopicsLocked(brokerName string, topics map[string]wire.TopicConfig) {
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
			byBroker = make(map[string]wire.QueueData)
			t.topics[name] = byBroker
		}
		byBroker[brokerName] = wire.QueueData{
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
// live brokers goes, with its cluster membership and its topic queues. A
// member's brokerId-0 claim stays (see brokerGroup.master): clients keep a
// usable route through the election that replaces it.
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
	delete(group.members, addr)
	if group.master == addr && !group.masterMember {
		group.master = ""
	}
	if len(group.members) > 0 {
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
func (t *RouteTable) QueryDataVersion(cluster, addr string, dv wire.DataVersion, now time.Time) (changed bool, stored *wire.DataVersion) {
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
func (t *RouteTable) TopicRoute(topic string) (*wire.TopicRouteData, bool) {
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
	b, err := wire.Marshal(rd)
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

func (t *RouteTable) topicRouteLocked(topic string) (*wire.TopicRouteData, bool) {
	byBroker := t.topics[topic]
	if len(byBroker) == 0 {
		return nil, false
	}
	rd := &wire.TopicRouteData{
		QueueDatas:        make([]wire.QueueData, 0, len(byBroker)),
		BrokerDatas:       make([]wire.BrokerData, 0, len(byBroker)),
		FilterServerTable: map[string][]string{},
	}
	for name, qd := range byBroker {
		g := t.groups[name]
		if g == nil || !t.routableLocked(g) {
			continue
		}
		cut := t.cutOffLocked(g)
		bd := g.export(name)
		for id, a := range bd.BrokerAddrs {
			if lb := t.live[liveKey{g.cluster, a}]; id != wire.MasterID && lb != nil && isCut(cut, lb.memberID) {
				delete(bd.BrokerAddrs, id)
			}
		}
		rd.BrokerDatas = append(rd.BrokerDatas, bd)
		aliases := t.aliasesLocked(g, cut)
		if len(aliases) < 2 || qd.Perm&wire.PermWrite == 0 {
			rd.QueueDatas = append(rd.QueueDatas, qd)
			continue
		}
		// Readers see the group once; writers see one write-only entry per
		// live member (see the package doc, "Write aliases").
		if qd.Perm&wire.PermRead != 0 {
			read := qd
			read.Perm &^= wire.PermWrite
			rd.QueueDatas = append(rd.QueueDatas, read)
		}
		for _, m := range aliases {
			alias := wire.AliasName(name, m.memberID)
			write := qd
			write.BrokerName = alias
			write.Perm &^= wire.PermRead
			rd.QueueDatas = append(rd.QueueDatas, write)
			rd.BrokerDatas = append(rd.BrokerDatas, wire.BrokerData{
				BrokerAddrs:        map[int64]string{wire.MasterID: m.addr},
				BrokerName:         alias,
				Cluster:            g.cluster,
				EnableActingMaster: g.enableActingMaster,
				ZoneName:           g.zoneName,
			})
		}
	}
	if len(rd.BrokerDatas) == 0 {
		return nil, false
	}
	sort.Slice(rd.QueueDatas, func(i, j int) bool { return rd.QueueDatas[i].BrokerName < rd.QueueDatas[j].BrokerName })
	sort.Slice(rd.BrokerDatas, func(i, j int) bool { return rd.BrokerDatas[i].BrokerName < rd.BrokerDatas[j].BrokerName })
	return rd, true
}

// routableLocked reports whether g may appear in topic routes: a raftmq group
// only once a leader has registered as brokerId 0 (a route without it makes
// the Go client drop the group's queues until its next 30 s refresh); a plain
// group always, so Java slaves keep serving reads without a master.
func (t *RouteTable) routableLocked(g *brokerGroup) bool {
	if g.master != "" {
		return true
	}
	for addr := range g.members {
		if lb := t.live[liveKey{g.cluster, addr}]; lb != nil && lb.memberID != "" {
			return false
		}
	}
	return true
}

// aliasMember is a live member that gets a write alias.
type aliasMember struct{ memberID, addr string }

// aliasesLocked lists g's live members that registered a member id, sorted by
// it, except those in cut (unless that would leave none); fewer than two
// means the group gets no aliases.
func (t *RouteTable) aliasesLocked(g *brokerGroup, cut map[string]struct{}) []aliasMember {
	var out, kept []aliasMember
	for addr := range g.members {
		if lb := t.live[liveKey{g.cluster, addr}]; lb != nil && lb.memberID != "" {
			out = append(out, aliasMember{lb.memberID, addr})
			if !isCut(cut, lb.memberID) {
				kept = append(kept, aliasMember{lb.memberID, addr})
			}
		}
	}
	if len(kept) > 0 {
		out = kept
	}
	sort.Slice(out, func(i, j int) bool { return out[i].memberID < out[j].memberID })
	return out
}

// cutOffLocked returns the member ids g's topic routes leave out: those its
// leader reported unreachable, while that report is current: its sender
// still holds brokerId 0, with the term it reported in, as a live
// registration. A new leader or term, or the leader's expiry, voids it.
func (t *RouteTable) cutOffLocked(g *brokerGroup) map[string]struct{} {
	if len(g.cutOff) == 0 || g.master != g.cutOffAddr || g.masterTerm != g.cutOffTerm || !t.masterClaimLiveLocked(g, "") {
		return nil
	}
	return g.cutOff
}

func isCut(cut map[string]struct{}, memberID string) bool {
	_, ok := cut[memberID]
	return ok && memberID != ""
}

func sameKeys(a, b map[string]struct{}) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// export returns g's BrokerData as topic routes carry it: brokerId 0 and
// every live member at its stable id, the leader too, so a pull redirected
// to any member's stable id finds it.
func (g *brokerGroup) export(name string) wire.BrokerData {
	addrs := make(map[int64]string, len(g.addrs)+1)
	for id, a := range g.addrs {
		addrs[id] = a
	}
	if g.master != "" {
		addrs[wire.MasterID] = g.master
	}
	return wire.BrokerData{
		BrokerAddrs:        addrs,
		BrokerName:         name,
		Cluster:            g.cluster,
		EnableActingMaster: g.enableActingMaster,
		ZoneName:           g.zoneName,
	}
}

// ClusterInfo returns every group and every cluster's brokerNames (sorted).
// It never lists write aliases, and a live leader appears once, at brokerId 0.
func (t *RouteTable) ClusterInfo() wire.ClusterInfo {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ci := wire.ClusterInfo{
		BrokerAddrTable:  make(map[string]wire.BrokerData, len(t.groups)),
		ClusterAddrTable: make(map[string][]string, len(t.clusters)),
	}
	for name, g := range t.groups {
		bd := g.export(name)
		if t.masterClaimLiveLocked(g, "") {
			for id, a := range bd.BrokerAddrs {
				if id != wire.MasterID && a == g.master {
					delete(bd.BrokerAddrs, id)
				}
			}
		}
		ci.BrokerAddrTable[name] = bd
	}
	for cluster, names := range t.clusters {
		ci.ClusterAddrTable[cluster] = sortedKeys(names)
	}
	return ci
}

// AllTopics returns every routed topic, sorted: those with queues on a group
// that topic routes list (not a raftmq group before its first leader).
func (t *RouteTable) AllTopics() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, 0, len(t.topics))
	for name, byBroker := range t.topics {
		if t.anyRoutableLocked(byBroker, nil) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// TopicsByCluster returns the topics with queues on any routable group of
// cluster, sorted.
func (t *RouteTable) TopicsByCluster(cluster string) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	names := t.clusters[cluster]
	out := []string{}
	for topic, byBroker := range t.topics {
		if t.anyRoutableLocked(byBroker, names) {
			out = append(out, topic)
		}
	}
	sort.Strings(out)
	return out
}

// anyRoutableLocked reports whether one of the groups in byBroker (restricted
// to names when not nil) appears in topic routes.
func (t *RouteTable) anyRoutableLocked(byBroker map[string]wire.QueueData, names map[string]struct{}) bool {
	for bn := range byBroker {
		if names != nil {
			if _, ok := names[bn]; !ok {
				continue
			}
		}
		if g := t.groups[bn]; g != nil && t.routableLocked(g) {
			return true
		}
	}
	return false
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
	return t.changePerm(brokerName, func(p int32) int32 { return p &^ wire.PermWrite })
}

// AddWritePerm sets the write bit again; it returns how many topics changed.
func (t *RouteTable) AddWritePerm(brokerName string) int {
	return t.changePerm(brokerName, func(p int32) int32 { return p | wire.PermWrite })
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
