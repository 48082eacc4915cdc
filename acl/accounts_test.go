package acl

import (
	"os"
	"strings"
	"testing"
)

func mustParse(t testing.TB, yml string) *Accounts {
	t.Helper()
	a, err := ParseAccounts([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParseRocketMQPlainACL(t *testing.T) {
	data, err := os.ReadFile("testdata/plain_acl.yml")
	if err != nil {
		t.Fatal(err)
	}
	a := mustParse(t, string(data))
	if a.Len() != 2 || len(a.Warnings) != 1 {
		t.Fatalf("%d accounts, warnings %v", a.Len(), a.Warnings)
	}
	u, ok := a.Lookup("RocketMQ")
	if !ok || u.SecretKey != "12345678" || u.Admin || u.DefaultTopicPerm != PermDeny || u.DefaultGroupPerm != PermSub {
		t.Fatalf("RocketMQ account: %+v", u)
	}
	if u.TopicPerms["topicB"] != PermPub|PermSub || u.TopicPerms["topicA"] != PermDeny || u.GroupPerms["groupC"] != PermSub {
		t.Fatalf("resource perms: %v %v", u.TopicPerms, u.GroupPerms)
	}
	adm, _ := a.Lookup("rocketmq2")
	if !adm.Admin || !adm.Remote.Match("192.168.1.7:5000") || adm.Remote.Match("192.168.2.7:5000") {
		t.Fatalf("admin account: %+v", adm)
	}
}

func TestParseAccountsRefusesBadFilesWhole(t *testing.T) {
	const good = "  - accessKey: goodkey\n    secretKey: goodsecret\n"
	for name, yml := range map[string]string{
		"unknown key":        "accounts:\n" + good + "    adminn: true\n",
		"short secret":       "accounts:\n  - accessKey: goodkey\n    secretKey: abc\n",
		"short access key":   "accounts:\n  - accessKey: ab\n    secretKey: goodsecret\n",
		"duplicate key":      "accounts:\n" + good + good,
		"bad perm":           "accounts:\n" + good + "    defaultTopicPerm: PUBLISH\n",
		"bad resource perm":  "accounts:\n" + good + "    topicPerms:\n      - t=ALL\n",
		"resource without =": "accounts:\n" + good + "    topicPerms:\n      - t\n",
		"duplicate resource": "accounts:\n" + good + "    groupPerms:\n      - g=SUB\n      - g=PUB\n",
		"bad address":        "accounts:\n" + good + "    whiteRemoteAddress: 300.1.1.1\n",
		"not yaml":           "accounts: [\n",
		"wrong type":         "accounts:\n  - accessKey: [a, b]\n",
	} {
		if a, err := ParseAccounts([]byte(yml)); err == nil {
			t.Errorf("%s: accepted (%d accounts)", name, a.Len())
		}
	}
}

func TestParseAccountsErrorsDoNotQuoteSecrets(t *testing.T) {
	_, err := ParseAccounts([]byte("accounts:\n  - accessKey: goodkey\n    secretKey: [SECRETVALUE1]\n"))
	if err == nil || strings.Contains(err.Error(), "SECRETVALUE1") {
		t.Fatalf("err = %v", err)
	}
	_, err = ParseAccounts([]byte("accounts:\n  - accessKey: goodkey\n    secretKey: sec\n"))
	if err == nil || strings.Contains(err.Error(), "sec\"") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseAccountsEmptyFileHasNoAccounts(t *testing.T) {
	if a := mustParse(t, ""); a.Len() != 0 {
		t.Fatal("accounts from nothing")
	}
}

func TestAddrMatcher(t *testing.T) {
	cases := []struct {
		pattern string
		yes, no []string
	}{
		{"", []string{"1.2.3.4:1", "[::1]:2"}, nil},
		{"*", []string{"1.2.3.4:1"}, nil},
		{"192.168.0.1", []string{"192.168.0.1:9", "192.168.0.1"}, []string{"192.168.0.2:9"}},
		{"192.168.*", []string{"192.168.9.9:1"}, []string{"192.169.0.1:1"}},
		{"10.1.1-20.*", []string{"10.1.20.3:1"}, []string{"10.1.21.3:1"}},
		{"192.168.1.{1,2,3}", []string{"192.168.1.3:1"}, []string{"192.168.1.4:1"}},
		{"1.1.1.1, 2.2.2.2", []string{"2.2.2.2:1"}, []string{"3.3.3.3:1"}},
		{"10.0.0.0/8", []string{"10.200.0.1:1", "[::ffff:10.0.0.1]:1"}, []string{"11.0.0.1:1"}},
		{"fd00::/8", []string{"[fd12::1]:1"}, []string{"[fe80::1]:1", "1.2.3.4:1"}},
	}
	for _, c := range cases {
		m, err := ParseAddrMatcher(c.pattern)
		if err != nil {
			t.Fatalf("%q: %v", c.pattern, err)
		}
		for _, a := range c.yes {
			if !m.Match(a) {
				t.Errorf("%q refuses %s", c.pattern, a)
			}
		}
		for _, a := range c.no {
			if m.Match(a) {
				t.Errorf("%q allows %s", c.pattern, a)
			}
		}
	}
	for _, bad := range []string{"1.2.3", "1.2.3.256", "1.2.3.9-1", "a.b.c.d", "1.2.3.4,", "1.2..4"} {
		if _, err := ParseAddrMatcher(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseAccounts(f *testing.F) {
	if data, err := os.ReadFile("testdata/plain_acl.yml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("accounts:\n  - accessKey: goodkey\n    secretKey: goodsecret\n    topicPerms: [a=PUB]\n"))
	f.Add([]byte("a: &x [*x, *x]\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAccounts(data)
		if err != nil {
			return
		}
		// What is accepted is usable: every account has keys, and every
		// permission is one of the four a file can name.
		for k, acc := range a.byKey {
			if k != acc.AccessKey || len(acc.AccessKey) < minKeyLen || len(acc.SecretKey) < minKeyLen {
				t.Fatalf("account %q: %+v", k, acc)
			}
			for _, p := range append(permsOf(acc.TopicPerms, acc.GroupPerms), acc.DefaultTopicPerm, acc.DefaultGroupPerm) {
				if p != PermDeny && p != PermPub && p != PermSub && p != PermPub|PermSub {
					t.Fatalf("account %q: permission %d", k, p)
				}
			}
		}
	})
}

func permsOf(ms ...map[string]Perm) []Perm {
	var out []Perm
	for _, m := range ms {
		for _, p := range m {
			out = append(out, p)
		}
	}
	return out
}

func TestShippedExampleParses(t *testing.T) {
	data, err := os.ReadFile("../conf/plain_acl.yml")
	if err != nil {
		t.Fatal(err)
	}
	a := mustParse(t, string(data))
	if a.Len() != 2 || len(a.Warnings) != 0 {
		t.Fatalf("%d accounts, warnings %v", a.Len(), a.Warnings)
	}
}
