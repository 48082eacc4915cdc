package remoting

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"runtime"
	"strings"
	"testing"
)

// goldenJSONFrame is the Go client frame of docs/protocol.md §1.1.
var goldenJSONFrame = append(append([]byte{0, 0, 0, 0x65, 0, 0, 0, 0x5F},
	`{"code":10,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"a":"1"}}`...), 'x', 'y')

func TestJSONGoldenEncode(t *testing.T) {
	cmd := &Command{Code: 10, Language: "GO", Version: 317, Opaque: 1,
		ExtFields: map[string]string{"a": "1"}, Body: []byte("xy")}
	got, err := cmd.MarshalFrame(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, goldenJSONFrame) {
		t.Fatalf("frame mismatch\n got %q\nwant %q", got, goldenJSONFrame)
	}
}

func TestJSONGoldenDecode(t *testing.T) {
	cmd, err := ReadCommand(bufio.NewReader(bytes.NewReader(goldenJSONFrame)), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := &Command{Code: 10, Language: "GO", Version: 317, Opaque: 1,
		ExtFields: map[string]string{"a": "1"}, Body: []byte("xy")}
	assertSameCommand(t, cmd, want)
}

// goldenBinaryFrame: code 10, JAVA, version 401, opaque 7, flag 2, remark "hi",
// ext {"a":"1"}, body "xy", laid out by hand from docs/protocol.md §1.3.
var goldenBinaryFrame = []byte{
	0, 0, 0, 4 + 31 + 2, // frame length
	1, 0, 0, 31, // serialize type 1, header length 31
	0, 10, // code
	0,       // language JAVA
	1, 0x91, // version 401
	0, 0, 0, 7, // opaque
	0, 0, 0, 2, // flag
	0, 0, 0, 2, 'h', 'i', // remark
	0, 0, 0, 8, // ext block length
	0, 1, 'a', 0, 0, 0, 1, '1',
	'x', 'y',
}

func TestBinaryGolden(t *testing.T) {
	cmd := &Command{Code: 10, Language: "JAVA", Version: 401, Opaque: 7, Flag: 2, Remark: "hi",
		ExtFields: map[string]string{"a": "1"}, Body: []byte("xy"), SerializeType: SerializeRocketMQ}
	got, err := cmd.MarshalFrame(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, goldenBinaryFrame) {
		t.Fatalf("frame mismatch\n got %v\nwant %v", got, goldenBinaryFrame)
	}
	dec, err := DecodeFrame(goldenBinaryFrame[4:])
	if err != nil {
		t.Fatal(err)
	}
	assertSameCommand(t, dec, cmd)
}

func TestRoundTripBothSerializations(t *testing.T) {
	for _, st := range []SerializeType{SerializeJSON, SerializeRocketMQ} {
		cmd := sendRequest(st)
		cmd.Remark = "ünïcode \"quoted\" \\ \n\t\x01"
		frame, err := cmd.MarshalFrame(nil)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := ReadCommand(bufio.NewReader(bytes.NewReader(frame)), 0)
		if err != nil {
			t.Fatalf("type %d: %v", st, err)
		}
		assertSameCommand(t, dec, cmd)
	}
}

func TestFrameBuffersMatchesMarshalFrame(t *testing.T) {
	cmd := sendRequest(SerializeJSON)
	cmd.ExtFields = map[string]string{"topic": "t"} // one key: map order is random
	cmd.BodyParts = [][]byte{[]byte("part1"), nil, []byte("part-two")}
	frame, err := cmd.MarshalFrame(nil)
	if err != nil {
		t.Fatal(err)
	}
	bufs, err := cmd.FrameBuffers()
	if err != nil {
		t.Fatal(err)
	}
	if got := bytes.Join(bufs, nil); !bytes.Equal(got, frame) {
		t.Fatal("FrameBuffers and MarshalFrame differ")
	}
	// The parts are referenced, not copied.
	if &bufs[len(bufs)-1][0] != &cmd.BodyParts[2][0] {
		t.Fatal("body part was copied")
	}
	dec, err := DecodeFrame(frame[4:])
	if err != nil {
		t.Fatal(err)
	}
	if want := string(cmd.Body) + "part1part-two"; string(dec.Body) != want {
		t.Fatalf("body %q, want %q", dec.Body, want)
	}
}

// Our JSON must be what encoding/json reads, including awkward strings.
func TestJSONEscapingAgreesWithEncodingJSON(t *testing.T) {
	values := []string{"", "plain", "q\"uote", "back\\slash", "ctl\x00\x01\x02\x1f\x7f", "nl\n\r\t\b\f",
		"ünïcødé 中文 😀", "bad\xff\xfeutf8", "\u2028\u2029", "</script>&"}
	ext := map[string]string{}
	for i, v := range values {
		ext[v+string(rune('a'+i))] = v
	}
	cmd := &Command{Code: 1, Remark: "r\x01", ExtFields: ext}
	frame, err := cmd.MarshalFrame(nil)
	if err != nil {
		t.Fatal(err)
	}
	header := frame[8:]
	var std struct {
		Code      int32             `json:"code"`
		Remark    string            `json:"remark"`
		ExtFields map[string]string `json:"extFields"`
	}
	if err := json.Unmarshal(header, &std); err != nil {
		t.Fatalf("encoding/json rejects our header %q: %v", header, err)
	}
	want := map[string]string{}
	for k, v := range ext {
		want[validUTF8(k)] = validUTF8(v)
	}
	if !maps.Equal(std.ExtFields, want) {
		t.Fatalf("encoding/json read %q, want %q", std.ExtFields, want)
	}
	// And our decoder reads what encoding/json writes.
	stdFrame, _ := json.Marshal(std)
	got := &Command{}
	if err := decodeJSONHeader(stdFrame, got); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got.ExtFields, want) || got.Remark != "r\x01" {
		t.Fatalf("decoded %q, want %q", got.ExtFields, want)
	}
	if bytes.ContainsAny(header, " \n") && !bytes.Contains(header, []byte("ünï")) {
		t.Fatal("header is not compact")
	}
}

