package txn

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
)

// System topics of transactions (one queue each).
const (
	// HalfTopic holds half (prepared) messages, queue 0.
	HalfTopic = "RMQ_SYS_TRANS_HALF_TOPIC"
	// OpTopic holds op records: body = half queue offsets now resolved.
	OpTopic = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
	// CheckMaxTimeTopic receives halves discarded after CheckMax checks.
	CheckMaxTimeTopic = "TRANS_CHECK_MAX_TIME_TOPIC"
	// OpTag is the TAGS of op records (RocketMQ's REMOVETAG).
	OpTag = "d"
)

// END_TRANSACTION commitOrRollback values (RocketMQ MessageSysFlag).
const (
	StateUnknown  = message.TransactionNotType      // 0
	StateCommit   = message.TransactionCommitType   // 8
	StateRollback = message.TransactionRollbackType // 12
)

// Errors.
var (
	// ErrBadHeader is wrapped by END_TRANSACTION header errors.
	ErrBadHeader = errors.New("txn: bad END_TRANSACTION header")
	// ErrNoProducerGroup: a transactional send without PGROUP can never be
	// checked nor committed.
	ErrNoProducerGroup = errors.New("txn: transactional message without PGROUP property")
	// ErrBadHalf is wrapped when a stored half record lacks what a
	// transaction needs (REAL_TOPIC, REAL_QID).
	ErrBadHalf = errors.New("txn: malformed half record")
)

// IsHalfSend reports whether a SEND_MESSAGE carries a transactional half
// message (property TRAN_MSG=true; Java's Boolean.parseBoolean).
func IsHalfSend(m *message.Message) bool {
	return strings.EqualFold(m.Properties[message.PropertyTransactionPrepared], "true")
}

// PrepareHalf is the send-path transform of a transactional message: a copy
// stored in HalfTopic queue 0 with REAL_TOPIC/REAL_QID set to msg's topic and
// queue, __transactionId__ = UNIQ_KEY and the transaction type reset to NOT
// (so the half is dispatched to the half queue and gets a queue offset).
// DELAY is kept for the commit. msg is not modified.
func PrepareHalf(msg *message.Ext) (*message.Ext, error) {
	if msg.Properties[message.PropertyProducerGroup] == "" {
		return nil, ErrNoProducerGroup
	}
	out := *msg
	out.Properties = maps.Clone(msg.Properties)
	out.Properties[message.PropertyRealTopic] = msg.Topic
	out.Properties[message.PropertyRealQueueID] = strconv.Itoa(int(msg.QueueID))
	if uk := msg.Properties[message.PropertyUniqKey]; uk != "" {
		out.Properties[message.PropertyTransactionID] = uk
	}
	out.Topic = HalfTopic
	out.QueueID = 0
	out.SysFlag = message.SetTransactionType(msg.SysFlag, message.TransactionNotType)
	return &out, nil
}

// HalfSendResult is the SEND_MESSAGE answer for a stored half.
type HalfSendResult struct {
	MsgID         string // ext msgId: offsetMsgId of the half record
	QueueID       int32  // ext queueId: the queue the producer asked for
	QueueOffset   int64  // ext queueOffset: the half-queue offset
	TransactionID string // ext transactionId: UNIQ_KEY
}

// SendResult is the answer for half after it was appended (CommitLogOffset,
// QueueOffset and StoreHost set); requestedQueueID is the send header's queue.
// The producer echoes MsgID's offset and QueueOffset in END_TRANSACTION.
func SendResult(half *message.Ext, requestedQueueID int32) HalfSendResult {
	return HalfSendResult{
		MsgID:         half.OffsetMsgID(),
		QueueID:       requestedQueueID,
		QueueOffset:   half.QueueOffset,
		TransactionID: half.Properties[message.PropertyUniqKey],
	}
}

