package message

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func seedRecords(f *testing.F) {
	f.Helper()
	for _, e := range []*Ext{
		goldenExt(), goldenV6Ext(),
		{Message: Message{Topic: "T"}},
		{Message: Message{Topic: string(bytes.Repeat([]byte("v"), 130)), Body: []byte("v2")}},
	} {
		b, err := AppendRecord(nil, e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(b, b...))
	}
	f.Add([]byte{})
	f.Add(make([]byte, MinRecordSize))
}

// checkDecodedRecord asserts what must hold for any record DecodeRecord accepts.
func checkDecodedRecord(t *testing.T, b []byte, e *Ext, n int) {
	t.Helper()
	if n < MinRecordSize || n > len(b) || int(e.StoreSize) != n {
		t.Fatalf("size %d, StoreSize %d, input %d", n, e.StoreSize, len(b))
	}
	r := Record(b[:n])
	if err := r.Valid(); err != nil {
		t.Fatalf("DecodeRecord accepted what Valid refuses: %v", err)
	}
	if r.Topic() != e.Topic || !bytes.Equal(r.Body(), e.Body) || r.QueueOffset() != e.QueueOffset ||
		r.StoreTimestamp() != e.StoreTimestamp || r.StoreHost() != e.StoreHost || r.BornHost() != e.BornHost {
		t.Fatal("Record accessors disagree with DecodeRecord")
	}
	for k, v := range e.Properties {
		if got, ok := r.PropertyBytes(k); !ok || string(got) != v {
			t.Fatalf("PropertyBytes(%q) = %q, %v; map has %q", k, got, ok, v)
		}
	}
	if r.TagsCode() != TagsHashCode(e.Tags()) || r.TransactionType() != TransactionType(e.SysFlag) {
		t.Fatal("TagsCode or TransactionType disagree with the decoded message")
	}
	if e.Topic == "" {
		return
	}
	if _, err := ValidateProperties(e.Properties); err != nil {
		return // e.g. decoded keys that hold no separator but would overflow after sorting; not re-encodable
	}
	// What we accept, we can write back, and it reads back the same.
	again, err := AppendRecord(nil, e)
	if err != nil {
		t.Fatalf("re-encoding a decoded record: %v", err)
	}
	e2, n2, err := DecodeRecord(again)
	if err != nil || n2 != len(again) {
		t.Fatalf("re-decoding: %v (n=%d, len=%d)", err, n2, len(again))
	}
	want := *e
	want.StoreSize, want.BodyCRC = int32(len(again)), BodyCRC(e.Body)
	want.BornHost, want.StoreHost = canonHost(e.BornHost), canonHost(e.StoreHost)
	want.SysFlag = sysFlagFor(&want)
	equalExt(t, e2, &want)
}

func FuzzDecodeRecord(f *testing.F) {
	seedRecords(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := append([]byte(nil), b...)
		e, n, err := DecodeRecord(b)
		if !bytes.Equal(orig, b) {
			t.Fatal("DecodeRecord modified its input")
		}
		if err != nil {
			if e != nil || n != 0 {
				t.Fatal("result with error")
			}
			return
		}
		checkDecodedRecord(t, b, e, n)
	})
}

func FuzzDecodeRecords(f *testing.F) {
	seedRecords(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		exts, err := DecodeRecords(b)
		if err != nil {
			return
		}
		total := 0
		for _, e := range exts {
			checkDecodedRecord(t, b[total:], e, int(e.StoreSize))
			total += int(e.StoreSize)
		}
		if total != len(b) {
			t.Fatalf("records cover %d of %d bytes", total, len(b))
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	if b, err := EncodeBatch([]Message{
		{Flag: 1, Body: []byte("ab"), Properties: map[string]string{"KEYS": "k"}},
		{Body: []byte("second"), Properties: map[string]string{"TAGS": "t", "UNIQ_KEY": "U"}},
	}); err == nil {
		f.Add(b)
		f.Add(b[:len(b)-3])
	}
	f.Add([]byte{})
	f.Add(make([]byte, batchItemFixed))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Limits drawn from the input itself, so every boundary gets exercised.
		var limits BatchLimits
		if len(b) > 0 {
			limits = BatchLimits{MaxBytes: len(b) - int(b[0]%4), MaxItems: int(b[len(b)-1] % 8)}
		}
		msgs, err := DecodeBatchLimited(b, limits)
		if limits.MaxBytes > 0 && len(b) > limits.MaxBytes && !errors.Is(err, ErrBatchTooLarge) {
			t.Fatalf("%d bytes over MaxBytes %d accepted or refused otherwise: %v", len(b), limits.MaxBytes, err)
		}
		if limits.MaxItems > 0 && len(msgs) > limits.MaxItems {
			t.Fatalf("%d messages over MaxItems %d", len(msgs), limits.MaxItems)
		}
		if err != nil {
			return
		}
		if len(msgs) == 0 || len(msgs) > len(b)/batchItemFixed {
			t.Fatalf("%d messages from %d bytes", len(msgs), len(b))
		}
		for _, m := range msgs {
			if _, err := ValidateProperties(m.Properties); err != nil {
				return
			}
		}
		again, err := EncodeBatch(msgs)
		if err != nil {
			t.Fatalf("re-encoding a decoded batch: %v", err)
		}
		msgs2, err := DecodeBatch(again)
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		for i := range msgs {
			if msgs[i].Flag != msgs2[i].Flag || !bytes.Equal(msgs[i].Body, msgs2[i].Body) ||
				!reflect.DeepEqual(msgs[i].Properties, msgs2[i].Properties) {
				t.Fatalf("message %d changed: %+v -> %+v", i, msgs[i], msgs2[i])
			}
		}
	})
}

func FuzzDecodeProperties(f *testing.F) {
	for _, s := range []string{"", "a\x01b\x02", "KEYS\x01k1 k2\x02TAGS\x01a\x02", "a\x01b\x01c", "\x01\x02\x01\x02", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := DecodeProperties(s)
		for k, v := range m {
			if k == "" {
				t.Fatal("empty name decoded")
			}
			if got, ok := lookupProperty([]byte(s), k); !ok || string(got) != v {
				t.Fatalf("lookupProperty(%q) = %q, %v; map has %q", k, got, ok, v)
			}
		}
		if _, err := ValidateProperties(m); err != nil {
			return
		}
		if m2 := DecodeProperties(EncodeProperties(m)); !reflect.DeepEqual(m, m2) {
			t.Fatalf("not stable: %q -> %q", m, m2)
		}
	})
}

func FuzzParseOffsetMsgID(f *testing.F) {
	f.Add("0A00000100002A9F00000000000004D2")
	f.Add("20010DB800000000000000000000000100002A9F0000010000000000")
	f.Add("")
	f.Fuzz(func(t *testing.T, id string) {
		host, off, err := ParseOffsetMsgID(id)
		if err != nil {
			return
		}
		if got := OffsetMsgID(host, off); !bytes.EqualFold([]byte(got), []byte(id)) {
			t.Fatalf("ParseOffsetMsgID(%q) -> %v %d -> %q", id, host, off, got)
		}
	})
}
