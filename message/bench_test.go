package message

import (
	"bytes"
	"testing"
)

// benchExt is a 1 KiB message with the properties a Go producer typically
// sends (tag, keys, client id, wait flag) plus the broker's cluster name.
func benchExt() *Ext {
	return &Ext{
		Message: Message{
			Topic: "BenchmarkTopic",
			Body:  bytes.Repeat([]byte("0123456789abcdef"), 64),
			Properties: map[string]string{
				PropertyTags:           "TagA",
				PropertyKeys:           "order-12345 user-678",
				PropertyUniqKey:        "C0A8000A04D2000000000A4CBDDC0000",
				PropertyWaitStoreMsgOK: "true",
				PropertyCluster:        "DefaultCluster",
			},
		},
		QueueID:         3,
		QueueOffset:     123456,
		CommitLogOffset: 987654321,
		BornTimestamp:   1700000000000,
		BornHost:        mustAddrPort("192.168.0.10:54321"),
		StoreTimestamp:  1700000000005,
		StoreHost:       mustAddrPort("10.0.0.1:10911"),
	}
}

func BenchmarkAppendRecord(b *testing.B) {
	e := benchExt()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendRecord(buf[:0], e); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeRecord(b *testing.B) {
	rec, _ := AppendRecord(nil, benchExt())
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeRecord(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordDispatch is what a dispatcher reads from a committed record:
// validate, then topic, queue, offsets, size, tag hash and keys.
func BenchmarkRecordDispatch(b *testing.B) {
	rec, _ := AppendRecord(nil, benchExt())
	b.ReportAllocs()
	var sink int64
	for b.Loop() {
		r := Record(rec)
		if err := r.Valid(); err != nil {
			b.Fatal(err)
		}
		keys, _ := r.PropertyBytes(PropertyKeys)
		sink += int64(len(r.TopicBytes())) + int64(r.QueueID()) + r.QueueOffset() + r.PhysicalOffset() +
			int64(r.TotalSize()) + int64(r.TransactionType()) + r.StoreTimestamp() + r.TagsCode() + int64(len(keys))
	}
	_ = sink
}

func BenchmarkRecordPatch(b *testing.B) {
	rec, _ := AppendRecord(nil, benchExt())
	r := Record(rec)
	b.ReportAllocs()
	for i := int64(0); b.Loop(); i++ {
		r.SetQueueOffset(i)
		r.SetPhysicalOffset(i)
		r.SetStoreTimestamp(i)
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	msgs := make([]Message, 32)
	for i := range msgs {
		msgs[i] = benchExt().Message
	}
	body, _ := EncodeBatch(msgs)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBatch(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJavaStringHashCode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = TagsHashCode("TagA||TagB")
	}
}

func BenchmarkUniqIDNext(b *testing.B) {
	g := NewUniqIDGenerator(mustAddrPort("10.0.0.1:0").Addr(), 1)
	b.ReportAllocs()
	for b.Loop() {
		_ = g.Next()
	}
}
