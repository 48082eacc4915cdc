package remoting

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// testTimeout bounds waits that only end early when the code is broken; it is a
// safety net, not an assertion on speed.
const testTimeout = 20 * time.Second

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: testWriter{t}})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startServer starts a server on 127.0.0.1:0 and shuts it down at test end.
func startServer(t *testing.T, cfg ServerConfig, setup func(*Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startServerOn(t, ln, cfg, setup), ln.Addr().String()
}

func startServerOn(t *testing.T, ln net.Listener, cfg ServerConfig, setup func(*Server)) *Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s := NewServer(cfg)
	if setup != nil {
		setup(s)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

func newTestClient(t *testing.T, cfg ClientConfig) *Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	c := NewClient(cfg)
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func echo(_ context.Context, _ *Conn, req *Command) *Command {
	resp := NewResponse(Success, "")
	resp.SetExt("echo", req.Ext("v"))
	resp.Body = req.Body
	return resp
}

// rawConn is a test peer that writes and reads frames directly.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// Safety net only: a broken server must not hang the test.
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (r *rawConn) send(cmd *Command) {
	r.t.Helper()
	frame, err := cmd.MarshalFrame(nil)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.nc.Write(frame); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) read() *Command {
	r.t.Helper()
	cmd, err := ReadCommand(r.br, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	return cmd
}

// waitClosed reads until the server closes the connection and returns the error.
func (r *rawConn) waitClosed() error {
	_, err := io.Copy(io.Discard, r.br)
	if err == nil {
		return io.EOF
	}
	return err
}

func TestServerResponseFields(t *testing.T) {
	_, addr := startServer(t, ServerConfig{Version: 413}, func(s *Server) {
		s.Handle(HeartBeat, "", func(context.Context, *Conn, *Command) *Command {
			return &Command{Code: Success} // deliberately bare: the server fills the rest
		})
	})
	for _, st := range []SerializeType{SerializeJSON, SerializeRocketMQ} {
		rc := dialRaw(t, addr)
		rc.send(&Command{Code: HeartBeat, Language: "GO", Version: 317, Opaque: 77, SerializeType: st})
		resp := rc.read()
		if !resp.IsResponse() || resp.Opaque != 77 || resp.Version != 413 || resp.SerializeType != st ||
			(st == SerializeJSON && resp.ExtFields == nil) || resp.Language != "JAVA" || resp.Code != Success {
			t.Fatalf("serialize type %d: bad response %+v", st, resp)
		}
	}
}

func TestServerJSONExtFieldsAlwaysPresent(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(HeartBeat, "", func(context.Context, *Conn, *Command) *Command { return &Command{} })
	})
	rc := dialRaw(t, addr)
	rc.send(&Command{Code: HeartBeat, Opaque: 1})
	var lenWord [8]byte
	if _, err := io.ReadFull(rc.br, lenWord[:]); err != nil {
		t.Fatal(err)
	}
	header := make([]byte, binary.BigEndian.Uint32(lenWord[4:])&0xFFFFFF)
	if _, err := io.ReadFull(rc.br, header); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(header, []byte(`"extFields":{}`)) || !bytes.Contains(header, []byte(`"flag":1`)) {
		t.Fatalf("header %s lacks extFields or the response flag", header)
	}
}

func TestServerUnknownCode(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, nil)
	rc := dialRaw(t, addr)
	rc.send(&Command{Code: 4242, Opaque: 5})
	resp := rc.read()
	if resp.Code != RequestCodeNotSupported || resp.Opaque != 5 || !strings.Contains(resp.Remark, "4242") {
		t.Fatalf("unknown code answered %+v", resp)
	}
}

func TestServerHandleDefault(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.HandleDefault(func(_ context.Context, _ *Conn, req *Command) *Command {
			return NewResponse(ServiceNotAvailable, "default")
		})
	})
	rc := dialRaw(t, addr)
	rc.send(&Command{Code: 4242, Opaque: 5})
	if resp := rc.read(); resp.Code != ServiceNotAvailable || resp.Remark != "default" {
		t.Fatalf("default handler not used: %+v", resp)
	}
}

func TestServerHandlerPanicAnswersSystemError(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(SendMessage, "", func(context.Context, *Conn, *Command) *Command { panic("boom") })
		s.Handle(HeartBeat, "", echo)
	})
	rc := dialRaw(t, addr)
	rc.send(&Command{Code: SendMessage, Opaque: 1})
	if resp := rc.read(); resp.Code != SystemError || resp.Opaque != 1 || !strings.Contains(resp.Remark, "boom") {
		t.Fatalf("panic answered %+v", resp)
	}
	// The connection and the worker survive.
	rc.send(&Command{Code: HeartBeat, Opaque: 2})
	if resp := rc.read(); resp.Code != Success || resp.Opaque != 2 {
		t.Fatalf("after panic: %+v", resp)
	}
}

