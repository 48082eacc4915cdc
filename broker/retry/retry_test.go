package retry

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/wire"
)

func TestNaming(t *testing.T) {
	if RetryTopic("cg") != "%RETRY%cg" || DLQTopic("cg") != "%DLQ%cg" {
		t.Fatal("names")
	}
	if !IsRetryTopic("%RETRY%cg") || IsRetryTopic("cg") || !IsDLQTopic("%DLQ%cg") || IsDLQTopic("%RETRY%cg") {
		t.Fatal("predicates")
	}
	if g, ok := GroupOfRetryTopic("%RETRY%cg"); !ok || g != "cg" {
		t.Fatal("GroupOfRetryTopic")
	}
	if _, ok := GroupOfRetryTopic("%RETRY%"); ok {
		t.Fatal("empty group accepted")
	}
	if g, ok := GroupOfDLQTopic("%DLQ%cg"); !ok || g != "cg" {
		t.Fatal("GroupOfDLQTopic")
	}
	rc := RetryTopicConfig("cg", 0)
	if rc.TopicName != "%RETRY%cg" || rc.ReadQueueNums != 1 || rc.WriteQueueNums != 1 || rc.Perm != 6 {
		t.Fatalf("retry config %+v", rc)
	}
	if rc := RetryTopicConfig("cg", 3); rc.WriteQueueNums != 3 {
		t.Fatalf("retry config %+v", rc)
	}
	dc := DLQTopicConfig("cg")
	if dc.TopicName != "%DLQ%cg" || dc.ReadQueueNums != 1 || dc.Perm != 6 {
		t.Fatalf("dlq config %+v", dc)
	}
	if rc.TopicFilterType != wire.TopicFilterSingleTag || rc.Attributes == nil || dc.TopicFilterType != wire.TopicFilterSingleTag || dc.Attributes == nil {
		t.Fatalf("retry/DLQ configs are not Java's defaults: %+v %+v", rc, dc)
	}
	for topic, want := range map[string]wire.TopicConfig{"%RETRY%cg": rc, "%DLQ%cg": dc, "%RETRY%": RetryTopicConfig("", 0)} {
		if got, ok := DefaultTopicConfig(topic); !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("DefaultTopicConfig(%q) = %+v %v, want %+v", topic, got, ok, want)
		}
	}
	if _, ok := DefaultTopicConfig("TopicTest"); ok {
		t.Error("a plain topic has a retry/DLQ default")
	}
}

func TestParseSendBackHeaderGoClient(t *testing.T) {
	// Exactly the keys rocketmq-client-go's ConsumerSendMsgBackRequestHeader.Encode writes.
	ext := map[string]string{
		"group": "cg", "offset": "123456", "delayLevel": "0", "originMsgId": "AC11000100002A9F000000000001E240",
		"originTopic": "T", "unitMode": "false", "maxReconsumeTimes": "16", "bname": "broker-a",
	}
	r, err := ParseSendBackHeader(ext)
	if err != nil {
		t.Fatal(err)
	}
	if r.Group != "cg" || r.Offset != 123456 || r.DelayLevel != 0 || !r.HasMaxReconsumeTimes ||
		r.MaxReconsumeTimes != 16 || r.OriginTopic != "T" || r.OriginMsgID == "" || r.UnitMode {
		t.Fatalf("%+v", r)
	}
	ext["maxReconsumeTimes"] = ""
	if r, _ := ParseSendBackHeader(ext); r.HasMaxReconsumeTimes {
		t.Fatal("empty maxReconsumeTimes counted as present")
	}
	bad := []map[string]string{
		{"offset": "1", "delayLevel": "0"},
		{"group": "cg", "delayLevel": "0"},
		{"group": "cg", "offset": "x", "delayLevel": "0"},
		{"group": "cg", "offset": "-1", "delayLevel": "0"},
		{"group": "cg", "offset": "1"},
		{"group": "cg", "offset": "1", "delayLevel": "9999999999"},
		{"group": "cg", "offset": "1", "delayLevel": "0", "maxReconsumeTimes": "z"},
		{"group": "cg", "offset": "1", "delayLevel": "0", "unitMode": "maybe"},
		{"group": "bad group!", "offset": "1", "delayLevel": "0"},
	}
	for i, e := range bad {
		if _, err := ParseSendBackHeader(e); !errors.Is(err, ErrBadHeader) {
			t.Errorf("case %d: err = %v", i, err)
		}
	}
}

