package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func TestParseDelayLevels(t *testing.T) {
	d, err := ParseDelayLevels(DefaultConfig().MessageDelayLevel)
	if err != nil || len(d) != 18 || d[0] != time.Second || d[17] != 2*time.Hour {
		t.Fatalf("%v %v", d, err)
	}
	if _, err := ParseDelayLevels(""); err == nil {
		t.Fatal("empty: want error")
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