// A blocked handler (a parked long poll) must not delay another request on the same connection.
func TestServerConcurrentRequestsOnOneConn(t *testing.T) {
	entered := make(chan struct{})
	unblock := make(chan struct{})
	_, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(PullMessage, "", func(ctx context.Context, _ *Conn, _ *Command) *Command {
			close(entered)
			<-unblock
			return NewResponse(PullNotFound, "")
		})
		s.Handle(HeartBeat, "", echo)
	})
	c := newTestClient(t, ClientConfig{})
	ctx := testCtx(t)
	pulled := make(chan *Command, 1)
	if err := c.InvokeAsync(ctx, addr, NewRequest(PullMessage, nil, nil), func(resp *Command, err error) {
		if err != nil {
			t.Error(err)
		}
		pulled <- resp
	}); err != nil {
		t.Fatal(err)
	}
	<-entered
	resp, err := c.Invoke(ctx, addr, NewRequest(HeartBeat, map[string]string{"v": "hb"}, nil))
	if err != nil || resp.Ext("echo") != "hb" {
		t.Fatalf("heartbeat behind a parked pull: %v %+v", err, resp)
	}
	select {
	case <-pulled:
		t.Fatal("pull answered before it was released")
	default:
	}
	close(unblock)
	if resp := <-pulled; resp == nil || resp.Code != PullNotFound {
		t.Fatalf("pull: %+v", resp)
	}
}

func TestServerFullPoolAnswersSystemBusy(t *testing.T) {
	started := make(chan struct{}, 2)
	unblock := make(chan struct{})
	_, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.AddPool("send", 1, 1)
		s.Handle(SendMessage, "send", func(context.Context, *Conn, *Command) *Command {
			started <- struct{}{}
			<-unblock
			return NewResponse(Success, "")
		})
	})
	rc := dialRaw(t, addr)
	rc.send(&Command{Code: SendMessage, Opaque: 1})
	<-started                                       // the only worker is busy
	rc.send(&Command{Code: SendMessage, Opaque: 2}) // fills the queue
	rc.send(&Command{Code: SendMessage, Opaque: 3}) // rejected
	if resp := rc.read(); resp.Code != SystemBusy || resp.Opaque != 3 {
		t.Fatalf("want SYSTEM_BUSY for opaque 3, got %+v", resp)
	}
	close(unblock)
	got := map[int32]int32{}
	for range 2 {
		resp := rc.read()
		got[resp.Opaque] = resp.Code
	}
	if got[1] != Success || got[2] != Success || len(got) != 2 {
		t.Fatalf("queued requests: %v", got)
	}
}

func TestServerOnewayGetsNoAnswer(t *testing.T) {
	var calls atomic.Int32
	handled := make(chan struct{}, 1)
	_, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(UpdateConsumerOffset, "", func(context.Context, *Conn, *Command) *Command {
			calls.Add(1)
			defer func() { handled <- struct{}{} }()
			return NewResponse(Success, "") // must be discarded
		})
		s.Handle(HeartBeat, "", echo)
	})
	rc := dialRaw(t, addr)
	oneway := &Command{Code: UpdateConsumerOffset, Opaque: 1}
	oneway.MarkOneway()
	rc.send(oneway)
	<-handled
	rc.send(&Command{Code: HeartBeat, Opaque: 2})
	resp := rc.read()
	if resp.Opaque != 2 {
		t.Fatalf("oneway request was answered: %+v", resp)
	}
	if calls.Load() != 1 {
		t.Fatal("oneway handler not called")
	}
	// Nothing else arrives: close our side after a last round trip and drain.
	rc.send(&Command{Code: HeartBeat, Opaque: 3})
	if resp := rc.read(); resp.Opaque != 3 {
		t.Fatalf("unexpected frame %+v", resp)
	}
}

func TestServerIdleTimeoutClosesConn(t *testing.T) {
	closed := make(chan uint64, 1)
	_, addr := startServer(t, ServerConfig{IdleTimeout: 150 * time.Millisecond}, func(s *Server) {
		s.Handle(HeartBeat, "", echo)
		s.OnClose(func(c *Conn) { closed <- c.ID() })
	})
	rc := dialRaw(t, addr)
	rc.send(&Command{Code: HeartBeat, Opaque: 1})
	rc.read()
	if err := rc.waitClosed(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection not closed by the server: %v", err)
	}
	<-closed
}

