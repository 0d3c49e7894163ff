package network

// The network's nftables rules, in a table of their own named after the
// bridge (`table ip workshop0`): the host's own rules are never touched,
// and `nft delete table ip workshop0` removes all of ours at once.
//
//	prerouting   nat, priority dstnat: published ports, for packets that
//	             arrive from outside (another machine)
//	output       nat, priority -100: the same ports, for connections the
//	             host itself opens (to 127.0.0.1:8080, say): locally made
//	             packets never pass through prerouting
//	postrouting  nat, priority srcnat: the containers' packets leave with
//	             the host's address (masquerade); the host's own packets
//	             to a published port on 127.0.0.1 leave with the bridge's
//	guard        filter, prerouting, priority raw: nothing from a
//	             container may reach the host's 127.0.0.0/8
//
// Each rule is built once, as a list of words (what `nft list` prints, and
// what the narration shows) and the expressions the kernel runs, side by
// side by the same helpers, so that the two cannot drift apart.

import (
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Port is one published port: -p [IP:]HOSTPORT:CTRPORT[/tcp|udp].
type Port struct {
	HostIP   string `json:"hostIP,omitempty"` // "": every local address
	HostPort uint16 `json:"hostPort"`
	CtrPort  uint16 `json:"containerPort"`
	Proto    string `json:"proto"`
}

// String is the port as `ps` shows it, Docker's way: 127.0.0.1:8080->80/tcp.
func (p Port) String() string {
	ip := p.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	return fmt.Sprintf("%s:%d->%d/%s", ip, p.HostPort, p.CtrPort, p.Proto)
}

// ParsePort reads -p's argument.
func ParsePort(s string) (Port, error) {
	bad := fmt.Errorf("-p %q: use [IP:]HOSTPORT:CTRPORT[/tcp|udp], such as 127.0.0.1:8080:80 or 8080:80/udp", s)
	p := Port{Proto: "tcp"}
	rest := s
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		p.Proto, rest = rest[i+1:], rest[:i]
		if p.Proto != "tcp" && p.Proto != "udp" {
			return p, bad
		}
	}
	parts := strings.Split(rest, ":")
	switch len(parts) {
	case 2:
	case 3:
		ip := net.ParseIP(parts[0]).To4()
		if ip == nil {
			return p, fmt.Errorf("-p %q: %q is not an IPv4 address of this host", s, parts[0])
		}
		if !ip.IsUnspecified() {
			p.HostIP = ip.String()
		}
		parts = parts[1:]
	default:
		return p, bad
	}
	for i, dst := range []*uint16{&p.HostPort, &p.CtrPort} {
		v, err := strconv.ParseUint(parts[i], 10, 16)
		if err != nil || v == 0 {
			return p, bad
		}
		*dst = uint16(v)
	}
	return p, nil
}

// Tag is the comment on a container's rules: how they are found again.
func Tag(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// rule is one rule's words and expressions, built together.
type rule struct {
	chain   string
	words   []string
	exprs   []expr.Any
	comment string
}

func (r *rule) add(words string, e ...expr.Any) *rule {
	r.words = append(r.words, words)
	r.exprs = append(r.exprs, e...)
	return r
}

func ifname(name string) []byte { return append([]byte(name), 0) }

func op(neq bool) (expr.CmpOp, string) {
	if neq {
		return expr.CmpOpNeq, "!= "
	}
	return expr.CmpOpEq, ""
}

func (r *rule) iifname(neq bool, name string) *rule {
	o, w := op(neq)
	return r.add(fmt.Sprintf("iifname %s%q", w, name),
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: o, Register: 1, Data: ifname(name)})
}

func (r *rule) oifname(neq bool, name string) *rule {
	o, w := op(neq)
	return r.add(fmt.Sprintf("oifname %s%q", w, name),
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: o, Register: 1, Data: ifname(name)})
}

// addr matches the IPv4 source (offset 12) or destination (16) against a
// subnet or a single address.
func (r *rule) addr(field string, n *net.IPNet) *rule {
	offset := uint32(12)
	if field == "daddr" {
		offset = 16
	}
	load := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}
	ones, _ := n.Mask.Size()
	if ones == 32 {
		return r.add(fmt.Sprintf("ip %s %s", field, n.IP),
			load, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: n.IP.To4()})
	}
	return r.add(fmt.Sprintf("ip %s %s", field, n),
		load,
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: n.Mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: n.IP.To4()})
}

