// Package workload drives a jepsen run's traffic and records it: producers that send
// unique values synchronously through the project's remoting client (one member and
// queue per request, so the harness controls exactly where every send goes), a
// producer on the official RocketMQ Go client through the namesrvs, consumers that
// pull and commit offsets, and the final drain of every queue from offset 0 on every
// member.
//
// Invariants: a send is recorded "fail" only when the broker answered with a refusal
// that happens before the Raft log is touched; every other error is "info". Values are
// unique per run ("<process>-<counter>"); a retried send reuses its value and the
// message's UNIQ_KEY.
package workload

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
)

// Client is the jepsen's raw protocol client for one cluster.
type Client struct {
	rc *remoting.Client
}

// NewClient returns a client; Close releases its connections.
func NewClient() *Client {
	return &Client{rc: remoting.NewClient(remoting.ClientConfig{DialTimeout: time.Second})}
}

// Close closes every connection.
func (c *Client) Close() error { return c.rc.Close() }

// Drop closes the connection to addr (after a timeout the next request re-dials).
func (c *Client) Drop(addr string) { c.rc.CloseConn(addr) }

// SendResult is a send's outcome.
type SendResult struct {
	Queue  int
	Offset int64
	MsgID  string
}

// SendError is a send that did not succeed. Definite reports that the message
// certainly was not stored.
type SendError struct {
	Code     int32
	Remark   string
	Definite bool
	Err      error
}

func (e *SendError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return fmt.Sprintf("code %d (%s): %s", e.Code, remoting.ResponseCodeName(e.Code), e.Remark)
}

func (e *SendError) Unwrap() error { return e.Err }

// Send sends value as one message to queue of topic on the member at addr
// (SEND_MESSAGE_V2), with UNIQ_KEY and KEYS = value; the body is value+pad.
func (c *Client) Send(ctx context.Context, addr, topic string, queue int, value, pad string) (SendResult, error) {
	props := message.EncodeProperties(map[string]string{
		message.PropertyUniqKey: value,
		message.PropertyKeys:    value,
		"WAIT":                  "true",
	})
	ext := map[string]string{
		"a": "jepsen-producer", "b": topic, "c": "TBW102", "d": "4", "e": strconv.Itoa(queue),
		"f": "0", "g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": "0", "i": props,
		"j": "0", "k": "false", "m": "false",
	}
	resp, err := c.rc.Invoke(ctx, addr, remoting.NewRequest(remoting.SendMessageV2, ext, []byte(value+pad)))
	if err != nil {
		// The request may have left: a dial failure is the only certain non-delivery.
		return SendResult{}, &SendError{Err: err, Definite: isDialError(err)}
	}
	if resp.Code != remoting.Success {
		return SendResult{}, &SendError{Code: resp.Code, Remark: resp.Remark, Definite: definiteRefusal(resp.Code, resp.Remark)}
	}
	q, _, err := resp.ExtInt32("queueId")
	if err != nil {
		return SendResult{}, &SendError{Err: fmt.Errorf("send answer: %w", err)}
	}
	off, ok, err := resp.ExtInt64("queueOffset")
	if err != nil || !ok {
		return SendResult{}, &SendError{Err: fmt.Errorf("send answer without queueOffset: %v", err)}
	}
	return SendResult{Queue: int(q), Offset: off, MsgID: resp.Ext("msgId")}, nil
}

// definiteRefusal reports whether an error answer certainly means "not stored":
// validation refusals, and the leader check that runs before anything is proposed
// (its remark ends in "retry" with nothing appended; an append or proposal error is
// appended after a colon and may have reached the log).
func definiteRefusal(code int32, remark string) bool {
	switch code {
	case remoting.InvalidParameter, remoting.MessageIllegal, remoting.NoPermission, remoting.TopicNotExist:
		return true
	case remoting.ServiceNotAvailable:
		return strings.Contains(remark, "is not the leader of group") && strings.HasSuffix(remark, ", retry") &&
			!strings.Contains(remark, "retry:")
	}
	return false
}

