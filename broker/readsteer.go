package broker

import (
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftmq/raftmq/dledger"
)

// Follower-read steering limits.
const (
	// steerMaxLagEntries: a member more than this many Raft entries behind
	// the commit index is lagging and is not offered to consumers. One
	// entry carries a batch of messages; raft ships up to 1024 per append.
	steerMaxLagEntries = 1024
	// steerGraceHeartbeats: a follower that lost its leader keeps its
	// consumers this many heartbeat timeouts (an election normally ends
	// well within it); after that it is taken to be cut off from a group
	// that moved on, and sends them elsewhere.
	steerGraceHeartbeats = 3
	// steerHandoverHeartbeats: a new leader does not offer the member it
	// took over from for this many heartbeat timeouts. After a graceful
	// handover that member is closing: it still answers heartbeats while it
	// drains, and a consumer sent there after its port closed would wait
	// for its route refresh. Any other member is offered as usual.
	steerHandoverHeartbeats = 10
)

// readSteer decides the suggestWhichBrokerId of pull answers: which member a
// consumer should pull a queue from next. The id is a member's stable id,
// 1+ordinal in dLegerPeers (routes list every live member under it, the
// leader too), so it names the same process in every route version a client
// may hold, unlike brokerId 0 which follows leadership.
//
//   - The leader offers a follower it heard from within a heartbeat timeout
//     and whose log is caught up; among several, rendezvous hashing of
//     topic+queue picks one, so queues spread over the followers and a
//     queue stays on the same follower while the set is unchanged. With no
//     such follower it suggests itself by its stable id (0 in a
//     single-member group).
//   - A follower in contact with its leader and caught up suggests itself.
//     A lagging one suggests the leader's stable id. A follower sees only
//     its apply lag (raft caps its commit index at its own log); its log
//     lag shows as pulls beyond its data, which it holds at most a
//     heartbeat timeout before sending them to the leader.
//   - A follower that lost its leader keeps suggesting itself for
//     steerGraceHeartbeats heartbeat timeouts (its data is what was
//     committed; an election is probably under way), then sends consumers to
//     another member, never to the leader it last lost, which is the likely
//     casualty.
//   - A new leader does not offer its predecessor for a few seconds (see
//     steerHandoverHeartbeats).
//   - A closing member never suggests itself; a closing follower sends its
//     consumers to another follower, which keeps them, not to the leader,
//     which still hears the closing member and might send them back.
type readSteer struct {
	members  []string // member ids in dLegerPeers order
	self     int      // this member's ordinal
	enabled  bool     // slaveReadEnable
	hb       time.Duration
	progress func() dledger.ReadProgress
	now      func() time.Time

	closing atomic.Bool

	mu           sync.Mutex
	lastLeader   string    // the last leader this member heard of
	ledSince     time.Time // when this member was first seen leading (zero: not leader)
	tookOverFrom string    // the leader before it
}

// steerDecision is readSteer's answer for one queue.
type steerDecision struct {
	// suggest is the suggestWhichBrokerId for answers about data this
	// member has.
	suggest int64
	// serveHere reports that this member is a good place for a consumer to
	// wait for new messages: the leader, or a follower in contact and caught
	// up (or within the election grace). Otherwise long polls are short.
	serveHere bool
	// authority is where to send a consumer whose offset this follower
	// cannot judge (beyond or below its data, unknown queue): the leader's
	// stable id while this follower hears from it, else another member's.
	authority int64
}

func newReadSteer(members []string, self int, enabled bool, hb time.Duration, progress func() dledger.ReadProgress) *readSteer {
	return &readSteer{members: members, self: self, enabled: enabled, hb: hb, progress: progress, now: time.Now}
}

func (s *readSteer) ordinal(id string) int {
	for i, m := range s.members {
		if m == id {
			return i
		}
	}
	return -1
}

func stableID(ordinal int) int64 { return int64(1 + ordinal) }

