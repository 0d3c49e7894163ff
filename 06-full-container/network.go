package main

// The container's network, Docker's default way (`--net bridge`): a bridge
// shared by the runtime root's containers, a veth pair per container, an
// address from a small allocator, NAT rules for the way out and for
// published ports. The pieces are in network/; this file is where `run`
// uses them: the address is reserved while the container is created (its
// /etc/hosts needs it), the cable is plugged in right after the clone and
// before the first process is told to go on, and everything is unplugged
// when the container is destroyed (or reaped after a runtime's SIGKILL).

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/container-internals/workshop/06-full-container/network"
	"github.com/container-internals/workshop/internal/stage"
	"github.com/container-internals/workshop/internal/timing"
)

// NetState is a bridge container's network, as inspect shows it.
type NetState struct {
	Mode      string `json:"mode"` // bridge
	Bridge    string `json:"bridge"`
	IPAddress string `json:"ipAddress"` // 172.29.0.2/24
	Gateway   string `json:"gateway"`
	network.Attachment
	Ports []network.Port `json:"ports,omitempty"`
}

// networkDir is where a runtime root keeps its network: beside the
// containers' state (a reboot removes the bridge, and /run with it).
func (d Dirs) networkDir() string {
	if d == defaultDirs("") {
		return "/run/workshop-network"
	}
	return filepath.Join(filepath.Dir(d.State), "network")
}

func (rt *Runtime) network() *network.Manager {
	m := &network.Manager{Dir: rt.dirs.networkDir()}
	if rt.n != nil && !rt.n.Quiet() {
		m.Trace = rt.n.Trace()
	} else {
		// For `make bench`'s breakdown (WORKSHOP_TIMING=1): a mark as each
		// change begins.
		m.Trace = func(call, _ string) {
			if call != "" {
				timing.Mark("network: " + call)
			}
		}
	}
	return m
}

// parseNet reads --net and -p.
func parseNet(c *cli.Context, o *runOptions) error {
	net := c.String("net")
	if (rootless.On || os.Geteuid() != 0) && !c.IsSet("net") {
		net = "none" // rootless: the bridge needs root (rootless.go)
	}
	switch net {
	case "bridge":
		o.bridge = true
	case "none":
		o.netNone = true
	case "host":
	default:
		return stage.Fail("--net %q: use bridge (the default: an address on the workshop bridge), none (only lo) or host", c.String("net"))
	}
	for _, s := range c.StringSlice("publish") {
		p, err := network.ParsePort(s)
		if err != nil {
			return stage.Fail("%v", err)
		}
		for _, q := range o.ports {
			if q.HostPort == p.HostPort && q.Proto == p.Proto {
				return stage.Fail("-p %s: host port %d/%s is published twice", s, p.HostPort, p.Proto)
			}
		}
		o.ports = append(o.ports, p)
	}
	if len(o.ports) > 0 && !o.bridge {
		return stage.Fail("-p needs --net bridge: with --net %s there is no container address to forward the port to", c.String("net"))
	}
	return nil
}

// reserveNetwork makes the root's network on first use, and reserves the
// container's address. Called by create, before the layers (whose
// /etc/hosts names the address).
func (rt *Runtime) reserveNetwork(ctr *Container, ports []network.Port) error {
	n, st := rt.n, ctr.State
	m := rt.network()
	unlock, err := m.Lock()
	if err != nil {
		return stage.Fail("cannot lock %s: %v", m.Dir, err)
	}
	defer unlock()
	n.Step("Reserve an address on the bridge network (made on first use, kept until `network prune`)")
	cfg, err := m.Ensure("", "", nil)
	if err != nil {
		return stage.Fail("the bridge network: %v (or run with --net none)", err)
	}
	m.Sweep(cfg, rt.containerExists)
	for _, p := range ports {
		if owner := rt.portInUse(m, p); owner != "" {
			return stage.Fail("-p %d/%s: container %s publishes that port already", p.HostPort, p.Proto, owner)
		}
	}
	ip, err := m.Allocate(cfg, st.ID)
	if err != nil {
		return stage.Fail("%v", err)
	}
	st.Network = &NetState{Mode: "bridge", Bridge: cfg.Bridge, IPAddress: ip.String(), Gateway: cfg.Gateway, Ports: ports}
	n.Say("%s: bridge %s, subnet %s, gateway %s", m.Dir, cfg.Bridge, cfg.Subnet, cfg.Gateway)
	n.Say("address %s: the file addresses/%s, made with O_EXCL under the network's lock", ip, ip.IP)
	if len(ports) > 0 {
		if on, err := network.IPForward(); err == nil && !on {
			fmt.Fprintf(os.Stderr, "%s: note: -p publishes to this host only: net.ipv4.ip_forward is 0, so other machines cannot reach the port (the host's setting, never changed here: `sudo sysctl -w net.ipv4.ip_forward=1` allows it)\n", name)
		}
	}
	return nil
}

