package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/raftmq/raftmq/broker/retry"
	"github.com/raftmq/raftmq/broker/schedule"
	"github.com/raftmq/raftmq/broker/txn"
	"github.com/raftmq/raftmq/dledger"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
	"github.com/raftmq/raftmq/wire"
)

// systemTopicsRefusingSends are written only by the broker itself (code 16).
var systemTopicsRefusingSends = map[string]bool{
	schedule.Topic:        true,
	txn.HalfTopic:         true,
	txn.OpTopic:           true,
	txn.CheckMaxTimeTopic: true,
	"SELF_TEST_TOPIC":     true,
	"OFFSET_MOVED_EVENT":  true,
}

// indeterminateRemark starts the answer to a write whose outcome is unknown.
const indeterminateRemark = "indeterminate: the write may or may not be stored; a retry with the same UNIQ_KEY " +
	"within duplicateWindowSeconds is answered with the stored original: "

// sendTimeout bounds one append through Raft; the Go client gives up after 3 s.
const sendTimeout = 10 * time.Second

// handleSend serves SEND_MESSAGE, SEND_MESSAGE_V2, SEND_BATCH_MESSAGE and the
// reply-message codes.
func (b *Broker) handleSend(ctx context.Context, conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	defer measureSince("send", time.Now())
	h, err := decodeSendHeader(req)
	if err != nil {
		return remoting.NewResponse(remoting.InvalidParameter, err.Error())
	}
	if resp := b.writableOrError(); resp != nil {
		return resp
	}
	if err := message.ValidateTopic(h.Topic); err != nil {
		return remoting.NewResponse(remoting.InvalidParameter, err.Error())
	}
	if systemTopicsRefusingSends[h.Topic] {
		return remoting.NewResponse(remoting.NoPermission, fmt.Sprintf("sending to system topic %s is not allowed", h.Topic))
	}
	if len(req.Body) > b.cfg.MaxMessageSize && !h.Batch {
		return remoting.NewResponse(remoting.MessageIllegal,
			fmt.Sprintf("message body of %d bytes exceeds maxMessageSize %d", len(req.Body), b.cfg.MaxMessageSize))
	}
	if len(h.Properties) > message.MaxPropertiesLength {
		return remoting.NewResponse(remoting.MessageIllegal, "properties longer than 32767 bytes")
	}
	props := message.DecodeProperties(h.Properties)

	topic := h.Topic
	queueID := h.QueueID
	// A resend into a retry topic that has used up its retries goes to the DLQ (docs/protocol.md G20).
	if group, isRetry := retry.GroupOfRetryTopic(topic); isRetry && !h.Batch {
		maxTimes := int32(-1)
		if h.HasMaxReconsumeTimes {
			maxTimes = h.MaxReconsumeTimes
		}
		gc := retry.GroupConfig{RetryQueueNums: retry.RetryQueueNums, RetryMaxTimes: retry.DefaultMaxReconsumeTimes}
		if g, ok := b.meta.Group(group); ok {
			gc = retry.GroupConfig{RetryQueueNums: g.RetryQueueNums, RetryMaxTimes: g.RetryMaxTimes}
		}
		probe := message.Ext{Message: message.Message{Topic: topic, Properties: props}, QueueID: queueID, ReconsumeTimes: h.ReconsumeTimes}
		if out, toDLQ := retry.RedirectRetrySend(&probe, maxTimes, gc, b.locks.GroupHasLiveLocks(group, "")); toDLQ {
			topic, queueID, props = out.Topic, out.QueueID, out.Properties
			if err := b.ensureTopic(ctx, retry.DLQTopicConfig(group)); err != nil {
				return b.writeError(err)
			}
		}
	}

	tc, resp := b.topicForSend(ctx, topic, h)
	if resp != nil {
		return resp
	}
	if tc.Perm&wire.PermWrite == 0 {
		return remoting.NewResponse(remoting.NoPermission, fmt.Sprintf("topic %s is not writable", topic))
	}
	if queueID < 0 {
		queueID = rand.Int32N(max32(tc.WriteQueueNums, 1))
	}
	if queueID >= tc.QueueCount() {
		return remoting.NewResponse(remoting.InvalidParameter,
			fmt.Sprintf("queueId %d out of range: topic %s has %d queues", queueID, topic, tc.QueueCount()))
	}

	base := message.Ext{
		QueueID:        queueID,
		SysFlag:        h.SysFlag,
		BornTimestamp:  h.BornTimestamp,
		BornHost:       bornHost(conn, req),
		StoreTimestamp: time.Now().UnixMilli(),
		StoreHost:      b.storeHost,
		ReconsumeTimes: h.ReconsumeTimes,
	}
	var msgs []message.Ext
	if h.Batch {
		if h.Topic != topic || strings.HasPrefix(topic, message.RetryGroupTopicPrefix) {
			return remoting.NewResponse(remoting.MessageIllegal, "batch messages cannot be sent to a retry topic")
		}
		items, err := message.DecodeBatchLimited(req.Body, message.BatchLimits{MaxBytes: b.cfg.MaxMessageSize, MaxItems: b.cfg.MaxBatchMessages})
		if err != nil {
			return remoting.NewResponse(remoting.MessageIllegal, "bad batch body: "+err.Error())
		}
		if len(items) == 0 {
			return remoting.NewResponse(remoting.MessageIllegal, "empty batch")
		}
		for _, it := range items {
			if len(it.Body) > b.cfg.MaxMessageSize {
				return remoting.NewResponse(remoting.MessageIllegal,
					fmt.Sprintf("batch item of %d bytes exceeds maxMessageSize %d", len(it.Body), b.cfg.MaxMessageSize))
			}
			if it.Properties[message.PropertyDelayLevel] != "" || message.TransactionType(h.SysFlag) != 0 {
				return remoting.NewResponse(remoting.MessageIllegal, "batch messages cannot be delayed or transactional")
			}
			m := base
			m.Topic = topic
			m.Flag = it.Flag
			m.Body = it.Body
			m.Properties = it.Properties
			msgs = append(msgs, m)
		}
	} else {
		m := base
		m.Topic = topic
		m.Flag = h.Flag
		m.Body = req.Body
		if props[message.PropertyCluster] == "" {
			// As Java: request/reply replies are routed by the requester's cluster.
			props[message.PropertyCluster] = b.cfg.BrokerClusterName
		}
		m.Properties = props
		msgs = append(msgs, m)
	}

	resp = b.storeMessages(ctx, h, msgs)
	if resp.Code == remoting.Success && (req.Code == remoting.SendReplyMessage || req.Code == remoting.SendReplyMessageV2) {
		b.pushReply(&msgs[0], h, resp)
	}
	return resp
}

