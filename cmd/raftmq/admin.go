package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/raftmq/raftmq/client/admin"
	"github.com/raftmq/raftmq/message"
)

func init() {
	register("admin", "administer topics, groups and broker groups (mqadmin-style)", runAdmin)
}

type adminCmd struct {
	summary string
	run     func(ctx context.Context, c *admin.Client, f *adminFlags, out io.Writer) error
}

// adminFlags are shared by every admin command; each command reads the ones it needs,
// named as in RocketMQ's mqadmin.
type adminFlags struct {
	namesrv, cluster, broker, topic, group, msgID, key, target, output, addr string
	readQ, writeQ, perm, maxNum                                              int
	order                                                                    bool
	timeout                                                                  time.Duration
}

var adminCmds = map[string]adminCmd{
	"updateTopic":      {"create or update a topic (-t, -c or -b, -r, -w, -p, -o order)", cmdUpdateTopic},
	"deleteTopic":      {"delete a topic from brokers and namesrvs (-t, -c)", cmdDeleteTopic},
	"topicList":        {"list all topics", cmdTopicList},
	"topicRoute":       {"show a topic's route (-t)", cmdTopicRoute},
	"topicStatus":      {"min/max offset of every queue of a topic (-t)", cmdTopicStatus},
	"clusterList":      {"broker groups and their members", cmdClusterList},
	"brokerStatus":     {"runtime info of one broker (-a addr)", cmdBrokerStatus},
	"consumerProgress": {"a group's offset and lag per queue (-g, -t)", cmdConsumerProgress},
	"queryMsgById":     {"show a message by offsetMsgId (-i)", cmdQueryMsgByID},
	"queryMsgByKey":    {"find messages by key (-t, -k)", cmdQueryMsgByKey},
	"raftStatus":       {"Raft status of every member of a broker group (-b)", cmdRaftStatus},
	"transferLeader":   {"move a group's leadership (-b, -s targetId or any)", cmdTransferLeader},
}

func adminUsage() {
	fmt.Fprintln(os.Stderr, "usage: raftmq admin <command> [-n namesrvAddr] [flags]\n\ncommands:")
	names := make([]string, 0, len(adminCmds))
	for n := range adminCmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-17s %s\n", n, adminCmds[n].summary)
	}
	fmt.Fprintln(os.Stderr, "\nflags (every command): -n namesrvs (default $NAMESRV_ADDR or 127.0.0.1:9876), -o table|json, -timeout")
}

func runAdmin(args []string) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		adminUsage()
		return 2
	}
	name, args := args[0], args[1:]
	cmd, ok := adminCmds[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "raftmq admin: unknown command %q\n", name)
		adminUsage()
		return 2
	}
	defNS := os.Getenv("NAMESRV_ADDR")
	if defNS == "" {
		defNS = "127.0.0.1:9876"
	}
	var f adminFlags
	fs := flag.NewFlagSet("admin "+name, flag.ContinueOnError)
	fs.StringVar(&f.namesrv, "n", defNS, "namesrv addresses, `;`-separated")
	fs.StringVar(&f.cluster, "c", "", "cluster name")
	fs.StringVar(&f.broker, "b", "", "broker group name (brokerName)")
	fs.StringVar(&f.topic, "t", "", "topic")
	fs.StringVar(&f.group, "g", "", "consumer group")
	fs.StringVar(&f.msgID, "i", "", "offsetMsgId")
	fs.StringVar(&f.key, "k", "", "message key")
	fs.StringVar(&f.target, "s", "", "target node id (dLegerSelfId) for transferLeader")
	fs.StringVar(&f.addr, "a", "", "broker address host:port")
	fs.StringVar(&f.output, "o", "table", "output: table or json")
	fs.IntVar(&f.readQ, "r", 8, "read queue count")
	fs.IntVar(&f.writeQ, "w", 8, "write queue count")
	fs.IntVar(&f.perm, "p", 6, "permission (2 write, 4 read, 6 both)")
	fs.IntVar(&f.maxNum, "m", 32, "max messages for queries")
	fs.BoolVar(&f.order, "order", false, "ordered topic")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "per-request timeout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if f.output != "table" && f.output != "json" {
		fmt.Fprintln(os.Stderr, "raftmq admin: -o must be table or json")
		return 2
	}
	c, err := admin.New(admin.ParseAddrs(f.namesrv), f.timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "raftmq admin:", err)
		return 2
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*f.timeout)
	defer cancel()
	if err := cmd.run(ctx, c, &f, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "raftmq admin %s: %v\n", name, err)
		return 1
	}
	return 0
}

func need(vals ...string) error {
	for i := 0; i+1 < len(vals); i += 2 {
		if vals[i+1] == "" {
			return fmt.Errorf("flag -%s is required", vals[i])
		}
	}
	return nil
}

// emit prints v as JSON, or calls table to print it as aligned columns.
func emit(f *adminFlags, out io.Writer, v any, table func(w *tabwriter.Writer)) error {
	if f.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	table(w)
	return w.Flush()
}

