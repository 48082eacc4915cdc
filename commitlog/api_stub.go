package commitlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// FlushMode selects when appended records reach stable storage.
type FlushMode int

const (
	// FlushSync fdatasyncs inside StoreLogs before it returns (SYNC_FLUSH).
	FlushSync FlushMode = iota
	// FlushAsync leaves data in the page cache; a background flusher
	// fdatasyncs every FlushInterval (ASYNC_FLUSH).
	FlushAsync
)

// ParseFlushDiskType maps RocketMQ's broker.conf flushDiskType to a FlushMode.
func ParseFlushDiskType(s string) (FlushMode, error) {
	switch s {
	case "SYNC_FLUSH":
		return FlushSync, nil
	case "ASYNC_FLUSH":
		return FlushAsync, nil
	}
	return 0, fmt.Errorf("commitlog: unknown flushDiskType %q (want SYNC_FLUSH or ASYNC_FLUSH)", s)
}

// HeaderSize is the size of a record header; a record's Log.Data starts at pos+HeaderSize.
const HeaderSize = 56

// DefaultSegmentSize is the default size of a segment file.
const DefaultSegmentSize = 1 << 30

// AppendHook runs inside StoreLogs for every record, in log order, before its
// bytes are written or replicated; pos is the global physical offset of the
// record. An error fails the whole StoreLogs call (rolled back).
type AppendHook func(l *raft.Log, pos int64) error

// Options configures a Store.
type Options struct {
	RootDir       string
	SegmentSize   int64
	Flush         FlushMode
	FlushInterval time.Duration
	Hook          AppendHook
	Logger        hclog.Logger
}

var errNotImplemented = errors.New("commitlog: not implemented yet")

// Store is the CommitLog.
type Store struct{}

func Open(opts Options) (*Store, error)                             { return nil, errNotImplemented }
func (s *Store) Close() error                                       { return errNotImplemented }
func (s *Store) WasCleanShutdown() bool                             { return true }
func (s *Store) FirstIndex() (uint64, error)                        { return 0, errNotImplemented }
func (s *Store) LastIndex() (uint64, error)                         { return 0, errNotImplemented }
func (s *Store) GetLog(index uint64, log *raft.Log) error           { return raft.ErrLogNotFound }
func (s *Store) StoreLog(log *raft.Log) error                       { return errNotImplemented }
func (s *Store) StoreLogs(logs []*raft.Log) error                   { return errNotImplemented }
func (s *Store) DeleteRange(min, max uint64) error                  { return errNotImplemented }
func (s *Store) IsMonotonic() bool                                  { return true }
func (s *Store) RecordPos(index uint64) (int64, error)              { return 0, errNotImplemented }
func (s *Store) WriteEnd() int64                                    { return 0 }
func (s *Store) MinPos() int64                                      { return 0 }
func (s *Store) ReadAt(p []byte, pos int64) (int, error)            { return 0, errNotImplemented }
func (s *Store) SetApplied(index uint64)                            {}
func (s *Store) SetDispatched(index uint64)                         {}
func (s *Store) Applied() uint64                                    { return 0 }
func (s *Store) Dispatched() uint64                                 { return 0 }
func (s *Store) SetResetIntent(index, term uint64, pos int64) error { return errNotImplemented }
func (s *Store) DiskUsage() (float64, error)                        { return 0, errNotImplemented }
func (s *Store) Stats() Stats                                       { return Stats{} }
func (s *Store) Lease(pos int64, n int) (*Lease, error)             { return nil, errNotImplemented }
func (s *Store) DeleteExpired(now time.Time, safeIndex uint64, force bool) (int, error) {
	return 0, errNotImplemented
}
func (s *Store) RunRetention(ctx context.Context, p RetentionPolicy, safeIndex func() uint64) {}

// Lease is a zero-copy view into a segment mapping.
type Lease struct{ b []byte }

func (l *Lease) Bytes() []byte { return l.b }
func (l *Lease) Release()      {}

// RetentionPolicy mirrors RocketMQ's commitlog cleaning settings.
type RetentionPolicy struct {
	FileReservedTime  time.Duration
	DeleteWhenHour    int
	DiskMaxUsedRatio  float64
	ForceCleanRatio   float64
	RejectWritesRatio float64
}

// Stats is a snapshot of the store's state for metrics and admin.
type Stats struct {
	Segments   int
	Bytes      int64
	FirstIndex uint64
	LastIndex  uint64
	MinPos     int64
	WriteEnd   int64
	FlushedPos int64
}

var _ raft.LogStore = (*Store)(nil)
var _ raft.MonotonicLogStore = (*Store)(nil)
