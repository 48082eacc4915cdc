package namesrv

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// goClientBrokerAddrs mimics how rocketmq-client-go v2 (internal/route.go) reads
// a brokerAddrs object: raw text, braces stripped, split on ',', each item split
// at the first ':', quotes removed, key parsed as int64 (errors become 0).
func goClientBrokerAddrs(raw string) map[int64]string {
	out := map[int64]string{}
	for _, item := range strings.Split(raw[1:len(raw)-1], ",") {
		i := strings.Index(item, ":")
		if i < 0 {
			continue
		}
		id, _ := strconv.ParseInt(strings.ReplaceAll(item[:i], `"`, ""), 10, 64)
		out[id] = strings.ReplaceAll(item[i+1:], `"`, "")
	}
	return out
}

func TestTopicRouteDataGolden(t *testing.T) {
	rt := NewRouteTable(time.Minute)
	mustRegister(t, rt, Registration{
		ClusterName: "DefaultCluster", BrokerName: "broker-a", BrokerAddr: "10.0.0.1:10911", BrokerID: 0,
		Topics: map[string]TopicConfig{"TopicTest": {ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}},
	}, t0)
	mustRegister(t, rt, Registration{
		ClusterName: "DefaultCluster", BrokerName: "broker-a", BrokerAddr: "10.0.0.2:10911", BrokerID: 1,
	}, t0)
	rd, ok := rt.TopicRoute("TopicTest")
	if !ok {
		t.Fatal("no route")
	}
	got, err := marshalCompact(rd)
	if err != nil {
		t.Fatal(err)
	}
	// PROTOCOL.md §5.1, byte for byte.
	const want = `{"brokerDatas":[{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}`
	if string(got) != want {
		t.Fatalf("route JSON\n got %s\nwant %s", got, want)
	}

	// What the Go client extracts from it.
	var generic struct {
		QueueDatas  []map[string]any  `json:"queueDatas"`
		BrokerDatas []json.RawMessage `json:"brokerDatas"`
	}
	if err := json.Unmarshal(got, &generic); err != nil {
		t.Fatal(err)
	}
	if generic.QueueDatas == nil {
		t.Fatal("queueDatas missing: the Go client cannot decode the route")
	}
	var bd struct {
		BrokerAddrs json.RawMessage `json:"brokerAddrs"`
	}
	if err := json.Unmarshal(generic.BrokerDatas[0], &bd); err != nil || len(bd.BrokerAddrs) < 2 {
		t.Fatalf("brokerAddrs missing (the Go client would panic): %v", err)
	}
	addrs := goClientBrokerAddrs(string(bd.BrokerAddrs))
	if !reflect.DeepEqual(addrs, map[int64]string{0: "10.0.0.1:10911", 1: "10.0.0.2:10911"}) {
		t.Fatalf("Go client would read brokerAddrs as %v", addrs)
	}
}

func TestTopicRouteDataEmptyAddrsAndOrderConf(t *testing.T) {
	rd := &TopicRouteData{
		BrokerDatas:       []BrokerData{{BrokerAddrs: map[int64]string{}, BrokerName: "b", Cluster: "c"}},
		FilterServerTable: map[string][]string{},
		OrderTopicConf:    "b:4",
		QueueDatas:        []QueueData{},
	}
	got, err := marshalCompact(rd)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"brokerDatas":[{"brokerAddrs":{},"brokerName":"b","cluster":"c","enableActingMaster":false}],"filterServerTable":{},"orderTopicConf":"b:4","queueDatas":[]}`
	if string(got) != want {
		t.Fatalf("got %s", got)
	}
	if len(goClientBrokerAddrs("{}")) != 0 {
		t.Fatal("empty brokerAddrs parsed to something")
	}
}

func TestClusterInfoAndListsGolden(t *testing.T) {
	ci := ClusterInfo{
		BrokerAddrTable: map[string]BrokerData{"broker-a": {
			BrokerAddrs: map[int64]string{0: "10.0.0.1:10911"}, BrokerName: "broker-a", Cluster: "DefaultCluster"}},
		ClusterAddrTable: map[string][]string{"DefaultCluster": {"broker-a"}},
	}
	got, _ := marshalCompact(ci)
	const want = `{"brokerAddrTable":{"broker-a":{"brokerAddrs":{"0":"10.0.0.1:10911"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}},"clusterAddrTable":{"DefaultCluster":["broker-a"]}}`
	if string(got) != want {
		t.Fatalf("cluster info\n got %s\nwant %s", got, want)
	}
	got, _ = marshalCompact(TopicList{TopicList: []string{"%RETRY%cg", "TBW102"}})
	if string(got) != `{"topicList":["%RETRY%cg","TBW102"]}` {
		t.Fatalf("topic list %s", got)
	}
	got, _ = marshalCompact(KVTable{Table: map[string]string{"k": "v<&>"}})
	if string(got) != `{"table":{"k":"v<&>"}}` {
		t.Fatalf("kv table %s", got)
	}
}

// registerBodyJava is PROTOCOL.md §5.2's example of what a Java broker sends.
const registerBodyJava = `{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":7,"stateVersion":3,"timestamp":1700000000000},"topicConfigTable":{"TopicTest":{"attributes":{},"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"TopicTest","topicSysFlag":0,"writeQueueNums":4},"TBW102":{"attributes":{},"order":false,"perm":7,"readQueueNums":8,"topicFilterType":"SINGLE_TAG","topicName":"TBW102","topicSysFlag":0,"writeQueueNums":8}},"topicQueueMappingInfoMap":{},"topicQueueMappingDetailMap":{},"mappingDataVersion":{"counter":0,"stateVersion":0,"timestamp":1700000000000}}}`

func TestDecodeRegisterBrokerBody(t *testing.T) {
	b, err := DecodeRegisterBrokerBody([]byte(registerBodyJava))
	if err != nil {
		t.Fatal(err)
	}
	w := b.TopicConfigSerializeWrapper
	if w.DataVersion != (DataVersion{Counter: 7, StateVersion: 3, Timestamp: 1700000000000}) {
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
	f.Add([]byte(registerBodyJava))
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
			topics = map[string]TopicConfig{}
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
			js, err := marshalCompact(rd)
			if err != nil {
				t.Fatal(err)
			}
			var back TopicRouteData
			if err := json.Unmarshal(js, &back); err != nil {
				t.Fatalf("route JSON does not parse: %v", err)
			}
		}
	})
}
