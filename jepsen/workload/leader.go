package workload

import (
	"context"
	"sync"
	"time"

	"github.com/raftmq/raftmq/client/admin"
	"github.com/raftmq/raftmq/jepsen/cluster"
	"github.com/raftmq/raftmq/wire"
)

// Tracker follows the group's leader by asking every member for its Raft status.
type Tracker struct {
	members []cluster.Node
	ac      *admin.Client

	mu      sync.Mutex
	leader  cluster.Node
	term    uint64
	has     bool
	status  map[string]*wire.RaftStatus
	updated time.Time
}

// NewTracker returns a tracker over members; Run keeps it current.
func NewTracker(members []cluster.Node, ac *admin.Client) *Tracker {
	return &Tracker{members: members, ac: ac, status: map[string]*wire.RaftStatus{}}
}

// Run polls every interval until ctx ends.
func (t *Tracker) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		t.Poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Poll asks every member once (in parallel, 700 ms each) and updates the view.
func (t *Tracker) Poll(ctx context.Context) map[string]*wire.RaftStatus {
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]*wire.RaftStatus{}
	for _, m := range t.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
			defer cancel()
			st, err := t.ac.RaftStatus(c, m.Addr())
			if err == nil {
				mu.Lock()
				got[m.Name] = st
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.status = got
	t.updated = time.Now()
	best := uint64(0)
	found := false
	for _, m := range t.members {
		st := got[m.Name]
		if st != nil && st.Role == "Leader" && (!found || st.Term > best) {
			best, found = st.Term, true
			t.leader, t.term = m, st.Term
		}
	}
	t.has = found
	return got
}

// Leader returns the last member seen leading; ok is false when no member claimed
// leadership in the last poll (the node is then the previous leader, if any).
func (t *Tracker) Leader() (cluster.Node, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.leader, t.has
}

// Status is the last poll's answers by member id.
func (t *Tracker) Status() map[string]*wire.RaftStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status
}

// WaitLeader polls until a member leads and every other reachable member agrees, or
// ctx ends.
func (t *Tracker) WaitLeader(ctx context.Context) (cluster.Node, error) {
	for {
		st := t.Poll(ctx)
		if l, ok := t.Leader(); ok {
			agree := true
			for _, s := range st {
				if s.LeaderID != l.Name {
					agree = false
				}
			}
			if agree {
				return l, nil
			}
		}
		select {
		case <-ctx.Done():
			return cluster.Node{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// WaitConverged waits until every member answers, one leads, and every member has
// applied the leader's commit index, which stays put across two polls; ctx bounds it.
func (t *Tracker) WaitConverged(ctx context.Context) error {
	var lastCommit uint64
	stable := 0
	for {
		st := t.Poll(ctx)
		l, ok := t.Leader()
		if ok && len(st) == len(t.members) {
			commit := st[l.Name].CommitIndex
			all := true
			for _, s := range st {
				if s.AppliedIndex < commit || s.LeaderID != l.Name {
					all = false
				}
			}
			if all && commit == lastCommit {
				stable++
			} else {
				stable = 0
			}
			lastCommit = commit
			if stable >= 2 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
