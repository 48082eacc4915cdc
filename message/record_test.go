package message

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// goldenExt and goldenRecord are a record computed by hand from
// docs/protocol.md §3.1, field by field.
func goldenExt() *Ext {
	return &Ext{
		Message: Message{
			Topic:      "TopicA",
			Flag:       7,
			Properties: map[string]string{"TAGS": "tagA", "KEYS": "k1 k2"},
			Body:       []byte("hello"),
		},
		QueueID:         3,
		QueueOffset:     42,
		CommitLogOffset: 1000,
		SysFlag:         0,
		BornTimestamp:   1700000000000,
		BornHost:        mustAddrPort("192.168.0.10:54321"),
		StoreTimestamp:  1700000000005,
		StoreHost:       mustAddrPort("10.0.0.1:10911"),
		ReconsumeTimes:  2,
	}
}

const goldenRecordHex = `
0000007B                         | TOTALSIZE 123 = 91 + body 5 + topic 6 + props 21
DAA320A7                         | MAGICCODE V1
3610A686                         | BODYCRC crc32("hello") & 0x7FFFFFFF
00000003                         | QUEUEID
00000007                         | FLAG
000000000000002A                 | QUEUEOFFSET 42
00000000000003E8                 | PHYSICALOFFSET 1000
00000000                         | SYSFLAG
0000018BCFE56800                 | BORNTIMESTAMP 1700000000000
C0A8000A 0000D431                | BORNHOST 192.168.0.10:54321
0000018BCFE56805                 | STORETIMESTAMP 1700000000005
0A000001 00002A9F                | STOREHOST 10.0.0.1:10911
00000002                         | RECONSUMETIMES
0000000000000000                 | PREPARED_TRANSACTION_OFFSET
00000005 68656C6C6F              | BODY "hello"
06 546F70696341                  | TOPIC "TopicA"
0015 4B455953 01 6B31206B32 02   | PROPERTIES "KEYS\x01k1 k2\x02" (sorted)
     54414753 01 74616741 02     |            "TAGS\x01tagA\x02"
`

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "|"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line)
	}
	return b.String()
}

func TestAppendRecordGolden(t *testing.T) {
	want := hexBytes(t, stripComments(goldenRecordHex))
	got, err := AppendRecord(nil, goldenExt())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding differs from the hand-computed record:\n got %X\nwant %X", got, want)
	}
	if n, err := EncodedSize(goldenExt()); err != nil || n != len(want) {
		t.Fatalf("EncodedSize = %d, %v; want %d", n, err, len(want))
	}
}

