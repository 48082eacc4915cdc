package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/raftmq/raftmq/remoting"
)

func init() {
	register("health", "exit 0 if a namesrv or broker answers (container healthcheck)", runHealth)
}

// runHealth sends one request that both namesrvs and brokers answer cheaply and
// succeeds on any well-formed answer: the process is up and serving its protocol.
func runHealth(args []string) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:10911", "address of the namesrv or broker to probe")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c := remoting.NewClient(remoting.ClientConfig{DialTimeout: *timeout})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	// GET_BROKER_RUNTIME_INFO: a broker answers it; a namesrv answers "not supported",
	// which still proves it is serving.
	if _, err := c.Invoke(ctx, *addr, remoting.NewRequest(remoting.GetBrokerRuntimeInfo, nil, nil)); err != nil {
		fmt.Fprintf(os.Stderr, "unhealthy: %s: %v\n", *addr, err)
		return 1
	}
	return 0
}