func TestServerOversizedFrameClosesConn(t *testing.T) {
	var closes atomic.Int32
	closed := make(chan struct{})
	_, addr := startServer(t, ServerConfig{MaxFrameSize: 1 << 20}, func(s *Server) {
		s.OnClose(func(*Conn) {
			if closes.Add(1) == 1 {
				close(closed)
			}
		})
	})
	rc := dialRaw(t, addr)
	if _, err := rc.nc.Write([]byte{0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2, '{', '}'}); err != nil {
		t.Fatal(err)
	}
	if err := rc.waitClosed(); !errors.Is(err, io.EOF) && !errors.Is(err, syscallReset) {
		t.Fatalf("oversized frame: connection not closed: %v", err)
	}
	<-closed
	if closes.Load() != 1 {
		t.Fatalf("OnClose called %d times", closes.Load())
	}
}

func TestServerGarbageHeaderClosesConn(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, nil)
	rc := dialRaw(t, addr)
	garbage := []byte("{not json")
	frame := binary.BigEndian.AppendUint32(nil, uint32(4+len(garbage)))
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(garbage)))
	if _, err := rc.nc.Write(append(frame, garbage...)); err != nil {
		t.Fatal(err)
	}
	if err := rc.waitClosed(); !errors.Is(err, io.EOF) && !errors.Is(err, syscallReset) {
		t.Fatalf("garbage header: connection not closed: %v", err)
	}
}

func TestServerInitiatedRequestAnsweredByClientHandler(t *testing.T) {
	conns := make(chan *Conn, 1)
	_, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(HeartBeat, "", func(_ context.Context, c *Conn, _ *Command) *Command {
			conns <- c
			return NewResponse(Success, "")
		})
	})
	notified := make(chan string, 1)
	c := newTestClient(t, ClientConfig{Handler: func(_ context.Context, _ *Conn, req *Command) *Command {
		switch req.Code {
		case NotifyConsumerIdsChanged:
			notified <- req.Ext("consumerGroup")
			return nil
		case GetConsumerRunningInfo:
			resp := NewResponse(Success, "")
			resp.Body = []byte(`{"running":true}`)
			return resp
		}
		return NewResponse(RequestCodeNotSupported, "")
	}})
	ctx := testCtx(t)
	if _, err := c.Invoke(ctx, addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	sc := <-conns
	resp, err := sc.Invoke(ctx, NewRequest(GetConsumerRunningInfo, map[string]string{"consumerGroup": "g"}, nil))
	if err != nil || resp.Code != Success || string(resp.Body) != `{"running":true}` {
		t.Fatalf("server-initiated invoke: %v %+v", err, resp)
	}
	if err := sc.InvokeOneway(NewRequest(NotifyConsumerIdsChanged, map[string]string{"consumerGroup": "g1"}, nil)); err != nil {
		t.Fatal(err)
	}
	if g := <-notified; g != "g1" {
		t.Fatalf("notify carried group %q", g)
	}
	// The same connection still serves client requests.
	if _, err := c.Invoke(ctx, addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	<-conns
}

func TestClientWithoutHandlerRejectsServerRequests(t *testing.T) {
	conns := make(chan *Conn, 1)
	_, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(HeartBeat, "", func(_ context.Context, c *Conn, _ *Command) *Command {
			conns <- c
			return NewResponse(Success, "")
		})
	})
	c := newTestClient(t, ClientConfig{})
	ctx := testCtx(t)
	if _, err := c.Invoke(ctx, addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	resp, err := (<-conns).Invoke(ctx, NewRequest(ConsumeMessageDirectly, nil, nil))
	if err != nil || resp.Code != RequestCodeNotSupported {
		t.Fatalf("got %v %+v", err, resp)
	}
}

func TestClientReconnectsAfterServerRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	setup := func(s *Server) { s.Handle(HeartBeat, "", echo) }
	first := NewServer(ServerConfig{Logger: testLogger(t)})
	setup(first)
	served := make(chan error, 1)
	go func() { served <- first.Serve(ln) }()

	c := newTestClient(t, ClientConfig{})
	ctx := testCtx(t)
	if _, err := c.Invoke(ctx, addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if err := first.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	startServerOn(t, ln2, ServerConfig{}, setup)
	// The client notices the dead connection at the latest on the first call
	// (it fails with ErrConnClosed); a later call must dial the new server.
	for attempt := 0; ; attempt++ {
		resp, err := c.Invoke(ctx, addr, NewRequest(HeartBeat, map[string]string{"v": "again"}, nil))
		if err == nil {
			if resp.Ext("echo") != "again" {
				t.Fatalf("bad response %+v", resp)
			}
			break
		}
		if !errors.Is(err, ErrConnClosed) || attempt > 3 {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
}

func TestPendingCallFailsWhenConnCloses(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(PullMessage, "", func(_ context.Context, c *Conn, _ *Command) *Command {
			c.Close() // the connection dies while the call is pending
			return nil
		})
	})
	c := newTestClient(t, ClientConfig{})
	ctx := testCtx(t)
	_, err := c.Invoke(ctx, addr, NewRequest(PullMessage, nil, nil))
	if !errors.Is(err, ErrConnClosed) {
		t.Fatalf("pending call: got %v, want ErrConnClosed", err)
	}
	// Async pending calls fail too.
	done := make(chan error, 1)
	if err := c.InvokeAsync(ctx, addr, NewRequest(PullMessage, nil, nil), func(_ *Command, err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrConnClosed) {
		t.Fatalf("async pending call: got %v", err)
	}
}

func TestClientCallTimesOutWithContext(t *testing.T) {
	release := make(chan struct{})
	_, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(PullMessage, "", func(ctx context.Context, _ *Conn, _ *Command) *Command {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return NewResponse(Success, "")
		})
		s.Handle(HeartBeat, "", echo)
	})
	defer close(release)
	c := newTestClient(t, ClientConfig{})
	ctx, cancel := context.WithCancel(testCtx(t))
	errs := make(chan error, 1)
	go func() {
		_, err := c.Invoke(ctx, addr, NewRequest(PullMessage, nil, nil))
		errs <- err
	}()
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	async := make(chan error, 1)
	actx, acancel := context.WithCancel(testCtx(t))
	if err := c.InvokeAsync(actx, addr, NewRequest(PullMessage, nil, nil), func(_ *Command, err error) { async <- err }); err != nil {
		t.Fatal(err)
	}
	acancel()
	if err := <-async; !errors.Is(err, context.Canceled) {
		t.Fatalf("async: got %v", err)
	}
	// The connection is still usable.
	if _, err := c.Invoke(testCtx(t), addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
}

func TestClientOneway(t *testing.T) {
	got := make(chan *Command, 1)
	_, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(UnlockBatchMQ, "", func(_ context.Context, _ *Conn, req *Command) *Command {
			got <- req
			return NewResponse(Success, "")
		})
	})
	c := newTestClient(t, ClientConfig{})
	if err := c.InvokeOneway(testCtx(t), addr, NewRequest(UnlockBatchMQ, nil, []byte("b"))); err != nil {
		t.Fatal(err)
	}
	if req := <-got; !req.IsOneway() || string(req.Body) != "b" {
		t.Fatalf("oneway request %+v", req)
	}
}

func TestClientDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newTestClient(t, ClientConfig{})
	if _, err := c.Invoke(testCtx(t), addr, NewRequest(HeartBeat, nil, nil)); err == nil {
		t.Fatal("invoke to a closed port succeeded")
	}
	c.Close()
	if _, err := c.Invoke(testCtx(t), addr, NewRequest(HeartBeat, nil, nil)); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// Zero copy: BodyParts arrive intact after Body, and Release runs exactly once.
