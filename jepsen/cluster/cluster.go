// Package cluster brings up and tears down one jepsen run's docker-compose project:
// two namesrvs and a Raft group of 3 or 5 broker members from the project's FROM-scratch
// image, on a bridge network of its own.
//
// Invariants: every container, network and volume a run creates carries the label
// LabelProject, so Clean can remove leftovers of interrupted runs; no host port is
// published (the host reaches containers by their bridge IPs, brokers advertise their
// container IP as brokerIP1); the subnet is chosen free of every existing docker
// network, and the project name is unique per run.
package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// LabelProject marks every docker object of a jepsen run; its value is the project.
const LabelProject = "raftmq.jepsen.project"

// ProjectPrefix starts every jepsen project name.
const ProjectPrefix = "raftmqjepsen"

// BrokerPort and RaftPort are the ports inside every member container.
const (
	BrokerPort  = 10911
	RaftPort    = 40911
	NamesrvPort = 9876
)

// Config describes the cluster of one run.
type Config struct {
	Image         string // docker image with /raftmq
	Members       int    // 3 or 5
	Namesrvs      int    // default 2
	Dir           string // run directory: compose file and member configs go here
	FlushDiskType string // SYNC_FLUSH (default) or ASYNC_FLUSH
	// TmpfsSize, when set (e.g. "256m"), backs every member's /data with a tmpfs of that
	// size, so a disk-full nemesis can fill it without touching the host's disk.
	TmpfsSize string
	// SegmentSize is mappedFileSizeCommitLog (default 32 MiB).
	SegmentSize int64
	Logger      hclog.Logger
}

// Node is one container of the cluster.
type Node struct {
	Name      string // member id (n0...) or namesrv name (ns0...)
	Service   string
	Container string
	IP        string
	Volume    string // docker volume of /data (members only)
}

// Addr is the node's client address.
func (n Node) Addr() string {
	port := BrokerPort
	if strings.HasPrefix(n.Name, "ns") {
		port = NamesrvPort
	}
	return n.IP + ":" + strconv.Itoa(port)
}

// Cluster is a running compose project.
type Cluster struct {
	Project  string
	Subnet   netip.Prefix
	Gateway  string
	Members  []Node
	Namesrvs []Node
	cfg      Config
	file     string
	log      hclog.Logger
}

// NamesrvAddrs is the `;`-free list of namesrv addresses.
func (c *Cluster) NamesrvAddrs() []string {
	out := make([]string, len(c.Namesrvs))
	for i, n := range c.Namesrvs {
		out[i] = n.Addr()
	}
	return out
}

// Member returns the member with id name.
func (c *Cluster) Member(name string) (Node, bool) {
	for _, m := range c.Members {
		if m.Name == name {
			return m, true
		}
	}
	return Node{}, false
}

// MemberByAddr returns the member serving clients at addr.
func (c *Cluster) MemberByAddr(addr string) (Node, bool) {
	for _, m := range c.Members {
		if m.Addr() == addr {
			return m, true
		}
	}
	return Node{}, false
}

// NewProjectName returns a unique compose project name.
func NewProjectName() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%d%s", ProjectPrefix, time.Now().Unix()%1000000, hex.EncodeToString(b[:]))
}

// Up writes the compose project into cfg.Dir and starts it. On error everything it
// created is removed again.
func Up(ctx context.Context, project string, cfg Config) (*Cluster, error) {
	if cfg.Members != 3 && cfg.Members != 5 {
		return nil, fmt.Errorf("members must be 3 or 5, not %d", cfg.Members)
	}
	if cfg.Namesrvs <= 0 {
		cfg.Namesrvs = 2
	}
	if cfg.FlushDiskType == "" {
		cfg.FlushDiskType = "SYNC_FLUSH"
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = dir
	c := &Cluster{Project: project, cfg: cfg, log: cfg.Logger, file: filepath.Join(dir, "docker-compose.json")}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		subnet, err := freeSubnet(ctx)
		if err != nil {
			return nil, err
		}
		c.layout(subnet)
		if err := c.writeFiles(); err != nil {
			return nil, err
		}
		out, err := c.compose(ctx, "up", "-d", "--no-color")
		if err == nil {
			return c, nil
		}
		lastErr = fmt.Errorf("docker-compose up: %w: %s", err, out)
		c.log.Warn("compose up failed, removing and retrying", "subnet", subnet, "err", lastErr)
		_ = c.Down(context.WithoutCancel(ctx))
		if !strings.Contains(out, "overlap") && !strings.Contains(out, "Pool") {
			break
		}
	}
	return nil, lastErr
}

func (c *Cluster) layout(subnet netip.Prefix) {
	c.Subnet = subnet
	base := subnet.Addr().As4()
	ip := func(last byte) string { b := base; b[3] = last; return netip.AddrFrom4(b).String() }
	c.Gateway = ip(1)
	c.Namesrvs, c.Members = nil, nil
	for i := 0; i < c.cfg.Namesrvs; i++ {
		name := fmt.Sprintf("ns%d", i)
		c.Namesrvs = append(c.Namesrvs, Node{Name: name, Service: name, Container: c.Project + "-" + name, IP: ip(byte(10 + i))})
	}
	for i := 0; i < c.cfg.Members; i++ {
		name := fmt.Sprintf("n%d", i)
		c.Members = append(c.Members, Node{Name: name, Service: name, Container: c.Project + "-" + name, IP: ip(byte(20 + i)),
			Volume: c.Project + "_" + name + "-data"})
	}
}

