// Package retry owns the consumer-retry side of the broker (docs/protocol.md
// §6.6, G20): CONSUMER_SEND_MSG_BACK (36), the redirection of direct
// sends to %RETRY% topics into the dead-letter queue, and the naming and
// default configuration of %RETRY%<group> and %DLQ%<group> topics. It is
// pure: it builds records and decides topics; the broker stores them.
//
// # Wiring (broker)
//
// CONSUMER_SEND_MSG_BACK (36) is a leader write: a follower forwards it to
// the leader, which does (a member that lost leadership meanwhile answers
// 14 SERVICE_NOT_AVAILABLE):
//
//	req, err := retry.ParseSendBackHeader(cmd.ExtFields)   // err ⇒ 1 SYSTEM_ERROR with err.Error()
//	g := subscription group config of req.Group            // missing ⇒ 26 SUBSCRIPTION_GROUP_NOT_EXIST, or created when autoCreateSubscriptionGroup
//	orig := read the committed record at req.Offset        // not found ⇒ 1 SYSTEM_ERROR
//	res, err := retry.SendBack(req, orig, retry.GroupConfig{g.RetryQueueNums, g.RetryMaxTimes})
//	if res.Drop: answer 0, store nothing (retryQueueNums <= 0)
//	ensure RetryTopicConfig(req.Group, g.RetryQueueNums), or DLQTopicConfig(req.Group) when res.ToDLQ
//	store res.Message in one Raft append after the delay transform: a retry
//	carries DELAY, so schedule's ToDelayQueue moves it to SCHEDULE_TOPIC_XXXX,
//	which re-puts it to %RETRY%<group> when due; answer 0 once committed.
//
// SEND_MESSAGE/SEND_MESSAGE_V2 of one message to a %RETRY% topic (the Go
// client's fallback when 36 failed), before the delay transform; the group
// is the topic minus the prefix (GroupOfRetryTopic) and a group without a
// config counts as GroupConfig{RetryQueueNums, DefaultMaxReconsumeTimes}:
//
//	out, toDLQ := retry.RedirectRetrySend(ext, maxReconsumeTimesHeader, gc, locks.GroupHasLiveLocks(group, ""))
//	store out instead of ext; when toDLQ, ensure DLQTopicConfig(group) first.
//
// A send to a %RETRY% or %DLQ% topic that does not exist creates it with
// DefaultTopicConfig; batches to %RETRY% topics are refused.
package retry

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/wire"
)

// Topic defaults of retry and dead-letter topics.
const (
	// RetryQueueNums is the default number of queues of %RETRY%<group>
	// (subscription group retryQueueNums).
	RetryQueueNums = 1
	// DLQQueueNums is the number of queues of %DLQ%<group> (Java
	// DLQ_NUMS_PER_GROUP).
	DLQQueueNums = 1
	// TopicPerm is the permission of both (read|write).
	TopicPerm = wire.PermRead | wire.PermWrite
	// DefaultMaxReconsumeTimes is the default retryMaxTimes of a group.
	DefaultMaxReconsumeTimes = message.MaxReconsumeTimes
	// DefaultDelayLevelBase: a send-back with delayLevel 0 uses
	// DefaultDelayLevelBase + reconsumeTimes (level 3 = 10 s first).
	DefaultDelayLevelBase = 3
)

// RetryTopic is the retry topic of a consumer group.
func RetryTopic(group string) string { return message.RetryGroupTopicPrefix + group }

// DLQTopic is the dead-letter topic of a consumer group.
func DLQTopic(group string) string { return message.DLQGroupTopicPrefix + group }

// IsRetryTopic reports whether topic is a %RETRY% topic.
func IsRetryTopic(topic string) bool {
	return strings.HasPrefix(topic, message.RetryGroupTopicPrefix)
}

// IsDLQTopic reports whether topic is a %DLQ% topic.
func IsDLQTopic(topic string) bool { return strings.HasPrefix(topic, message.DLQGroupTopicPrefix) }

// GroupOfRetryTopic returns the consumer group of a %RETRY% topic.
func GroupOfRetryTopic(topic string) (string, bool) {
	g, ok := strings.CutPrefix(topic, message.RetryGroupTopicPrefix)
	return g, ok && g != ""
}

// GroupOfDLQTopic returns the consumer group of a %DLQ% topic.
func GroupOfDLQTopic(topic string) (string, bool) {
	g, ok := strings.CutPrefix(topic, message.DLQGroupTopicPrefix)
	return g, ok && g != ""
}

