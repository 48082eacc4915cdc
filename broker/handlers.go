package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/raftmq/raftmq/broker/retry"
	"github.com/raftmq/raftmq/dledger"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
	"github.com/raftmq/raftmq/wire"
)

// Worker pools: a leader write leaves its worker for a goroutine of its own
// while it waits on Raft (forward.go), so the send pool bounds only the
// decoding; pulls are short (parked ones hold no worker), the rest is small
// bookkeeping.
const (
	poolSend  = "send"
	poolPull  = "pull"
	poolAdmin = "admin"
	poolHB    = "heartbeat"
)

func (b *Broker) registerHandlers() {
	s := b.srv
	s.AddPool(poolSend, 64, 10000)
	s.AddPool(poolPull, 16, 10000)
	s.AddPool(poolAdmin, 8, 10000)
	s.AddPool(poolHB, 4, 10000)
	// Leader-only writes: a follower forwards them to the leader (forward.go).
	for _, c := range []int32{remoting.SendMessage, remoting.SendMessageV2, remoting.SendBatchMessage,
		remoting.SendReplyMessage, remoting.SendReplyMessageV2} {
		s.Handle(c, poolSend, b.leaderWrite(b.handleSend))
	}
	s.Handle(remoting.ConsumerSendMsgBack, poolSend, b.leaderWrite(b.handleSendBack))
	s.Handle(remoting.EndTransaction, poolSend, b.leaderWrite(b.handleEndTransaction))
	s.Handle(remoting.PullMessage, poolPull, b.handlePull)
	s.Handle(remoting.LitePullMessage, poolPull, b.handlePull)
	s.Handle(remoting.HeartBeat, poolHB, b.handleHeartbeat)
	s.Handle(remoting.UnregisterClient, poolHB, b.handleUnregisterClient)
	s.Handle(remoting.GetConsumerListByGroup, poolHB, b.handleConsumerList)
	s.Handle(remoting.QueryConsumerOffset, poolAdmin, b.leaderRead(b.handleQueryOffset))
	s.Handle(remoting.UpdateConsumerOffset, poolAdmin, b.handleUpdateOffset)
	s.Handle(remoting.GetMaxOffset, poolAdmin, b.handleMaxOffset)
	s.Handle(remoting.GetMinOffset, poolAdmin, b.handleMinOffset)
	s.Handle(remoting.GetEarliestMsgStoretime, poolAdmin, b.handleEarliestStoreTime)
	s.Handle(remoting.SearchOffsetByTimestamp, poolAdmin, b.handleSearchOffset)
	s.Handle(remoting.QueryMessage, poolAdmin, b.handleQueryMessage)
	s.Handle(remoting.ViewMessageByID, poolAdmin, b.handleViewMessage)
	s.Handle(remoting.LockBatchMQ, poolHB, b.handleLock)
	s.Handle(remoting.UnlockBatchMQ, poolHB, b.handleUnlock)
	s.Handle(remoting.UpdateAndCreateTopic, poolAdmin, b.handleCreateTopic)
	s.Handle(remoting.DeleteTopicInBroker, poolAdmin, b.handleDeleteTopic)
	s.Handle(remoting.GetAllTopicConfig, poolAdmin, b.handleAllTopicConfig)
	s.Handle(remoting.GetAllSubscriptionGroupConfig, poolAdmin, b.handleAllGroups)
	s.Handle(updateAndCreateSubscriptionGroup, poolAdmin, b.handleCreateGroup)
	s.Handle(deleteSubscriptionGroup, poolAdmin, b.handleDeleteGroup)
	s.Handle(remoting.GetBrokerRuntimeInfo, poolAdmin, b.handleRuntimeInfo)
	b.registerRaftAdmin(s)
}

// Request codes remoting does not name.
const (
	updateAndCreateSubscriptionGroup int32 = 200
	deleteSubscriptionGroup          int32 = 207
)

func ok() *remoting.Command { return remoting.NewResponse(remoting.Success, "") }

func bad(remark string) *remoting.Command {
	return remoting.NewResponse(remoting.InvalidParameter, remark)
}

func jsonResponse(v interface{}) *remoting.Command {
	body, err := json.Marshal(v)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	r := ok()
	r.Body = body
	return r
}

