package broker

import (
	"context"
	"encoding/json"
	"time"

	"github.com/raftmq/raftmq/remoting"
)

// raftStatusBody is the JSON answer to remoting.RaftStatus, the shape client/admin reads.
type raftStatusBody struct {
	Group        string           `json:"group"`
	SelfID       string           `json:"selfId"`
	Role         string           `json:"role"`
	Term         uint64           `json:"term"`
	LeaderID     string           `json:"leaderId"`
	LeaderAddr   string           `json:"leaderAddr"`
	CommitIndex  uint64           `json:"commitIndex"`
	AppliedIndex uint64           `json:"appliedIndex"`
	LastIndex    uint64           `json:"lastIndex"`
	Peers        []raftPeerStatus `json:"peers"`
	BrokerAddr   string           `json:"brokerAddr"`
	// Duplicate sends: keys remembered, sends answered from them since start.
	DuplicateKeys        int    `json:"duplicateKeys"`
	DuplicatesSuppressed uint64 `json:"duplicatesSuppressed"`
}

type raftPeerStatus struct {
	ID        string `json:"id"`
	Addr      string `json:"addr"`
	Suffrage  string `json:"suffrage"`
	LastIndex uint64 `json:"lastIndex,omitempty"`
}

// registerRaftAdmin serves raftmq's own group controls: status for `raftmq admin
// raftStatus` (and the compose test's rejoin check), and leadership transfer.
func (b *Broker) registerRaftAdmin(s *remoting.Server) {
	s.Handle(remoting.RaftStatus, poolAdmin, b.handleRaftStatus)
	s.Handle(remoting.RaftTransferLeader, poolAdmin, b.handleRaftTransfer)
}

func (b *Broker) handleRaftStatus(context.Context, *remoting.Conn, *remoting.Command) *remoting.Command {
	st := b.node.Status()
	body := raftStatusBody{
		Group: st.Group, SelfID: st.SelfID, Role: st.Role, Term: st.Term,
		LeaderID: st.LeaderID, LeaderAddr: st.LeaderAddr,
		CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, LastIndex: st.LastIndex,
		BrokerAddr: b.addr, DuplicateKeys: st.DuplicateKeys, DuplicatesSuppressed: st.DuplicatesSuppressed,
	}
	for _, p := range st.Peers {
		body.Peers = append(body.Peers, raftPeerStatus{ID: p.ID, Addr: p.Addr, Suffrage: p.Suffrage, LastIndex: p.LastIndex})
	}
	out, err := json.Marshal(body)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body = out
	return resp
}

func (b *Broker) handleRaftTransfer(ctx context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	if !b.node.IsLeader() {
		return remoting.NewResponse(remoting.ServiceNotAvailable, "not the leader of group "+b.cfg.DLegerGroup)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.node.TransferLeadership(ctx, req.Ext("targetId")); err != nil {
		return remoting.NewResponse(remoting.SystemError, "leadership transfer failed: "+err.Error())
	}
	return remoting.NewResponse(remoting.Success, "")
}
