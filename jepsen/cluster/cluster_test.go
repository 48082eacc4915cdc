package cluster

import (
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestComposeFileHasNoHostPortsAndLabelsEverything(t *testing.T) {
	c := &Cluster{Project: "raftmqjepsentest", cfg: Config{Image: "raftmq:jepsen", Members: 3, Namesrvs: 2, Dir: t.TempDir(), TmpfsSize: "64m"}}
	c.file = c.cfg.Dir + "/docker-compose.json"
	c.layout(netip.MustParsePrefix("10.251.7.0/24"))
	if err := c.writeFiles(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(c.file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]map[string]any
		Volumes  map[string]map[string]any
		Networks map[string]map[string]any
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Services) != 5 || len(doc.Volumes) != 3 {
		t.Fatalf("services %d volumes %d", len(doc.Services), len(doc.Volumes))
	}
	for name, s := range doc.Services {
		if _, ok := s["ports"]; ok {
			t.Errorf("service %s publishes host ports", name)
		}
		if s["labels"].(map[string]any)[LabelProject] != c.Project {
			t.Errorf("service %s lacks the project label", name)
		}
	}
	for name, v := range doc.Volumes {
		if v["labels"].(map[string]any)[LabelProject] != c.Project || v["driver_opts"] == nil {
			t.Errorf("volume %s: %v", name, v)
		}
	}
	if !strings.Contains(string(b), `"10.251.7.0/24"`) || doc.Networks["net"]["labels"] == nil {
		t.Errorf("network lacks subnet or label: %s", b)
	}
}

func TestBrokerConfAdvertisesContainerIP(t *testing.T) {
	c := &Cluster{Project: "p", cfg: Config{Members: 3, Namesrvs: 2, FlushDiskType: "SYNC_FLUSH"}}
	c.layout(netip.MustParsePrefix("10.251.9.0/24"))
	conf := c.BrokerConf(c.Members[1])
	for _, want := range []string{
		"brokerIP1=10.251.9.21\n", "dLegerSelfId=n1\n", "slaveReadEnable=true\n",
		"dLegerPeers=n0-10.251.9.20:40911;n1-10.251.9.21:40911;n2-10.251.9.22:40911\n",
		"namesrvAddr=10.251.9.10:9876;10.251.9.11:9876\n", "flushDiskType=SYNC_FLUSH\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("broker.conf lacks %q:\n%s", want, conf)
		}
	}
	if c.Gateway != "10.251.9.1" || c.Members[1].Addr() != "10.251.9.21:10911" || c.Namesrvs[0].Addr() != "10.251.9.10:9876" {
		t.Errorf("addresses: gateway %s member %s namesrv %s", c.Gateway, c.Members[1].Addr(), c.Namesrvs[0].Addr())
	}
}