// BrokerConf is the broker.conf of member m (RocketMQ keys).
func (c *Cluster) BrokerConf(m Node) string {
	var peers, ns []string
	for _, p := range c.Members {
		peers = append(peers, fmt.Sprintf("%s-%s:%d", p.Name, p.IP, RaftPort))
	}
	for _, n := range c.Namesrvs {
		ns = append(ns, n.Addr())
	}
	return strings.Join([]string{
		"# generated by jepsen for project " + c.Project,
		"brokerClusterName=JepsenCluster",
		"brokerName=broker-a",
		"brokerIP1=" + m.IP,
		"listenPort=" + strconv.Itoa(BrokerPort),
		"namesrvAddr=" + strings.Join(ns, ";"),
		"storePathRootDir=/data",
		"flushDiskType=" + c.cfg.FlushDiskType,
		"autoCreateTopicEnable=true",
		"defaultTopicQueueNums=4",
		"slaveReadEnable=true",
		"mappedFileSizeCommitLog=" + strconv.FormatInt(c.segmentSize(), 10),
		"registerNameServerPeriod=5000",
		"enableDLegerCommitLog=true",
		"dLegerGroup=broker-a",
		"dLegerPeers=" + strings.Join(peers, ";"),
		"dLegerSelfId=" + m.Name,
		"",
	}, "\n")
}

func (c *Cluster) segmentSize() int64 {
	if c.cfg.SegmentSize > 0 {
		return c.cfg.SegmentSize
	}
	return 32 << 20
}

func (c *Cluster) writeFiles() error {
	confDir := filepath.Join(c.cfg.Dir, "conf")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return err
	}
	labels := map[string]string{LabelProject: c.Project}
	services := map[string]any{}
	volumes := map[string]any{}
	for _, n := range c.Namesrvs {
		services[n.Service] = map[string]any{
			"image": c.cfg.Image, "container_name": n.Container, "restart": "no", "labels": labels,
			"command":  []string{"namesrv", "-listen", fmt.Sprintf("0.0.0.0:%d", NamesrvPort)},
			"networks": map[string]any{"net": map[string]string{"ipv4_address": n.IP}},
		}
	}
	var nsNames []string
	for _, n := range c.Namesrvs {
		nsNames = append(nsNames, n.Service)
	}
	for _, m := range c.Members {
		conf := filepath.Join(confDir, m.Name+".conf")
		if err := os.WriteFile(conf, []byte(c.BrokerConf(m)), 0o644); err != nil {
			return err
		}
		services[m.Service] = map[string]any{
			"image": c.cfg.Image, "container_name": m.Container, "restart": "no", "labels": labels,
			"command":    []string{"broker", "-c", "/etc/raftmq/broker.conf"},
			"volumes":    []string{conf + ":/etc/raftmq/broker.conf:ro", m.Name + "-data:/data"},
			"depends_on": nsNames,
			"networks":   map[string]any{"net": map[string]string{"ipv4_address": m.IP}},
		}
		v := map[string]any{"labels": labels}
		if c.cfg.TmpfsSize != "" {
			v["driver_opts"] = map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=" + c.cfg.TmpfsSize}
		}
		volumes[m.Name+"-data"] = v
	}
	doc := map[string]any{
		"version":  "3.8",
		"services": services,
		"volumes":  volumes,
		"networks": map[string]any{"net": map[string]any{
			"labels": labels,
			"ipam":   map[string]any{"config": []map[string]string{{"subnet": c.Subnet.String()}}},
		}},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(c.file, b, 0o644)
}

func (c *Cluster) compose(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"-p", c.Project, "-f", c.file}, args...)
	return Run(ctx, "docker-compose", full...)
}

// Down removes the project's containers, network and volumes; it also removes by
// label whatever compose did not (e.g. after a half-failed up).
func (c *Cluster) Down(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// Paused containers cannot be removed gracefully; unpause first.
	for _, m := range c.Members {
		_, _ = Docker(ctx, "unpause", m.Container)
	}
	_, err := c.compose(ctx, "down", "-v", "--remove-orphans", "-t", "1")
	if cerr := cleanProject(ctx, c.Project); err == nil {
		err = cerr
	}
	return err
}

// Docker runs the docker CLI and returns its combined output.
func Docker(ctx context.Context, args ...string) (string, error) { return Run(ctx, "docker", args...) }

// Run runs a host command and returns its combined, trimmed output.
func Run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// Pid is the host pid of a running container's init process.
func Pid(ctx context.Context, container string) (int, error) {
	out, err := Docker(ctx, "inspect", "-f", "{{.State.Pid}}", container)
	if err != nil {
		return 0, fmt.Errorf("inspect %s: %w: %s", container, err, out)
	}
	pid, err := strconv.Atoi(out)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("container %s is not running (pid %q)", container, out)
	}
	return pid, nil
}

