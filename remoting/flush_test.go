package remoting

import (
	"bufio"
	"context"
	"net"
	"testing"
	"time"
)

// Flush returns only once every queued answer was written: it waits while
// a peer does not read, and ends when the peer has read them.
func TestServerFlushWaitsForQueuedAnswers(t *testing.T) {
	answered := make(chan struct{})
	srv, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(10, "", func(_ context.Context, _ *Conn, req *Command) *Command {
			defer close(answered)
			r := NewResponse(Success, "")
			r.Body = make([]byte, 32<<20) // more than the socket buffers hold
			return r
		})
	})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	frame, err := NewRequest(10, nil, nil).MarshalFrame(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	<-answered
	// The handler has returned; wait until its answer is queued.
	deadline := time.Now().Add(testTimeout)
	for queued := 0; queued == 0; {
		srv.lnMu.Lock()
		for _, c := range srv.conns {
			queued += c.queuedBytes()
		}
		srv.lnMu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("the answer was never queued")
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := srv.Flush(ctx); err == nil {
		t.Fatal("Flush returned while the peer had not read its answer")
	}
	read := make(chan error, 1)
	go func() {
		_, err := ReadCommand(bufio.NewReader(nc), 64<<20)
		read <- err
	}()
	fctx, fcancel := context.WithTimeout(context.Background(), testTimeout)
	defer fcancel()
	if err := srv.Flush(fctx); err != nil {
		t.Fatalf("Flush after the peer read: %v", err)
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}
}
