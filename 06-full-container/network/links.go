package network

// Links, addresses and routes: the bridge, and the veth pair that plugs a
// container into it.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/trace"
)

// Attachment is what Plug made for one container.
type Attachment struct {
	HostVeth      string `json:"hostVeth"`      // the cable's end on the host, in the bridge
	ContainerVeth string `json:"containerVeth"` // its other end, inside: eth0
	MAC           string `json:"mac"`
}

// VethName names the host's end of a container's cable after its ID, so
// that a runtime killed half way leaves nothing a later one cannot find.
// (The other end is eth0, in the container's namespace.)
func VethName(id string) string {
	short := id
	if len(short) > 11 {
		short = short[:11]
	}
	return "veth" + short
}

// retry repeats a netlink dump that the kernel interrupted because the
// list changed under it (another runtime adding a link).
func retry[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for i := 0; i < 10; i++ {
		if v, err = f(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// hostRoutes are the destinations of the host's IPv4 routes, in every
// table, but the default route (which "overlaps" everything).
func hostRoutes() ([]*net.IPNet, error) {
	rs, err := retry(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("listing the host's routes: %v", err)
	}
	var out []*net.IPNet
	for _, r := range rs {
		if r.Dst == nil {
			continue
		}
		if ones, _ := r.Dst.Mask.Size(); ones == 0 {
			continue
		}
		out = append(out, r.Dst)
	}
	return out, nil
}

// linkAlias says whether a link exists, and its alias.
func linkAlias(name string) (string, bool, error) {
	l, err := netlink.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return l.Attrs().Alias, true, nil
}

// NeedsUp says whether the bridge or its rules are missing or incomplete.
func (m *Manager) NeedsUp(cfg *Config) bool {
	l, err := netlink.LinkByName(cfg.Bridge)
	if err != nil || l.Attrs().Flags&net.FlagUp == 0 || l.Attrs().Alias != m.owner() {
		return true
	}
	addrs, err := retry(func() ([]netlink.Addr, error) { return netlink.AddrList(l, netlink.FAMILY_V4) })
	if err != nil || !hasAddr(addrs, cfg) {
		return true
	}
	ok, err := tableComplete(cfg)
	return err != nil || !ok
}

func hasAddr(addrs []netlink.Addr, cfg *Config) bool {
	for _, a := range addrs {
		if a.IPNet.IP.String() == cfg.Gateway {
			return true
		}
	}
	return false
}

// Up makes the bridge and its rules, or completes them: each piece that
// is missing is made, so that a runtime killed half way through leaves
// nothing the next one does not finish. If the bridge cannot be made
// whole, it is removed: never left half-configured.
func (m *Manager) Up(cfg *Config) (err error) {
	_, subnet, err := net.ParseCIDR(cfg.Subnet)
	if err != nil {
		return err
	}
	gw := &net.IPNet{IP: net.ParseIP(cfg.Gateway).To4(), Mask: subnet.Mask}
	ones, _ := subnet.Mask.Size()
	br, err := netlink.LinkByName(cfg.Bridge)
	made := false
	if err != nil {
		m.trace("ip link add %s type bridge", cfg.Bridge)
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: cfg.Bridge}}); err != nil {
			return fmt.Errorf("ip link add %s type bridge: %v", cfg.Bridge, err)
		}
		made = true
		if br, err = netlink.LinkByName(cfg.Bridge); err != nil {
			return err
		}
	} else if br.Type() != "bridge" {
		return fmt.Errorf("%s exists and is a %s, not a bridge: `ip link del %s`, or choose another --bridge", cfg.Bridge, br.Type(), cfg.Bridge)
	} else if a := br.Attrs().Alias; a != "" && a != m.owner() {
		return fmt.Errorf("the bridge %s belongs to another runtime root (%q): `network prune` there, or choose another --bridge", cfg.Bridge, a)
	}
	defer func() {
		if err != nil && made {
			m.trace("ip link del %s   # it could not be made whole", cfg.Bridge)
			_ = netlink.LinkDel(br)
		}
	}()
	if br.Attrs().Alias != m.owner() {
		m.trace("ip link set %s alias %q", cfg.Bridge, m.owner())
		if err := netlink.LinkSetAlias(br, m.owner()); err != nil {
			return fmt.Errorf("naming the bridge's owner: %v", err)
		}
	}
	addrs, err := retry(func() ([]netlink.Addr, error) { return netlink.AddrList(br, netlink.FAMILY_V4) })
	if err != nil {
		return err
	}
	if !hasAddr(addrs, cfg) {
		m.trace("ip addr add %s/%d dev %s   # the containers' gateway", cfg.Gateway, ones, cfg.Bridge)
		if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: gw}); err != nil {
			return fmt.Errorf("ip addr add %s dev %s: %v", gw, cfg.Bridge, err)
		}
	}
	// The host's own connections to a published port on 127.0.0.1 leave
	// through the bridge with 127.0.0.1 as their source once DNAT sent them
	// there. The kernel drops such packets ("martians") unless the outgoing
	// interface allows loopback addresses: only this bridge does, and the
	// guard chain (nat.go) drops what a container sends to 127.0.0.0/8.
	rl := "/proc/sys/net/ipv4/conf/" + cfg.Bridge + "/route_localnet"
	if b, _ := os.ReadFile(rl); strings.TrimSpace(string(b)) != "1" {
		m.trace("sysctl -w net.ipv4.conf.%s.route_localnet=1   # this bridge only, never `all`", cfg.Bridge)
		if err := os.WriteFile(rl, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("route_localnet on %s: %v", cfg.Bridge, err)
		}
	}
	if br.Attrs().Flags&net.FlagUp == 0 {
		m.trace("ip link set %s up", cfg.Bridge)
		if err := netlink.LinkSetUp(br); err != nil {
			return fmt.Errorf("ip link set %s up: %v", cfg.Bridge, err)
		}
	}
	return m.tableUp(cfg)
}