// replyWait is how long a reply waits for its requester's first heartbeat:
// the Go client heartbeats one second after it starts, so a request sent at
// once would otherwise lose its reply.
const replyWait = 3 * time.Second

// pushReply delivers a stored reply message to the requesting client
// (property REPLY_TO_CLIENT) as PUSH_REPLY_MESSAGE_TO_CLIENT, as Java's
// ReplyMessageProcessor does, and reports the outcome in PUSH_REPLY_RESULT.
// A requester not heard from yet is waited for up to replyWait in the
// background (the answer then says false).
func (b *Broker) pushReply(m *message.Ext, h sendHeader, resp *remoting.Command) {
	target := m.Properties[message.PropertyMessageReplyToClient]
	if target == "" {
		resp.SetExt("PUSH_REPLY_RESULT", "false")
		resp.Remark = "reply message without " + message.PropertyMessageReplyToClient
		return
	}
	push := remoting.NewRequest(remoting.PushReplyMessageToClient, map[string]string{
		"producerGroup":         h.ProducerGroup,
		"topic":                 m.Topic,
		"defaultTopic":          h.DefaultTopic,
		"defaultTopicQueueNums": itoa32(h.DefaultTopicQueueNums),
		"queueId":               itoa32(m.QueueID),
		"sysFlag":               itoa32(m.SysFlag),
		"bornTimestamp":         itoa64(m.BornTimestamp),
		"flag":                  itoa32(m.Flag),
		"properties":            message.EncodeProperties(m.Properties),
		"reconsumeTimes":        itoa32(m.ReconsumeTimes),
		"unitMode":              "false",
		"bornHost":              m.BornHost.String(),
		"storeHost":             b.addr,
		"storeTimestamp":        itoa64(m.StoreTimestamp),
	}, m.Body)
	if c := b.clients.connOf(target); c != nil {
		resp.SetExt("PUSH_REPLY_RESULT", strconv.FormatBool(b.sendReply(c, target, push)))
		return
	}
	resp.SetExt("PUSH_REPLY_RESULT", "false")
	resp.Remark = fmt.Sprintf("reply target client %q has not connected to this broker yet; waiting %v for it", target, replyWait)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		deadline := time.Now().Add(replyWait)
		for time.Now().Before(deadline) {
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			if c := b.clients.connOf(target); c != nil {
				b.sendReply(c, target, push)
				return
			}
		}
		b.log.Info("reply dropped: requester never connected", "client", target, "topic", m.Topic)
	}()
}

