package acl

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const oneAccount = "accounts:\n  - accessKey: first01\n    secretKey: first-secret\n"
const twoAccounts = oneAccount + "  - accessKey: second1\n    secretKey: second-secret\n"

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestStoreReloadsChangesAndKeepsAccountsOnABadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	writeFile(t, path, oneAccount)
	s, err := NewStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Reload() {
		t.Fatal("reloaded an unchanged file")
	}
	writeFile(t, path, twoAccounts)
	if !s.Reload() {
		t.Fatal("changed file not reloaded")
	}
	if _, ok := s.Accounts().Lookup("second1"); !ok {
		t.Fatal("new account not in force")
	}
	writeFile(t, path, twoAccounts+"  - accessKey: x\n")
	if s.Reload() {
		t.Fatal("bad file installed")
	}
	if _, ok := s.Accounts().Lookup("second1"); !ok || s.Accounts().Len() != 2 {
		t.Fatal("a bad file changed the accounts in force")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if s.Reload() || s.Accounts().Len() != 2 {
		t.Fatal("a vanished file changed the accounts in force")
	}
}

func TestNewStoreRefusesABadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	if _, err := NewStore(path, nil); err == nil {
		t.Fatal("missing file accepted")
	}
	writeFile(t, path, "accounts: [")
	if _, err := NewStore(path, nil); err == nil {
		t.Fatal("bad file accepted")
	}
}

func TestStoreRunPicksUpChangesUntilCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	writeFile(t, path, oneAccount)
	s, err := NewStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx, 5*time.Millisecond) }()
	writeFile(t, path, twoAccounts)
	deadline := time.Now().Add(20 * time.Second) // safety net only
	for {
		if _, ok := s.Accounts().Lookup("second1"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run never installed the changed file")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
}
