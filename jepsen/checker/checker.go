// Package checker judges a jepsen history: it finds lost, diverged, unexpected,
// duplicated and misordered messages, offset anomalies and consumer offsets going
// backward, and measures availability around every nemesis window.
//
// The checker is a pure function of the history (history.Op values); it never talks
// to a cluster. What counts as read is the final drain of every member (committed
// data only, from offset 0), plus the consumers' polls as corroborating evidence.
// An anomaly class that must be empty for a run to pass is listed in Result.Failures.
package checker

import (
	"fmt"
	"sort"
	"time"

	"github.com/raftmq/raftmq/jepsen/history"
)

// Options tunes the checker.
type Options struct {
	// Members whose drains must agree. Empty = every member that has drain ops.
	Members []string
	// OfficialProcesses are producer processes of the official client, whose
	// internal retries the history cannot see: their duplicates are reported but
	// not counted as causeless.
	OfficialProcesses map[int]bool
	// SampleSize caps each anomaly's examples in the result (default 20).
	SampleSize int
	// StrictOffsets makes consumer offsets going backward fail the run. By default
	// they are reported only: RocketMQ acknowledges an offset commit before it is
	// replicated, so a failover may legitimately re-deliver (at-least-once).
	StrictOffsets bool
}

// Duplicate is a value stored at more than one queue offset.
type Duplicate struct {
	Value     string   `json:"value"`
	Locations []string `json:"locations"` // "q/offset"
	Cause     string   `json:"cause"`     // "retry-of-info", "official-client-retry" or "none"
}

// Window is availability around one nemesis window.
type Window struct {
	Nemesis         string  `json:"nemesis"`
	Start           float64 `json:"start_s"`
	Heal            float64 `json:"heal_s"`
	Acks            int     `json:"acks"`
	FailedSends     int     `json:"failed_sends"`
	InfoSends       int     `json:"info_sends"`
	LongestAckGap   float64 `json:"longest_ack_gap_s"`
	HealToFirstAck  float64 `json:"heal_to_first_ack_s"` // -1: no ack after the heal
	FirstFailToOK   float64 `json:"unavailable_s"`       // first failed/info send in the window to the next ack
	Healed          bool    `json:"healed"`
	healNS, startNS int64
}

// Result is the verdict on one history.
type Result struct {
	Valid    bool     `json:"valid"`
	Failures []string `json:"failures,omitempty"`
	Warnings []string `json:"warnings,omitempty"`

	// Official is the official-client producer's own figures (its sends are part of
	// every count above too).
	Official *ProducerStats `json:"official_client,omitempty"`

	Attempted int `json:"attempted"` // distinct values sent
	Acked     int `json:"acked"`
	Failed    int `json:"failed"`    // values whose every attempt definitely failed
	Unknown   int `json:"unknown"`   // values with an info attempt and no ok
	Recovered int `json:"recovered"` // unknown values that were read
	Polled    int `json:"polled"`    // distinct values consumers read

	Lost           []string            `json:"lost"`
	LostOnMember   map[string][]string `json:"lost_on_member"`
	LostOnMemberN  int                 `json:"lost_on_member_count"`
	Divergent      []string            `json:"divergent_offsets"`
	Unexpected     []string            `json:"unexpected"`
	Duplicates     []Duplicate         `json:"duplicates"`
	CauselessDups  int                 `json:"causeless_duplicates"`
	PollDuplicates int                 `json:"poll_redeliveries"`
	OffsetCollide  []string            `json:"offset_collisions"`
	AckMismatch    []string            `json:"ack_mismatches"`
	OrderViolation []string            `json:"order_violations"`
	G1a            []string            `json:"failed_but_read"`
	OffsetBackward []string            `json:"offset_regressions"`
	DrainErrors    []string            `json:"drain_errors"`

	LostCount       int `json:"lost_count"`
	UnexpectedCount int `json:"unexpected_count"`
	CollisionCount  int `json:"offset_collision_count"`
	MismatchCount   int `json:"ack_mismatch_count"`
	OrderCount      int `json:"order_violation_count"`
	G1aCount        int `json:"failed_but_read_count"`
	BackwardCount   int `json:"offset_regression_count"`
	DivergentCount  int `json:"divergent_offset_count"`

	Windows          []Window       `json:"windows"`
	LongestNormalGap float64        `json:"longest_ack_gap_outside_nemesis_s"`
	SendLatencyP50Ms float64        `json:"send_latency_p50_ms"`
	SendLatencyP99Ms float64        `json:"send_latency_p99_ms"`
	SendLatencyMaxMs float64        `json:"send_latency_max_ms"`
	DrainMembers     []string       `json:"drain_members"`
	ValuesPerMember  map[string]int `json:"values_per_member"`
}

