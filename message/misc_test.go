package message

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEncodeDecodeProperties(t *testing.T) {
	p := map[string]string{"TAGS": "a", "KEYS": "k1 k2", "UNIQ_KEY": "ID"}
	s := EncodeProperties(p)
	if want := "KEYS\x01k1 k2\x02TAGS\x01a\x02UNIQ_KEY\x01ID\x02"; s != want {
		t.Fatalf("EncodeProperties = %q, want %q", s, want)
	}
	if got := DecodeProperties(s); !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip = %v", got)
	}
	if EncodeProperties(nil) != "" {
		t.Fatal("nil map encodes to non-empty")
	}
	// More properties than the on-stack key buffer holds.
	many := map[string]string{}
	for i := range 100 {
		many[strings.Repeat("k", i+1)] = "v"
	}
	if got := DecodeProperties(EncodeProperties(many)); !reflect.DeepEqual(got, many) {
		t.Fatal("100 properties did not round-trip")
	}
}

func TestDecodePropertiesTolerant(t *testing.T) {
	cases := []struct {
		in   string
		want map[string]string
	}{
		{"", map[string]string{}},
		{"a\x01b", map[string]string{"a": "b"}},                         // no trailing separator
		{"a\x01b\x02\x02\x02", map[string]string{"a": "b"}},             // extra separators
		{"\x02a\x01b\x02", map[string]string{"a": "b"}},                 // leading separator
		{"noValue\x02a\x01b\x02", map[string]string{"a": "b"}},          // item without \x01
		{"\x01v\x02a\x01b\x02", map[string]string{"a": "b"}},            // empty name dropped
		{"a\x01\x02", map[string]string{"a": ""}},                       // empty value kept
		{"a\x01b\x01c\x02", map[string]string{"a": "b\x01c"}},           // split at first \x01
		{"a\x011\x02a\x012\x02", map[string]string{"a": "2"}},           // last wins
		{"\xff\xfe\x01\x00\x02", map[string]string{"\xff\xfe": "\x00"}}, // bytes kept as they are
	}
	for _, c := range cases {
		if got := DecodeProperties(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("DecodeProperties(%q) = %q, want %q", c.in, got, c.want)
		}
		v, ok := lookupProperty([]byte(c.in), "a")
		if w, wok := c.want["a"]; ok != wok || string(v) != w {
			t.Errorf("lookupProperty(%q, a) = %q, %v; want %q, %v", c.in, v, ok, w, wok)
		}
	}
}

// goBatchItemHex is one item as the Go client's Message.Marshal writes it.
const goBatchItemHex = `
0000001F 00000000 00000000 | TOTALSIZE 31 = 22 + 2 + 7, MAGICCODE 0, BODYCRC 0
00000001                   | FLAG
00000002 6162              | BODY "ab"
0007 4B455953 01 6B 02     | PROPERTIES "KEYS\x01k\x02"
`

func TestBatchGolden(t *testing.T) {
	item := hexBytes(t, stripComments(goBatchItemHex))
	msgs := []Message{{Flag: 1, Body: []byte("ab"), Properties: map[string]string{"KEYS": "k"}}}
	got, err := EncodeBatch(msgs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, item) {
		t.Fatalf("EncodeBatch = %X, want %X", got, item)
	}
	dec, err := DecodeBatch(append(append([]byte(nil), item...), item...))
	if err != nil {
		t.Fatal(err)
	}
	if len(dec) != 2 || !reflect.DeepEqual(dec[0], msgs[0]) || !reflect.DeepEqual(dec[1], msgs[0]) {
		t.Fatalf("DecodeBatch = %+v", dec)
	}
}

