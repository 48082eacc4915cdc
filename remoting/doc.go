// Package remoting owns the RocketMQ "remoting" TCP protocol (docs/protocol.md §1–2):
//
//   - the frame codec for both header serializations, JSON and the binary
//     ROCKETMQ format (Command.MarshalFrame, Command.FrameBuffers, ReadCommand,
//     DecodeFrame);
//   - the request and response codes (codes.go);
//   - a Server: accept loop, one reader and one writer goroutine per connection,
//     requests of one connection handled concurrently on per-code bounded worker
//     pools that answer SYSTEM_BUSY at once when full, oneway requests left
//     unanswered, idle connections closed, server-initiated requests (Conn.Invoke)
//     with their own opaque table;
//   - a Client: one multiplexed connection per address, sync/async/oneway calls,
//     re-dial on demand after a broken connection, requests from the server
//     served by ClientConfig.Handler.
//
// Choices that differ from or refine Java RocketMQ (docs/protocol.md §1):
//
//   - extFields values are decoded tolerantly: numbers, booleans and even nested
//     JSON are accepted and kept as their JSON text (a strict decoder would
//     reject them; raftmq accepts sloppy clients). Output values are
//     always JSON strings (docs/protocol.md G1). Duplicate keys: the last one wins. At most
//     MaxExtFields fields per header bound the map's cost.
//   - Responses mirror the serialize type of the request (docs/protocol.md §1.1 allows
//     either; the official clients decode both).
//   - The frame reader never trusts a length: frames over the limit are refused
//     before any allocation, and the buffer of a large frame grows only as its
//     bytes arrive, so a peer announcing 16 MiB and sending 10 bytes costs 64 KiB.
//   - The JSON header is written and parsed by hand (header_json.go): the parser
//     copies the header into one string and hands out substrings of it, so
//     unescaped keys and values cost no allocation each.
//   - Writes are batched: the writer takes every queued frame into one writev,
//     and BodyParts (mmap'd message bytes) go to the socket without a copy; their
//     Release runs exactly once, after the write or when the frame is dropped.
//   - Hostile peers are bounded (ServerConfig, each with a default and < 0 =
//     off): a frame must be complete within FrameTimeout (30 s) of its first
//     byte, whereas the idle timeout moves with every byte (slowloris); at most
//     MaxConns (4096) connections, later ones are closed on accept; at most
//     MaxInflightPerConn (1024) requests and MaxInflightBytesPerConn (128 MiB)
//     of request bodies queued or running per connection. Over those limits a
//     request is answered SYSTEM_BUSY at once rather than the connection no
//     longer being read: the client learns why and can retry elsewhere, and
//     responses to the server's own calls on that connection still arrive.
//   - ServerConfig.Authenticate (the acl package's hook) sees each request
//     first, on the reader goroutine; what it refuses is answered at once and
//     reaches no pool and no handler.
//   - Queuing a frame never blocks: a handler never waits for a slow peer. A
//     peer that lets more than ServerConfig.MaxQueuedBytesPerConn (64 MiB)
//     pile up, or whose single write stalls for 30 s, is disconnected; this
//     bounds memory and the mmap leases pinned by unsent pull responses.
//
// Metrics (armon/go-metrics global registry, shared with raft):
// remoting.server.requests / busy / panics / refused {code}, remoting.server.handle timer
// {code}, remoting.server.send_errors, remoting.{server,client}.bad_frames,
// idle_closes, frame_timeouts and slow_peer_closes, remoting.server.refused_conns, remoting.client.dial_errors. The code label is the numeric request
// code for registered handlers and "other" otherwise, so cardinality stays low.
package remoting
