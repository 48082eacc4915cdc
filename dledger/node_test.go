package dledger

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestParsePeers(t *testing.T) {
	peers, err := ParsePeers("n0-127.0.0.1:40911;n1-127.0.0.1:40912; n2-127.0.0.1:40913")
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 3 || peers[1] != (Peer{ID: "n1", Addr: "127.0.0.1:40912"}) {
		t.Fatalf("got %+v", peers)
	}
	if FormatPeers(peers) != "n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913" {
		t.Fatalf("format: %s", FormatPeers(peers))
	}
	for _, bad := range []string{"", "n0", "n0-", "-1.2.3.4:5", "n0-host", "n0-a:1;n0-b:2", "n0-a:1;n1-a:1"} {
		if _, err := ParsePeers(bad); err == nil {
			t.Errorf("ParsePeers(%q): no error", bad)
		}
	}
}

func TestSingleNodeAppendAndMeta(t *testing.T) {
	c := newCluster(t, 1, false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := c.nodes[c.leader()]
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	var dispatched []string
	done := make(chan struct{}, 16)
	n.OnDispatch(func(topic string, qid int32, max int64) {
		dispatched = append(dispatched, fmt.Sprintf("%s/%d/%d", topic, qid, max))
		done <- struct{}{}
	})
	recs := [][]byte{makeRecord(t, "T", 1, "a", "k1 k2"), makeRecord(t, "T", 1, "b", ""), makeRecord(t, "T", 2, "c", "")}
	res, err := n.AppendMessages(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].QueueOffset != 0 || res[1].QueueOffset != 1 || res[2].QueueOffset != 0 {
		t.Fatalf("results %+v", res)
	}
	if res[1].PhysicalOffset != res[0].PhysicalOffset+int64(res[0].Size) || res[0].StoreTimestamp == 0 || res[0].Index == 0 {
		t.Fatalf("results %+v", res)
	}
	res2, err := n.AppendMessages(ctx, recs[:1])
	if err != nil || res2[0].QueueOffset != 2 {
		t.Fatalf("second append: %+v %v", res2, err)
	}
	<-done
	msgs := readQueue(t, n, "T", 1)
	if len(msgs) != 3 || msgs[0].body != "a" || msgs[1].body != "b" || msgs[2].body != "a" {
		t.Fatalf("queue T/1: %+v", msgs)
	}
	v, err := n.ProposeMeta(ctx, []byte("topic=T"))
	if err != nil {
		t.Fatal(err)
	}
	if idx, ok := v.(uint64); !ok || idx == 0 || c.metas[0].get("topic") != "T" {
		t.Fatalf("meta result %v, state %q", v, c.metas[0].get("topic"))
	}
	if _, err := n.AppendMessages(ctx, [][]byte{[]byte("garbage")}); err == nil {
		t.Fatal("garbage record accepted")
	}
	st := n.Status()
	if st.Role != "Leader" || st.SelfID != "n0" || len(st.Peers) != 1 || st.AppliedIndex == 0 {
		t.Fatalf("status %+v", st)
	}
	if len(dispatched) == 0 {
		t.Fatal("no dispatch callback")
	}
}

func TestFollowerRejectsWrites(t *testing.T) {
	c := newCluster(t, 3, false)
	l := c.leader()
	f := (l + 1) % 3
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.nodes[f].AppendMessages(ctx, [][]byte{makeRecord(t, "T", 0, "x", "")})
	var nl *NotLeaderError
	if !errors.As(err, &nl) {
		t.Fatalf("follower append: %v", err)
	}
	if _, err := c.nodes[f].ProposeMeta(ctx, []byte("a=b")); !errors.As(err, &nl) {
		t.Fatalf("follower meta: %v", err)
	}
}

// Subscribers see the gate open on the leader and close on a transfer, in
// order, and a late subscriber first receives the current state.
func TestLeadershipEvents(t *testing.T) {
	c := newCluster(t, 3, false)
	l := c.leader()
	events := make(chan LeadershipEvent, 64)
	cancelSub := c.nodes[l].Subscribe(func(ev LeadershipEvent) { events <- ev })
	defer cancelSub()
	next := func() LeadershipEvent {
		select {
		case ev := <-events:
			return ev
		case <-time.After(20 * time.Second):
			t.Fatal("no leadership event")
		}
		return LeadershipEvent{}
	}
	ev := next()
	if !ev.Leader || ev.Term == 0 || ev.LeaderID != c.peers[l].ID {
		t.Fatalf("current state event %+v", ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.nodes[l].TransferLeadership(ctx, c.peers[(l+1)%3].ID); err != nil {
		t.Fatalf("transfer: %v", err)
	}
	for {
		ev = next()
		if !ev.Leader && ev.LeaderID != "" && ev.LeaderID != c.peers[l].ID {
			break
		}
	}
	if c.nodes[l].IsLeader() {
		t.Fatal("old leader still reports IsLeader")
	}
}