func TestBodyPartsArriveAndReleaseOnce(t *testing.T) {
	var releases atomic.Int32
	parts := [][]byte{bytes.Repeat([]byte("A"), 100_000), []byte("-middle-"), bytes.Repeat([]byte("Z"), 3000)}
	_, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(PullMessage, "", func(context.Context, *Conn, *Command) *Command {
			resp := NewResponse(Success, "")
			resp.Body = []byte("head:")
			resp.BodyParts = parts
			resp.Release = func() { releases.Add(1) }
			return resp
		})
	})
	c := newTestClient(t, ClientConfig{})
	for range 3 {
		resp, err := c.Invoke(testCtx(t), addr, NewRequest(PullMessage, nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		want := append([]byte("head:"), bytes.Join(parts, nil)...)
		if !bytes.Equal(resp.Body, want) {
			t.Fatalf("body of %d bytes, want %d", len(resp.Body), len(want))
		}
	}
	c.Close()
	waitFor(t, func() bool { return releases.Load() >= 3 })
	if n := releases.Load(); n != 3 {
		t.Fatalf("Release called %d times for 3 frames", n)
	}
}

// Frames in the writer's batch, in its queue and racing with the close are each
// released exactly once; sends after the close release at once.
func TestReleaseOnceWhenConnDies(t *testing.T) {
	local, peer := net.Pipe() // synchronous: writes block until the peer reads
	c := newConn(context.Background(), local, connOptions{
		logger: hclog.NewNullLogger(), maxFrame: DefaultMaxFrameSize, idle: time.Hour,
		version: DefaultVersion, dispatch: func(*Conn, *Command) {},
	})
	const frames = 300
	counts := make([]atomic.Int32, frames+1)
	var queued atomic.Int32
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		var wg sync.WaitGroup
		for i := range frames {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp := &Command{Opaque: int32(i), BodyParts: [][]byte{[]byte("payload")}}
				resp.Release = func() { counts[i].Add(1) }
				queued.Add(1)
				_ = c.Send(resp) // may fail with ErrConnClosed once we close
			}()
		}
		wg.Wait()
	}()
	// Read one frame so a write completed, wait until every sender has started,
	// then kill the connection.
	if _, err := ReadCommand(bufio.NewReader(peer), 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return queued.Load() == frames })
	c.Close()
	peer.Close()
	<-c.Done()
	<-sent
	late := &Command{Release: func() { counts[frames].Add(1) }}
	if err := c.Send(late); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("send after close: %v", err)
	}
	for i := range counts {
		if n := counts[i].Load(); n != 1 {
			t.Fatalf("frame %d released %d times", i, n)
		}
	}
}

func TestConcurrentClientsAndCalls(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(SendMessage, "", echo)
	})
	var wg sync.WaitGroup
	for range 4 {
		c := newTestClient(t, ClientConfig{})
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					v := string(rune('a'+g)) + strings.Repeat("x", i)
					resp, err := c.Invoke(testCtx(t), addr, NewRequest(SendMessage, map[string]string{"v": v}, []byte(v)))
					if err != nil || resp.Ext("echo") != v || string(resp.Body) != v {
						t.Errorf("call %d: %v %+v", i, err, resp)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
}

func TestShutdownWaitsForHandlersAndClosesConns(t *testing.T) {
	entered := make(chan struct{})
	var finished atomic.Bool
	var closes atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ServerConfig{Logger: testLogger(t)})
	s.Handle(PullMessage, "", func(ctx context.Context, _ *Conn, _ *Command) *Command {
		close(entered)
		<-ctx.Done() // the connection closing ends the long poll
		finished.Store(true)
		return nil
	})
	s.OnClose(func(*Conn) { closes.Add(1) })
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	rc := dialRaw(t, ln.Addr().String())
	rc.send(&Command{Code: PullMessage, Opaque: 1})
	<-entered
	if err := s.Shutdown(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if !finished.Load() || closes.Load() != 1 {
		t.Fatalf("handler finished %v, closes %d", finished.Load(), closes.Load())
	}
	if err := rc.waitClosed(); !errors.Is(err, io.EOF) && !errors.Is(err, syscallReset) {
		t.Fatalf("conn not closed: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestServerMaxInflightPerConn(t *testing.T) {
	entered := make(chan struct{}, 1)
	unblock := make(chan struct{})
	_, addr := startServer(t, ServerConfig{MaxInflightPerConn: 1}, func(s *Server) {
		s.Handle(PullMessage, "", func(context.Context, *Conn, *Command) *Command {
			entered <- struct{}{}
			<-unblock
			return NewResponse(PullNotFound, "")
		})
		s.Handle(HeartBeat, "", echo)
	})
	hog := dialRaw(t, addr)
	hog.send(&Command{Code: PullMessage, Opaque: 1})
	<-entered
	hog.send(&Command{Code: HeartBeat, Opaque: 2})
	if resp := hog.read(); resp.Code != SystemBusy || resp.Opaque != 2 {
		t.Fatalf("want SYSTEM_BUSY for the second request, got %+v", resp)
	}
	other := dialRaw(t, addr)
	other.send(&Command{Code: HeartBeat, Opaque: 3})
	if resp := other.read(); resp.Code != Success {
		t.Fatalf("another connection was limited: %+v", resp)
	}
	close(unblock)
	if resp := hog.read(); resp.Opaque != 1 || resp.Code != PullNotFound {
		t.Fatalf("pull: %+v", resp)
	}
	hog.send(&Command{Code: HeartBeat, Opaque: 4})
	if resp := hog.read(); resp.Code != Success {
		t.Fatalf("limit not released: %+v", resp)
	}
}

func TestServerMaxConns(t *testing.T) {
	_, addr := startServer(t, ServerConfig{MaxConns: 1}, func(s *Server) { s.Handle(HeartBeat, "", echo) })
	first := dialRaw(t, addr)
	first.send(&Command{Code: HeartBeat, Opaque: 1})
	first.read()
	second := dialRaw(t, addr)
	if err := second.waitClosed(); !errors.Is(err, io.EOF) && !errors.Is(err, syscallReset) {
		t.Fatalf("connection over the limit not closed: %v", err)
	}
	first.send(&Command{Code: HeartBeat, Opaque: 2})
	if resp := first.read(); resp.Code != Success {
		t.Fatalf("first connection: %+v", resp)
	}
}

// flakyListener fails its first Accept calls with errs, then delegates.
type flakyListener struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func TestServeSurvivesTemporaryAcceptErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: syscallEMFILE}
	startServerOn(t, &flakyListener{Listener: ln, errs: []error{emfile, emfile}}, ServerConfig{},
		func(s *Server) { s.Handle(HeartBeat, "", echo) })
	c := newTestClient(t, ClientConfig{})
	if _, err := c.Invoke(testCtx(t), ln.Addr().String(), NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
}

func TestServeReturnsPermanentAcceptError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	broken := errors.New("listener broken")
	s := NewServer(ServerConfig{Logger: testLogger(t)})
	if err := s.Serve(&flakyListener{Listener: ln, errs: []error{broken}}); !errors.Is(err, broken) {
		t.Fatalf("Serve returned %v", err)
	}
	if err := s.Shutdown(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestClientIdleTimeoutClosesAndRedials(t *testing.T) {
	var opens, closes atomic.Int32
	_, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(HeartBeat, "", echo)
		s.OnConnect(func(*Conn) { opens.Add(1) })
		s.OnClose(func(*Conn) { closes.Add(1) })
	})
	c := newTestClient(t, ClientConfig{IdleTimeout: 100 * time.Millisecond})
	if _, err := c.Invoke(testCtx(t), addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return closes.Load() == 1 }) // the client gave up the silent connection
	if _, err := c.Invoke(testCtx(t), addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if opens.Load() != 2 {
		t.Fatalf("%d connections opened, want 2", opens.Load())
	}
}

func TestClientHandlerPanicAnswersSystemError(t *testing.T) {
	conns := make(chan *Conn, 1)
	_, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(HeartBeat, "", func(_ context.Context, c *Conn, _ *Command) *Command {
			conns <- c
			return NewResponse(Success, "")
		})
	})
	c := newTestClient(t, ClientConfig{Handler: func(context.Context, *Conn, *Command) *Command { panic("client boom") }})
	if _, err := c.Invoke(testCtx(t), addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	resp, err := (<-conns).Invoke(testCtx(t), NewRequest(GetConsumerRunningInfo, nil, nil))
	if err != nil || resp.Code != SystemError || !strings.Contains(resp.Remark, "client boom") {
		t.Fatalf("got %v %+v", err, resp)
	}
}