// VolumeDir is the host directory of a docker volume.
func VolumeDir(ctx context.Context, volume string) (string, error) {
	out, err := Docker(ctx, "volume", "inspect", "-f", "{{.Mountpoint}}", volume)
	if err != nil || out == "" {
		return "", fmt.Errorf("inspect volume %s: %v: %s", volume, err, out)
	}
	return out, nil
}

// SaveLogs writes each container's log to dir/<name>.log.
func (c *Cluster) SaveLogs(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, n := range append(append([]Node(nil), c.Namesrvs...), c.Members...) {
		out, err := Docker(ctx, "logs", "-t", n.Container)
		if err != nil {
			errs = append(errs, fmt.Errorf("logs of %s: %w", n.Container, err))
		}
		if werr := os.WriteFile(filepath.Join(dir, n.Name+".log"), []byte(out+"\n"), 0o644); werr != nil {
			errs = append(errs, werr)
		}
	}
	return errors.Join(errs...)
}

// Clean removes every docker object labelled as a jepsen run's (or named with its
// prefix), returning the projects it found.
func Clean(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	for _, kind := range [][]string{
		{"ps", "-a", "--filter", "label=" + LabelProject, "--format", `{{.Label "` + LabelProject + `"}}`},
		{"network", "ls", "--filter", "label=" + LabelProject, "--format", `{{.Label "` + LabelProject + `"}}`},
		{"volume", "ls", "--filter", "label=" + LabelProject, "--format", `{{.Label "` + LabelProject + `"}}`},
		{"ps", "-a", "--filter", "name=" + ProjectPrefix, "--format", "{{.Names}}"},
		{"network", "ls", "--filter", "name=" + ProjectPrefix, "--format", "{{.Name}}"},
		{"volume", "ls", "--filter", "name=" + ProjectPrefix, "--format", "{{.Name}}"},
	} {
		out, err := Docker(ctx, kind...)
		if err != nil {
			return nil, fmt.Errorf("docker %s: %w: %s", strings.Join(kind, " "), err, out)
		}
		for _, line := range strings.Fields(out) {
			p := line
			if i := strings.IndexAny(p, "-_"); i > 0 && strings.HasPrefix(p, ProjectPrefix) {
				p = p[:i]
			}
			if strings.HasPrefix(p, ProjectPrefix) {
				seen[p] = true
			}
		}
	}
	var projects []string
	var errs []error
	for p := range seen {
		projects = append(projects, p)
		if err := cleanProject(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	return projects, errors.Join(errs...)
}

// cleanProject force-removes one project's containers, networks and volumes.
func cleanProject(ctx context.Context, project string) error {
	var errs []error
	list := func(args ...string) []string {
		out, err := Docker(ctx, args...)
		if err != nil {
			errs = append(errs, fmt.Errorf("docker %v: %w: %s", args, err, out))
			return nil
		}
		return strings.Fields(out)
	}
	label := "label=" + LabelProject + "=" + project
	if ids := list("ps", "-aq", "--filter", label); len(ids) > 0 {
		for _, id := range ids {
			_, _ = Docker(ctx, "unpause", id)
		}
		if out, err := Docker(ctx, append([]string{"rm", "-f", "-v"}, ids...)...); err != nil {
			errs = append(errs, fmt.Errorf("rm containers: %w: %s", err, out))
		}
	}
	if ids := list("network", "ls", "-q", "--filter", label); len(ids) > 0 {
		if out, err := Docker(ctx, append([]string{"network", "rm"}, ids...)...); err != nil {
			errs = append(errs, fmt.Errorf("rm networks: %w: %s", err, out))
		}
	}
	if ids := list("volume", "ls", "-q", "--filter", label); len(ids) > 0 {
		if out, err := Docker(ctx, append([]string{"volume", "rm", "-f"}, ids...)...); err != nil {
			errs = append(errs, fmt.Errorf("rm volumes: %w: %s", err, out))
		}
	}
	return errors.Join(errs...)
}

// freeSubnet picks a /24 in 10.251.0.0/16 that no docker network uses.
func freeSubnet(ctx context.Context) (netip.Prefix, error) {
	ids, err := Docker(ctx, "network", "ls", "-q")
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("docker network ls: %w: %s", err, ids)
	}
	var used []netip.Prefix
	if f := strings.Fields(ids); len(f) > 0 {
		out, err := Docker(ctx, append([]string{"network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"}, f...)...)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("docker network inspect: %w: %s", err, out)
		}
		for _, s := range strings.Fields(out) {
			if p, err := netip.ParsePrefix(s); err == nil {
				used = append(used, p)
			}
		}
	}
	var b [1]byte
	_, _ = rand.Read(b[:])
	for i := 0; i < 256; i++ {
		k := byte(int(b[0])+i) % 255
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 251, k, 0}), 24)
		free := true
		for _, u := range used {
			if u.Overlaps(p) {
				free = false
				break
			}
		}
		if free {
			return p, nil
		}
	}
	return netip.Prefix{}, errors.New("no free /24 in 10.251.0.0/16")
}
