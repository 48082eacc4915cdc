package broker

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/raftmq/raftmq/remoting"
)

// registerTimeout bounds one REGISTER_BROKER call.
const registerTimeout = 3 * time.Second

// topicConfigWrapper is RocketMQ's TopicConfigSerializeWrapper.
type topicConfigWrapper struct {
	DataVersion      DataVersion            `json:"dataVersion"`
	TopicConfigTable map[string]TopicConfig `json:"topicConfigTable"`
}

// registerBrokerBody is the REGISTER_BROKER body (PROTOCOL.md §5.2).
type registerBrokerBody struct {
	FilterServerList            []string           `json:"filterServerList"`
	TopicConfigSerializeWrapper topicConfigWrapper `json:"topicConfigSerializeWrapper"`
}

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
// role belongs to, which the namesrv uses to fence deposed leaders.
func (b *Broker) registration() *remoting.Command {
	r := b.role.get()
	id := b.brokerID()
	topics, version := b.meta.Topics()
	version.StateVersion = int64(r.term)
	body, _ := json.Marshal(registerBrokerBody{
		FilterServerList:            []string{},
		TopicConfigSerializeWrapper: topicConfigWrapper{DataVersion: version, TopicConfigTable: topics},
	})
	return remoting.NewRequest(remoting.RegisterBroker, map[string]string{
		"brokerName":         b.cfg.BrokerName,
		"brokerAddr":         b.addr,
		"clusterName":        b.cfg.BrokerClusterName,
		"haServerAddr":       b.addr,
		"brokerId":           itoa64(id),
		"compressed":         "false",
		"bodyCrc32":          "0",
		"enableActingMaster": "false",
	}, body)
}

// registerAll registers with every namesrv in parallel.
func (b *Broker) registerAll(ctx context.Context) {
	var wg sync.WaitGroup
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
			}
		}(addr)
	}
	wg.Wait()
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
