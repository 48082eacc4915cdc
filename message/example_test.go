package message_test

import (
	"fmt"
	"net/netip"

	"github.com/raftmq/raftmq/message"
)

// A send is encoded once; the leader then patches the offsets it assigns
// into the bytes, and dispatch reads them back without decoding.
func Example() {
	e := &message.Ext{
		Message: message.Message{
			Topic:      "TopicTest",
			Body:       []byte("hello"),
			Properties: map[string]string{message.PropertyTags: "TagA"},
		},
		QueueID:   1,
		BornHost:  netip.MustParseAddrPort("192.168.0.10:54321"),
		StoreHost: netip.MustParseAddrPort("10.0.0.1:10911"),
	}
	rec, err := message.AppendRecord(nil, e)
	if err != nil {
		panic(err)
	}
	r, err := message.ParseRecord(rec)
	if err != nil {
		panic(err)
	}
	r.SetPhysicalOffset(4096)
	r.SetQueueOffset(7)
	fmt.Println(len(rec), r.Topic(), r.QueueID(), r.QueueOffset(), r.TagsCode())
	fmt.Println(message.OffsetMsgID(r.StoreHost(), r.PhysicalOffset()))
	// Output:
	// 115 TopicTest 1 7 2598919
	// 0A00000100002A9F0000000000001000
}
