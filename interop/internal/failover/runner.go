package failover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/raftmq/raftmq/client/admin"
	"github.com/raftmq/raftmq/wire"
)

// Member is one broker of the group under test.
type Member struct {
	Name string // how the deployment calls it (compose service, process name)
	Addr string // the client address it advertises
}

// Cluster is the deployment the trials act on: one three-member broker group.
type Cluster interface {
	Members() []Member
	Kill(ctx context.Context, m Member) error  // SIGKILL; returns once it is delivered
	Stop(ctx context.Context, m Member) error  // SIGTERM with the deployment's grace; returns once it exited
	Start(ctx context.Context, m Member) error // start a stopped or killed member on its old store
}

// Pauser is a Cluster that can freeze a member (SIGSTOP, docker pause) and thaw it.
type Pauser interface {
	Pause(ctx context.Context, m Member) error
	Unpause(ctx context.Context, m Member) error
}

// Plan is which trials to run, in this order.
type Plan struct {
	LeaderKills    int
	FollowerKills  int
	FollowerPauses int // needs a Cluster that is a Pauser
	Transfers      int
	Rolling        bool // restart every member gracefully, followers first
}

// PauseFor is how long a follower stays frozen in a pause trial: longer than the
// group's election timeout, so a broker that waited for it would show.
const PauseFor = 5 * time.Second

// Config is a run.
type Config struct {
	Deployment string
	Group      string // broker group (brokerName)
	Workload   WorkloadConfig
	Plan       Plan
	// WarmAcks is how many acknowledgements of each kind come before the first trial
	// and after every rejoin; default 50.
	WarmAcks int
	// RecoverTimeout bounds the wait for progress after an action, and for a rejoin;
	// default 2 min.
	RecoverTimeout time.Duration
	Logf           func(format string, args ...any)
}

// Runner drives the trials.
type Runner struct {
	cfg     Config
	cluster Cluster
	adm     *admin.Client
	w       *Workload
	events  []Event
	warmEnd time.Time // the first trial's window starts here
	// suppressed is each member's duplicatesSuppressed at the last trial's end.
	suppressed map[string]uint64
}