// localDaddr matches packets to any address of this host (Docker's
// `-m addrtype --dst-type LOCAL`).
func (r *rule) localDaddr() *rule {
	local := make([]byte, 4)
	binary.NativeEndian.PutUint32(local, unix.RTN_LOCAL)
	return r.add("fib daddr type local",
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: local})
}

func (r *rule) dport(proto string, port uint16) *rule {
	p := byte(unix.IPPROTO_TCP)
	if proto == "udp" {
		p = unix.IPPROTO_UDP
	}
	return r.add(fmt.Sprintf("%s dport %d", proto, port),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, port)})
}

func (r *rule) dnat(ip net.IP, port uint16) *rule {
	return r.add(fmt.Sprintf("dnat to %s:%d", ip, port),
		&expr.Immediate{Register: 1, Data: ip.To4()},
		&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true})
}

func (r *rule) masquerade() *rule { return r.add("masquerade", &expr.Masq{}) }
func (r *rule) drop() *rule       { return r.add("drop", &expr.Verdict{Kind: expr.VerdictDrop}) }

// text is the rule as `nft add rule` takes it.
func (r *rule) text(table string) string {
	s := fmt.Sprintf("nft add rule ip %s %s %s", table, r.chain, strings.Join(r.words, " "))
	if r.comment != "" {
		s += fmt.Sprintf(" comment %q", r.comment)
	}
	return s
}

// Words is the rule as `nft list` prints it (for the tests).
func (r *rule) Words() string {
	s := strings.Join(r.words, " ")
	if r.comment != "" {
		s += fmt.Sprintf(" comment %q", r.comment)
	}
	return s
}

type chainSpec struct {
	name     string
	typ      nftables.ChainType
	hook     *nftables.ChainHook
	prio     *nftables.ChainPriority
	hookName string
	prioName string
}

var chains = []chainSpec{
	{"prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest, "prerouting", "dstnat"},
	{"output", nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest, "output", "-100"},
	{"postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource, "postrouting", "srcnat"},
	{"guard", nftables.ChainTypeFilter, nftables.ChainHookPrerouting, nftables.ChainPriorityRaw, "prerouting", "raw"},
}

// networkRules are the rules every container of the network shares.
func networkRules(cfg *Config) []*rule {
	_, subnet, _ := net.ParseCIDR(cfg.Subnet)
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	c := "workshop network " + cfg.Bridge
	return []*rule{
		// Outbound NAT, Docker's `-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE`:
		// what a container sends beyond the bridge leaves with the address
		// of the host's interface it goes out of, and the replies find their
		// way back through conntrack. (It needs net.ipv4.ip_forward=1.)
		(&rule{chain: "postrouting", comment: c}).addr("saddr", subnet).oifname(true, cfg.Bridge).masquerade(),
		// The host's own connection to a published port on 127.0.0.1, sent
		// to the container by the output chain: the container would answer
		// 127.0.0.1, its own loopback. It leaves with the bridge's address.
		(&rule{chain: "postrouting", comment: c}).oifname(false, cfg.Bridge).addr("saddr", loopback).masquerade(),
		// route_localnet lets loopback addresses cross this bridge (for the
		// rule above); without this guard a container that forges a packet
		// to 127.0.0.1 (it has CAP_NET_RAW) would reach the services the
		// host binds to localhost only (kube-proxy's CVE-2020-8558).
		(&rule{chain: "guard", comment: c}).iifname(false, cfg.Bridge).addr("daddr", loopback).drop(),
	}
}

// portRules are one published port's two DNAT rules.
func portRules(cfg *Config, id string, ip net.IP, p Port) []*rule {
	var out []*rule
	for _, chain := range []string{"prerouting", "output"} {
		r := &rule{chain: chain, comment: Tag(id)}
		if chain == "prerouting" {
			// Not for the containers' own packets: a container reaching a
			// published port goes to the host's address, not hairpinned.
			r.iifname(true, cfg.Bridge)
		}
		if p.HostIP != "" {
			r.addr("daddr", &net.IPNet{IP: net.ParseIP(p.HostIP).To4(), Mask: net.CIDRMask(32, 32)})
		} else {
			r.localDaddr()
		}
		r.dport(p.Proto, p.HostPort).dnat(ip, p.CtrPort)
		out = append(out, r)
	}
	return out
}

func table(cfg *Config) *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyIPv4, Name: cfg.Bridge}
}

