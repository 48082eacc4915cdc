package schedule

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/raftmq/raftmq/message"
)

// Topic is RocketMQ's delay topic; queue n-1 holds the messages of level n.
const Topic = "SCHEDULE_TOPIC_XXXX"

// DefaultDelayLevels is RocketMQ's default messageDelayLevel (levels 1..18).
const DefaultDelayLevels = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"

// maxLevels bounds a parsed level table; RocketMQ ships 18 and a queue per
// level is created, so thousands of levels are a configuration error.
const maxLevels = 1000

// Levels is a delay-level table: Levels[n-1] is the delay of level n.
type Levels []time.Duration

// ErrInvalidDelay is wrapped by errors about a message's DELAY property.
var ErrInvalidDelay = errors.New("schedule: invalid DELAY property")

// ParseDelayLevels parses a messageDelayLevel value: space-separated
// durations, each a positive integer followed by s, m, h or d ("1s 5s 1m 2h").
func ParseDelayLevels(s string) (Levels, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, errors.New("schedule: empty messageDelayLevel")
	}
	if len(fields) > maxLevels {
		return nil, fmt.Errorf("schedule: %d delay levels, at most %d", len(fields), maxLevels)
	}
	out := make(Levels, 0, len(fields))
	for i, f := range fields {
		var unit time.Duration
		switch f[len(f)-1] {
		case 's':
			unit = time.Second
		case 'm':
			unit = time.Minute
		case 'h':
			unit = time.Hour
		case 'd':
			unit = 24 * time.Hour
		default:
			return nil, fmt.Errorf("schedule: level %d %q: unit must be s, m, h or d", i+1, f)
		}
		n, err := strconv.ParseInt(f[:len(f)-1], 10, 32)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("schedule: level %d %q: want a positive integer before the unit", i+1, f)
		}
		if n > int64(3650*24*time.Hour/unit) {
			return nil, fmt.Errorf("schedule: level %d %q: longer than ten years", i+1, f)
		}
		out = append(out, time.Duration(n)*unit)
	}
	return out, nil
}

// Default returns the default level table (DefaultDelayLevels).
func Default() Levels {
	l, err := ParseDelayLevels(DefaultDelayLevels)
	if err != nil {
		panic("schedule: default delay levels do not parse: " + err.Error()) // constant input
	}
	return l
}

// MaxLevel is the highest level of the table.
func (l Levels) MaxLevel() int32 { return int32(len(l)) }

// Clamp maps a positive level into 1..MaxLevel (levels above the table use
// the highest one, as RocketMQ does).
func (l Levels) Clamp(level int32) int32 {
	if level < 1 {
		return 1
	}
	if level > l.MaxLevel() {
		return l.MaxLevel()
	}
	return level
}

// Delay returns the delay of a level, clamped into the table.
func (l Levels) Delay(level int32) time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[l.Clamp(level)-1]
}

// QueueID is the SCHEDULE_TOPIC_XXXX queue of a level.
func QueueID(level int32) int32 { return level - 1 }

// LevelOf is the level of a SCHEDULE_TOPIC_XXXX queue.
func LevelOf(queueID int32) int32 { return queueID + 1 }

// DeliverAt is the delivery time (ms) of a message stored at storeTimestamp
// (ms) in the schedule queue queueID. It is the ConsumeQueue tagsCode of
// SCHEDULE_TOPIC_XXXX entries.
func (l Levels) DeliverAt(queueID int32, storeTimestamp int64) int64 {
	return storeTimestamp + l.Delay(LevelOf(queueID)).Milliseconds()
}

// TagsCode is the ConsumeQueue tagsCode of a stored record for the dispatcher:
// for SCHEDULE_TOPIC_XXXX records the delivery time, for every other record
// the tag hash. Its signature is dledger.Config.TagsCode's: pass
// levels.TagsCode.
func (l Levels) TagsCode(rec message.Record) int64 {
	if string(rec.TopicBytes()) == Topic {
		return l.DeliverAt(rec.QueueID(), rec.StoreTimestamp())
	}
	return rec.TagsCode()
}

