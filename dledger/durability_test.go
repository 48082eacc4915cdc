package dledger

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// With FlushSync, an acknowledged message is on stable storage on a
// majority: every node fdatasyncs inside StoreLogs before its ack counts,
// so at the moment AppendMessages returns, at least two of the three
// commitlogs report the record's end as flushed.
func TestSyncFlushAckIsDurableOnMajority(t *testing.T) {
	if !useRealCommitlog {
		t.Skip("needs the real commitlog")
	}
	c := newCluster(t, 3, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < 50; i++ {
		// A loaded machine can cost the leader its lease between two appends:
		// retriable answers are retried on whoever leads then, as a client would.
		res, _, err := c.appendOnLeader(ctx, [][]byte{makeRecord(t, "D", 0, fmt.Sprintf("m%d", i), "")})
		if err != nil {
			t.Fatal(err)
		}
		end := res[0].PhysicalOffset + int64(res[0].Size)
		durable := 0
		for _, n := range c.nodes {
			if n.cl.Stats().FlushedPos >= end {
				durable++
			}
		}
		if durable < 2 {
			t.Fatalf("message %d acknowledged but flushed on %d of 3 nodes", i, durable)
		}
	}
}
