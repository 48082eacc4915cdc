package broker

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/raftmq/raftmq/acl"
	"github.com/raftmq/raftmq/broker/schedule"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/remoting"
)

// FlushDiskType selects when an appended entry is fdatasynced.
type FlushDiskType string

// Flush modes, spelled as in RocketMQ's broker.conf.
const (
	SyncFlush  FlushDiskType = "SYNC_FLUSH"
	AsyncFlush FlushDiskType = "ASYNC_FLUSH"
)

// Config is a broker's configuration. Keys of broker.conf map onto fields with
// RocketMQ's names; the keys that RocketMQ does not have are marked "raftmq" in
// their comment and in conf/broker.conf.
type Config struct {
	BrokerClusterName string   // brokerClusterName
	BrokerName        string   // brokerName
	BrokerID          int64    // brokerId: ignored in Raft mode (the role decides), kept for compatibility
	NamesrvAddrs      []string // namesrvAddr, ';'-separated
	BrokerIP1         string   // brokerIP1: advertised address
	BrokerIP2         string   // brokerIP2: address the group's members reach this one at (default brokerIP1)
	ListenPort        int      // listenPort
	ListenHost        string   // raftmq listenHost: interface to bind (default 0.0.0.0)
	StorePathRootDir  string   // storePathRootDir

	FlushDiskType         FlushDiskType // flushDiskType
	AutoCreateTopicEnable bool          // autoCreateTopicEnable
	AutoCreateSubGroup    bool          // autoCreateSubscriptionGroup
	DefaultTopicQueueNums int           // defaultTopicQueueNums
	FileReservedTime      time.Duration // fileReservedTime (hours)
	DeleteWhen            int           // deleteWhen: hour of day, "04"
	MaxMessageSize        int           // maxMessageSize (bytes)
	MessageDelayLevel     string        // messageDelayLevel

	EnableDLegerCommitLog bool   // enableDLegerCommitLog: must be true (raftmq is always Raft)
	DLegerGroup           string // dLegerGroup
	DLegerPeers           string // dLegerPeers: "n0-host:port;n1-host:port;..."
	DLegerSelfID          string // dLegerSelfId
	MappedFileSize        int64  // mappedFileSizeCommitLog: segment size in bytes

	RegisterNameServerPeriod time.Duration // registerNameServerPeriod (ms)
	SlaveReadEnable          bool          // slaveReadEnable: followers serve pulls of committed data
	LongPollingEnable        bool          // longPollingEnable
	ClientChannelMaxIdle     time.Duration // raftmq clientChannelMaxIdleSeconds: heartbeat expiry
	OffsetFlushInterval      time.Duration // raftmq offsetFlushIntervalMs: coalescing window of offset commits
	MaxFrameSize             int           // raftmq maxFrameSize: remoting frame limit (bytes)
	TransactionCheckInterval time.Duration // transactionCheckInterval (ms)
	TransactionTimeout       time.Duration // transactionTimeOut (ms): age of a half before its first check
	TransactionCheckMax      int           // transactionCheckMax: checks before a half is discarded
	DuplicateWindow          time.Duration // raftmq duplicateWindowSeconds: sends deduplicated by UNIQ_KEY; 0 = off
	DuplicateMaxEntries      int           // raftmq duplicateMaxEntries: keys remembered, oldest evicted first
	ACLEnable                bool          // aclEnable: authenticate and authorize every request (ACL 1.0)
	ACLFile                  string        // raftmq aclFile: the plain_acl.yml (RocketMQ: $ROCKETMQ_HOME/conf/plain_acl.yml)
	// The remoting server's limits on hostile peers (remoting.ServerConfig); 0 = none
	// (except the idle timeout, which is always on).
	ServerIdleTimeout      time.Duration // serverChannelMaxIdleTimeSeconds: close connections silent this long
	ServerFrameTimeout     time.Duration // raftmq serverFrameReadTimeoutSeconds: a frame's first to last byte
	ServerMaxConnections   int           // raftmq serverMaxConnections: later connections are closed
	ServerMaxInflight      int           // raftmq serverMaxInflightPerConnection: then SYSTEM_BUSY
	ServerMaxInflightBytes int           // raftmq serverMaxInflightBytesPerConnection: request bodies, then SYSTEM_BUSY
	MaxBatchMessages       int           // raftmq maxBatchMessageCount: items of one SEND_BATCH, then MESSAGE_ILLEGAL
	// innerClientAuthenticationCredentials {"accessKey":…,"secretKey":…}: what
	// this broker signs its own requests (registration) with; empty = unsigned.
	InnerClientCredentials acl.Credentials
}

