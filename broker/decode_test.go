package broker

import (
	"testing"
	"time"

	"github.com/raftmq/raftmq/remoting"
)

func FuzzDecodeHeaders(f *testing.F) {
	f.Add("T", "3", "0", "12", "20000", "a || b")
	f.Add("", "x", "-1", "99999999999999999999", "-5", "*")
	f.Fuzz(func(t *testing.T, topic, qid, sysFlag, offset, suspend, sub string) {
		for _, code := range []int32{remoting.SendMessage, remoting.SendMessageV2, remoting.SendBatchMessage} {
			req := remoting.NewRequest(code, map[string]string{"topic": topic, "b": topic, "queueId": qid, "e": qid,
				"sysFlag": sysFlag, "f": sysFlag, "bornTimestamp": offset, "properties": sub, "m": sysFlag}, nil)
			_, _ = decodeSendHeader(req)
		}
		req := remoting.NewRequest(remoting.PullMessage, map[string]string{"consumerGroup": "g", "topic": topic, "queueId": qid,
			"queueOffset": offset, "sysFlag": sysFlag, "suspendTimeoutMillis": suspend, "subscription": sub}, nil)
		if h, err := decodePullHeader(req); err == nil {
			if h.SuspendTimeout < 0 || h.SuspendTimeout > pullMaxSuspend {
				t.Fatalf("suspend %v outside [0, %v]", h.SuspendTimeout, pullMaxSuspend)
			}
		}
		f := parseTagFilter(sub)
		_ = f.matchRecord([]byte(sub))
	})
}

func FuzzDecodeHeartbeat(f *testing.F) {
	f.Add(heartbeatBody("c@1", "g", "T", "a || b"))
	f.Add([]byte(`{"clientID":"x","consumerDataSet":[{"groupName":""}]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		hb, err := decodeHeartbeat(b)
		if err != nil {
			return
		}
		r := newClientRegistry(nil)
		r.heartbeat(nil, 1, hb)
		_, gone := r.connClosed(1)
		if len(gone) > 1 || (len(gone) == 1 && gone[0] != hb.ClientID) {
			t.Fatalf("closed connection's clients %v, want [%s]", gone, hb.ClientID)
		}
		if ids := r.consumerIDs("g"); len(ids) != 0 {
			t.Fatalf("ids left after close: %v", ids)
		}
	})
}

func TestClientRegistryExpiresSilentClients(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newClientRegistry(func() time.Time { return now })
	hb, err := decodeHeartbeat(heartbeatBody("c1", "g", "T", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if changed := r.heartbeat(nil, 1, hb); len(changed) != 1 {
		t.Fatalf("first heartbeat changed %v", changed)
	}
	if changed := r.heartbeat(nil, 1, hb); len(changed) != 0 {
		t.Fatalf("repeat heartbeat changed %v", changed)
	}
	now = now.Add(119 * time.Second)
	if changed := r.expire(120 * time.Second); len(changed) != 0 {
		t.Fatal("expired too early")
	}
	now = now.Add(2 * time.Second)
	if changed := r.expire(120 * time.Second); len(changed) != 1 || changed[0] != "g" {
		t.Fatalf("expire changed %v", changed)
	}
	if len(r.consumerIDs("g")) != 0 || r.producerConn("pg") != nil {
		t.Fatal("silent client kept")
	}
	if s, ok := r.subscription("g", "T"); ok {
		t.Fatalf("subscription kept: %q", s)
	}
}