// containerExists: a container with state on disk that has not stopped.
func (rt *Runtime) containerExists(id string) bool {
	st, err := rt.dirs.load(id)
	return err == nil && st.Status != Stopped
}

func (rt *Runtime) portInUse(m *network.Manager, p network.Port) string {
	all, _ := m.Allocations()
	for _, id := range all {
		st, err := rt.dirs.load(id)
		if err != nil || st.Network == nil {
			continue
		}
		for _, q := range st.Network.Ports {
			if q.HostPort == p.HostPort && q.Proto == p.Proto {
				return st.Name
			}
		}
	}
	return ""
}

// plugNetwork connects a freshly cloned container to the bridge, from the
// host, before its first process goes on.
func (rt *Runtime) plugNetwork(ctr *Container) error {
	n, st := rt.n, ctr.State
	ns := st.Network
	n.Step("Connect the container to the bridge %s: a veth pair, eth0 inside, its address and route", ns.Bridge)
	m := rt.network()
	unlock, err := m.Lock()
	if err != nil {
		return stage.Fail("cannot lock %s: %v", m.Dir, err)
	}
	defer unlock()
	cfg, err := m.Ensure("", "", nil)
	if err != nil {
		return stage.Fail("the bridge network: %v", err)
	}
	ip, subnet, err := net.ParseCIDR(ns.IPAddress)
	if err != nil {
		return stage.Fail("the container's address %q: %v", ns.IPAddress, err)
	}
	att, err := m.Plug(cfg, st.ID, st.Pid, &net.IPNet{IP: ip.To4(), Mask: subnet.Mask}, ns.Ports)
	if err != nil {
		return stage.Fail("connecting the container to %s: %v", ns.Bridge, err)
	}
	ns.Attachment = att
	if on, err := network.IPForward(); err == nil && !on {
		n.Note("net.ipv4.ip_forward is 0 here: the container reaches this host and its neighbours on %s, not other machines (`make doctor` says why)", ns.Bridge)
	}
	return nil
}

// unplugNetwork removes a container's cable, rules and address, whatever
// its state file says (a runtime killed before saving it): they are found
// by the container's ID.
func (rt *Runtime) unplugNetwork(st *State) {
	m := rt.network()
	cfg, err := m.Config()
	if err != nil || cfg == nil {
		return
	}
	unlock, err := m.Lock()
	if err != nil {
		return
	}
	defer unlock()
	all, _ := m.Allocations()
	held := false
	for _, id := range all {
		held = held || id == st.ID
	}
	if !held && st.Network == nil {
		return
	}
	m.Unplug(cfg, st.ID, !alive(st.Pid, st.PidStart))
	rt.refreshHosts(m, st.ID)
}

// writeNetworkFiles writes the container's /etc/hosts in its init layer,
// and adds it to its neighbours'.
func (rt *Runtime) writeNetworkFiles(ctr *Container) {
	if ctr.State.Network == nil {
		return
	}
	m := rt.network()
	unlock, err := m.Lock()
	if err != nil {
		return
	}
	defer unlock()
	rt.refreshHosts(m, "")
	st := ctr.State
	rt.n.Say("/etc/hosts: %s %s, then the other containers on %s, and it is added to theirs",
		strings.Split(st.Network.IPAddress, "/")[0], hostsNames(st.Hostname, st.Name), st.Network.Bridge)
}