func TestServerUnencodableResponseAnswersSystemError(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(HeartBeat, "", func(context.Context, *Conn, *Command) *Command {
			return NewResponse(200050, "") // does not fit the binary header's int16 code
		})
	})
	rc := dialRaw(t, addr)
	rc.send(&Command{Code: HeartBeat, Opaque: 9, SerializeType: SerializeRocketMQ})
	if resp := rc.read(); resp.Code != SystemError || resp.Opaque != 9 || !strings.Contains(resp.Remark, "encode") {
		t.Fatalf("got %+v", resp)
	}
}

// A peer that sends requests but never reads the answers gets its connection
// closed once the queued bytes pass the limit; handlers never block on it.
func TestServerClosesPeerThatDoesNotRead(t *testing.T) {
	var produced, released atomic.Int64
	closed := make(chan struct{})
	var closeOnce sync.Once
	body := bytes.Repeat([]byte("x"), 32<<10)
	_, addr := startServer(t, ServerConfig{MaxQueuedBytesPerConn: 256 << 10}, func(s *Server) {
		s.AddPool("pull", 1, 10000) // one worker: if it blocked on the slow peer, others would starve
		s.Handle(PullMessage, "pull", func(context.Context, *Conn, *Command) *Command {
			produced.Add(1)
			resp := NewResponse(Success, "")
			resp.BodyParts = [][]byte{body}
			resp.Release = func() { released.Add(1) }
			return resp
		})
		s.Handle(HeartBeat, "pull", echo)
		s.OnClose(func(*Conn) { closeOnce.Do(func() { close(closed) }) })
	})
	slow := dialRaw(t, addr)
	// 64 MiB of answers: far beyond the kernel's socket buffers plus the limit.
	go func() {
		for i := range 2048 {
			frame, _ := (&Command{Code: PullMessage, Opaque: int32(i + 1)}).MarshalFrame(nil)
			if _, err := slow.nc.Write(frame); err != nil {
				return // closed by the server
			}
		}
	}()
	<-closed
	// The single worker is free: another client is served.
	c := newTestClient(t, ClientConfig{})
	if _, err := c.Invoke(testCtx(t), addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	slow.nc.Close()
	waitFor(t, func() bool { return released.Load() == produced.Load() })
}

// slowlorisFrame is a valid HeartBeat frame with a body, long enough that
// trickling it takes far longer than the frame timeout of the tests below.
func slowlorisFrame(t *testing.T) []byte {
	t.Helper()
	frame, err := (&Command{Code: HeartBeat, Opaque: 7, Body: bytes.Repeat([]byte("x"), 200)}).MarshalFrame(nil)
	if err != nil {
		t.Fatal(err)
	}
	return frame
}

func TestServerFrameTimeoutDropsSlowloris(t *testing.T) {
	closed := make(chan struct{})
	_, addr := startServer(t, ServerConfig{FrameTimeout: 300 * time.Millisecond, IdleTimeout: time.Minute}, func(s *Server) {
		s.Handle(HeartBeat, "", echo)
		s.OnClose(func(*Conn) { close(closed) })
	})
	rc := dialRaw(t, addr)
	frame := slowlorisFrame(t)
	var sent atomic.Int32
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// The attack: one byte at a time, each well inside the idle timeout.
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for _, b := range frame {
			select {
			case <-tick.C:
			case <-stop:
				return
			}
			if _, err := rc.nc.Write([]byte{b}); err != nil {
				return
			}
			sent.Add(1)
		}
	}()
	if err := rc.waitClosed(); !errors.Is(err, io.EOF) && !errors.Is(err, syscallReset) {
		t.Fatalf("trickled frame: connection not closed: %v", err)
	}
	<-closed
	if n := int(sent.Load()); n >= len(frame) {
		t.Fatalf("connection closed only after the whole frame (%d bytes) arrived", n)
	}
}

