package consumequeue

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// FuzzConsumeQueueRecover opens arbitrary bytes as consume queue files and
// checks that recovery yields a consistent queue that survives appends, a
// truncate, retention and a reopen unchanged.
func FuzzConsumeQueueRecover(f *testing.F) {
	const perFile = 8
	good := make([]byte, perFile*EntrySize)
	for i := 0; i < 5; i++ {
		encodeEntry(good[i*EntrySize:], entryAt(int64(i)))
	}
	blanks := make([]byte, perFile*EntrySize)
	for i := 0; i < 3; i++ {
		encodeEntry(blanks[i*EntrySize:], blankEntry)
	}
	encodeEntry(blanks[3*EntrySize:], entryAt(3))
	f.Add(good, uint8(0), false)
	f.Add(good[:47], uint8(1), false)
	f.Add(blanks, uint8(2), false)
	f.Add(append(append([]byte{}, good...), good...), uint8(0), true)
	f.Add(append(append([]byte{}, blanks...), good...), uint8(3), true)
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff\x7f\xff\xff\xff"), uint8(0), false)
	f.Add(make([]byte, 3*perFile*EntrySize), uint8(0), false)

	f.Fuzz(func(t *testing.T, data []byte, start uint8, twoFiles bool) {
		dir := t.TempDir()
		qdir := filepath.Join(dir, "T", "0")
		if err := os.MkdirAll(qdir, 0o755); err != nil {
			t.Fatal(err)
		}
		size := perFile * EntrySize
		first := int64(start%4) * perFile
		parts := [][]byte{data}
		if twoFiles && len(data) > size {
			parts = [][]byte{data[:size], data[size:]}
		}
		tooLong := false
		for i, p := range parts {
			tooLong = tooLong || len(p) > size
			name := filepath.Join(qdir, fileName((first+int64(i)*perFile)*EntrySize))
			if err := os.WriteFile(name, p, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		opts := Options{Dir: dir, EntriesPerFile: perFile, FlushInterval: -1, noSync: true}
		s, err := Open(opts)
		if err != nil {
			if !tooLong {
				t.Fatalf("Open: %v", err)
			}
			return
		}
		state := func(s *Store) string {
			mn, mx := s.MinOffset("T", 0), s.MaxOffset("T", 0)
			if mn > mx {
				t.Fatalf("min %d > max %d", mn, mx)
			}
			es, err := s.Read("T", 0, mn, int(mx-mn), nil)
			if err != nil || int64(len(es)) != mx-mn {
				t.Fatalf("Read [%d,%d): %d entries, %v", mn, mx, len(es), err)
			}
			var end int64
			for i, e := range es {
				if !e.valid() || e.PhysOffset < end {
					t.Fatalf("entry %d invalid or backwards: %+v", mn+int64(i), e)
				}
				end = e.end()
			}
			if end != 0 && s.MaxPhysOffset() != end {
				t.Fatalf("MaxPhysOffset %d, last entry ends at %d", s.MaxPhysOffset(), end)
			}
			return fmt.Sprint(mn, mx, es)
		}
		state(s)
		mx := s.MaxOffset("T", 0)
		phys := s.MaxPhysOffset()
		if phys > 1<<62 || mx > 1<<40 {
			return // no room to append; recovery itself was checked
		}
		for i := int64(0); i < 10; i++ {
			if err := s.Put("T", 0, mx+i, Entry{PhysOffset: phys + i*10, Size: 10}); err != nil {
				t.Fatalf("Put at %d: %v", mx+i, err)
			}
		}
		if err := s.TruncateFrom(phys + 50); err != nil {
			t.Fatal(err)
		}
		if got := s.MaxOffset("T", 0); got != mx+5 {
			t.Fatalf("after truncate max %d want %d", got, mx+5)
		}
		if err := s.DeleteBelow(phys + 20); err != nil {
			t.Fatal(err)
		}
		if got := s.MinOffset("T", 0); got != mx+2 {
			t.Fatalf("after DeleteBelow min %d want %d", got, mx+2)
		}
		before := state(s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2, err := Open(opts)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer s2.Close()
		if after := state(s2); after != before {
			t.Fatalf("reopen changed the queue:\n%s\n%s", before, after)
		}
	})
}
