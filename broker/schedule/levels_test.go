package schedule

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/raftmq/raftmq/message"
)

func TestParseDelayLevels(t *testing.T) {
	l, err := ParseDelayLevels(DefaultDelayLevels)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 18 || l[0] != time.Second || l[4] != time.Minute || l[16] != time.Hour || l[17] != 2*time.Hour {
		t.Fatalf("default table %v", l)
	}
	l, err = ParseDelayLevels("  2d\t3h 10m ")
	if err != nil || !reflect.DeepEqual(l, Levels{48 * time.Hour, 3 * time.Hour, 10 * time.Minute}) {
		t.Fatalf("got %v, %v", l, err)
	}
	for _, bad := range []string{"", "   ", "1x", "0s", "-1s", "s", "1.5s", "1ms", "99999999999s", "1s 2"} {
		if _, err := ParseDelayLevels(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestClampDelayDeliverAt(t *testing.T) {
	l := Default()
	if l.Clamp(0) != 1 || l.Clamp(19) != 18 || l.Clamp(5) != 5 {
		t.Fatal("clamp")
	}
	if l.Delay(100) != 2*time.Hour || l.Delay(3) != 10*time.Second {
		t.Fatal("delay")
	}
	if got := l.DeliverAt(2, 1000); got != 11000 {
		t.Fatalf("DeliverAt = %d", got)
	}
}

func sampleExt() *message.Ext {
	return &message.Ext{
		Message: message.Message{
			Topic: "T",
			Flag:  7,
			Properties: map[string]string{
				message.PropertyDelayLevel: "3",
				message.PropertyUniqKey:    "AC1100010001000000000000000A0001",
				message.PropertyTags:       "TagA",
			},
			Body: []byte("hello"),
		},
		QueueID:        2,
		SysFlag:        message.SysFlagCompressed,
		BornTimestamp:  1_700_000_000_000,
		BornHost:       netip.MustParseAddrPort("10.0.0.9:5555"),
		ReconsumeTimes: 4,
	}
}

func TestToDelayQueue(t *testing.T) {
	l := Default()
	in := sampleExt()
	out, ok, err := l.ToDelayQueue(in)
	if err != nil || !ok {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	if out.Topic != Topic || out.QueueID != 2 {
		t.Fatalf("topic %q queue %d", out.Topic, out.QueueID)
	}
	if out.Properties[message.PropertyRealTopic] != "T" || out.Properties[message.PropertyRealQueueID] != "2" {
		t.Fatalf("props %v", out.Properties)
	}
	if in.Topic != "T" || in.Properties[message.PropertyRealTopic] != "" {
		t.Fatal("input modified")
	}
	if out.SysFlag != in.SysFlag || string(out.Body) != "hello" || out.ReconsumeTimes != 4 {
		t.Fatal("fields not copied")
	}

	// Clamped to the highest level, DELAY rewritten.
	in = sampleExt()
	in.Properties[message.PropertyDelayLevel] = "40"
	out, ok, _ = l.ToDelayQueue(in)
	if !ok || out.QueueID != 17 || out.Properties[message.PropertyDelayLevel] != "18" {
		t.Fatalf("clamp: queue %d DELAY %q", out.QueueID, out.Properties[message.PropertyDelayLevel])
	}

	// Left alone.
	for name, mut := range map[string]func(*message.Ext){
		"no delay": func(e *message.Ext) { delete(e.Properties, message.PropertyDelayLevel) },
		"dlq -1":   func(e *message.Ext) { e.Properties[message.PropertyDelayLevel] = "-1" },
		"zero":     func(e *message.Ext) { e.Properties[message.PropertyDelayLevel] = "0" },
		"prepared": func(e *message.Ext) { e.SysFlag |= message.TransactionPreparedType },
		"rollback": func(e *message.Ext) { e.SysFlag |= message.TransactionRollbackType },
		"half":     func(e *message.Ext) { e.Properties[message.PropertyTransactionPrepared] = "true" },
		"sched itself": func(e *message.Ext) {
			e.Topic = Topic
		},
	} {
		in := sampleExt()
		mut(in)
		out, ok, err := l.ToDelayQueue(in)
		if err != nil || ok || out != in {
			t.Errorf("%s: ok=%v err=%v", name, ok, err)
		}
	}

	// A committed transaction's final record is delayed.
	in = sampleExt()
	in.SysFlag = message.SetTransactionType(in.SysFlag, message.TransactionCommitType)
	in.Properties[message.PropertyTransactionPrepared] = "true"
	if _, ok, _ := l.ToDelayQueue(in); !ok {
		t.Error("commit record not delayed")
	}

	in = sampleExt()
	in.Properties[message.PropertyDelayLevel] = "abc"
	if _, _, err := l.ToDelayQueue(in); !errors.Is(err, ErrInvalidDelay) {
		t.Errorf("bad DELAY: err = %v", err)
	}
}

func TestRePut(t *testing.T) {
	l := Default()
	in := sampleExt()
	in.Properties[message.PropertyTimerDelaySec] = "9"
	stored, _, _ := l.ToDelayQueue(in)
	stored.CommitLogOffset = 4096
	stored.QueueOffset = 12
	stored.StoreTimestamp = 1_700_000_001_000
	stored.PreparedTransactionOffset = 77
	out, err := RePut(stored)
	if err != nil {
		t.Fatal(err)
	}
	if out.Topic != "T" || out.QueueID != 2 {
		t.Fatalf("topic %q queue %d", out.Topic, out.QueueID)
	}
	want := map[string]string{
		message.PropertyUniqKey:     "AC1100010001000000000000000A0001",
		message.PropertyTags:        "TagA",
		message.PropertyRealTopic:   "T",
		message.PropertyRealQueueID: "2",
	}
	if !reflect.DeepEqual(out.Properties, want) {
		t.Fatalf("props %v", out.Properties)
	}
	if out.Flag != 7 || out.SysFlag != message.SysFlagCompressed || out.BornTimestamp != in.BornTimestamp ||
		out.BornHost != in.BornHost || out.ReconsumeTimes != 4 || string(out.Body) != "hello" ||
		out.PreparedTransactionOffset != 77 {
		t.Fatalf("fields %+v", out)
	}
	if out.CommitLogOffset != 0 || out.QueueOffset != 0 || out.StoreTimestamp != 0 {
		t.Fatal("store fields must be left to the append path")
	}
	if _, ok := stored.Properties[message.PropertyDelayLevel]; !ok {
		t.Fatal("RePut modified its input")
	}

	for name, props := range map[string]map[string]string{
		"no real topic": {message.PropertyRealQueueID: "1"},
		"self":          {message.PropertyRealTopic: Topic, message.PropertyRealQueueID: "1"},
		"bad qid":       {message.PropertyRealTopic: "T", message.PropertyRealQueueID: "x"},
		"neg qid":       {message.PropertyRealTopic: "T", message.PropertyRealQueueID: "-2"},
	} {
		if _, err := RePut(&message.Ext{Message: message.Message{Topic: Topic, Properties: props}}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestTagsCode(t *testing.T) {
	l := Default()
	stored, _, _ := l.ToDelayQueue(sampleExt())
	stored.StoreTimestamp = 1_700_000_000_500
	b, err := message.AppendRecord(nil, stored)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := message.ParseRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.TagsCode(rec); got != 1_700_000_000_500+10_000 {
		t.Fatalf("schedule tagsCode = %d", got)
	}
	plain := sampleExt()
	b, _ = message.AppendRecord(nil, plain)
	rec, _ = message.ParseRecord(b)
	if got := l.TagsCode(rec); got != message.TagsHashCode("TagA") || got == 0 {
		t.Fatalf("plain tagsCode = %d", got)
	}
}

func FuzzParseDelayLevels(f *testing.F) {
	f.Add(DefaultDelayLevels)
	f.Add("1d 0s")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseDelayLevels(s)
		if err != nil {
			return
		}
		if len(l) == 0 || len(l) > maxLevels {
			t.Fatalf("%d levels", len(l))
		}
		for _, d := range l {
			if d <= 0 {
				t.Fatalf("non-positive delay %v", d)
			}
		}
	})
}
