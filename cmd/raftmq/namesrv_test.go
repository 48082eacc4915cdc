package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestNamesrvConfACLKeys(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "namesrv.conf")
	if err := os.WriteFile(conf, []byte("aclEnable=true\naclFile=/etc/raftmq/plain_acl.yml\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := parseNamesrvFlags([]string{"-c", conf})
	if err != nil || !f.aclEnable || f.aclFile != "/etc/raftmq/plain_acl.yml" {
		t.Fatalf("namesrv.conf: %+v %v", f, err)
	}
	if f, err = parseNamesrvFlags([]string{"-c", conf, "-aclEnable=false"}); err != nil || f.aclEnable {
		t.Fatalf("an explicit flag must win over the file: %+v %v", f, err)
	}
	if _, err := parseNamesrvFlags([]string{"-aclEnable"}); err == nil {
		t.Fatal("-aclEnable without -aclFile accepted")
	}
	if err := os.WriteFile(conf, []byte("aclEnable=maybe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := parseNamesrvFlags([]string{"-c", conf}); err == nil {
		t.Fatal("aclEnable=maybe accepted")
	}
}
