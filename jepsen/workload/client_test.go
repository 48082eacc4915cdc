package workload

import (
	"errors"
	"testing"

	"github.com/raftmq/raftmq/remoting"
)

func TestOnlyRefusalsBeforeTheLogAreDefinite(t *testing.T) {
	for _, c := range []struct {
		code   int32
		remark string
		want   bool
	}{
		{remoting.ServiceNotAvailable, "broker 10.0.0.1:10911 (n0) is not the leader of group broker-a; the leader is n1 (10.0.0.2:10911), retry", true},
		{remoting.ServiceNotAvailable, "broker 10.0.0.1:10911 (n0) is not the leader of group broker-a; no leader elected yet, retry", true},
		// An append or proposal error after the leader check: may be in the log.
		{remoting.ServiceNotAvailable, "broker 10.0.0.1:10911 (n0) is not the leader of group broker-a; the leader is n1 (x), retry: leadership lost while committing log", false},
		{remoting.ServiceNotAvailable, "store timed out, retry: context deadline exceeded", false},
		{remoting.SystemError, "disk full", false},
		{remoting.FlushDiskTimeout, "", false},
		{remoting.MessageIllegal, "message body of 9 bytes exceeds maxMessageSize", true},
		{remoting.TopicNotExist, "topic x does not exist", true},
	} {
		if got := definiteRefusal(c.code, c.remark); got != c.want {
			t.Errorf("definiteRefusal(%d, %q) = %v, want %v", c.code, c.remark, got, c.want)
		}
	}
	if !isDialError(errors.New("remoting: dial 10.0.0.1:10911: connect: connection refused")) || isDialError(remoting.ErrConnClosed) {
		t.Error("dial classification")
	}
}

func TestValueOfStripsPadding(t *testing.T) {
	if ValueOf([]byte("3-17|xxxx")) != "3-17" || ValueOf([]byte("3-17")) != "3-17" {
		t.Fatal("ValueOf")
	}
}