// topicQueue reads and checks the topic and queueId fields of a request.
func (b *Broker) topicQueue(req *remoting.Command) (string, int32, *remoting.Command) {
	topic := req.Ext("topic")
	if topic == "" {
		return "", 0, bad("topic is required")
	}
	qid, present, err := req.ExtInt32("queueId")
	if err != nil {
		return "", 0, bad(err.Error())
	}
	if !present {
		return "", 0, bad("queueId is required")
	}
	tc, found := b.meta.Topic(topic)
	if !found {
		return "", 0, remoting.NewResponse(remoting.TopicNotExist, fmt.Sprintf("topic %s does not exist", topic))
	}
	if qid < 0 || qid >= tc.QueueCount() {
		return "", 0, bad(fmt.Sprintf("queueId %d out of range: topic %s has %d queues", qid, topic, tc.QueueCount()))
	}
	return topic, qid, nil
}

func (b *Broker) handleHeartbeat(ctx context.Context, conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	hb, err := decodeHeartbeat(req.Body)
	if err != nil {
		return bad("bad heartbeat body: " + err.Error())
	}
	changed := b.clients.heartbeat(conn, conn.ID(), hb)
	if b.node.IsLeader() {
		var topics []wire.TopicConfig
		var groups []GroupConfig
		for _, c := range hb.ConsumerDataSet {
			if message.ValidateGroup(c.GroupName) != nil {
				continue
			}
			if tc := retry.RetryTopicConfig(c.GroupName, 0); len(tc.TopicName) <= message.MaxTopicLengthV1 {
				if _, ok := b.meta.Topic(tc.TopicName); !ok {
					topics = append(topics, tc)
				}
			}
			if _, ok := b.meta.Group(c.GroupName); !ok && b.cfg.AutoCreateSubGroup {
				groups = append(groups, DefaultGroupConfig(c.GroupName))
			}
		}
		if len(topics) > 0 {
			if err := b.putTopics(ctx, topics...); err != nil {
				b.log.Warn("creating retry topics failed", "error", err)
			}
		}
		if len(groups) > 0 {
			if _, err := b.propose(ctx, &metaCommand{Op: opPutGroups, Groups: groups}); err != nil {
				b.log.Warn("creating subscription groups failed", "error", err)
			}
		}
	}
	b.notifyConsumers(changed)
	return ok()
}

func (b *Broker) handleUnregisterClient(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	id := req.Ext("clientID")
	if id == "" {
		return bad("clientID is required")
	}
	changed := b.clients.unregister(id, req.Ext("producerGroup"), req.Ext("consumerGroup"))
	b.locks.DropClient(id)
	b.notifyConsumers(changed)
	return ok()
}

// leaderRead wraps a read that must reflect every acknowledged write: the
// leader serves it, another member forwards it like a write (a deposed or
// restarted leader that clients still take for brokerId 0 has not applied
// the newest entries). While this member stops it serves the read from its
// own state instead of refusing: the Go consumer skips a queue until its
// next rebalance when its offset query fails.
func (b *Broker) leaderRead(h remoting.Handler) remoting.Handler {
	forwarding := b.leaderWrite(h)
	return func(ctx context.Context, conn *remoting.Conn, req *remoting.Command) *remoting.Command {
		if b.draining.Load() && req.Ext(ExtForwarded) != "1" {
			return h(ctx, conn, req)
		}
		return forwarding(ctx, conn, req)
	}
}

func (b *Broker) handleConsumerList(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	g := req.Ext("consumerGroup")
	if g == "" {
		return bad("consumerGroup is required")
	}
	ids := b.clients.consumerIDs(g)
	if len(ids) == 0 {
		return remoting.NewResponse(remoting.SystemError, "no consumer for group "+g)
	}
	return jsonResponse(struct {
		ConsumerIDList []string `json:"consumerIdList"`
	}{ids})
}