func TestJSONDecodeTolerant(t *testing.T) {
	header := ` { "code" : 10 , "language":null, "unknown":[1,{"x":[true,null]}], "serializeTypeCurrentRPC":"JSON",
	"remark":null, "extFields":{"queueId":1,"big":-12.5e3,"unitMode":false,"gone":null,"obj":{"a":[1, 2]},"s":"\u00e9\ud83d\ude00\ud800"} } `
	cmd := &Command{}
	if err := decodeJSONHeader([]byte(header), cmd); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"queueId": "1", "big": "-12.5e3", "unitMode": "false", "obj": `{"a":[1, 2]}`, "s": "é😀\uFFFD"}
	if cmd.Code != 10 || cmd.Language != "" || !maps.Equal(cmd.ExtFields, want) {
		t.Fatalf("got code %d ext %q", cmd.Code, cmd.ExtFields)
	}
	if v, ok, err := cmd.ExtInt32("queueId"); v != 1 || !ok || err != nil {
		t.Fatalf("ExtInt32 = %d %v %v", v, ok, err)
	}
}

func TestJSONDecodeRejectsGarbage(t *testing.T) {
	bad := []string{
		``, `{`, `[]`, `nul`, `{"code":}`, `{"code":"10"}`, `{"code":1.5}`, `{"code":99999999999}`,
		`{"code":1,}`, `{"code":1}}`, `{"code":1} x`, `{"extFields":[1]}`, `{"extFields":{"a":"1",}}`,
		`{"extFields":{"a"}}`, `{"remark":"\x"}`, `{"remark":"\u12"}`, `{"remark":"abc`, `{code:1}`,
		`{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, `{"code":-}`, `{"code":01}`,
		`{"language":5}`, `{"a":tru}`,
	}
	for _, h := range bad {
		err := decodeJSONHeader([]byte(h), &Command{})
		var fe *FrameError
		if !errors.As(err, &fe) {
			t.Errorf("header %q: got %v, want a FrameError", h, err)
		}
	}
}

func TestJSONDecodeCapsExtFields(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"extFields":{`)
	for i := range MaxExtFields + 1 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k`)
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(string(rune('0' + i%10)))
		b.WriteString(`_`)
		b.WriteString(strings.Repeat("y", i/10))
		b.WriteString(`":""`)
	}
	b.WriteString(`}}`)
	if err := decodeJSONHeader([]byte(b.String()), &Command{}); err == nil {
		t.Fatal("accepted more than MaxExtFields ext fields")
	}
}

