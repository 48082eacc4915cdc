package workload

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/raftmq/raftmq/jepsen/history"
)

// OfficialProducer sends unique values with the official RocketMQ Go client through
// the namesrvs, unchanged: routing, retries and failover are the client's. Every
// error is "info" (the client retries internally, so a failed call may have stored
// the message).
// The client's own log goes to logPath.
func OfficialProducer(ctx context.Context, rec *history.Recorder, namesrvs []string, topic string, process int, rate float64, logPath string) error {
	rlog.SetLogLevel("warn")
	if err := rlog.SetOutputPath(logPath); err != nil {
		return err
	}
	p, err := producer.NewDefaultProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver(namesrvs)),
		producer.WithGroupName(fmt.Sprintf("jepsen-official-%d", process)),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(3*time.Second),
	)
	if err != nil {
		return err
	}
	if err := p.Start(); err != nil {
		return err
	}
	defer func() { _ = p.Shutdown() }()
	interval := time.Duration(float64(time.Second) / rate)
	for counter := 1; ctx.Err() == nil; counter++ {
		value := fmt.Sprintf("%d-%d", process, counter)
		inv := rec.Add(history.Op{Process: process, Type: history.Invoke, F: history.FSend, Value: value, Queue: -1, Offset: -1, Attempt: 1})
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		msg := primitive.NewMessage(topic, []byte(value))
		msg.WithKeys([]string{value})
		res, err := p.SendSync(sctx, msg)
		cancel()
		done := history.Op{Process: process, F: history.FSend, Value: value, Queue: -1, Offset: -1, Attempt: 1}
		done.Time = rec.Now()
		done.Latency = done.Time - inv.Time
		switch {
		case err != nil:
			done.Type, done.Error = history.Info, err.Error()
		case res.Status != primitive.SendOK:
			done.Type, done.Error = history.Info, fmt.Sprintf("send status %d", res.Status)
		default:
			done.Type = history.OK
			done.Member = res.MessageQueue.BrokerName
			done.Queue, done.Offset = res.MessageQueue.QueueId, res.QueueOffset
		}
		rec.Add(done)
		sleep(ctx, interval)
	}
	return nil
}