func (b *Broker) handleQueryOffset(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	group := req.Ext("consumerGroup")
	if group == "" {
		return bad("consumerGroup is required")
	}
	topic, qid, resp := b.topicQueue(req)
	if resp != nil {
		if resp.Code == remoting.TopicNotExist {
			return remoting.NewResponse(remoting.QueryNotFound, resp.Remark)
		}
		return resp
	}
	if off, found := b.offsets.query(group, topic, qid); found {
		r := ok()
		r.SetExt("offset", itoa64(off))
		return r
	}
	// As Java: a group new to a queue whose first message is still "in
	// memory" (here: within the newest inMemoryWindow bytes of the log)
	// starts at 0 unless told otherwise.
	setZero, present, _ := req.ExtBool("setZeroIfNotFound")
	if (!present || setZero) && b.firstMessageIsRecent(topic, qid) {
		r := ok()
		r.SetExt("offset", "0")
		return r
	}
	return remoting.NewResponse(remoting.QueryNotFound, "no offset stored for this group and queue")
}

// inMemoryWindow approximates Java's "message still in page cache" test.
const inMemoryWindow = 512 << 20

func (b *Broker) firstMessageIsRecent(topic string, qid int32) bool {
	cq := b.node.ConsumeQueue()
	if cq.MinOffset(topic, qid) != 0 || cq.MaxOffset(topic, qid) == 0 {
		return false
	}
	e, err := cq.Get(topic, qid, 0)
	if err != nil {
		return false
	}
	return b.node.CommitLog().WriteEnd()-e.PhysOffset <= inMemoryWindow
}

// handleUpdateOffset takes a consumer offset commit. A oneway commit (the
// official clients') lands in the offset table and is replicated with the
// next flush. A commit that expects an answer is answered only once the
// flush carrying it has been applied through Raft, asynchronously, so that
// waiting commits hold no admin worker; until then it counts as a write
// in flight, which Close waits for.
func (b *Broker) handleUpdateOffset(_ context.Context, conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	group := req.Ext("consumerGroup")
	if group == "" {
		return bad("consumerGroup is required")
	}
	topic, qid, resp := b.topicQueue(req)
	if resp != nil {
		return resp
	}
	off, present, err := req.ExtInt64("commitOffset")
	if err != nil || !present || off < 0 {
		return bad("commitOffset must be a non-negative integer")
	}
	if req.IsOneway() {
		b.offsets.commit(group, topic, qid, off) // taken only while leading
		return nil
	}
	b.writes.Add(1)
	if b.draining.Load() {
		b.writes.Add(-1)
		return b.drainingAnswer()
	}
	if resp := b.writableOrError(); resp != nil {
		b.writes.Add(-1)
		return resp
	}
	b.offsets.commitSync(group, topic, qid, off, commitAnswerBudget, func(err error) {
		b.fwd.answer(conn, req, b.commitAnswer(err))
		b.writes.Add(-1)
	})
	return nil
}

// commitAnswer is the answer to a sync offset commit whose flush ended with
// err: success only when it was applied, else an error the client retries.
func (b *Broker) commitAnswer(err error) *remoting.Command {
	switch {
	case err == nil:
		return ok()
	case errors.Is(err, errOffsetsDropped):
		return remoting.NewResponse(remoting.ServiceNotAvailable, b.notLeaderRemark()+": "+err.Error())
	case errors.Is(err, errOffsetsClosed):
		return b.drainingAnswer()
	case errors.Is(err, errCommitTimeout):
		return remoting.NewResponse(remoting.SystemError, err.Error()+" (it may still be applied), retry")
	case errors.Is(err, dledger.ErrIndeterminate):
		return remoting.NewResponse(remoting.SystemError, "offset commit outcome unknown, retry: "+err.Error())
	}
	if r := b.writeError(err); r.Code == remoting.ServiceNotAvailable {
		return r
	}
	return remoting.NewResponse(remoting.SystemError, "offset commit not replicated, retry: "+err.Error())
}

func (b *Broker) offsetResponse(off int64) *remoting.Command {
	r := ok()
	r.SetExt("offset", itoa64(off))
	return r
}

func (b *Broker) handleMaxOffset(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic, qid, resp := b.topicQueue(req)
	if resp != nil {
		return withZeroOffset(resp)
	}
	return b.offsetResponse(b.node.ConsumeQueue().MaxOffset(topic, qid))
}

