package dledger

import "sync"

// subscribers delivers leadership events to callbacks from one goroutine,
// in order, without ever blocking the publisher (raft-facing) side.
type subscribers struct {
	mu     sync.Mutex
	cond   *sync.Cond
	fns    map[int]func(LeadershipEvent)
	nextID int
	queue  []queuedEvent
	last   *LeadershipEvent
	closed bool
	done   chan struct{}
}

func newSubscribers() *subscribers {
	s := &subscribers{fns: map[int]func(LeadershipEvent){}, done: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	go s.run()
	return s
}

// queuedEvent is an event for every subscriber (only < 0) or for one.
type queuedEvent struct {
	ev   LeadershipEvent
	only int
}

func (s *subscribers) add(fn func(LeadershipEvent)) func() {
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.fns[id] = fn
	if s.last != nil {
		// A new subscriber learns the current state first (same goroutine as
		// everything else, so ordering holds).
		s.queue = append(s.queue, queuedEvent{ev: *s.last, only: id})
		s.cond.Signal()
	}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.fns, id)
		s.mu.Unlock()
	}
}

func (s *subscribers) publish(ev LeadershipEvent) {
	s.mu.Lock()
	s.last = &ev
	s.queue = append(s.queue, queuedEvent{ev: ev, only: -1})
	s.cond.Signal()
	s.mu.Unlock()
}

func (s *subscribers) close() {
	s.mu.Lock()
	s.closed = true
	s.cond.Signal()
	s.mu.Unlock()
	<-s.done
}

func (s *subscribers) run() {
	defer close(s.done)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for len(s.queue) == 0 && !s.closed {
			s.cond.Wait()
		}
		if len(s.queue) == 0 && s.closed {
			return
		}
		q := s.queue[0]
		s.queue = s.queue[1:]
		var fns []func(LeadershipEvent)
		for id, fn := range s.fns {
			if q.only < 0 || q.only == id {
				fns = append(fns, fn)
			}
		}
		s.mu.Unlock()
		for _, fn := range fns {
			fn(q.ev)
		}
		s.mu.Lock()
	}
}
