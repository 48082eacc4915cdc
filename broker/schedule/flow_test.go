package schedule

import (
	"net/netip"
	"testing"
	"time"

	"github.com/raftmq/raftmq/broker/retry"
	"github.com/raftmq/raftmq/message"
)

// TestSendBackFlowThroughDelay follows a failed message the way the broker
// wires the packages: CONSUMER_SEND_MSG_BACK builds a %RETRY% record with
// DELAY, the send path moves it to SCHEDULE_TOPIC_XXXX, and the Service
// re-puts it into %RETRY%<group> when its level is due.
func TestSendBackFlowThroughDelay(t *testing.T) {
	clk := newFakeClock()
	st := newFakeStore(Default(), clk)
	orig := &message.Ext{
		Message: message.Message{Topic: "Orders", Body: []byte("b"), Properties: map[string]string{
			message.PropertyUniqKey: "U1", message.PropertyTags: "TagA"}},
		StoreHost:      netip.MustParseAddrPort("10.0.0.1:10911"),
		BornHost:       netip.MustParseAddrPort("10.0.0.9:1"),
		ReconsumeTimes: 0,
	}
	st.mu.Lock()
	if err := st.putLocked(orig); err != nil {
		t.Fatal(err)
	}
	st.mu.Unlock()
	req, err := retry.ParseSendBackHeader(map[string]string{"group": "cg", "offset": "1000",
		"delayLevel": "0", "maxReconsumeTimes": "16"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := retry.SendBack(req, orig, retry.GroupConfig{RetryQueueNums: 1, RetryMaxTimes: 16})
	if err != nil || res.ToDLQ {
		t.Fatalf("%+v %v", res, err)
	}
	stored := st.send(t, res.Message)
	if stored.Topic != Topic || stored.QueueID != 2 { // level 3 = 10 s
		t.Fatalf("retry stored in %s/%d", stored.Topic, stored.QueueID)
	}
	startService(t, st, clk)
	waitFor(t, "service to sleep", func() bool { return clk.activeTimers() == 1 })
	clk.Advance(10 * time.Second)
	waitFor(t, "re-put", func() bool { return len(st.delivered()) == 1 })
	got := st.delivered()[0]
	if got.Topic != "%RETRY%cg" || got.QueueID != 0 || got.ReconsumeTimes != 1 ||
		got.Properties[message.PropertyRetryTopic] != "Orders" || got.Properties[message.PropertyUniqKey] != "U1" ||
		got.Properties[message.PropertyOriginMessageID] != orig.OffsetMsgID() ||
		got.Properties[message.PropertyDelayLevel] != "" {
		t.Fatalf("retry record %+v", got)
	}
}