func TestBinaryDecodeRejectsLies(t *testing.T) {
	valid := goldenBinaryFrame[8 : 8+31]
	mutate := func(off int, v uint32, size int) []byte {
		h := bytes.Clone(valid)
		if size == 2 {
			binary.BigEndian.PutUint16(h[off:], uint16(v))
		} else {
			binary.BigEndian.PutUint32(h[off:], v)
		}
		return h
	}
	cases := map[string][]byte{
		"short":             valid[:20],
		"remark too long":   mutate(13, 1000, 4),
		"remark negative":   mutate(13, 0xFFFFFFFF, 4),
		"ext too long":      mutate(19, 9, 4),
		"ext negative":      mutate(19, 0x80000000, 4),
		"ext short":         mutate(19, 7, 4),
		"key negative":      mutate(23, 0xFFFF, 2),
		"key too long":      mutate(23, 50, 2),
		"value too long":    mutate(26, 2, 4),
		"value negative":    mutate(26, 0xFFFFFFFF, 4),
		"truncated key len": append(mutate(19, 9, 4), 0),
		"trailing bytes":    append(bytes.Clone(valid), 0),
	}
	for name, h := range cases {
		var fe *FrameError
		if err := decodeRocketMQHeader(h, &Command{}); !errors.As(err, &fe) {
			t.Errorf("%s: got %v, want a FrameError", name, err)
		}
	}
}

func TestReadCommandRejectsBadLengths(t *testing.T) {
	frame := func(frameLen, word uint32, rest ...byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, frameLen)
		b = binary.BigEndian.AppendUint32(b, word)
		return append(b, rest...)
	}
	cases := map[string][]byte{
		"too short":           {0, 0, 0, 3, 0, 0, 0},
		"over limit":          frame(1<<20+1, 0),
		"huge":                frame(0xFFFFFFFF, 0),
		"header beyond frame": frame(10, 7, 1, 2, 3, 4, 5, 6),
		"serialize type 2":    frame(6, 2<<24|2, '{', '}'),
		"truncated body":      frame(100, 2, '{', '}'),
		"truncated prefix":    {0, 0},
		"garbage header":      frame(6, 2, 'x', 'y'),
	}
	for name, b := range cases {
		_, err := ReadCommand(bufio.NewReader(bytes.NewReader(b)), 1<<20)
		var fe *FrameError
		if !errors.As(err, &fe) {
			t.Errorf("%s: got %v, want a FrameError", name, err)
		}
	}
	if _, err := ReadCommand(bufio.NewReader(bytes.NewReader(nil)), 0); err != io.EOF {
		t.Fatalf("empty stream: got %v, want io.EOF", err)
	}
}

// lyingReader announces a frame of almost 16 MiB and then delivers only a few bytes.
type lyingReader struct {
	data []byte
}

