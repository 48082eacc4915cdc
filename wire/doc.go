// Package wire holds the JSON bodies and constants of the RocketMQ remoting
// protocol that more than one raftmq package speaks: the namesrv decodes what
// brokers register and encodes routes, brokers encode registrations, topic
// tables and Raft status, and client/admin and bench decode them. Each body
// is defined here once so that the sender and every reader agree on it.
//
// Invariants:
//   - Field names, casing and JSON types are those the official Go client
//     (rocketmq-client-go v2) and Apache RocketMQ send and expect
//     (docs/protocol.md §5); the golden tests pin them byte for byte.
//   - Struct fields of bodies Java also sends are in alphabetical order, so
//     Marshal writes them in fastjson's order.
//   - The package imports only the standard library and knows nothing of
//     brokers, namesrvs or Raft: it is types, constants and pure helpers.
//     Validation of what a server accepts stays with that server.
package wire