// Down removes the network's rules and its bridge, and forgets it.
func (m *Manager) Down(cfg *Config) {
	m.tableDown(cfg)
	if l, err := netlink.LinkByName(cfg.Bridge); err == nil {
		m.trace("ip link del %s", cfg.Bridge)
		_ = netlink.LinkDel(l)
	}
	os.Remove(m.configPath())
}

// Plug connects the container whose first process is pid to the bridge:
// a veth pair, one end in the bridge, the other moved into the container's
// network namespace and named eth0, with its address, up, and a default
// route through the bridge; then its published ports. On failure it
// removes what it made.
func (m *Manager) Plug(cfg *Config, id string, pid int, ip *net.IPNet, ports []Port) (att Attachment, err error) {
	hostEnd := VethName(id)
	br, err := netlink.LinkByName(cfg.Bridge)
	if err != nil {
		return att, fmt.Errorf("the bridge %s: %v", cfg.Bridge, err)
	}
	defer func() {
		if err != nil {
			m.Unplug(cfg, id, false)
		}
	}()
	// The cable is made with its far end already in the container's
	// namespace, named eth0: the same as making both ends here and moving
	// one (`ip link set ... netns PID`, then renaming it), without the move,
	// for which the kernel waits for an RCU grace period (20-40 ms here).
	mac := MAC(ip.IP)
	m.trace("ip link add %s type veth peer name eth0 address %s netns %d   # a cable: its far end in the container's namespace", hostEnd, mac, pid)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostEnd}, PeerName: "eth0", PeerHardwareAddr: mac, PeerNamespace: netlink.NsPid(pid)}
	if err := netlink.LinkAdd(veth); err != nil {
		return att, fmt.Errorf("ip link add %s type veth peer name eth0 netns %d: %v", hostEnd, pid, err)
	}
	host, err := netlink.LinkByName(hostEnd)
	if err != nil {
		return att, err
	}
	m.trace("ip link set %s master %s   # plug this end into the switch", hostEnd, cfg.Bridge)
	if err := netlink.LinkSetMaster(host, br); err != nil {
		return att, fmt.Errorf("ip link set %s master %s: %v", hostEnd, cfg.Bridge, err)
	}
	m.trace("ip link set %s up", hostEnd)
	if err := netlink.LinkSetUp(host); err != nil {
		return att, fmt.Errorf("ip link set %s up: %v", hostEnd, err)
	}
	// From here on, a handle on the container's namespace: the runtime
	// configures it from outside, and nothing privileged runs inside.
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return att, fmt.Errorf("opening /proc/%d/ns/net: %v", pid, err)
	}
	defer ns.Close()
	// What `nsenter -n` does, for one socket: this thread enters the
	// container's network namespace, opens a netlink socket there, and
	// comes back; the socket stays bound to the container's namespace.
	m.trace("setns(open(\"/proc/%d/ns/net\"), CLONE_NEWNET); socket(AF_NETLINK, ...); setns(<the host's>, CLONE_NEWNET)   # a netlink socket inside the container's namespace, for the `nsenter -t %d -n ip` lines below", pid, pid)
	// NETLINK_ROUTE only: by default the library opens a socket of every
	// family it knows, and a kernel without xfrm (the VM's) refuses one.
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return att, fmt.Errorf("netlink in the container's namespace: %v", err)
	}
	defer h.Close()
	in := fmt.Sprintf("nsenter -t %d -n ", pid)
	inside, err := h.LinkByName("eth0")
	if err != nil {
		return att, err
	}
	ones, _ := ip.Mask.Size()
	m.trace("%sip addr add %s/%d dev eth0", in, ip.IP, ones)
	if err := h.AddrAdd(inside, &netlink.Addr{IPNet: ip}); err != nil {
		return att, fmt.Errorf("ip addr add %s dev eth0: %v", ip, err)
	}
	m.trace("%sip link set eth0 up", in)
	if err := h.LinkSetUp(inside); err != nil {
		return att, fmt.Errorf("ip link set eth0 up: %v", err)
	}
	m.trace("%sip route add default via %s   # everything else goes to the bridge", in, cfg.Gateway)
	if err := h.RouteAdd(&netlink.Route{LinkIndex: inside.Attrs().Index, Gw: net.ParseIP(cfg.Gateway)}); err != nil {
		return att, fmt.Errorf("ip route add default via %s: %v", cfg.Gateway, err)
	}
	if len(ports) > 0 {
		if err := m.publish(cfg, id, ip.IP, ports); err != nil {
			return att, err
		}
	}
	return Attachment{HostVeth: hostEnd, ContainerVeth: "eth0", MAC: mac.String()}, nil
}