func TestBatchRoundTrip(t *testing.T) {
	msgs := []Message{
		{Flag: 0, Body: []byte("first"), Properties: map[string]string{"TAGS": "a", "UNIQ_KEY": "X"}},
		{Flag: -5, Body: nil, Properties: map[string]string{}},
		{Flag: 9, Body: bytes.Repeat([]byte{0xAB}, 5000), Properties: map[string]string{"KEYS": "1 2 3"}},
	}
	b, err := EncodeBatch(msgs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(msgs) {
		t.Fatalf("%d messages, want %d", len(got), len(msgs))
	}
	for i := range msgs {
		if got[i].Flag != msgs[i].Flag || !bytes.Equal(got[i].Body, msgs[i].Body) ||
			!reflect.DeepEqual(got[i].Properties, msgs[i].Properties) || got[i].Topic != "" {
			t.Fatalf("message %d = %+v, want %+v", i, got[i], msgs[i])
		}
	}
	got[0].Body[0] = 'X'
	if bytes.Contains(b, []byte("Xirst")) {
		t.Fatal("decoded body aliases the input")
	}
	if _, err := EncodeBatch([]Message{{Properties: map[string]string{"a": "\x02"}}}); err == nil {
		t.Fatal("EncodeBatch accepted a separator in a value")
	}
}

func TestDecodeBatchErrors(t *testing.T) {
	item := hexBytes(t, stripComments(goBatchItemHex))
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), item...)) }
	cases := map[string][]byte{
		"empty":                    nil,
		"short":                    item[:21],
		"truncated":                item[:30],
		"trailing bytes":           append(append([]byte(nil), item...), 0, 0, 0),
		"total size too small":     mutate(func(b []byte) []byte { b[3] = 21; return b }),
		"total size too big":       mutate(func(b []byte) []byte { b[3] = 32; return append(b, 0) }),
		"negative total size":      mutate(func(b []byte) []byte { b[0] = 0x80; return b }),
		"body length overrun":      mutate(func(b []byte) []byte { b[19] = 0x20; return b }),
		"negative body length":     mutate(func(b []byte) []byte { b[16] = 0xFF; return b }),
		"properties length short":  mutate(func(b []byte) []byte { b[23] = 6; return b }),
		"negative properties size": mutate(func(b []byte) []byte { b[22] = 0xFF; return b }),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if got, err := DecodeBatch(b); err == nil {
				t.Fatalf("no error; decoded %+v", got)
			}
		})
	}
}

// emptyBatch is n items with no body and no properties: the cheapest bytes
// that decode into the most messages.
func emptyBatch(t testing.TB, n int) []byte {
	b, err := EncodeBatch(make([]Message, n))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeBatchRefusesAmplificationBeforeAllocating(t *testing.T) {
	// The probe of issue 15: ~15 MiB of 700 000 empty items.
	probe := emptyBatch(t, 700_000)
	for name, limits := range map[string]BatchLimits{
		"body over MaxBytes":  DefaultBatchLimits(),
		"items over MaxItems": {MaxBytes: 16 << 20, MaxItems: DefaultBatchMaxItems},
	} {
		t.Run(name, func(t *testing.T) {
			var err error
			allocs := testing.AllocsPerRun(3, func() { _, err = DecodeBatchLimited(probe, limits) })
			if !errors.Is(err, ErrBatchTooLarge) {
				t.Fatalf("err = %v, want ErrBatchTooLarge", err)
			}
			if allocs > 10 { // the error value only, not one per item
				t.Fatalf("refusing cost %v allocations", allocs)
			}
		})
	}
	// A batch whose last item is malformed is refused as cheaply: framing is
	// checked for every item before any is decoded.
	bad := append(emptyBatch(t, 5000), 0, 0, 0)
	var err error
	if allocs := testing.AllocsPerRun(3, func() { _, err = DecodeBatch(bad) }); err == nil || errors.Is(err, ErrBatchTooLarge) || allocs > 10 {
		t.Fatalf("malformed tail: err %v after %v allocations", err, allocs)
	}
}

func TestDecodeBatchLimitsAreInclusive(t *testing.T) {
	b := emptyBatch(t, 100)
	if msgs, err := DecodeBatchLimited(b, BatchLimits{MaxBytes: len(b), MaxItems: 100}); err != nil || len(msgs) != 100 {
		t.Fatalf("batch exactly at its limits: %d messages, %v", len(msgs), err)
	}
	if _, err := DecodeBatchLimited(b, BatchLimits{MaxBytes: len(b) - 1}); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("one byte over MaxBytes: %v", err)
	}
	if _, err := DecodeBatchLimited(b, BatchLimits{MaxItems: 99}); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("one item over MaxItems: %v", err)
	}
	if msgs, err := DecodeBatchLimited(b, BatchLimits{}); err != nil || len(msgs) != 100 {
		t.Fatalf("zero limits are off: %d messages, %v", len(msgs), err)
	}
}

