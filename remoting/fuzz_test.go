package remoting

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"maps"
	"testing"
)

func jsonHeaderSeeds(f *testing.F) {
	f.Add(goldenJSONFrame[8 : len(goldenJSONFrame)-2])
	frame, _ := sendRequest(SerializeJSON).MarshalFrame(nil)
	f.Add(frame[8 : len(frame)-1024])
	f.Add([]byte(`{"code":0,"flag":1,"remark":null,"extFields":{"queueId":1,"b":true,"n":null,"o":{"x":[1,2.5e-3]}}}`))
	f.Add([]byte(`{"remark":"\u00e9\ud83d\ude00\ud800\\\"\/\b\f\n\r\t","language":"JAVA","serializeTypeCurrentRPC":"JSON"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"code":-2147483648,"opaque":2147483647}`))
	f.Add([]byte(`{"code":1,}`))
}

// FuzzDecodeJSONHeader: never panics; what it accepts re-encodes to a header
// that decodes to the same command; and it accepts what encoding/json accepts.
func FuzzDecodeJSONHeader(f *testing.F) {
	jsonHeaderSeeds(f)
	f.Fuzz(func(t *testing.T, header []byte) {
		cmd := &Command{}
		err := decodeJSONHeader(header, cmd)
		checkAgainstEncodingJSON(t, header, cmd, err)
		if err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FrameError", err)
			}
			return
		}
		checkStableRoundTrip(t, cmd, SerializeJSON)
	})
}

// checkAgainstEncodingJSON: whenever encoding/json decodes the header into the
// header's types, our decoder must accept it and agree on every field.
func checkAgainstEncodingJSON(t *testing.T, header []byte, cmd *Command, err error) {
	if bytes.Count(header, []byte("["))+bytes.Count(header, []byte("{")) > maxJSONDepth {
		return // we bound nesting; encoding/json allows deeper
	}
	var std struct {
		Code      int32          `json:"code"`
		Language  *string        `json:"language"`
		Version   int32          `json:"version"`
		Opaque    int32          `json:"opaque"`
		Flag      int32          `json:"flag"`
		Remark    *string        `json:"remark"`
		ExtFields map[string]any `json:"extFields"`
	}
	if json.Unmarshal(header, &std) != nil {
		return
	}
	if !caseSensitiveKeys(header) {
		return // encoding/json matches keys case-insensitively; the clients do not
	}
	if len(std.ExtFields) > MaxExtFields {
		return
	}
	if err != nil {
		t.Fatalf("encoding/json accepts %q, we reject it: %v", header, err)
	}
	if std.Code != cmd.Code || std.Version != cmd.Version || std.Opaque != cmd.Opaque || std.Flag != cmd.Flag {
		t.Fatalf("numbers differ: %+v vs %+v", std, cmd)
	}
	if std.Remark != nil && validUTF8(*std.Remark) != validUTF8(cmd.Remark) {
		t.Fatalf("remark %q vs %q", *std.Remark, cmd.Remark)
	}
	// encoding/json replaces invalid UTF-8 in keys and values with U+FFFD; we
	// keep the bytes. Compare after the same replacement, skipping keys that
	// collide once replaced.
	ours := map[string]string{}
	collided := map[string]bool{}
	for k, v := range cmd.ExtFields {
		nk := validUTF8(k)
		if _, dup := ours[nk]; dup {
			collided[nk] = true
		}
		ours[nk] = validUTF8(v)
	}
	for k, v := range std.ExtFields {
		s, ok := v.(string)
		if !ok || collided[k] {
			continue
		}
		if got, present := ours[k]; !present || got != validUTF8(s) {
			t.Fatalf("ext %q: encoding/json %q, ours %q (present %v)", k, s, got, present)
		}
	}
}

