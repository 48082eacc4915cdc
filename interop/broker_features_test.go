package interop

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// Delayed messages, consumer retries, transactions (with the broker's check
// back to the producer) and a broker restart, with the official Go client.

// fastLevels makes every delay level one second.
var fastLevels = []string{"-messageDelayLevel", "1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s"}

func TestStandaloneDelayedMessage(t *testing.T) {
	s := startStandalone(t, fastLevels...)
	topic := uniq("Delay")
	p := newProducer(t, s.namesrvAddr)
	sendSync(t, p, topic, "", "warmup")
	c := newCollector()
	startPushConsumer(t, s.namesrvAddr, uniq("dg"), topic, "*", c)
	c.waitAll(t, []string{"warmup"}, 60*time.Second)
	m := primitive.NewMessage(topic, []byte("delayed")).WithDelayTimeLevel(3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sent := time.Now()
	if _, err := p.SendSync(ctx, m); err != nil {
		t.Fatal(err)
	}
	c.waitAll(t, []string{"delayed"}, 30*time.Second)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, got := range c.msgs {
		if string(got.Body) == "delayed" {
			if got.StoreTimestamp < sent.UnixMilli()+900 {
				t.Fatalf("delivered record stored %d ms after the send: not delayed", got.StoreTimestamp-sent.UnixMilli())
			}
		}
	}
}

func TestStandaloneConsumerRetry(t *testing.T) {
	s := startStandalone(t, fastLevels...)
	topic := uniq("Retry")
	p := newProducer(t, s.namesrvAddr)
	sendSync(t, p, topic, "", "warmup")
	var mu sync.Mutex
	attempts := map[string]int{}
	done := make(chan struct{})
	var once sync.Once
	pc, err := consumer.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver([]string{s.namesrvAddr})),
		consumer.WithGroupName(uniq("rg")),
		consumer.WithInstance(uniq("c")),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = pc.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if string(m.Body) != "fail-twice" {
				continue
			}
			attempts[m.MsgId]++
			if attempts[m.MsgId] < 3 {
				return consumer.ConsumeRetryLater, nil
			}
			if m.Topic != topic || m.ReconsumeTimes != 2 {
				t.Errorf("third delivery: topic %s reconsumeTimes %d", m.Topic, m.ReconsumeTimes)
			}
			once.Do(func() { close(done) })
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Shutdown() })
	sendSync(t, p, topic, "", "fail-twice")
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("message not redelivered through %%RETRY%%: attempts %v", attempts)
	}
}

type txnListener struct {
	local   func(*primitive.Message) primitive.LocalTransactionState
	checked atomic.Int64
	check   primitive.LocalTransactionState
}

func (l *txnListener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	return l.local(m)
}

func (l *txnListener) CheckLocalTransaction(*primitive.MessageExt) primitive.LocalTransactionState {
	l.checked.Add(1)
	return l.check
}

func TestStandaloneTransactions(t *testing.T) {
	s := startStandalone(t, "-transactionCheckInterval", "500", "-transactionTimeOut", "500")
	topic := uniq("Txn")
	warm := newProducer(t, s.namesrvAddr)
	sendSync(t, warm, topic, "", "warmup")
	l := &txnListener{check: primitive.CommitMessageState, local: func(m *primitive.Message) primitive.LocalTransactionState {
		switch string(m.Body) {
		case "commit":
			return primitive.CommitMessageState
		case "rollback":
			return primitive.RollbackMessageState
		}
		return primitive.UnkonwnState // resolved by the broker's check: commit
	}}
	tp, err := producer.NewTransactionProducer(l,
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{s.namesrvAddr})),
		producer.WithGroupName(uniq("tpg")),
		producer.WithInstanceName(uniq("tp")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tp.Shutdown() })
	c := newCollector()
	startPushConsumer(t, s.namesrvAddr, uniq("tg"), topic, "*", c)
	for _, b := range []string{"commit", "rollback", "unknown"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := tp.SendMessageInTransaction(ctx, primitive.NewMessage(topic, []byte(b)))
		cancel()
		if err != nil || r.Status != primitive.SendOK {
			t.Fatalf("transactional send %s: %v %+v", b, err, r)
		}
	}
	c.waitAll(t, []string{"warmup", "commit", "unknown"}, 60*time.Second)
	if l.checked.Load() == 0 {
		t.Fatal("the unknown transaction was resolved without a check")
	}
	// Give a wrongly delivered rollback a moment to show up.
	time.Sleep(2 * time.Second) // nothing to await: asserting an absence
	if c.has("rollback") {
		t.Fatal("rolled back message delivered")
	}
}

