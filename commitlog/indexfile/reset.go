package indexfile

import "os"

// Reset removes every index file, as for a follower that installs a
// snapshot: its index describes a log it no longer has. Indexing starts
// afresh with the next Put.
func (s *Service) Reset() error {
	s.putMu.Lock()
	defer s.putMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for _, fs := range s.files {
		fs.f.unmap()
		if err := os.Remove(fs.f.path); err != nil {
			return err
		}
	}
	s.files = nil
	s.lastPhys.Store(0)
	s.log.Info("index reset")
	return s.syncDir()
}
