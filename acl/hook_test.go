package acl

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/raftmq/raftmq/remoting"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHookRefusesBeforeAnyHandlerAndLogsSparingly(t *testing.T) {
	logs := &syncBuffer{}
	accounts := mustParse(t, testAccounts)
	var clock atomic.Int64 // seconds; the server's reader goroutines read it
	a := newAuthorizer(func() *Accounts { return accounts }, hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info}),
		func() time.Time { return time.Unix(clock.Load(), 0) })

	var handled atomic.Int32
	srv := remoting.NewServer(remoting.ServerConfig{Authenticate: a.Authenticate})
	srv.Handle(remoting.SendMessage, "", func(context.Context, *remoting.Conn, *remoting.Command) *remoting.Command {
		handled.Add(1)
		return remoting.NewResponse(remoting.Success, "")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	cli := remoting.NewClient(remoting.ClientConfig{})
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr := ln.Addr().String()

	for i := range 20 {
		ext := map[string]string{"topic": "orders"}
		SignRequest(ext, []byte("m"), Credentials{AccessKey: "producer1", SecretKey: "wrong-secret"})
		resp, err := cli.Invoke(ctx, addr, remoting.NewRequest(remoting.SendMessage, ext, []byte("m")))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Code != remoting.NoPermission || !strings.Contains(resp.Remark, "signature check failed") {
			t.Fatalf("request %d: %d %q", i, resp.Code, resp.Remark)
		}
	}
	if handled.Load() != 0 {
		t.Fatalf("a refused request reached the handler %d times", handled.Load())
	}
	if n := strings.Count(logs.String(), "request refused"); n != 1 {
		t.Fatalf("%d refusal log lines for 20 refusals in one interval:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), "producer-secret") || strings.Contains(logs.String(), "wrong-secret") {
		t.Fatalf("a secret reached the log:\n%s", logs)
	}
	clock.Add(int64(RefusalLogInterval / time.Second))
	resp, err := cli.Invoke(ctx, addr, remoting.NewRequest(remoting.SendMessage, map[string]string{"topic": "orders"}, nil))
	if err != nil || resp.Code != remoting.NoPermission {
		t.Fatalf("unsigned: %v %+v", err, resp)
	}
	if !strings.Contains(logs.String(), "refused_since_last_log=19") {
		t.Fatalf("suppressed refusals not counted:\n%s", logs)
	}

	resp, err = cli.Invoke(ctx, addr, signed("producer1", remoting.SendMessage, map[string]string{"topic": "orders"}, []byte("m")))
	if err != nil || resp.Code != remoting.Success || handled.Load() != 1 {
		t.Fatalf("signed request: %v %+v, handled %d", err, resp, handled.Load())
	}
}
