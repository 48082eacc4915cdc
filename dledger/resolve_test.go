package dledger

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"
)

// An entry whose future failed with ErrLeadershipLost is settled from the
// log the next leader replicated: same bytes at its index = committed (the
// original results), other bytes = never stored, nothing yet = unknown.
func TestResolveLeadershipLostEntry(t *testing.T) {
	c := newCluster(t, 3, false)
	li := c.leader()
	ctx := context.Background()
	res, err := c.nodes[li].AppendMessages(ctx, [][]byte{makeRecord(t, "T", 0, "a", ""), makeRecord(t, "T", 0, "b", "")})
	if err != nil {
		t.Fatal(err)
	}
	c.applied()
	f := c.nodes[(li+1)%3]
	idx := res[0].Index
	var l raft.Log
	if err := f.store.GetLog(idx, &l); err != nil {
		t.Fatal(err)
	}

	got, err, ok := f.resolveLost(ctx, idx, l.Data)
	if !ok || err != nil || len(got) != 2 {
		t.Fatalf("committed entry: %v %v %v", got, err, ok)
	}
	for i := range got {
		g, w := got[i], res[i]
		g.Record, w.Record = nil, nil // the stored copy is not part of the verdict
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("result %d: %+v, want %+v", i, got[i], res[i])
		}
	}

	other := append([]byte(nil), l.Data...)
	other[len(other)-1] ^= 0xff
	if _, err, ok := f.resolveLost(ctx, idx, other); !ok {
		t.Fatal("replaced entry: outcome unknown")
	} else if nl := (*NotLeaderError)(nil); !errors.As(err, &nl) {
		t.Fatalf("replaced entry: %v, want a definite not-leader", err)
	}

	last, _ := f.store.LastIndex()
	if _, _, ok := f.resolveLost(ctx, last+100, l.Data); ok {
		t.Fatal("an entry not applied yet must stay unknown")
	}
}

// A store another node holds is refused with an error, never a panic.
func TestOpenLockedStoreFails(t *testing.T) {
	if !useRealCommitlog {
		t.Skip("needs the real commitlog")
	}
	c := newCluster(t, 1, false)
	c.leader()
	cfg := c.config(0)
	cfg.openLog = nil
	_, tr := raft.NewInmemTransport(raft.ServerAddress(c.peers[0].Addr))
	cfg.Transport = tr
	if n, err := Open(cfg); err == nil {
		n.Close(context.Background())
		t.Fatal("a second node opened a store in use")
	}
}