// ProducerStats is one set of producers' outcome.
type ProducerStats struct {
	Attempted     int     `json:"attempted"`
	Acked         int     `json:"acked"`
	Unknown       int     `json:"unknown"`
	LongestAckGap float64 `json:"longest_ack_gap_s"`
}

type loc struct {
	queue  int
	offset int64
}

func (l loc) String() string { return fmt.Sprintf("%d/%d", l.queue, l.offset) }

type sendInfo struct {
	process  int
	attempts int
	ok       []history.Op
	fails    int
	infos    int
	open     int // invokes without completion
	firstInv int64
}

// Check judges ops.
func Check(ops []history.Op, opt Options) *Result {
	if opt.SampleSize <= 0 {
		opt.SampleSize = 20
	}
	r := &Result{LostOnMember: map[string][]string{}, ValuesPerMember: map[string]int{}, Duplicates: []Duplicate{}}

	sends := map[string]*sendInfo{}
	open := map[int]history.Op{} // process -> in-flight send invoke
	drains := map[string]map[loc]string{}
	drainAt := map[string]map[string][]loc{} // member -> value -> locations
	polled := map[string]int{}
	var latencies []int64
	var offsetOps []history.Op
	var nemesis []history.Op
	for _, op := range ops {
		switch op.F {
		case history.FSend:
			si := sends[op.Value]
			if si == nil {
				si = &sendInfo{process: op.Process, firstInv: op.Time}
				sends[op.Value] = si
			}
			switch op.Type {
			case history.Invoke:
				si.attempts++
				si.open++
				open[op.Process] = op
			case history.OK:
				si.open--
				si.ok = append(si.ok, op)
				latencies = append(latencies, op.Latency)
				delete(open, op.Process)
			case history.Fail:
				si.open--
				si.fails++
				delete(open, op.Process)
			case history.Info:
				si.open--
				si.infos++
				delete(open, op.Process)
			}
		case history.FDrain:
			if op.Type != history.OK {
				if op.Type == history.Info || op.Type == history.Fail {
					r.DrainErrors = append(r.DrainErrors, fmt.Sprintf("%s q%d: %s", op.Member, op.Queue, op.Error))
				}
				if drains[op.Member] == nil {
					drains[op.Member] = map[loc]string{}
					drainAt[op.Member] = map[string][]loc{}
				}
				continue
			}
			if drains[op.Member] == nil {
				drains[op.Member] = map[loc]string{}
				drainAt[op.Member] = map[string][]loc{}
			}
			l := loc{op.Queue, op.Offset}
			drains[op.Member][l] = op.Value
			drainAt[op.Member][op.Value] = append(drainAt[op.Member][op.Value], l)
		case history.FPoll:
			if op.Type == history.OK {
				polled[op.Value]++
			}
		case history.FCommit, history.FFetch:
			offsetOps = append(offsetOps, op)
		case history.FNemesis:
			nemesis = append(nemesis, op)
		}
	}

	members := opt.Members
	if len(members) == 0 {
		for m := range drains {
			members = append(members, m)
		}
	}
	sort.Strings(members)
	r.DrainMembers = members

	// Union of everything any member holds.
	anyRead := map[string][]loc{}
	for _, m := range members {
		for v := range drainAt[m] {
			anyRead[v] = nil
		}
		r.ValuesPerMember[m] = len(drainAt[m])
		if drains[m] == nil {
			r.DrainErrors = append(r.DrainErrors, m+": no drain at all")
		}
	}
	// Distinct locations per value across members.
	for v := range anyRead {
		set := map[loc]bool{}
		for _, m := range members {
			for _, l := range drainAt[m][v] {
				set[l] = true
			}
		}
		ls := make([]loc, 0, len(set))
		for l := range set {
			ls = append(ls, l)
		}
		sort.Slice(ls, func(i, j int) bool {
			if ls[i].queue != ls[j].queue {
				return ls[i].queue < ls[j].queue
			}
			return ls[i].offset < ls[j].offset
		})
		anyRead[v] = ls
	}

	r.Attempted = len(sends)
	r.Polled = len(polled)
	var lost, unknownRead, g1a []string
	for v, si := range sends {
		switch {
		case len(si.ok) > 0:
			r.Acked++
			if _, read := anyRead[v]; !read {
				lost = append(lost, v)
			}
		case si.infos > 0 || si.open > 0:
			r.Unknown++
			if _, read := anyRead[v]; read || polled[v] > 0 {
				unknownRead = append(unknownRead, v)
			}
		default:
			r.Failed++
			if _, read := anyRead[v]; read || polled[v] > 0 {
				g1a = append(g1a, v)
			}
		}
	}
	r.Recovered = len(unknownRead)
	sort.Strings(lost)
	sort.Strings(g1a)
	r.LostCount, r.Lost = len(lost), sample(lost, opt.SampleSize)
	r.G1aCount, r.G1a = len(g1a), sample(g1a, opt.SampleSize)

	// Lost on a member: a value some member holds (and that was acked or read) but
	// another does not; divergent: one offset, two values.
	for _, m := range members {
		var missing []string
		for v := range anyRead {
			if _, ok := drainAt[m][v]; !ok {
				missing = append(missing, v)
			}
		}
		sort.Strings(missing)
		r.LostOnMemberN += len(missing)
		if len(missing) > 0 {
			r.LostOnMember[m] = sample(missing, opt.SampleSize)
		}
	}
	locVals := map[loc]map[string][]string{}
	for _, m := range members {
		for l, v := range drains[m] {
			if locVals[l] == nil {
				locVals[l] = map[string][]string{}
			}
			locVals[l][v] = append(locVals[l][v], m)
		}
	}
	var divergent []string
	for l, vs := range locVals {
		if len(vs) > 1 {
			divergent = append(divergent, fmt.Sprintf("%s: %v", l, vs))
		}
	}
	sort.Strings(divergent)
	r.DivergentCount, r.Divergent = len(divergent), sample(divergent, opt.SampleSize)

	// Unexpected: read but never sent.
	var unexpected []string
	for v := range anyRead {
		if _, ok := sends[v]; !ok {
			unexpected = append(unexpected, v)
		}
	}
	for v := range polled {
		if _, ok := sends[v]; !ok {
			if _, inDrain := anyRead[v]; !inDrain {
				unexpected = append(unexpected, v)
			}
		}
	}
	sort.Strings(unexpected)
	r.UnexpectedCount, r.Unexpected = len(unexpected), sample(unexpected, opt.SampleSize)

	// Duplicates with their cause.
	var dupVals []string
	for v, ls := range anyRead {
		if len(ls) > 1 {
			dupVals = append(dupVals, v)
		}
	}
	sort.Strings(dupVals)
	for _, v := range dupVals {
		d := Duplicate{Value: v, Cause: "none"}
		for _, l := range anyRead[v] {
			d.Locations = append(d.Locations, l.String())
		}
		si := sends[v]
		switch {
		case si == nil:
			d.Cause = "unexpected"
		case si.attempts > 1 || si.infos > 0:
			d.Cause = "retry-of-info"
		case opt.OfficialProcesses[si.process]:
			d.Cause = "official-client-retry"
		default:
			r.CauselessDups++
		}
		if len(r.Duplicates) < opt.SampleSize || d.Cause == "none" {
			r.Duplicates = append(r.Duplicates, d)
		}
	}
	for _, n := range polled {
		if n > 1 {
			r.PollDuplicates++
		}
	}

	// Acks: two values acked at one offset, or an ack the log contradicts.
	ackAt := map[loc]map[string]bool{}
	var mismatch []string
	for v, si := range sends {
		for _, ok := range si.ok {
			if ok.Queue < 0 || ok.Offset < 0 {
				continue
			}
			l := loc{ok.Queue, ok.Offset}
			if ackAt[l] == nil {
				ackAt[l] = map[string]bool{}
			}
			ackAt[l][v] = true
			if vs, held := locVals[l]; held {
				if _, same := vs[v]; !same {
					mismatch = append(mismatch, fmt.Sprintf("%s acked at %s, log holds %v", v, l, keys(vs)))
				}
			}
		}
	}
	var collide []string
	for l, vs := range ackAt {
		if len(vs) > 1 {
			collide = append(collide, fmt.Sprintf("%s: %v", l, keys(vs)))
		}
	}
	sort.Strings(collide)
	sort.Strings(mismatch)
	r.CollisionCount, r.OffsetCollide = len(collide), sample(collide, opt.SampleSize)
	r.MismatchCount, r.AckMismatch = len(mismatch), sample(mismatch, opt.SampleSize)

	// Per producer, per queue: acked values in ack order hold increasing offsets.
	type pq struct{ p, q int }
	seqs := map[pq][]history.Op{}
	for _, si := range sends {
		if len(si.ok) == 0 {
			continue
		}
		ok := si.ok[0]
		seqs[pq{ok.Process, ok.Queue}] = append(seqs[pq{ok.Process, ok.Queue}], ok)
	}
	var order []string
	for k, s := range seqs {
		sort.Slice(s, func(i, j int) bool { return s[i].Time < s[j].Time })
		prev := int64(-1)
		prevV := ""
		for _, ok := range s {
			first := int64(-1)
			if ls := anyRead[ok.Value]; len(ls) > 0 {
				for _, l := range ls {
					if l.queue == k.q {
						first = l.offset
						break
					}
				}
			}
			if first < 0 {
				first = ok.Offset
			}
			if first < 0 {
				continue
			}
			if first <= prev {
				order = append(order, fmt.Sprintf("process %d queue %d: %s at %d after %s at %d", k.p, k.q, ok.Value, first, prevV, prev))
			}
			prev, prevV = first, ok.Value
		}
	}
	sort.Strings(order)
	r.OrderCount, r.OrderViolation = len(order), sample(order, opt.SampleSize)

	// Consumer offsets: a fetch invoked after a commit was acknowledged must not
	// return less than that commit.
	type gq struct {
		g string
		q int
	}
	type commitAck struct {
		at     int64
		offset int64
	}
	commits := map[gq][]commitAck{}
	for _, op := range offsetOps {
		if op.Type == history.OK && op.F == history.FCommit {
			k := gq{op.Group, op.Queue}
			commits[k] = append(commits[k], commitAck{op.Time, op.Offset})
		}
	}
	var backward []string
	for _, op := range offsetOps {
		if op.Type != history.OK || op.F != history.FFetch {
			continue
		}
		invoked := op.Time - op.Latency
		best := int64(-1)
		for _, c := range commits[gq{op.Group, op.Queue}] {
			if c.at < invoked && c.offset > best {
				best = c.offset
			}
		}
		if best >= 0 && op.Offset < best {
			backward = append(backward, fmt.Sprintf("group %s queue %d: fetched %d after commit %d was acknowledged (t=%.1fs)", op.Group, op.Queue, op.Offset, best, secs(op.Time)))
		}
	}
	sort.Strings(backward)
	r.BackwardCount, r.OffsetBackward = len(backward), sample(backward, opt.SampleSize)

	r.availability(ops, nemesis)
	if len(opt.OfficialProcesses) > 0 {
		st := &ProducerStats{}
		var acks []int64
		var first, last int64 = -1, 0
		for _, op := range ops {
			if op.F != history.FSend || !opt.OfficialProcesses[op.Process] {
				continue
			}
			if first < 0 {
				first = op.Time
			}
			last = op.Time
			switch op.Type {
			case history.Invoke:
				st.Attempted++
			case history.OK:
				st.Acked++
				acks = append(acks, op.Time)
			case history.Info, history.Fail:
				st.Unknown++
			}
		}
		// Gaps between acks, from the first send and up to the last one.
		prev := first
		for _, a := range append(acks, last) {
			st.LongestAckGap = max(st.LongestAckGap, secs(a-prev))
			prev = a
		}
		if st.Attempted > 0 {
			r.Official = st
		}
	}
	r.SendLatencyP50Ms, r.SendLatencyP99Ms, r.SendLatencyMaxMs = percentiles(latencies)

	fail := func(cond bool, what string, n int) {
		if cond {
			r.Failures = append(r.Failures, fmt.Sprintf("%s: %d", what, n))
		}
	}
	fail(r.LostCount > 0, "lost", r.LostCount)
	fail(r.LostOnMemberN > 0, "lost-on-member", r.LostOnMemberN)
	fail(r.DivergentCount > 0, "divergent-offsets", r.DivergentCount)
	fail(r.UnexpectedCount > 0, "unexpected", r.UnexpectedCount)
	fail(r.CauselessDups > 0, "duplicates-without-cause", r.CauselessDups)
	fail(r.CollisionCount > 0, "offset-collisions", r.CollisionCount)
	fail(r.MismatchCount > 0, "ack-mismatches", r.MismatchCount)
	fail(r.OrderCount > 0, "order-violations", r.OrderCount)
	fail(r.G1aCount > 0, "failed-but-read", r.G1aCount)
	fail(r.BackwardCount > 0 && opt.StrictOffsets, "offset-regressions", r.BackwardCount)
	if r.BackwardCount > 0 && !opt.StrictOffsets {
		r.Warnings = append(r.Warnings, fmt.Sprintf("offset-regressions: %d (acknowledged consumer offset commits lost; reported, not failed without -strict-offsets)", r.BackwardCount))
	}
	fail(len(r.DrainErrors) > 0, "drain-errors", len(r.DrainErrors))
	fail(r.Acked == 0, "no-acks", 0)
	r.Valid = len(r.Failures) == 0
	return r
}

