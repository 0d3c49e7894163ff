package main

// Stage 06's bridge network (docs/06-network.md): can this kernel make a
// bridge, a veth pair and NAT rules, and does the host forward packets?

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func checkNetwork(h host) []result {
	rs := []result{checkIPForward(h)}
	if h.euid != 0 {
		return rs // the probe needs root; the root row says how
	}
	if err := probeBridge(); err != nil {
		rs = append(rs, result{"bridge network", fail, "a bridge, a veth pair and NAT rules cannot be made: " + err.Error(),
			"load the kernel's modules: `sudo modprobe -a veth bridge nf_tables nft_chain_nat nft_nat nft_masq nft_fib_ipv4`; or run containers with `--net none`"})
	} else {
		rs = append(rs, result{name: "bridge network", detail: "a bridge, a veth pair and nftables NAT rules work (tried in a namespace of their own)"})
	}
	return rs
}

// checkIPForward reports net.ipv4.ip_forward: it is the host's setting,
// which the workshop reads and never writes.
func checkIPForward(h host) result {
	b, err := os.ReadFile(filepath.Join(h.proc, "sys/net/ipv4/ip_forward"))
	if err != nil {
		return result{"net.ipv4.ip_forward", warn, "cannot read it: " + err.Error(), "is /proc mounted?"}
	}
	if strings.TrimSpace(string(b)) == "1" {
		return result{name: "net.ipv4.ip_forward", detail: "1: containers reach other machines, and other machines reach published ports"}
	}
	return result{"net.ipv4.ip_forward", warn,
		"0: containers reach this host and each other, and the host reaches their published ports; other machines and the internet do not",
		"`sudo sysctl -w net.ipv4.ip_forward=1` if you want that: it makes this machine route between all its interfaces (the workshop never changes it)"}
}

// probeBridge makes a bridge, a veth pair in it and an nftables NAT table
// with the expressions the runtime uses, in a network namespace of its own
// that dies with the thread: nothing of the host's is touched.
func probeBridge() error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, and its namespace, end with this goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %v", err)
			return
		}
		errc <- probeHere()
	}()
	return <-errc
}

func probeHere() error {
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "probe0"}}); err != nil {
		return fmt.Errorf("ip link add type bridge: %v (module bridge)", err)
	}
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "probe1"}, PeerName: "probe2"}); err != nil {
		return fmt.Errorf("ip link add type veth: %v (module veth)", err)
	}
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	c, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		return err
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "probe"})
	nat := c.AddChain(&nftables.Chain{Name: "out", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest})
	post := c.AddChain(&nftables.Chain{Name: "post", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	c.AddRule(&nftables.Rule{Table: t, Chain: nat, Exprs: []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{2, 0, 0, 0}},
		&expr.Immediate{Register: 1, Data: net.IPv4(10, 0, 0, 2).To4()},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
	}})
	c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: []expr.Any{&expr.Masq{}}})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables NAT rules: %v (modules nf_tables, nft_chain_nat, nft_nat, nft_masq, nft_fib_ipv4)", err)
	}
	return nil
}