// DefaultConfig returns the configuration a broker.conf without keys yields.
func DefaultConfig() Config {
	home, _ := os.UserHomeDir()
	return Config{
		BrokerClusterName:        "DefaultCluster",
		BrokerName:               "broker-a",
		NamesrvAddrs:             nil,
		ListenPort:               10911,
		ListenHost:               "0.0.0.0",
		StorePathRootDir:         filepath.Join(home, "store"),
		FlushDiskType:            SyncFlush,
		AutoCreateTopicEnable:    true,
		AutoCreateSubGroup:       true,
		DefaultTopicQueueNums:    8,
		FileReservedTime:         72 * time.Hour,
		DeleteWhen:               4,
		MaxMessageSize:           4 << 20,
		MessageDelayLevel:        schedule.DefaultDelayLevels,
		EnableDLegerCommitLog:    true,
		DLegerGroup:              "broker-a",
		DLegerPeers:              "n0-127.0.0.1:40911",
		DLegerSelfID:             "n0",
		MappedFileSize:           1 << 30,
		RegisterNameServerPeriod: 30 * time.Second,
		SlaveReadEnable:          true,
		LongPollingEnable:        true,
		ClientChannelMaxIdle:     120 * time.Second,
		OffsetFlushInterval:      time.Second,
		MaxFrameSize:             16 << 20,
		TransactionCheckInterval: 30 * time.Second,
		TransactionTimeout:       6 * time.Second,
		TransactionCheckMax:      15,
		DuplicateWindow:          120 * time.Second,
		DuplicateMaxEntries:      1_000_000,
		ServerIdleTimeout:        remoting.DefaultIdleTimeout,
		ServerFrameTimeout:       remoting.DefaultFrameTimeout,
		ServerMaxConnections:     remoting.DefaultMaxConns,
		ServerMaxInflight:        remoting.DefaultMaxInflightPerConn,
		ServerMaxInflightBytes:   remoting.DefaultMaxInflightBytesPerConn,
		MaxBatchMessages:         message.DefaultBatchMaxItems,
	}
}

// configKey describes one broker.conf key: how to parse it into a Config.
type configKey struct {
	set func(c *Config, v string) error
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %q", v)
}

func intKey(min, max int, dst func(c *Config) *int) configKey {
	return configKey{set: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > max {
			return fmt.Errorf("want an integer in [%d, %d], got %q", min, max, v)
		}
		*dst(c) = n
		return nil
	}}
}

func boolKey(dst func(c *Config) *bool) configKey {
	return configKey{set: func(c *Config, v string) error {
		b, err := parseBool(v)
		if err != nil {
			return err
		}
		*dst(c) = b
		return nil
	}}
}

func stringKey(nonEmpty bool, dst func(c *Config) *string) configKey {
	return configKey{set: func(c *Config, v string) error {
		if nonEmpty && v == "" {
			return errors.New("must not be empty")
		}
		*dst(c) = v
		return nil
	}}
}

func durationKey(unit time.Duration, min, max int64, dst func(c *Config) *time.Duration) configKey {
	return configKey{set: func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < min || n > max {
			return fmt.Errorf("want an integer in [%d, %d], got %q", min, max, v)
		}
		*dst(c) = time.Duration(n) * unit
		return nil
	}}
}

