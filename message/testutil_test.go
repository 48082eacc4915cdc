package message

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// clientView is what the official Go client (primitive.DecodeMessage)
// extracts from a record. clientDecode below is written from reading that
// function: it walks the fields in order, ignores TOTALSIZE and MAGICCODE,
// reads a 1-byte topic length, picks 4- or 16-byte hosts from sysflag bits
// 0x10/0x20, formats hosts as net.IP.String()+":"+port, keeps a property only
// when splitting the item on 0x01 gives exactly two parts, and builds
// OffsetMsgId from the store host bytes, port and commit-log offset.
type clientView struct {
	StoreSize, BodyCRC, QueueID, Flag, SysFlag, ReconsumeTimes  int32
	QueueOffset, CommitLogOffset, BornTimestamp, StoreTimestamp int64
	PreparedTransactionOffset                                   int64
	BornHost, StoreHost, Topic, OffsetMsgID, MsgID              string
	Body                                                        []byte
	Properties                                                  map[string]string
}

// clientDecode decodes like the Go client, but reports running off the end
// of b instead of silently reading zeros.
func clientDecode(b []byte) ([]clientView, error) {
	var out []clientView
	buf := bytes.NewReader(b)
	read := func(v any) error { return binary.Read(buf, binary.BigEndian, v) }
	next := func(n int) ([]byte, error) {
		if n < 0 || n > buf.Len() {
			return nil, fmt.Errorf("need %d bytes, %d left", n, buf.Len())
		}
		p := make([]byte, n)
		_, err := buf.Read(p)
		return p, err
	}
	for buf.Len() > 0 {
		var v clientView
		var magic, port int32
		var hostBytes []byte
		errs := []error{
			read(&v.StoreSize), read(&magic), read(&v.BodyCRC), read(&v.QueueID), read(&v.Flag),
			read(&v.QueueOffset), read(&v.CommitLogOffset), read(&v.SysFlag), read(&v.BornTimestamp),
		}
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		host := func(v6 bool) (string, error) {
			n := 4
			if v6 {
				n = 16
			}
			h, err := next(n)
			if err != nil {
				return "", err
			}
			if err := read(&port); err != nil {
				return "", err
			}
			hostBytes = h
			return fmt.Sprintf("%s:%d", net.IP(h).String(), port), nil
		}
		var err error
		if v.BornHost, err = host(v.SysFlag&0x10 == 0x10); err != nil {
			return nil, err
		}
		if err := read(&v.StoreTimestamp); err != nil {
			return nil, err
		}
		if v.StoreHost, err = host(v.SysFlag&0x20 == 0x20); err != nil {
			return nil, err
		}
		if err := read(&v.ReconsumeTimes); err != nil {
			return nil, err
		}
		if err := read(&v.PreparedTransactionOffset); err != nil {
			return nil, err
		}
		var bodyLen int32
		if err := read(&bodyLen); err != nil {
			return nil, err
		}
		if v.Body, err = next(int(bodyLen)); err != nil {
			return nil, err
		}
		tl, err := buf.ReadByte()
		if err != nil {
			return nil, err
		}
		topic, err := next(int(tl))
		if err != nil {
			return nil, err
		}
		v.Topic = string(topic)
		var propLen int16
		if err := read(&propLen); err != nil {
			return nil, err
		}
		v.Properties = map[string]string{}
		if propLen > 0 {
			p, err := next(int(propLen))
			if err != nil {
				return nil, err
			}
			for _, item := range bytes.Split(p, []byte{2}) {
				if kv := bytes.Split(item, []byte{1}); len(kv) == 2 {
					v.Properties[string(kv[0])] = string(kv[1])
				}
			}
		}
		var id bytes.Buffer
		id.Write(hostBytes)
		_ = binary.Write(&id, binary.BigEndian, port)
		_ = binary.Write(&id, binary.BigEndian, v.CommitLogOffset)
		v.OffsetMsgID = strings.ToUpper(hex.EncodeToString(id.Bytes()))
		v.MsgID = v.OffsetMsgID
		if u := v.Properties["UNIQ_KEY"]; u != "" {
			v.MsgID = u
		}
		out = append(out, v)
	}
	return out, nil
}

// hexBytes decodes hex with spaces, newlines and | as separators.
func hexBytes(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.NewReplacer(" ", "", "\n", "", "\t", "", "|", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// normalized makes a decoded or hand-built Ext comparable with DeepEqual.
func normalized(e *Ext) Ext {
	c := *e
	if len(c.Body) == 0 {
		c.Body = nil
	}
	if len(c.Properties) == 0 {
		c.Properties = nil
	}
	return c
}

func equalExt(t testing.TB, got, want *Ext) {
	t.Helper()
	g, w := normalized(got), normalized(want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("decoded record differs:\n got %+v\nwant %+v", g, w)
	}
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
