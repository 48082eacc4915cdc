package commitlog

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestDeleteExpiredRespectsAgeSafeIndexAndActive(t *testing.T) {
	dir := t.TempDir()
	opts := testOpts(dir)
	opts.FileReservedTime = time.Hour
	s := mustOpen(t, opts)
	defer s.Close()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var logs []*raft.Log
	for i := uint64(1); i <= 200; i++ {
		l := mkLog(i, 1, varied(i))
		l.AppendedAt = base.Add(time.Duration(i) * time.Minute) // index i appended at minute i
		logs = append(logs, l)
	}
	storeAll(t, s, logs, 10)
	segsBefore := s.Stats().Segments
	if segsBefore < 5 {
		t.Fatalf("only %d segments", segsBefore)
	}

	// Nothing is older than an hour at minute 30.
	if n, err := s.DeleteExpired(base.Add(30*time.Minute), 200, false); err != nil || n != 0 {
		t.Fatalf("DeleteExpired early = %d, %v", n, err)
	}
	// At minute 100+60 every segment whose newest record is before minute 100
	// is expired, but the safe index 40 holds retention back.
	n, err := s.DeleteExpired(base.Add(160*time.Minute), 40, false)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := s.FirstIndex()
	if n == 0 || first > 41 {
		t.Fatalf("deleted %d, first now %d (safe index 40)", n, first)
	}
	checkRange(t, s, first, 200)
	for _, l := range logs[first-1:] {
		checkLog(t, s, l)
	}
	// Segments deleted are gone from disk (files and sidecars).
	for _, name := range segFiles(t, dir) {
		if start, _ := parseSegmentName(name); start < s.MinPos()-s.MinPos()%testSeg {
			t.Fatalf("deleted segment %s still on disk", name)
		}
	}
	if s.MinPos() != s.Stats().MinPos || s.MinPos()%testSeg != 0 {
		t.Fatalf("MinPos %d", s.MinPos())
	}
	// Force deletes the oldest regardless of age, one at a time, never the active one.
	for {
		n, err := s.DeleteExpired(base, 1000, true)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if n != 1 {
			t.Fatalf("force deleted %d at once", n)
		}
	}
	if st := s.Stats(); st.Segments != 1 || st.LastIndex != 200 {
		t.Fatalf("after forcing: %+v", st)
	}
	first, _ = s.FirstIndex()
	for _, l := range logs[first-1:] {
		checkLog(t, s, l)
	}
	s.Close()
	s = mustOpen(t, opts)
	defer s.Close()
	checkRange(t, s, first, 200)
	// Appending continues from the end.
	storeAll(t, s, mkLogs(201, 210, 1, varied), 5)
	checkRange(t, s, first, 210)
}

func TestLeaseOutlivesRetentionAndTruncation(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOpts(dir))
	defer s.Close()
	logs := mkLogs(1, 100, 1, varied)
	storeAll(t, s, logs, 10)
	pos, _ := s.RecordPos(3)
	l := logs[2]
	lease, err := s.Lease(pos+HeaderSize, len(l.Data))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteExpired(time.Now().Add(1000*time.Hour), 1000, false); err != nil || n == 0 {
		t.Fatalf("DeleteExpired = %d, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "commitlog", segmentName(0))); !os.IsNotExist(err) {
		t.Fatalf("segment 0 still on disk: %v", err)
	}
	// The unlinked segment is still mapped for the lease holder.
	if !bytes.Equal(lease.Bytes(), l.Data) {
		t.Fatal("leased bytes changed after the segment was deleted")
	}
	lease.Release()
	if _, err := s.Lease(pos+HeaderSize, 10); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("lease below MinPos = %v", err)
	}

	// Same for a suffix truncation: the lease keeps the dropped segment mapped.
	last, _ := s.LastIndex()
	p2, _ := s.RecordPos(last)
	l2 := logs[last-1]
	lease2, err := s.Lease(p2+HeaderSize, len(l2.Data))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := s.FirstIndex()
	if err := s.DeleteRange(first+1, last); err != nil {
		t.Fatal(err)
	}
	_ = lease2.Bytes()[len(l2.Data)-1] // must not fault
	lease2.Release()
	lease2.Release()
}