func TestServerFrameTimeoutSparesIdleGapsBetweenFrames(t *testing.T) {
	_, addr := startServer(t, ServerConfig{FrameTimeout: 100 * time.Millisecond, IdleTimeout: time.Minute}, func(s *Server) {
		s.Handle(HeartBeat, "", echo)
	})
	rc := dialRaw(t, addr)
	rc.send(&Command{Code: HeartBeat, Opaque: 1})
	rc.read()
	// A pause between frames longer than the frame timeout is idleness, which
	// the idle timeout governs: the connection must still serve.
	time.Sleep(300 * time.Millisecond)
	rc.send(&Command{Code: HeartBeat, Opaque: 2})
	if resp := rc.read(); resp.Code != Success || resp.Opaque != 2 {
		t.Fatalf("after an idle gap: %+v", resp)
	}
}

func TestServerMaxConnsRefusesOneOverAndAcceptsAfterAClose(t *testing.T) {
	const limit = 3
	closed := make(chan uint64, limit+1)
	_, addr := startServer(t, ServerConfig{MaxConns: limit}, func(s *Server) {
		s.Handle(HeartBeat, "", echo)
		s.OnClose(func(c *Conn) { closed <- c.ID() })
	})
	conns := make([]*rawConn, limit)
	for i := range conns {
		conns[i] = dialRaw(t, addr)
		conns[i].send(&Command{Code: HeartBeat, Opaque: int32(i)})
		if resp := conns[i].read(); resp.Code != Success {
			t.Fatalf("connection %d: %+v", i, resp)
		}
	}
	extra := dialRaw(t, addr)
	if err := extra.waitClosed(); !errors.Is(err, io.EOF) && !errors.Is(err, syscallReset) {
		t.Fatalf("connection %d of %d not refused: %v", limit+1, limit, err)
	}
	conns[0].nc.Close()
	<-closed // the server has forgotten it: there is room for one more
	again := dialRaw(t, addr)
	again.send(&Command{Code: HeartBeat, Opaque: 9})
	if resp := again.read(); resp.Code != Success {
		t.Fatalf("new connection after a close: %+v", resp)
	}
}