func TestGoldenAsGoClientSeesIt(t *testing.T) {
	b := hexBytes(t, stripComments(goldenRecordHex))
	views, err := clientDecode(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(views) != 1 {
		t.Fatalf("client decoded %d messages, want 1", len(views))
	}
	v := views[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"StoreSize", v.StoreSize, int32(123)},
		{"BodyCRC", v.BodyCRC, int32(0x3610A686)},
		{"QueueID", v.QueueID, int32(3)},
		{"Flag", v.Flag, int32(7)},
		{"QueueOffset", v.QueueOffset, int64(42)},
		{"CommitLogOffset", v.CommitLogOffset, int64(1000)},
		{"SysFlag", v.SysFlag, int32(0)},
		{"BornTimestamp", v.BornTimestamp, int64(1700000000000)},
		{"BornHost", v.BornHost, "192.168.0.10:54321"},
		{"StoreTimestamp", v.StoreTimestamp, int64(1700000000005)},
		{"StoreHost", v.StoreHost, "10.0.0.1:10911"},
		{"ReconsumeTimes", v.ReconsumeTimes, int32(2)},
		{"PreparedTransactionOffset", v.PreparedTransactionOffset, int64(0)},
		{"Body", string(v.Body), "hello"},
		{"Topic", v.Topic, "TopicA"},
		{"TAGS", v.Properties["TAGS"], "tagA"},
		{"KEYS", v.Properties["KEYS"], "k1 k2"},
		{"#properties", len(v.Properties), 2},
		{"OffsetMsgID", v.OffsetMsgID, "0A00000100002A9F00000000000003E8"},
		{"OffsetMsgID (ours)", v.OffsetMsgID, OffsetMsgID(goldenExt().StoreHost, 1000)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestDecodeRecordGolden(t *testing.T) {
	b := hexBytes(t, stripComments(goldenRecordHex))
	e, n, err := DecodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(b) {
		t.Fatalf("consumed %d bytes, want %d", n, len(b))
	}
	want := goldenExt()
	want.StoreSize = 123
	want.BodyCRC = 0x3610A686
	equalExt(t, e, want)
	if got := e.MsgID(); got != "0A00000100002A9F00000000000003E8" {
		t.Fatalf("MsgID without UNIQ_KEY = %s", got)
	}
}

// An IPv6 born and store host: sysflag bits 0x10|0x20 set, host fields 20
// bytes, later fields shifted by 12 each.
const goldenV6RecordHex = `
00000083                                   | TOTALSIZE 131 = 91 + 24 + body 0 + topic 1 + props 15
DAA320A7 00000000 00000000 00000000        | MAGIC, BODYCRC(""), QUEUEID, FLAG  -- body "" crc is 0
0000000000000000 0000000000000000          | QUEUEOFFSET, PHYSICALOFFSET
00000031                                   | SYSFLAG compressed|bornV6|storeV6
0000000000000001                           | BORNTIMESTAMP
00000000000000000000000000000001 00000001  | BORNHOST [::1]:1
0000000000000002                           | STORETIMESTAMP
20010DB8000000000000000000000001 00002A9F  | STOREHOST [2001:db8::1]:10911
00000000 0000000000000000                  | RECONSUMETIMES, PREPARED_TRANSACTION_OFFSET
00000000                                   | BODY ""
01 74                                      | TOPIC "t"
000F 554E49515F4B4559 01 4142434445 02     | PROPERTIES "UNIQ_KEY\x01ABCDE\x02"
`

func goldenV6Ext() *Ext {
	return &Ext{
		Message:        Message{Topic: "t", Properties: map[string]string{PropertyUniqKey: "ABCDE"}},
		SysFlag:        SysFlagCompressed,
		BornTimestamp:  1,
		BornHost:       mustAddrPort("[::1]:1"),
		StoreTimestamp: 2,
		StoreHost:      mustAddrPort("[2001:db8::1]:10911"),
	}
}

func TestAppendRecordGoldenV6(t *testing.T) {
	want := hexBytes(t, stripComments(goldenV6RecordHex))
	got, err := AppendRecord(nil, goldenV6Ext())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding differs from the hand-computed record:\n got %X\nwant %X", got, want)
	}
	views, err := clientDecode(got)
	if err != nil || len(views) != 1 {
		t.Fatalf("client decode: %v, %d messages", err, len(views))
	}
	v := views[0]
	if v.BornHost != "::1:1" || v.StoreHost != "2001:db8::1:10911" || v.Topic != "t" ||
		v.StoreTimestamp != 2 || v.MsgID != "ABCDE" || v.SysFlag != 0x31 {
		t.Fatalf("client sees %+v", v)
	}
	wantID := "20010DB800000000000000000000000100002A9F0000000000000000"
	if v.OffsetMsgID != wantID || OffsetMsgID(goldenV6Ext().StoreHost, 0) != wantID {
		t.Fatalf("offset msg id: client %s, ours %s, want %s", v.OffsetMsgID, OffsetMsgID(goldenV6Ext().StoreHost, 0), wantID)
	}
	r := Record(got)
	if r.StoreTimestamp() != 2 || StoreTimestampPos(r.SysFlag()) != 68 || BodySizePos(r.SysFlag()) != 108 {
		t.Fatalf("v6 positions: store ts %d at %d, body at %d", r.StoreTimestamp(), StoreTimestampPos(r.SysFlag()), BodySizePos(r.SysFlag()))
	}
}

func TestRecordRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 70000)
	cases := []struct {
		name string
		ext  Ext
	}{
		{"golden", *goldenExt()},
		{"empty body and properties", Ext{Message: Message{Topic: "T"},
			BornHost: mustAddrPort("1.2.3.4:5"), StoreHost: mustAddrPort("5.6.7.8:9")}},
		{"born v6", Ext{Message: Message{Topic: "T", Body: []byte{0, 1, 2}},
			BornHost: mustAddrPort("[fe80::1]:65535"), StoreHost: mustAddrPort("5.6.7.8:9")}},
		{"store v6", Ext{Message: Message{Topic: "T", Body: []byte{0, 1, 2}},
			BornHost: mustAddrPort("1.2.3.4:0"), StoreHost: mustAddrPort("[2001:db8::2]:10911")}},
		{"both v6 with flags", Ext{Message: Message{Topic: "%RETRY%g", Flag: -1, Body: []byte("b"),
			Properties: map[string]string{PropertyRetryTopic: "T", PropertyDelayLevel: "3", "empty": ""}},
			QueueID: 1, QueueOffset: 1 << 40, CommitLogOffset: 1<<62 + 5,
			SysFlag:       SysFlagCompressed | SysFlagMultiTags | TransactionCommitType | 0x300,
			BornTimestamp: -1, StoreTimestamp: 1 << 50, ReconsumeTimes: 16, PreparedTransactionOffset: 77,
			BornHost: mustAddrPort("[::1]:1"), StoreHost: mustAddrPort("[::2]:2")}},
		{"large body", Ext{Message: Message{Topic: "T", Body: big}}},
		{"max V1 topic", Ext{Message: Message{Topic: strings.Repeat("a", 127)}}},
		{"V2 topic", Ext{Message: Message{Topic: strings.Repeat("b", 128), Body: []byte("v2")},
			StoreHost: mustAddrPort("1.1.1.1:1")}},
		{"unicode", Ext{Message: Message{Topic: "T", Properties: map[string]string{"TAGS": "标签", "KEYS": "ключ"}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.ext
			b, err := AppendRecord([]byte("prefix"), &in)
			if err != nil {
				t.Fatal(err)
			}
			if string(b[:6]) != "prefix" {
				t.Fatal("AppendRecord overwrote dst")
			}
			b = b[6:]
			e, n, err := DecodeRecord(append(b, "trailer"...))
			if err != nil {
				t.Fatal(err)
			}
			if n != len(b) {
				t.Fatalf("consumed %d, want %d", n, len(b))
			}
			want := c.ext
			want.StoreSize = int32(len(b))
			want.BodyCRC = BodyCRC(want.Body)
			want.SysFlag = sysFlagFor(&want)
			want.BornHost = canonHost(want.BornHost)
			want.StoreHost = canonHost(want.StoreHost)
			equalExt(t, e, &want)

			r := Record(b)
			if err := r.Valid(); err != nil {
				t.Fatal(err)
			}
			if r.TotalSize() != want.StoreSize || r.QueueID() != want.QueueID || r.Flag() != want.Flag ||
				r.QueueOffset() != want.QueueOffset || r.PhysicalOffset() != want.CommitLogOffset ||
				r.SysFlag() != want.SysFlag || r.BornTimestamp() != want.BornTimestamp ||
				r.StoreTimestamp() != want.StoreTimestamp || r.ReconsumeTimes() != want.ReconsumeTimes ||
				r.PreparedTransactionOffset() != want.PreparedTransactionOffset || r.BornHost() != want.BornHost ||
				r.StoreHost() != want.StoreHost || r.Topic() != want.Topic || !bytes.Equal(r.Body(), want.Body) ||
				r.BodyCRC() != want.BodyCRC {
				t.Fatalf("Record accessors disagree with %+v", want)
			}
			if err := r.VerifyBodyCRC(); err != nil {
				t.Fatal(err)
			}
			for k, v := range want.Properties {
				if got, ok := r.PropertyBytes(k); !ok || string(got) != v || r.Property(k) != v {
					t.Fatalf("Property(%q) = %q, %v; want %q", k, got, ok, v)
				}
			}
			if _, ok := r.PropertyBytes("absent"); ok {
				t.Fatal("absent property found")
			}
			if len(want.Topic) <= MaxTopicLengthV1 {
				if r.Magic() != MagicCodeV1 {
					t.Fatalf("magic %#x, want V1", r.Magic())
				}
				views, err := clientDecode(b)
				if err != nil || len(views) != 1 || views[0].Topic != want.Topic || !bytes.Equal(views[0].Body, want.Body) ||
					views[0].QueueOffset != want.QueueOffset || views[0].StoreTimestamp != want.StoreTimestamp {
					t.Fatalf("Go client view: %v %+v", err, views)
				}
			} else if r.Magic() != MagicCodeV2 {
				t.Fatalf("magic %#x, want V2", r.Magic())
			}
		})
	}
}

// canonHost is how a host reads back: IPv4-mapped addresses and the zero
// value come back as IPv4.
func canonHost(h netip.AddrPort) netip.AddrPort {
	a := h.Addr()
	if !a.IsValid() {
		return mustAddrPort("0.0.0.0:0")
	}
	return netip.AddrPortFrom(a.Unmap(), h.Port())
}

func TestMappedHostIsWrittenAsIPv4(t *testing.T) {
	e := Ext{Message: Message{Topic: "T"}, BornHost: mustAddrPort("[::ffff:10.1.2.3]:80"), SysFlag: SysFlagBornHostV6}
	b, err := AppendRecord(nil, &e)
	if err != nil {
		t.Fatal(err)
	}
	r := Record(b)
	if r.SysFlag()&SysFlagBornHostV6 != 0 || r.BornHost() != mustAddrPort("10.1.2.3:80") || len(b) != MinRecordSize+1 {
		t.Fatalf("sysflag %#x host %v size %d", r.SysFlag(), r.BornHost(), len(b))
	}
}

func TestRecordSetters(t *testing.T) {
	for _, e := range []*Ext{goldenExt(), goldenV6Ext()} {
		b, err := AppendRecord(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		r := Record(b)
		r.SetQueueOffset(123456789)
		r.SetPhysicalOffset(1 << 33)
		r.SetStoreTimestamp(99)
		r.SetPreparedTransactionOffset(55)
		got, _, err := DecodeRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		want := *e
		want.QueueOffset, want.CommitLogOffset, want.StoreTimestamp, want.PreparedTransactionOffset = 123456789, 1<<33, 99, 55
		want.StoreSize, want.BodyCRC, want.SysFlag = int32(len(b)), BodyCRC(e.Body), sysFlagFor(e)
		equalExt(t, got, &want)
	}
	// Setters on a too-short view change nothing and do not panic.
	short := Record(make([]byte, 10))
	short.SetQueueOffset(1)
	short.SetPhysicalOffset(1)
	short.SetStoreTimestamp(1)
	if !bytes.Equal(short, make([]byte, 10)) {
		t.Fatal("setter wrote into a short record")
	}
}

func TestAppendRecordErrors(t *testing.T) {
	cases := []struct {
		name string
		ext  Ext
	}{
		{"empty topic", Ext{}},
		{"topic too long", Ext{Message: Message{Topic: strings.Repeat("a", MaxTopicLength+1)}}},
		{"separator in value", Ext{Message: Message{Topic: "T", Properties: map[string]string{"k": "a\x02b"}}}},
		{"separator in name", Ext{Message: Message{Topic: "T", Properties: map[string]string{"k\x01": "v"}}}},
		{"empty name", Ext{Message: Message{Topic: "T", Properties: map[string]string{"": "v"}}}},
		{"properties too long", Ext{Message: Message{Topic: "T", Properties: map[string]string{"k": strings.Repeat("v", 32765)}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := AppendRecord(dst, &c.ext)
			if err == nil {
				t.Fatal("no error")
			}
			if string(out) != "keep" {
				t.Fatalf("dst changed to %q", out)
			}
			if _, err := EncodedSize(&c.ext); err == nil {
				t.Fatal("EncodedSize: no error")
			}
		})
	}
	// The longest properties that fit are accepted: 1+32764+2 = 32767.
	ok := Ext{Message: Message{Topic: "T", Properties: map[string]string{"k": strings.Repeat("v", 32764)}}}
	if _, err := AppendRecord(nil, &ok); err != nil {
		t.Fatalf("32767 bytes of properties refused: %v", err)
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	good, err := AppendRecord(nil, goldenExt())
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	cases := []struct {
		name string
		b    []byte
		is   error
	}{
		{"empty", nil, ErrShortRecord},
		{"truncated", good[:len(good)-1], ErrBadSize},
		{"shorter than minimum", good[:90], ErrShortRecord},
		{"blank magic", mutate(func(b []byte) []byte { b[4], b[5], b[6], b[7] = 0xCB, 0xD4, 0x31, 0x94; return b }), ErrBadMagic},
		{"zero magic", mutate(func(b []byte) []byte { b[4] = 0; return b }), ErrBadMagic},
		{"total size too big", mutate(func(b []byte) []byte { b[3]++; return append(b, 0) }), ErrBadSize},
		{"total size too small", mutate(func(b []byte) []byte { b[3]--; return b }), ErrBadSize},
		{"negative total size", mutate(func(b []byte) []byte { b[0] = 0x80; return b }), ErrBadSize},
		{"negative body length", mutate(func(b []byte) []byte { b[84] = 0x80; return b }), ErrBadSize},
		{"huge body length", mutate(func(b []byte) []byte { b[84] = 0x7F; return b }), ErrBadSize},
		{"topic length overrun", mutate(func(b []byte) []byte { b[93] = 0xFF; return b }), ErrBadSize},
		{"negative properties length", mutate(func(b []byte) []byte { b[100] = 0xFF; return b }), ErrBadSize},
		{"v6 flag on v4 record", mutate(func(b []byte) []byte { b[39] |= SysFlagBornHostV6; return b }), ErrBadSize},
		{"V2 magic on V1 record", mutate(func(b []byte) []byte { b[7] = 0xAB; return b }), ErrBadSize},
		{"born port out of range", mutate(func(b []byte) []byte { b[52] = 1; return b }), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := append([]byte(nil), c.b...)
			e, n, err := DecodeRecord(c.b)
			if err == nil {
				t.Fatalf("no error; decoded %+v", e)
			}
			if e != nil || n != 0 {
				t.Fatalf("returned %v, %d with error", e, n)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("error %v is not %v", err, c.is)
			}
			if !bytes.Equal(before, c.b) {
				t.Fatal("input modified")
			}
			if Record(c.b).Valid() == nil {
				t.Fatal("Valid accepted it")
			}
		})
	}
}

func TestDecodeRecords(t *testing.T) {
	var body []byte
	exts := []*Ext{goldenExt(), goldenV6Ext(), {Message: Message{Topic: "Z", Body: []byte("z")}}}
	for _, e := range exts {
		var err error
		if body, err = AppendRecord(body, e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := DecodeRecords(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(exts) {
		t.Fatalf("decoded %d records, want %d", len(got), len(exts))
	}
	for i, e := range exts {
		if got[i].Topic != e.Topic || !bytes.Equal(got[i].Body, e.Body) {
			t.Fatalf("record %d: %+v", i, got[i])
		}
	}
	if got, err := DecodeRecords(nil); err != nil || len(got) != 0 {
		t.Fatalf("empty body: %v, %v", got, err)
	}
	if _, err := DecodeRecords(append(body, 0, 0, 0)); err == nil {
		t.Fatal("trailing garbage accepted")
	}
	// Decoded bodies do not alias the input.
	got[2].Body[0] = 'X'
	if bytes.Contains(body, []byte("X")) {
		t.Fatal("decoded body aliases the input")
	}
}

func TestParseRecordTrimsToTotalSize(t *testing.T) {
	b, _ := AppendRecord(nil, goldenExt())
	n := len(b)
	b = append(b, bytes.Repeat([]byte{0xEE}, 50)...)
	r, err := ParseRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(r) != n {
		t.Fatalf("len %d, want %d", len(r), n)
	}
}

func TestAccessorsOnShortInputDoNotPanic(t *testing.T) {
	good, _ := AppendRecord(nil, goldenV6Ext())
	for i := 0; i <= len(good); i++ {
		r := Record(good[:i])
		_ = r.TotalSize() + r.QueueID() + r.Flag() + r.SysFlag() + r.ReconsumeTimes()
		_ = r.QueueOffset() + r.PhysicalOffset() + r.BornTimestamp() + r.StoreTimestamp() + r.PreparedTransactionOffset()
		_, _ = r.BornHost(), r.StoreHost()
		_, _, _ = r.Body(), r.TopicBytes(), r.PropertiesBytes()
		_ = r.Property(PropertyUniqKey)
		if i < len(good) && r.Valid() == nil {
			t.Fatalf("Valid accepted a record cut at %d", i)
		}
	}
}