func (b *Broker) sendReply(c *remoting.Conn, target string, push *remoting.Command) bool {
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Second)
	defer cancel()
	r, err := c.Invoke(ctx, push)
	if err != nil || r.Code != remoting.Success {
		b.log.Info("push reply failed", "client", target, "error", err, "response", r)
		return false
	}
	return true
}

// storeMessages rewrites delayed and transactional messages for the
// services, appends all of msgs through Raft as one entry and builds the send
// response.
func (b *Broker) storeMessages(ctx context.Context, h sendHeader, msgs []message.Ext) *remoting.Command {
	requestedQueue := msgs[0].QueueID
	kind := sendPlain
	ptrs := make([]*message.Ext, len(msgs))
	for i := range msgs {
		k, err := b.rewriteForServices(&msgs[i])
		if err != nil {
			return remoting.NewResponse(remoting.MessageIllegal, err.Error())
		}
		if i == 0 {
			kind = k
		}
		ptrs[i] = &msgs[i]
	}
	var dup []bool
	var err error
	if isClientSendBack(h.Topic) {
		err = b.appendExts(ctx, ptrs) // a consumer's send-back repeats UNIQ_KEY on every round
	} else {
		dup, err = b.appendSends(ctx, ptrs)
	}
	if err != nil {
		var ee encodeError
		if errors.As(err, &ee) {
			return remoting.NewResponse(remoting.MessageIllegal, err.Error())
		}
		return b.writeError(err)
	}
	if len(dup) > 0 && dup[0] {
		requestedQueue = originalQueue(ptrs[0], kind) // answer exactly as the original was answered
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.SetExt("MSG_REGION", "DefaultRegion")
	resp.SetExt("TRACE_ON", "true")
	if kind == sendHalf {
		r := txn.SendResult(ptrs[0], requestedQueue)
		resp.SetExt("msgId", r.MsgID)
		resp.SetExt("queueId", itoa32(r.QueueID))
		resp.SetExt("queueOffset", itoa64(r.QueueOffset))
		resp.SetExt("transactionId", r.TransactionID)
		return resp
	}
	ids := make([]string, len(ptrs))
	for i, m := range ptrs {
		ids[i] = m.OffsetMsgID() // the store host that stored it (an earlier leader's, for a duplicate)
	}
	resp.SetExt("msgId", strings.Join(ids, ","))
	resp.SetExt("queueId", itoa32(requestedQueue))
	resp.SetExt("queueOffset", itoa64(ptrs[0].QueueOffset))
	return resp
}

// isClientSendBack: sends to a retry or dead-letter topic are a consumer
// returning a message it failed to consume (RocketMQ clients fall back to
// this when CONSUMER_SEND_MSG_BACK fails); every round carries the same
// UNIQ_KEY, so they are not deduplicated.
func isClientSendBack(topic string) bool {
	return strings.HasPrefix(topic, message.RetryGroupTopicPrefix) || strings.HasPrefix(topic, message.DLQGroupTopicPrefix)
}

// originalQueue is the queue a stored send was addressed to: a delayed or
// half record keeps it in REAL_QID.
func originalQueue(stored *message.Ext, kind sendKind) int32 {
	if kind != sendPlain {
		if q, err := strconv.ParseInt(stored.Properties[message.PropertyRealQueueID], 10, 32); err == nil {
			return int32(q)
		}
	}
	return stored.QueueID
}

// writableOrError returns nil on the leader, else a retriable error naming it.
func (b *Broker) writableOrError() *remoting.Command {
	if b.node.IsLeader() {
		return nil
	}
	return remoting.NewResponse(remoting.ServiceNotAvailable, b.notLeaderRemark())
}

func (b *Broker) notLeaderRemark() string {
	r := b.role.get()
	if r.leaderID == "" {
		return fmt.Sprintf("broker %s (%s) is not the leader of group %s; no leader elected yet, retry", b.addr, b.cfg.DLegerSelfID, b.cfg.DLegerGroup)
	}
	return fmt.Sprintf("broker %s (%s) is not the leader of group %s; the leader is %s (%s), retry",
		b.addr, b.cfg.DLegerSelfID, b.cfg.DLegerGroup, r.leaderID, r.leaderAddr)
}

// writeError maps an append or propose error onto a response: a definite
// refusal (not leader, voided entry) is retriable 14; an indeterminate
// outcome (the entry was in Raft when leadership was lost, the node shut
// down or the store timed out; it may still commit) is SYSTEM_ERROR 1 with
// a remark saying so, which the clients retry too and the duplicate window
// makes harmless; everything else a system error (1).
func (b *Broker) writeError(err error) *remoting.Command {
	var nl *dledger.NotLeaderError
	switch {
	case errors.Is(err, dledger.ErrIndeterminate):
		return remoting.NewResponse(remoting.SystemError, indeterminateRemark+err.Error())
	case errors.As(err, &nl), errors.Is(err, dledger.ErrVoided):
		return remoting.NewResponse(remoting.ServiceNotAvailable, b.notLeaderRemark()+": "+err.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return remoting.NewResponse(remoting.ServiceNotAvailable, "store timed out, retry: "+err.Error())
	}
	return remoting.NewResponse(remoting.SystemError, err.Error())
}

// topicForSend returns the topic's config, auto-creating it from the default
// topic (TBW102) or as a retry/DLQ topic when allowed (docs/protocol.md §6.8).
func (b *Broker) topicForSend(ctx context.Context, topic string, h sendHeader) (wire.TopicConfig, *remoting.Command) {
	if tc, ok := b.meta.Topic(topic); ok {
		return tc, nil
	}
	// %RETRY% and %DLQ% topics get retry's defaults; others need auto-creation.
	tc, isRetryOrDLQ := retry.DefaultTopicConfig(topic)
	if !isRetryOrDLQ {
		if !b.cfg.AutoCreateTopicEnable {
			return tc, remoting.NewResponse(remoting.TopicNotExist,
				fmt.Sprintf("topic %s does not exist and autoCreateTopicEnable is false", topic))
		}
		def, ok := b.meta.Topic(h.DefaultTopic)
		if h.DefaultTopic == "" || !ok || def.Perm&wire.PermInherit == 0 {
			return tc, remoting.NewResponse(remoting.TopicNotExist,
				fmt.Sprintf("topic %s does not exist and default topic %q cannot be inherited", topic, h.DefaultTopic))
		}
		n := h.DefaultTopicQueueNums
		if n <= 0 || n > def.WriteQueueNums {
			n = def.WriteQueueNums
		}
		tc = wire.NewTopicConfig(topic, n, def.Perm&^wire.PermInherit)
	}
	if err := b.ensureTopic(ctx, tc); err != nil {
		return tc, b.writeError(err)
	}
	got, _ := b.meta.Topic(topic)
	return got, nil
}

// ensureTopic creates tc through Raft unless a topic of that name exists.
func (b *Broker) ensureTopic(ctx context.Context, tc wire.TopicConfig) error {
	if _, ok := b.meta.Topic(tc.TopicName); ok {
		return nil
	}
	return b.putTopics(ctx, tc)
}

// putTopics replicates topic configs and re-registers with the namesrvs.
func (b *Broker) putTopics(ctx context.Context, tcs ...wire.TopicConfig) error {
	_, err := b.propose(ctx, &metaCommand{Op: opPutTopics, Time: time.Now().UnixMilli(), Topics: tcs})
	return err
}

// propose replicates a metadata command and returns its apply result.
func (b *Broker) propose(ctx context.Context, c *metaCommand) (interface{}, error) {
	pctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	res, err := b.node.ProposeMeta(pctx, c.encode())
	if err != nil {
		return nil, err
	}
	if e, ok := res.(error); ok && e != nil {
		return nil, e
	}
	return res, nil
}

func max32(a, b int32) int32 {
	if a > b {
		return a
	}
	return b
}