// EndRequest is the END_TRANSACTION header.
type EndRequest struct {
	ProducerGroup        string
	TranStateTableOffset int64 // half-queue offset
	CommitLogOffset      int64 // commit-log offset of the half record
	CommitOrRollback     int32 // StateCommit, StateRollback or StateUnknown
	FromTransactionCheck bool
	MsgID                string
	TransactionID        string
}

// ParseEndTransactionHeader parses END_TRANSACTION ext fields.
func ParseEndTransactionHeader(ext map[string]string) (EndRequest, error) {
	var r EndRequest
	r.ProducerGroup = ext["producerGroup"]
	if r.ProducerGroup == "" {
		return EndRequest{}, fmt.Errorf("%w: producerGroup is missing", ErrBadHeader)
	}
	var err error
	if r.TranStateTableOffset, err = strconv.ParseInt(ext["tranStateTableOffset"], 10, 64); err != nil || r.TranStateTableOffset < 0 {
		return EndRequest{}, fmt.Errorf("%w: tranStateTableOffset %q", ErrBadHeader, ext["tranStateTableOffset"])
	}
	if r.CommitLogOffset, err = strconv.ParseInt(ext["commitLogOffset"], 10, 64); err != nil || r.CommitLogOffset < 0 {
		return EndRequest{}, fmt.Errorf("%w: commitLogOffset %q", ErrBadHeader, ext["commitLogOffset"])
	}
	state, err := strconv.ParseInt(ext["commitOrRollback"], 10, 32)
	if err != nil {
		return EndRequest{}, fmt.Errorf("%w: commitOrRollback %q", ErrBadHeader, ext["commitOrRollback"])
	}
	switch int32(state) {
	case StateUnknown, StateCommit, StateRollback:
		r.CommitOrRollback = int32(state)
	default:
		return EndRequest{}, fmt.Errorf("%w: commitOrRollback %d is not 0, 8 or 12", ErrBadHeader, state)
	}
	if v := ext["fromTransactionCheck"]; v != "" {
		if r.FromTransactionCheck, err = strconv.ParseBool(v); err != nil {
			return EndRequest{}, fmt.Errorf("%w: fromTransactionCheck %q", ErrBadHeader, v)
		}
	}
	r.MsgID = ext["msgId"]
	r.TransactionID = ext["transactionId"]
	return r, nil
}

// realAddress returns REAL_TOPIC and REAL_QID of a half record.
func realAddress(half *message.Ext) (string, int32, error) {
	topic := half.Properties[message.PropertyRealTopic]
	if topic == "" || topic == HalfTopic {
		return "", 0, fmt.Errorf("%w: REAL_TOPIC %q at %d", ErrBadHalf, topic, half.CommitLogOffset)
	}
	qid, err := strconv.ParseInt(half.Properties[message.PropertyRealQueueID], 10, 32)
	if err != nil || qid < 0 {
		return "", 0, fmt.Errorf("%w: REAL_QID %q at %d", ErrBadHalf,
			half.Properties[message.PropertyRealQueueID], half.CommitLogOffset)
	}
	return topic, int32(qid), nil
}

// BuildCommitted builds the final record of a committed half: topic
// REAL_TOPIC, queue REAL_QID, transaction type COMMIT, TRAN_MSG, REAL_TOPIC,
// REAL_QID and TRANSACTION_CHECK_TIMES removed,
// PREPARED_TRANSACTION_OFFSET = the half's commit-log offset; body, flag,
// born fields, reconsumeTimes and the other properties (UNIQ_KEY, PGROUP,
// __transactionId__, DELAY…) copied.
func BuildCommitted(half *message.Ext) (*message.Ext, error) {
	topic, qid, err := realAddress(half)
	if err != nil {
		return nil, err
	}
	props := maps.Clone(half.Properties)
	for _, k := range []string{message.PropertyTransactionPrepared, message.PropertyRealTopic,
		message.PropertyRealQueueID, message.PropertyTransactionCheckTimes} {
		delete(props, k)
	}
	return &message.Ext{
		Message: message.Message{
			Topic:      topic,
			Flag:       half.Flag,
			Properties: props,
			Body:       half.Body,
		},
		QueueID:                   qid,
		SysFlag:                   message.SetTransactionType(half.SysFlag, message.TransactionCommitType),
		BornTimestamp:             half.BornTimestamp,
		BornHost:                  half.BornHost,
		ReconsumeTimes:            half.ReconsumeTimes,
		PreparedTransactionOffset: half.CommitLogOffset,
	}, nil
}

