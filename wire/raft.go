package wire

// RaftStatus is the answer to raftmq's RAFT_STATUS request: a broker node's
// view of its Raft group, as the broker encodes it and `raftmq admin
// raftStatus` (client/admin) decodes it. It has no RocketMQ counterpart.
type RaftStatus struct {
	Group        string     `json:"group"`
	SelfID       string     `json:"selfId"`
	Role         string     `json:"role"`
	Term         uint64     `json:"term"`
	LeaderID     string     `json:"leaderId"`
	LeaderAddr   string     `json:"leaderAddr"`
	CommitIndex  uint64     `json:"commitIndex"`
	AppliedIndex uint64     `json:"appliedIndex"`
	LastIndex    uint64     `json:"lastIndex"`
	Peers        []RaftPeer `json:"peers"`
	BrokerAddr   string     `json:"brokerAddr"`
	// DuplicateKeys is how many (topic, UNIQ_KEY) the node remembers;
	// DuplicatesSuppressed counts the sends it answered from them (as
	// leader) since it started.
	DuplicateKeys        int    `json:"duplicateKeys"`
	DuplicatesSuppressed uint64 `json:"duplicatesSuppressed"`
}

// RaftPeer is one member of a broker group in a RaftStatus.
type RaftPeer struct {
	ID        string `json:"id"`
	Addr      string `json:"addr"`
	Suffrage  string `json:"suffrage"`
	LastIndex uint64 `json:"lastIndex,omitempty"`
}
