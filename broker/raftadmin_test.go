package broker

import (
	"encoding/json"
	"testing"

	"github.com/raftmq/raftmq/remoting"
	"github.com/raftmq/raftmq/wire"
)

func TestRaftStatusAndTransferAnswers(t *testing.T) {
	e := startEnv(t, nil)
	resp := e.call(remoting.RaftStatus, nil, nil)
	if resp.Code != remoting.Success {
		t.Fatalf("raft status: code %d %s", resp.Code, resp.Remark)
	}
	var st wire.RaftStatus
	if err := json.Unmarshal(resp.Body, &st); err != nil {
		t.Fatalf("decode raft status %q: %v", resp.Body, err)
	}
	if st.SelfID != "n0" || st.LeaderID != "n0" || st.Term == 0 || st.BrokerAddr != e.b.Addr() || len(st.Peers) != 1 {
		t.Fatalf("raft status = %+v", st)
	}
	if st.AppliedIndex == 0 || st.AppliedIndex > st.LastIndex {
		t.Fatalf("applied %d, last %d: the leader's no-op should be applied", st.AppliedIndex, st.LastIndex)
	}
	// A one-node group has nobody to hand leadership to: a clear error, and it stays leader.
	resp = e.call(remoting.RaftTransferLeader, map[string]string{"targetId": "n9"}, nil)
	if resp.Code == remoting.Success || resp.Remark == "" {
		t.Fatalf("transfer to a non-member answered %d %q", resp.Code, resp.Remark)
	}
	if !e.b.node.IsLeader() {
		t.Fatal("a refused transfer cost the node its leadership")
	}
}
