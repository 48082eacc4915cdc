package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
)

// Pull request sysFlag bits: commit the offset carried, and the subscription
// is in the request (so no heartbeat is needed first).
const (
	pullFlagCommitOffset = 0x1
	pullFlagSubscription = 0x4
)

// queueRange is the part of one queue a consume run drains: [from, to).
type queueRange struct {
	slot
	from, to int64
}

// backlog asks each slot's broker for the queue's offsets: the run drains
// from the minimum to the maximum seen now (what arrives later is not part
// of the backlog).
func backlog(ctx context.Context, cfg *Config, rc *remoting.Client, sl []slot) ([]queueRange, int64, error) {
	out := make([]queueRange, 0, len(sl))
	var total int64
	for _, s := range sl {
		lo, err := queueOffset(ctx, cfg, rc, s, remoting.GetMinOffset)
		if err != nil {
			return nil, 0, err
		}
		hi, err := queueOffset(ctx, cfg, rc, s, remoting.GetMaxOffset)
		if err != nil {
			return nil, 0, err
		}
		if hi > lo {
			out = append(out, queueRange{slot: s, from: lo, to: hi})
			total += hi - lo
		}
	}
	return out, total, nil
}

func queueOffset(ctx context.Context, cfg *Config, rc *remoting.Client, s slot, code int32) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	ext := map[string]string{"topic": s.topic, "queueId": strconv.Itoa(s.queue)}
	resp, err := rc.Invoke(ctx, s.addr, remoting.NewRequest(code, ext, nil))
	if err != nil {
		return 0, fmt.Errorf("offset of %s/%d at %s: %w", s.topic, s.queue, s.addr, err)
	}
	if resp.Code != remoting.Success {
		return 0, fmt.Errorf("offset of %s/%d at %s: code %d: %s", s.topic, s.queue, s.addr, resp.Code, resp.Remark)
	}
	v, _, err := resp.ExtInt64("offset")
	return v, err
}

// consume drains every range with one puller per queue, the pullers spread
// over the connections, until the ranges are read, the message budget is
// reached or stop ends.
func consume(stop, reqCtx context.Context, cfg *Config, clients []*remoting.Client, ranges []queueRange, rec *recorder) {
	var received atomic.Int64
	var wg sync.WaitGroup
	for i, qr := range ranges {
		wg.Add(1)
		go func(rc *remoting.Client, qr queueRange) {
			defer wg.Done()
			drainQueue(stop, reqCtx, cfg, rc, qr, rec, &received)
		}(clients[i%len(clients)], qr)
	}
	wg.Wait()
}

// maxPullFailures ends a queue's drain after that many failed pulls in a row:
// a broker that keeps refusing would otherwise be polled until the deadline.
const maxPullFailures = 50

func drainQueue(stop, reqCtx context.Context, cfg *Config, rc *remoting.Client, qr queueRange, rec *recorder, received *atomic.Int64) {
	off := qr.from
	failures := 0
	for off < qr.to && stop.Err() == nil && (cfg.Messages <= 0 || received.Load() < cfg.Messages) {
		ctx, cancel := context.WithTimeout(reqCtx, cfg.Timeout)
		t0 := time.Now()
		resp, err := rc.Invoke(ctx, qr.addr, pullRequest(cfg, qr.slot, off))
		lat := time.Since(t0)
		cancel()
		if err != nil {
			rec.fail(transportClass(err))
			if failures++; failures >= maxPullFailures {
				return
			}
			continue
		}
		next, _, nextErr := resp.ExtInt64("nextBeginOffset")
		switch resp.Code {
		case remoting.Success:
			n, perr := countRecords(resp.Body)
			if perr != nil || nextErr != nil || next <= off {
				rec.fail("bad pull answer")
				return // cannot tell where to go on
			}
			rec.ok(lat, int64(n), int64(len(resp.Body)))
			received.Add(int64(n))
			off, failures = next, 0
		case remoting.PullNotFound:
			return // the queue holds less than it said: the backlog is read
		case remoting.PullRetryImmediately, remoting.PullOffsetMoved:
			rec.fail(responseClass(resp.Code))
			if nextErr == nil && next > off {
				off = next
			}
			if failures++; failures >= maxPullFailures {
				return
			}
		default:
			rec.fail(responseClass(resp.Code))
			if failures++; failures >= maxPullFailures {
				return
			}
		}
	}
}

func pullRequest(cfg *Config, s slot, off int64) *remoting.Command {
	ext := map[string]string{
		"consumerGroup": cfg.Group, "topic": s.topic, "queueId": strconv.Itoa(s.queue),
		"queueOffset": strconv.FormatInt(off, 10), "maxMsgNums": strconv.Itoa(cfg.Batch),
		"sysFlag": strconv.Itoa(pullFlagCommitOffset | pullFlagSubscription), "commitOffset": strconv.FormatInt(off, 10),
		"suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0", "expressionType": "TAG",
	}
	return remoting.NewRequest(remoting.PullMessage, ext, nil)
}

var errBadRecord = errors.New("pull body: record size out of range")

// countRecords counts the stored records in a pull answer's body by their
// TOTALSIZE fields, without decoding them (the bench measures the broker).
// A size that is too small or runs past the body is an error.
func countRecords(body []byte) (int, error) {
	n := 0
	for len(body) > 0 {
		if len(body) < 4 {
			return n, errBadRecord
		}
		size := int64(int32(binary.BigEndian.Uint32(body)))
		if size < message.MinRecordSize || size > int64(len(body)) {
			return n, errBadRecord
		}
		body = body[size:]
		n++
	}
	return n, nil
}
