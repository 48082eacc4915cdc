package namesrv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/raftmq/raftmq/wire"
)

// Limits on what a REGISTER_BROKER body may describe. They bound the work and
// memory one request can cause and the size of the routes handed to clients
// (a client allocates one queue object per queue number).
const (
	// MaxRegisterBodyBytes is the largest RegisterBrokerBody accepted; the remoting
	// frame limit (16 MiB) already bounds it, this keeps the decoder honest on its own.
	MaxRegisterBodyBytes = 16 << 20
	// MaxTopicNameLen is the longest topic name accepted (%RETRY%/%DLQ% names may
	// reach 255 bytes, docs/protocol.md §6.2).
	MaxTopicNameLen = 255
	// MaxQueueNums is the largest read or write queue count accepted per topic.
	MaxQueueNums = 16384
)

// DecodeRegisterBrokerBody parses and validates an uncompressed RegisterBrokerBody.
// An empty body means "no topic information" (Java does the same) and yields a
// zero body. Every topic name, queue count and permission is checked so that
// nothing a client cannot handle reaches a route.
func DecodeRegisterBrokerBody(b []byte) (*wire.RegisterBrokerBody, error) {
	body := &wire.RegisterBrokerBody{}
	if len(bytes.TrimSpace(b)) == 0 {
		return body, nil
	}
	if len(b) > MaxRegisterBodyBytes {
		return nil, fmt.Errorf("register body of %d bytes exceeds %d", len(b), MaxRegisterBodyBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(body); err != nil {
		return nil, fmt.Errorf("register body: %w", err)
	}
	if dec.More() {
		return nil, errors.New("register body: trailing data after the JSON object")
	}
	for name, tc := range body.TopicConfigSerializeWrapper.TopicConfigTable {
		if err := ValidateTopicName(name); err != nil {
			return nil, err
		}
		if tc.TopicName != "" && tc.TopicName != name {
			return nil, fmt.Errorf("topic %q: topicName %q differs from its table key", name, tc.TopicName)
		}
		if tc.ReadQueueNums < 0 || tc.ReadQueueNums > MaxQueueNums || tc.WriteQueueNums < 0 || tc.WriteQueueNums > MaxQueueNums {
			return nil, fmt.Errorf("topic %q: queue numbers %d/%d outside 0..%d", name, tc.ReadQueueNums, tc.WriteQueueNums, MaxQueueNums)
		}
		if tc.Perm&^wire.PermAll != 0 || tc.Perm < 0 {
			return nil, fmt.Errorf("topic %q: perm %d has unknown bits", name, tc.Perm)
		}
	}
	return body, nil
}

// ValidateTopicName applies RocketMQ's topic charset ^[%|a-zA-Z0-9_-]+$ and
// MaxTopicNameLen.
func ValidateTopicName(name string) error {
	if name == "" {
		return errors.New("empty topic name")
	}
	if len(name) > MaxTopicNameLen {
		return fmt.Errorf("topic name of %d bytes exceeds %d", len(name), MaxTopicNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c == '%' || c == '|' || c == '_' || c == '-' ||
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if !ok {
			return fmt.Errorf("topic name %q: character %q not allowed", name, c)
		}
	}
	return nil
}

// ValidateBrokerAddr checks that addr is host:port with a numeric port and none of
// the characters that would corrupt the Go client's hand-rolled brokerAddrs parser
// (whitespace, ',', '"', ':' in the host part is allowed only inside [IPv6]).
func ValidateBrokerAddr(addr string) error {
	if addr == "" {
		return errors.New("empty broker address")
	}
	if len(addr) > 255 {
		return fmt.Errorf("broker address of %d bytes is too long", len(addr))
	}
	// Control characters too: the Go client's route parser trims them, so a
	// route would name another address than the one registered.
	if strings.ContainsAny(addr, ",\"{}\\") || strings.ContainsFunc(addr, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
		return fmt.Errorf("broker address %q contains a forbidden character", addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("broker address %q: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("broker address %q has no host", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("broker address %q: bad port", addr)
	}
	return nil
}

// validateName checks a cluster or broker name: non-empty, bounded, printable,
// without characters that break JSON-embedded parsing on the client side.
func validateName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("empty %s", kind)
	}
	if len(name) > 255 {
		return fmt.Errorf("%s of %d bytes is too long", kind, len(name))
	}
	for _, r := range name {
		if r < 0x21 || r == 0x7f || r == '"' || r == ',' || r == '\\' || r == ':' || r == '{' || r == '}' {
			return fmt.Errorf("%s %q contains a forbidden character", kind, name)
		}
	}
	return nil
}

// decodeDataVersion parses a DataVersion body (QUERY_DATA_VERSION).
func decodeDataVersion(b []byte, dv *wire.DataVersion) error {
	if len(b) > 4096 {
		return fmt.Errorf("wire.DataVersion body of %d bytes is too long", len(b))
	}
	return json.Unmarshal(b, dv)
}
