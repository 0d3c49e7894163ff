// Package network gives containers Docker's default network, built from
// the kernel's pieces: a bridge (a software switch) with an address on a
// private subnet, a veth pair (a virtual cable) per container with one end
// in the container's network namespace, a default route through the
// bridge, and nftables rules for outbound NAT and published ports.
//
// Every change goes through netlink: links, addresses and routes with
// vishvananda/netlink (the library Docker's own networking uses), rules
// with google/nftables. Each call is reported, as it is made, to Trace as
// the `ip`, `nsenter` or `nft` command a learner can type to do the same.
//
// What one runtime root owns lives in its network directory: config.json
// (the bridge's name and subnet) and addresses/, one file per address
// handed out, named by the address and holding the container's ID. A
// lock file there serialises the runtimes that share the root.
package network

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/container-internals/workshop/internal/stage"
	"github.com/container-internals/workshop/internal/trace"
)

// Config is one bridge network.
type Config struct {
	Bridge  string `json:"bridge"`  // workshop0
	Subnet  string `json:"subnet"`  // 172.29.0.0/24
	Gateway string `json:"gateway"` // the bridge's own address, 172.29.0.1
}

// Manager is one runtime root's network: its directory and its narration.
type Manager struct {
	Dir string
	// Trace, if set, is told each change as the equivalent command, just
	// before the call that makes it.
	Trace trace.Hook
}

// DefaultSubnet is the first network's subnet. Further networks (other
// runtime roots on the same host) take the next free /24: 172.29.1.0/24 ...
const DefaultSubnet = "172.29.0.0/24"

// BridgePrefix names the bridges: workshop0, workshop1 ...
const BridgePrefix = "workshop"

// globalLock serialises, across every runtime root on the host, the choice
// of a bridge name and a subnet and the bridge's creation.
const globalLock = "/run/workshop-network.lock"

func (m *Manager) trace(format string, args ...any) {
	if m.Trace == nil {
		return
	}
	// A line that starts "# " is a note; a call may carry its reason
	// after "   # ", as the shell would read it.
	if s := fmt.Sprintf(format, args...); strings.HasPrefix(s, "# ") {
		m.Trace("", s[2:])
	} else {
		m.Trace(s, "")
	}
}

func (m *Manager) configPath() string   { return filepath.Join(m.Dir, "config.json") }
func (m *Manager) addressesDir() string { return filepath.Join(m.Dir, "addresses") }

// Lock takes the root's network lock.
func (m *Manager) Lock() (func(), error) {
	if err := os.MkdirAll(m.Dir, 0o700); err != nil {
		return nil, err
	}
	return stage.LockFile(filepath.Join(m.Dir, ".lock"))
}

// Config reads the root's network, or nil if it has none yet.
func (m *Manager) Config() (*Config, error) {
	b, err := os.ReadFile(m.configPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %v", m.configPath(), err)
	}
	return &c, nil
}

func (m *Manager) writeConfig(c *Config) error {
	b, _ := json.MarshalIndent(c, "", "  ")
	tmp := m.configPath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, m.configPath())
}

// owner is what the bridge's alias says (`ip link show` prints it): which
// root's network it is, so that a bridge whose root was removed can be
// recognised and removed by any runtime.
func (m *Manager) owner() string { return "workshop network of " + m.Dir }

// Ensure returns the root's network, choosing one (bridge, subnet) and
// creating it first if there is none: with bridge and subnet as given, or
// the first free ones. Call it with the root's lock held. made says
// whether the bridge had to be made (or remade), for the narration.
func (m *Manager) Ensure(bridge, subnet string, before func()) (cfg *Config, err error) {
	cfg, err = m.Config()
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		if bridge != "" && bridge != cfg.Bridge || subnet != "" && subnet != cfg.Subnet {
			return nil, fmt.Errorf("this root's network is %s (%s) already: `network prune` it first to change it", cfg.Bridge, cfg.Subnet)
		}
		if !m.NeedsUp(cfg) {
			return cfg, nil
		}
		if before != nil {
			before()
		}
		return cfg, m.Up(cfg)
	}
	unlock, err := stage.LockFile(globalLock)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if cfg, err = m.choose(bridge, subnet); err != nil {
		return nil, err
	}
	if before != nil {
		before()
	}
	if err := m.Up(cfg); err != nil {
		return nil, err
	}
	if err := m.writeConfig(cfg); err != nil {
		m.Down(cfg)
		return nil, err
	}
	return cfg, nil
}

