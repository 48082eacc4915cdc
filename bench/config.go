package bench

import (
	"errors"
	"fmt"
	"time"
)

// Mode selects what a run does.
type Mode string

// Run modes.
const (
	ModeProduce Mode = "produce"
	ModeConsume Mode = "consume"
)

// Config describes one run. Zero values select the defaults of DefaultConfig
// where noted.
type Config struct {
	Mode Mode

	// NamesrvAddrs locate the groups: each group's brokerId 0 of its plain
	// brokerName is sent to. Ignored when BrokerAddrs is set.
	NamesrvAddrs []string
	// BrokerAddrs are addresses sent to directly (no namesrv lookup); each is
	// taken as one group.
	BrokerAddrs []string
	// Cluster and BrokerName restrict the groups found on the namesrv ("" = all).
	Cluster    string
	BrokerName string
	// ViaAliases sends to the write aliases (`name@member`) the namesrv lists
	// for the topic instead of the leader, so a follower's forwarding hop is
	// part of what is measured.
	ViaAliases bool

	Topic       string // topic name, or prefix when Topics > 1 (Topic-0, Topic-1, ...)
	Topics      int    // topics (default 1)
	Queues      int    // queues per topic (default 8)
	CreateTopic bool   // create the topics on each group's leader before the run

	Connections int  // TCP connections (default 1)
	Producers   int  // senders, spread round robin over the connections (default Connections)
	Async       bool // keep Window requests in flight per connection instead of waiting for each
	Window      int  // in-flight requests per connection in async mode (default 256)
	Size        int  // message body bytes (default 1024)
	UniqKey     bool // set a fresh UNIQ_KEY per message, as the official clients do

	Messages int64         // stop after this many requests (0 = no limit)
	Duration time.Duration // stop after this long (0 = no limit; one of the two is required)

	Group string // consumer group of consume mode (default bench-<unix ms>)
	Batch int    // maxMsgNums per pull (default 1024; the broker may answer fewer)

	Timeout  time.Duration // per request (default 10 s)
	Interval time.Duration // progress line period (default 1 s; < 0 = no progress lines)
}

// DefaultConfig returns a 1-connection sync producer run of 1 KiB messages
// to topic BenchTopic (8 queues) for 10 s.
func DefaultConfig() Config {
	return Config{
		Mode:        ModeProduce,
		Topic:       "BenchTopic",
		Topics:      1,
		Queues:      8,
		CreateTopic: true,
		Connections: 1,
		Window:      256,
		Size:        1024,
		UniqKey:     true,
		Duration:    10 * time.Second,
		Batch:       1024,
		Timeout:     10 * time.Second,
		Interval:    time.Second,
	}
}

// maxSize is the largest body a run may send: RocketMQ's default maxMessageSize.
const maxSize = 4 << 20

// normalize fills defaults and checks the configuration.
func (c *Config) normalize() error {
	switch c.Mode {
	case "":
		c.Mode = ModeProduce
	case ModeProduce, ModeConsume:
	default:
		return fmt.Errorf("mode %q: want produce or consume", c.Mode)
	}
	if len(c.NamesrvAddrs) == 0 && len(c.BrokerAddrs) == 0 {
		return errors.New("give a namesrv address or broker addresses")
	}
	if c.Topic == "" {
		return errors.New("topic is empty")
	}
	if c.Topics <= 0 {
		c.Topics = 1
	}
	if c.Queues <= 0 {
		c.Queues = 8
	}
	if c.Queues > 1024 {
		return fmt.Errorf("queues %d: a topic has at most 1024", c.Queues)
	}
	if c.Connections <= 0 {
		c.Connections = 1
	}
	if c.Producers <= 0 {
		c.Producers = c.Connections
	}
	if c.Window <= 0 {
		c.Window = 256
	}
	if c.Size <= 0 {
		c.Size = 1024
	}
	if c.Size > maxSize {
		return fmt.Errorf("size %d: at most %d bytes", c.Size, maxSize)
	}
	if c.Messages < 0 || c.Duration < 0 {
		return errors.New("messages and duration must not be negative")
	}
	if c.Mode == ModeProduce && c.Messages == 0 && c.Duration == 0 {
		return errors.New("give a message count or a duration")
	}
	if c.Batch <= 0 {
		c.Batch = 1024
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.Group == "" {
		c.Group = fmt.Sprintf("bench-%d", time.Now().UnixMilli())
	}
	return nil
}

// topicNames lists the topics of the run.
func (c *Config) topicNames() []string {
	if c.Topics == 1 {
		return []string{c.Topic}
	}
	out := make([]string, c.Topics)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", c.Topic, i)
	}
	return out
}