func TestStandaloneRestartKeepsMessagesAndOffsets(t *testing.T) {
	spec := standaloneSpec{dir: t.TempDir(), ns: freePort(t), broker: freePort(t), raft: freePort(t)}
	s := startStandaloneAt(t, spec)
	topic := uniq("Persist")
	group := uniq("pgrp")
	p := newProducer(t, s.namesrvAddr)
	var first []string
	for i := 0; i < 20; i++ {
		b := fmt.Sprintf("before-%d", i)
		sendSync(t, p, topic, "", b)
		first = append(first, b)
	}
	c1 := newCollector()
	pc1 := startPushConsumer(t, s.namesrvAddr, group, topic, "*", c1)
	c1.waitAll(t, first[:10], 60*time.Second)
	pc1.Shutdown() // commits its offsets
	p.Shutdown()
	s.proc.stop(20 * time.Second)

	s = startStandaloneAt(t, spec)
	p2 := newProducer(t, s.namesrvAddr)
	var second []string
	for i := 0; i < 5; i++ {
		b := fmt.Sprintf("after-%d", i)
		sendSync(t, p2, topic, "", b)
		second = append(second, b)
	}
	// A new group reads everything from the first offset: the old messages survived.
	all := newCollector()
	startPushConsumer(t, s.namesrvAddr, uniq("fresh"), topic, "*", all)
	all.waitAll(t, append(append([]string{}, first...), second...), 60*time.Second)
	// The old group resumes from its committed offsets.
	c2 := newCollector()
	startPushConsumer(t, s.namesrvAddr, group, topic, "*", c2)
	c2.waitAll(t, second, 60*time.Second)
	redelivered := 0
	for _, b := range first {
		if c1.has(b) && c2.has(b) {
			redelivered++
		}
	}
	if redelivered > 0 {
		t.Fatalf("%d messages consumed before the restart were delivered again", redelivered)
	}
}

func TestStandaloneRequestReply(t *testing.T) {
	s := startStandalone(t)
	topic := uniq("Rpc")
	// The requester must not know the topic before its first Request: that
	// is what makes the Go client heartbeat, and the broker can push replies
	// only to clients it has heard from.
	replier := newProducer(t, s.namesrvAddr)
	sendSync(t, replier, topic, "", "warmup")
	requester := newProducer(t, s.namesrvAddr)
	pc, err := consumer.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver([]string{s.namesrvAddr})),
		consumer.WithGroupName(uniq("rpc")),
		consumer.WithInstance(uniq("c")),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = pc.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			if string(m.Body) == "warmup" {
				continue
			}
			reply, err := consumer.CreateReplyMessage(m, []byte("re: "+string(m.Body)))
			if err != nil {
				t.Errorf("create reply: %v", err)
				continue
			}
			reply.Body = []byte("re: " + string(m.Body))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := replier.SendSync(ctx, reply); err != nil {
				t.Errorf("send reply: %v", err)
			}
			cancel()
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Shutdown() })
	rp, ok := requester.(interface {
		Request(context.Context, time.Duration, *primitive.Message) (*primitive.Message, error)
	})
	if !ok {
		t.Fatal("producer has no Request method")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := rp.Request(ctx, 20*time.Second, primitive.NewMessage(topic, []byte("ping")))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if string(got.Body) != "re: ping" {
		t.Fatalf("reply body %q", got.Body)
	}
}
