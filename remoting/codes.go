package remoting

import (
	"slices"
	"strconv"
)

// Request codes (docs/protocol.md §2.2). They travel in Command.Code of a request.
const (
	SendMessage                   int32 = 10
	PullMessage                   int32 = 11
	QueryMessage                  int32 = 12
	QueryConsumerOffset           int32 = 14
	UpdateConsumerOffset          int32 = 15
	UpdateAndCreateTopic          int32 = 17
	GetAllTopicConfig             int32 = 21
	GetBrokerRuntimeInfo          int32 = 28
	SearchOffsetByTimestamp       int32 = 29
	GetMaxOffset                  int32 = 30
	GetMinOffset                  int32 = 31
	GetEarliestMsgStoretime       int32 = 32
	ViewMessageByID               int32 = 33
	HeartBeat                     int32 = 34
	UnregisterClient              int32 = 35
	ConsumerSendMsgBack           int32 = 36
	EndTransaction                int32 = 37
	GetConsumerListByGroup        int32 = 38
	CheckTransactionState         int32 = 39
	NotifyConsumerIdsChanged      int32 = 40
	LockBatchMQ                   int32 = 41
	UnlockBatchMQ                 int32 = 42
	CheckClientConfig             int32 = 46
	PutKVConfig                   int32 = 100
	GetKVConfig                   int32 = 101
	DeleteKVConfig                int32 = 102
	RegisterBroker                int32 = 103
	UnregisterBroker              int32 = 104
	GetRouteInfoByTopic           int32 = 105
	GetBrokerClusterInfo          int32 = 106
	GetAllSubscriptionGroupConfig int32 = 201
	WipeWritePermOfBroker         int32 = 205
	GetAllTopicListFromNameserver int32 = 206
	DeleteTopicInBroker           int32 = 215
	DeleteTopicInNamesrv          int32 = 216
	GetKVListByNamespace          int32 = 219
	ResetConsumerClientOffset     int32 = 220
	GetConsumerStatusFromClient   int32 = 221
	GetTopicsByCluster            int32 = 224
	GetConsumerRunningInfo        int32 = 307
	ConsumeMessageDirectly        int32 = 309
	SendMessageV2                 int32 = 310
	SendBatchMessage              int32 = 320
	QueryDataVersion              int32 = 322
	SendReplyMessage              int32 = 324
	SendReplyMessageV2            int32 = 325
	PushReplyMessageToClient      int32 = 326
	AddWritePermOfBroker          int32 = 327
	LitePullMessage               int32 = 361
	BrokerHeartbeat               int32 = 904
)

