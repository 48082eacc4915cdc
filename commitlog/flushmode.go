package commitlog

import "fmt"

// FlushMode selects when appended records reach stable storage.
type FlushMode int

const (
	// FlushSync fdatasyncs inside StoreLogs before it returns (RocketMQ SYNC_FLUSH).
	// Raft batches entries, so one fdatasync covers a whole batch (group commit).
	FlushSync FlushMode = iota
	// FlushAsync leaves appended bytes in the page cache; a background flusher
	// fdatasyncs every Options.FlushInterval (RocketMQ ASYNC_FLUSH, DLedger parity).
	FlushAsync
)

// String returns the broker.conf spelling of the mode.
func (m FlushMode) String() string {
	switch m {
	case FlushSync:
		return "SYNC_FLUSH"
	case FlushAsync:
		return "ASYNC_FLUSH"
	}
	return fmt.Sprintf("FlushMode(%d)", int(m))
}

// ParseFlushDiskType maps RocketMQ's broker.conf flushDiskType value
// ("SYNC_FLUSH" or "ASYNC_FLUSH") to a FlushMode.
func ParseFlushDiskType(s string) (FlushMode, error) {
	switch s {
	case "SYNC_FLUSH":
		return FlushSync, nil
	case "ASYNC_FLUSH":
		return FlushAsync, nil
	}
	return 0, fmt.Errorf("commitlog: unknown flushDiskType %q (want SYNC_FLUSH or ASYNC_FLUSH)", s)
}
