package broker

import (
	"context"
	"sync"
	"time"
)

// offsetManager coalesces consumer offset commits on the leader: commits land
// in a pending table at once (and are visible to queries), and one Raft entry
// per flush interval carries every offset that changed since the last one.
// Clients commit every 5 s per queue, so this turns N queues × M clients
// commits into one entry per interval.
type offsetManager struct {
	meta     *metaStore
	propose  func(ctx context.Context, c *metaCommand) (interface{}, error)
	interval time.Duration

	mu      sync.Mutex
	pending map[offsetKey]int64
}

func newOffsetManager(meta *metaStore, propose func(context.Context, *metaCommand) (interface{}, error), interval time.Duration) *offsetManager {
	return &offsetManager{meta: meta, propose: propose, interval: interval, pending: map[offsetKey]int64{}}
}

// commit records the next offset group will consume from (topic, queue).
func (o *offsetManager) commit(group, topic string, queue int32, offset int64) {
	if offset < 0 {
		return
	}
	o.mu.Lock()
	o.pending[offsetKey{group, topic, queue}] = offset
	o.mu.Unlock()
}

// query returns the latest committed offset, pending ones included.
func (o *offsetManager) query(group, topic string, queue int32) (int64, bool) {
	o.mu.Lock()
	off, ok := o.pending[offsetKey{group, topic, queue}]
	o.mu.Unlock()
	if ok {
		return off, true
	}
	return o.meta.Offset(group, topic, queue)
}

// drop forgets pending commits (leadership lost: the new leader has the
// replicated ones and clients re-commit within 5 s).
func (o *offsetManager) drop() {
	o.mu.Lock()
	o.pending = map[offsetKey]int64{}
	o.mu.Unlock()
}

// flush proposes the pending commits as one entry. On failure they are put
// back unless a newer commit replaced them meanwhile.
func (o *offsetManager) flush(ctx context.Context) error {
	o.mu.Lock()
	if len(o.pending) == 0 {
		o.mu.Unlock()
		return nil
	}
	batch := o.pending
	o.pending = map[offsetKey]int64{}
	o.mu.Unlock()
	cmd := &metaCommand{Op: opCommitOffset, Offsets: make([]OffsetCommit, 0, len(batch))}
	for k, v := range batch {
		if cur, ok := o.meta.Offset(k.group, k.topic, k.queue); ok && cur == v {
			continue
		}
		cmd.Offsets = append(cmd.Offsets, OffsetCommit{k.group, k.topic, k.queue, v})
	}
	if len(cmd.Offsets) == 0 {
		return nil
	}
	if _, err := o.propose(ctx, cmd); err != nil {
		o.mu.Lock()
		for k, v := range batch {
			if _, newer := o.pending[k]; !newer {
				o.pending[k] = v
			}
		}
		o.mu.Unlock()
		return err
	}
	return nil
}

// run flushes every interval while isLeader says so, until ctx ends; a last
// flush is attempted on the way out.
func (o *offsetManager) run(ctx context.Context, isLeader func() bool, onErr func(error)) {
	t := time.NewTicker(o.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if isLeader() {
				fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = o.flush(fctx)
				cancel()
			}
			return
		case <-t.C:
		}
		if !isLeader() {
			o.drop()
			continue
		}
		if err := o.flush(ctx); err != nil && onErr != nil {
			onErr(err)
		}
	}
}
