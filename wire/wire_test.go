package wire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/raftmq/raftmq/wire/wiretest"
)

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// goClientQueueData is the Go client's QueueData, tags included (its flag
// field is misspelt, so it never reads topicSysFlag).
type goClientQueueData struct {
	BrokerName     string `json:"brokerName"`
	ReadQueueNums  int    `json:"readQueueNums"`
	WriteQueueNums int    `json:"writeQueueNums"`
	Perm           int    `json:"perm"`
	TopicSynFlag   int    `json:"topicSynFlag"`
}

func TestTopicRouteDataGolden(t *testing.T) {
	rd := TopicRouteData{
		BrokerDatas: []BrokerData{{BrokerAddrs: map[int64]string{0: "10.0.0.1:10911", 1: "10.0.0.2:10911"},
			BrokerName: "broker-a", Cluster: "DefaultCluster"}},
		FilterServerTable: map[string][]string{},
		QueueDatas:        []QueueData{{BrokerName: "broker-a", Perm: PermRead | PermWrite, ReadQueueNums: 4, WriteQueueNums: 4}},
	}
	if got := mustMarshal(t, rd); got != wiretest.RouteJava {
		t.Fatalf("route\n got %s\nwant %s", got, wiretest.RouteJava)
	}
	var back TopicRouteData
	if err := json.Unmarshal([]byte(wiretest.RouteJava), &back); err != nil || !reflect.DeepEqual(back, rd) {
		t.Fatalf("decoding Java's route: %v\n got %+v\nwant %+v", err, back, rd)
	}

	// What the Go client reads from it.
	var generic struct {
		QueueDatas  []goClientQueueData `json:"queueDatas"`
		BrokerDatas []struct {
			BrokerAddrs json.RawMessage `json:"brokerAddrs"`
			BrokerName  string          `json:"brokerName"`
			Cluster     string          `json:"cluster"`
		} `json:"brokerDatas"`
	}
	if err := json.Unmarshal([]byte(mustMarshal(t, rd)), &generic); err != nil {
		t.Fatal(err)
	}
	if want := (goClientQueueData{BrokerName: "broker-a", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}); len(generic.QueueDatas) != 1 || generic.QueueDatas[0] != want {
		t.Fatalf("Go client reads queueDatas %+v", generic.QueueDatas)
	}
	bd := generic.BrokerDatas[0]
	if bd.BrokerName != "broker-a" || bd.Cluster != "DefaultCluster" {
		t.Fatalf("Go client reads brokerData %+v", bd)
	}
	if addrs := wiretest.GoClientBrokerAddrs(string(bd.BrokerAddrs)); !reflect.DeepEqual(addrs, rd.BrokerDatas[0].BrokerAddrs) {
		t.Fatalf("Go client reads brokerAddrs %v", addrs)
	}
}

func TestTopicRouteDataEmptyAddrsAndOrderConf(t *testing.T) {
	rd := TopicRouteData{
		BrokerDatas:       []BrokerData{{BrokerAddrs: map[int64]string{}, BrokerName: "b", Cluster: "c"}},
		FilterServerTable: map[string][]string{},
		OrderTopicConf:    "b:4",
		QueueDatas:        []QueueData{},
	}
	const want = `{"brokerDatas":[{"brokerAddrs":{},"brokerName":"b","cluster":"c","enableActingMaster":false}],"filterServerTable":{},"orderTopicConf":"b:4","queueDatas":[]}`
	if got := mustMarshal(t, rd); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	if len(wiretest.GoClientBrokerAddrs("{}")) != 0 {
		t.Fatal("empty brokerAddrs parsed to something")
	}
}