func cmdUpdateTopic(ctx context.Context, c *admin.Client, f *adminFlags, out io.Writer) error {
	if err := need("t", f.topic); err != nil {
		return err
	}
	if err := message.ValidateTopic(f.topic); err != nil {
		return err
	}
	tc := admin.TopicConfig{Topic: f.topic, ReadQueueNums: f.readQ, WriteQueueNums: f.writeQ, Perm: f.perm, Order: f.order}
	if err := c.CreateTopic(ctx, f.cluster, f.broker, tc); err != nil {
		return err
	}
	return emit(f, out, tc, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "create topic to %s success.\n", orAll(f.cluster, f.broker))
		fmt.Fprintf(w, "topic\t%s\nreadQueueNums\t%d\nwriteQueueNums\t%d\nperm\t%d\n", tc.Topic, tc.ReadQueueNums, tc.WriteQueueNums, tc.Perm)
	})
}

func orAll(cluster, broker string) string {
	switch {
	case broker != "":
		return "broker group " + broker
	case cluster != "":
		return "cluster " + cluster
	}
	return "all broker groups"
}

func cmdDeleteTopic(ctx context.Context, c *admin.Client, f *adminFlags, out io.Writer) error {
	if err := need("t", f.topic); err != nil {
		return err
	}
	if err := c.DeleteTopic(ctx, f.cluster, f.topic); err != nil {
		return err
	}
	return emit(f, out, map[string]string{"deleted": f.topic}, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "delete topic %s from %s success.\n", f.topic, orAll(f.cluster, ""))
	})
}

func cmdTopicList(ctx context.Context, c *admin.Client, f *adminFlags, out io.Writer) error {
	topics, err := c.TopicList(ctx)
	if err != nil {
		return err
	}
	return emit(f, out, topics, func(w *tabwriter.Writer) {
		for _, t := range topics {
			fmt.Fprintln(w, t)
		}
	})
}

func cmdTopicRoute(ctx context.Context, c *admin.Client, f *adminFlags, out io.Writer) error {
	if err := need("t", f.topic); err != nil {
		return err
	}
	r, err := c.TopicRoute(ctx, f.topic)
	if err != nil {
		return err
	}
	// Each group once; its members' write aliases are listed as its write
	// entry points, not as groups of their own.
	groups := r.Groups()
	view := struct {
		Groups []admin.RouteGroup `json:"groups"`
		Route  *admin.TopicRoute  `json:"route"`
	}{groups, r}
	return emit(f, out, view, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "#brokerName\t#read\t#write\t#perm\t#writeEntryPoints")
		for _, g := range groups {
			entries := make([]string, 0, len(g.WriteEntries))
			for _, e := range g.WriteEntries {
				entries = append(entries, e.Alias+"="+e.Addr)
			}
			if len(entries) == 0 {
				entries = append(entries, "-")
			}
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\n", g.BrokerName, g.ReadQueueNums, g.WriteQueueNums, g.Perm, strings.Join(entries, ","))
		}
		fmt.Fprintln(w, "\n#cluster\t#brokerName\t#brokerId\t#addr")
		for _, g := range groups {
			for _, m := range g.Members {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", g.Cluster, g.BrokerName, m.ID, m.Addr)
			}
		}
	})
}

func cmdTopicStatus(ctx context.Context, c *admin.Client, f *adminFlags, out io.Writer) error {
	if err := need("t", f.topic); err != nil {
		return err
	}
	st, err := c.TopicStatus(ctx, f.topic)
	if err != nil {
		return err
	}
	return emit(f, out, st, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "#brokerName\t#queueId\t#minOffset\t#maxOffset")
		for _, q := range st {
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\n", q.BrokerName, q.QueueID, q.MinOffset, q.MaxOffset)
		}
	})
}

func cmdClusterList(ctx context.Context, c *admin.Client, f *adminFlags, out io.Writer) error {
	ci, err := c.ClusterInfo(ctx)
	if err != nil {
		return err
	}
	type row struct {
		Cluster    string `json:"cluster"`
		BrokerName string `json:"brokerName"`
		BrokerID   int64  `json:"brokerId"`
		Addr       string `json:"addr"`
		Role       string `json:"role"`
		Version    string `json:"version,omitempty"`
	}
	var rows []row
	for _, bd := range ci.Groups(f.cluster) {
		members := bd.Members()
		for _, m := range members {
			r := row{Cluster: bd.Cluster, BrokerName: bd.BrokerName, BrokerID: m.ID, Addr: m.Addr, Role: "FOLLOWER"}
			if m.ID == 0 {
				r.Role = "LEADER"
				// The namesrv lists a live leader once; the address at 0 and at
				// a follower id is the last leader, kept at 0 during an election.
				for _, o := range members {
					if o.ID != 0 && o.Addr == m.Addr {
						r.Role = "LAST LEADER (election)"
					}
				}
			}
			if info, err := c.BrokerRuntimeInfo(ctx, m.Addr); err == nil {
				r.Version = info["brokerVersionDesc"]
			} else {
				r.Role += " (unreachable)"
			}
			rows = append(rows, r)
		}
	}
	return emit(f, out, rows, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "#cluster\t#brokerName\t#bid\t#addr\t#role\t#version")
		for _, r := range rows {
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", r.Cluster, r.BrokerName, r.BrokerID, r.Addr, r.Role, r.Version)
		}
	})
}