// configKeys is the table of every key the broker understands. RocketMQ keys
// that only make sense for master/slave replication are accepted and ignored.
var configKeys = map[string]configKey{
	"brokerClusterName": stringKey(true, func(c *Config) *string { return &c.BrokerClusterName }),
	"brokerName":        stringKey(true, func(c *Config) *string { return &c.BrokerName }),
	"brokerId": {set: func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("want a non-negative integer, got %q", v)
		}
		c.BrokerID = n
		return nil
	}},
	"namesrvAddr": {set: func(c *Config, v string) error {
		addrs, err := parseNamesrvAddrs(v)
		if err != nil {
			return err
		}
		c.NamesrvAddrs = addrs
		return nil
	}},
	"brokerIP1": {set: func(c *Config, v string) error {
		if v != "" && net.ParseIP(v) == nil {
			return fmt.Errorf("want an IP address, got %q", v)
		}
		c.BrokerIP1 = v
		return nil
	}},
	"brokerIP2": {set: func(c *Config, v string) error {
		if v != "" && net.ParseIP(v) == nil {
			return fmt.Errorf("want an IP address, got %q", v)
		}
		c.BrokerIP2 = v
		return nil
	}},
	"listenPort": intKey(1, 65535, func(c *Config) *int { return &c.ListenPort }),
	"listenHost": {set: func(c *Config, v string) error {
		if net.ParseIP(v) == nil {
			return fmt.Errorf("want an IP address, got %q", v)
		}
		c.ListenHost = v
		return nil
	}},
	"storePathRootDir": stringKey(true, func(c *Config) *string { return &c.StorePathRootDir }),
	"flushDiskType": {set: func(c *Config, v string) error {
		switch FlushDiskType(v) {
		case SyncFlush, AsyncFlush:
			c.FlushDiskType = FlushDiskType(v)
			return nil
		}
		return fmt.Errorf("want SYNC_FLUSH or ASYNC_FLUSH, got %q", v)
	}},
	"autoCreateTopicEnable":       boolKey(func(c *Config) *bool { return &c.AutoCreateTopicEnable }),
	"autoCreateSubscriptionGroup": boolKey(func(c *Config) *bool { return &c.AutoCreateSubGroup }),
	"defaultTopicQueueNums":       intKey(1, 1024, func(c *Config) *int { return &c.DefaultTopicQueueNums }),
	"fileReservedTime":            durationKey(time.Hour, 1, 24*365*10, func(c *Config) *time.Duration { return &c.FileReservedTime }),
	"deleteWhen": {set: func(c *Config, v string) error {
		// RocketMQ allows "04;05"; the first hour is used.
		first := strings.TrimSpace(strings.Split(v, ";")[0])
		n, err := strconv.Atoi(first)
		if err != nil || n < 0 || n > 23 {
			return fmt.Errorf("want an hour 00..23, got %q", v)
		}
		c.DeleteWhen = n
		return nil
	}},
	"maxMessageSize": intKey(1, 64<<20, func(c *Config) *int { return &c.MaxMessageSize }),
	"messageDelayLevel": {set: func(c *Config, v string) error {
		if _, err := schedule.ParseDelayLevels(v); err != nil {
			return err
		}
		c.MessageDelayLevel = v
		return nil
	}},
	"enableDLegerCommitLog": boolKey(func(c *Config) *bool { return &c.EnableDLegerCommitLog }),
	"dLegerGroup":           stringKey(true, func(c *Config) *string { return &c.DLegerGroup }),
	"dLegerPeers":           stringKey(true, func(c *Config) *string { return &c.DLegerPeers }),
	"dLegerSelfId":          stringKey(true, func(c *Config) *string { return &c.DLegerSelfID }),
	"mappedFileSizeCommitLog": {set: func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1<<20 || n > 1<<34 {
			return fmt.Errorf("want a size in bytes in [1 MiB, 16 GiB], got %q", v)
		}
		c.MappedFileSize = n
		return nil
	}},
	"registerNameServerPeriod":            durationKey(time.Millisecond, 1000, 600000, func(c *Config) *time.Duration { return &c.RegisterNameServerPeriod }),
	"slaveReadEnable":                     boolKey(func(c *Config) *bool { return &c.SlaveReadEnable }),
	"longPollingEnable":                   boolKey(func(c *Config) *bool { return &c.LongPollingEnable }),
	"clientChannelMaxIdleSeconds":         durationKey(time.Second, 10, 3600, func(c *Config) *time.Duration { return &c.ClientChannelMaxIdle }),
	"offsetFlushIntervalMs":               durationKey(time.Millisecond, 10, 60000, func(c *Config) *time.Duration { return &c.OffsetFlushInterval }),
	"maxFrameSize":                        intKey(64<<10, 256<<20, func(c *Config) *int { return &c.MaxFrameSize }),
	"duplicateWindowSeconds":              durationKey(time.Second, 0, 86400, func(c *Config) *time.Duration { return &c.DuplicateWindow }),
	"duplicateMaxEntries":                 intKey(1, 100_000_000, func(c *Config) *int { return &c.DuplicateMaxEntries }),
	"aclEnable":                           boolKey(func(c *Config) *bool { return &c.ACLEnable }),
	"aclFile":                             stringKey(false, func(c *Config) *string { return &c.ACLFile }),
	"serverChannelMaxIdleTimeSeconds":     durationKey(time.Second, 1, 86400, func(c *Config) *time.Duration { return &c.ServerIdleTimeout }),
	"serverFrameReadTimeoutSeconds":       durationKey(time.Second, 0, 3600, func(c *Config) *time.Duration { return &c.ServerFrameTimeout }),
	"serverMaxConnections":                intKey(0, 1<<20, func(c *Config) *int { return &c.ServerMaxConnections }),
	"serverMaxInflightPerConnection":      intKey(0, 1<<20, func(c *Config) *int { return &c.ServerMaxInflight }),
	"serverMaxInflightBytesPerConnection": intKey(0, 1<<30, func(c *Config) *int { return &c.ServerMaxInflightBytes }),
	"maxBatchMessageCount":                intKey(1, 1<<20, func(c *Config) *int { return &c.MaxBatchMessages }),
	"transactionCheckInterval":            durationKey(time.Millisecond, 100, 86400000, func(c *Config) *time.Duration { return &c.TransactionCheckInterval }),
	"transactionTimeOut":                  durationKey(time.Millisecond, 0, 86400000, func(c *Config) *time.Duration { return &c.TransactionTimeout }),
	"transactionCheckMax":                 intKey(1, 1000, func(c *Config) *int { return &c.TransactionCheckMax }),
	"innerClientAuthenticationCredentials": {set: func(c *Config, v string) error {
		creds, err := acl.ParseCredentials(v)
		if err != nil {
			return err
		}
		c.InnerClientCredentials = creds
		return nil
	}},
	"brokerRole":                     ignoredKey, // master/slave replication: Raft decides roles
	"haListenPort":                   ignoredKey,
	"brokerPermission":               ignoredKey,
	"storePathCommitLog":             ignoredKey, // everything lives under storePathRootDir
	"sendMessageThreadPoolNums":      ignoredKey,
	"pullMessageThreadPoolNums":      ignoredKey,
	"waitTimeMillsInSendQueue":       ignoredKey,
	"transientStorePoolEnable":       ignoredKey,
	"traceTopicEnable":               ignoredKey,
	"autoDeleteUnusedStats":          ignoredKey,
	"diskMaxUsedSpaceRatio":          ignoredKey,
	"enableControllerMode":           ignoredKey,
	"sendMessageWithVIPChannel":      ignoredKey,
	"enablePropertyFilter":           ignoredKey,
	"isEnableBatchPush":              ignoredKey,
	"flushConsumerOffsetInterval":    ignoredKey,
	"useReentrantLockWhenPutMessage": ignoredKey,
}

