package message

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// OffsetMsgID returns the broker message id of the record at commitLogOffset
// stored by storeHost: upper-case hex of ip (4 or 16 bytes), port (int32) and
// offset (int64), i.e. 32 hex characters for IPv4 and 56 for IPv6.
func OffsetMsgID(storeHost netip.AddrPort, commitLogOffset int64) string {
	var buf [28]byte
	b := appendHost(buf[:0], storeHost)
	b = binary.BigEndian.AppendUint64(b, uint64(commitLogOffset))
	return strings.ToUpper(hex.EncodeToString(b))
}

// ParseOffsetMsgID parses an id made by OffsetMsgID (either case). It
// accepts exactly 32 (IPv4) or 56 (IPv6) hex characters and a port in 0..65535.
func ParseOffsetMsgID(id string) (netip.AddrPort, int64, error) {
	var ipLen int
	switch len(id) {
	case 32:
		ipLen = 4
	case 56:
		ipLen = 16
	default:
		return netip.AddrPort{}, 0, fmt.Errorf("message: offset message id %q: %d characters, want 32 or 56", truncate(id), len(id))
	}
	var buf [28]byte
	b := buf[:len(id)/2]
	if _, err := hex.Decode(b, []byte(id)); err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("message: offset message id %q: %w", truncate(id), err)
	}
	addr, _ := netip.AddrFromSlice(b[:ipLen])
	port := int32(binary.BigEndian.Uint32(b[ipLen:]))
	if port < 0 || port > 0xFFFF {
		return netip.AddrPort{}, 0, fmt.Errorf("message: offset message id %q: port %d out of range", id, port)
	}
	off := int64(binary.BigEndian.Uint64(b[ipLen+4:]))
	return netip.AddrPortFrom(addr, uint16(port)), off, nil
}

// truncate keeps error messages short for hostile ids.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// UniqIDGenerator makes client message ids (UNIQ_KEY) compatible with Java's
// MessageClientIDSetter: hex of ip (4 or 16 bytes), pid (int16), a class
// loader hash (0 here), milliseconds since the start of the current month
// (int32) and a counter (int16), all upper case. It is goroutine-safe. Make
// one with NewUniqIDGenerator; the zero value is not usable.
type UniqIDGenerator struct {
	now    func() time.Time
	prefix string // hex of ip, pid and class loader hash

	mu         sync.Mutex
	counter    uint16
	monthStart time.Time
	nextMonth  time.Time
}

// NewUniqIDGenerator returns a generator for a client at ip with process id
// pid. An invalid ip is written as 0.0.0.0.
func NewUniqIDGenerator(ip netip.Addr, pid int) *UniqIDGenerator {
	return NewUniqIDGeneratorClock(ip, pid, time.Now)
}

// NewUniqIDGeneratorClock is NewUniqIDGenerator with a clock, for tests.
func NewUniqIDGeneratorClock(ip netip.Addr, pid int, now func() time.Time) *UniqIDGenerator {
	var buf [22]byte
	b := appendHost(buf[:0], netip.AddrPortFrom(ip, 0))
	b = b[:len(b)-4] // drop the port appendHost writes
	b = binary.BigEndian.AppendUint16(b, uint16(pid))
	b = binary.BigEndian.AppendUint32(b, 0)
	return &UniqIDGenerator{now: now, prefix: strings.ToUpper(hex.EncodeToString(b))}
}

// Next returns a new id.
func (g *UniqIDGenerator) Next() string {
	g.mu.Lock()
	now := g.now()
	if !now.Before(g.nextMonth) {
		y, m, _ := now.Date()
		g.monthStart = time.Date(y, m, 1, 0, 0, 0, 0, now.Location())
		g.nextMonth = g.monthStart.AddDate(0, 1, 0)
	}
	diff := now.Sub(g.monthStart).Milliseconds()
	c := g.counter // the first id carries counter 0, as in Java
	g.counter++
	g.mu.Unlock()

	var buf [6]byte
	binary.BigEndian.PutUint32(buf[:], uint32(int32(diff)))
	binary.BigEndian.PutUint16(buf[4:], c)
	var out [6 * 2]byte
	hex.Encode(out[:], buf[:])
	return g.prefix + strings.ToUpper(string(out[:]))
}