func TestBrokerDataHelpers(t *testing.T) {
	bd := BrokerData{BrokerAddrs: map[int64]string{2: "c:1", 0: "a:1", 1: "b:1"}}
	if bd.LeaderAddr() != "a:1" {
		t.Fatalf("leader %q", bd.LeaderAddr())
	}
	want := []BrokerMember{{0, "a:1"}, {1, "b:1"}, {2, "c:1"}}
	if got := bd.Members(); !reflect.DeepEqual(got, want) {
		t.Fatalf("members %+v", got)
	}
	if (BrokerData{}).LeaderAddr() != "" || len((BrokerData{}).Members()) != 0 {
		t.Fatal("an empty BrokerData has a leader or members")
	}
	rd := TopicRouteData{BrokerDatas: []BrokerData{{BrokerName: "x"}, bd}}
	if _, ok := rd.Broker("nope"); ok {
		t.Fatal("found a group the route does not list")
	}
	if got, ok := rd.Broker("x"); !ok || got.BrokerName != "x" {
		t.Fatalf("Broker(x) = %+v %v", got, ok)
	}
}

func TestRegisterBrokerBodyGolden(t *testing.T) {
	var body RegisterBrokerBody
	if err := json.Unmarshal([]byte(wiretest.RegisterJava), &body); err != nil {
		t.Fatal(err)
	}
	w := body.TopicConfigSerializeWrapper
	if w.DataVersion != (DataVersion{Counter: 7, StateVersion: 3, Timestamp: 1700000000000}) {
		t.Fatalf("data version %+v", w.DataVersion)
	}
	want := map[string]TopicConfig{
		"TopicTest": NewTopicConfig("TopicTest", 4, PermRead|PermWrite),
		"TBW102":    NewTopicConfig("TBW102", 8, PermRead|PermWrite|PermInherit),
	}
	if !reflect.DeepEqual(w.TopicConfigTable, want) {
		t.Fatalf("topics\n got %+v\nwant %+v", w.TopicConfigTable, want)
	}
	// What a raftmq broker sends is Java's body without the mapping fields.
	javaWithoutMapping := strings.Replace(wiretest.RegisterJava,
		`,"topicQueueMappingInfoMap":{},"topicQueueMappingDetailMap":{},"mappingDataVersion":{"counter":0,"stateVersion":0,"timestamp":1700000000000}`, "", 1)
	// encoding/json sorts map keys; fastjson keeps insertion order.
	javaWithoutMapping = strings.Replace(javaWithoutMapping,
		`"TopicTest":{"attributes":{},"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"TopicTest","topicSysFlag":0,"writeQueueNums":4},"TBW102":{"attributes":{},"order":false,"perm":7,"readQueueNums":8,"topicFilterType":"SINGLE_TAG","topicName":"TBW102","topicSysFlag":0,"writeQueueNums":8}`,
		`"TBW102":{"attributes":{},"order":false,"perm":7,"readQueueNums":8,"topicFilterType":"SINGLE_TAG","topicName":"TBW102","topicSysFlag":0,"writeQueueNums":8},"TopicTest":{"attributes":{},"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"TopicTest","topicSysFlag":0,"writeQueueNums":4}`, 1)
	sent := RegisterBrokerBody{FilterServerList: []string{}, TopicConfigSerializeWrapper: TopicConfigWrapper{
		DataVersion: DataVersion{Counter: 7, StateVersion: 3, Timestamp: 1700000000000}, TopicConfigTable: want}}
	if got := mustMarshal(t, sent); got != javaWithoutMapping {
		t.Fatalf("register body\n got %s\nwant %s", got, javaWithoutMapping)
	}
}

func TestTopicConfigQueueCount(t *testing.T) {
	tc := TopicConfig{ReadQueueNums: 3, WriteQueueNums: 8}
	if tc.QueueCount() != 8 {
		t.Fatalf("QueueCount %d", tc.QueueCount())
	}
	tc.ReadQueueNums = 16
	if tc.QueueCount() != 16 {
		t.Fatalf("QueueCount %d", tc.QueueCount())
	}
}

