package commitlog

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

func FuzzDecodeRecordHeader(f *testing.F) {
	hdr := make([]byte, HeaderSize+64)
	l := mkLog(7, 3, 40)
	encodeHeader(hdr, l, 4096)
	copy(hdr[HeaderSize:], l.Data)
	f.Add(hdr, int64(4096), uint64(7), uint64(2))
	f.Add(hdr[:HeaderSize], int64(0), uint64(0), uint64(0))
	f.Add(make([]byte, HeaderSize), int64(0), uint64(1), uint64(0))
	blank := make([]byte, 16)
	encodeBlank(blank, 16)
	f.Add(blank, int64(8), uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, pos int64, expect, prevTerm uint64) {
		h, err := decodeHeader(b)
		if err != nil {
			return
		}
		if int64(h.RecLen) != recordLen(int(h.DataLen), int(h.ExtLen)) || h.RecLen%recordAlign != 0 {
			t.Fatalf("accepted inconsistent lengths %+v", h)
		}
		h2, err := checkRecord(b, pos, expect, prevTerm)
		if err != nil {
			return
		}
		if h2 != h || h.Pos != pos || (expect != 0 && h.Index != expect) || h.Term < prevTerm || int64(h.RecLen) > int64(len(b)) {
			t.Fatalf("checkRecord accepted %+v at pos %d expect %d prevTerm %d", h2, pos, expect, prevTerm)
		}
		// A valid record re-encodes to the same bytes.
		p := b[HeaderSize : HeaderSize+int(h.DataLen)+int(h.ExtLen)]
		l := &raft.Log{Index: h.Index, Term: h.Term, Type: h.Type, Data: p[:h.DataLen], Extensions: p[h.DataLen:], AppendedAt: appendedAtTime(h.AppendedAt)}
		re := make([]byte, HeaderSize)
		encodeHeader(re, l, h.Pos)
		if !bytes.Equal(re, b[:HeaderSize]) {
			t.Fatalf("re-encoded header differs:\n%x\n%x", re, b[:HeaderSize])
		}
	})
}

func FuzzDecodeCheckpoint(f *testing.F) {
	c := checkpoint{Seq: 3, SegSize: 1 << 20, FlushedPos: 4096, FlushedIndex: 9, FirstPos: 0, ResetPending: true, ResetPos: 8}
	f.Add(c.encode())
	f.Add(make([]byte, checkpointSlotSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCheckpoint(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.encode()[:checkpointBodyLen+4], b[:checkpointBodyLen+4]) {
			t.Fatal("accepted checkpoint does not round-trip")
		}
	})
}

func FuzzDecodeSidecar(f *testing.F) {
	sc := sidecar{SegStart: 8192, BaseIndex: 5, DataStart: 0, End: 4096, LastTerm: 2, Offsets: []uint32{0, 128, 1024}}
	f.Add(sc.encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, err := decodeSidecar(b, 8192)
		if err != nil {
			return
		}
		if !bytes.Equal(sc.encode(), b) {
			t.Fatal("accepted sidecar does not round-trip")
		}
	})
}

// FuzzRecoverTail writes arbitrary bytes after the last record of a closed
// store (and marks the shutdown unclean). Open must not panic, must keep
// every record that was fsynced, and must leave a usable store.
func FuzzRecoverTail(f *testing.F) {
	const segSize = 8192
	tmpl := memTempDir(f)
	opts := Options{RootDir: tmpl, SegmentSize: segSize, Flush: FlushSync, Prealloc: PreallocSparse}
	s, err := Open(opts)
	if err != nil {
		f.Fatal(err)
	}
	logs := mkLogs(1, 12, 2, func(i uint64) int { return int(i * 97 % 900) })
	storeAll(f, s, logs, 4)
	end := s.WriteEnd()
	if err := s.Close(); err != nil {
		f.Fatal(err)
	}
	files := map[string][]byte{}
	for _, name := range []string{"checkpoint", filepath.Join("commitlog", segmentName(end-end%segSize))} {
		b, err := os.ReadFile(filepath.Join(tmpl, name))
		if err != nil {
			f.Fatal(err)
		}
		files[name] = b
	}
	segName := filepath.Join("commitlog", segmentName(end-end%segSize))
	var others []string
	for _, n := range segFiles(f, tmpl) {
		if filepath.Join("commitlog", n) != segName {
			others = append(others, n)
		}
	}

	// Seeds: a plausible next record, a BLANK, junk.
	next := make([]byte, 256)
	nl := mkLog(13, 2, 100)
	encodeHeader(next, nl, end)
	copy(next[HeaderSize:], nl.Data)
	f.Add(next, uint16(0))
	blank := make([]byte, 8)
	encodeBlank(blank, segSize-end%segSize)
	f.Add(blank, uint16(0))
	f.Add([]byte{0x52, 0x51, 0x4c, 0x31, 0, 0, 0, 64}, uint16(3))
	f.Add(bytes.Repeat([]byte{0xff}, 100), uint16(17))

	f.Fuzz(func(t *testing.T, tail []byte, gap uint16) {
		dir := memTempDir(t)
		os.MkdirAll(filepath.Join(dir, "commitlog"), 0o755)
		for _, n := range others {
			b, err := os.ReadFile(filepath.Join(tmpl, "commitlog", n))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, "commitlog", n), b, 0o644)
		}
		seg := append([]byte(nil), files[segName]...)
		off := end%segSize + int64(gap%64)*8
		if off < segSize {
			copy(seg[off:], tail)
		}
		os.WriteFile(filepath.Join(dir, segName), seg, 0o644)
		os.WriteFile(filepath.Join(dir, "checkpoint"), files["checkpoint"], 0o644)
		os.WriteFile(filepath.Join(dir, "abort"), nil, 0o644)

		o := opts
		o.RootDir = dir
		s, err := Open(o)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		if first != 1 || last < 12 {
			t.Fatalf("recovered [%d,%d], want [1,>=12]", first, last)
		}
		for _, l := range logs {
			checkLog(t, s, l)
		}
		for i := uint64(13); i <= last; i++ {
			var l raft.Log
			if err := s.GetLog(i, &l); err != nil {
				t.Fatalf("recovered extra index %d unreadable: %v", i, err)
			}
		}
		l := mkLog(last+1, 2, 50)
		if err := s.StoreLogs([]*raft.Log{l}); err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
		checkLog(t, s, l)
	})
}
