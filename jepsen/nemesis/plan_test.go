package nemesis

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/raftmq/raftmq/jepsen/cluster"
)

func fiveMembers() *Env {
	cl := &cluster.Cluster{}
	for i := 0; i < 5; i++ {
		ip := netip.AddrFrom4([4]byte{10, 251, 1, byte(20 + i)}).String()
		cl.Members = append(cl.Members, cluster.Node{Name: string(rune('a' + i)), IP: ip})
	}
	return &Env{Cluster: cl, Rand: rand.New(rand.NewPCG(1, 2))}
}

// reach says whether a and b can talk under drops (a rule on either side cuts).
func reach(env *Env, drops map[string][]string, a, b cluster.Node) bool {
	for _, ip := range drops[a.Name] {
		if ip == b.IP {
			return false
		}
	}
	for _, ip := range drops[b.Name] {
		if ip == a.IP {
			return false
		}
	}
	return true
}

func TestRingLeavesEveryMemberExactlyTwoNeighbours(t *testing.T) {
	env := fiveMembers()
	drops, _, err := planRing(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range env.Cluster.Members {
		n := 0
		for _, o := range others(env, m) {
			if reach(env, drops, m, o) {
				n++
			}
		}
		if n != 2 {
			t.Fatalf("%s reaches %d members, want 2 (a majority with itself)", m.Name, n)
		}
	}
}

func TestBridgeHasOneMemberSeeingAll(t *testing.T) {
	env := fiveMembers()
	drops, desc, err := planBridge(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	bridges := 0
	for _, m := range env.Cluster.Members {
		n := 0
		for _, o := range others(env, m) {
			if reach(env, drops, m, o) {
				n++
			}
		}
		switch n {
		case 4:
			bridges++
		case 2:
		default:
			t.Fatalf("%s reaches %d members (%s)", m.Name, n, desc)
		}
	}
	if bridges != 1 {
		t.Fatalf("%d bridges (%s)", bridges, desc)
	}
}

func TestHalvesSplitEveryone(t *testing.T) {
	env := fiveMembers()
	drops, _, err := planHalves(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	cutOff := 0
	for _, m := range env.Cluster.Members {
		if len(drops[m.Name]) > 0 {
			cutOff++
		}
	}
	if cutOff != 5 {
		t.Fatalf("%d of 5 members hold rules", cutOff)
	}
}

func TestLookupKnowsEveryNemesisAndMix(t *testing.T) {
	for _, s := range All() {
		if got, err := Lookup(s.Name); err != nil || got.Name != s.Name || got.New() == nil {
			t.Fatalf("lookup %s: %v", s.Name, err)
		}
	}
	if _, err := Lookup("mix"); err != nil {
		t.Fatal(err)
	}
	if _, err := Lookup("no-such"); err == nil {
		t.Fatal("unknown nemesis accepted")
	}
}
