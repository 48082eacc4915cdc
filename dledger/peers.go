package dledger

import (
	"fmt"
	"net"
	"strings"
)

// Peer is one member of a broker group: its DLedger self id and its Raft
// address (host:port).
type Peer struct {
	ID, Addr string
}

// ParsePeers parses RocketMQ's dLegerPeers value,
// "n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913".
func ParsePeers(s string) ([]Peer, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("dledger: empty peer list")
	}
	var peers []Peer
	seenID := map[string]bool{}
	seenAddr := map[string]bool{}
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "-")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("dledger: peer %q: want id-host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("dledger: peer %q: %v", part, err)
		}
		if seenID[id] {
			return nil, fmt.Errorf("dledger: duplicate peer id %q", id)
		}
		if seenAddr[addr] {
			return nil, fmt.Errorf("dledger: duplicate peer address %q", addr)
		}
		seenID[id], seenAddr[addr] = true, true
		peers = append(peers, Peer{ID: id, Addr: addr})
	}
	if len(peers) == 0 {
		return nil, fmt.Errorf("dledger: empty peer list")
	}
	return peers, nil
}

// FormatPeers is the inverse of ParsePeers.
func FormatPeers(peers []Peer) string {
	parts := make([]string, len(peers))
	for i, p := range peers {
		parts[i] = p.ID + "-" + p.Addr
	}
	return strings.Join(parts, ";")
}