// DelayLevel returns the DELAY level of a message: 0 when absent or not
// positive (no delay; the broker writes -1 on DLQ messages), an error when it
// is not an integer.
func DelayLevel(m *message.Message) (int32, error) {
	v, ok := m.Properties[message.PropertyDelayLevel]
	if !ok || v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrInvalidDelay, v)
	}
	if n < 0 {
		return 0, nil
	}
	return int32(n), nil
}

// isTransactionHalf reports whether the message is a transaction half (or a
// prepared/rolled-back record): such messages are never delayed at send time;
// the commit's final record (type COMMIT, TRAN_MSG removed) is.
func isTransactionHalf(e *message.Ext) bool {
	switch message.TransactionType(e.SysFlag) {
	case message.TransactionPreparedType, message.TransactionRollbackType:
		return true
	case message.TransactionCommitType:
		return false
	}
	return strings.EqualFold(e.Properties[message.PropertyTransactionPrepared], "true")
}

// ToDelayQueue is the send-path transform of a delayed message. When e has
// DELAY=n>0 and is not a transaction half, it returns a copy rewritten to
// SCHEDULE_TOPIC_XXXX queue n-1 (n clamped to MaxLevel, DELAY rewritten to
// the clamped value) with REAL_TOPIC and REAL_QID set to e's topic and queue,
// and true. Otherwise it returns e itself and false. e is never modified.
func (l Levels) ToDelayQueue(e *message.Ext) (*message.Ext, bool, error) {
	level, err := DelayLevel(&e.Message)
	if err != nil {
		return e, false, err
	}
	if level == 0 || len(l) == 0 || isTransactionHalf(e) || e.Topic == Topic {
		return e, false, nil
	}
	level = l.Clamp(level)
	out := *e
	out.Properties = maps.Clone(e.Properties)
	out.Properties[message.PropertyDelayLevel] = strconv.Itoa(int(level))
	out.Properties[message.PropertyRealTopic] = e.Topic
	out.Properties[message.PropertyRealQueueID] = strconv.Itoa(int(e.QueueID))
	out.Topic = Topic
	out.QueueID = QueueID(level)
	return &out, true, nil
}

// timerProperties are removed when a delayed message is re-put.
var timerProperties = []string{
	message.PropertyDelayLevel,
	message.PropertyTimerDeliverMS,
	message.PropertyTimerDelaySec,
	message.PropertyTimerDelayMS,
	message.PropertyTimerOutMS,
}

// RePut builds the record that delivers a due SCHEDULE_TOPIC_XXXX record:
// topic REAL_TOPIC, queue REAL_QID, DELAY and TIMER_* removed, REAL_* kept,
// body/flag/sysFlag/born time and host/reconsumeTimes/prepared offset and all
// other properties (UNIQ_KEY included) copied. Offsets and store fields are
// left for the append path. It fails on records that lack a usable
// REAL_TOPIC/REAL_QID; such records cannot be delivered.
func RePut(stored *message.Ext) (*message.Ext, error) {
	realTopic := stored.Properties[message.PropertyRealTopic]
	if realTopic == "" || realTopic == Topic {
		return nil, fmt.Errorf("schedule: record at %d has REAL_TOPIC %q", stored.CommitLogOffset, realTopic)
	}
	qid, err := strconv.ParseInt(stored.Properties[message.PropertyRealQueueID], 10, 32)
	if err != nil || qid < 0 {
		return nil, fmt.Errorf("schedule: record at %d has REAL_QID %q", stored.CommitLogOffset,
			stored.Properties[message.PropertyRealQueueID])
	}
	props := maps.Clone(stored.Properties)
	for _, k := range timerProperties {
		delete(props, k)
	}
	return &message.Ext{
		Message: message.Message{
			Topic:      realTopic,
			Flag:       stored.Flag,
			Properties: props,
			Body:       stored.Body,
		},
		QueueID:                   int32(qid),
		SysFlag:                   stored.SysFlag,
		BornTimestamp:             stored.BornTimestamp,
		BornHost:                  stored.BornHost,
		ReconsumeTimes:            stored.ReconsumeTimes,
		PreparedTransactionOffset: stored.PreparedTransactionOffset,
	}, nil
}