// RetryTopicConfig is the configuration to create %RETRY%<group> with;
// retryQueueNums <= 0 means the default (1).
func RetryTopicConfig(group string, retryQueueNums int32) wire.TopicConfig {
	if retryQueueNums <= 0 {
		retryQueueNums = RetryQueueNums
	}
	return wire.NewTopicConfig(RetryTopic(group), retryQueueNums, TopicPerm)
}

// DLQTopicConfig is the configuration to create %DLQ%<group> with.
func DLQTopicConfig(group string) wire.TopicConfig {
	return wire.NewTopicConfig(DLQTopic(group), DLQQueueNums, TopicPerm)
}

// DefaultTopicConfig is the configuration a %RETRY% or %DLQ% topic that does
// not exist yet is created with when something is sent to it (default queue
// count); ok is false for any other topic.
func DefaultTopicConfig(topic string) (tc wire.TopicConfig, ok bool) {
	if g, isRetry := strings.CutPrefix(topic, message.RetryGroupTopicPrefix); isRetry {
		return RetryTopicConfig(g, 0), true
	}
	if g, isDLQ := strings.CutPrefix(topic, message.DLQGroupTopicPrefix); isDLQ {
		return DLQTopicConfig(g), true
	}
	return wire.TopicConfig{}, false
}

// GroupConfig is the part of a subscription group's config retries use.
type GroupConfig struct {
	RetryQueueNums int32 // queues of %RETRY%<group>; <= 0 drops send-backs
	RetryMaxTimes  int32 // default max reconsume times (16)
}

// SendBackRequest is the CONSUMER_SEND_MSG_BACK header.
type SendBackRequest struct {
	Group       string
	Offset      int64 // commit-log offset of the consumed record
	DelayLevel  int32 // 0 = broker chooses, < 0 = DLQ, > 0 explicit
	OriginMsgID string
	OriginTopic string
	UnitMode    bool
	// MaxReconsumeTimes overrides the group's RetryMaxTimes when
	// HasMaxReconsumeTimes (the Go client always sends it).
	MaxReconsumeTimes    int32
	HasMaxReconsumeTimes bool
}

// ErrBadHeader is wrapped by every header parsing error.
var ErrBadHeader = errors.New("retry: bad CONSUMER_SEND_MSG_BACK header")

// ParseSendBackHeader parses the ext fields of CONSUMER_SEND_MSG_BACK. Empty
// optional values count as absent (Go sends every key).
func ParseSendBackHeader(ext map[string]string) (SendBackRequest, error) {
	var r SendBackRequest
	r.Group = ext["group"]
	if r.Group == "" {
		return SendBackRequest{}, fmt.Errorf("%w: group is missing", ErrBadHeader)
	}
	if err := message.ValidateGroup(r.Group); err != nil {
		return SendBackRequest{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	off, err := strconv.ParseInt(ext["offset"], 10, 64)
	if err != nil || off < 0 {
		return SendBackRequest{}, fmt.Errorf("%w: offset %q", ErrBadHeader, ext["offset"])
	}
	r.Offset = off
	if v := ext["delayLevel"]; v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return SendBackRequest{}, fmt.Errorf("%w: delayLevel %q", ErrBadHeader, v)
		}
		r.DelayLevel = int32(n)
	} else {
		return SendBackRequest{}, fmt.Errorf("%w: delayLevel is missing", ErrBadHeader)
	}
	if v := ext["maxReconsumeTimes"]; v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return SendBackRequest{}, fmt.Errorf("%w: maxReconsumeTimes %q", ErrBadHeader, v)
		}
		r.MaxReconsumeTimes, r.HasMaxReconsumeTimes = int32(n), true
	}
	if v := ext["unitMode"]; v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return SendBackRequest{}, fmt.Errorf("%w: unitMode %q", ErrBadHeader, v)
		}
		r.UnitMode = b
	}
	r.OriginMsgID = ext["originMsgId"]
	r.OriginTopic = ext["originTopic"]
	return r, nil
}

// SendBackResult is what the broker stores for a send-back.
type SendBackResult struct {
	// Drop: the group has no retry queues; answer success, store nothing.
	Drop bool
	// ToDLQ: Message goes to %DLQ%<group> (no delay).
	ToDLQ bool
	// Message is the new record (topic, queue and properties set). For a
	// retry it carries DELAY=level; store it through the delay transform.
	Message *message.Ext
}

