package commitlog

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// preparer creates the next segment file in the background so a segment
// switch inside StoreLogs normally finds its file ready (zero-filled, docs/storage.md §11).
type preparer struct {
	dir     string
	segSize int64
	mode    PreallocMode
	rate    int64
	log     hclog.Logger

	mu      sync.Mutex
	start   int64         // start of the segment being prepared or ready; -1 none
	ready   *segment      // prepared segment, not yet handed out
	done    chan struct{} // closed when the in-progress preparation ends
	cancel  context.CancelFunc
	closed  bool
	pending sync.WaitGroup
}

func newPreparer(dir string, segSize int64, mode PreallocMode, rate int64, log hclog.Logger) *preparer {
	return &preparer{dir: dir, segSize: segSize, mode: mode, rate: rate, log: log, start: -1}
}

// prepare starts preparing the segment at start unless it is already under way.
func (p *preparer) prepare(start int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.start == start {
		return
	}
	if p.done != nil {
		return // another preparation is running; take() discards it if stale
	}
	if p.ready != nil {
		p.discardLocked()
	}
	p.start = start
	done := make(chan struct{})
	p.done = done
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.pending.Add(1)
	go func() {
		defer p.pending.Done()
		defer cancel()
		path, err := createSegmentFile(ctx, p.dir, start, p.segSize, p.mode, p.rate)
		var seg *segment
		if err == nil {
			seg, err = openSegmentFile(path, start, p.segSize)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.done = nil
		close(done)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Warn("preparing next segment failed; it will be created on demand", "start", start, "error", err)
			}
			p.start = -1
			return
		}
		if p.closed || p.start != start {
			seg.release()
			os.Remove(seg.path)
			return
		}
		p.ready = seg
	}()
}

// take returns the prepared segment for start, or nil (the caller then
// creates it with fallocate). A preparation still under way is cancelled
// rather than waited for: the writer (raft's goroutine) must not stall
// behind a zero-fill of a whole segment.
func (p *preparer) take(start int64) *segment {
	for {
		p.mu.Lock()
		if p.ready != nil && p.ready.start == start {
			seg := p.ready
			p.ready = nil
			p.start = -1
			p.mu.Unlock()
			return seg
		}
		if p.done != nil {
			// Cancel and wait (at most one chunk) so it cannot race with our
			// own creation of a file of the same name.
			done := p.done
			p.start = -2
			p.cancel()
			p.mu.Unlock()
			<-done
			continue
		}
		if p.ready != nil {
			p.discardLocked()
		}
		p.mu.Unlock()
		return nil
	}
}

func (p *preparer) discardLocked() {
	p.ready.release()
	os.Remove(p.ready.path)
	p.ready = nil
	p.start = -1
}

// reset forgets any prepared or in-progress segment: the log's end moved
// (truncation, reset), so it may be for the wrong place.
func (p *preparer) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready != nil {
		p.discardLocked()
	}
	if p.done != nil {
		p.start = -2 // the goroutine deletes its file when it finishes
		p.cancel()
	}
}

// close stops preparing and deletes an unused prepared file.
func (p *preparer) close() {
	p.mu.Lock()
	p.closed = true
	if p.ready != nil {
		p.discardLocked()
	}
	if p.cancel != nil {
		p.cancel()
	}
	p.mu.Unlock()
	p.pending.Wait()
}

// maybePrepareNext starts preparing the segment after the active one once
// the active one is half full.
func (s *Store) maybePrepareNext() {
	s.mu.RLock()
	var next int64 = -1
	if n := len(s.segs); n > 0 {
		a := s.segs[n-1]
		if a.end >= s.segSize/2 {
			next = a.start + s.segSize
		}
	}
	s.mu.RUnlock()
	if next >= 0 {
		s.prep.prepare(next)
	}
}

// runFlusher is the background flush loop: in ASYNC mode it fdatasyncs the
// data every FlushInterval; in both modes it persists the checkpoint
// (flushed position, applied and dispatched indexes) when it changed, at
// most every 100 ms in SYNC mode.
func (s *Store) runFlusher(ctx context.Context) {
	defer s.bgWG.Done()
	interval := s.opts.FlushInterval
	if s.opts.Flush == FlushSync {
		interval = 100 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.failed.Load() != nil {
			return
		}
		if err := s.flushIfNeeded(); err != nil {
			s.log.Error("background flush failed", "error", err)
		}
	}
}

// flushIfNeeded syncs data and writes the checkpoint when anything changed.
func (s *Store) flushIfNeeded() error {
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	s.mu.RLock()
	dirty := s.writeEnd != s.flushedPos
	s.mu.RUnlock()
	if !dirty && s.ck.FlushedPos == s.flushedPos && s.ck.Applied == s.clampedApplied() && s.ck.Dispatched == s.clampedDispatched() {
		return nil
	}
	return s.flushLocked()
}

