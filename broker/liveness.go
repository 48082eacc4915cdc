package broker

import (
	"strings"
	"sync"
	"time"
)

// unreachableHeartbeats: the leader reports a follower unreachable to the
// namesrvs once it has had no AppendEntries answer from it for this many
// heartbeat timeouts (answers normally come every tenth of one), so a
// paused or dead follower leaves topic routes within seconds instead of at
// its registration's expiry.
const unreachableHeartbeats = 3

// contactReport keeps the leader's list of members it does not hear from,
// sent to the namesrvs as ext raftmqUnreachable with every registration
// as brokerId 0; the namesrv leaves those members out of topic routes (no
// write alias, no stable-id entry) until a registration no longer lists
// them. It reads the same progress as follower-read steering.
type contactReport struct {
	steer *readSteer

	mu       sync.Mutex
	ledSince time.Time // when this member was first seen leading (zero: not leader)
	value    string    // comma-separated member ids in dLegerPeers order
}

// update recomputes the list and reports whether it changed.
func (c *contactReport) update() bool {
	s := c.steer
	p := s.progress()
	now := s.now()
	var out []string
	c.mu.Lock()
	defer c.mu.Unlock()
	if !p.Leader || s.self < 0 || s.self >= len(s.members) {
		c.ledSince = time.Time{}
	} else {
		if c.ledSince.IsZero() {
			c.ledSince = now
		}
		contact := make(map[string]time.Time, len(p.Peers))
		for _, peer := range p.Peers {
			contact[peer.ID] = peer.Contact
		}
		for i, m := range s.members {
			last := contact[m]
			if last.Before(c.ledSince) {
				// A new leader gives every member the full time from its
				// election: answers to a previous leadership say nothing.
				last = c.ledSince
			}
			if i != s.self && now.Sub(last) > unreachableHeartbeats*s.hb {
				out = append(out, m)
			}
		}
	}
	v := strings.Join(out, ",")
	changed := v != c.value
	c.value = v
	return changed
}

// unreachable is the current list, "" when none (or not leader).
func (c *contactReport) unreachable() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.value
}

// watch updates the list every heartbeat timeout and calls changed (the
// register kick) when it changes, so the namesrvs learn within about one.
func (c *contactReport) watch(stop <-chan struct{}, changed func()) {
	t := time.NewTicker(max(c.steer.hb, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if c.update() {
			changed()
		}
	}
}
