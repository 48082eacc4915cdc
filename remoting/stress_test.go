package remoting

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// TestStressCloseRaces mixes normal calls, server-side connection kills,
// cancelled calls and zero-copy responses across clients, then checks that
// every Release ran exactly once and every call ended with a known outcome.
// Run it with -race; REMOTING_STRESS_ROUNDS scales it up for soaks.
func TestStressCloseRaces(t *testing.T) {
	rounds := 150
	if testing.Short() {
		rounds = 30
	}
	if v, err := strconv.Atoi(os.Getenv("REMOTING_STRESS_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	var produced, released atomic.Int64
	_, addr := startServer(t, ServerConfig{}, func(s *Server) {
		s.AddPool("small", 2, 4) // small enough that SystemBusy happens too
		s.Handle(SendMessage, "", echo)
		s.Handle(PullMessage, "small", func(_ context.Context, _ *Conn, req *Command) *Command {
			resp := NewResponse(Success, "")
			resp.BodyParts = [][]byte{[]byte("abc"), []byte(req.Ext("v"))}
			produced.Add(1)
			var once atomic.Bool
			resp.Release = func() {
				if !once.CompareAndSwap(false, true) {
					t.Error("Release called twice")
				}
				released.Add(1)
			}
			return resp
		})
		s.Handle(UnregisterClient, "", func(_ context.Context, c *Conn, _ *Command) *Command {
			c.Close()
			return NewResponse(Success, "") // released and dropped: the conn is gone
		})
	})
	var wg sync.WaitGroup
	for g := range 6 {
		c := newTestClient(t, ClientConfig{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				v := strconv.Itoa(g*100000 + i)
				var code int32
				switch i % 7 {
				case 0, 1, 2:
					code = SendMessage
				case 3, 4, 5:
					code = PullMessage
				default:
					code = UnregisterClient
				}
				ctx, cancel := context.WithCancel(testCtx(t))
				if i%11 == 0 {
					cancel() // some calls are abandoned before or while they run
				}
				resp, err := c.Invoke(ctx, addr, NewRequest(code, map[string]string{"v": v}, nil))
				cancel()
				switch {
				case err == nil && code == SendMessage && resp.Ext("echo") != v:
					t.Errorf("echo %q for %q", resp.Ext("echo"), v)
				case err == nil && code == PullMessage && resp.Code == Success && string(resp.Body) != "abc"+v:
					t.Errorf("pull body %q for %q", resp.Body, v)
				case err == nil && resp.Code != Success && resp.Code != SystemBusy:
					t.Errorf("unexpected code %d", resp.Code)
				case err != nil && !errors.Is(err, ErrConnClosed) && !errors.Is(err, context.Canceled):
					t.Errorf("unexpected error %v", err)
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, func() bool { return released.Load() == produced.Load() })
	if produced.Load() == 0 {
		t.Fatal("no zero-copy responses produced")
	}
}
