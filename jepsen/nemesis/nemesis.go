// Package nemesis injects faults into a running jepsen cluster from the host: iptables
// and tc netem inside a member's network namespace (nsenter -t <pid> -n), docker
// pause/unpause, docker kill -s KILL and docker start, a filler file that fills the
// leader's data volume, leadership transfers through the admin client, and wiping a
// member's data. The images stay FROM scratch: nothing runs inside a container.
//
// Invariants: every nemesis's Stop heals what its Start did (and is safe to call when
// Start failed halfway); HealAll returns the cluster to a fault-free state whatever
// ran before (rules flushed, qdiscs removed, containers unpaused and started, fillers
// removed).
package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/raftmq/raftmq/client/admin"
	"github.com/raftmq/raftmq/jepsen/cluster"
	"github.com/raftmq/raftmq/jepsen/workload"
)

// Env is what nemeses act on.
type Env struct {
	Cluster *cluster.Cluster
	Tracker *workload.Tracker
	Admin   *admin.Client
	Client  *workload.Client
	Log     hclog.Logger
	Rand    *rand.Rand
}

// Nemesis is one kind of fault.
type Nemesis interface {
	// Start injects the fault; it returns a description of what it did.
	Start(ctx context.Context, env *Env) (string, error)
	// Stop heals it.
	Stop(ctx context.Context, env *Env) error
}

// Spec names a nemesis and says how many members it needs.
type Spec struct {
	Name    string
	Members int // 3 or 5 (5-member nemeses need the 5-member cluster)
	Unsafe  bool
	Tmpfs   bool // needs tmpfs-backed data volumes
	// SegmentSize (bytes) and Pad (body bytes added to every own-client send) make a
	// run's log grow fast: a disk-full window must cross a segment boundary.
	SegmentSize int64
	Pad         int
	Doc         string
	New         func() Nemesis
}

// All lists every nemesis by name, in the order `make jepsen` runs them.
func All() []Spec {
	return []Spec{
		{Name: "partition-leader", Members: 3, Doc: "isolate the leader from its peers (clients still reach it)", New: func() Nemesis { return &partition{plan: planIsolateLeader} }},
		{Name: "partition-follower", Members: 3, Doc: "isolate one follower from its peers", New: func() Nemesis { return &partition{plan: planIsolateFollower} }},
		{Name: "partition-halves", Members: 3, Doc: "random halves", New: func() Nemesis { return &partition{plan: planHalves} }},
		{Name: "partition-leader-minority", Members: 5, Doc: "majority vs minority, the leader in the minority (5 members)", New: func() Nemesis { return &partition{plan: planLeaderMinority} }},
		{Name: "partition-oneway", Members: 3, Doc: "the leader can send to its peers but not receive from them", New: func() Nemesis { return &partition{plan: planIsolateLeader, inputOnly: true} }},
		{Name: "partition-ring", Members: 5, Doc: "majorities ring: every member sees only its two neighbours (5 members)", New: func() Nemesis { return &partition{plan: planRing} }},
		{Name: "partition-bridge", Members: 5, Doc: "two halves joined by one bridge member (5 members)", New: func() Nemesis { return &partition{plan: planBridge} }},
		{Name: "partition-leader-namesrv", Members: 3, Doc: "isolate the leader from the namesrvs only", New: func() Nemesis { return &partition{plan: planLeaderNamesrv} }},
		{Name: "kill-follower", Members: 3, Doc: "kill -9 one follower, then restart it", New: func() Nemesis { return &kill{pick: pickFollower} }},
		{Name: "kill-leader", Members: 3, Doc: "kill -9 the leader, then restart it", New: func() Nemesis { return &kill{pick: pickLeader} }},
		{Name: "kill-minority", Members: 5, Doc: "kill -9 a minority including the leader (5 members), then restart", New: func() Nemesis { return &kill{pick: pickLeaderMinority} }},
		{Name: "kill-all", Members: 3, Doc: "kill -9 every member at once, then restart them", New: func() Nemesis { return &kill{pick: pickAll} }},
		{Name: "pause-leader", Members: 3, Doc: "docker pause the leader (longer than the election timeout), then unpause", New: func() Nemesis { return &pause{pick: pickLeader} }},
		{Name: "pause-follower", Members: 3, Doc: "docker pause one follower, then unpause", New: func() Nemesis { return &pause{pick: pickFollower} }},
		{Name: "netem-slow", Members: 3, Doc: "tc netem delay 100ms 50ms on every member", New: func() Nemesis { return &netem{args: []string{"delay", "100ms", "50ms"}, fallback: slowFallback} }},
		{Name: "netem-lossy", Members: 3, Doc: "tc netem loss 20% on every member", New: func() Nemesis { return &netem{args: []string{"loss", "20%"}, fallback: lossyFallback} }},
		{Name: "disk-full-leader", Members: 3, Tmpfs: true, SegmentSize: 1 << 20, Pad: 4096, Doc: "fill the leader's data volume (tmpfs), then free it", New: func() Nemesis { return &diskFull{} }},
		{Name: "transfer-leader", Members: 3, Doc: "leadership transfer through the admin client every 2 s", New: func() Nemesis { return &transfer{} }},
		{Name: "wipe-follower", Members: 3, Doc: "kill -9 a follower, delete its data, restart it empty", New: func() Nemesis { return &wipe{pick: pickFollower} }},
		{Name: "unsafe-wipe-all", Members: 3, Unsafe: true, Doc: "UNSAFE: kill -9 every member and delete all data; the checker must report loss", New: func() Nemesis { return &wipe{pick: pickAll} }},
	}
}

