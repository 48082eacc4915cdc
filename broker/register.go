package broker

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftmq/raftmq/remoting"
	"github.com/raftmq/raftmq/wire"
)

// registerTimeout bounds one REGISTER_BROKER call.
const registerTimeout = 3 * time.Second

// kickRegister asks the register loop to register at once.
func (b *Broker) kickRegister() {
	select {
	case b.regKick <- struct{}{}:
	default:
	}
}

// registerLoop registers with every namesrv on each change and every
// registerNameServerPeriod.
func (b *Broker) registerLoop() {
	t := time.NewTicker(b.cfg.RegisterNameServerPeriod)
	defer t.Stop()
	b.registerAll(b.ctx)
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.regKick:
		case <-t.C:
		}
		if b.closed.Load() {
			return // Close has unregistered this member; stay out
		}
		b.registerAll(b.ctx)
	}
}

// registration builds the REGISTER_BROKER request of the current role: the
// leader as brokerId 0, a follower as 1+ordinal; stateVersion = the term the
// role belongs to, which the namesrv uses to fence deposed leaders. Id and
// term come from one role snapshot, so a registration never pairs brokerId 0
// with a term this node did not lead.
func (b *Broker) registration() *remoting.Command {
	r := b.role.get()
	id := b.stableID()
	if r.leader {
		id = 0
	}
	topics, version := b.meta.Topics()
	version.StateVersion = int64(r.term)
	body, _ := json.Marshal(wire.RegisterBrokerBody{
		FilterServerList:            []string{},
		TopicConfigSerializeWrapper: wire.TopicConfigWrapper{DataVersion: version, TopicConfigTable: topics},
	})
	ext := map[string]string{
		"brokerName":         b.cfg.BrokerName,
		"brokerAddr":         b.addr,
		"clusterName":        b.cfg.BrokerClusterName,
		"haServerAddr":       b.addr,
		"brokerId":           itoa64(id),
		"compressed":         "false",
		"bodyCrc32":          "0",
		"enableActingMaster": "false",
		// The member's stable identity: the namesrv builds write aliases
		// ("broker-a@n1") from it and lists the member at brokerId 1+ordinal.
		wire.ExtMemberID:      b.cfg.DLegerSelfID,
		wire.ExtMemberOrdinal: strconv.Itoa(b.node.SelfOrdinal()),
	}
	if r.leader {
		// Sent even when empty: each leader registration replaces the
		// namesrv's view, so "" restores every member.
		ext[wire.ExtUnreachable] = b.contact.unreachable()
	}
	return remoting.NewRequest(remoting.RegisterBroker, ext, body)
}

// stableID is the brokerId this member has as a follower, 1+ordinal; the
// namesrv lists the leader at it too.
func (b *Broker) stableID() int64 { return int64(1 + b.node.SelfOrdinal()) }

// registerAll registers with every namesrv in parallel and reports how many
// accepted a registration as brokerId 0.
func (b *Broker) registerAll(ctx context.Context) int {
	var wg sync.WaitGroup
	var asLeader atomic.Int32
	for _, addr := range b.cfg.NamesrvAddrs {
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			req := b.registration()
			cctx, cancel := context.WithTimeout(ctx, registerTimeout)
			defer cancel()
			resp, err := b.namesrv.Invoke(cctx, addr, req)
			if err != nil {
				b.log.Warn("register with namesrv failed", "namesrv", addr, "error", err)
				return
			}
			if resp.Code != remoting.Success {
				b.log.Warn("namesrv refused registration", "namesrv", addr, "code", resp.Code, "remark", resp.Remark)
				return
			}
			if req.Ext("brokerId") == "0" {
				asLeader.Add(1)
			}
		}(addr)
	}
	wg.Wait()
	return int(asLeader.Load())
}

// unregisterAll tells every namesrv this broker is going away.
func (b *Broker) unregisterAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, addr := range b.cfg.NamesrvAddrs {
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			req := remoting.NewRequest(remoting.UnregisterBroker, map[string]string{
				"brokerName":  b.cfg.BrokerName,
				"brokerAddr":  b.addr,
				"clusterName": b.cfg.BrokerClusterName,
				"brokerId":    itoa64(b.brokerID()),
			}, nil)
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, _ = b.namesrv.Invoke(cctx, addr, req)
		}(addr)
	}
	wg.Wait()
}
