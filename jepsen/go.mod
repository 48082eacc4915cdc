module github.com/raftmq/raftmq/jepsen

go 1.26.8

require (
	github.com/apache/rocketmq-client-go/v2 v2.1.3-0.20251226070945-2173d070fd1b
	github.com/raftmq/raftmq v0.0.0
)

replace github.com/raftmq/raftmq => ../
