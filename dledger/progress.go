package dledger

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ReadProgress is what this node knows about how current each member's
// committed data is: the input of follower-read steering. It reads a few
// atomics and one small map; cheap enough to call per pull.
type ReadProgress struct {
	Leader   bool   // write gate open on this node
	LeaderID string // "" when no leader is known
	// CommitIndex is the leader's commit index; on a follower the leader's
	// as last heard, capped by raft at the follower's own last log index
	// (so it does not show replication lag, only what the leader sees does).
	CommitIndex  uint64
	AppliedIndex uint64 // last entry applied (dispatched to the ConsumeQueue) here
	// LastContact is when a follower last heard from its leader (zero if
	// never); unset on the leader.
	LastContact time.Time
	// Peers are the other members as this node, when leader, last heard from
	// them: heartbeats answer every HeartbeatTimeout/10, so a live follower's
	// Contact is never older than a few of those. Empty on followers.
	Peers []PeerProgress
}

// PeerProgress is one follower as its leader saw it in the latest
// AppendEntries answer (heartbeat or replication).
type PeerProgress struct {
	ID      string
	LastLog uint64    // the follower's last log index
	Contact time.Time // when that answer arrived
}

// ReadProgress returns the node's current view of its own and, on the
// leader, its followers' progress.
func (n *Node) ReadProgress() ReadProgress {
	_, id := n.raft.LeaderWithID()
	p := ReadProgress{Leader: n.IsLeader(), LeaderID: string(id), CommitIndex: n.raft.CommitIndex(),
		AppliedIndex: n.fsm.applied.Load()}
	if n.raft.State() == raft.Leader {
		p.Peers = n.progress.snapshot(n.cfg.SelfID)
	} else {
		p.LastContact = n.raft.LastContact()
	}
	return p
}

// HeartbeatTimeout is the raft heartbeat timeout the node runs with: a
// follower that has not heard from its leader for that long starts an
// election.
func (n *Node) HeartbeatTimeout() time.Duration {
	return orDefault(n.cfg.HeartbeatTimeout, 500*time.Millisecond)
}

// peerTracker records the answers to this node's outgoing AppendEntries.
// hashicorp/raft keeps its followers' match indexes private; the transport
// sees every answer, so a thin wrapper gives the leader the same view.
type peerTracker struct {
	mu    sync.Mutex
	peers map[raft.ServerID]PeerProgress
}

func (t *peerTracker) record(id raft.ServerID, lastLog uint64) {
	now := time.Now()
	t.mu.Lock()
	if t.peers == nil {
		t.peers = map[raft.ServerID]PeerProgress{}
	}
	t.peers[id] = PeerProgress{ID: string(id), LastLog: lastLog, Contact: now}
	t.mu.Unlock()
}

func (t *peerTracker) snapshot(self string) []PeerProgress {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]PeerProgress, 0, len(t.peers))
	for id, p := range t.peers {
		if string(id) != self {
			out = append(out, p)
		}
	}
	return out
}

// trackingTransport passes everything through to the wrapped transport and
// records each successful AppendEntries answer. Pipelined appends are not
// seen; heartbeats, which raft sends on their own schedule, are enough.
type trackingTransport struct {
	raft.Transport
	t *peerTracker
}

func (tt *trackingTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	err := tt.Transport.AppendEntries(id, target, args, resp)
	if err == nil && resp.Term <= args.Term {
		tt.t.record(id, resp.LastLog)
	}
	return err
}

// Close keeps raft's shutdown closing the wrapped transport as before.
func (tt *trackingTransport) Close() error {
	if c, ok := tt.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// trackingPreVoteTransport is a trackingTransport whose inner transport
// supports pre-vote: raft probes for the interface, so only this type has it.
type trackingPreVoteTransport struct {
	*trackingTransport
	pv raft.WithPreVote
}

func (tt *trackingPreVoteTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return tt.pv.RequestPreVote(id, target, args, resp)
}

func trackTransport(inner raft.Transport, t *peerTracker) raft.Transport {
	tt := &trackingTransport{Transport: inner, t: t}
	if pv, ok := inner.(raft.WithPreVote); ok {
		return &trackingPreVoteTransport{trackingTransport: tt, pv: pv}
	}
	return tt
}
