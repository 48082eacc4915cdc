package consumequeue

// SearchOffsetByTime finds a logical offset by store time with RocketMQ's
// SEARCH_OFFSET_BY_TIMESTAMP semantics (docs/protocol.md §2.4). storeTime reads
// a message's store timestamp given its entry (the caller reads the
// CommitLog). Store times are assumed non-decreasing along a queue (binary
// search).
//
// lower (upper=false): the first offset with storeTime >= ts; MaxOffset if
// every message is older; MinOffset if every message is newer.
// upper: the last offset with storeTime <= ts; MinOffset if every message is
// newer; MaxOffset-1 if every message is older.
// An empty or unknown queue answers MaxOffset.
func (s *Store) SearchOffsetByTime(topic string, queueID int32, ts int64, upper bool, storeTime func(Entry) (int64, error)) (int64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	q := s.lookup(topic, queueID)
	if q == nil {
		return 0, nil
	}
	lo, hi := q.min.Load(), q.max.Load()
	if lo >= hi {
		return hi, nil
	}
	var searchErr error
	// pred(i) is monotonic: false ... false true ... true.
	pred := func(off int64) bool {
		if searchErr != nil {
			return true
		}
		e, err := q.get(off)
		if err != nil {
			searchErr = err
			return true
		}
		t, err := storeTime(e)
		if err != nil {
			searchErr = err
			return true
		}
		if upper {
			return t > ts
		}
		return t >= ts
	}
	first := lo
	for l, h := lo, hi; l < h; {
		mid := l + (h-l)/2
		if pred(mid) {
			h = mid
		} else {
			l = mid + 1
		}
		first = l
	}
	if searchErr != nil {
		return 0, searchErr
	}
	if !upper {
		return first, nil
	}
	if first == lo {
		return lo, nil // every message is newer than ts
	}
	return first - 1, nil
}