func chainOf(t *nftables.Table, s chainSpec) *nftables.Chain {
	return &nftables.Chain{Name: s.name, Table: t, Type: s.typ, Hooknum: s.hook, Priority: s.prio}
}

func comment(s string) []byte { return userdata.AppendString(nil, userdata.TypeComment, s) }

// tableComplete says whether the network's table has its chains and its
// shared rules (it is made in one transaction, so either all or nothing).
func tableComplete(cfg *Config) (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, err
	}
	t, err := c.ListTableOfFamily(cfg.Bridge, nftables.TableFamilyIPv4)
	if err != nil || t == nil {
		return false, nil
	}
	rules, err := c.GetRules(t, chainOf(t, chains[3]))
	return err == nil && len(rules) > 0, nil
}

// tableUp makes the network's table, chains and shared rules in one
// netlink batch: the kernel applies all of it, or none.
func (m *Manager) tableUp(cfg *Config) error {
	ok, err := tableComplete(cfg)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := table(cfg)
	if existing, _ := c.ListTableOfFamily(cfg.Bridge, nftables.TableFamilyIPv4); existing != nil {
		m.trace("nft delete table ip %s   # incomplete: made again", cfg.Bridge)
		c.DelTable(t)
	}
	m.trace("nft add table ip %s   # a table of our own: the host's rules are never touched", cfg.Bridge)
	c.AddTable(t)
	made := map[string]*nftables.Chain{}
	for _, s := range chains {
		m.trace("nft add chain ip %s %s '{ type %s hook %s priority %s; }'", cfg.Bridge, s.name, s.typ, s.hookName, s.prioName)
		made[s.name] = c.AddChain(chainOf(t, s))
	}
	for _, r := range networkRules(cfg) {
		m.trace("%s", r.text(cfg.Bridge))
		c.AddRule(&nftables.Rule{Table: t, Chain: made[r.chain], Exprs: r.exprs, UserData: comment(r.comment)})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: making table ip %s: %v", cfg.Bridge, err)
	}
	return nil
}

func (m *Manager) tableDown(cfg *Config) {
	c, err := nftables.New()
	if err != nil {
		return
	}
	if t, _ := c.ListTableOfFamily(cfg.Bridge, nftables.TableFamilyIPv4); t != nil {
		m.trace("nft delete table ip %s   # its chains and rules go with it", cfg.Bridge)
		c.DelTable(t)
		_ = c.Flush()
	}
}

// publish adds a container's port rules, in one batch.
func (m *Manager) publish(cfg *Config, id string, ip net.IP, ports []Port) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := table(cfg)
	for _, p := range ports {
		for _, r := range portRules(cfg, id, ip, p) {
			m.trace("%s", r.text(cfg.Bridge))
			c.AddRule(&nftables.Rule{Table: t, Chain: &nftables.Chain{Name: r.chain, Table: t}, Exprs: r.exprs, UserData: comment(r.comment)})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: publishing %s: %v", ports[0], err)
	}
	return nil
}

// unpublish deletes the per-container rules whose tag matches.
func (m *Manager) unpublish(cfg *Config, match func(tag string) bool) {
	c, err := nftables.New()
	if err != nil {
		return
	}
	t, _ := c.ListTableOfFamily(cfg.Bridge, nftables.TableFamilyIPv4)
	if t == nil {
		return
	}
	n := 0
	for _, chain := range []string{"prerouting", "output"} {
		ch := &nftables.Chain{Name: chain, Table: t}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			continue
		}
		for _, r := range rules {
			tag, ok := userdata.GetString(r.UserData, userdata.TypeComment)
			if !ok || strings.HasPrefix(tag, "workshop network ") || !match(tag) {
				continue
			}
			m.trace("nft delete rule ip %s %s handle %d   # comment %q", cfg.Bridge, chain, r.Handle, tag)
			_ = c.DelRule(r)
			n++
		}
	}
	if n > 0 {
		_ = c.Flush()
	}
}
