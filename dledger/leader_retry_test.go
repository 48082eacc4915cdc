package dledger

import "context"

// proposeMeta proposes cmd on whichever node leads, retrying the answers that
// mean "not applied, ask the leader" (a loaded machine can cost a leader its
// lease between waitFor and the call). Other errors, ctx's included, end it.
func (c *testCluster) proposeMeta(ctx context.Context, cmd []byte) error {
	for {
		// The test commands are idempotent, so an indeterminate answer is retried too.
		_, err := c.nodes[c.leader()].ProposeMeta(ctx, cmd)
		if err == nil || !(isRetriable(err) || isIndeterminate(err)) {
			return err
		}
	}
}

// appendOnLeader is proposeMeta for messages; it returns the leader's index too.
func (c *testCluster) appendOnLeader(ctx context.Context, recs [][]byte) ([]AppendResult, int, error) {
	for {
		l := c.leader()
		res, err := c.nodes[l].AppendMessages(ctx, recs)
		if err == nil || !isRetriable(err) {
			return res, l, err
		}
	}
}

// sendOnLeader is appendOnLeader through AppendSends, retrying indeterminate
// answers too, as a client does: the duplicate window makes that harmless.
func (c *testCluster) sendOnLeader(ctx context.Context, recs [][]byte) ([]AppendResult, int, error) {
	for {
		l := c.leader()
		res, err := c.nodes[l].AppendSends(ctx, recs)
		if err == nil || ctx.Err() != nil || !(isRetriable(err) || isIndeterminate(err)) {
			return res, l, err
		}
	}
}
