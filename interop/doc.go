// Package interop holds the end-to-end tests that run the official, unchanged
// RocketMQ Go client (github.com/apache/rocketmq-client-go/v2) against raftmq's
// own binaries and packages. It is a separate module so that the client and its
// dependencies never enter the main module's go.mod.
//
// Tests here start bin/raftmq (built by `make interop`, or built on demand by
// internal/harness) as child processes and talk to them over loopback.
package interop