func TestServerMaxInflightBytesPerConn(t *testing.T) {
	entered := make(chan struct{}, 1)
	unblock := make(chan struct{})
	_, addr := startServer(t, ServerConfig{MaxInflightBytesPerConn: 1000}, func(s *Server) {
		s.Handle(SendMessage, "", func(context.Context, *Conn, *Command) *Command {
			entered <- struct{}{}
			<-unblock
			return NewResponse(Success, "")
		})
		s.Handle(HeartBeat, "", echo)
	})
	rc := dialRaw(t, addr)
	rc.send(&Command{Code: SendMessage, Opaque: 1, Body: make([]byte, 600)})
	<-entered
	rc.send(&Command{Code: HeartBeat, Opaque: 2, Body: make([]byte, 600)})
	if resp := rc.read(); resp.Code != SystemBusy || resp.Opaque != 2 {
		t.Fatalf("want SYSTEM_BUSY for bytes over the limit, got %+v", resp)
	}
	rc.send(&Command{Code: HeartBeat, Opaque: 3, Body: make([]byte, 300)})
	if resp := rc.read(); resp.Code != Success || resp.Opaque != 3 {
		t.Fatalf("a request within the byte limit: %+v", resp)
	}
	close(unblock)
	if resp := rc.read(); resp.Opaque != 1 || resp.Code != Success {
		t.Fatalf("blocked send: %+v", resp)
	}
	rc.send(&Command{Code: HeartBeat, Opaque: 4, Body: make([]byte, 900)})
	if resp := rc.read(); resp.Code != Success {
		t.Fatalf("byte limit not released: %+v", resp)
	}
}

func TestServerResourceLimitDefaults(t *testing.T) {
	s := NewServer(ServerConfig{})
	defer s.Shutdown(context.Background())
	if s.cfg.FrameTimeout != DefaultFrameTimeout || s.cfg.MaxConns != DefaultMaxConns ||
		s.cfg.MaxInflightPerConn != DefaultMaxInflightPerConn || s.cfg.MaxInflightBytesPerConn != DefaultMaxInflightBytesPerConn {
		t.Fatalf("zero config did not get the defaults: %+v", s.cfg)
	}
	off := NewServer(ServerConfig{FrameTimeout: -1, MaxConns: -1, MaxInflightPerConn: -1, MaxInflightBytesPerConn: -1})
	defer off.Shutdown(context.Background())
	if off.cfg.FrameTimeout != 0 || off.cfg.MaxConns != 0 || off.cfg.MaxInflightPerConn != 0 || off.cfg.MaxInflightBytesPerConn != 0 {
		t.Fatalf("negative limits not turned off: %+v", off.cfg)
	}
}

func TestLogLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLogLimiter(time.Minute, func() time.Time { return now })
	if ok, _ := l.Allow(); !ok {
		t.Fatal("first event held back")
	}
	for range 5 {
		if ok, _ := l.Allow(); ok {
			t.Fatal("event within the interval let through")
		}
	}
	now = now.Add(time.Minute)
	if ok, n := l.Allow(); !ok || n != 5 {
		t.Fatalf("after the interval: ok %v, suppressed %d; want true, 5", ok, n)
	}
}

func TestServerAuthenticateRunsBeforeHandlers(t *testing.T) {
	var handled atomic.Int32
	refuse := func(_ *Conn, req *Command) *Command {
		if req.Ext("ok") == "1" {
			return nil
		}
		return NewResponse(NoPermission, "go away")
	}
	_, addr := startServer(t, ServerConfig{Authenticate: refuse, MaxInflightPerConn: 1}, func(s *Server) {
		s.Handle(HeartBeat, "", func(ctx context.Context, c *Conn, req *Command) *Command {
			handled.Add(1)
			return echo(ctx, c, req)
		})
	})
	rc := dialRaw(t, addr)
	oneway := &Command{Code: HeartBeat, Opaque: 1}
	oneway.MarkOneway()
	rc.send(oneway) // refused and, being oneway, unanswered
	rc.send(&Command{Code: HeartBeat, Opaque: 2})
	if resp := rc.read(); resp.Opaque != 2 || resp.Code != NoPermission || resp.Remark != "go away" || !resp.IsResponse() {
		t.Fatalf("refused request: %+v", resp)
	}
	rc.send(&Command{Code: HeartBeat, Opaque: 3, ExtFields: map[string]string{"ok": "1"}})
	if resp := rc.read(); resp.Opaque != 3 || resp.Code != Success {
		t.Fatalf("allowed request (refusals must hold no in-flight slot): %+v", resp)
	}
	if handled.Load() != 1 {
		t.Fatalf("handler ran %d times, want once", handled.Load())
	}
}