// pickQueue picks a queue of n uniformly (RocketMQ randomises retry queues).
func pickQueue(n int32) int32 {
	if n <= 1 {
		return 0
	}
	return rand.Int32N(n)
}

// SendBack builds the record for CONSUMER_SEND_MSG_BACK of the committed
// record orig (read at req.Offset) by group req.Group: RETRY_TOPIC set to the
// original topic unless present, ORIGIN_MESSAGE_ID kept or set to orig's
// offsetMsgId; if orig.ReconsumeTimes >= max reconsume times or
// req.DelayLevel < 0 the record goes to %DLQ%<group> queue 0 without delay,
// else to a random queue of %RETRY%<group> with DELAY = req.DelayLevel, or
// 3 + reconsumeTimes when it is 0. Body, flag, properties, sysFlag, born
// timestamp and host are copied, reconsumeTimes is incremented. orig is not
// modified.
func SendBack(req SendBackRequest, orig *message.Ext, group GroupConfig) (SendBackResult, error) {
	if orig == nil {
		return SendBackResult{}, errors.New("retry: no original message")
	}
	if req.Group == "" {
		return SendBackResult{}, fmt.Errorf("%w: group is missing", ErrBadHeader)
	}
	if group.RetryQueueNums <= 0 {
		return SendBackResult{Drop: true}, nil
	}
	maxTimes := group.RetryMaxTimes
	if req.HasMaxReconsumeTimes {
		maxTimes = req.MaxReconsumeTimes
	}

	props := maps.Clone(orig.Properties)
	if props == nil {
		props = make(map[string]string)
	}
	if props[message.PropertyRetryTopic] == "" {
		props[message.PropertyRetryTopic] = orig.Topic
	}
	if props[message.PropertyOriginMessageID] == "" {
		props[message.PropertyOriginMessageID] = orig.OffsetMsgID()
	}

	out := &message.Ext{
		Message: message.Message{
			Flag:       orig.Flag,
			Properties: props,
			Body:       orig.Body,
		},
		SysFlag:        orig.SysFlag,
		BornTimestamp:  orig.BornTimestamp,
		BornHost:       orig.BornHost,
		ReconsumeTimes: orig.ReconsumeTimes + 1,
	}
	if orig.ReconsumeTimes >= maxTimes || req.DelayLevel < 0 {
		out.Topic = DLQTopic(req.Group)
		out.QueueID = pickQueue(DLQQueueNums)
		delete(props, message.PropertyDelayLevel)
		return SendBackResult{ToDLQ: true, Message: out}, nil
	}
	level := req.DelayLevel
	if level == 0 {
		level = DefaultDelayLevelBase + orig.ReconsumeTimes
	}
	props[message.PropertyDelayLevel] = strconv.Itoa(int(level))
	out.Topic = RetryTopic(req.Group)
	out.QueueID = pickQueue(group.RetryQueueNums)
	return SendBackResult{Message: out}, nil
}

// RedirectRetrySend applies RocketMQ's handleRetryAndDLQ to a message sent
// directly to a %RETRY% topic (msg.ReconsumeTimes from the send header): if
// msg.ReconsumeTimes > the max reconsume times (maxReconsumeTimes when >= 0,
// i.e. the header was present, else group.RetryMaxTimes) or the group holds
// live orderly locks (holdsOrderlyLock, Java 5.x), it
// returns a copy addressed to %DLQ%<group> queue 0 with DELAY=-1 (no delay;
// what Java stores) and true. Otherwise it returns msg itself and false.
// Messages to other topics are returned unchanged.
func RedirectRetrySend(msg *message.Ext, maxReconsumeTimes int32, group GroupConfig, holdsOrderlyLock bool) (*message.Ext, bool) {
	g, ok := GroupOfRetryTopic(msg.Topic)
	if !ok {
		return msg, false
	}
	maxTimes := group.RetryMaxTimes
	if maxReconsumeTimes >= 0 {
		maxTimes = maxReconsumeTimes
	}
	if msg.ReconsumeTimes <= maxTimes && !holdsOrderlyLock {
		return msg, false
	}
	out := *msg
	out.Properties = maps.Clone(msg.Properties)
	if out.Properties == nil {
		out.Properties = make(map[string]string)
	}
	out.Properties[message.PropertyDelayLevel] = "-1"
	out.Topic = DLQTopic(g)
	out.QueueID = pickQueue(DLQQueueNums)
	return &out, true
}