// Response codes (docs/protocol.md §2.1). They travel in Command.Code of a response.
// Their names are distinct from the request code names above.
const (
	Success                              int32 = 0
	SystemError                          int32 = 1
	SystemBusy                           int32 = 2
	RequestCodeNotSupported              int32 = 3
	TransactionFailed                    int32 = 4
	FlushDiskTimeout                     int32 = 10
	SlaveNotAvailable                    int32 = 11
	FlushSlaveTimeout                    int32 = 12
	MessageIllegal                       int32 = 13
	ServiceNotAvailable                  int32 = 14
	VersionNotSupported                  int32 = 15
	NoPermission                         int32 = 16
	TopicNotExist                        int32 = 17
	TopicExistAlready                    int32 = 18
	PullNotFound                         int32 = 19
	PullRetryImmediately                 int32 = 20
	PullOffsetMoved                      int32 = 21
	QueryNotFound                        int32 = 22
	SubscriptionParseFailed              int32 = 23
	SubscriptionNotExist                 int32 = 24
	SubscriptionNotLatest                int32 = 25
	SubscriptionGroupNotExist            int32 = 26
	FilterDataNotExist                   int32 = 27
	FilterDataNotLatest                  int32 = 28
	InvalidParameter                     int32 = 29
	TransactionShouldCommit              int32 = 200
	TransactionShouldRollback            int32 = 201
	TransactionStateUnknow               int32 = 202
	TransactionStateGroupWrong           int32 = 203
	NoBuyerID                            int32 = 204
	NotInCurrentUnit                     int32 = 205
	ConsumerNotOnline                    int32 = 206
	ConsumeMsgTimeout                    int32 = 207
	NoMessage                            int32 = 208
	PollingFull                          int32 = 209
	PollingTimeout                       int32 = 210
	BrokerNotExist                       int32 = 211
	BrokerDispatchNotComplete            int32 = 212
	BroadcastConsumption                 int32 = 213
	FlowControl                          int32 = 215
	NotLeaderForQueue                    int32 = 501
	IllegalOperation                     int32 = 604
	GoAway                               int32 = 1500
	ControllerFencedMasterEpoch          int32 = 2000
	ControllerFencedSyncStateSetEpoch    int32 = 2001
	ControllerInvalidMaster              int32 = 2002
	ControllerInvalidReplicas            int32 = 2003
	ControllerMasterNotAvailable         int32 = 2004
	ControllerInvalidRequest             int32 = 2005
	ControllerBrokerNotAlive             int32 = 2006
	ControllerNotLeader                  int32 = 2007
	ControllerBrokerMetadataNotExist     int32 = 2008
	ControllerInvalidCleanBrokerMetadata int32 = 2009
	ControllerBrokerNeedToBeRegistered   int32 = 2010
	ControllerMasterStillExist           int32 = 2011
	ControllerElectMasterFailed          int32 = 2012
	ControllerAlterSyncStateSetFailed    int32 = 2013
	ControllerBrokerIDInvalid            int32 = 2014
	ControllerJRaftInternalError         int32 = 2015
	ControllerBrokerLiveInfoNotExists    int32 = 2016
)

var requestCodeNames = map[int32]string{
	SendMessage: "SEND_MESSAGE", PullMessage: "PULL_MESSAGE", QueryMessage: "QUERY_MESSAGE",
	QueryConsumerOffset: "QUERY_CONSUMER_OFFSET", UpdateConsumerOffset: "UPDATE_CONSUMER_OFFSET",
	UpdateAndCreateTopic: "UPDATE_AND_CREATE_TOPIC", GetAllTopicConfig: "GET_ALL_TOPIC_CONFIG",
	GetBrokerRuntimeInfo: "GET_BROKER_RUNTIME_INFO", SearchOffsetByTimestamp: "SEARCH_OFFSET_BY_TIMESTAMP",
	GetMaxOffset: "GET_MAX_OFFSET", GetMinOffset: "GET_MIN_OFFSET", GetEarliestMsgStoretime: "GET_EARLIEST_MSG_STORETIME",
	ViewMessageByID: "VIEW_MESSAGE_BY_ID", HeartBeat: "HEART_BEAT", UnregisterClient: "UNREGISTER_CLIENT",
	ConsumerSendMsgBack: "CONSUMER_SEND_MSG_BACK", EndTransaction: "END_TRANSACTION",
	GetConsumerListByGroup: "GET_CONSUMER_LIST_BY_GROUP", CheckTransactionState: "CHECK_TRANSACTION_STATE",
	NotifyConsumerIdsChanged: "NOTIFY_CONSUMER_IDS_CHANGED", LockBatchMQ: "LOCK_BATCH_MQ",
	UnlockBatchMQ: "UNLOCK_BATCH_MQ", CheckClientConfig: "CHECK_CLIENT_CONFIG", PutKVConfig: "PUT_KV_CONFIG",
	GetKVConfig: "GET_KV_CONFIG", DeleteKVConfig: "DELETE_KV_CONFIG", RegisterBroker: "REGISTER_BROKER",
	UnregisterBroker: "UNREGISTER_BROKER", GetRouteInfoByTopic: "GET_ROUTEINFO_BY_TOPIC",
	GetBrokerClusterInfo: "GET_BROKER_CLUSTER_INFO", GetAllSubscriptionGroupConfig: "GET_ALL_SUBSCRIPTIONGROUP_CONFIG",
	WipeWritePermOfBroker: "WIPE_WRITE_PERM_OF_BROKER", GetAllTopicListFromNameserver: "GET_ALL_TOPIC_LIST_FROM_NAMESERVER",
	DeleteTopicInBroker: "DELETE_TOPIC_IN_BROKER", DeleteTopicInNamesrv: "DELETE_TOPIC_IN_NAMESRV",
	GetKVListByNamespace: "GET_KVLIST_BY_NAMESPACE", ResetConsumerClientOffset: "RESET_CONSUMER_CLIENT_OFFSET",
	GetConsumerStatusFromClient: "GET_CONSUMER_STATUS_FROM_CLIENT", GetTopicsByCluster: "GET_TOPICS_BY_CLUSTER",
	GetConsumerRunningInfo: "GET_CONSUMER_RUNNING_INFO", ConsumeMessageDirectly: "CONSUME_MESSAGE_DIRECTLY",
	SendMessageV2: "SEND_MESSAGE_V2", SendBatchMessage: "SEND_BATCH_MESSAGE", QueryDataVersion: "QUERY_DATA_VERSION",
	SendReplyMessage: "SEND_REPLY_MESSAGE", SendReplyMessageV2: "SEND_REPLY_MESSAGE_V2",
	PushReplyMessageToClient: "PUSH_REPLY_MESSAGE_TO_CLIENT", AddWritePermOfBroker: "ADD_WRITE_PERM_OF_BROKER",
	LitePullMessage: "LITE_PULL_MESSAGE", BrokerHeartbeat: "BROKER_HEARTBEAT",
	RaftStatus: "RAFT_STATUS", RaftTransferLeader: "RAFT_TRANSFER_LEADER", // raftmq's own (codes_raftmq.go)
}