// Run starts the workload, runs the plan and returns the analysed summary. It returns
// an error only when the run could not start; a run cut short by a failed action or a
// missed recovery is reported in Summary.Aborted with every figure measured so far.
func Run(ctx context.Context, cfg Config, cl Cluster) (*Summary, error) {
	if cfg.WarmAcks <= 0 {
		cfg.WarmAcks = 50
	}
	if cfg.RecoverTimeout <= 0 {
		cfg.RecoverTimeout = 2 * time.Minute
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	cfg.Workload.defaults()
	adm, err := admin.New(cfg.Workload.Namesrvs, 3*time.Second)
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	r := &Runner{cfg: cfg, cluster: cl, adm: adm, suppressed: map[string]uint64{}}
	started := time.Now()
	// The client's consumer refuses to start on a topic no namesrv routes yet.
	if err := r.waitRoutes(ctx); err != nil {
		return nil, err
	}
	w, err := StartWorkload(cfg.Workload)
	if err != nil {
		return nil, err
	}
	r.w = w
	defer w.Close()

	aborted := ""
	err = r.waitSteady(ctx, time.Now())
	r.warmEnd = time.Now()
	r.suppressedSince(ctx)
	if err != nil {
		aborted = "warm-up: " + err.Error()
	} else if err := r.runPlan(ctx); err != nil {
		aborted = err.Error()
	}
	if err := w.StopProducers(time.Minute); err != nil && aborted == "" {
		aborted = err.Error()
	}
	// Every acknowledged message must arrive; wait for the consumer to drain.
	drainErr := waitFor(ctx, 3*time.Minute, func() error {
		missing, inFlight := w.rec.unconsumed()
		if missing > 0 || inFlight > 0 {
			return fmt.Errorf("%d acknowledged messages not consumed, %d sends in flight", missing, inFlight)
		}
		return nil
	})
	if drainErr != nil {
		cfg.Logf("drain: %v", drainErr)
	}
	s := Analyze(w.Log(), r.events)
	s.BrokerCounters = r.dedupCounters(ctx)
	s.Deployment, s.Started, s.Finished, s.Aborted = cfg.Deployment, started, time.Now(), aborted
	s.Workload = WorkloadInfo{
		SyncWorkers: cfg.Workload.SyncWorkers, BatchSize: cfg.Workload.BatchSize,
		IntervalMS: float64(cfg.Workload.Interval) / float64(time.Millisecond),
		Client:     "github.com/apache/rocketmq-client-go/v2, default options (round-robin, retries 2, timeout 3 s)",
	}
	return s, nil
}

func (r *Runner) runPlan(ctx context.Context) error {
	p := r.cfg.Plan
	for i := 0; i < p.LeaderKills; i++ {
		if err := r.crashTrial(ctx, ScenarioLeaderKill, i, true); err != nil {
			return err
		}
	}
	for i := 0; i < p.FollowerKills; i++ {
		if err := r.crashTrial(ctx, ScenarioFollowerKill, i, false); err != nil {
			return err
		}
	}
	if p.FollowerPauses > 0 {
		pz, ok := r.cluster.(Pauser)
		if !ok {
			return errors.New("follower pauses planned but the cluster cannot pause members")
		}
		for i := 0; i < p.FollowerPauses; i++ {
			if err := r.pauseTrial(ctx, pz, i); err != nil {
				return err
			}
		}
	}
	for i := 0; i < p.Transfers; i++ {
		if err := r.transferTrial(ctx, i); err != nil {
			return err
		}
	}
	if p.Rolling {
		if err := r.rollingRestart(ctx); err != nil {
			return err
		}
	}
	return nil
}

// waitRoutes waits until every namesrv routes the topic to the group with a leader.
func (r *Runner) waitRoutes(ctx context.Context) error {
	for _, ns := range r.cfg.Workload.Namesrvs {
		one, err := admin.New([]string{ns}, 3*time.Second)
		if err != nil {
			return err
		}
		err = waitFor(ctx, r.cfg.RecoverTimeout, func() error {
			route, err := one.TopicRoute(ctx, r.cfg.Workload.Topic)
			if err != nil {
				return err
			}
			if bd, ok := route.Broker(r.cfg.Group); !ok || bd.LeaderAddr() == "" {
				return fmt.Errorf("route of %s on %s has no leader of %s", r.cfg.Workload.Topic, ns, r.cfg.Group)
			}
			return nil
		})
		one.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// waitFor polls cond every 50 ms until it returns nil, the timeout passes or ctx ends.
func waitFor(ctx context.Context, timeout time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %v: %w", timeout, err)
		case <-tick.C:
		}
	}
}

// waitSteady waits until, for sends begun after t, every kind has WarmAcks
// acknowledgements (oneway: consumed sends) and the consumer consumed WarmAcks messages.
func (r *Runner) waitSteady(ctx context.Context, t time.Time) error {
	return r.waitProgress(ctx, t, r.cfg.WarmAcks)
}

func (r *Runner) waitProgress(ctx context.Context, t time.Time, n int) error {
	return waitFor(ctx, r.cfg.RecoverTimeout, func() error {
		acked, consumed := r.w.rec.progress(t)
		var short []string
		for _, k := range Kinds {
			if acked[k] < n {
				short = append(short, fmt.Sprintf("%s %d", k, acked[k]))
			}
		}
		if consumed < n {
			short = append(short, fmt.Sprintf("consumed %d", consumed))
		}
		if len(short) > 0 {
			return fmt.Errorf("progress since %s short of %d: %s", t.Format("15:04:05.000"), n, strings.Join(short, ", "))
		}
		return nil
	})
}

// status is each member's Raft view; unreachable members are missing.
func (r *Runner) status(ctx context.Context) map[string]*wire.RaftStatus {
	out := map[string]*wire.RaftStatus{}
	for _, m := range r.cluster.Members() {
		st, err := r.adm.RaftStatus(ctx, m.Addr)
		if err == nil {
			out[m.Name] = st
		}
	}
	return out
}

// leader returns the member that says it leads with the highest term.
func (r *Runner) leader(ctx context.Context) (Member, error) {
	var best Member
	var term uint64
	sts := r.status(ctx)
	for _, m := range r.cluster.Members() {
		if st := sts[m.Name]; st != nil && strings.EqualFold(st.Role, "leader") && st.Term >= term {
			best, term = m, st.Term
		}
	}
	if best.Name == "" {
		return best, errors.New("no member says it is leader")
	}
	return best, nil
}

// waitLeader waits for a leader (other than not, if given) and returns it.
func (r *Runner) waitLeader(ctx context.Context, not string) (Member, error) {
	var got Member
	err := waitFor(ctx, r.cfg.RecoverTimeout, func() error {
		m, err := r.leader(ctx)
		if err != nil {
			return err
		}
		if m.Name == not {
			return fmt.Errorf("%s still leads", not)
		}
		got = m
		return nil
	})
	return got, err
}

// caughtUp is nil once m follows a known leader and has applied nearly all of the
// leader's committed entries.
func (r *Runner) caughtUp(ctx context.Context, m Member) error {
	st, err := r.adm.RaftStatus(ctx, m.Addr)
	if err != nil {
		return err
	}
	if !strings.EqualFold(st.Role, "follower") || st.LeaderID == "" {
		return fmt.Errorf("%s: role %s, leader %q", m.Name, st.Role, st.LeaderID)
	}
	for name, o := range r.status(ctx) {
		if name != m.Name && strings.EqualFold(o.Role, "leader") && st.AppliedIndex+64 < o.CommitIndex {
			return fmt.Errorf("%s applied %d, leader commit %d", m.Name, st.AppliedIndex, o.CommitIndex)
		}
	}
	return nil
}

// namesrvLeader is the group's brokerId 0 in the topic's route, "" if none.
func (r *Runner) namesrvLeader(ctx context.Context) string {
	route, err := r.adm.TopicRoute(ctx, r.cfg.Workload.Topic)
	if err != nil {
		return ""
	}
	bd, ok := route.Broker(r.cfg.Group)
	if !ok {
		return ""
	}
	return bd.LeaderAddr()
}

// watchElection records when the namesrv first names a leader other than old.
func (r *Runner) watchElection(ctx context.Context, old string) <-chan time.Time {
	out := make(chan time.Time, 1)
	go func() {
		defer close(out)
		_ = waitFor(ctx, r.cfg.RecoverTimeout, func() error {
			if a := r.namesrvLeader(ctx); a != "" && a != old {
				out <- time.Now()
				return nil
			}
			return errors.New("namesrv still names the old leader")
		})
	}()
	return out
}

func (r *Runner) windowStart() time.Time {
	if n := len(r.events); n > 0 {
		return r.events[n-1].End
	}
	return r.warmEnd
}

// record closes a trial: it waits for steady traffic after ev's last step and logs it.
func (r *Runner) record(ctx context.Context, ev Event, last time.Time) error {
	err := r.waitSteady(ctx, last)
	ev.End = time.Now()
	ev.Suppressed = r.suppressedSince(ctx)
	if m, lerr := r.leader(ctx); lerr == nil {
		ev.Leader = m.Name
		if st := r.status(ctx)[m.Name]; st != nil {
			ev.Leader += fmt.Sprintf(" (term %d)", st.Term)
		}
	}
	if err != nil {
		ev.Note = strings.TrimSpace(ev.Note + " not steady: " + err.Error())
	}
	r.events = append(r.events, ev)
	r.cfg.Logf("%s #%d %s (%s): resumed %s, rejoined %s, leader now %s %s", ev.Scenario, ev.Index, ev.Member, ev.Role,
		fmtSec(since(ev.At, ev.Resumed)), fmtSec(since(ev.Started, ev.Rejoined)), ev.Leader, ev.Note)
	if err != nil {
		return fmt.Errorf("%s #%d: %w", ev.Scenario, ev.Index, err)
	}
	return nil
}

// crashTrial kill -9s the leader (or a follower), waits until every producer kind and
// the consumer progress again, starts the member and waits until it is a caught-up
// follower.
func (r *Runner) crashTrial(ctx context.Context, scenario string, i int, killLeader bool) error {
	ev := Event{Scenario: scenario, Index: i, Window: r.windowStart()}
	lead, err := r.waitLeader(ctx, "")
	if err != nil {
		return fmt.Errorf("%s #%d: %w", scenario, i, err)
	}
	victim, role := lead, "leader"
	if !killLeader {
		fs := r.followers(lead)
		victim, role = fs[i%len(fs)], "follower"
	}
	ev.Member, ev.Role = victim.Name, role
	var elected <-chan time.Time
	if killLeader {
		elected = r.watchElection(ctx, victim.Addr)
	}
	ev.Begin = time.Now()
	if err := r.cluster.Kill(ctx, victim); err != nil {
		return fmt.Errorf("%s #%d: kill %s: %w", scenario, i, victim.Name, err)
	}
	// Stamped once the kill is delivered: a send begun before may still have reached
	// the live member, so only sends begun after this measure the recovery.
	ev.At = time.Now()
	return r.recoverAndRejoin(ctx, ev, victim, elected, func() error { return r.cluster.Start(ctx, victim) })
}

// recoverAndRejoin waits for progress after ev.At, brings victim back (restart or
// thaw), waits for its catch-up and closes the trial.
func (r *Runner) recoverAndRejoin(ctx context.Context, ev Event, victim Member, elected <-chan time.Time, bringBack func() error) error {
	err := r.waitProgress(ctx, ev.At, 1)
	if err == nil {
		ev.Resumed = time.Now()
	} else {
		ev.Note = "no progress: " + err.Error()
	}
	if elected != nil {
		select {
		case at, ok := <-elected:
			if ok {
				ev.Elected = at
			}
		case <-time.After(r.cfg.RecoverTimeout):
		}
	}
	if serr := bringBack(); serr != nil {
		ev.End = time.Now()
		r.events = append(r.events, ev)
		return fmt.Errorf("%s #%d: bring back %s: %w", ev.Scenario, ev.Index, victim.Name, serr)
	}
	ev.Started = time.Now()
	if jerr := waitFor(ctx, r.cfg.RecoverTimeout, func() error { return r.caughtUp(ctx, victim) }); jerr != nil {
		ev.Note = strings.TrimSpace(ev.Note + " rejoin: " + jerr.Error())
		if err == nil {
			err = jerr
		}
	} else {
		ev.Rejoined = time.Now()
	}
	if rerr := r.record(ctx, ev, time.Now()); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("%s #%d: %w", ev.Scenario, ev.Index, err)
	}
	return nil
}

