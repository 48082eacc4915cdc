package wire

// TopicConfig is RocketMQ's TopicConfig: one entry of a broker's
// topicConfigTable (REGISTER_BROKER, GET_ALL_TOPIC_CONFIG) and the unit of
// raftmq's replicated topic metadata.
type TopicConfig struct {
	// Attributes is never nil in what a broker sends (Java writes {}).
	Attributes      map[string]string `json:"attributes"`
	Order           bool              `json:"order"`
	Perm            int32             `json:"perm"`
	ReadQueueNums   int32             `json:"readQueueNums"`
	TopicFilterType string            `json:"topicFilterType"`
	TopicName       string            `json:"topicName"`
	TopicSysFlag    int32             `json:"topicSysFlag"`
	WriteQueueNums  int32             `json:"writeQueueNums"`
}

// NewTopicConfig is a plain topic of queues read and write queues with perm,
// filter type SINGLE_TAG and no attributes, as Java creates one by default.
func NewTopicConfig(name string, queues, perm int32) TopicConfig {
	return TopicConfig{TopicName: name, ReadQueueNums: queues, WriteQueueNums: queues, Perm: perm,
		TopicFilterType: TopicFilterSingleTag, Attributes: map[string]string{}}
}

// QueueCount is the number of queues that exist for reads or writes.
func (t TopicConfig) QueueCount() int32 {
	return max(t.ReadQueueNums, t.WriteQueueNums)
}

// DataVersion is RocketMQ's DataVersion. raftmq brokers put their Raft term
// in StateVersion when they register; the namesrv fences brokerId 0 with it.
type DataVersion struct {
	Counter      int64 `json:"counter"`
	StateVersion int64 `json:"stateVersion"`
	Timestamp    int64 `json:"timestamp"`
}

// TopicConfigWrapper is RocketMQ's TopicConfigSerializeWrapper, the body of
// GET_ALL_TOPIC_CONFIG and the heart of REGISTER_BROKER. The static-topic
// mapping fields Java 5.x adds are accepted and ignored.
type TopicConfigWrapper struct {
	DataVersion      DataVersion            `json:"dataVersion"`
	TopicConfigTable map[string]TopicConfig `json:"topicConfigTable"`
}

// RegisterBrokerBody is the uncompressed JSON body of REGISTER_BROKER
// (docs/protocol.md §5.2).
type RegisterBrokerBody struct {
	FilterServerList            []string           `json:"filterServerList"`
	TopicConfigSerializeWrapper TopicConfigWrapper `json:"topicConfigSerializeWrapper"`
}