func original(reconsume int32, props map[string]string) *message.Ext {
	p := map[string]string{message.PropertyUniqKey: "UNIQ1", message.PropertyTags: "TagA"}
	for k, v := range props {
		p[k] = v
	}
	return &message.Ext{
		Message:         message.Message{Topic: "T", Flag: 3, Properties: p, Body: []byte("payload")},
		QueueID:         2,
		QueueOffset:     40,
		CommitLogOffset: 123456,
		SysFlag:         message.SysFlagCompressed,
		BornTimestamp:   1_700_000_000_000,
		BornHost:        netip.MustParseAddrPort("10.1.2.3:4000"),
		StoreTimestamp:  1_700_000_000_100,
		StoreHost:       netip.MustParseAddrPort("10.0.0.1:10911"),
		ReconsumeTimes:  reconsume,
	}
}

func TestSendBack(t *testing.T) {
	cfg := GroupConfig{RetryQueueNums: 1, RetryMaxTimes: 16}
	offsetID := original(0, nil).OffsetMsgID()
	cases := []struct {
		name        string
		req         SendBackRequest
		orig        *message.Ext
		cfg         GroupConfig
		wantTopic   string
		wantDelay   string // "" = no DELAY property
		wantOrigin  string
		wantRetryTo string
	}{
		{"first retry, broker level", SendBackRequest{Group: "cg", DelayLevel: 0}, original(0, nil), cfg,
			"%RETRY%cg", "3", offsetID, "T"},
		{"fifth retry, broker level", SendBackRequest{Group: "cg", DelayLevel: 0}, original(4,
			map[string]string{message.PropertyRetryTopic: "Orig", message.PropertyOriginMessageID: "FIRST"}),
			cfg, "%RETRY%cg", "7", "FIRST", "Orig"},
		{"explicit level", SendBackRequest{Group: "cg", DelayLevel: 5}, original(1, nil), cfg,
			"%RETRY%cg", "5", offsetID, "T"},
		{"orderly -1 to DLQ", SendBackRequest{Group: "cg", DelayLevel: -1}, original(0, nil), cfg,
			"%DLQ%cg", "", offsetID, "T"},
		{"max reached to DLQ", SendBackRequest{Group: "cg"}, original(16,
			map[string]string{message.PropertyDelayLevel: "18"}), cfg, "%DLQ%cg", "", offsetID, "T"},
		{"header max overrides group", SendBackRequest{Group: "cg", MaxReconsumeTimes: 2,
			HasMaxReconsumeTimes: true}, original(2, nil), cfg, "%DLQ%cg", "", offsetID, "T"},
		{"below header max", SendBackRequest{Group: "cg", MaxReconsumeTimes: 20,
			HasMaxReconsumeTimes: true}, original(16, nil), cfg, "%RETRY%cg", "19", offsetID, "T"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(c.orig.Properties)
			res, err := SendBack(c.req, c.orig, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			m := res.Message
			if res.Drop || m == nil {
				t.Fatal("dropped")
			}
			if m.Topic != c.wantTopic || res.ToDLQ != (c.wantTopic == "%DLQ%cg") || m.QueueID != 0 {
				t.Fatalf("topic %q queue %d dlq %v", m.Topic, m.QueueID, res.ToDLQ)
			}
			if got := m.Properties[message.PropertyDelayLevel]; got != c.wantDelay {
				t.Fatalf("DELAY %q, want %q", got, c.wantDelay)
			}
			if got := m.Properties[message.PropertyOriginMessageID]; got != c.wantOrigin {
				t.Fatalf("ORIGIN_MESSAGE_ID %q, want %q", got, c.wantOrigin)
			}
			if got := m.Properties[message.PropertyRetryTopic]; got != c.wantRetryTo {
				t.Fatalf("RETRY_TOPIC %q, want %q", got, c.wantRetryTo)
			}
			if m.ReconsumeTimes != c.orig.ReconsumeTimes+1 || string(m.Body) != "payload" || m.Flag != 3 ||
				m.SysFlag != message.SysFlagCompressed || m.BornTimestamp != c.orig.BornTimestamp ||
				m.BornHost != c.orig.BornHost || m.Properties[message.PropertyUniqKey] != "UNIQ1" ||
				m.Properties[message.PropertyTags] != "TagA" {
				t.Fatalf("copied fields wrong: %+v", m)
			}
			if m.CommitLogOffset != 0 || m.QueueOffset != 0 {
				t.Fatal("offsets must be left to the store")
			}
			if len(c.orig.Properties) != before {
				t.Fatal("original modified")
			}
		})
	}

	if res, err := SendBack(SendBackRequest{Group: "cg"}, original(0, nil), GroupConfig{RetryQueueNums: 0}); err != nil || !res.Drop {
		t.Fatalf("no retry queues: %+v %v", res, err)
	}
	if _, err := SendBack(SendBackRequest{Group: "cg"}, nil, cfg); err == nil {
		t.Fatal("nil original accepted")
	}
	// Several retry queues: the queue stays in range.
	for i := 0; i < 100; i++ {
		res, _ := SendBack(SendBackRequest{Group: "cg"}, original(0, nil), GroupConfig{RetryQueueNums: 4, RetryMaxTimes: 16})
		if q := res.Message.QueueID; q < 0 || q >= 4 {
			t.Fatalf("queue %d", q)
		}
	}
}