func TestOffsetMsgID(t *testing.T) {
	cases := []struct {
		host netip.AddrPort
		off  int64
		id   string
	}{
		{mustAddrPort("10.0.0.1:10911"), 1234, "0A00000100002A9F00000000000004D2"},
		{mustAddrPort("255.255.255.255:65535"), -1, "FFFFFFFF0000FFFFFFFFFFFFFFFFFFFF"},
		{mustAddrPort("[2001:db8::1]:10911"), 1 << 40, "20010DB800000000000000000000000100002A9F0000010000000000"},
	}
	for _, c := range cases {
		if got := OffsetMsgID(c.host, c.off); got != c.id {
			t.Errorf("OffsetMsgID(%v, %d) = %s, want %s", c.host, c.off, got, c.id)
		}
		for _, id := range []string{c.id, strings.ToLower(c.id)} {
			h, off, err := ParseOffsetMsgID(id)
			if err != nil || h != c.host || off != c.off {
				t.Errorf("ParseOffsetMsgID(%s) = %v, %d, %v", id, h, off, err)
			}
		}
	}
	for _, bad := range []string{"", "0A00000100002A9F00000000000004D", "0A00000100002A9F00000000000004D2A",
		"ZZ00000100002A9F00000000000004D2", "0A00000100012A9F00000000000004D2", "0A000001FFFFFFFF00000000000004D2"} {
		if _, _, err := ParseOffsetMsgID(bad); err == nil {
			t.Errorf("ParseOffsetMsgID(%q) accepted", bad)
		}
	}
}

func TestUniqIDGolden(t *testing.T) {
	now := time.Date(2026, 11, 3, 0, 0, 1, 500e6, time.UTC)
	g := NewUniqIDGeneratorClock(netip.MustParseAddr("192.168.0.10"), 1234, func() time.Time { return now })
	// ip C0A8000A, pid 04D2, class loader hash 0, 2 days + 1.5 s = 172801500 ms, counter.
	for i, want := range []string{"C0A8000A04D2000000000A4CBDDC0000", "C0A8000A04D2000000000A4CBDDC0001"} {
		if got := g.Next(); got != want {
			t.Fatalf("id %d = %s, want %s", i, got, want)
		}
	}
	now = time.Date(2026, 12, 1, 0, 0, 1, 500e6, time.UTC) // new month: the span restarts
	if got, want := g.Next(), "C0A8000A04D200000000000005DC0002"; got != want {
		t.Fatalf("after month change = %s, want %s", got, want)
	}
	v6 := NewUniqIDGeneratorClock(netip.MustParseAddr("::1"), 70000, func() time.Time { return now }).Next()
	if want := "00000000000000000000000000000001" + "1170" + "00000000" + "000005DC" + "0000"; v6 != want {
		t.Fatalf("IPv6 id = %s, want %s", v6, want)
	}
}