// buildDiscarded is the copy of a half written to CheckMaxTimeTopic.
func buildDiscarded(half *message.Ext, checks int32) *message.Ext {
	out := *half
	out.Properties = maps.Clone(half.Properties)
	out.Properties[message.PropertyTransactionCheckTimes] = strconv.Itoa(int(checks))
	out.Topic = CheckMaxTimeTopic
	out.QueueID = 0
	out.QueueOffset, out.CommitLogOffset, out.StoreTimestamp = 0, 0, 0
	return &out
}

// buildOp is the op record marking half-queue offsets resolved.
func buildOp(bornTimestamp int64, halfOffsets ...int64) *message.Ext {
	body := make([]byte, 0, 12*len(halfOffsets))
	for i, o := range halfOffsets {
		if i > 0 {
			body = append(body, ',')
		}
		body = strconv.AppendInt(body, o, 10)
	}
	return &message.Ext{
		Message: message.Message{
			Topic:      OpTopic,
			Properties: map[string]string{message.PropertyTags: OpTag},
			Body:       body,
		},
		BornTimestamp: bornTimestamp,
	}
}

// maxOpOffsets bounds the offsets read from one op body.
const maxOpOffsets = 4096

// ParseOpBody parses an op record body: half-queue offsets, comma separated
// (RocketMQ writes one, 5.x merges several). Malformed items are an error;
// at most 4096 offsets are accepted.
func ParseOpBody(body []byte) ([]int64, error) {
	if len(body) == 0 {
		return nil, errors.New("txn: empty op body")
	}
	var out []int64
	for item := range strings.SplitSeq(string(body), ",") {
		if len(out) == maxOpOffsets {
			return nil, fmt.Errorf("txn: op body has more than %d offsets", maxOpOffsets)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(item), 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("txn: op body item %q is not an offset", item)
		}
		out = append(out, n)
	}
	return out, nil
}

// BuildCheckRequest builds CHECK_TRANSACTION_STATE (39, oneway) for a stored
// half record: header tranStateTableOffset, commitLogOffset, msgId
// (UNIQ_KEY), transactionId, offsetMsgId, topic (REAL_TOPIC) and bname; body
// = the half record with topic and queue restored to REAL_TOPIC/REAL_QID
// (the Go client ignores checks whose body lacks PGROUP, docs/protocol.md G22). The
// broker sends it to one live connection of a producer in group PGROUP.
func BuildCheckRequest(half *message.Ext, brokerName string) (*remoting.Command, error) {
	topic, qid, err := realAddress(half)
	if err != nil {
		return nil, err
	}
	uniq := half.Properties[message.PropertyUniqKey]
	tid := half.Properties[message.PropertyTransactionID]
	if tid == "" {
		tid = uniq
	}
	restored := *half
	restored.Topic = topic
	restored.QueueID = qid
	body, err := message.AppendRecord(nil, &restored)
	if err != nil {
		return nil, fmt.Errorf("txn: encoding check body: %w", err)
	}
	ext := map[string]string{
		"topic":                topic,
		"tranStateTableOffset": strconv.FormatInt(half.QueueOffset, 10),
		"commitLogOffset":      strconv.FormatInt(half.CommitLogOffset, 10),
		"msgId":                uniq,
		"transactionId":        tid,
		"offsetMsgId":          half.OffsetMsgID(),
	}
	if brokerName != "" {
		ext["bname"] = brokerName
	}
	req := remoting.NewRequest(remoting.CheckTransactionState, ext, body)
	req.MarkOneway()
	return req, nil
}
