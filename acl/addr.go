package acl

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// AddrMatcher is a parsed whiteRemoteAddress: the addresses an account may be
// used from. The zero value (an empty pattern) matches every address.
type AddrMatcher struct {
	any      bool
	prefixes []netip.Prefix  // exact addresses (as /32 or /128) and CIDRs
	octets   [][4]octetRange // IPv4 patterns such as 192.168.*.* or 10.0.1-20.*
	pattern  string          // as written, for messages
}

type octetRange struct{ lo, hi uint8 }

// ParseAddrMatcher parses RocketMQ's whiteRemoteAddress forms: "" or "*"
// (anywhere), an address, a comma-separated list, 192.168.1.{1,2,3}, IPv4
// octet patterns with * and ranges (192.168.*, 10.1.1-100.*), and, beyond
// RocketMQ, CIDR prefixes (10.0.0.0/8, fd00::/8).
func ParseAddrMatcher(s string) (AddrMatcher, error) {
	s = strings.TrimSpace(s)
	m := AddrMatcher{pattern: s}
	if s == "" || s == "*" || s == "*.*.*.*" || s == "*:*:*:*:*:*:*:*" {
		m.any = true
		return m, nil
	}
	var items []string
	if open := strings.IndexByte(s, '{'); open >= 0 && strings.HasSuffix(s, "}") {
		prefix := s[:open]
		for _, last := range strings.Split(s[open+1:len(s)-1], ",") {
			items = append(items, prefix+strings.TrimSpace(last))
		}
	} else {
		items = strings.Split(s, ",")
	}
	for _, it := range items {
		it = strings.TrimSpace(it)
		if it == "" {
			return AddrMatcher{}, fmt.Errorf("empty address in %q", s)
		}
		if p, err := netip.ParsePrefix(it); err == nil {
			m.prefixes = append(m.prefixes, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(it); err == nil {
			m.prefixes = append(m.prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		o, err := parseOctets(it)
		if err != nil {
			return AddrMatcher{}, err
		}
		m.octets = append(m.octets, o)
	}
	return m, nil
}

// parseOctets parses an IPv4 pattern; fewer than four octets are allowed when
// the last one given is *, which then covers the rest (192.168.*).
func parseOctets(s string) ([4]octetRange, error) {
	var out [4]octetRange
	parts := strings.Split(s, ".")
	if len(parts) > 4 || (len(parts) < 4 && parts[len(parts)-1] != "*") {
		return out, fmt.Errorf("address pattern %q: want four octets, or a trailing *", s)
	}
	for i := range out {
		if i >= len(parts) {
			out[i] = octetRange{0, 255}
			continue
		}
		p := parts[i]
		if p == "*" {
			out[i] = octetRange{0, 255}
			continue
		}
		lo, hi, isRange := strings.Cut(p, "-")
		a, err1 := strconv.ParseUint(lo, 10, 8)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 8)
		}
		if err1 != nil || err2 != nil || a > b {
			return out, fmt.Errorf("address pattern %q: bad octet %q", s, p)
		}
		out[i] = octetRange{uint8(a), uint8(b)}
	}
	return out, nil
}

// Match reports whether addr (an IP, or host:port as Conn.RemoteAddr gives)
// is allowed. An unparsable address matches only a matcher that allows all.
func (m AddrMatcher) Match(addr string) bool {
	if m.any || m.pattern == "" {
		return true
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return false
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap()
	for _, p := range m.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	if ip.Is4() {
		b := ip.As4()
		for _, o := range m.octets {
			if o[0].has(b[0]) && o[1].has(b[1]) && o[2].has(b[2]) && o[3].has(b[3]) {
				return true
			}
		}
	}
	return false
}

func (r octetRange) has(b uint8) bool { return b >= r.lo && b <= r.hi }

// String returns the pattern as written.
func (m AddrMatcher) String() string { return m.pattern }