// followers lists the members other than the leader.
func (r *Runner) followers(lead Member) []Member {
	var out []Member
	for _, m := range r.cluster.Members() {
		if m.Name != lead.Name {
			out = append(out, m)
		}
	}
	return out
}

// pauseTrial freezes a follower for PauseFor, thaws it and waits for its catch-up.
func (r *Runner) pauseTrial(ctx context.Context, pz Pauser, i int) error {
	ev := Event{Scenario: ScenarioFollowerPause, Index: i, Window: r.windowStart(), Role: "follower"}
	lead, err := r.waitLeader(ctx, "")
	if err != nil {
		return fmt.Errorf("%s #%d: %w", ev.Scenario, i, err)
	}
	fs := r.followers(lead)
	victim := fs[i%len(fs)]
	ev.Member = victim.Name
	ev.Begin = time.Now()
	if err := pz.Pause(ctx, victim); err != nil {
		return fmt.Errorf("%s #%d: pause %s: %w", ev.Scenario, i, victim.Name, err)
	}
	ev.At = time.Now()
	thaw := func() error {
		select {
		case <-time.After(time.Until(ev.At.Add(PauseFor))): // the fault's length, not a wait for a condition
		case <-ctx.Done():
		}
		return pz.Unpause(ctx, victim)
	}
	return r.recoverAndRejoin(ctx, ev, victim, nil, thaw)
}

