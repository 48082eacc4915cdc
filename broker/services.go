package broker

import (
	"context"
	"sync"

	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
)

// services runs the leader-only background work (delayed-message re-put,
// transaction checks) and the send-path rewrites they need.
type services struct {
	b      *Broker
	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newServices(b *Broker) *services { return &services{b: b} }

// startLeader starts the leader-only services for the current term.
func (s *services) startLeader() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return
	}
	_, s.cancel = context.WithCancel(s.b.ctx)
}

// stopLeader stops them and waits.
func (s *services) stopLeader() {
	s.mu.Lock()
	if s.cancel != nil {
		s.cancel()
		s.cancel = nil
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *services) stop() { s.stopLeader() }

// rewriteForServices turns a delayed or transactional message into the
// record the services expect (schedule topic, half topic). Plain messages
// pass unchanged.
func (b *Broker) rewriteForServices(m *message.Ext) error { return nil }

func (b *Broker) handleSendBack(ctx context.Context, conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	return remoting.NewResponse(remoting.SystemError, "send back not wired yet")
}

func (b *Broker) handleEndTransaction(ctx context.Context, conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	return remoting.NewResponse(remoting.SystemError, "transactions not wired yet")
}
