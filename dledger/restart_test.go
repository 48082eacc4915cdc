package dledger

import (
	"context"
	"os"
	"testing"
	"time"
)

// snapshotQueues reads every queue the load wrote on node i.
func (c *testCluster) snapshotQueues(g *loadGen, i int) map[int32][]queueMsg {
	out := map[int32][]queueMsg{}
	for q := range g.acked {
		out[q] = readQueue(c.t, c.nodes[i], g.topic, q)
	}
	return out
}

func (c *testCluster) expectQueues(g *loadGen, want map[int32][]queueMsg) {
	c.t.Helper()
	for i, n := range c.nodes {
		if n == nil {
			continue
		}
		for q, msgs := range want {
			got := readQueue(c.t, n, g.topic, q)
			if len(got) != len(msgs) {
				c.t.Fatalf("n%d: queue %d has %d messages after restart, want %d", i, q, len(got), len(msgs))
			}
			for k := range got {
				if got[k] != msgs[k] {
					c.t.Fatalf("n%d: queue %d offset %d: %+v, want %+v", i, q, k, got[k], msgs[k])
				}
			}
		}
	}
}

// restartAll reopens every node with fresh in-memory metadata, so meta
// must come back from disk.
func (c *testCluster) restartAll(clean bool) {
	for i := range c.nodes {
		if clean {
			c.stop(i)
		} else {
			c.crash(i)
		}
	}
	for i := range c.nodes {
		c.metas[i] = newTestMeta()
		c.start(i)
	}
}

// Restart all three nodes, cleanly and kill -9 style: queues, queue
// offsets and metadata recover, and new writes continue the offsets. Runs
// over loopback TCP.
func TestRestartAll(t *testing.T) {
	c := newCluster(t, 3, true)
	l := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.proposeMeta(ctx, []byte("k1=v1")); err != nil {
		t.Fatal(err)
	}
	g := c.startLoad("TopicR", 3)
	waitFor(t, "load", 20*time.Second, func() bool { return g.count() >= 80 })
	g.stop()
	if err := c.proposeMeta(ctx, []byte("k2=v2")); err != nil {
		t.Fatal(err)
	}
	c.converge()
	c.checkQueues(g)
	l = c.leader()
	want := c.snapshotQueues(g, l)

	for round, clean := range []bool{true, false} {
		c.restartAll(clean)
		l = c.leader()
		c.converge()
		c.expectQueues(g, want)
		for i := range c.nodes {
			if c.metas[i].get("k1") != "v1" || c.metas[i].get("k2") != "v2" {
				t.Fatalf("round %d n%d: meta not recovered: %v", round, i, c.metas[i].kv)
			}
		}
		res, l, err := c.appendOnLeader(ctx, [][]byte{makeRecord(t, "TopicR", 0, "after-restart", "")})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].QueueOffset != int64(len(want[0])) {
			t.Fatalf("round %d: new message got queue offset %d, want %d", round, res[0].QueueOffset, len(want[0]))
		}
		c.converge()
		want = c.snapshotQueues(g, l)
	}
}

// A follower whose data is wiped rejoins (it has no state, so it
// bootstraps the same configuration and catches up from the leader's
// retained log, which raft never compacts) and then holds every message.
func TestWipedFollowerRejoins(t *testing.T) {
	c := newCluster(t, 3, false)
	l := c.leader()
	g := c.startLoad("TopicW", 2)
	waitFor(t, "load", 20*time.Second, func() bool { return g.count() >= 40 })
	f := (l + 1) % 3
	c.crash(f)
	if err := os.RemoveAll(c.dirs[f]); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(c.dirs[f], 0o755); err != nil {
		t.Fatal(err)
	}
	c.disks[f] = &memDisk{}
	c.metas[f] = newTestMeta()
	before := g.count()
	waitFor(t, "load without the follower", 20*time.Second, func() bool { return g.count() >= before+40 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		n := c.anyLeader()
		if n == nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if _, err := n.ProposeMeta(ctx, []byte("w=1")); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatal(err)
		}
	}
	c.start(f)
	before = g.count()
	waitFor(t, "load after the rejoin", 20*time.Second, func() bool { return g.count() >= before+20 })
	g.stop()
	c.converge()
	c.checkQueues(g)
	if c.metas[f].get("w") != "1" {
		t.Fatalf("wiped follower has no meta: %v", c.metas[f].kv)
	}
}