// Lookup finds a spec by name; "mix" is a random mix of the 3-member nemeses that
// need no special volumes.
func Lookup(name string) (Spec, error) {
	if name == "mix" {
		return Spec{Name: "mix", Members: 3, Doc: "a random 3-member nemesis per window", New: func() Nemesis { return &mix{} }}, nil
	}
	var names []string
	for _, s := range All() {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Spec{}, fmt.Errorf("unknown nemesis %q; known: mix %s", name, strings.Join(names, " "))
}

// nsenter runs a host binary inside member m's network namespace.
func nsenter(ctx context.Context, m cluster.Node, args ...string) error {
	pid, err := cluster.Pid(ctx, m.Container)
	if err != nil {
		return err
	}
	full := append([]string{"-t", fmt.Sprint(pid), "-n"}, args...)
	out, err := cluster.Run(ctx, "nsenter", full...)
	if err != nil {
		return fmt.Errorf("nsenter %s %s: %w: %s", m.Name, strings.Join(args, " "), err, out)
	}
	return nil
}

func leader(ctx context.Context, env *Env) (cluster.Node, error) {
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return env.Tracker.WaitLeader(wctx)
}

func others(env *Env, not ...cluster.Node) []cluster.Node {
	var out []cluster.Node
	for _, m := range env.Cluster.Members {
		skip := false
		for _, n := range not {
			if n.Name == m.Name {
				skip = true
			}
		}
		if !skip {
			out = append(out, m)
		}
	}
	return out
}

func names(ns []cluster.Node) string {
	var s []string
	for _, n := range ns {
		s = append(s, n.Name)
	}
	return strings.Join(s, ",")
}

// ---- partitions ----

// plan maps each member to the IPs it must not talk to.
type plan func(ctx context.Context, env *Env) (map[string][]string, string, error)

type partition struct {
	plan      plan
	inputOnly bool
}

func (p *partition) Start(ctx context.Context, env *Env) (string, error) {
	drops, desc, err := p.plan(ctx, env)
	if err != nil {
		return "", err
	}
	var errs []error
	for _, m := range env.Cluster.Members {
		for _, ip := range drops[m.Name] {
			if err := nsenter(ctx, m, "iptables", "-w", "-A", "INPUT", "-s", ip, "-j", "DROP"); err != nil {
				errs = append(errs, err)
			}
			if !p.inputOnly {
				if err := nsenter(ctx, m, "iptables", "-w", "-A", "OUTPUT", "-d", ip, "-j", "DROP"); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if p.inputOnly {
		desc += " (inbound only)"
	}
	return desc, errors.Join(errs...)
}

func (p *partition) Stop(ctx context.Context, env *Env) error { return healNet(ctx, env) }

func healNet(ctx context.Context, env *Env) error {
	var errs []error
	for _, m := range env.Cluster.Members {
		if _, err := cluster.Pid(ctx, m.Container); err != nil {
			continue // not running: nothing to flush (a restart starts clean)
		}
		for _, chain := range []string{"INPUT", "OUTPUT"} {
			if err := nsenter(ctx, m, "iptables", "-w", "-F", chain); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// cut makes two sides unable to talk.
func cut(drops map[string][]string, a, b []cluster.Node) {
	for _, x := range a {
		for _, y := range b {
			drops[x.Name] = append(drops[x.Name], y.IP)
			drops[y.Name] = append(drops[y.Name], x.IP)
		}
	}
}

func planIsolateLeader(ctx context.Context, env *Env) (map[string][]string, string, error) {
	l, err := leader(ctx, env)
	if err != nil {
		return nil, "", err
	}
	drops := map[string][]string{}
	rest := others(env, l)
	// Only the leader's side holds rules, so an inbound-only variant is one-way.
	for _, o := range rest {
		drops[l.Name] = append(drops[l.Name], o.IP)
	}
	return drops, "leader " + l.Name + " | " + names(rest), nil
}

func planIsolateFollower(ctx context.Context, env *Env) (map[string][]string, string, error) {
	f, err := pickFollower(ctx, env)
	if err != nil {
		return nil, "", err
	}
	drops := map[string][]string{}
	rest := others(env, f...)
	cut(drops, f, rest)
	return drops, "follower " + names(f) + " | " + names(rest), nil
}

func shuffled(env *Env) []cluster.Node {
	ms := append([]cluster.Node(nil), env.Cluster.Members...)
	env.Rand.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
	return ms
}

func planHalves(_ context.Context, env *Env) (map[string][]string, string, error) {
	ms := shuffled(env)
	k := len(ms) / 2
	drops := map[string][]string{}
	cut(drops, ms[:k], ms[k:])
	return drops, names(ms[:k]) + " | " + names(ms[k:]), nil
}

func planLeaderMinority(ctx context.Context, env *Env) (map[string][]string, string, error) {
	l, err := leader(ctx, env)
	if err != nil {
		return nil, "", err
	}
	rest := others(env, l)
	env.Rand.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	minority := append([]cluster.Node{l}, rest[:len(env.Cluster.Members)/2-1]...)
	majority := others(env, minority...)
	drops := map[string][]string{}
	cut(drops, minority, majority)
	return drops, "minority " + names(minority) + " (leader " + l.Name + ") | " + names(majority), nil
}

func planRing(_ context.Context, env *Env) (map[string][]string, string, error) {
	ms := shuffled(env)
	n := len(ms)
	drops := map[string][]string{}
	for i, m := range ms {
		for j, o := range ms {
			d := (j - i + n) % n
			if d != 0 && d != 1 && d != n-1 {
				drops[m.Name] = append(drops[m.Name], o.IP)
			}
		}
	}
	return drops, "ring " + names(ms), nil
}

func planBridge(_ context.Context, env *Env) (map[string][]string, string, error) {
	ms := shuffled(env)
	k := len(ms) / 2
	a, bridge, b := ms[:k], ms[k], ms[k+1:]
	drops := map[string][]string{}
	cut(drops, a, b)
	return drops, names(a) + " | bridge " + bridge.Name + " | " + names(b), nil
}

func planLeaderNamesrv(ctx context.Context, env *Env) (map[string][]string, string, error) {
	l, err := leader(ctx, env)
	if err != nil {
		return nil, "", err
	}
	drops := map[string][]string{}
	for _, ns := range env.Cluster.Namesrvs {
		drops[l.Name] = append(drops[l.Name], ns.IP)
	}
	return drops, "leader " + l.Name + " | namesrvs", nil
}

// ---- member picks ----

type pick func(ctx context.Context, env *Env) ([]cluster.Node, error)

func pickLeader(ctx context.Context, env *Env) ([]cluster.Node, error) {
	l, err := leader(ctx, env)
	if err != nil {
		return nil, err
	}
	return []cluster.Node{l}, nil
}

func pickFollower(ctx context.Context, env *Env) ([]cluster.Node, error) {
	l, err := leader(ctx, env)
	if err != nil {
		return nil, err
	}
	rest := others(env, l)
	return []cluster.Node{rest[env.Rand.IntN(len(rest))]}, nil
}

func pickLeaderMinority(ctx context.Context, env *Env) ([]cluster.Node, error) {
	l, err := leader(ctx, env)
	if err != nil {
		return nil, err
	}
	rest := others(env, l)
	env.Rand.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	return append([]cluster.Node{l}, rest[:len(env.Cluster.Members)/2-1]...), nil
}

func pickAll(_ context.Context, env *Env) ([]cluster.Node, error) {
	return append([]cluster.Node(nil), env.Cluster.Members...), nil
}

// ---- kill -9 ----

type kill struct {
	pick   pick
	killed []cluster.Node
}

func (k *kill) Start(ctx context.Context, env *Env) (string, error) {
	ms, err := k.pick(ctx, env)
	if err != nil {
		return "", err
	}
	k.killed = ms
	return "kill -9 " + names(ms), dockerEach(ctx, ms, "kill", "-s", "KILL")
}

// dockerEach runs `docker <verb> <args> <container>` for every member, in parallel.
func dockerEach(ctx context.Context, ms []cluster.Node, verb string, args ...string) error {
	return parallel(ms, func(m cluster.Node) error {
		full := append(append([]string{verb}, args...), m.Container)
		if out, err := cluster.Docker(ctx, full...); err != nil {
			return fmt.Errorf("%s %s: %w: %s", verb, m.Name, err, out)
		}
		return nil
	})
}

func (k *kill) Stop(ctx context.Context, env *Env) error {
	ms := k.killed
	k.killed = nil
	return startAll(ctx, ms)
}

func startAll(ctx context.Context, ms []cluster.Node) error { return dockerEach(ctx, ms, "start") }

func parallel(ms []cluster.Node, f func(cluster.Node) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ms))
	for i, m := range ms {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f(m) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ---- pause ----

type pause struct {
	pick   pick
	paused []cluster.Node
}

func (p *pause) Start(ctx context.Context, env *Env) (string, error) {
	ms, err := p.pick(ctx, env)
	if err != nil {
		return "", err
	}
	p.paused = ms
	return "pause " + names(ms), dockerEach(ctx, ms, "pause")
}

func (p *pause) Stop(ctx context.Context, env *Env) error {
	ms := p.paused
	p.paused = nil
	return dockerEach(ctx, ms, "unpause")
}

// ---- tc netem ----

// netem shapes every member's eth0 with tc netem; kernels without sch_netem get the
// fallback (tbf rate limiting for "slow", iptables statistic drops for "lossy").
type netem struct {
	args     []string
	fallback func(ctx context.Context, env *Env) (string, error)
}

func (n *netem) Start(ctx context.Context, env *Env) (string, error) {
	err := parallel(env.Cluster.Members, func(m cluster.Node) error {
		return nsenter(ctx, m, append([]string{"tc", "qdisc", "replace", "dev", "eth0", "root", "netem"}, n.args...)...)
	})
	if err != nil && strings.Contains(err.Error(), "qdisc kind is unknown") && n.fallback != nil {
		_ = healQdisc(ctx, env)
		desc, ferr := n.fallback(ctx, env)
		return desc + " (no sch_netem in this kernel)", ferr
	}
	return "netem " + strings.Join(n.args, " ") + " on all members", err
}

func (n *netem) Stop(ctx context.Context, env *Env) error {
	return errors.Join(healQdisc(ctx, env), healNet(ctx, env))
}

func slowFallback(ctx context.Context, env *Env) (string, error) {
	return "tbf rate 1mbit on every member's eth0", parallel(env.Cluster.Members, func(m cluster.Node) error {
		return nsenter(ctx, m, "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", "1mbit", "burst", "16kbit", "latency", "300ms")
	})
}

func lossyFallback(ctx context.Context, env *Env) (string, error) {
	return "iptables statistic: drop 20% of packets between members", parallel(env.Cluster.Members, func(m cluster.Node) error {
		var errs []error
		for _, o := range others(env, m) {
			errs = append(errs, nsenter(ctx, m, "iptables", "-w", "-A", "INPUT", "-s", o.IP, "-m", "statistic", "--mode", "random", "--probability", "0.2", "-j", "DROP"))
		}
		return errors.Join(errs...)
	})
}

func healQdisc(ctx context.Context, env *Env) error {
	for _, m := range env.Cluster.Members {
		if _, err := cluster.Pid(ctx, m.Container); err != nil {
			continue
		}
		// "No such file" when no netem qdisc is installed: nothing to heal.
		_ = nsenter(ctx, m, "tc", "qdisc", "del", "dev", "eth0", "root")
	}
	return nil
}

// ---- disk full ----

// fillerName is the file the disk-full nemesis writes into a member's /data.
const fillerName = "jepsen-disk-filler"

type diskFull struct{ path string }

func (d *diskFull) Start(ctx context.Context, env *Env) (string, error) {
	l, err := leader(ctx, env)
	if err != nil {
		return "", err
	}
	pid, err := cluster.Pid(ctx, l.Container)
	if err != nil {
		return "", err
	}
	dir := fmt.Sprintf("/proc/%d/root/data", pid)
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "", fmt.Errorf("statfs %s: %w", dir, err)
	}
	free := int64(st.Bavail) * st.Bsize
	d.path = filepath.Join(dir, fillerName)
	f, err := os.Create(d.path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// Fill all of it: fallocate what statfs reports, then top up byte-wise chunks.
	if err := unix.Fallocate(int(f.Fd()), 0, 0, free); err != nil {
		env.Log.Debug("fallocate of the whole free space failed, writing", "err", err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Seek(0, 2); err != nil {
			break
		}
		if _, err := f.Write(buf); err != nil {
			break // ENOSPC: full
		}
	}
	for n := 4096; n > 0; n /= 2 {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
	_ = unix.Statfs(dir, &st)
	return fmt.Sprintf("filled %s's /data (%d MiB free before, %d KiB after)", l.Name, free>>20, (int64(st.Bavail)*st.Bsize)>>10), nil
}

func (d *diskFull) Stop(ctx context.Context, env *Env) error {
	if d.path == "" {
		return nil
	}
	err := os.Remove(d.path)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	d.path = ""
	return err
}

// removeFillers deletes any filler left in a running member's /data.
func removeFillers(ctx context.Context, env *Env) {
	for _, m := range env.Cluster.Members {
		if pid, err := cluster.Pid(ctx, m.Container); err == nil {
			_ = os.Remove(fmt.Sprintf("/proc/%d/root/data/%s", pid, fillerName))
		}
	}
}

// ---- leadership transfer ----

type transfer struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	count  int
	errs   int
}

func (t *transfer) Start(ctx context.Context, env *Env) (string, error) {
	tctx, cancel := context.WithCancel(ctx)
	t.cancel, t.done = cancel, make(chan struct{})
	go func() {
		defer close(t.done)
		for tctx.Err() == nil {
			l, ok := env.Tracker.Leader()
			if ok {
				c, cc := context.WithTimeout(tctx, 5*time.Second)
				err := transferVia(c, env, l)
				cc()
				t.mu.Lock()
				if err != nil {
					t.errs++
					env.Log.Debug("transfer leader", "err", err)
				} else {
					t.count++
				}
				t.mu.Unlock()
			}
			select {
			case <-tctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	}()
	return "transfer leadership every 2 s", nil
}

// transferVia asks the member the tracker saw leading directly: the namesrv's view
// may lag a transfer.
func transferVia(ctx context.Context, env *Env, l cluster.Node) error {
	return env.Client.TransferLeader(ctx, l.Addr())
}

func (t *transfer) Stop(ctx context.Context, env *Env) error {
	if t.cancel == nil {
		return nil
	}
	t.cancel()
	<-t.done
	t.cancel = nil
	t.mu.Lock()
	defer t.mu.Unlock()
	env.Log.Info("leadership transfers", "ok", t.count, "failed", t.errs)
	return nil
}

// ---- wipe ----

type wipe struct {
	pick  pick
	wiped []cluster.Node
}

func (w *wipe) Start(ctx context.Context, env *Env) (string, error) {
	ms, err := w.pick(ctx, env)
	if err != nil {
		return "", err
	}
	w.wiped = ms
	err = parallel(ms, func(m cluster.Node) error {
		if err := dockerEach(ctx, []cluster.Node{m}, "kill", "-s", "KILL"); err != nil {
			return err
		}
		dir, err := cluster.VolumeDir(ctx, m.Volume)
		if err != nil {
			return err
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
		return nil
	})
	return "kill -9 and wipe the data of " + names(ms), err
}

func (w *wipe) Stop(ctx context.Context, env *Env) error {
	ms := w.wiped
	w.wiped = nil
	return startAll(ctx, ms)
}

// ---- mix ----

type mix struct{ cur Nemesis }

func (x *mix) Start(ctx context.Context, env *Env) (string, error) {
	var pool []Spec
	for _, s := range All() {
		if s.Members == 3 && !s.Unsafe && !s.Tmpfs {
			pool = append(pool, s)
		}
	}
	sort.Slice(pool, func(i, j int) bool { return pool[i].Name < pool[j].Name })
	s := pool[env.Rand.IntN(len(pool))]
	x.cur = s.New()
	desc, err := x.cur.Start(ctx, env)
	return s.Name + ": " + desc, err
}

func (x *mix) Stop(ctx context.Context, env *Env) error {
	if x.cur == nil {
		return nil
	}
	err := x.cur.Stop(ctx, env)
	x.cur = nil
	return err
}

// HealAll undoes every fault any nemesis can leave behind.
func HealAll(ctx context.Context, env *Env) error {
	var errs []error
	for _, m := range env.Cluster.Members {
		_, _ = cluster.Docker(ctx, "unpause", m.Container)
	}
	// Start whatever is not running (killed or wiped members).
	for _, m := range env.Cluster.Members {
		if _, err := cluster.Pid(ctx, m.Container); err != nil {
			if out, err := cluster.Docker(ctx, "start", m.Container); err != nil {
				errs = append(errs, fmt.Errorf("start %s: %w: %s", m.Name, err, out))
			}
		}
	}
	if err := healNet(ctx, env); err != nil {
		errs = append(errs, err)
	}
	_ = healQdisc(ctx, env)
	removeFillers(ctx, env)
	return errors.Join(errs...)
}
