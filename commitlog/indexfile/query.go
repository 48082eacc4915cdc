package indexfile

// find reports whether the chain of hash holds an entry at phys, and
// whether the walk reached entries older than phys (so older files need
// not be searched).
func (f *indexFile) find(hash int32, phys int64) (found, older bool) {
	count := f.count()
	for n, steps := f.slot(hash, count), int32(0); n != 0 && steps < count; steps++ {
		e := f.entry(n)
		if e.phys < phys {
			return false, true
		}
		if e.hash == hash && e.phys == phys {
			return true, false
		}
		n = nextInChain(e, n)
	}
	return false, f.empty() || f.beginPhys() < phys
}

// collect appends to out the offsets in hash's chain whose entry time lies
// in [lo, end] (lo already widened by the sub-second part the file drops).
// The walk follows prev links only downwards and at most count steps, so a
// damaged file cannot loop.
func (f *indexFile) collect(hash int32, lo, end, minPhys int64, maxNum int, out []int64, seen map[int64]struct{}) []int64 {
	count := f.count()
	base := f.beginTimestamp()
	for n, steps := f.slot(hash, count), int32(0); n != 0 && steps < count && len(out) < maxNum; steps++ {
		e := f.entry(n)
		t := base + int64(e.timeDiff)*1000
		if e.hash == hash && e.phys >= minPhys && t <= end && t >= lo {
			if _, dup := seen[e.phys]; !dup {
				seen[e.phys] = struct{}{}
				out = append(out, e.phys)
			}
		}
		n = nextInChain(e, n)
	}
	return out
}

// nextInChain returns e's predecessor, or 0 if the link does not point
// strictly backwards (end of chain, or damage).
func nextInChain(e entry, n int32) int32 {
	if e.prev < 1 || e.prev >= n {
		return 0
	}
	return e.prev
}