// decide returns the steering for (topic, queue) from the node's current view.
func (s *readSteer) decide(topic string, qid int32) steerDecision {
	if !s.enabled {
		return steerDecision{suggest: 0, serveHere: true, authority: 0}
	}
	p := s.progress()
	if s.self < 0 || s.self >= len(s.members) {
		return steerDecision{serveHere: true} // not a listed member: leave consumers on brokerId 0
	}
	self := s.members[s.self]
	// Elected but not yet through its Barrier: already the member with
	// everything committed, so steer as the leader.
	leading := p.Leader || p.LeaderID == self
	now := s.now()
	s.mu.Lock()
	prev := s.lastLeader
	if p.LeaderID != "" {
		s.lastLeader = p.LeaderID
	}
	lastLeader := s.lastLeader
	if !leading {
		s.ledSince, s.tookOverFrom = time.Time{}, ""
	} else if s.ledSince.IsZero() {
		s.ledSince, s.tookOverFrom = now, ""
		if prev != self {
			s.tookOverFrom = prev
		}
	}
	var handedOver string
	if now.Sub(s.ledSince) < steerHandoverHeartbeats*s.hb {
		handedOver = s.tookOverFrom
	}
	s.mu.Unlock()
	closing := s.closing.Load()
	if leading {
		var healthy []int
		for _, peer := range p.Peers {
			o := s.ordinal(peer.ID)
			if o < 0 || o == s.self || peer.ID == handedOver || now.Sub(peer.Contact) > s.hb || peer.LastLog+steerMaxLagEntries < p.CommitIndex {
				continue
			}
			healthy = append(healthy, o)
		}
		d := steerDecision{serveHere: !closing}
		switch {
		case len(healthy) > 0:
			d.suggest = stableID(pickMember(topic, qid, s.members, healthy))
		case closing:
			d.suggest = s.elsewhere(topic, qid, "")
		case len(s.members) > 1:
			// Itself by stable id, not 0: a client's route may still name
			// the previous leader as 0 (this happens right after an
			// election, before the first heartbeat answers arrive).
			d.suggest = stableID(s.self)
		}
		return d
	}

	age := time.Duration(1<<63 - 1)
	if !p.LastContact.IsZero() {
		age = now.Sub(p.LastContact)
	}
	inContact := p.LeaderID != "" && age <= s.hb
	caughtUp := p.AppliedIndex+steerMaxLagEntries >= p.CommitIndex
	avoid := p.LeaderID // the leader, or the one last lost (the likely casualty)
	if avoid == "" {
		avoid = lastLeader
	}
	d := steerDecision{}
	if o := s.ordinal(p.LeaderID); inContact && o >= 0 && o != s.self {
		d.authority = stableID(o)
	} else {
		// A leader not heard from lately may be dead: never send consumers
		// to it, but to the other member.
		d.authority = s.elsewhere(topic, qid, avoid)
	}
	switch {
	case closing:
		// To the other follower rather than the leader: the leader still
		// hears this member's heartbeats and might hand the queue back.
		d.suggest = s.elsewhere(topic, qid, avoid)
	case inContact && caughtUp, !inContact && age <= steerGraceHeartbeats*s.hb:
		d.suggest, d.serveHere = stableID(s.self), true
	default: // lagging (to the leader, which has everything), or cut off from
		// the group for longer than an election takes (to the other member)
		d.suggest = d.authority
	}
	return d
}

// selfServes reports whether this member currently keeps consumers waiting
// on it (steerDecision.serveHere, which does not depend on the queue).
func (s *readSteer) selfServes() bool { return s.decide("", 0).serveHere }

// elsewhere picks another member for (topic, queue), avoiding self and, if
// possible, avoid. 0 (the leader in the client's route) when there is none.
func (s *readSteer) elsewhere(topic string, qid int32, avoid string) int64 {
	var cands, fallback []int
	for i, m := range s.members {
		if i == s.self {
			continue
		}
		fallback = append(fallback, i)
		if m != avoid {
			cands = append(cands, i)
		}
	}
	if len(cands) == 0 {
		cands = fallback
	}
	if len(cands) == 0 {
		return 0
	}
	return stableID(pickMember(topic, qid, s.members, cands))
}

// pickMember chooses among the candidate ordinals by rendezvous hashing of
// topic, queue and member id: every member computes the same choice, and a
// change of the candidate set moves only the queues of the member that came
// or went.
func pickMember(topic string, qid int32, members []string, cands []int) int {
	best, bestScore := cands[0], uint64(0)
	for i, o := range cands {
		h := fnv.New64a()
		h.Write([]byte(topic))
		h.Write([]byte{0})
		h.Write([]byte(strconv.Itoa(int(qid))))
		h.Write([]byte{0})
		h.Write([]byte(members[o]))
		if score := h.Sum64(); i == 0 || score > bestScore {
			best, bestScore = o, score
		}
	}
	return best
}

// watch releases the pulls parked on this member when it stops being a good
// place to wait (lost its leader past the grace, fell behind), so that their
// consumers move within a tick instead of at the end of a 20 s long poll.
func (s *readSteer) watch(stop <-chan struct{}, release func()) {
	t := time.NewTicker(max(s.hb/4, 10*time.Millisecond))
	defer t.Stop()
	serving := true
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := s.selfServes()
		if serving && !now {
			release()
		}
		serving = now
	}
}