// transferTrial asks the leader to hand leadership to another member under load.
func (r *Runner) transferTrial(ctx context.Context, i int) error {
	ev := Event{Scenario: ScenarioTransfer, Index: i, Window: r.windowStart(), Role: "leader"}
	lead, err := r.waitLeader(ctx, "")
	if err != nil {
		return fmt.Errorf("transfer #%d: %w", i, err)
	}
	ev.Member = lead.Name
	elected := r.watchElection(ctx, lead.Addr)
	ev.Begin = time.Now()
	if err := r.adm.TransferLeader(ctx, r.cfg.Group, ""); err != nil {
		ev.Note = "transferLeader: " + err.Error()
	}
	ev.At = time.Now()
	newLead, err := r.waitLeader(ctx, lead.Name)
	if err != nil {
		ev.End = time.Now()
		r.events = append(r.events, ev)
		return fmt.Errorf("transfer #%d: %w", i, err)
	}
	ev.Note = strings.TrimSpace(ev.Note + " to " + newLead.Name)
	if perr := r.waitProgress(ctx, ev.At, 1); perr == nil {
		ev.Resumed = time.Now()
	} else {
		ev.Note += " no progress: " + perr.Error()
	}
	select {
	case at, ok := <-elected:
		if ok {
			ev.Elected = at
		}
	case <-time.After(r.cfg.RecoverTimeout):
	}
	return r.record(ctx, ev, time.Now())
}