func TestRedirectRetrySend(t *testing.T) {
	cfg := GroupConfig{RetryQueueNums: 1, RetryMaxTimes: 16}
	msg := func(topic string, reconsume int32) *message.Ext {
		return &message.Ext{Message: message.Message{Topic: topic, Body: []byte("b"), Properties: map[string]string{
			message.PropertyDelayLevel: "5", message.PropertyRetryTopic: "T"}}, ReconsumeTimes: reconsume}
	}
	cases := []struct {
		name     string
		in       *message.Ext
		max      int32
		locked   bool
		wantDLQ  bool
		wantTopc string
	}{
		{"not a retry topic", msg("T", 99), -1, false, false, "T"},
		{"within group max", msg("%RETRY%cg", 16), -1, false, false, "%RETRY%cg"},
		{"over group max", msg("%RETRY%cg", 17), -1, false, true, "%DLQ%cg"},
		{"header max", msg("%RETRY%cg", 4), 3, false, true, "%DLQ%cg"},
		{"header max zero", msg("%RETRY%cg", 1), 0, false, true, "%DLQ%cg"},
		{"orderly lock held", msg("%RETRY%cg", 1), -1, true, true, "%DLQ%cg"},
	}
	for _, c := range cases {
		out, dlq := RedirectRetrySend(c.in, c.max, cfg, c.locked)
		if dlq != c.wantDLQ || out.Topic != c.wantTopc {
			t.Errorf("%s: dlq=%v topic=%q", c.name, dlq, out.Topic)
			continue
		}
		if !dlq {
			if out != c.in {
				t.Errorf("%s: unchanged message must be returned as is", c.name)
			}
			continue
		}
		if out.QueueID != 0 || out.Properties[message.PropertyDelayLevel] != "-1" ||
			out.Properties[message.PropertyRetryTopic] != "T" || out.ReconsumeTimes != c.in.ReconsumeTimes {
			t.Errorf("%s: %+v", c.name, out)
		}
		if c.in.Properties[message.PropertyDelayLevel] != "5" || c.in.Topic != "%RETRY%cg" {
			t.Errorf("%s: input modified", c.name)
		}
	}
}

func FuzzParseSendBackHeader(f *testing.F) {
	f.Add("cg", "123", "0", "16", "false")
	f.Add("", "", "", "", "")
	f.Add("g", "-5", "-1", "x", "true")
	f.Fuzz(func(t *testing.T, group, offset, delay, maxRe, unit string) {
		r, err := ParseSendBackHeader(map[string]string{"group": group, "offset": offset,
			"delayLevel": delay, "maxReconsumeTimes": maxRe, "unitMode": unit})
		if err != nil {
			return
		}
		if r.Group == "" || r.Offset < 0 {
			t.Fatalf("accepted %+v", r)
		}
		res, err := SendBack(r, original(3, nil), GroupConfig{RetryQueueNums: 1, RetryMaxTimes: 16})
		if err != nil || res.Message == nil {
			t.Fatalf("SendBack: %v", err)
		}
	})
}
