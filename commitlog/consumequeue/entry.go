package consumequeue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// EntrySize is the size of one ConsumeQueue entry on disk.
const EntrySize = 20

// DefaultEntriesPerFile is RocketMQ's ConsumeQueue file size in entries
// (6 000 000 bytes).
const DefaultEntriesPerFile = 300000

var (
	// ErrOffsetOutOfRange is returned when a logical offset lies outside
	// [MinOffset, MaxOffset) (for Read: outside [MinOffset, MaxOffset]).
	ErrOffsetOutOfRange = errors.New("consumequeue: offset out of range")
	// ErrConflict is returned by Put when an offset below MaxOffset is
	// written with content different from what is stored, or when the
	// offset would leave a gap.
	ErrConflict = errors.New("consumequeue: conflicting put")
	// ErrClosed is returned after Close, or for a queue removed by DeleteTopic.
	ErrClosed = errors.New("consumequeue: closed")
	// ErrInvalidName is returned for a topic that is not a safe path
	// component or a negative queue id.
	ErrInvalidName = errors.New("consumequeue: invalid topic or queue id")
	// ErrInvalidEntry is returned by Put for an entry that could not have come
	// from the CommitLog (negative offset, non-positive size, offsets going
	// backwards).
	ErrInvalidEntry = errors.New("consumequeue: invalid entry")
)

// Entry is one ConsumeQueue entry: where a message lives in the CommitLog
// and its tag hash (for SCHEDULE_TOPIC_XXXX: the delivery time in ms).
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

// blankEntry fills the slots of a file below the queue's first entry, as
// RocketMQ's pre-blank does (offset 0, size MaxInt32). No real record has
// that size, so recovery can tell a blank from data; it lets a queue start,
// or resume after retention, at any offset inside a file.
var blankEntry = Entry{PhysOffset: 0, Size: math.MaxInt32, TagsCode: 0}

func (e Entry) isBlank() bool { return e == blankEntry }

// isZero reports an unwritten slot: the end of a queue.
func (e Entry) isZero() bool { return e == Entry{} }

// valid reports whether e could be a real dispatched record.
func (e Entry) valid() bool {
	return e.PhysOffset >= 0 && e.Size > 0 && e.Size != math.MaxInt32 &&
		e.PhysOffset <= math.MaxInt64-int64(e.Size)
}

func (e Entry) end() int64 { return e.PhysOffset + int64(e.Size) }

func decodeEntry(b []byte) Entry {
	_ = b[EntrySize-1]
	return Entry{
		PhysOffset: int64(binary.BigEndian.Uint64(b[0:8])),
		Size:       int32(binary.BigEndian.Uint32(b[8:12])),
		TagsCode:   int64(binary.BigEndian.Uint64(b[12:20])),
	}
}

func encodeEntry(b []byte, e Entry) {
	_ = b[EntrySize-1]
	binary.BigEndian.PutUint64(b[0:8], uint64(e.PhysOffset))
	binary.BigEndian.PutUint32(b[8:12], uint32(e.Size))
	binary.BigEndian.PutUint64(b[12:20], uint64(e.TagsCode))
}

// maxTopicLen bounds a topic to one file-name component.
const maxTopicLen = 255

// validTopic accepts RocketMQ's topic charset [%|a-zA-Z0-9_-], which can
// never contain '/', '.' or NUL, so a topic is always one safe directory name.
func validTopic(topic string) bool {
	if len(topic) == 0 || len(topic) > maxTopicLen {
		return false
	}
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '%', c == '|', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func checkName(topic string, queueID int32) error {
	if !validTopic(topic) || queueID < 0 {
		return fmt.Errorf("%w: %q/%d", ErrInvalidName, topic, queueID)
	}
	return nil
}

// fileName is RocketMQ's: the file's first byte offset as 20 decimal digits.
func fileName(firstByte int64) string {
	return fmt.Sprintf("%020d", firstByte)
}

// parseFileName accepts exactly 20 decimal digits.
func parseFileName(name string) (int64, bool) {
	if len(name) != 20 {
		return 0, false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(name, 10, 64)
	return v, err == nil
}
