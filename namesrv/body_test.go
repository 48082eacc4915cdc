package namesrv

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/wire"
	"github.com/raftmq/raftmq/wire/wiretest"
)

func TestTopicRouteDataGolden(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	mustRegister(t, rt, Registration{
		ClusterName: "DefaultCluster", BrokerName: "broker-a", BrokerAddr: "10.0.0.1:10911", BrokerID: 0,
		Topics: map[string]wire.TopicConfig{"TopicTest": {ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}},
	}, t0)
	mustRegister(t, rt, Registration{
		ClusterName: "DefaultCluster", BrokerName: "broker-a", BrokerAddr: "10.0.0.2:10911", BrokerID: 1,
	}, t0)
	rd, ok := rt.TopicRoute("TopicTest")
	if !ok {
		t.Fatal("no route")
	}
	got, err := wire.Marshal(rd)
	if err != nil {
		t.Fatal(err)
	}
	// Java's route byte for byte (what the Go client reads of it: wire's tests).
	if string(got) != wiretest.RouteJava {
		t.Fatalf("route JSON\n got %s\nwant %s", got, wiretest.RouteJava)
	}
}

func TestDecodeRegisterBrokerBody(t *testing.T) {
	b, err := DecodeRegisterBrokerBody([]byte(wiretest.RegisterJava))
	if err != nil {
		t.Fatal(err)
	}
	w := b.TopicConfigSerializeWrapper
	if w.DataVersion != (wire.DataVersion{Counter: 7, StateVersion: 3, Timestamp: 1700000000000}) {
		t.Fatalf("data version %+v", w.DataVersion)
	}
	if len(w.TopicConfigTable) != 2 || w.TopicConfigTable["TBW102"].Perm != 7 || w.TopicConfigTable["TopicTest"].WriteQueueNums != 4 {
		t.Fatalf("topics %+v", w.TopicConfigTable)
	}
	empty, err := DecodeRegisterBrokerBody(nil)
	if err != nil || empty.TopicConfigSerializeWrapper.TopicConfigTable != nil {
		t.Fatalf("empty body: %v %+v", err, empty)
	}
}

func TestDecodeRegisterBrokerBodyRejects(t *testing.T) {
	bad := map[string]string{
		"not json":       `{"topicConfigSerializeWrapper":`,
		"trailing":       `{} {}`,
		"bad topic name": `{"topicConfigSerializeWrapper":{"topicConfigTable":{"a b":{"perm":6}}}}`,
		"name mismatch":  `{"topicConfigSerializeWrapper":{"topicConfigTable":{"A":{"topicName":"B","perm":6}}}}`,
		"negative queue": `{"topicConfigSerializeWrapper":{"topicConfigTable":{"A":{"readQueueNums":-1}}}}`,
		"huge queue":     `{"topicConfigSerializeWrapper":{"topicConfigTable":{"A":{"writeQueueNums":100000000}}}}`,
		"bad perm":       `{"topicConfigSerializeWrapper":{"topicConfigTable":{"A":{"perm":99}}}}`,
		"wrong type":     `{"topicConfigSerializeWrapper":{"dataVersion":{"counter":"x"}}}`,
		"long name":      `{"topicConfigSerializeWrapper":{"topicConfigTable":{"` + strings.Repeat("a", 256) + `":{}}}}`,
	}
	for name, in := range bad {
		if _, err := DecodeRegisterBrokerBody([]byte(in)); err == nil {
			t.Errorf("%s: accepted %q", name, in)
		}
	}
}

func TestValidateBrokerAddr(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:10911", "[::1]:10911", "broker-0.raftmq:10911"} {
		if err := ValidateBrokerAddr(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":10911", "a,b:1", `"a":1`, "a :1"} {
		if err := ValidateBrokerAddr(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzRegisterBrokerBody(f *testing.F) {
	f.Add([]byte(wiretest.RegisterJava))
	f.Add([]byte(`{}`))
	f.Add([]byte(``))
	f.Add([]byte(`{"topicConfigSerializeWrapper":{"topicConfigTable":{"A":{"perm":6,"readQueueNums":1,"writeQueueNums":1}}}}`))
	f.Add([]byte(`{"topicConfigSerializeWrapper":{"dataVersion":{"counter":1e400}}}`))
	f.Add([]byte(`[1,2,3]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := DecodeRegisterBrokerBody(in)
		if err != nil {
			return
		}
		// Whatever decodes must be a registration the table accepts and routes
		// that encode into JSON the Go client can read.
		rt := NewRouteTable(time.Minute)
		topics := b.TopicConfigSerializeWrapper.TopicConfigTable
		if topics == nil {
			topics = map[string]wire.TopicConfig{}
		}
		_, err = rt.Register(Registration{ClusterName: "c", BrokerName: "b", BrokerAddr: "1.2.3.4:5",
			DataVersion: b.TopicConfigSerializeWrapper.DataVersion, Topics: topics}, t0)
		if err != nil {
			t.Fatalf("decoded body refused by the table: %v", err)
		}
		for name, tc := range topics {
			rd, ok := rt.TopicRoute(name)
			if !ok {
				t.Fatalf("topic %q has no route", name)
			}
			q := rd.QueueDatas[0]
			if q.ReadQueueNums != tc.ReadQueueNums || q.WriteQueueNums != tc.WriteQueueNums || q.Perm != tc.Perm {
				t.Fatalf("route of %q: %+v vs %+v", name, q, tc)
			}
			js, err := wire.Marshal(rd)
			if err != nil {
				t.Fatal(err)
			}
			var back wire.TopicRouteData
			if err := json.Unmarshal(js, &back); err != nil {
				t.Fatalf("route JSON does not parse: %v", err)
			}
		}
	})
}
