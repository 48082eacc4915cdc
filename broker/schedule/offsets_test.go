package schedule

import (
	"maps"
	"testing"
)

func TestOffsetsRoundTrip(t *testing.T) {
	in := map[int32]int64{1: 5, 2: 0, 18: 123456789}
	b := MarshalOffsets(in)
	out, err := UnmarshalOffsets(b)
	if err != nil || !maps.Equal(in, out) {
		t.Fatalf("%s -> %v, %v", b, out, err)
	}
	for _, bad := range []string{"", "{", `{"offsetTable":{"0":1}}`, `{"offsetTable":{"x":1}}`,
		`{"offsetTable":{"1":-1}}`, `{"offsetTable":{"1":"a"}}`} {
		if _, err := UnmarshalOffsets([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestOffsetsBareForm(t *testing.T) {
	out, err := UnmarshalOffsets([]byte(`{"1":5,"18":7}`))
	if err != nil || !maps.Equal(out, map[int32]int64{1: 5, 18: 7}) {
		t.Fatalf("bare form: %v %v", out, err)
	}
	if out, err := UnmarshalOffsets([]byte(`{}`)); err != nil || len(out) != 0 {
		t.Fatalf("empty table: %v %v", out, err)
	}
	for _, bad := range []string{`{"0":1}`, `{"1":-1}`, `{"1":"a"}`} {
		if _, err := UnmarshalOffsets([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzUnmarshalOffsets(f *testing.F) {
	f.Add(MarshalOffsets(map[int32]int64{1: 2, 3: 4}))
	f.Add([]byte(`{"offsetTable":null}`))
	f.Add([]byte(`{"1":5,"2":0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := UnmarshalOffsets(b)
		if err != nil {
			return
		}
		for level, off := range out {
			if level < 1 || level > maxLevels || off < 0 {
				t.Fatalf("accepted level %d offset %d", level, off)
			}
		}
		again, err := UnmarshalOffsets(MarshalOffsets(out))
		if err != nil || !maps.Equal(again, out) {
			t.Fatalf("round trip: %v %v", again, err)
		}
	})
}
