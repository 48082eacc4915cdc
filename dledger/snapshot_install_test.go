package dledger

import (
	"context"
	"os"
	"testing"
	"time"
)

// A wiped follower that the leader can no longer catch up from its log
// (retention deleted the head) gets an InstallSnapshot: it resets its log
// to the snapshot position, restores metadata and the queue offsets, and
// from then on holds every message byte-identically to the leader. The
// messages below the snapshot are the documented phase-1 data gap (docs/raft.md §8):
// its queues start at the snapshot's offsets.
func TestSnapshotInstall(t *testing.T) {
	if !useRealCommitlog {
		t.Skip("needs the real commitlog (retention)")
	}
	testSnapshotInstall(t, true)
	// The lagging variant: the follower keeps its old data, and its stale
	// CQ is replaced by the snapshot's offsets.
	testSnapshotInstall(t, false)
}

// testSnapshotInstall: wipe=false keeps the follower's old data, so its
// stale CQ must be replaced by the snapshot's queue offsets.
func testSnapshotInstall(t *testing.T, wipe bool) {
	c := newCluster(t, 3, false)
	// Raft's LogCache would keep serving entries that retention deleted
	// (the whole log fits in it here), which would hide the snapshot path.
	for i := range c.nodes {
		c.crash(i)
	}
	c.logCache = -1
	for i := range c.nodes {
		c.start(i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.proposeMeta(ctx, []byte("snap=1")); err != nil {
		t.Fatal(err)
	}
	g := c.startLoadPad("TopicS", 2, 4000)
	// 1 MiB segments: write enough for a few sealed ones.
	waitFor(t, "several segments", 60*time.Second, func() bool {
		n := c.anyLeader()
		return n != nil && n.cl.Stats().Segments >= 3
	})
	g.stop()
	l := c.leader()
	f := (l + 1) % 3
	c.crash(f)
	if wipe {
		if err := os.RemoveAll(c.dirs[f]); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(c.dirs[f], 0o755); err != nil {
			t.Fatal(err)
		}
	} else {
		// Move the group on while the follower is down.
		g1 := c.startLoadPad("TopicS", 2, 4000)
		waitFor(t, "load while the follower is down", 30*time.Second, func() bool { return g1.count() >= 200 })
		g1.stop()
	}
	c.metas[f] = newTestMeta()

	// Snapshot and checkpoint both live nodes, then let retention drop the
	// head of their logs, so whichever leads must send a snapshot.
	for i, n := range c.nodes {
		if n == nil {
			continue
		}
		if err := n.raft.Snapshot().Error(); err != nil {
			t.Fatalf("n%d snapshot: %v", i, err)
		}
		if err := n.fsm.checkpoint(); err != nil {
			t.Fatal(err)
		}
		deleted := 0
		for {
			k, err := n.cl.DeleteExpired(time.Now().Add(1000*time.Hour), n.safeIndex(), true)
			if err != nil {
				t.Fatal(err)
			}
			if k == 0 {
				break
			}
			deleted += k
		}
		first, _ := n.store.FirstIndex()
		if deleted == 0 || first <= 2 {
			t.Fatalf("n%d: retention deleted %d segments, first index %d", i, deleted, first)
		}
	}

	c.start(f)
	g2 := c.startLoad("TopicS", 2)
	before := g2.count()
	waitFor(t, "load after the install", 30*time.Second, func() bool { return g2.count() >= before+30 })
	g2.stop()
	c.applied()
	if c.metas[f].get("snap") != "1" {
		t.Fatalf("meta not restored from the snapshot: %v", c.metas[f].kv)
	}
	// Every acknowledged message of the second load is on the follower, at
	// the same queue offset and position as on the leader.
	for q, bodies := range g2.acked {
		fq := readQueue(t, c.nodes[f], "TopicS", q)
		if len(fq) == 0 {
			t.Fatalf("queue %d: follower has no messages", q)
		}
		if fq[0].offset == 0 {
			t.Fatalf("queue %d: follower starts at offset 0: no snapshot was installed", q)
		}
		ln := c.nodes[c.leader()]
		if lmin := ln.cq.MinOffset("TopicS", q); fq[0].offset < lmin {
			t.Fatalf("queue %d: follower starts at %d, below the leader's first retained offset %d", q, fq[0].offset, lmin)
		}
		tail := readQueueFrom(t, ln, "TopicS", q, fq[0].offset)
		if len(tail) != len(fq) {
			t.Fatalf("queue %d: follower has %d messages from offset %d, leader %d", q, len(fq), fq[0].offset, len(tail))
		}
		for k := range fq {
			if fq[k] != tail[k] {
				t.Fatalf("queue %d offset %d: follower %+v, leader %+v", q, fq[k].offset, fq[k], tail[k])
			}
		}
		have := map[string]bool{}
		for _, m := range fq {
			have[m.body] = true
		}
		for _, b := range bodies {
			if !have[b] {
				t.Fatalf("queue %d: acknowledged %q missing on the snapshot-installed follower", q, b)
			}
		}
	}
}
