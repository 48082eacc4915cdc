package broker

import (
	"context"
	"testing"
	"time"
)

func TestSharedDeadlineBounds(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	d := newSharedDeadline(parent, time.Hour, time.Minute)
	before := time.Now()
	a := d.context()
	after := time.Now()
	dl, ok := a.Deadline()
	if !ok || dl.Before(before.Add(time.Hour-time.Minute)) || dl.After(after.Add(time.Hour)) {
		t.Fatalf("deadline %v outside [now+59m, now+1h]", dl)
	}
	if b := d.context(); b != a {
		t.Fatal("a second context within the step is not the shared one")
	}
	cancel()
	<-a.Done() // the parent ending ends the shared context
	if a.Err() != context.Canceled {
		t.Fatalf("err %v", a.Err())
	}
}

func TestSharedDeadlineRenews(t *testing.T) {
	d := newSharedDeadline(context.Background(), 20*time.Millisecond, time.Nanosecond)
	a := d.context()
	<-a.Done() // expires on its own deadline
	if a.Err() != context.DeadlineExceeded {
		t.Fatalf("err %v", a.Err())
	}
	b := d.context()
	if b == a || b.Err() != nil {
		t.Fatalf("after its step a fresh context is handed out: same=%v err=%v", b == a, b.Err())
	}
}
