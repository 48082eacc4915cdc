package message

// Well-known property keys (docs/protocol.md §3.4; RocketMQ MessageConst).
const (
	PropertyKeys                       = "KEYS"
	PropertyTags                       = "TAGS"
	PropertyWaitStoreMsgOK             = "WAIT"
	PropertyDelayLevel                 = "DELAY"
	PropertyRetryTopic                 = "RETRY_TOPIC"
	PropertyRealTopic                  = "REAL_TOPIC"
	PropertyRealQueueID                = "REAL_QID"
	PropertyTransactionPrepared        = "TRAN_MSG"
	PropertyProducerGroup              = "PGROUP"
	PropertyMinOffset                  = "MIN_OFFSET"
	PropertyMaxOffset                  = "MAX_OFFSET"
	PropertyBuyerID                    = "BUYER_ID"
	PropertyOriginMessageID            = "ORIGIN_MESSAGE_ID"
	PropertyTransferFlag               = "TRANSFER_FLAG"
	PropertyCorrectionFlag             = "CORRECTION_FLAG"
	PropertyMQ2Flag                    = "MQ2_FLAG"
	PropertyReconsumeTime              = "RECONSUME_TIME"
	PropertyMsgRegion                  = "MSG_REGION"
	PropertyTraceSwitch                = "TRACE_ON"
	PropertyUniqKey                    = "UNIQ_KEY"
	PropertyExtendUniqInfo             = "EXTEND_UNIQ_INFO"
	PropertyMaxReconsumeTimes          = "MAX_RECONSUME_TIMES"
	PropertyConsumeStartTime           = "CONSUME_START_TIME"
	PropertyTransactionPreparedQOffset = "TRAN_PREPARED_QUEUE_OFFSET"
	PropertyTransactionCheckTimes      = "TRANSACTION_CHECK_TIMES"
	PropertyCheckImmunityTimeInSeconds = "CHECK_IMMUNITY_TIME_IN_SECONDS"
	PropertyInstanceID                 = "INSTANCE_ID"
	PropertyCorrelationID              = "CORRELATION_ID"
	PropertyMessageReplyToClient       = "REPLY_TO_CLIENT"
	PropertyMessageTTL                 = "TTL"
	PropertyReplyMessageArriveTime     = "ARRIVE_TIME"
	PropertyPushReplyTime              = "PUSH_REPLY_TIME"
	PropertyCluster                    = "CLUSTER"
	PropertyMessageType                = "MSG_TYPE"
	PropertyInnerMultiDispatch         = "INNER_MULTI_DISPATCH"
	PropertyInnerMultiQueueOffset      = "INNER_MULTI_QUEUE_OFFSET"
	PropertyInnerNum                   = "INNER_NUM"
	PropertyInnerBase                  = "INNER_BASE"
	PropertyTransactionID              = "__transactionId__"
	PropertyShardingKey                = "__SHARDINGKEY"
	PropertyGoShardingKey              = "SHARDING_KEY"
	PropertyTimerDeliverMS             = "TIMER_DELIVER_MS"
	PropertyTimerDelaySec              = "TIMER_DELAY_SEC"
	PropertyTimerDelayMS               = "TIMER_DELAY_MS"
	PropertyTimerOutMS                 = "TIMER_OUT_MS"
	PropertyCRC32                      = "__CRC32#"
	PropertyDLQOriginTopic             = "DLQ_ORIGIN_TOPIC"
	PropertyDLQOriginMessageID         = "DLQ_ORIGIN_MESSAGE_ID"

	// KeySeparator separates the keys inside the KEYS property.
	KeySeparator = " "
	// ReplyMessageType is the MSG_TYPE value of request/reply answers.
	ReplyMessageType = "reply"
)

// Retry and delay defaults.
const (
	// MaxReconsumeTimes is RocketMQ's default number of retries before a
	// message goes to the dead-letter queue.
	MaxReconsumeTimes = 16
	// MaxDelayLevel is the highest default delay level (2h).
	MaxDelayLevel = 18
	// RetryGroupTopicPrefix prefixes a consumer group's retry topic.
	RetryGroupTopicPrefix = "%RETRY%"
	// DLQGroupTopicPrefix prefixes a consumer group's dead-letter topic.
	DLQGroupTopicPrefix = "%DLQ%"
)

// Property separators (docs/protocol.md §3.3).
const (
	NameValueSeparator = '\x01'
	PropertySeparator  = '\x02'
)
