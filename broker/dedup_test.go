package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/dledger"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
)

// sendKeyed sends body to topic/qid with UNIQ_KEY key.
func (e *testEnv) sendKeyed(topic string, qid int, key, body string, extra map[string]string) *remoting.Command {
	e.t.Helper()
	props := map[string]string{message.PropertyUniqKey: key}
	for k, v := range extra {
		props[k] = v
	}
	r := e.call(remoting.SendMessage, sendExt(topic, qid, props), []byte(body))
	if r.Code != remoting.Success {
		e.t.Fatalf("send %s: %d %s", key, r.Code, r.Remark)
	}
	return r
}

func sameAnswer(t *testing.T, what string, got, want *remoting.Command) {
	t.Helper()
	for _, k := range []string{"msgId", "queueId", "queueOffset", "transactionId"} {
		if got.Ext(k) != want.Ext(k) {
			t.Fatalf("%s: %s=%q, the original was answered %q", what, k, got.Ext(k), want.Ext(k))
		}
	}
}

func (e *testEnv) batch(topic string, qid int, keys ...string) *remoting.Command {
	e.t.Helper()
	var items []message.Message
	for _, k := range keys {
		items = append(items, message.Message{Body: []byte("body-" + k), Properties: map[string]string{message.PropertyUniqKey: k}})
	}
	body, err := message.EncodeBatch(items)
	if err != nil {
		e.t.Fatal(err)
	}
	ext := map[string]string{"a": "pg", "b": topic, "c": "TBW102", "d": "4", "e": strconv.Itoa(qid), "f": "0",
		"g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": "0", "i": "", "j": "0", "k": "false", "m": "true"}
	r := e.call(remoting.SendBatchMessage, ext, body)
	if r.Code != remoting.Success {
		e.t.Fatalf("batch %v: %d %s", keys, r.Code, r.Remark)
	}
	return r
}

// A retried send (the client picks the next queue) is answered with the
// original result and stores nothing; the ConsumeQueue holds one copy.
func TestDuplicateSendAnsweredWithOriginal(t *testing.T) {
	e := startEnv(t, nil)
	e.createTopic("DD", 2)
	first := e.sendKeyed("DD", 0, "K1", "one", nil)
	retry := e.sendKeyed("DD", 1, "K1", "one", nil)
	sameAnswer(t, "retry", retry, first)
	if e.maxOffset("DD", 0) != 1 || e.maxOffset("DD", 1) != 0 {
		t.Fatalf("queues hold %d and %d messages, want 1 and 0", e.maxOffset("DD", 0), e.maxOffset("DD", 1))
	}
	// The same UNIQ_KEY in another topic is another message.
	e.createTopic("DE", 1)
	e.sendKeyed("DE", 0, "K1", "one", nil)
	if e.maxOffset("DE", 0) != 1 {
		t.Fatal("a send to another topic was taken for a duplicate")
	}

	b1 := e.batch("DD", 1, "B1", "B2")
	b2 := e.batch("DD", 0, "B1", "B2")
	sameAnswer(t, "batch retry", b2, b1)
	if e.maxOffset("DD", 1) != 2 || e.maxOffset("DD", 0) != 1 {
		t.Fatalf("after a batch retry: queues %d and %d", e.maxOffset("DD", 0), e.maxOffset("DD", 1))
	}
	// A partly known batch stores its new items only; each item is answered
	// with its own offsetMsgId.
	mixed := e.batch("DD", 1, "B2", "B3")
	ids, orig := strings.Split(mixed.Ext("msgId"), ","), strings.Split(b1.Ext("msgId"), ",")
	if len(ids) != 2 || ids[0] != orig[1] || ids[1] == orig[1] || e.maxOffset("DD", 1) != 3 {
		t.Fatalf("partly known batch: %v (original %v), queue holds %d", ids, orig, e.maxOffset("DD", 1))
	}
	var st raftStatusBody
	if err := json.Unmarshal(e.call(remoting.RaftStatus, nil, nil).Body, &st); err != nil {
		t.Fatal(err)
	}
	if st.DuplicatesSuppressed != 4 || st.DuplicateKeys != 5 {
		t.Fatalf("raftStatus: %d duplicates suppressed, %d keys; want 4 and 5", st.DuplicatesSuppressed, st.DuplicateKeys)
	}
}

