package testkit

// The host's network, as a leak check sees it: links, addresses, routes
// (every table, both families), the whole nftables ruleset, and the
// host-wide sysctls that decide routing. Tests that build bridges, veths
// and NAT rules must leave all of it exactly as they found it: the host's
// own networking is not theirs to change.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// hostSysctls are host-wide network settings no test may change
// (net.ipv4.ip_forward above all).
var hostSysctls = []string{
	"net/ipv4/ip_forward",
	"net/ipv4/conf/all/forwarding",
	"net/ipv4/conf/all/route_localnet",
	"net/ipv4/conf/default/route_localnet",
	"net/ipv6/conf/all/forwarding",
}

func dumpRetry[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for i := 0; i < 10; i++ {
		if v, err = f(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return v, err
}

// runtimeLink: a link of the kind the workshop makes (its bridges, veths).
func runtimeLink(name string) bool {
	return strings.HasPrefix(name, "workshop") || strings.HasPrefix(name, "veth") || strings.HasPrefix(name, "wk")
}

// hostNetwork lists the host's network state, one line per item: every
// link, the IPv4 addresses and routes, and IPv6 ones of the workshop's
// links only (IPv6 autoconfiguration on the host's own links, as in the
// VM, changes them while a test runs).
func hostNetwork() ([]string, error) {
	var out []string
	links, err := dumpRetry(netlink.LinkList)
	if err != nil {
		return nil, fmt.Errorf("listing links: %v", err)
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	for _, l := range links {
		a := l.Attrs()
		up := "down"
		if a.Flags&net.FlagUp != 0 {
			up = "up"
		}
		out = append(out, fmt.Sprintf("link %s type %s master %q %s mtu %d", a.Name, l.Type(), names[a.MasterIndex], up, a.MTU))
	}
	addrs, err := dumpRetry(func() ([]netlink.Addr, error) { return netlink.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %v", err)
	}
	for _, a := range addrs {
		if a.IP.To4() == nil && !runtimeLink(names[a.LinkIndex]) {
			continue // IPv6 autoconfiguration comes and goes on its own (a VM's eth0)
		}
		out = append(out, fmt.Sprintf("address %s dev %s", a.IPNet, names[a.LinkIndex]))
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := dumpRetry(func() ([]netlink.Route, error) {
			return netlink.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
		})
		if err != nil {
			return nil, fmt.Errorf("listing routes: %v", err)
		}
		for _, r := range routes {
			if fam == netlink.FAMILY_V6 && !runtimeLink(names[r.LinkIndex]) {
				continue // as for the addresses: the runtime makes no IPv6 of its own
			}
			out = append(out, fmt.Sprintf("route table %d %v via %v dev %s proto %d type %d", r.Table, r.Dst, r.Gw, names[r.LinkIndex], r.Protocol, r.Type))
		}
	}
	out = append(out, nftRuleset()...)
	for _, s := range hostSysctls {
		b, err := os.ReadFile("/proc/sys/" + s)
		if err == nil {
			out = append(out, fmt.Sprintf("sysctl %s = %s", strings.ReplaceAll(s, "/", "."), strings.TrimSpace(string(b))))
		}
	}
	return out, nil
}

// nftRuleset names every table, chain and rule (by handle) of every family.
func nftRuleset() []string {
	c, err := nftables.New()
	if err != nil {
		return []string{"nftables: " + err.Error()}
	}
	tables, err := c.ListTables()
	if err != nil {
		// No nf_tables in this kernel: the same before and after.
		return []string{"nftables: " + err.Error()}
	}
	family := map[nftables.TableFamily]string{nftables.TableFamilyINet: "inet", nftables.TableFamilyIPv4: "ip",
		nftables.TableFamilyIPv6: "ip6", nftables.TableFamilyARP: "arp", nftables.TableFamilyNetdev: "netdev", nftables.TableFamilyBridge: "bridge"}
	var out []string
	for _, t := range tables {
		out = append(out, fmt.Sprintf("nft table %s %s", family[t.Family], t.Name))
	}
	chains, _ := c.ListChains()
	for _, ch := range chains {
		out = append(out, fmt.Sprintf("nft chain %s %s %s", family[ch.Table.Family], ch.Table.Name, ch.Name))
		rules, _ := c.GetRules(ch.Table, ch)
		for _, r := range rules {
			out = append(out, fmt.Sprintf("nft rule %s %s %s handle %d", family[ch.Table.Family], ch.Table.Name, ch.Name, r.Handle))
		}
	}
	return out
}
