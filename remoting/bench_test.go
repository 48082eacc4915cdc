package remoting

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// stdHeader is the JSON header as encoding/json would handle it, for comparison.
type stdHeader struct {
	Code      int32             `json:"code"`
	Language  string            `json:"language"`
	Version   int32             `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int32             `json:"flag"`
	Remark    string            `json:"remark"`
	ExtFields map[string]string `json:"extFields"`
}

func BenchmarkEncodeSend(b *testing.B) {
	for _, bc := range []struct {
		name string
		st   SerializeType
	}{{"json", SerializeJSON}, {"binary", SerializeRocketMQ}} {
		b.Run(bc.name, func(b *testing.B) {
			cmd := sendRequest(bc.st)
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				buf, err = cmd.MarshalFrame(buf[:0])
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
	}
	b.Run("json-frame-buffers", func(b *testing.B) {
		cmd := sendRequest(SerializeJSON)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cmd.FrameBuffers(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		cmd := sendRequest(SerializeJSON)
		h := stdHeader{cmd.Code, cmd.Language, cmd.Version, cmd.Opaque, cmd.Flag, cmd.Remark, cmd.ExtFields}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&h); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecodeSend(b *testing.B) {
	for _, bc := range []struct {
		name string
		st   SerializeType
	}{{"json", SerializeJSON}, {"binary", SerializeRocketMQ}} {
		b.Run(bc.name, func(b *testing.B) {
			frame, err := sendRequest(bc.st).MarshalFrame(nil)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeFrame(frame[4:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("json-read-command", func(b *testing.B) {
		frame, _ := sendRequest(SerializeJSON).MarshalFrame(nil)
		r := bytes.NewReader(frame)
		br := bufio.NewReader(r)
		b.ReportAllocs()
		for b.Loop() {
			r.Reset(frame)
			br.Reset(r)
			if _, err := ReadCommand(br, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		frame, _ := sendRequest(SerializeJSON).MarshalFrame(nil)
		header := frame[8 : len(frame)-1024]
		b.ReportAllocs()
		for b.Loop() {
			var h stdHeader
			if err := json.Unmarshal(header, &h); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkServerRoundTrip: a SEND_MESSAGE-sized request answered by an echo-less
// handler over loopback, one caller and many concurrent callers on one connection.
func BenchmarkServerRoundTrip(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := NewServer(ServerConfig{Logger: hclog.NewNullLogger()})
	s.Handle(SendMessage, "", func(_ context.Context, _ *Conn, req *Command) *Command {
		resp := NewResponse(Success, "")
		resp.SetExt("msgId", "7F00000100002A9F0000000000000000")
		resp.SetExt("queueId", req.Ext("queueId"))
		resp.SetExt("queueOffset", "12345")
		return resp
	})
	go s.Serve(ln)
	defer s.Shutdown(context.Background())
	addr := ln.Addr().String()
	c := NewClient(ClientConfig{})
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Invoke(ctx, addr, sendRequest(SerializeJSON)); err != nil {
		b.Fatal(err)
	}
	b.Run("sequential", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Invoke(ctx, addr, sendRequest(SerializeJSON)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Invoke(ctx, addr, sendRequest(SerializeJSON)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkServerPullZeroCopy: a pull-sized response (32 messages of 1 KiB as
// BodyParts, as the broker serves them from mmap'd segments) over loopback.
func BenchmarkServerPullZeroCopy(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	parts := make([][]byte, 32)
	for i := range parts {
		parts[i] = bytes.Repeat([]byte{byte('a' + i%26)}, 1024)
	}
	s := NewServer(ServerConfig{Logger: hclog.NewNullLogger()})
	s.Handle(PullMessage, "", func(context.Context, *Conn, *Command) *Command {
		resp := NewResponse(Success, "")
		resp.SetExt("nextBeginOffset", "32")
		resp.SetExt("minOffset", "0")
		resp.SetExt("maxOffset", "1000")
		resp.SetExt("suggestWhichBrokerId", "0")
		resp.BodyParts = parts
		resp.Release = func() {}
		return resp
	})
	go s.Serve(ln)
	defer s.Shutdown(context.Background())
	c := NewClient(ClientConfig{})
	defer c.Close()
	addr := ln.Addr().String()
	ctx := context.Background()
	b.SetBytes(32 * 1024)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Invoke(ctx, addr, NewRequest(PullMessage, map[string]string{"topic": "T", "queueId": "0"}, nil))
		if err != nil || len(resp.Body) != 32*1024 {
			b.Fatal(err)
		}
	}
}
