package indexfile

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// FuzzIndexFileOpen opens arbitrary bytes as an index file, queries, writes,
// truncates and queries again: no panic, no endless walk, bounded results.
func FuzzIndexFileOpen(f *testing.F) {
	const slots, maxIndex = 4, 12
	size := fileSize(slots, maxIndex)
	good := make([]byte, size)
	binary.BigEndian.PutUint32(good[hIndexCount:], 1)
	f.Add(good, false)
	f.Add([]byte{}, false)
	f.Add([]byte("short"), true)
	// A file written by the service itself.
	dir := f.TempDir()
	s, err := Open(Options{Dir: dir, SlotNum: slots, MaxIndexNum: maxIndex, FlushInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	for i := int64(0); i < 8; i++ {
		s.Put("k", i*10, t0+i*1000)
		s.Put("T#x", i*10, t0+i*1000)
	}
	s.Close()
	names := dirNames(f, dir)
	written, _ := os.ReadFile(filepath.Join(dir, names[0]))
	f.Add(written, false)
	loop := append([]byte(nil), written...)
	binary.BigEndian.PutUint32(loop[headerSize+slots*slotSize+3*entrySize+16:], 5) // prev points forward
	f.Add(loop, false)

	f.Fuzz(func(t *testing.T, data []byte, rawSize bool) {
		dir := t.TempDir()
		content := data
		if !rawSize {
			content = make([]byte, size)
			copy(content, data)
		}
		if err := os.WriteFile(filepath.Join(dir, formatName(t0)), content, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(Options{Dir: dir, SlotNum: slots, MaxIndexNum: maxIndex, FlushInterval: -1, noSync: true})
		if err != nil {
			if len(content) == size {
				t.Fatalf("Open of a right-sized file failed: %v", err)
			}
			return
		}
		defer s.Close()
		check := func() {
			for _, k := range []string{"k", "T#x", "", "zz"} {
				for _, r := range [][2]int64{{0, 1 << 62}, {t0, t0 + 3000}, {-1 << 62, 1 << 62}} {
					got, err := s.Query(k, 100, r[0], r[1])
					if err != nil {
						t.Fatal(err)
					}
					if len(got) >= maxIndex*2 {
						t.Fatalf("%d results", len(got))
					}
				}
			}
		}
		check()
		last := s.LastPhysOffset()
		for i := int64(0); i < 5; i++ {
			if err := s.Put("k", max(last, 0)+i, t0+i); err != nil {
				t.Fatal(err)
			}
		}
		check()
		if err := s.TruncateFrom(max(last, 0) + 2); err != nil {
			t.Fatal(err)
		}
		check()
		if err := s.DeleteBelow(1); err != nil {
			t.Fatal(err)
		}
		check()
	})
}
