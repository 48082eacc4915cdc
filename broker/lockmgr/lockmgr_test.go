package lockmgr

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mq(topic string, q int) messageQueue {
	return messageQueue{Topic: topic, BrokerName: "broker-a", QueueID: q}
}

func newTestManager() (*Manager, *fakeClock) {
	c := newFakeClock()
	return New(Config{Now: c.Now}), c
}

func TestLockFreeQueuesAndRefuseOthers(t *testing.T) {
	m, _ := newTestManager()
	got := m.tryLockBatch("g", "c1", []messageQueue{mq("T", 0), mq("T", 1)})
	if want := []messageQueue{mq("T", 0), mq("T", 1)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("c1 locked %v, want %v", got, want)
	}
	got = m.tryLockBatch("g", "c2", []messageQueue{mq("T", 1), mq("T", 2)})
	if want := []messageQueue{mq("T", 2)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("c2 locked %v, want %v", got, want)
	}
	if !m.isLocked("g", mq("T", 1), "c1") || m.isLocked("g", mq("T", 1), "c2") {
		t.Fatal("queue 1 must be held by c1 only")
	}
	// Another group is independent.
	if got := m.tryLockBatch("g2", "c2", []messageQueue{mq("T", 1)}); len(got) != 1 {
		t.Fatalf("other group: locked %v", got)
	}
}

func TestRelockRenewsAndExpiryAllowsTakeover(t *testing.T) {
	m, clk := newTestManager()
	m.tryLockBatch("g", "c1", []messageQueue{mq("T", 0)})
	clk.Advance(50 * time.Second)
	// Renewal by the holder at 50 s.
	if got := m.tryLockBatch("g", "c1", []messageQueue{mq("T", 0)}); len(got) != 1 {
		t.Fatalf("renewal failed: %v", got)
	}
	clk.Advance(50 * time.Second) // 50 s after renewal: still live
	if got := m.tryLockBatch("g", "c2", []messageQueue{mq("T", 0)}); len(got) != 0 {
		t.Fatalf("c2 took a live lock: %v", got)
	}
	clk.Advance(11 * time.Second) // 61 s after renewal: expired
	if m.isLocked("g", mq("T", 0), "c1") {
		t.Fatal("expired lock still reported held")
	}
	if _, ok := m.owner("g", mq("T", 0)); ok {
		t.Fatal("expired lock has an owner")
	}
	if got := m.tryLockBatch("g", "c2", []messageQueue{mq("T", 0)}); len(got) != 1 {
		t.Fatalf("c2 could not take expired lock: %v", got)
	}
	if owner, _ := m.owner("g", mq("T", 0)); owner != "c2" {
		t.Fatalf("owner = %q, want c2", owner)
	}
}

func TestUnlockOnlyByHolder(t *testing.T) {
	m, _ := newTestManager()
	m.tryLockBatch("g", "c1", []messageQueue{mq("T", 0), mq("T", 1)})
	if n := m.unlockBatch("g", "c2", []messageQueue{mq("T", 0)}); n != 0 {
		t.Fatalf("c2 unlocked %d queues of c1", n)
	}
	if n := m.unlockBatch("g", "c1", []messageQueue{mq("T", 0), mq("T", 5)}); n != 1 {
		t.Fatalf("c1 unlocked %d, want 1", n)
	}
	if got := m.tryLockBatch("g", "c2", []messageQueue{mq("T", 0), mq("T", 1)}); !reflect.DeepEqual(got, []messageQueue{mq("T", 0)}) {
		t.Fatalf("c2 locked %v after unlock", got)
	}
}

func TestDropClientExpireReset(t *testing.T) {
	m, clk := newTestManager()
	m.tryLockBatch("g1", "c1", []messageQueue{mq("T", 0)})
	m.tryLockBatch("g2", "c1", []messageQueue{mq("T", 0)})
	m.tryLockBatch("g1", "c2", []messageQueue{mq("T", 1)})
	if n := m.DropClient("c1"); n != 2 {
		t.Fatalf("DropClient dropped %d, want 2", n)
	}
	if m.isLocked("g1", mq("T", 0), "c1") {
		t.Fatal("dropped lock still held")
	}
	if !m.isLocked("g1", mq("T", 1), "c2") {
		t.Fatal("c2 lost its lock")
	}
	if n := m.Expire(); n != 0 {
		t.Fatalf("Expire dropped %d live locks", n)
	}
	clk.Advance(defaultLockTTL + time.Second)
	if n := m.Expire(); n != 1 {
		t.Fatalf("Expire dropped %d, want 1", n)
	}
	m.tryLockBatch("g1", "c3", []messageQueue{mq("T", 1)})
	m.Reset()
	if _, ok := m.owner("g1", mq("T", 1)); ok {
		t.Fatal("lock survived Reset")
	}
}

func TestDuplicatesAndEmptyIdentity(t *testing.T) {
	m, _ := newTestManager()
	got := m.tryLockBatch("g", "c1", []messageQueue{mq("T", 0), mq("T", 0)})
	if len(got) != 1 {
		t.Fatalf("duplicate queue returned %d times", len(got))
	}
	if got := m.tryLockBatch("", "c1", []messageQueue{mq("T", 1)}); len(got) != 0 {
		t.Fatal("empty group locked a queue")
	}
	if got := m.tryLockBatch("g", "", []messageQueue{mq("T", 1)}); len(got) != 0 {
		t.Fatal("empty client locked a queue")
	}
}