// availability fills Windows and LongestNormalGap from the acks' completion times.
func (r *Result) availability(ops []history.Op, nemesis []history.Op) {
	var acks []int64
	type failure struct {
		t    int64
		kind string
	}
	var bad []failure
	var end int64
	for _, op := range ops {
		if op.Time > end && op.F == history.FSend {
			end = op.Time
		}
		if op.F != history.FSend {
			continue
		}
		switch op.Type {
		case history.OK:
			acks = append(acks, op.Time)
		case history.Fail, history.Info:
			bad = append(bad, failure{op.Time, op.Type})
		}
	}
	sort.Slice(acks, func(i, j int) bool { return acks[i] < acks[j] })
	var wins []Window
	openWin := map[string]int{}
	for _, op := range nemesis {
		switch op.Type {
		case history.Invoke:
			openWin[op.Value] = len(wins)
			wins = append(wins, Window{Nemesis: op.Value, startNS: op.Time, healNS: -1, HealToFirstAck: -1})
		case history.OK, history.Info, history.Fail:
			if i, ok := openWin[op.Value]; ok {
				wins[i].healNS = op.Time
				wins[i].Healed = op.Type == history.OK
				delete(openWin, op.Value)
			}
		}
	}
	firstAckAfter := func(t int64) int64 {
		i := sort.Search(len(acks), func(i int) bool { return acks[i] >= t })
		if i == len(acks) {
			return -1
		}
		return acks[i]
	}
	for i := range wins {
		w := &wins[i]
		if w.healNS < 0 {
			w.healNS = end
		}
		w.Start, w.Heal = secs(w.startNS), secs(w.healNS)
		after := firstAckAfter(w.healNS)
		if after >= 0 {
			w.HealToFirstAck = secs(after - w.healNS)
		}
		// Gaps between acks from the window's start to the first ack after the heal.
		limit := w.healNS
		if after >= 0 {
			limit = after
		}
		prev := w.startNS
		if p := lastAckBefore(acks, w.startNS); p >= 0 {
			prev = p
		}
		for _, a := range acks {
			if a <= w.startNS {
				continue
			}
			if a > limit {
				break
			}
			if a <= w.healNS {
				w.Acks++
			}
			if g := secs(a - prev); g > w.LongestAckGap {
				w.LongestAckGap = g
			}
			prev = a
		}
		firstBad := int64(-1)
		for _, b := range bad {
			if b.t < w.startNS || b.t > limit {
				continue
			}
			if firstBad < 0 {
				firstBad = b.t
			}
			if b.kind == history.Fail {
				w.FailedSends++
			} else {
				w.InfoSends++
			}
		}
		if firstBad >= 0 {
			if a := firstAckAfter(firstBad); a >= 0 {
				w.FirstFailToOK = secs(a - firstBad)
			} else {
				w.FirstFailToOK = -1
			}
		}
	}
	r.Windows = wins
	// Longest gap between acks that lies entirely outside every window (and its recovery).
	inWin := func(a, b int64) bool {
		for _, w := range wins {
			limit := w.healNS
			if t := firstAckAfter(w.healNS); t >= 0 {
				limit = t
			}
			if a < limit && b > w.startNS {
				return true
			}
		}
		return false
	}
	for i := 1; i < len(acks); i++ {
		if inWin(acks[i-1], acks[i]) {
			continue
		}
		if g := secs(acks[i] - acks[i-1]); g > r.LongestNormalGap {
			r.LongestNormalGap = g
		}
	}
}

func lastAckBefore(acks []int64, t int64) int64 {
	i := sort.Search(len(acks), func(i int) bool { return acks[i] >= t })
	if i == 0 {
		return -1
	}
	return acks[i-1]
}

func percentiles(ns []int64) (p50, p99, maxMs float64) {
	if len(ns) == 0 {
		return 0, 0, 0
	}
	s := append([]int64(nil), ns...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	ms := func(v int64) float64 { return float64(v) / float64(time.Millisecond) }
	return ms(s[len(s)/2]), ms(s[min(len(s)-1, len(s)*99/100)]), ms(s[len(s)-1])
}

func secs(ns int64) float64 { return float64(ns) / float64(time.Second) }

func sample(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	if s == nil {
		return []string{}
	}
	return s
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
