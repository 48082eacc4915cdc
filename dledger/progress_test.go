package dledger

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestTrackTransportKeepsOptionalInterfaces(t *testing.T) {
	_, inmem := raft.NewInmemTransport("a")
	tr := trackTransport(inmem, &peerTracker{})
	if _, ok := tr.(raft.WithPreVote); !ok {
		t.Fatal("wrapper of a pre-vote transport lost WithPreVote")
	}
	if _, ok := tr.(raft.WithClose); !ok {
		t.Fatal("wrapper lost WithClose")
	}
	type plain struct{ raft.Transport } // no pre-vote
	if _, ok := trackTransport(plain{inmem}, &peerTracker{}).(raft.WithPreVote); ok {
		t.Fatal("wrapper claims pre-vote its transport lacks")
	}
}

func TestReadProgressFollowsFollowers(t *testing.T) {
	c := newCluster(t, 3, false)
	l := c.leader()
	leader := c.nodes[l]
	fresh := func(p PeerProgress, commit uint64) bool {
		return time.Since(p.Contact) < leader.HeartbeatTimeout() && p.LastLog >= commit
	}
	waitFor(t, "the leader hearing from both followers", 10*time.Second, func() bool {
		p := leader.ReadProgress()
		if !p.Leader || len(p.Peers) != 2 {
			return false
		}
		for _, peer := range p.Peers {
			if !fresh(peer, p.CommitIndex) {
				return false
			}
		}
		return true
	})
	for i, n := range c.nodes {
		if i == l {
			continue
		}
		p := n.ReadProgress()
		if p.Leader || p.LeaderID != c.peers[l].ID || p.LastContact.IsZero() || len(p.Peers) != 0 {
			t.Fatalf("follower n%d progress %+v", i, p)
		}
	}

	// A cut-off follower stops answering: its entry goes stale, the other's
	// stays fresh; the follower itself sees its contact age.
	cut := (l + 1) % 3
	c.isolate(cut, true)
	waitFor(t, "the cut-off follower's entry going stale", 10*time.Second, func() bool {
		p := leader.ReadProgress()
		var stale, ok bool
		for _, peer := range p.Peers {
			switch peer.ID {
			case c.peers[cut].ID:
				stale = time.Since(peer.Contact) > leader.HeartbeatTimeout()
			default:
				ok = fresh(peer, p.CommitIndex)
			}
		}
		return stale && ok
	})
	waitFor(t, "the cut-off follower noticing", 10*time.Second, func() bool {
		p := c.nodes[cut].ReadProgress()
		return time.Since(p.LastContact) > leader.HeartbeatTimeout()
	})
	c.isolate(cut, false)
	waitFor(t, "the follower's entry fresh again", 10*time.Second, func() bool {
		p := leader.ReadProgress()
		for _, peer := range p.Peers {
			if peer.ID == c.peers[cut].ID {
				return fresh(peer, p.CommitIndex)
			}
		}
		return false
	})
}