func TestGroupHasLiveLocks(t *testing.T) {
	m, clk := newTestManager()
	if m.GroupHasLiveLocks("g", "T") {
		t.Fatal("no locks yet")
	}
	m.tryLockBatch("g", "c1", []messageQueue{mq("T", 0)})
	if !m.GroupHasLiveLocks("g", "T") || m.GroupHasLiveLocks("g", "U") || !m.GroupHasLiveLocks("g", "") {
		t.Fatal("wrong live-lock answer")
	}
	clk.Advance(defaultLockTTL + time.Second)
	if m.GroupHasLiveLocks("g", "T") {
		t.Fatal("expired lock counted as live")
	}
}

// TestHandleLockGoClientBody uses the exact JSON the Go client marshals and
// parses the answer the way it does.
func TestHandleLockGoClientBody(t *testing.T) {
	m, _ := newTestManager()
	body := []byte(`{"consumerGroup":"cg","clientId":"192.168.1.10@12345","mqSet":[{"topic":"T","brokerName":"broker-a","queueId":0},{"topic":"T","brokerName":"broker-a","queueId":3}]}`)
	resp, err := m.HandleLock(body)
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		MQs []struct {
			Topic      string `json:"topic"`
			BrokerName string `json:"brokerName"`
			QueueID    int    `json:"queueId"`
		} `json:"lockOKMQSet"`
	}
	if err := json.Unmarshal(resp, &parsed); err != nil {
		t.Fatalf("answer %s: %v", resp, err)
	}
	if len(parsed.MQs) != 2 || parsed.MQs[1].QueueID != 3 || parsed.MQs[0].BrokerName != "broker-a" {
		t.Fatalf("answer %s", resp)
	}
	// A second client gets an empty array, not null.
	resp, err = m.HandleLock([]byte(`{"consumerGroup":"cg","clientId":"other","mqSet":[{"topic":"T","brokerName":"broker-a","queueId":0}],"onlyThisBroker":false}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(resp) != `{"lockOKMQSet":[]}` {
		t.Fatalf("answer %s", resp)
	}
	if err := m.HandleUnlock(body); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.owner("cg", mq("T", 0)); ok {
		t.Fatal("unlock did not release")
	}
}

func TestDecodeRejectsBadBodies(t *testing.T) {
	big := make([]byte, maxBodyBytes+1)
	cases := map[string][]byte{
		"empty":        nil,
		"not json":     []byte("{"),
		"no group":     []byte(`{"clientId":"c","mqSet":[]}`),
		"no client":    []byte(`{"consumerGroup":"g","mqSet":[]}`),
		"wrong type":   []byte(`{"consumerGroup":"g","clientId":"c","mqSet":[{"queueId":"x"}]}`),
		"neg queue":    []byte(`{"consumerGroup":"g","clientId":"c","mqSet":[{"topic":"T","queueId":-1}]}`),
		"empty topic":  []byte(`{"consumerGroup":"g","clientId":"c","mqSet":[{"queueId":1}]}`),
		"oversize":     big,
		"array at top": []byte(`[]`),
	}
	m, _ := newTestManager()
	for name, b := range cases {
		if _, err := decodeLockBatchRequest(b); !errors.Is(err, errInvalidBody) {
			t.Errorf("%s: err = %v, want errInvalidBody", name, err)
		}
		if _, err := m.HandleLock(b); err == nil {
			t.Errorf("%s: HandleLock accepted", name)
		}
	}
	if len(m.groups) != 0 {
		t.Fatal("bad bodies changed state")
	}
}

func TestConcurrentLockersGetDisjointQueues(t *testing.T) {
	m, _ := newTestManager()
	var queues []messageQueue
	for i := 0; i < 64; i++ {
		queues = append(queues, mq("T", i))
	}
	results := make([][]messageQueue, 8)
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				results[c] = append(results[c], m.tryLockBatch("g", fmt.Sprintf("c%d", c), queues)...)
			}
		}(c)
	}
	wg.Wait()
	owner := map[messageQueue]int{}
	for c, got := range results {
		for _, q := range got {
			if prev, ok := owner[q]; ok && prev != c {
				t.Fatalf("queue %v locked by c%d and c%d", q, prev, c)
			}
			owner[q] = c
		}
	}
	if len(owner) != len(queues) {
		t.Fatalf("%d queues locked, want %d", len(owner), len(queues))
	}
}

func FuzzDecodeLockBatchRequest(f *testing.F) {
	f.Add([]byte(`{"consumerGroup":"cg","clientId":"1.2.3.4@1","mqSet":[{"topic":"T","brokerName":"b","queueId":0}]}`))
	f.Add([]byte(`{"consumerGroup":"cg","clientId":"c","mqSet":null,"onlyThisBroker":true}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := New(Config{})
		req, err := decodeLockBatchRequest(b)
		if err != nil {
			if _, herr := m.HandleLock(b); herr == nil {
				t.Fatal("HandleLock accepted what the decoder refused")
			}
			return
		}
		if req.ConsumerGroup == "" || req.ClientID == "" {
			t.Fatal("accepted empty identity")
		}
		resp, err := m.HandleLock(b)
		if err != nil {
			t.Fatal(err)
		}
		var out lockBatchResponseBody
		if err := json.Unmarshal(resp, &out); err != nil {
			t.Fatalf("answer %q does not decode: %v", resp, err)
		}
		if len(out.LockOKMQSet) > len(req.MQSet) {
			t.Fatal("locked more queues than asked")
		}
	})
}

func BenchmarkTryLockBatch(b *testing.B) {
	m := New(Config{})
	var queues []messageQueue
	for i := 0; i < 16; i++ {
		queues = append(queues, mq("T", i))
	}
	b.ReportAllocs()
	for b.Loop() {
		if got := m.tryLockBatch("g", "c1", queues); len(got) != 16 {
			b.Fatal(len(got))
		}
	}
}