// rollingRestart stops (SIGTERM, with grace) and restarts every member in turn,
// followers first, waiting for each to catch up before the next.
func (r *Runner) rollingRestart(ctx context.Context) error {
	lead, err := r.waitLeader(ctx, "")
	if err != nil {
		return fmt.Errorf("rolling restart: %w", err)
	}
	order := r.followers(lead)
	order = append(order, lead)
	for i, m := range order {
		role := "follower"
		if cur, err := r.leader(ctx); err == nil && cur.Name == m.Name {
			role = "leader"
		}
		ev := Event{Scenario: ScenarioRolling, Index: i, Window: r.windowStart(), Member: m.Name, Role: role}
		var elected <-chan time.Time
		if role == "leader" {
			elected = r.watchElection(ctx, m.Addr)
		}
		ev.Begin = time.Now()
		if err := r.cluster.Stop(ctx, m); err != nil {
			return fmt.Errorf("rolling restart: stop %s: %w", m.Name, err)
		}
		ev.At = time.Now()
		if err := r.recoverAndRejoin(ctx, ev, m, elected, func() error { return r.cluster.Start(ctx, m) }); err != nil {
			return err
		}
	}
	return nil
}

// dedupCounters collects each member's duplicate-table figures from its Raft status.
func (r *Runner) dedupCounters(ctx context.Context) map[string]map[string]string {
	out := map[string]map[string]string{}
	for name, st := range r.status(ctx) {
		out[name] = map[string]string{
			"duplicateKeys":        fmt.Sprint(st.DuplicateKeys),
			"duplicatesSuppressed": fmt.Sprint(st.DuplicatesSuppressed),
		}
	}
	return out
}

// suppressedSince sums, over the members, the retried sends answered from the
// duplicate table since the previous call (a restarted member counts from zero).
func (r *Runner) suppressedSince(ctx context.Context) uint64 {
	var n uint64
	for name, st := range r.status(ctx) {
		prev := r.suppressed[name]
		if st.DuplicatesSuppressed >= prev {
			n += st.DuplicatesSuppressed - prev
		} else {
			n += st.DuplicatesSuppressed
		}
		r.suppressed[name] = st.DuplicatesSuppressed
	}
	return n
}

// WriteJSON writes the summary to path.
func (s *Summary) WriteJSON(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadSummary reads a summary written by WriteJSON.
func ReadSummary(path string) (*Summary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}