// duplicateWindowSeconds=0 turns deduplication off; duplicateMaxEntries
// bounds the keys remembered.
func TestDuplicateConfigKeysTakeEffect(t *testing.T) {
	off := startEnv(t, func(c *Config) {
		if err := c.Set("duplicateWindowSeconds", "0"); err != nil {
			t.Fatal(err)
		}
	})
	off.createTopic("DO", 1)
	off.sendKeyed("DO", 0, "K", "x", nil)
	off.sendKeyed("DO", 0, "K", "x", nil)
	if off.maxOffset("DO", 0) != 2 {
		t.Fatalf("window 0: %d messages stored, want 2", off.maxOffset("DO", 0))
	}

	small := startEnv(t, func(c *Config) {
		if err := c.Set("duplicateMaxEntries", "2"); err != nil {
			t.Fatal(err)
		}
	})
	small.createTopic("DM", 1)
	for _, k := range []string{"a", "b", "c"} {
		small.sendKeyed("DM", 0, k, k, nil)
	}
	small.sendKeyed("DM", 0, "c", "c", nil) // still remembered
	small.sendKeyed("DM", 0, "a", "a", nil) // evicted by b and c: stored again
	if small.maxOffset("DM", 0) != 4 {
		t.Fatalf("max entries 2: %d messages stored, want 4", small.maxOffset("DM", 0))
	}
	var c Config
	for _, bad := range [][2]string{{"duplicateWindowSeconds", "-1"}, {"duplicateMaxEntries", "0"}} {
		if err := c.Set(bad[0], bad[1]); err == nil {
			t.Errorf("%s=%s accepted", bad[0], bad[1])
		}
	}
}