var ignoredKey = configKey{set: func(*Config, string) error { return nil }}

func parseNamesrvAddrs(v string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(v, ";") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			return nil, fmt.Errorf("namesrv address %q: want host:port", a)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("namesrv address %q: bad port", a)
		}
		out = append(out, a)
	}
	return out, nil
}

// Set parses value into the field named by key (a broker.conf key). It
// reports unknown keys with ErrUnknownKey so that callers can warn instead of
// failing.
func (c *Config) Set(key, value string) error {
	k, ok := configKeys[key]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownKey, key)
	}
	if err := k.set(c, strings.TrimSpace(value)); err != nil {
		return fmt.Errorf("config key %s: %w", key, err)
	}
	return nil
}

// ErrUnknownKey is wrapped by Config.Set for keys it does not know.
var ErrUnknownKey = errors.New("unknown config key")

// ConfigKeys lists every key Set accepts, sorted.
func ConfigKeys() []string {
	out := make([]string, 0, len(configKeys))
	for k := range configKeys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ParseProperties reads Java-style properties: key=value (or key: value) lines,
// '#' and '!' comments, surrounding blanks trimmed. Line continuations are not
// supported (broker.conf never uses them). It returns the pairs in file order.
func ParseProperties(r io.Reader) ([][2]string, error) {
	var out [][2]string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' || s[0] == '!' {
			continue
		}
		i := strings.IndexAny(s, "=:")
		if i <= 0 {
			return nil, fmt.Errorf("line %d: want key=value, got %q", line, s)
		}
		out = append(out, [2]string{strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:])})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return out, nil
}