// Unplug removes what Plug made for the container id, and gives its
// address back. Whatever is already gone is skipped: it is safe to call
// for a container that never had a network, or twice.
func (m *Manager) Unplug(cfg *Config, id string, namespaceGone bool) {
	hostEnd := VethName(id)
	if l, err := netlink.LinkByName(hostEnd); err == nil {
		if namespaceGone {
			// Its far end is in the container's namespace, which the kernel
			// is taking apart now that no process is left in it: the pair
			// goes with it. (Deleting it here would make the runtime wait
			// for the kernel, 20 ms here, for nothing.)
			m.trace("# %s goes with the container's network namespace", hostEnd)
		} else {
			m.trace("ip link del %s   # both ends go", hostEnd)
			_ = netlink.LinkDel(l)
		}
	}
	m.unpublish(cfg, func(tag string) bool { return tag == Tag(id) })
	m.Release(id)
}

// Sweep removes what containers that no longer exist left behind (a
// runtime killed with SIGKILL before it cleaned up): veths named after
// them, rules tagged with them, their addresses. live says whether a
// container (by ID) still exists.
func (m *Manager) Sweep(cfg *Config, live func(id string) bool) {
	all, _ := m.Allocations()
	liveShort := map[string]bool{}
	for _, id := range all {
		if live(id) {
			liveShort[strings.TrimPrefix(VethName(id), "veth")] = true
			liveShort[Tag(id)] = true
		} else {
			m.Unplug(cfg, id, false)
		}
	}
	links, _ := retry(netlink.LinkList)
	for _, l := range links {
		name := l.Attrs().Name
		if l.Type() != "veth" || len(name) != 15 || !strings.HasPrefix(name, "veth") {
			continue
		}
		if master, err := netlink.LinkByIndex(l.Attrs().MasterIndex); err != nil || master.Attrs().Name != cfg.Bridge {
			continue // another network's
		}
		if !liveShort[name[4:]] {
			m.trace("ip link del %s   # left by a container that is gone", name)
			_ = netlink.LinkDel(l)
		}
	}
	m.unpublish(cfg, func(tag string) bool { return !liveShort[tag] })
}

// Orphan is a bridge whose runtime root was removed.
type Orphan struct{ Bridge, Dir string }

// Orphans finds the bridges whose runtime root no longer exists (their
// alias names it) and removes them with their rules: a network lives as
// long as its root.
func Orphans(hook trace.Hook) []Orphan {
	links, _ := retry(netlink.LinkList)
	var out []Orphan
	for _, l := range links {
		dir, ok := strings.CutPrefix(l.Attrs().Alias, "workshop network of ")
		if !ok || l.Type() != "bridge" {
			continue
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		(&Manager{Dir: dir, Trace: hook}).Down(&Config{Bridge: l.Attrs().Name})
		out = append(out, Orphan{Bridge: l.Attrs().Name, Dir: dir})
	}
	return out
}
