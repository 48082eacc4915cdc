package wire

import "sort"

// QueueData is one broker group's queues of a topic in a route. Java names
// the flag field topicSysFlag (the Go client's struct says topicSynFlag and
// so never reads it).
type QueueData struct {
	BrokerName     string `json:"brokerName"`
	Perm           int32  `json:"perm"`
	ReadQueueNums  int32  `json:"readQueueNums"`
	TopicSysFlag   int32  `json:"topicSysFlag"`
	WriteQueueNums int32  `json:"writeQueueNums"`
}

// BrokerData is one broker group (brokerName) with its live addresses by
// brokerId.
type BrokerData struct {
	// BrokerAddrs maps brokerId to "ip:port". encoding/json writes int64 keys
	// as quoted decimal object keys ({"0":"a:1"}), the form the Go client's
	// hand-rolled parser (internal/route.go) and Java both read. It must never
	// be nil in what a namesrv sends: the Go client crashes on a missing one.
	BrokerAddrs        map[int64]string `json:"brokerAddrs"`
	BrokerName         string           `json:"brokerName"`
	Cluster            string           `json:"cluster"`
	EnableActingMaster bool             `json:"enableActingMaster"`
	ZoneName           string           `json:"zoneName,omitempty"`
}

// LeaderAddr is the address registered under MasterID, or "".
func (b BrokerData) LeaderAddr() string { return b.BrokerAddrs[MasterID] }

// BrokerMember is one address of a BrokerData.
type BrokerMember struct {
	ID   int64  `json:"brokerId"`
	Addr string `json:"addr"`
}

// Members lists the group's addresses ordered by brokerId.
func (b BrokerData) Members() []BrokerMember {
	out := make([]BrokerMember, 0, len(b.BrokerAddrs))
	for id, addr := range b.BrokerAddrs {
		out = append(out, BrokerMember{ID: id, Addr: addr})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// TopicRouteData is the GET_ROUTEINFO_BY_TOPIC answer (docs/protocol.md §5.1).
type TopicRouteData struct {
	BrokerDatas []BrokerData `json:"brokerDatas"`
	// FilterServerTable is {} in what a namesrv sends; Java expects it non-null.
	FilterServerTable map[string][]string `json:"filterServerTable"`
	OrderTopicConf    string              `json:"orderTopicConf,omitempty"`
	// QueueDatas must be present (possibly empty): the Go client treats a
	// missing one as an unusable route.
	QueueDatas []QueueData `json:"queueDatas"`
}

// Broker returns the BrokerData named name, if the route lists it.
func (r *TopicRouteData) Broker(name string) (BrokerData, bool) {
	for _, b := range r.BrokerDatas {
		if b.BrokerName == name {
			return b, true
		}
	}
	return BrokerData{}, false
}

// ClusterInfo is the GET_BROKER_CLUSTER_INFO answer (docs/protocol.md §5.6).
type ClusterInfo struct {
	BrokerAddrTable  map[string]BrokerData `json:"brokerAddrTable"`
	ClusterAddrTable map[string][]string   `json:"clusterAddrTable"`
}

// Groups returns the broker groups of cluster ("" = all clusters), sorted by
// name; a group whose entry lacks its name gets its table key.
func (ci *ClusterInfo) Groups(cluster string) []BrokerData {
	var out []BrokerData
	for name, bd := range ci.BrokerAddrTable {
		if cluster != "" && bd.Cluster != cluster {
			continue
		}
		if bd.BrokerName == "" {
			bd.BrokerName = name
		}
		out = append(out, bd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].BrokerName < out[j].BrokerName })
	return out
}

// TopicList is the answer of GET_ALL_TOPIC_LIST_FROM_NAMESERVER and its kin
// (docs/protocol.md §5.7). Java's optional brokerAddr is left out.
type TopicList struct {
	TopicList []string `json:"topicList"`
}

// KVTable is RocketMQ's KVTable body: string keys to string values.
type KVTable struct {
	Table map[string]string `json:"table"`
}