func isDialError(err error) bool {
	// remoting wraps dial failures as "dial ..." errors before anything is written.
	return err != nil && strings.Contains(err.Error(), "remoting: dial ")
}

// PullResult is one pull's answer.
type PullResult struct {
	Code     int32
	Next     int64
	Max      int64
	Messages []*message.Ext
}

// Pull reads up to 32 messages of queue at offset from the member at addr, without
// long polling and without committing.
func (c *Client) Pull(ctx context.Context, addr, group, topic string, queue int, offset int64, commit int64) (PullResult, error) {
	sys := 0x4 // subscription
	if commit >= 0 {
		sys |= 0x1
	}
	ext := map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(queue),
		"queueOffset": strconv.FormatInt(offset, 10), "maxMsgNums": "32", "sysFlag": strconv.Itoa(sys),
		"commitOffset": strconv.FormatInt(max(commit, 0), 10), "suspendTimeoutMillis": "0",
		"subscription": "*", "subVersion": "0", "expressionType": "TAG",
	}
	resp, err := c.rc.Invoke(ctx, addr, remoting.NewRequest(remoting.PullMessage, ext, nil))
	if err != nil {
		return PullResult{}, err
	}
	r := PullResult{Code: resp.Code}
	r.Next, _, _ = resp.ExtInt64("nextBeginOffset")
	r.Max, _, _ = resp.ExtInt64("maxOffset")
	switch resp.Code {
	case remoting.Success:
		msgs, err := message.DecodeRecords(resp.Body)
		if err != nil {
			return r, fmt.Errorf("decode pull answer: %w", err)
		}
		r.Messages = msgs
	case remoting.PullNotFound, remoting.PullRetryImmediately, remoting.PullOffsetMoved:
	default:
		return r, fmt.Errorf("pull answered code %d (%s): %s", resp.Code, remoting.ResponseCodeName(resp.Code), resp.Remark)
	}
	return r, nil
}

// CommitOffset sets group's committed offset of queue on the member at addr.
func (c *Client) CommitOffset(ctx context.Context, addr, group, topic string, queue int, offset int64) error {
	ext := map[string]string{"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(queue), "commitOffset": strconv.FormatInt(offset, 10)}
	resp, err := c.rc.Invoke(ctx, addr, remoting.NewRequest(remoting.UpdateConsumerOffset, ext, nil))
	if err != nil {
		return err
	}
	if resp.Code != remoting.Success {
		return fmt.Errorf("commit offset answered code %d: %s", resp.Code, resp.Remark)
	}
	return nil
}

// ErrNoOffset is FetchOffset's answer when the group has committed nothing.
var ErrNoOffset = errors.New("no committed offset")

// FetchOffset reads group's committed offset of queue from the member at addr.
func (c *Client) FetchOffset(ctx context.Context, addr, group, topic string, queue int) (int64, error) {
	ext := map[string]string{"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(queue)}
	resp, err := c.rc.Invoke(ctx, addr, remoting.NewRequest(remoting.QueryConsumerOffset, ext, nil))
	if err != nil {
		return 0, err
	}
	switch resp.Code {
	case remoting.Success:
		off, _, err := resp.ExtInt64("offset")
		return off, err
	case remoting.QueryNotFound:
		return 0, ErrNoOffset
	}
	return 0, fmt.Errorf("query offset answered code %d: %s", resp.Code, resp.Remark)
}

// TransferLeader asks the member at addr (the leader) to hand leadership to any
// up-to-date peer (RAFT_TRANSFER_LEADER, raftmq's admin code).
func (c *Client) TransferLeader(ctx context.Context, addr string) error {
	resp, err := c.rc.Invoke(ctx, addr, remoting.NewRequest(remoting.RaftTransferLeader, map[string]string{}, nil))
	if err != nil {
		return err
	}
	if resp.Code != remoting.Success {
		return fmt.Errorf("transfer leader answered code %d: %s", resp.Code, resp.Remark)
	}
	return nil
}