func TestUniqIDConcurrentUnique(t *testing.T) {
	g := NewUniqIDGenerator(netip.MustParseAddr("10.0.0.1"), 1)
	const workers, each = 8, 2000 // 16000 < 65536: the counter alone keeps them apart
	ids := make(chan string, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				ids <- g.Next()
			}
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if len(id) != 32 || strings.ToUpper(id) != id {
			t.Fatalf("malformed id %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
}

func TestJavaStringHashCode(t *testing.T) {
	// Values from java.lang.String.hashCode (UTF-16 code units, int32 wrap).
	cases := map[string]int32{
		"": 0, "a": 97, "hello": 99162322, "TagA": 2598919, "polygenelubricants": -2147483648,
		"标签": 857175, "😀": 1772899, "a😀b": 57849694, "Aa": 2112, "BB": 2112,
	}
	for s, want := range cases {
		if got := JavaStringHashCode(s); got != want {
			t.Errorf("JavaStringHashCode(%q) = %d, want %d", s, got, want)
		}
		if got := javaHashBytes([]byte(s)); got != want {
			t.Errorf("javaHashBytes(%q) = %d, want %d", s, got, want)
		}
		rec, err := AppendRecord(nil, &Ext{Message: Message{Topic: "T", Properties: map[string]string{PropertyTags: s}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := Record(rec).TagsCode(); got != int64(want) || got != TagsHashCode(s) {
			t.Errorf("Record.TagsCode with TAGS %q = %d, want %d", s, got, want)
		}
	}
	for _, s := range []string{"\xff", "a\xc3", "\xed\xa0\x80", "\U0010FFFF\xf4\x90\x80\x80"} {
		if JavaStringHashCode(s) != javaHashBytes([]byte(s)) {
			t.Errorf("string and bytes hashes differ for %q", s)
		}
	}
	if TagsHashCode("") != 0 || TagsHashCode("TagA") != 2598919 || TagsHashCode("polygenelubricants") != -2147483648 {
		t.Fatal("TagsHashCode")
	}
}

func TestValidateNames(t *testing.T) {
	for _, ok := range []string{"TopicTest", "%RETRY%group", "a|b", "A-z_0-9", strings.Repeat("t", 127)} {
		if err := ValidateTopic(ok); err != nil {
			t.Errorf("ValidateTopic(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "has space", "dot.ted", "slash/", "ü", strings.Repeat("t", 128), "a\x00"} {
		if err := ValidateTopic(bad); err == nil {
			t.Errorf("ValidateTopic(%q) accepted", bad)
		}
	}
	if err := ValidateGroup(strings.Repeat("g", 255)); err != nil {
		t.Errorf("255-char group refused: %v", err)
	}
	for _, bad := range []string{"", strings.Repeat("g", 256), "g g"} {
		if err := ValidateGroup(bad); err == nil {
			t.Errorf("ValidateGroup(%q) accepted", bad)
		}
	}
}

func TestMessageHelpers(t *testing.T) {
	var m Message
	if m.Property("x") != "" || m.Tags() != "" || m.Keys() != nil {
		t.Fatal("zero message has properties")
	}
	m.SetProperty(PropertyKeys, " k1  k2 k3 ")
	m.SetProperty(PropertyTags, "T")
	if !reflect.DeepEqual(m.Keys(), []string{"k1", "k2", "k3"}) || m.Tags() != "T" {
		t.Fatalf("Keys %q Tags %q", m.Keys(), m.Tags())
	}
	m.RemoveProperty(PropertyTags)
	if m.Tags() != "" {
		t.Fatal("RemoveProperty")
	}
	e := Ext{Message: m, StoreHost: mustAddrPort("10.0.0.1:10911"), CommitLogOffset: 1234}
	if e.MsgID() != "0A00000100002A9F00000000000004D2" {
		t.Fatal(e.MsgID())
	}
	e.SetProperty(PropertyUniqKey, "U")
	if e.MsgID() != "U" {
		t.Fatal(e.MsgID())
	}
	if SetTransactionType(SysFlagCompressed|TransactionPreparedType, TransactionCommitType) != SysFlagCompressed|TransactionCommitType ||
		TransactionType(SysFlagCompressed|TransactionRollbackType) != TransactionRollbackType {
		t.Fatal("transaction type helpers")
	}
}
