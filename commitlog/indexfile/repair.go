package indexfile

import "math"

// verify checks the newest file after a restart and repairs it when the
// pieces disagree. An unclean power loss can persist the header, slot and
// entry pages of the unflushed tail in any order: the header's count may be
// ahead of zeroed entries or behind written ones, and slots may point past
// it. Entries are the ground truth (hash, offset, time); slots and chain
// links are derived from them. So verify keeps the longest plausible run of
// entries and, if anything disagrees, rebuilds every slot and link from
// that run, which is exactly what adding those entries afresh would give.
// Returns whether the file was changed.
func (f *indexFile) verify() bool {
	stored := f.i32(hIndexCount)
	count := f.count()
	valid := f.validPrefix(count)
	consistent := valid == count && stored == count && f.slotsInRange(count)
	if consistent && count > 1 {
		last := f.entry(count - 1)
		consistent = f.endPhys() == last.phys && f.beginPhys() == f.entry(1).phys
	}
	if consistent {
		return false
	}
	f.rebuild(valid)
	return true
}

// validPrefix returns the first index number below count that cannot be a
// real entry (count if none): negative fields, a link that does not point
// backwards, offsets going backwards, or a zeroed slot.
func (f *indexFile) validPrefix(count int32) int32 {
	prevPhys := int64(math.MinInt64)
	for n := int32(1); n < count; n++ {
		e := f.entry(n)
		if e.hash < 0 || e.phys < 0 || e.timeDiff < 0 || e.prev < 0 || e.prev >= n ||
			e.phys < prevPhys || (n > 1 && e == entry{}) {
			return n
		}
		prevPhys = e.phys
	}
	return count
}

func (f *indexFile) slotsInRange(count int32) bool {
	for i := 0; i < f.slotNum; i++ {
		if v := f.i32(headerSize + i*slotSize); v < 0 || v >= count {
			return false
		}
	}
	return true
}

// rebuild keeps entries [1, count) and recomputes slots, links and header.
func (f *indexFile) rebuild(count int32) {
	if old := f.i32(hIndexCount); old > count && int(old) <= f.maxIndex {
		clear(f.data[f.entryOff(count):f.entryOff(old)])
	}
	clear(f.data[headerSize : headerSize+f.slotNum*slotSize])
	var used int32
	for n := int32(1); n < count; n++ {
		o := f.entryOff(n)
		so := f.slotOff(f.i32(o))
		head := f.i32(so)
		if head == 0 {
			used++
		}
		f.put32(o+16, head)
		f.put32(so, n)
	}
	f.put32(hHashSlotCount, used)
	f.put32(hIndexCount, count)
	if count <= 1 {
		clear(f.data[:hHashSlotCount])
		return
	}
	first, last := f.entry(1), f.entry(count-1)
	f.put64(hBeginPhyOffset, first.phys)
	f.put64(hEndPhyOffset, last.phys)
	f.put64(hEndTimestamp, f.beginTimestamp()+int64(last.timeDiff)*1000)
}