func TestConcurrentReadersDuringAppendAndTruncate(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOpts(dir))
	defer s.Close()
	storeAll(t, s, mkLogs(1, 50, 1, varied), 10)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var l raft.Log
			for ctx.Err() == nil {
				first, _ := s.FirstIndex()
				last, _ := s.LastIndex()
				for i := first; i <= last && i > 0; i++ {
					err := s.GetLog(i, &l)
					if err == raft.ErrLogNotFound {
						continue // truncated meanwhile
					}
					if err != nil {
						t.Errorf("GetLog(%d): %v", i, err)
						return
					}
					if l.Index != i {
						t.Errorf("GetLog(%d) returned %d", i, l.Index)
						return
					}
				}
			}
		}()
	}
	next := uint64(51)
	for round := 0; round < 20; round++ {
		storeAll(t, s, mkLogs(next, next+20, uint64(round+1), varied), 7)
		next += 21
		if err := s.DeleteRange(next-10, next); err != nil {
			t.Fatal(err)
		}
		next -= 10
	}
	cancel()
	wg.Wait()
}

func TestFsyncErrorIsFatal(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOpts(dir))
	storeAll(t, s, mkLogs(1, 10, 1, fixed(100)), 10)
	s.syncData = func(int) error { return syscall.EIO }
	if err := s.StoreLogs(mkLogs(11, 12, 1, fixed(100))); !errors.Is(err, syscall.EIO) {
		t.Fatalf("StoreLogs with failing fsync = %v", err)
	}
	s.syncData = nil
	// No silent retry: the store stays failed.
	if err := s.StoreLogs(mkLogs(11, 12, 1, fixed(100))); err == nil {
		t.Fatal("store accepted writes after an fsync error")
	}
	if err := s.DeleteRange(5, 10); err == nil {
		t.Fatal("store accepted a truncation after an fsync error")
	}
	if s.Err() == nil || !s.Stats().Failed {
		t.Fatal("failure not reported")
	}
	checkRange(t, s, 1, 10) // reads still work
	if err := s.Close(); err == nil {
		t.Fatal("Close of a failed store reported success")
	}
	if _, err := os.Stat(filepath.Join(dir, "abort")); err != nil {
		t.Fatal("abort file removed after a fatal error")
	}
	s = mustOpen(t, testOpts(dir))
	defer s.Close()
	if s.WasCleanShutdown() {
		t.Fatal("reopen after failure looks clean")
	}
	last, _ := s.LastIndex()
	if last != 10 && last != 12 {
		t.Fatalf("recovered last %d", last)
	}
}

func TestWriteErrorRollsBack(t *testing.T) {
	dir := t.TempDir()
	opts := testOpts(dir)
	opts.Flush = FlushAsync
	s := mustOpen(t, opts)
	defer s.Close()
	storeAll(t, s, mkLogs(1, 10, 1, fixed(3000)), 10)
	end := s.WriteEnd()
	// A hook failure in the middle of a batch that spans a segment switch.
	calls := 0
	s.opts.Hook = func(l *raft.Log, pos int64) error {
		calls++
		if l.Index == 35 {
			return errors.New("boom")
		}
		return nil
	}
	if err := s.StoreLogs(mkLogs(11, 40, 1, fixed(3000))); err == nil {
		t.Fatal("accepted")
	}
	s.opts.Hook = nil
	if s.WriteEnd() != end {
		t.Fatal("write end moved")
	}
	checkRange(t, s, 1, 10)
	storeAll(t, s, mkLogs(11, 40, 1, fixed(3000)), 30)
	checkRange(t, s, 1, 40)
}

func TestRetentionLoopAndDiskFull(t *testing.T) {
	dir := t.TempDir()
	opts := testOpts(dir)
	s := mustOpen(t, opts)
	defer s.Close()
	storeAll(t, s, mkLogs(1, 200, 1, varied), 10)
	usage, err := s.DiskUsage()
	if err != nil || usage <= 0 || usage >= 1 {
		t.Fatalf("DiskUsage = %v, %v", usage, err)
	}
	p := RetentionPolicy{FileReservedTime: time.Nanosecond, DeleteWhenHour: 99, DiskMaxUsedRatio: 1e-9, ForceCleanRatio: 2, RejectWritesRatio: 1e-9}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.runRetention(ctx, p, func() uint64 { return 100 }, time.Millisecond, time.Now)
		close(done)
	}()
	waitFor(t, "retention to delete up to the safe index", 10*time.Second, func() bool {
		first, _ := s.FirstIndex()
		return first > 50 && s.DiskFull()
	})
	cancel()
	<-done
	first, _ := s.FirstIndex()
	if first > 101 {
		t.Fatalf("retention deleted past the safe index: first %d", first)
	}
	if !DefaultRetentionPolicy().RejectWrites(0.95) || DefaultRetentionPolicy().RejectWrites(0.5) {
		t.Fatal("RejectWrites thresholds")
	}
}