// refreshHosts rewrites the /etc/hosts of every container on the network
// (but gone, which is leaving): its own name and address, then its
// neighbours'. Docker's default bridge has no names at all (its embedded
// DNS serves user-made networks only); this is what its `--link` did. Each
// file is rewritten in place, in the init layer below the container's
// overlay: the container sees the new contents at its next read, unless it
// changed its own copy (then the copy in its read-write layer wins).
func (rt *Runtime) refreshHosts(m *network.Manager, gone string) {
	all, _ := m.Allocations()
	type peer struct{ ip, hostname, name, init string }
	var peers []peer
	for ip, id := range all {
		if id == gone {
			continue
		}
		st, err := rt.dirs.load(id)
		if err != nil {
			continue
		}
		root, err := rt.store.ContainerRoot(id)
		if err != nil {
			continue // its layers are not made yet: it gets its file when they are
		}
		peers = append(peers, peer{ip, st.Hostname, st.Name, root.Init})
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].ip < peers[j].ip })
	for _, me := range peers {
		path := filepath.Join(me.init, "etc", "hosts")
		old, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var b strings.Builder
		for _, l := range strings.Split(string(old), "\n") {
			if l == hostsMarker {
				break
			}
			if l == "" || strings.HasPrefix(l, "127.0.1.1\t") {
				continue
			}
			b.WriteString(l + "\n")
		}
		b.WriteString(hostsMarker + "\n")
		names := func(p peer) string { return hostsNames(p.hostname, p.name) }
		fmt.Fprintf(&b, "%s\t%s\n", me.ip, names(me))
		for _, p := range peers {
			if p != me {
				fmt.Fprintf(&b, "%s\t%s\n", p.ip, names(p))
			}
		}
		// In place (same inode): the overlay reads it through.
		_ = os.WriteFile(path, []byte(b.String()), 0o644)
	}
}

func hostsNames(hostname, name string) string {
	if name == hostname {
		return hostname
	}
	return hostname + " " + name
}

const hostsMarker = "# this container, then its neighbours on the bridge"

func networkCommand() *cli.Command {
	explain := &cli.BoolFlag{Name: "explain", Usage: "narrate every change as the `ip`/`nft` command that makes it"}
	return &cli.Command{
		Name:  "network",
		Usage: "the bridge network of --net bridge: create, ls, prune",
		Subcommands: []*cli.Command{
			{Name: "create", Usage: "make the network now (otherwise the first `run` makes it)",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "bridge", Usage: "the bridge's `NAME` (default: the first free of workshop0, workshop1 ...)"},
					&cli.StringFlag{Name: "subnet", Usage: "a private IPv4 `CIDR` (default: the first free of " + network.DefaultSubnet + ", 172.29.1.0/24 ...)"},
					explain,
				},
				Action: func(c *cli.Context) error {
					rt, err := openRuntime(c, c.Bool("explain"))
					if err != nil {
						return err
					}
					m := rt.network()
					unlock, err := m.Lock()
					if err != nil {
						return err
					}
					defer unlock()
					cfg, err := m.Ensure(c.String("bridge"), c.String("subnet"), nil)
					if err != nil {
						return stage.Fail("%v", err)
					}
					fmt.Printf("%s %s\n", cfg.Bridge, cfg.Subnet)
					return nil
				}},
			{Name: "ls", Usage: "the network and the containers on it", Action: networkLs},
			{Name: "prune", Usage: "remove the network (its bridge and rules) once no container uses it; and networks whose runtime root was removed",
				Flags: []cli.Flag{explain}, Action: networkPrune},
		},
	}
}

func networkLs(c *cli.Context) error {
	rt, err := runtimeFor(c)
	if err != nil {
		return err
	}
	m := rt.network()
	cfg, err := m.Config()
	if err != nil || cfg == nil {
		return err
	}
	all, _ := m.Allocations()
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(w, "BRIDGE\tSUBNET\tGATEWAY\tCONTAINERS")
	fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", cfg.Bridge, cfg.Subnet, cfg.Gateway, len(all))
	return w.Flush()
}

func networkPrune(c *cli.Context) error {
	rt, err := openRuntime(c, c.Bool("explain"))
	if err != nil {
		return err
	}
	m := rt.network()
	if cfg, err := m.Config(); err == nil && cfg != nil {
		unlock, err := m.Lock()
		if err != nil {
			return err
		}
		defer unlock()
		m.Sweep(cfg, rt.containerExists)
		if all, _ := m.Allocations(); len(all) > 0 {
			return stage.Fail("%d container(s) still use %s: stop them first (see `ps`)", len(all), cfg.Bridge)
		}
		rt.n.Step("Remove the network %s: its rules, then the bridge", cfg.Bridge)
		m.Down(cfg)
		os.RemoveAll(m.Dir)
		fmt.Printf("removed %s (%s)\n", cfg.Bridge, cfg.Subnet)
	}
	for _, o := range network.Orphans(m.Trace) {
		fmt.Printf("removed %s (its runtime root %s is gone)\n", o.Bridge, o.Dir)
	}
	return nil
}

// psPorts is `ps`'s PORTS column.
func psPorts(st *State) string {
	if st.Network == nil {
		return ""
	}
	var out []string
	for _, p := range st.Network.Ports {
		out = append(out, p.String())
	}
	return strings.Join(out, ", ")
}
