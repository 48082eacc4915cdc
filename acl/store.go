package acl

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Store holds the accounts of one file and reloads them when the file
// changes. Each process (broker member, namesrv) runs its own Store on its
// own copy of the file; the file reaches every member by deployment (config
// management, a mounted volume), not through Raft, as RocketMQ's
// plain_acl.yml does.
type Store struct {
	path   string
	logger hclog.Logger
	cur    atomic.Pointer[Accounts]

	mu    sync.Mutex // serialises reloads
	stamp fileStamp  // of the version last loaded or refused
}

// fileStamp identifies a version of the file cheaply.
type fileStamp struct {
	mod  time.Time
	size int64
}

// DefaultReloadInterval is how often Run looks at the file.
const DefaultReloadInterval = 5 * time.Second

// NewStore loads path; an unreadable or invalid file is an error, so a
// process never starts with ACL on and no accounts.
func NewStore(path string, logger hclog.Logger) (*Store, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	s := &Store{path: path, logger: logger}
	acc, stamp, err := s.load()
	if err != nil {
		return nil, err
	}
	s.install(acc, stamp)
	return s, nil
}

// Accounts returns the accounts in force.
func (s *Store) Accounts() *Accounts { return s.cur.Load() }

// Run polls the file every interval until ctx ends and installs a new
// version when its modification time or size changed and it parses. A
// version that does not parse is logged and skipped; the accounts in force
// stay until a valid one appears.
func (s *Store) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultReloadInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Reload()
		}
	}
}

// Reload installs the file if it changed since the last load and parses,
// reporting whether it did. Run calls it; so can a caller that knows.
func (s *Store) Reload() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := os.Stat(s.path)
	if err != nil {
		s.logger.Error("cannot stat ACL accounts file; keeping the accounts in force", "path", s.path, "error", err)
		return false
	}
	if (fileStamp{mod: st.ModTime(), size: st.Size()}) == s.stamp {
		return false
	}
	acc, stamp, err := s.load()
	if err != nil {
		s.logger.Error("ACL accounts file refused; keeping the accounts in force", "path", s.path, "error", err)
		s.stamp = stamp // do not re-parse (and re-log) the same bad version every poll
		return false
	}
	s.install(acc, stamp)
	return true
}

func (s *Store) install(acc *Accounts, stamp fileStamp) {
	s.cur.Store(acc)
	s.stamp = stamp
	for _, w := range acc.Warnings {
		s.logger.Warn("ACL accounts file: "+w, "path", s.path)
	}
	s.logger.Info("ACL accounts loaded", "path", s.path, "accounts", acc.Len())
}

func (s *Store) load() (*Accounts, fileStamp, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("acl: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("acl: %w", err)
	}
	stamp := fileStamp{mod: st.ModTime(), size: st.Size()}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, stamp, fmt.Errorf("acl: %s: %w", s.path, err)
	}
	acc, err := ParseAccounts(data)
	if err != nil {
		return nil, stamp, fmt.Errorf("%w (file %s)", err, s.path)
	}
	return acc, stamp, nil
}
