package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/broker/schedule"
)

func writeConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "broker.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigFileAndFlags(t *testing.T) {
	p := writeConf(t, `# comment
brokerClusterName = C1
brokerName=broker-x
brokerId=0
namesrvAddr=127.0.0.1:9876;127.0.0.1:9877
brokerIP1=10.0.0.5
listenPort=10921
flushDiskType=ASYNC_FLUSH
autoCreateTopicEnable=false
fileReservedTime=48
deleteWhen=03
dLegerGroup=broker-x
dLegerPeers=n0-127.0.0.1:40911;n1-127.0.0.1:40912
dLegerSelfId=n1
someFutureKey=1
`)
	cfg, warns, err := LoadConfig(DefaultConfig(), []string{"-c", p, "-listenPort", "10931", "-n=127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BrokerClusterName != "C1" || cfg.BrokerName != "broker-x" || cfg.ListenPort != 10931 ||
		cfg.FlushDiskType != AsyncFlush || cfg.AutoCreateTopicEnable || cfg.FileReservedTime != 48*time.Hour ||
		cfg.DeleteWhen != 3 || cfg.DLegerSelfID != "n1" {
		t.Fatalf("unexpected config %+v", cfg)
	}
	if len(cfg.NamesrvAddrs) != 1 || cfg.NamesrvAddrs[0] != "127.0.0.1:1" {
		t.Fatalf("namesrv flag did not override: %v", cfg.NamesrvAddrs)
	}
	if cfg.AdvertisedAddr() != "10.0.0.5:10931" {
		t.Fatalf("advertised %s", cfg.AdvertisedAddr())
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "someFutureKey") {
		t.Fatalf("warnings %v", warns)
	}
}

func TestLoadConfigBadValues(t *testing.T) {
	for _, bad := range [][]string{
		{"-n", "127.0.0.1:9876", "-listenPort", "0"},
		{"-n", "127.0.0.1:9876", "-listenPort", "x"},
		{"-n", "nohostport"},
		{"-n", "127.0.0.1:9876", "-flushDiskType", "SOMETIMES"},
		{"-n", "127.0.0.1:9876", "-autoCreateTopicEnable", "yes"},
		{"-n", "127.0.0.1:9876", "-messageDelayLevel", "1s 5x"},
		{"-n", "127.0.0.1:9876", "-enableDLegerCommitLog", "false"},
		{"-n", "127.0.0.1:9876", "-dLegerSelfId", "n7"},
		{"-n", "127.0.0.1:9876", "-brokerIP1", "not-an-ip"},
		{"-listenPort", "10911"}, // no namesrv
		{"-n"},                   // missing value
		{"stray"},
	} {
		if _, _, err := LoadConfig(DefaultConfig(), bad); err == nil {
			t.Errorf("%v: want error", bad)
		}
	}
	if _, _, err := LoadConfig(DefaultConfig(), []string{"-c", filepath.Join(t.TempDir(), "missing.conf")}); err == nil {
		t.Error("missing file: want error")
	}
	p := writeConf(t, "just a line without separator\n")
	if _, _, err := LoadConfig(DefaultConfig(), []string{"-c", p}); err == nil {
		t.Error("malformed line: want error")
	}
}

func TestMessageDelayLevelKey(t *testing.T) {
	if DefaultConfig().MessageDelayLevel != schedule.DefaultDelayLevels {
		t.Fatalf("default messageDelayLevel %q", DefaultConfig().MessageDelayLevel)
	}
	// The key is parsed by schedule's rule, the one the delay service runs on.
	c, _, err := LoadConfig(DefaultConfig(), []string{"-n", "127.0.0.1:9876", "-messageDelayLevel", "2s 3m 1d"})
	if err != nil || c.MessageDelayLevel != "2s 3m 1d" {
		t.Fatalf("messageDelayLevel: %v %q", err, c.MessageDelayLevel)
	}
	for _, bad := range []string{"", "0s", "1s 5x", "-1m"} {
		if _, _, err := LoadConfig(DefaultConfig(), []string{"-n", "127.0.0.1:9876", "-messageDelayLevel", bad}); err == nil {
			t.Errorf("messageDelayLevel %q accepted", bad)
		}
	}
}

func TestTransactionKeys(t *testing.T) {
	c, _, err := LoadConfig(DefaultConfig(), []string{"-n", "127.0.0.1:9876",
		"-transactionCheckInterval", "1500", "-transactionTimeOut", "2500", "-transactionCheckMax", "3"})
	if err != nil {
		t.Fatal(err)
	}
	// The values reach the transaction service's configuration.
	s := &services{b: &Broker{cfg: c}}
	tc := s.txnConfig(nil)
	if tc.CheckInterval != 1500*time.Millisecond || tc.Timeout != 2500*time.Millisecond || tc.CheckMax != 3 {
		t.Fatalf("txn config: interval %v timeout %v max %d", tc.CheckInterval, tc.Timeout, tc.CheckMax)
	}
	for _, bad := range [][]string{{"-transactionCheckInterval", "10"}, {"-transactionTimeOut", "-1"}, {"-transactionCheckMax", "0"}} {
		if _, _, err := LoadConfig(DefaultConfig(), append([]string{"-n", "127.0.0.1:9876"}, bad...)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func FuzzParseProperties(f *testing.F) {
	f.Add("a=b\n# c\nd: e\n")
	f.Add("=\n")
	f.Fuzz(func(t *testing.T, s string) {
		pairs, err := ParseProperties(strings.NewReader(s))
		if err != nil {
			return
		}
		var c Config
		for _, p := range pairs {
			_ = c.Set(p[0], p[1])
		}
	})
}

func TestBrokerIP2IsTheMemberAddress(t *testing.T) {
	cfg, _, err := LoadConfig(DefaultConfig(), []string{"-n", "127.0.0.1:9876", "-brokerIP1", "127.0.0.1", "-listenPort", "10911"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MemberAddr() != "127.0.0.1:10911" {
		t.Fatalf("member address without brokerIP2: %s, want brokerIP1's", cfg.MemberAddr())
	}
	cfg, _, err = LoadConfig(DefaultConfig(), []string{"-n", "127.0.0.1:9876", "-brokerIP1", "127.0.0.1", "-brokerIP2", "10.250.11.20", "-listenPort", "10911"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MemberAddr() != "10.250.11.20:10911" || cfg.AdvertisedAddr() != "127.0.0.1:10911" {
		t.Fatalf("member %s advertised %s", cfg.MemberAddr(), cfg.AdvertisedAddr())
	}
	if _, _, err := LoadConfig(DefaultConfig(), []string{"-n", "127.0.0.1:9876", "-brokerIP2", "host"}); err == nil {
		t.Fatal("brokerIP2 must be an IP address")
	}
}
