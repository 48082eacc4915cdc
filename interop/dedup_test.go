package interop

import (
	"context"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// The official Go client sets UNIQ_KEY on a Message the first time it sends
// it, so sending the same Message again looks to the broker exactly like the
// client's own retry: it is answered with the first send's result and stored
// once. A new Message with the same body is another message.
func TestServicesResentMessageStoredOnce(t *testing.T) {
	s := svcStartStandalone(t)
	a := svcAdmin(t, s)
	p := newProducer(t, s.namesrvAddr)
	topic := uniq("Dedup")
	m := primitive.NewMessage(topic, []byte("once"))
	send := func(m *primitive.Message) *primitive.SendResult {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		r, err := p.SendSync(ctx, m)
		if err != nil || r.Status != primitive.SendOK {
			t.Fatalf("send: %v %+v", err, r)
		}
		return r
	}
	first := send(m)
	again := send(m)
	if again.MsgID != first.MsgID || again.OffsetMsgID != first.OffsetMsgID || again.QueueOffset != first.QueueOffset ||
		again.MessageQueue.QueueId != first.MessageQueue.QueueId {
		t.Fatalf("resend answered %+v, the first send %+v", again, first)
	}
	other := send(primitive.NewMessage(topic, []byte("once")))
	if other.OffsetMsgID == first.OffsetMsgID {
		t.Fatal("a new message with the same body was taken for a duplicate")
	}
	if n, err := svcTopicMessages(a, topic); err != nil || n != 2 {
		t.Fatalf("topic holds %d messages (%v), want 2", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := a.RaftStatus(ctx, s.brokerAddr)
	if err != nil || st.DuplicatesSuppressed != 1 {
		t.Fatalf("raftStatus: %+v %v, want 1 duplicate suppressed", st, err)
	}
}
