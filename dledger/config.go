package dledger

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/message"
)

// Config configures a group node with RocketMQ's DLedger keys.
type Config struct {
	Group       string // dLegerGroup (normally also the brokerName)
	SelfID      string // dLegerSelfId
	Peers       []Peer // dLegerPeers; one peer = single-node group (standalone)
	StoreDir    string // storePathRootDir: commitlog, consumequeue/, index/, raft/
	SegmentSize int64  // 0 = commitlog default; immutable per group
	Flush       commitlog.FlushMode
	// MaxEntryBytes caps one Raft entry (the appender packs up to this);
	// default 4 MiB.
	MaxEntryBytes int

	FileReservedTime time.Duration // retention, default 72 h
	DeleteWhenHour   int           // retention hour, default 4

	// Raft timeouts; 0 = config sheet defaults (500 ms, 500 ms, 400 ms, 5 ms).
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout, CommitTimeout time.Duration

	Logger hclog.Logger
	Meta   MetaStateMachine // the broker's replicated metadata (may be nil)
	// TagsCode computes the CQ tagsCode of a dispatched message; nil = hash
	// of the TAGS property (RocketMQ's String.hashCode).
	TagsCode func(r message.Record) int64
	// Transport is optional (tests inject one); nil = TCP NetworkTransport
	// bound at the self peer's Addr.
	Transport raft.Transport

	// SnapshotInterval and SnapshotThreshold: 0 = 20 s and 8192.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	// LogCacheEntries sizes raft's LogCache in entries (each entry is up to
	// MaxEntryBytes); 0 = 256, negative = no cache.
	LogCacheEntries int

	// DuplicateWindow is how long AppendSends remembers a committed
	// (topic, UNIQ_KEY); 0 = no deduplication. DuplicateMaxEntries bounds
	// the keys remembered (0 = 1,000,000), the oldest going first.
	DuplicateWindow     time.Duration
	DuplicateMaxEntries int

	// now replaces time.Now for the duplicate window in package tests.
	now func() time.Time
	// openLog replaces commitlog.Open in package tests.
	openLog func(commitlog.Options) (logStore, error)
}

// MetaStateMachine is the broker's replicated metadata (topics,
// subscription groups, consumer offsets...).
type MetaStateMachine interface {
	// ApplyMeta applies one committed command; deterministic. The result is
	// returned to ProposeMeta's caller on the leader.
	ApplyMeta(index uint64, cmd []byte) interface{}
	SnapshotMeta() ([]byte, error)
	RestoreMeta(data []byte) error
}

const (
	defaultMaxEntryBytes       = 4 << 20
	defaultLogCache            = 256
	defaultDuplicateMaxEntries = 1_000_000
)

func (c *Config) validate() error {
	if c.SelfID == "" {
		return fmt.Errorf("dledger: SelfID is empty")
	}
	if len(c.Peers) == 0 {
		return fmt.Errorf("dledger: no peers")
	}
	if c.ordinal() < 0 {
		return fmt.Errorf("dledger: SelfID %q is not in the peer list %s", c.SelfID, FormatPeers(c.Peers))
	}
	if c.StoreDir == "" {
		return fmt.Errorf("dledger: StoreDir is empty")
	}
	if c.MaxEntryBytes < 0 {
		return fmt.Errorf("dledger: negative MaxEntryBytes")
	}
	if c.DuplicateWindow < 0 || c.DuplicateMaxEntries < 0 {
		return fmt.Errorf("dledger: negative DuplicateWindow or DuplicateMaxEntries")
	}
	return nil
}

func (c *Config) ordinal() int {
	for i, p := range c.Peers {
		if p.ID == c.SelfID {
			return i
		}
	}
	return -1
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// raftConfig is the config sheet of docs/raft.md §13.
func (c *Config) raftConfig(logger hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.SelfID)
	rc.Logger = logger
	rc.HeartbeatTimeout = orDefault(c.HeartbeatTimeout, 500*time.Millisecond)
	rc.ElectionTimeout = orDefault(c.ElectionTimeout, 500*time.Millisecond)
	rc.LeaderLeaseTimeout = orDefault(c.LeaderLeaseTimeout, 400*time.Millisecond)
	if rc.LeaderLeaseTimeout > rc.HeartbeatTimeout {
		rc.LeaderLeaseTimeout = rc.HeartbeatTimeout
	}
	rc.CommitTimeout = orDefault(c.CommitTimeout, 5*time.Millisecond)
	rc.MaxAppendEntries = 1024
	rc.BatchApplyCh = true
	rc.TrailingLogs = 1 << 62 // raft never compacts; retention deletes (docs/raft.md §10)
	rc.SnapshotInterval = orDefault(c.SnapshotInterval, 20*time.Second)
	rc.SnapshotThreshold = 8192
	if c.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = c.SnapshotThreshold
	}
	rc.NoSnapshotRestoreOnStart = true // the FSM self-replays (docs/raft.md §9)
	rc.ShutdownOnRemove = true
	return rc
}