func (b *Broker) handleMinOffset(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic, qid, resp := b.topicQueue(req)
	if resp != nil {
		return withZeroOffset(resp)
	}
	return b.offsetResponse(b.node.ConsumeQueue().MinOffset(topic, qid))
}

// withZeroOffset adds offset=0 to an error answer: Go parses the field
// without looking at the code (docs/protocol.md G18).
func withZeroOffset(r *remoting.Command) *remoting.Command {
	r.SetExt("offset", "0")
	return r
}

// storeTimeAt reads the store timestamp of the record a consume-queue entry points at.
func (b *Broker) storeTimeAt(phys int64, size int32) (int64, error) {
	l, err := b.node.CommitLog().Lease(phys, int(size))
	if err != nil {
		return 0, err
	}
	defer l.Release()
	r, err := message.ParseRecord(l.Bytes())
	if err != nil {
		return 0, err
	}
	return r.StoreTimestamp(), nil
}

func (b *Broker) handleEarliestStoreTime(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic, qid, resp := b.topicQueue(req)
	if resp != nil {
		return resp
	}
	cq := b.node.ConsumeQueue()
	e, err := cq.Get(topic, qid, cq.MinOffset(topic, qid))
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, "queue is empty")
	}
	ts, err := b.storeTimeAt(e.PhysOffset, e.Size)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	r := ok()
	r.SetExt("timestamp", itoa64(ts))
	return r
}

func (b *Broker) handleSearchOffset(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic, qid, resp := b.topicQueue(req)
	if resp != nil {
		return withZeroOffset(resp)
	}
	ts, present, err := req.ExtInt64("timestamp")
	if err != nil || !present {
		return withZeroOffset(bad("timestamp is required"))
	}
	upper := strings.EqualFold(req.Ext("boundaryType"), "upper")
	cq := b.node.ConsumeQueue()
	off, err := cq.SearchOffsetByTime(topic, qid, ts, upper, func(e consumeEntry) (int64, error) {
		return b.storeTimeAt(e.PhysOffset, e.Size)
	})
	if err != nil {
		return withZeroOffset(remoting.NewResponse(remoting.SystemError, err.Error()))
	}
	return b.offsetResponse(off)
}

// maxQueryMessages bounds QUERY_MESSAGE answers.
const maxQueryMessages = 64

func (b *Broker) handleQueryMessage(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic, key := req.Ext("topic"), req.Ext("key")
	if topic == "" || key == "" {
		return bad("topic and key are required")
	}
	maxNum, _, err := req.ExtInt32("maxNum")
	if err != nil {
		return bad(err.Error())
	}
	if maxNum <= 0 || maxNum > maxQueryMessages {
		maxNum = maxQueryMessages
	}
	begin, _, err1 := req.ExtInt64("beginTimestamp")
	end, endSet, err2 := req.ExtInt64("endTimestamp")
	if err1 != nil || err2 != nil {
		return bad("bad beginTimestamp or endTimestamp")
	}
	if !endSet || end <= 0 {
		end = 1<<63 - 1
	}
	phys, err := b.node.Index().Query(topic+"#"+key, int(maxNum), begin, end)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	var body []byte
	var lastPhys int64
	for _, p := range phys {
		rec, err := b.readRecord(p)
		if err != nil {
			continue
		}
		r, _ := message.ParseRecord(rec)
		if r.Topic() != topic {
			continue
		}
		body = append(body, rec...)
		if p > lastPhys {
			lastPhys = p
		}
	}
	if len(body) == 0 {
		return remoting.NewResponse(remoting.QueryNotFound, "no message found for key "+key)
	}
	r := ok()
	r.Body = body
	r.SetExt("indexLastUpdateTimestamp", itoa64(0))
	r.SetExt("indexLastUpdatePhyoffset", itoa64(lastPhys))
	return r
}