func (r *lyingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReadCommandDoesNotTrustLengths(t *testing.T) {
	announce := func(n uint32) []byte {
		b := binary.BigEndian.AppendUint32(nil, n)
		b = binary.BigEndian.AppendUint32(b, 2)
		return append(b, "{}0123456789"...)
	}
	for _, n := range []uint32{DefaultMaxFrameSize - 1, 0x7FFFFFFF, 0xFFFFFFFF} {
		r := bufio.NewReader(&lyingReader{data: announce(n)})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := ReadCommand(r, DefaultMaxFrameSize)
		runtime.ReadMemStats(&after)
		var fe *FrameError
		if !errors.As(err, &fe) {
			t.Fatalf("length %d: got %v, want a FrameError", n, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
			t.Fatalf("length %d: allocated %d bytes for a frame that never arrived", n, grew)
		}
	}
}

func TestReadCommandLargeFrameGrows(t *testing.T) {
	cmd := sendRequest(SerializeJSON)
	cmd.Body = bytes.Repeat([]byte("0123456789abcdef"), 300_000) // ~4.8 MiB, several growth steps
	frame, err := cmd.MarshalFrame(nil)
	if err != nil {
		t.Fatal(err)
	}
	// A reader returning small chunks exercises partial reads.
	dec, err := ReadCommand(bufio.NewReader(&chunkReader{data: frame, chunk: 100_000}), 0)
	if err != nil {
		t.Fatal(err)
	}
	assertSameCommand(t, dec, cmd)
	if _, err := ReadCommand(bufio.NewReader(bytes.NewReader(frame)), len(frame)-5); err == nil {
		t.Fatal("frame over the limit accepted")
	}
}

type chunkReader struct {
	data  []byte
	chunk int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestBinaryEncodeRejectsOutOfRange(t *testing.T) {
	for _, cmd := range []*Command{
		{Code: 200050, SerializeType: SerializeRocketMQ},
		{Version: 40000, SerializeType: SerializeRocketMQ},
		{ExtFields: map[string]string{strings.Repeat("k", 40000): ""}, SerializeType: SerializeRocketMQ},
		{SerializeType: 5},
	} {
		if out, err := cmd.MarshalFrame([]byte("keep")); err == nil || string(out) != "keep" {
			t.Errorf("%v: err %v, out %q", cmd, err, out)
		}
	}
}

func TestExtAccessors(t *testing.T) {
	c := &Command{}
	if c.Ext("x") != "" {
		t.Fatal("nil map")
	}
	c.SetExt("i", "42")
	c.SetExt("big", "9223372036854775807")
	c.SetExt("bad", "4x")
	c.SetExt("empty", "")
	c.SetExt("t", "TRUE")
	if v, ok, err := c.ExtInt32("i"); v != 42 || !ok || err != nil {
		t.Fatal("ExtInt32")
	}
	if _, _, err := c.ExtInt32("big"); err == nil || !strings.Contains(err.Error(), `"big"`) {
		t.Fatalf("ExtInt32 overflow: %v", err)
	}
	if v, ok, err := c.ExtInt64("big"); v != 1<<63-1 || !ok || err != nil {
		t.Fatal("ExtInt64")
	}
	if _, ok, err := c.ExtInt64("empty"); ok || err != nil {
		t.Fatal("empty should be absent")
	}
	if _, ok, err := c.ExtInt64("missing"); ok || err != nil {
		t.Fatal("missing should be absent")
	}
	if _, _, err := c.ExtInt64("bad"); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatal("bad int64 accepted")
	}
	if v, ok, err := c.ExtBool("t"); !v || !ok || err != nil {
		t.Fatal("ExtBool")
	}
	if _, _, err := c.ExtBool("i"); err == nil {
		t.Fatal("bad bool accepted")
	}
}

func TestCodeNames(t *testing.T) {
	if CodeName(SendMessage) != "SEND_MESSAGE" || ResponseCodeName(SystemBusy) != "SYSTEM_BUSY" ||
		CodeName(12345) != "CODE_12345" {
		t.Fatal("code names")
	}
}

// sendRequest is a SEND_MESSAGE as the Go client sends it, with a 1 KiB body.
func sendRequest(st SerializeType) *Command {
	ext := map[string]string{
		"producerGroup": "please_rename_unique_group_name", "topic": "BenchmarkTopic",
		"queueId": "3", "sysFlag": "0", "bornTimestamp": "1764040000123", "flag": "0",
		"reconsumeTimes": "0", "unitMode": "false", "maxReconsumeTimes": "0",
		"defaultTopic": "TBW102", "defaultTopicQueueNums": "4", "batch": "false",
		"properties": "KEYS\x01order-12345\x02UNIQ_KEY\x017F0000010001B4AAC2B1\x02WAIT\x01true\x02TAGS\x01TagA\x02",
		"bname":      "broker-a",
	}
	return &Command{Code: SendMessage, Language: "GO", Version: 317, Opaque: 12345,
		ExtFields: ext, Body: bytes.Repeat([]byte{'m'}, 1024), SerializeType: st}
}

func assertSameCommand(t *testing.T, got, want *Command) {
	t.Helper()
	wantBody := append(bytes.Clone(want.Body), bytes.Join(want.BodyParts, nil)...)
	if got.Code != want.Code || got.Language != want.Language || got.Version != want.Version ||
		got.Opaque != want.Opaque || got.Flag != want.Flag || got.Remark != want.Remark ||
		got.SerializeType != want.SerializeType || !bytes.Equal(got.Body, wantBody) ||
		len(got.ExtFields) != len(want.ExtFields) || !maps.Equal(got.ExtFields, want.ExtFields) {
		t.Fatalf("commands differ\n got %+v\nwant %+v", got, want)
	}
}

// validUTF8 replaces each invalid byte with U+FFFD, as encoding/json does.
func validUTF8(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}
