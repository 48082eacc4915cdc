// Package consumequeue owns RocketMQ ConsumeQueue files: per topic/queue
// directories of fixed 20-byte entries (PROTOCOL.md §6.3) that map a logical
// queue offset to the record's position in the CommitLog.
package consumequeue

import (
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"
)

// EntrySize is the size of one ConsumeQueue entry on disk.
const EntrySize = 20

// DefaultEntriesPerFile is RocketMQ's ConsumeQueue file size in entries.
const DefaultEntriesPerFile = 300000

// ErrOffsetOutOfRange is returned when a logical offset lies outside [min,max).
var ErrOffsetOutOfRange = errors.New("consumequeue: offset out of range")

// Entry is one ConsumeQueue entry.
type Entry struct {
	PhysOffset int64
	Size       int32
	TagsCode   int64
}

// QueueID names one consume queue.
type QueueID struct {
	Topic string
	ID    int32
}

// Options configures a Store.
type Options struct {
	Dir            string // storePathRootDir/consumequeue
	EntriesPerFile int
	FlushInterval  time.Duration // default 1 s
	Logger         hclog.Logger
}

// Store holds every consume queue of a broker.
type Store struct{}

func Open(opts Options) (*Store, error)                                       { return &Store{}, nil }
func (s *Store) Put(topic string, queueID int32, offset int64, e Entry) error { return nil }
func (s *Store) Get(topic string, queueID int32, offset int64) (Entry, error) {
	return Entry{}, ErrOffsetOutOfRange
}
func (s *Store) Read(topic string, queueID int32, offset int64, max int, dst []Entry) ([]Entry, error) {
	return dst, nil
}
func (s *Store) MinOffset(topic string, queueID int32) int64 { return 0 }
func (s *Store) MaxOffset(topic string, queueID int32) int64 { return 0 }
func (s *Store) Queues() []QueueID                           { return nil }
func (s *Store) TruncateFrom(physEnd int64) error            { return nil }
func (s *Store) DeleteBelow(minPhys int64) error             { return nil }
func (s *Store) DeleteTopic(topic string) error              { return nil }
func (s *Store) MaxPhysOffset() int64                        { return 0 }
func (s *Store) Flush() error                                { return nil }
func (s *Store) Close() error                                { return nil }
func (s *Store) SearchOffsetByTime(topic string, queueID int32, ts int64, upper bool, storeTime func(Entry) (int64, error)) (int64, error) {
	return 0, nil
}