// readRecord copies the stored record at a commit-log offset: the size is
// read first, bounded by the frame limit.
func (b *Broker) readRecord(phys int64) ([]byte, error) {
	cl := b.node.CommitLog()
	var hdr [4]byte
	if _, err := cl.ReadAt(hdr[:], phys); err != nil {
		return nil, err
	}
	size := int(int32(uint32(hdr[0])<<24 | uint32(hdr[1])<<16 | uint32(hdr[2])<<8 | uint32(hdr[3])))
	if size < 4 || size > b.cfg.MaxMessageSize+64<<10 {
		return nil, fmt.Errorf("no record at offset %d", phys)
	}
	buf := make([]byte, size)
	if _, err := cl.ReadAt(buf, phys); err != nil {
		return nil, err
	}
	if _, err := message.ParseRecord(buf); err != nil {
		return nil, fmt.Errorf("no record at offset %d: %w", phys, err)
	}
	return buf, nil
}

func (b *Broker) handleViewMessage(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	off, present, err := req.ExtInt64("offset")
	if err != nil || !present || off < 0 {
		return bad("offset must be a non-negative integer")
	}
	rec, err := b.readRecord(off)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	r := ok()
	r.Body = rec
	return r
}

func (b *Broker) handleLock(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	if resp := b.writableOrError(); resp != nil {
		return resp
	}
	body, err := b.locks.HandleLock(req.Body)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	r := ok()
	r.Body = body
	return r
}

func (b *Broker) handleUnlock(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	if err := b.locks.HandleUnlock(req.Body); err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	return ok()
}

func (b *Broker) handleCreateTopic(ctx context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic := req.Ext("topic")
	if err := message.ValidateTopic(topic); err != nil {
		return bad(err.Error())
	}
	if topic == wire.AutoCreateTopic || systemTopicsRefusingSends[topic] {
		return remoting.NewResponse(remoting.NoPermission, "topic "+topic+" is a system topic")
	}
	read, _, err1 := req.ExtInt32("readQueueNums")
	write, _, err2 := req.ExtInt32("writeQueueNums")
	perm, permSet, err3 := req.ExtInt32("perm")
	order, _, err4 := req.ExtBool("order")
	sysFlag, _, err5 := req.ExtInt32("topicSysFlag")
	for _, e := range []error{err1, err2, err3, err4, err5} {
		if e != nil {
			return bad(e.Error())
		}
	}
	if read <= 0 {
		read = int32(b.cfg.DefaultTopicQueueNums)
	}
	if write <= 0 {
		write = read
	}
	if read > 1024 || write > 1024 {
		return bad("at most 1024 queues per topic")
	}
	if !permSet {
		perm = wire.PermRead | wire.PermWrite
	}
	if perm < 0 || perm&^wire.PermAll != 0 {
		return bad("perm must be in 0..15")
	}
	filter := req.Ext("topicFilterType")
	if filter == "" {
		filter = wire.TopicFilterSingleTag
	}
	if filter != wire.TopicFilterSingleTag && filter != wire.TopicFilterMultiTag {
		return bad("topicFilterType must be SINGLE_TAG or MULTI_TAG")
	}
	if resp := b.writableOrError(); resp != nil {
		return resp
	}
	tc := wire.TopicConfig{TopicName: topic, ReadQueueNums: read, WriteQueueNums: write, Perm: perm,
		TopicFilterType: filter, TopicSysFlag: sysFlag, Order: order, Attributes: parseAttributes(req.Ext("attributes"))}
	if err := b.putTopics(ctx, tc); err != nil {
		return b.writeError(err)
	}
	return ok()
}

// parseAttributes reads "+k=v,+k2=v2" (RocketMQ topic attributes).
func parseAttributes(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimPrefix(strings.TrimSpace(kv), "+")
		if k, v, found := strings.Cut(kv, "="); found && k != "" {
			out[k] = v
		}
	}
	return out
}

func (b *Broker) handleDeleteTopic(ctx context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic := req.Ext("topic")
	if err := message.ValidateTopic(topic); err != nil {
		return bad(err.Error())
	}
	if topic == wire.AutoCreateTopic || topic == b.cfg.BrokerClusterName || topic == b.cfg.BrokerName || systemTopicsRefusingSends[topic] {
		return remoting.NewResponse(remoting.NoPermission, "topic "+topic+" is a system topic")
	}
	if resp := b.writableOrError(); resp != nil {
		return resp
	}
	if _, err := b.propose(ctx, &metaCommand{Op: opDeleteTopic, Name: topic}); err != nil {
		return b.writeError(err)
	}
	if err := b.node.ConsumeQueue().DeleteTopic(topic); err != nil {
		b.log.Warn("deleting consume queues failed", "topic", topic, "error", err)
	}
	return ok()
}