func cmdBrokerStatus(ctx context.Context, c *admin.Client, f *adminFlags, out io.Writer) error {
	if err := need("a", f.addr); err != nil {
		return err
	}
	info, err := c.BrokerRuntimeInfo(ctx, f.addr)
	if err != nil {
		return err
	}
	return emit(f, out, info, func(w *tabwriter.Writer) {
		keys := make([]string, 0, len(info))
		for k := range info {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s\t: %s\n", k, info[k])
		}
	})
}

func cmdConsumerProgress(ctx context.Context, c *admin.Client, f *adminFlags, out io.Writer) error {
	if err := need("g", f.group, "t", f.topic); err != nil {
		return err
	}
	ps, err := c.ConsumerProgress(ctx, f.group, f.topic)
	if err != nil {
		return err
	}
	return emit(f, out, ps, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "#topic\t#brokerName\t#qid\t#brokerOffset\t#consumerOffset\t#diff")
		var total int64
		for _, p := range ps {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\n", f.topic, p.BrokerName, p.QueueID, p.MaxOffset, p.ConsumerOffset, p.Lag)
			total += p.Lag
		}
		fmt.Fprintf(w, "\nDiff Total: %d\n", total)
	})
}

func printMessage(w io.Writer, m *message.Ext) {
	fmt.Fprintf(w, "OffsetID:\t%s\n", message.OffsetMsgID(m.StoreHost, m.CommitLogOffset))
	fmt.Fprintf(w, "Topic:\t%s\nTags:\t[%s]\nKeys:\t%v\nQueue ID:\t%d\nQueue Offset:\t%d\n", m.Topic, m.Tags(), m.Keys(), m.QueueID, m.QueueOffset)
	fmt.Fprintf(w, "CommitLog Offset:\t%d\nReconsume Times:\t%d\n", m.CommitLogOffset, m.ReconsumeTimes)
	fmt.Fprintf(w, "Born Timestamp:\t%s\nStore Timestamp:\t%s\nBorn Host:\t%s\nStore Host:\t%s\n",
		time.UnixMilli(m.BornTimestamp).Format(time.RFC3339Nano), time.UnixMilli(m.StoreTimestamp).Format(time.RFC3339Nano), m.BornHost, m.StoreHost)
	fmt.Fprintf(w, "Properties:\t%v\nBody Size:\t%d\n", m.Properties, len(m.Body))
}

func cmdQueryMsgByID(ctx context.Context, c *admin.Client, f *adminFlags, out io.Writer) error {
	if err := need("i", f.msgID); err != nil {
		return err
	}
	m, err := c.ViewMessage(ctx, f.msgID)
	if err != nil {
		return err
	}
	return emit(f, out, m, func(w *tabwriter.Writer) { printMessage(w, m) })
}

func cmdQueryMsgByKey(ctx context.Context, c *admin.Client, f *adminFlags, out io.Writer) error {
	if err := need("t", f.topic, "k", f.key); err != nil {
		return err
	}
	msgs, err := c.QueryMessageByKey(ctx, f.topic, f.key, f.maxNum, 0, time.Now().UnixMilli()+1)
	if err != nil {
		return err
	}
	return emit(f, out, msgs, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "#offsetMsgId\t#queueId\t#queueOffset\t#keys")
		for _, m := range msgs {
			fmt.Fprintf(w, "%s\t%d\t%d\t%v\n", message.OffsetMsgID(m.StoreHost, m.CommitLogOffset), m.QueueID, m.QueueOffset, m.Keys())
		}
	})
}

func cmdRaftStatus(ctx context.Context, c *admin.Client, f *adminFlags, out io.Writer) error {
	var sts []admin.RaftStatus
	if f.addr != "" {
		st, err := c.RaftStatus(ctx, f.addr)
		if err != nil {
			return err
		}
		sts = append(sts, *st)
	} else {
		if err := need("b", f.broker); err != nil {
			return err
		}
		var err error
		if sts, err = c.GroupRaftStatus(ctx, f.broker); err != nil {
			return err
		}
	}
	return emit(f, out, sts, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "#group\t#selfId\t#brokerAddr\t#role\t#term\t#leader\t#commitIndex\t#appliedIndex\t#lastIndex")
		for _, s := range sts {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d\t%d\n", s.Group, s.SelfID, s.BrokerAddr, s.Role, s.Term, s.LeaderID, s.CommitIndex, s.AppliedIndex, s.LastIndex)
		}
	})
}

func cmdTransferLeader(ctx context.Context, c *admin.Client, f *adminFlags, out io.Writer) error {
	if err := need("b", f.broker); err != nil {
		return err
	}
	if err := c.TransferLeader(ctx, f.broker, f.target); err != nil {
		return err
	}
	return emit(f, out, map[string]string{"group": f.broker, "target": f.target}, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "leadership of %s transferred (target %q).\n", f.broker, f.target)
	})
}