func TestClusterInfoAndListsGolden(t *testing.T) {
	ci := ClusterInfo{
		BrokerAddrTable: map[string]BrokerData{"broker-a": {
			BrokerAddrs: map[int64]string{0: "10.0.0.1:10911"}, BrokerName: "broker-a", Cluster: "DefaultCluster"}},
		ClusterAddrTable: map[string][]string{"DefaultCluster": {"broker-a"}},
	}
	if got := mustMarshal(t, ci); got != wiretest.ClusterJava {
		t.Fatalf("cluster info\n got %s\nwant %s", got, wiretest.ClusterJava)
	}
	// Java's TopicList may carry brokerAddr (null or a string).
	var tl TopicList
	if err := json.Unmarshal([]byte(`{"topicList":["TopicTest","TBW102","%RETRY%cg"],"brokerAddr":null}`), &tl); err != nil ||
		!reflect.DeepEqual(tl.TopicList, []string{"TopicTest", "TBW102", "%RETRY%cg"}) {
		t.Fatalf("topic list %v %+v", err, tl)
	}
	if got := mustMarshal(t, TopicList{TopicList: []string{"%RETRY%cg", "TBW102"}}); got != `{"topicList":["%RETRY%cg","TBW102"]}` {
		t.Fatalf("topic list %s", got)
	}
	// No HTML escaping: Java reads the bytes as they are.
	if got := mustMarshal(t, KVTable{Table: map[string]string{"k": "v<&>"}}); got != `{"table":{"k":"v<&>"}}` {
		t.Fatalf("kv table %s", got)
	}
}

func TestClusterInfoGroups(t *testing.T) {
	var ci ClusterInfo
	if err := json.Unmarshal([]byte(`{"brokerAddrTable":{"b":{"brokerAddrs":{"0":"b:1"},"cluster":"C2"},"a":{"brokerAddrs":{"0":"a:1"},"brokerName":"a","cluster":"C1"},"c":{"brokerAddrs":{},"brokerName":"c","cluster":"C1"}},"clusterAddrTable":{}}`), &ci); err != nil {
		t.Fatal(err)
	}
	names := func(gs []BrokerData) (out []string) {
		for _, g := range gs {
			out = append(out, g.BrokerName)
		}
		return out
	}
	if got := names(ci.Groups("")); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("all groups %v", got)
	}
	if got := names(ci.Groups("C1")); !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Fatalf("C1 groups %v", got)
	}
}

func TestRaftStatusGolden(t *testing.T) {
	st := RaftStatus{Group: "broker-a", SelfID: "n0", Role: "Leader", Term: 3, LeaderID: "n0", LeaderAddr: "10.0.0.1:7000",
		CommitIndex: 42, AppliedIndex: 41, LastIndex: 43, BrokerAddr: "127.0.0.1:10911", DuplicateKeys: 5, DuplicatesSuppressed: 2,
		Peers: []RaftPeer{{ID: "n0", Addr: "10.0.0.1:7000", Suffrage: "Voter"}, {ID: "n1", Addr: "10.0.0.2:7000", Suffrage: "Voter", LastIndex: 40}}}
	const want = `{"group":"broker-a","selfId":"n0","role":"Leader","term":3,"leaderId":"n0","leaderAddr":"10.0.0.1:7000","commitIndex":42,"appliedIndex":41,"lastIndex":43,"peers":[{"id":"n0","addr":"10.0.0.1:7000","suffrage":"Voter"},{"id":"n1","addr":"10.0.0.2:7000","suffrage":"Voter","lastIndex":40}],"brokerAddr":"127.0.0.1:10911","duplicateKeys":5,"duplicatesSuppressed":2}`
	if got := mustMarshal(t, st); got != want {
		t.Fatalf("raft status\n got %s\nwant %s", got, want)
	}
	var back RaftStatus
	if err := json.Unmarshal([]byte(want), &back); err != nil || !reflect.DeepEqual(back, st) {
		t.Fatalf("round trip: %v %+v", err, back)
	}
}

func TestAliasNames(t *testing.T) {
	alias := AliasName("broker-a", "n1")
	if alias != "broker-a@n1" {
		t.Fatalf("alias %q", alias)
	}
	if g, m, ok := SplitAlias(alias); !ok || g != "broker-a" || m != "n1" {
		t.Fatalf("split %q: %q %q %v", alias, g, m, ok)
	}
	if _, _, ok := SplitAlias("broker-a"); ok {
		t.Fatal("a plain brokerName split as an alias")
	}
}