func (b *Broker) handleAllTopicConfig(context.Context, *remoting.Conn, *remoting.Command) *remoting.Command {
	topics, version := b.meta.Topics()
	version.StateVersion = int64(b.role.get().term)
	return jsonResponse(wire.TopicConfigWrapper{DataVersion: version, TopicConfigTable: topics})
}

func (b *Broker) handleAllGroups(context.Context, *remoting.Conn, *remoting.Command) *remoting.Command {
	_, version := b.meta.Topics()
	return jsonResponse(struct {
		SubscriptionGroupTable map[string]GroupConfig `json:"subscriptionGroupTable"`
		DataVersion            wire.DataVersion       `json:"dataVersion"`
	}{b.meta.Groups(), version})
}

func (b *Broker) handleCreateGroup(ctx context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	g := DefaultGroupConfig("")
	if err := json.Unmarshal(req.Body, &g); err != nil {
		return bad("bad subscription group body: " + err.Error())
	}
	if err := message.ValidateGroup(g.GroupName); err != nil {
		return bad(err.Error())
	}
	if resp := b.writableOrError(); resp != nil {
		return resp
	}
	if _, err := b.propose(ctx, &metaCommand{Op: opPutGroups, Groups: []GroupConfig{g}}); err != nil {
		return b.writeError(err)
	}
	return ok()
}

func (b *Broker) handleDeleteGroup(ctx context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	g := req.Ext("groupName")
	if err := message.ValidateGroup(g); err != nil {
		return bad(err.Error())
	}
	if resp := b.writableOrError(); resp != nil {
		return resp
	}
	if _, err := b.propose(ctx, &metaCommand{Op: opDeleteGroup, Name: g}); err != nil {
		return b.writeError(err)
	}
	return ok()
}

func (b *Broker) handleRuntimeInfo(context.Context, *remoting.Conn, *remoting.Command) *remoting.Command {
	cl := b.node.CommitLog()
	usage, _ := cl.DiskUsage()
	puts, gets := b.stats.totals()
	producers, consumers := b.clients.counts()
	r := b.role.get()
	table := map[string]string{
		"brokerVersionDesc":           "V5_3_3",
		"brokerVersion":               "479",
		"brokerActive":                "true",
		"brokerRole":                  map[bool]string{true: "LEADER", false: "FOLLOWER"}[b.node.IsLeader()],
		"raftTerm":                    strconv.FormatUint(r.term, 10),
		"raftLeader":                  r.leaderID,
		"bootTimestamp":               itoa64(b.started.UnixMilli()),
		"msgPutTotalTodayNow":         itoa64(puts),
		"msgGetTotalTodayNow":         itoa64(gets),
		"msgPutTotalTodayMorning":     "0",
		"msgGetTotalTodayMorning":     "0",
		"msgPutTotalYesterdayMorning": "0",
		"msgGetTotalYesterdayMorning": "0",
		"putTps":                      "0.0 0.0 0.0",
		"getTransferredTps":           "0.0 0.0 0.0",
		"commitLogDiskRatio":          strconv.FormatFloat(usage, 'f', 4, 64),
		"consumeQueueDiskRatio":       strconv.FormatFloat(usage, 'f', 4, 64),
		"commitLogMinOffset":          itoa64(cl.MinPos()),
		"commitLogMaxOffset":          itoa64(cl.WriteEnd()),
		"earliestMessageTimeStamp":    "0",
		"producerGroupCount":          strconv.Itoa(producers),
		"consumerGroupCount":          strconv.Itoa(consumers),
		"sendThreadPoolQueueSize":     "0",
		"pullThreadPoolQueueSize":     "0",
		// Not a RocketMQ runtime key (Java has it in GET_BROKER_CONFIG, which we do
		// not serve): `raftmq bench` reports it beside its figures.
		"flushDiskType": string(b.cfg.FlushDiskType),
	}
	return jsonResponse(wire.KVTable{Table: table})
}
