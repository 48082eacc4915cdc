// Package wiretest holds what tests of the wire bodies share: the bodies
// Apache RocketMQ sends (docs/protocol.md §5) as golden strings, and the way
// the official Go client reads a route's brokerAddrs. It is imported by tests
// only.
package wiretest

import (
	"strconv"
	"strings"
)

// Golden bodies as Apache RocketMQ writes them (fastjson: compact, keys in
// alphabetical order).
const (
	// RouteJava is a GET_ROUTEINFO_BY_TOPIC answer: one group of two members.
	RouteJava = `{"brokerDatas":[{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}`
	// RegisterJava is a REGISTER_BROKER body of a 5.x broker, with the
	// static-topic mapping fields raftmq ignores.
	RegisterJava = `{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":7,"stateVersion":3,"timestamp":1700000000000},"topicConfigTable":{"TopicTest":{"attributes":{},"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"TopicTest","topicSysFlag":0,"writeQueueNums":4},"TBW102":{"attributes":{},"order":false,"perm":7,"readQueueNums":8,"topicFilterType":"SINGLE_TAG","topicName":"TBW102","topicSysFlag":0,"writeQueueNums":8}},"topicQueueMappingInfoMap":{},"topicQueueMappingDetailMap":{},"mappingDataVersion":{"counter":0,"stateVersion":0,"timestamp":1700000000000}}}`
	// ClusterJava is a GET_BROKER_CLUSTER_INFO answer.
	ClusterJava = `{"brokerAddrTable":{"broker-a":{"brokerAddrs":{"0":"10.0.0.1:10911"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}},"clusterAddrTable":{"DefaultCluster":["broker-a"]}}`
)

// GoClientBrokerAddrs reads a brokerAddrs object the way rocketmq-client-go
// v2 (internal/route.go) does: raw text, braces stripped, split on ',', each
// item split at its first ':', quotes removed, the key parsed as an integer
// (a failure gives 0).
func GoClientBrokerAddrs(raw string) map[int64]string {
	out := map[int64]string{}
	if len(raw) < 2 {
		return out
	}
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
