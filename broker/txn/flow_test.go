package txn

import (
	"testing"

	"github.com/raftmq/raftmq/broker/schedule"
	"github.com/raftmq/raftmq/message"
)

// TestCommittedDelayedMessageGoesToSchedule wires FinalizeCommitted to the
// delay transform as the package doc tells the broker to.
func TestCommittedDelayedMessageGoesToSchedule(t *testing.T) {
	levels := schedule.Default()
	h := newHarness(t, func(c *Config) {
		c.FinalizeCommitted = func(e *message.Ext) (*message.Ext, error) {
			out, _, err := levels.ToDelayQueue(e)
			return out, err
		}
	})
	h.start()
	r, _ := h.sendHalf("plain", 1)
	r2, _ := h.sendHalfWithProps("late", 1, map[string]string{message.PropertyDelayLevel: "2"})
	if out, err := h.end(h.endRequest(r2, StateCommit)); err != nil || out != Committed {
		t.Fatalf("%v %v", out, err)
	}
	delayed := h.store.queue(t, schedule.Topic)
	if len(delayed) != 1 || delayed[0].QueueID != 1 ||
		delayed[0].Properties[message.PropertyRealTopic] != "Orders" ||
		delayed[0].Properties[message.PropertyRealQueueID] != "1" ||
		message.TransactionType(delayed[0].SysFlag) != message.TransactionCommitType {
		t.Fatalf("delayed %+v", delayed)
	}
	if n := len(h.store.queue(t, "Orders")); n != 0 {
		t.Fatalf("%d records in the real topic before the delay", n)
	}
	if out, err := h.end(h.endRequest(r, StateCommit)); err != nil || out != Committed {
		t.Fatalf("%v %v", out, err)
	}
	if n := len(h.store.queue(t, "Orders")); n != 1 {
		t.Fatalf("undelayed commit: %d records", n)
	}
}