// LoadConfig builds a Config from command-line arguments: "-c file" loads a
// broker.conf, "-n addrs" sets namesrvAddr, and "-key value" (or -key=value)
// sets any key; flags override the file wherever they appear. base supplies
// the defaults (DefaultConfig or a verb's own). Unknown keys are returned as
// warnings; bad values are errors.
func LoadConfig(base Config, args []string) (Config, []string, error) {
	cfg := base
	var warnings []string
	type kv struct{ k, v string }
	var flags []kv
	var file string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			return cfg, nil, fmt.Errorf("unexpected argument %q (want -key value)", a)
		}
		name := strings.TrimLeft(a, "-")
		var val string
		if j := strings.IndexByte(name, '='); j >= 0 {
			name, val = name[:j], name[j+1:]
		} else {
			if i+1 >= len(args) {
				return cfg, nil, fmt.Errorf("flag -%s needs a value", name)
			}
			i++
			val = args[i]
		}
		switch name {
		case "c":
			file = val
		case "n":
			flags = append(flags, kv{"namesrvAddr", val})
		default:
			flags = append(flags, kv{name, val})
		}
	}
	apply := func(k, v, where string) error {
		err := cfg.Set(k, v)
		if errors.Is(err, ErrUnknownKey) {
			warnings = append(warnings, fmt.Sprintf("%s: unknown key %q ignored", where, k))
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		return nil
	}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return cfg, nil, fmt.Errorf("config file: %w", err)
		}
		pairs, err := ParseProperties(f)
		f.Close()
		if err != nil {
			return cfg, nil, fmt.Errorf("%s: %w", file, err)
		}
		for _, p := range pairs {
			if err := apply(p[0], p[1], file); err != nil {
				return cfg, nil, err
			}
		}
	}
	for _, f := range flags {
		if err := apply(f.k, f.v, "flag -"+f.k); err != nil {
			return cfg, nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, nil, err
	}
	return cfg, warnings, nil
}

// Validate checks the relations between keys that single-key parsing cannot.
func (c *Config) Validate() error {
	if !c.EnableDLegerCommitLog {
		return errors.New("enableDLegerCommitLog=false is not supported: raftmq brokers always run a Raft group")
	}
	if len(c.NamesrvAddrs) == 0 {
		return errors.New("namesrvAddr is required")
	}
	if _, err := schedule.ParseDelayLevels(c.MessageDelayLevel); err != nil {
		return fmt.Errorf("messageDelayLevel: %w", err)
	}
	if c.ACLEnable && c.ACLFile == "" {
		return errors.New("aclEnable=true needs aclFile (the plain_acl.yml path)")
	}
	if c.ACLEnable && strings.Contains(c.DLegerPeers, ";") && c.InnerClientCredentials.AccessKey == "" {
		return errors.New("aclEnable=true in a group of several members needs innerClientAuthenticationCredentials (an admin account): members re-sign the writes they forward")
	}
	if !strings.Contains(c.DLegerPeers, c.DLegerSelfID+"-") {
		return fmt.Errorf("dLegerSelfId %q is not among dLegerPeers %q", c.DLegerSelfID, c.DLegerPeers)
	}
	return nil
}

// remotingServerConfig maps the server keys onto remoting.ServerConfig, where
// a zero means "default" and a negative value "none".
func (c *Config) remotingServerConfig() remoting.ServerConfig {
	off := func(v int) int {
		if v == 0 {
			return -1
		}
		return v
	}
	return remoting.ServerConfig{
		MaxFrameSize:            c.MaxFrameSize,
		IdleTimeout:             c.ServerIdleTimeout,
		FrameTimeout:            time.Duration(off(int(c.ServerFrameTimeout))),
		MaxConns:                off(c.ServerMaxConnections),
		MaxInflightPerConn:      off(c.ServerMaxInflight),
		MaxInflightBytesPerConn: int64(off(c.ServerMaxInflightBytes)),
	}
}

// AdvertisedAddr is the address clients and the namesrv see: brokerIP1:listenPort,
// brokerIP1 defaulting to the first non-loopback IPv4 address.
func (c *Config) AdvertisedAddr() string {
	ip := c.BrokerIP1
	if ip == "" {
		ip = firstNonLoopbackIP()
	}
	return net.JoinHostPort(ip, strconv.Itoa(c.ListenPort))
}

// MemberAddr is the address the other members of the group forward writes
// to: brokerIP2:listenPort, brokerIP2 defaulting to the advertised IP. In
// docker compose the advertised address is the host's loopback while the
// members reach each other on the container network.
func (c *Config) MemberAddr() string {
	if c.BrokerIP2 == "" {
		return c.AdvertisedAddr()
	}
	return net.JoinHostPort(c.BrokerIP2, strconv.Itoa(c.ListenPort))
}

// ListenAddr is the address the broker binds.
func (c *Config) ListenAddr() string {
	return net.JoinHostPort(c.ListenHost, strconv.Itoa(c.ListenPort))
}

func firstNonLoopbackIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}
