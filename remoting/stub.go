package remoting

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
)

var errNotYet = errors.New("remoting: not implemented yet")

// Handler serves one request; returning nil sends no response.
type Handler func(ctx context.Context, conn *Conn, req *Command) *Command

// ServerConfig configures a Server.
type ServerConfig struct {
	MaxFrameSize int           // default 16 MiB
	IdleTimeout  time.Duration // default 120 s: close connections with no inbound bytes for that long
	Logger       hclog.Logger
	Version      int32 // stamped on responses, default 401
}

// Server is a remoting server.
type Server struct{}

func NewServer(cfg ServerConfig) *Server                    { return &Server{} }
func (s *Server) AddPool(name string, workers, queue int)   {}
func (s *Server) Handle(code int32, pool string, h Handler) {}
func (s *Server) HandleDefault(h Handler)                   {}
func (s *Server) OnConnect(func(*Conn))                     {}
func (s *Server) OnClose(func(*Conn))                       {}
func (s *Server) Serve(ln net.Listener) error               { return errNotYet }
func (s *Server) Addr() net.Addr                            { return nil }
func (s *Server) Shutdown(ctx context.Context) error        { return nil }

// Conn is one remoting connection.
type Conn struct{}

func (c *Conn) ID() uint64                                                 { return 0 }
func (c *Conn) RemoteAddr() string                                         { return "" }
func (c *Conn) LocalAddr() string                                          { return "" }
func (c *Conn) Context() context.Context                                   { return context.Background() }
func (c *Conn) Invoke(ctx context.Context, req *Command) (*Command, error) { return nil, errNotYet }
func (c *Conn) InvokeOneway(req *Command) error                            { return errNotYet }
func (c *Conn) Send(resp *Command) error                                   { return errNotYet }
func (c *Conn) Close() error                                               { return nil }

// ClientConfig configures a Client.
type ClientConfig struct {
	MaxFrameSize int
	DialTimeout  time.Duration // default 3 s
	IdleTimeout  time.Duration // default 120 s
	Logger       hclog.Logger
	Handler      Handler // optional: serves requests the server initiates
}

// Client is a remoting client.
type Client struct{}

func NewClient(cfg ClientConfig) *Client { return &Client{} }
func (c *Client) Invoke(ctx context.Context, addr string, req *Command) (*Command, error) {
	return nil, errNotYet
}
func (c *Client) InvokeAsync(ctx context.Context, addr string, req *Command, cb func(*Command, error)) error {
	return errNotYet
}
func (c *Client) InvokeOneway(ctx context.Context, addr string, req *Command) error { return errNotYet }
func (c *Client) CloseConn(addr string)                                             {}
func (c *Client) Close() error                                                      { return nil }
