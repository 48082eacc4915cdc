package admin

import (
	"sort"
	"strings"
)

// aliasSeparator joins a group's brokerName and a member id into the write
// alias the namesrv adds to topic routes ("broker-a@n1"); group names never
// contain it.
const aliasSeparator = "@"

// WriteEntryPoint is a write alias of a group: a member that takes the
// group's sends (and forwards them to the leader).
type WriteEntryPoint struct {
	Alias    string `json:"alias"`
	MemberID string `json:"memberId"`
	Addr     string `json:"addr"`
}

// RouteGroup is one broker group of a topic route with its write aliases
// folded in: the group appears once, its queues counted once.
type RouteGroup struct {
	BrokerName     string            `json:"brokerName"`
	Cluster        string            `json:"cluster"`
	ReadQueueNums  int               `json:"readQueueNums"`
	WriteQueueNums int               `json:"writeQueueNums"`
	Perm           int               `json:"perm"` // the topic's permission on the group
	Members        []Member          `json:"members"`
	WriteEntries   []WriteEntryPoint `json:"writeEntryPoints,omitempty"`
	leader         string
}

// LeaderAddr is the group's brokerId-0 address, or "".
func (g RouteGroup) LeaderAddr() string { return g.leader }

// aliasOf splits an alias name into its group and member id when the group
// is in names.
func aliasOf(name string, names map[string]bool) (group, member string, ok bool) {
	group, member, ok = strings.Cut(name, aliasSeparator)
	if !ok || !names[group] {
		return "", "", false
	}
	return group, member, true
}

// Groups folds the route's write aliases into their groups, sorted by name.
// The group's read entry gives the read queue count, the aliases the write
// count (they are the same queues); perm is the union.
func (r *TopicRoute) Groups() []RouteGroup {
	names := map[string]bool{}
	for _, bd := range r.BrokerDatas {
		if !strings.Contains(bd.BrokerName, aliasSeparator) {
			names[bd.BrokerName] = true
		}
	}
	byName := map[string]*RouteGroup{}
	group := func(name string) *RouteGroup {
		g := byName[name]
		if g == nil {
			g = &RouteGroup{BrokerName: name}
			byName[name] = g
		}
		return g
	}
	for _, bd := range r.BrokerDatas {
		if name, member, ok := aliasOf(bd.BrokerName, names); ok {
			g := group(name)
			g.WriteEntries = append(g.WriteEntries, WriteEntryPoint{Alias: bd.BrokerName, MemberID: member, Addr: bd.LeaderAddr()})
			continue
		}
		g := group(bd.BrokerName)
		g.Cluster, g.Members, g.leader = bd.Cluster, bd.Members(), bd.LeaderAddr()
	}
	for _, qd := range r.QueueDatas {
		if name, _, ok := aliasOf(qd.BrokerName, names); ok {
			g := group(name)
			g.WriteQueueNums = max(g.WriteQueueNums, qd.WriteQueueNums)
			g.Perm |= qd.Perm
			continue
		}
		g := group(qd.BrokerName)
		g.ReadQueueNums = qd.ReadQueueNums
		if len(g.WriteEntries) == 0 {
			g.WriteQueueNums = qd.WriteQueueNums
		}
		g.Perm |= qd.Perm
	}
	out := make([]RouteGroup, 0, len(byName))
	for _, g := range byName {
		sort.Slice(g.WriteEntries, func(i, j int) bool { return g.WriteEntries[i].Alias < g.WriteEntries[j].Alias })
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].BrokerName < out[j].BrokerName })
	return out
}