// Sync makes every appended record durable and writes the checkpoint
// (flushed position, Applied, Dispatched) now, instead of waiting for the
// background flusher. Use it before reporting a snapshot as persisted.
func (s *Store) Sync() error {
	if err := s.usable(); err != nil {
		return err
	}
	return s.flush()
}

// flush syncs all written data and writes the checkpoint.
func (s *Store) flush() error {
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	return s.flushLocked()
}

// flushLocked (ckMu held) fdatasyncs every segment holding unflushed bytes,
// advances the flushed position and writes the checkpoint.
func (s *Store) flushLocked() error {
	if f := s.failed.Load(); f != nil {
		return f.err
	}
	s.mu.RLock()
	end, last, lastTerm := s.writeEnd, s.last, s.lastTerm
	var dirty []*segment
	for _, seg := range s.segs {
		if seg.start+s.segSize > s.flushedPos && seg.start < end {
			seg.acquire()
			dirty = append(dirty, seg)
		}
	}
	s.mu.RUnlock()
	defer func() {
		for _, seg := range dirty {
			seg.release()
		}
	}()
	if end != s.flushedPos {
		for _, seg := range dirty {
			if err := s.datasync(seg.fd()); err != nil {
				return s.fail(err)
			}
		}
		s.flushedPos, s.flushedIndex, s.flushedTerm = end, last, lastTerm
	}
	return s.writeCheckpointLocked(nil)
}

func (s *Store) clampedApplied() uint64 {
	return min(s.applied.Load(), s.flushedIndex)
}

func (s *Store) clampedDispatched() uint64 {
	return min(s.dispatched.Load(), s.flushedIndex)
}

// writeCheckpointLocked (ckMu held) writes a new checkpoint slot from the
// current state, after letting edit adjust it.
func (s *Store) writeCheckpointLocked(edit func(*checkpoint)) error {
	c := s.ck
	c.Seq++
	c.FlushedPos, c.FlushedIndex, c.FlushedTerm = s.flushedPos, s.flushedIndex, s.flushedTerm
	c.Applied = s.clampedApplied()
	c.Dispatched = s.clampedDispatched()
	s.mu.RLock()
	if s.first != 0 {
		c.FirstIndex = s.first
		c.FirstPos = s.posLocked(s.first)
	} else {
		c.FirstIndex = s.nextHint
		c.FirstPos = s.writeEnd
	}
	s.mu.RUnlock()
	if edit != nil {
		edit(&c)
	}
	if err := s.ckFile.store(&c); err != nil {
		return s.fail(err)
	}
	s.ck = c
	return nil
}

// runSealer writes sidecars for sealed segments in the background.
func (s *Store) runSealer(ctx context.Context) {
	defer s.bgWG.Done()
	for {
		select {
		case <-ctx.Done():
			// Close: seal what is queued (saves a rescan at the next Open)
			// and drop the references.
			for {
				select {
				case seg := <-s.sealCh:
					if s.failed.Load() == nil {
						if err := s.sealSegment(seg); err != nil {
							s.log.Warn("writing segment sidecar failed; Open will rescan the segment", "segment", seg.path, "error", err)
						}
					}
					seg.release()
				default:
					return
				}
			}
		case seg := <-s.sealCh:
			if err := s.sealSegment(seg); err != nil {
				s.log.Warn("writing segment sidecar failed; Open will rescan the segment", "segment", seg.path, "error", err)
			}
			seg.release()
		}
	}
}

// enqueueSeal queues seg for a sidecar (the caller holds mu or a reference).
func (s *Store) enqueueSeal(seg *segment) {
	seg.acquire()
	select {
	case s.sealCh <- seg:
	default:
		seg.release() // Open will rescan it
	}
}

// sealSegment fdatasyncs a sealed segment and writes its sidecar. It holds
// ckMu so a concurrent truncation (which unseals segments and deletes their
// sidecars under ckMu) cannot interleave.
func (s *Store) sealSegment(seg *segment) error {
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	s.mu.RLock()
	live := seg.sealed && s.containsSegLocked(seg)
	var sc sidecar
	if live {
		sc = sidecar{SegStart: seg.start, BaseIndex: seg.baseIndex, DataStart: seg.dataStart, End: seg.end,
			LastTerm: seg.lastTerm, MaxAppendedAt: seg.maxAppendedAt, Offsets: append([]uint32(nil), seg.offsets...)}
	}
	s.mu.RUnlock()
	if !live {
		return nil
	}
	if err := s.datasync(seg.fd()); err != nil {
		return s.fail(err)
	}
	s.hit("seal-before-sidecar")
	return writeSidecar(s.dir, seg.path, &sc)
}

func (s *Store) containsSegLocked(seg *segment) bool {
	for _, x := range s.segs {
		if x == seg {
			return true
		}
	}
	return false
}

func sidecarExists(seg *segment) bool {
	_, err := os.Stat(seg.path + sidecarSuffix)
	return err == nil
}