var responseCodeNames = map[int32]string{
	Success: "SUCCESS", SystemError: "SYSTEM_ERROR", SystemBusy: "SYSTEM_BUSY",
	RequestCodeNotSupported: "REQUEST_CODE_NOT_SUPPORTED", TransactionFailed: "TRANSACTION_FAILED",
	FlushDiskTimeout: "FLUSH_DISK_TIMEOUT", SlaveNotAvailable: "SLAVE_NOT_AVAILABLE",
	FlushSlaveTimeout: "FLUSH_SLAVE_TIMEOUT", MessageIllegal: "MESSAGE_ILLEGAL",
	ServiceNotAvailable: "SERVICE_NOT_AVAILABLE", VersionNotSupported: "VERSION_NOT_SUPPORTED",
	NoPermission: "NO_PERMISSION", TopicNotExist: "TOPIC_NOT_EXIST", TopicExistAlready: "TOPIC_EXIST_ALREADY",
	PullNotFound: "PULL_NOT_FOUND", PullRetryImmediately: "PULL_RETRY_IMMEDIATELY", PullOffsetMoved: "PULL_OFFSET_MOVED",
	QueryNotFound: "QUERY_NOT_FOUND", SubscriptionParseFailed: "SUBSCRIPTION_PARSE_FAILED",
	SubscriptionNotExist: "SUBSCRIPTION_NOT_EXIST", SubscriptionNotLatest: "SUBSCRIPTION_NOT_LATEST",
	SubscriptionGroupNotExist: "SUBSCRIPTION_GROUP_NOT_EXIST", FilterDataNotExist: "FILTER_DATA_NOT_EXIST",
	FilterDataNotLatest: "FILTER_DATA_NOT_LATEST", InvalidParameter: "INVALID_PARAMETER",
	TransactionShouldCommit: "TRANSACTION_SHOULD_COMMIT", TransactionShouldRollback: "TRANSACTION_SHOULD_ROLLBACK",
	TransactionStateUnknow: "TRANSACTION_STATE_UNKNOW", TransactionStateGroupWrong: "TRANSACTION_STATE_GROUP_WRONG",
	NoBuyerID: "NO_BUYER_ID", NotInCurrentUnit: "NOT_IN_CURRENT_UNIT", ConsumerNotOnline: "CONSUMER_NOT_ONLINE",
	ConsumeMsgTimeout: "CONSUME_MSG_TIMEOUT", NoMessage: "NO_MESSAGE", PollingFull: "POLLING_FULL",
	PollingTimeout: "POLLING_TIMEOUT", BrokerNotExist: "BROKER_NOT_EXIST",
	BrokerDispatchNotComplete: "BROKER_DISPATCH_NOT_COMPLETE", BroadcastConsumption: "BROADCAST_CONSUMPTION",
	FlowControl: "FLOW_CONTROL", NotLeaderForQueue: "NOT_LEADER_FOR_QUEUE", IllegalOperation: "ILLEGAL_OPERATION",
	GoAway:                               "GO_AWAY",
	ControllerFencedMasterEpoch:          "CONTROLLER_FENCED_MASTER_EPOCH",
	ControllerFencedSyncStateSetEpoch:    "CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH",
	ControllerInvalidMaster:              "CONTROLLER_INVALID_MASTER",
	ControllerInvalidReplicas:            "CONTROLLER_INVALID_REPLICAS",
	ControllerMasterNotAvailable:         "CONTROLLER_MASTER_NOT_AVAILABLE",
	ControllerInvalidRequest:             "CONTROLLER_INVALID_REQUEST",
	ControllerBrokerNotAlive:             "CONTROLLER_BROKER_NOT_ALIVE",
	ControllerNotLeader:                  "CONTROLLER_NOT_LEADER",
	ControllerBrokerMetadataNotExist:     "CONTROLLER_BROKER_METADATA_NOT_EXIST",
	ControllerInvalidCleanBrokerMetadata: "CONTROLLER_INVALID_CLEAN_BROKER_METADATA",
	ControllerBrokerNeedToBeRegistered:   "CONTROLLER_BROKER_NEED_TO_BE_REGISTERED",
	ControllerMasterStillExist:           "CONTROLLER_MASTER_STILL_EXIST",
	ControllerElectMasterFailed:          "CONTROLLER_ELECT_MASTER_FAILED",
	ControllerAlterSyncStateSetFailed:    "CONTROLLER_ALTER_SYNC_STATE_SET_FAILED",
	ControllerBrokerIDInvalid:            "CONTROLLER_BROKER_ID_INVALID",
	ControllerJRaftInternalError:         "CONTROLLER_JRAFT_INTERNAL_ERROR",
	ControllerBrokerLiveInfoNotExists:    "CONTROLLER_BROKER_LIVE_INFO_NOT_EXISTS",
}

// CodeName returns the RocketMQ name of a request code (e.g. "SEND_MESSAGE"), or
// "CODE_<n>" for codes this package does not name. Request and response codes
// overlap numerically; use ResponseCodeName for the code of a response.
func CodeName(code int32) string {
	if n, ok := requestCodeNames[code]; ok {
		return n
	}
	return "CODE_" + strconv.FormatInt(int64(code), 10)
}

// ResponseCodeName returns the RocketMQ name of a response code (e.g. "SYSTEM_BUSY"),
// or "CODE_<n>" for unknown codes.
func ResponseCodeName(code int32) string {
	if n, ok := responseCodeNames[code]; ok {
		return n
	}
	return "CODE_" + strconv.FormatInt(int64(code), 10)
}

// RequestCodes returns every request code this package names, in ascending
// order: the list a per-code table elsewhere (the acl package's) must cover.
func RequestCodes() []int32 {
	out := make([]int32, 0, len(requestCodeNames))
	for c := range requestCodeNames {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}