// The broker's own re-appends carry the original's UNIQ_KEY and are never
// suppressed: a delayed message's delivery, a transaction's commit, a
// consumer's send-back, and the client's fallback resend into %RETRY%. A
// producer's retry of the delayed or half send is still a duplicate.
func TestInternalReappendsNotSuppressed(t *testing.T) {
	e := startEnv(t, fastDelays)
	e.createTopic("DL", 2)
	delay := map[string]string{message.PropertyDelayLevel: "1"}
	d1 := e.sendKeyed("DL", 1, "UD", "later", delay)
	sameAnswer(t, "delayed retry", e.sendKeyed("DL", 0, "UD", "later", delay), d1)
	waitFor(t, "delayed message delivered", 15*time.Second, func() bool { return e.maxOffset("DL", 1) == 1 })
	sameAnswer(t, "delayed retry after delivery", e.sendKeyed("DL", 0, "UD", "later", delay), d1)
	if e.maxOffset("DL", 0) != 0 || e.maxOffset("DL", 1) != 1 {
		t.Fatalf("delayed message stored %d+%d times", e.maxOffset("DL", 0), e.maxOffset("DL", 1))
	}
	// Its send-back goes through SCHEDULE_TOPIC_XXXX again, with the same
	// UNIQ_KEY as the producer's delayed send: it must be stored.
	back := e.call(remoting.ConsumerSendMsgBack, map[string]string{"offset": strconv.FormatInt(phys(t, e, "DL", 1), 10), "group": "dg",
		"delayLevel": "0", "originMsgId": "UD", "originTopic": "DL", "unitMode": "false", "maxReconsumeTimes": "16"}, nil)
	if back.Code != 0 {
		t.Fatalf("send-back: %d %s", back.Code, back.Remark)
	}
	waitFor(t, "the send-back delivered to the retry topic", 15*time.Second, func() bool { return e.maxOffset("%RETRY%dg", 0) == 1 })

	e.createTopic("TX", 1)
	half := func() *remoting.Command {
		ext := sendExt("TX", 0, map[string]string{message.PropertyUniqKey: "UT", message.PropertyTransactionPrepared: "true",
			message.PropertyProducerGroup: "pg"})
		ext["sysFlag"] = "4"
		r := e.call(remoting.SendMessage, ext, []byte("txn"))
		if r.Code != 0 {
			t.Fatalf("half: %d %s", r.Code, r.Remark)
		}
		return r
	}
	h1 := half()
	sameAnswer(t, "half retry", half(), h1)
	_, off, err := message.ParseOffsetMsgID(h1.Ext("msgId"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "transaction committed", 10*time.Second, func() bool {
		return e.call(remoting.EndTransaction, map[string]string{"producerGroup": "pg", "tranStateTableOffset": h1.Ext("queueOffset"),
			"commitLogOffset": strconv.FormatInt(off, 10), "commitOrRollback": "8", "fromTransactionCheck": "false",
			"msgId": "UT", "transactionId": "UT"}, nil).Code == 0
	})
	if e.maxOffset("TX", 0) != 1 {
		t.Fatalf("committed transaction: %d messages, want 1", e.maxOffset("TX", 0))
	}

	e.createTopic("SB", 1)
	e.sendKeyed("SB", 0, "US", "orig", nil)
	back = e.call(remoting.ConsumerSendMsgBack, map[string]string{"offset": strconv.FormatInt(phys(t, e, "SB", 0), 10), "group": "sg",
		"delayLevel": "-1", "originMsgId": "US", "originTopic": "SB", "unitMode": "false", "maxReconsumeTimes": "16"}, nil)
	if back.Code != 0 || e.maxOffset("%DLQ%sg", 0) != 1 {
		t.Fatalf("send-back to the DLQ: %d %s, DLQ holds %d", back.Code, back.Remark, e.maxOffset("%DLQ%sg", 0))
	}
	for range 2 { // the client's fallback, one reconsume round after another
		ext := sendExt("%RETRY%sg", 0, map[string]string{message.PropertyUniqKey: "US", message.PropertyRetryTopic: "SB"})
		ext["reconsumeTimes"] = "1"
		if r := e.call(remoting.SendMessage, ext, []byte("orig")); r.Code != 0 {
			t.Fatalf("fallback resend: %d %s", r.Code, r.Remark)
		}
	}
	if e.maxOffset("%RETRY%sg", 0) != 2 {
		t.Fatalf("fallback resends into %%RETRY%%: %d stored, want 2", e.maxOffset("%RETRY%sg", 0))
	}
}

// phys is the commit-log offset of the first message of topic's queue qid.
func phys(t *testing.T, e *testEnv, topic string, qid int) int64 {
	t.Helper()
	p := e.call(remoting.PullMessage, pullExt("sg", topic, qid, 0, 0, 0), nil)
	msgs, err := message.DecodeRecords(bodyOf(p))
	if err != nil || len(msgs) == 0 {
		t.Fatalf("pull %s: %v", topic, err)
	}
	return msgs[0].CommitLogOffset
}

// A write whose outcome is unknown is answered differently from a definite
// refusal: SYSTEM_ERROR (retried by the clients) saying "indeterminate",
// against SERVICE_NOT_AVAILABLE.
func TestIndeterminateAnsweredUnlikeNotLeader(t *testing.T) {
	e := startEnv(t, nil)
	lost := e.b.writeError(fmt.Errorf("%w: %w", dledger.ErrIndeterminate, raft.ErrLeadershipLost))
	if lost.Code != remoting.SystemError || !strings.HasPrefix(lost.Remark, "indeterminate:") {
		t.Fatalf("leadership lost answered %d %q", lost.Code, lost.Remark)
	}
	timeout := e.b.writeError(fmt.Errorf("%w: %w", dledger.ErrIndeterminate, errors.New("context deadline exceeded")))
	if timeout.Code != remoting.SystemError {
		t.Fatalf("timeout in flight answered %d", timeout.Code)
	}
	if nl := e.b.writeError(&dledger.NotLeaderError{LeaderID: "n1"}); nl.Code != remoting.ServiceNotAvailable {
		t.Fatalf("not leader answered %d %q", nl.Code, nl.Remark)
	}
}

// In a three-member group, a send stored under the old leader and retried
// after the failover is answered by the new leader exactly as the original
// (its msgId names the old leader's store host) and stored once.
func TestGroupDuplicateAnsweredAfterFailover(t *testing.T) {
	e, brokers := startGroup(t)
	leader := leaderOf(t, brokers, nil)
	e.b = leader
	e.createTopic("GD", 2)
	first := e.sendKeyed("GD", 0, "GK", "once", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	leader.Close(ctx)
	cancel()
	e.b = leaderOf(t, brokers, leader)
	var retry *remoting.Command
	waitFor(t, "the new leader to accept sends", 10*time.Second, func() bool {
		retry = e.call(remoting.SendMessage, sendExt("GD", 1, map[string]string{message.PropertyUniqKey: "GK"}), []byte("once"))
		return retry.Code == remoting.Success
	})
	sameAnswer(t, "retry after failover", retry, first)
	if host, _, err := message.ParseOffsetMsgID(retry.Ext("msgId")); err != nil || host.String() != leader.storeHost.String() {
		t.Fatalf("msgId %s names store host %v (%v), want the old leader's %v", retry.Ext("msgId"), host, err, leader.storeHost)
	}
	if e.maxOffset("GD", 0) != 1 || e.maxOffset("GD", 1) != 0 {
		t.Fatalf("queues hold %d and %d messages, want 1 and 0", e.maxOffset("GD", 0), e.maxOffset("GD", 1))
	}
}
