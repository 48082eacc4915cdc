package schedule

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// maxOffsetsBytes bounds an encoded offset table; 18 levels take ~400 bytes.
const maxOffsetsBytes = 64 << 10

// offsetTable is the JSON form of delay progress, shaped like RocketMQ's
// delayOffset.json: {"offsetTable":{"1":5,"2":0}} (level -> next offset).
type offsetTable struct {
	OffsetTable map[string]int64 `json:"offsetTable"`
}

// MarshalOffsets encodes delay offsets (level -> next queue offset) for the
// broker's replicated metadata.
func MarshalOffsets(offsets map[int32]int64) []byte {
	t := offsetTable{OffsetTable: make(map[string]int64, len(offsets))}
	for level, off := range offsets {
		t.OffsetTable[strconv.Itoa(int(level))] = off
	}
	b, _ := json.Marshal(t) // strings and int64s cannot fail
	return b
}

// UnmarshalOffsets decodes MarshalOffsets output. Levels must be 1..maxLevels
// and offsets non-negative; anything else is an error. It also reads the
// bare table {"1":5} that brokers stored before they used MarshalOffsets, so
// a group that replicated that form keeps its delay progress.
func UnmarshalOffsets(b []byte) (map[int32]int64, error) {
	if len(b) > maxOffsetsBytes {
		return nil, errors.New("schedule: delay offset table too large")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("schedule: delay offsets: %w", err)
	}
	src := b // the bare form
	if inner, ok := top["offsetTable"]; ok {
		src = inner
	}
	var table map[string]int64
	if err := json.Unmarshal(src, &table); err != nil {
		return nil, fmt.Errorf("schedule: delay offsets: %w", err)
	}
	out := make(map[int32]int64, len(table))
	for k, off := range table {
		level, err := strconv.ParseInt(k, 10, 32)
		if err != nil || level < 1 || level > maxLevels {
			return nil, fmt.Errorf("schedule: delay offsets: bad level %q", k)
		}
		if off < 0 {
			return nil, fmt.Errorf("schedule: delay offsets: level %d has negative offset %d", level, off)
		}
		out[int32(level)] = off
	}
	return out, nil
}
