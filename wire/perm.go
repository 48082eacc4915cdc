package wire

// Permission bits of a topic or broker (RocketMQ PermName, docs/protocol.md §6.1).
const (
	PermPriority = 8
	PermRead     = 4
	PermWrite    = 2
	// PermInherit marks a topic that may serve as an auto-create template
	// (TBW102 has 7).
	PermInherit = 1
	// PermAll is every known bit; a perm with any other bit is invalid.
	PermAll = PermPriority | PermRead | PermWrite | PermInherit
)

// TopicFilterType values of a TopicConfig.
const (
	TopicFilterSingleTag = "SINGLE_TAG" // the default
	TopicFilterMultiTag  = "MULTI_TAG"
)

// MasterID is the brokerId under which a route lists the broker that takes
// writes (for a raftmq group: its leader).
const MasterID int64 = 0

// AutoCreateTopic is the topic whose config a broker copies when a producer
// sends to a topic that does not exist (Java's
// TopicValidator.AUTO_CREATE_TOPIC_KEY_TOPIC); producers name it in their
// send header's defaultTopic.
const AutoCreateTopic = "TBW102"
