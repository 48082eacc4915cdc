package consumequeue

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Reset drops every queue and every entry, then creates the queues in next
// empty at the given offsets (MinOffset == MaxOffset == offset), as a
// rebuild from a log that starts there would. It is for a follower that
// installs a snapshot: its old entries describe a log it no longer has.
// Bad names or offsets are refused before anything changes.
func (s *Store) Reset(next map[QueueID]int64) error {
	for qid, off := range next {
		if err := checkName(qid.Topic, qid.ID); err != nil {
			return err
		}
		if off < 0 || off >= maxLogicalOffset {
			return fmt.Errorf("%w: %s/%d offset %d", ErrOffsetOutOfRange, qid.Topic, qid.ID, off)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	old := *s.queues.Load()
	empty := map[QueueID]*queue{}
	s.queues.Store(&empty)
	for _, q := range old {
		q.close()
	}
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		if de.IsDir() && validTopic(de.Name()) {
			if err := os.RemoveAll(filepath.Join(s.dir, de.Name())); err != nil {
				return err
			}
		}
	}
	created := make(map[QueueID]*queue, len(next))
	for qid, off := range next {
		topicDir := filepath.Join(s.dir, qid.Topic)
		dir := filepath.Join(topicDir, strconv.Itoa(int(qid.ID)))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := syncDir(topicDir, s.noSync); err != nil {
			return err
		}
		q := newQueue(dir, qid, s.perFile, s.noSync, s.log)
		q.writeMu.Lock()
		err := q.startAt(off)
		q.writeMu.Unlock()
		if err != nil {
			return err
		}
		created[qid] = q
	}
	s.queues.Store(&created)
	s.log.Info("consume queues reset", "queues", len(created))
	if err := syncDir(s.dir, s.noSync); err != nil {
		return err
	}
	return s.flushLocked()
}