// caseSensitiveKeys reports whether the top-level keys we know appear only in
// their exact spelling (encoding/json would also match "Code", "EXTFIELDS", ...).
func caseSensitiveKeys(header []byte) bool {
	lower := bytes.ToLower(header)
	for _, k := range []string{"code", "language", "version", "opaque", "flag", "remark", "extfields"} {
		exact := k
		if k == "extfields" {
			exact = "extFields"
		}
		if bytes.Count(lower, []byte(`"`+k+`"`)) != bytes.Count(header, []byte(`"`+exact+`"`)) {
			return false
		}
		if bytes.Contains(header, []byte(`\`)) {
			return false // escaped key spellings
		}
	}
	return true
}

// checkStableRoundTrip: encode → decode must be a fixed point after one
// normalisation (default language, invalid UTF-8 replaced, empty ext map).
func checkStableRoundTrip(t *testing.T, cmd *Command, st SerializeType) {
	cmd.SerializeType = st
	frame, err := cmd.MarshalFrame(nil)
	if err != nil {
		t.Fatalf("cannot re-encode %+v: %v", cmd, err)
	}
	again, err := DecodeFrame(frame[4:])
	if err != nil {
		t.Fatalf("cannot decode our own frame %q: %v", frame, err)
	}
	frame2, err := again.MarshalFrame(nil)
	if err != nil {
		t.Fatal(err)
	}
	third, err := DecodeFrame(frame2[4:])
	if err != nil {
		t.Fatal(err)
	}
	if again.Code != third.Code || again.Language != third.Language || again.Version != third.Version ||
		again.Opaque != third.Opaque || again.Flag != third.Flag || again.Remark != third.Remark ||
		!maps.Equal(again.ExtFields, third.ExtFields) {
		t.Fatalf("round trip not stable:\n%+v\n%+v", again, third)
	}
	// Keys that differ only in invalid UTF-8 merge once it is replaced by U+FFFD.
	distinctKeys := map[string]bool{}
	for k := range cmd.ExtFields {
		if st == SerializeJSON {
			k = validUTF8(k)
		}
		distinctKeys[k] = true
	}
	if cmd.Code != again.Code || cmd.Version != again.Version || cmd.Opaque != again.Opaque ||
		cmd.Flag != again.Flag || len(distinctKeys) != len(again.ExtFields) {
		t.Fatalf("round trip changed the command:\n%+v\n%+v", cmd, again)
	}
}

func rocketMQHeaderSeeds(f *testing.F) {
	f.Add(goldenBinaryFrame[8 : 8+31])
	frame, _ := sendRequest(SerializeRocketMQ).MarshalFrame(nil)
	f.Add(frame[8 : len(frame)-1024])
	f.Add(make([]byte, 21))
	f.Add(append(make([]byte, 17), 0xFF, 0xFF, 0xFF, 0xFF))
	f.Add([]byte{0x7F, 0xFF, 20, 0x80, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0})
}

// FuzzDecodeRocketMQHeader: never panics; accepted headers re-encode to an
// equal command.
func FuzzDecodeRocketMQHeader(f *testing.F) {
	rocketMQHeaderSeeds(f)
	f.Fuzz(func(t *testing.T, header []byte) {
		cmd := &Command{}
		if err := decodeRocketMQHeader(header, cmd); err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FrameError", err)
			}
			return
		}
		cmd.SerializeType = SerializeRocketMQ
		frame, err := cmd.MarshalFrame(nil)
		if err != nil {
			t.Fatalf("cannot re-encode: %v", err)
		}
		again, err := DecodeFrame(frame[4:])
		if err != nil {
			t.Fatal(err)
		}
		if cmd.Code != again.Code || cmd.Version != again.Version || cmd.Opaque != again.Opaque ||
			cmd.Flag != again.Flag || cmd.Remark != again.Remark || cmd.Language != again.Language ||
			!maps.Equal(cmd.ExtFields, again.ExtFields) {
			t.Fatalf("round trip changed the command:\n%+v\n%+v", cmd, again)
		}
		if len(cmd.ExtFields) <= 1 && header[2] < byte(len(languageNames)) && int(binary.BigEndian.Uint32(header[13:])) >= 0 &&
			len(frame[8:]) == len(header) && !bytes.Equal(frame[8:], header) {
			t.Fatalf("re-encoding differs:\n%v\n%v", header, frame[8:])
		}
	})
}

// FuzzReadCommand: the frame reader never panics, refuses frames over the limit,
// and every frame it returns round-trips.
func FuzzReadCommand(f *testing.F) {
	f.Add(goldenJSONFrame)
	f.Add(goldenBinaryFrame)
	f.Add(append(bytes.Clone(goldenJSONFrame), goldenBinaryFrame...))
	frame, _ := sendRequest(SerializeJSON).MarshalFrame(nil)
	f.Add(frame)
	f.Add([]byte{0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0, 0, 0, 6, 1, 0, 0, 2, '{', '}'})
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1 << 16
		br := bufio.NewReader(bytes.NewReader(data))
		for {
			cmd, err := ReadCommand(br, limit)
			if err != nil {
				return
			}
			if cmd.bodyLen() > limit {
				t.Fatalf("frame over the limit accepted")
			}
			checkStableRoundTrip(t, cmd, cmd.SerializeType)
		}
	})
}