// choose picks a bridge name and a subnet that nothing on the host uses:
// no link of that name (a bridge left by a removed root is removed and its
// name reused), no route into that subnet.
func (m *Manager) choose(bridge, subnet string) (*Config, error) {
	routes, err := hostRoutes()
	if err != nil {
		return nil, err
	}
	overlaps := func(n *net.IPNet) *net.IPNet {
		for _, r := range routes {
			if r.Contains(n.IP) || n.Contains(r.IP) {
				return r
			}
		}
		return nil
	}
	free := func(name string) (bool, error) {
		owner, exists, err := linkAlias(name)
		if err != nil || !exists {
			return !exists, err
		}
		if owner == m.owner() {
			return true, nil // ours, from before the config was lost
		}
		if dir, ok := strings.CutPrefix(owner, "workshop network of "); ok {
			if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
				// Its root is gone: so is the network.
				m.trace("# %s belongs to %s, which no longer exists: remove it", name, dir)
				(&Manager{Dir: dir, Trace: m.Trace}).Down(&Config{Bridge: name})
				if r, err := hostRoutes(); err == nil {
					routes = r
				}
				return true, nil
			}
		}
		return false, nil
	}
	cfg := &Config{Bridge: bridge, Subnet: subnet}
	if bridge != "" {
		if err := checkName(bridge); err != nil {
			return nil, err
		}
		ok, err := free(bridge)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("a link named %s exists already (`ip link show %s`): choose another --bridge", bridge, bridge)
		}
	} else {
		for i := 0; ; i++ {
			name := BridgePrefix + strconv.Itoa(i)
			ok, err := free(name)
			if err != nil {
				return nil, err
			}
			if ok {
				cfg.Bridge = name
				break
			}
			if i == 99 {
				return nil, errors.New("workshop0 to workshop99 all exist: `network prune` in the roots that made them")
			}
		}
	}
	if subnet != "" {
		_, n, err := parsePrivate(subnet)
		if err != nil {
			return nil, err
		}
		if r := overlaps(n); r != nil {
			return nil, fmt.Errorf("--subnet %s overlaps the host's route to %s (`ip route`): choose another", subnet, r)
		}
		cfg.Subnet = n.String()
	} else {
		_, base, _ := net.ParseCIDR(DefaultSubnet)
		for i := 0; i < 256; i++ {
			n := &net.IPNet{IP: net.IPv4(base.IP[0], base.IP[1], byte(i), 0).To4(), Mask: base.Mask}
			if overlaps(n) == nil {
				cfg.Subnet = n.String()
				break
			}
		}
		if cfg.Subnet == "" {
			return nil, errors.New("every 172.29.N.0/24 is in use on this host: give `network create --subnet CIDR`")
		}
	}
	_, n, _ := net.ParseCIDR(cfg.Subnet)
	cfg.Gateway = nthAddress(n, 1).String()
	return cfg, nil
}

// parsePrivate accepts an IPv4 subnet from the private ranges (RFC 1918),
// between /16 and /29.
func parsePrivate(s string) (net.IP, *net.IPNet, error) {
	ip, n, err := net.ParseCIDR(s)
	if err != nil || ip.To4() == nil {
		return nil, nil, fmt.Errorf("--subnet %q: give an IPv4 subnet such as %s", s, DefaultSubnet)
	}
	ones, _ := n.Mask.Size()
	if ones < 16 || ones > 29 {
		return nil, nil, fmt.Errorf("--subnet %s: give a prefix between /16 and /29", s)
	}
	private := false
	for _, p := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} {
		_, r, _ := net.ParseCIDR(p)
		if r.Contains(n.IP) {
			private = true
		}
	}
	if !private {
		return nil, nil, fmt.Errorf("--subnet %s is not a private range: use part of 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16", s)
	}
	return ip, n, nil
}

func checkName(name string) error {
	if len(name) == 0 || len(name) > 15 || strings.ContainsAny(name, "/ \t\n:") {
		return fmt.Errorf("--bridge %q: a link name is 1 to 15 characters, without '/', ':' or spaces", name)
	}
	return nil
}

// nthAddress is the subnet's i-th address (1 = the first after the
// network's own).
func nthAddress(n *net.IPNet, i uint32) net.IP {
	v := binary.BigEndian.Uint32(n.IP.To4()) + i
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, v)
	return ip
}

// Allocate hands out the lowest free address of the subnet (the bridge
// has the first) to the container id: a file named after the address,
// created with O_EXCL under the root's lock, holding the ID.
func (m *Manager) Allocate(cfg *Config, id string) (*net.IPNet, error) {
	_, n, err := net.ParseCIDR(cfg.Subnet)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(m.addressesDir(), 0o700); err != nil {
		return nil, err
	}
	ones, bits := n.Mask.Size()
	size := uint32(1) << (bits - ones)
	for i := uint32(2); i < size-1; i++ {
		ip := nthAddress(n, i)
		f, err := os.OpenFile(filepath.Join(m.addressesDir(), ip.String()), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		_, err = f.WriteString(id + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
			return nil, err
		}
		return &net.IPNet{IP: ip, Mask: n.Mask}, nil
	}
	return nil, fmt.Errorf("the subnet %s is full (%d containers): remove some, or `network create --subnet` a larger one", cfg.Subnet, size-3)
}

// Allocations lists the addresses handed out: address -> container ID.
func (m *Manager) Allocations() (map[string]string, error) {
	ents, err := os.ReadDir(m.addressesDir())
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range ents {
		if net.ParseIP(e.Name()) == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(m.addressesDir(), e.Name()))
		if err != nil {
			continue
		}
		out[e.Name()] = strings.TrimSpace(string(b))
	}
	return out, nil
}

// Release gives back every address held by the container id.
func (m *Manager) Release(id string) {
	all, _ := m.Allocations()
	for ip, owner := range all {
		if owner == id {
			os.Remove(filepath.Join(m.addressesDir(), ip))
		}
	}
}

// MAC derives the container's MAC address from its IP address, as Docker
// does (02:42 then the four bytes of the address): a reused address keeps
// its MAC, so no neighbour's ARP cache points at a cable that is gone.
func MAC(ip net.IP) net.HardwareAddr {
	v4 := ip.To4()
	return net.HardwareAddr{0x02, 0x42, v4[0], v4[1], v4[2], v4[3]}
}

// IPForward reads net.ipv4.ip_forward, the host-wide switch that lets the
// kernel route packets between interfaces: a container's packets to other
// machines (and theirs to a published port) need it. It is the host's
// setting: this package reads it and never writes it.
func IPForward() (bool, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(b)) == "1", nil
}
