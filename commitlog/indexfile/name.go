package indexfile

import (
	"fmt"
	"time"
)

// maxNameTime is the last millisecond with a 4-digit year.
var maxNameTime = time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC).UnixMilli()

func clampNameTime(ms int64) int64 {
	return min(max(ms, 0), maxNameTime)
}

// formatName renders ms as yyyyMMddHHmmssSSS in UTC.
func formatName(ms int64) string {
	t := time.UnixMilli(ms).UTC()
	return fmt.Sprintf("%04d%02d%02d%02d%02d%02d%03d", t.Year(), int(t.Month()), t.Day(),
		t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1e6)
}

// parseName accepts exactly what formatName produces.
func parseName(name string) (int64, bool) {
	if len(name) != 17 {
		return 0, false
	}
	var v [7]int
	widths := [7]int{4, 2, 2, 2, 2, 2, 3}
	pos := 0
	for i, w := range widths {
		for j := 0; j < w; j++ {
			c := name[pos]
			if c < '0' || c > '9' {
				return 0, false
			}
			v[i] = v[i]*10 + int(c-'0')
			pos++
		}
	}
	ms := time.Date(v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], v[6]*1e6, time.UTC).UnixMilli()
	if ms < 0 || formatName(ms) != name {
		return 0, false
	}
	return ms, true
}
