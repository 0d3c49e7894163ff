package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/vishvananda/netlink"

	"github.com/container-internals/workshop/06-full-container/network"
	"github.com/container-internals/workshop/internal/testkit"
)

// netConfig reads the shared root's network (the test has started a
// container on it, so it exists).
func netConfig(t *testing.T) *network.Config {
	t.Helper()
	cfg, err := (&network.Manager{Dir: filepath.Join(sharedRoot(t), "network")}).Config()
	if err != nil || cfg == nil {
		t.Fatalf("the shared root has no network: %v", err)
	}
	return cfg
}

// containerRules lists the per-container rules (by comment) of a network.
func containerRules(t *testing.T, bridge string) []string {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tbl, _ := c.ListTableOfFamily(bridge, nftables.TableFamilyIPv4)
	if tbl == nil {
		return nil
	}
	var out []string
	for _, chain := range []string{"prerouting", "output"} {
		rules, _ := c.GetRules(tbl, &nftables.Chain{Name: chain, Table: tbl})
		for _, r := range rules {
			tag, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			out = append(out, chain+" "+tag)
		}
	}
	return out
}

// vethsOn lists the links plugged into a bridge.
func vethsOn(t *testing.T, bridge string) []string {
	t.Helper()
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return nil
	}
	links, _ := netlink.LinkList()
	var out []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}

// A container on the bridge: eth0 with the address inspect reports, a
// default route through the bridge's address, the host's nameservers.
func TestBridgeContainerHasEth0AddressAndRoute(t *testing.T) {
	setup(t)
	st := detached(t, "addr", "--", "sleep", "100")
	if st.Network == nil || st.Network.Mode != "bridge" {
		t.Fatalf("inspect shows no bridge network: %+v", st.Network)
	}
	cfg := netConfig(t)
	_, subnet, _ := net.ParseCIDR(cfg.Subnet)
	ip, _, err := net.ParseCIDR(st.Network.IPAddress)
	if err != nil || !subnet.Contains(ip) || ip.String() == cfg.Gateway {
		t.Fatalf("address %q is not a container address of %s", st.Network.IPAddress, cfg.Subnet)
	}
	r := ctr(t, opts{}, "exec", "addr", "--", "sh", "-c", "ls /sys/class/net; ip -4 -o addr show eth0; ip route; cat /sys/class/net/eth0/address")
	for _, want := range []string{"eth0\nlo\n", "inet " + st.Network.IPAddress, "default via " + cfg.Gateway + " dev eth0", st.Network.MAC} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("inside, want %q:\n%s", want, r)
		}
	}
	// The host's end of the cable is in the bridge, named as inspect says.
	if v := vethsOn(t, cfg.Bridge); len(v) != 1 || v[0] != st.Network.HostVeth {
		t.Errorf("the bridge %s holds %v, want [%s]", cfg.Bridge, v, st.Network.HostVeth)
	}
	// And the host reaches the container by its address.
	if out, err := exec.Command("busybox", "ping", "-c1", "-W2", ip.String()).CombinedOutput(); err != nil {
		t.Errorf("the host cannot ping %s: %v\n%s", ip, err, out)
	}
}

// Two containers on the bridge ping each other by address and by name,
// and a container started later is known by name to the earlier ones (their
// /etc/hosts in the init layer is rewritten in place).
func TestContainersOnTheBridgePingEachOtherByName(t *testing.T) {
	setup(t)
	a := detached(t, "alpha", "--", "sleep", "100")
	b := detached(t, "beta", "--", "sleep", "100")
	ipA, _, _ := net.ParseCIDR(a.Network.IPAddress)
	ipB, _, _ := net.ParseCIDR(b.Network.IPAddress)
	for _, tc := range []struct{ from, to, want string }{
		{"alpha", "beta", ipB.String()}, {"beta", "alpha", ipA.String()}, {"alpha", ipB.String(), ipB.String()},
	} {
		r := ctr(t, opts{}, "exec", tc.from, "--", "ping", "-c1", "-W2", tc.to)
		if r.Code != 0 || !strings.Contains(r.Stdout, "64 bytes from "+tc.want) {
			t.Errorf("%s cannot ping %s (%s):\n%s", tc.from, tc.to, tc.want, r)
		}
	}
	// A third container, after both: alpha learns its name, and loses it
	// again when it is gone.
	c := detached(t, "gamma", "--", "sleep", "100")
	ipC, _, _ := net.ParseCIDR(c.Network.IPAddress)
	if r := ctr(t, opts{}, "exec", "alpha", "--", "ping", "-c1", "-W2", "gamma"); !strings.Contains(r.Stdout, "64 bytes from "+ipC.String()) {
		t.Errorf("alpha cannot ping gamma, started after it:\n%s", r)
	}
	ctr(t, opts{}, "rm", "-f", "gamma")
	if r := ctr(t, opts{}, "exec", "alpha", "--", "cat", "/etc/hosts"); strings.Contains(r.Stdout, "gamma") || !strings.Contains(r.Stdout, ipB.String()+"\t") {
		t.Errorf("alpha's /etc/hosts after gamma left:\n%s", r)
	}
	// A foreground container resolves them too.
	r := ctr(t, opts{}, "run", "--", "sh", "-c", "ping -c1 -W2 alpha && ping -c1 -W2 beta")
	if r.Code != 0 {
		t.Errorf("a new container cannot ping alpha and beta by name:\n%s", r)
	}
}

// -p publishes a container's port on the host: busybox httpd in the
// container, reached from the host on 127.0.0.1 (the output chain's DNAT,
// route_localnet, the loopback masquerade) and, without an address, on
// any of the host's addresses; ps and inspect show the ports.
func TestPublishedPortIsReachedFromTheHost(t *testing.T) {
	setup(t)
	l1, _ := net.Listen("tcp", "127.0.0.1:0") // two free ports on the host
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	p1, p2 := l1.Addr().(*net.TCPAddr).Port, l2.Addr().(*net.TCPAddr).Port
	l1.Close()
	l2.Close()
	st := detached(t, "web", "-p", fmt.Sprintf("127.0.0.1:%d:80", p1), "-p", fmt.Sprintf("%d:8080/tcp", p2), "--",
		"sh", "-c", "mkdir /www && echo hello from $(hostname) > /www/index.html && httpd -p 8080 -h /www && exec httpd -f -p 80 -h /www")
	want := "hello from " + st.Hostname + "\n"
	get := func(url string) (string, error) {
		client := http.Client{Timeout: 3 * time.Second}
		var err error
		for i := 0; i < 20; i++ { // httpd may still be starting
			var resp *http.Response
			if resp, err = client.Get(url); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return string(b), nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		return "", err
	}
	for _, url := range []string{fmt.Sprintf("http://127.0.0.1:%d/", p1), fmt.Sprintf("http://127.0.0.1:%d/", p2)} {
		if got, err := get(url); got != want {
			t.Errorf("GET %s from the host: %q, %v; want %q", url, got, err, want)
		}
	}
	ps := ctr(t, opts{}, "ps")
	for _, p := range []string{fmt.Sprintf("127.0.0.1:%d->80/tcp", p1), fmt.Sprintf("0.0.0.0:%d->8080/tcp", p2)} {
		if !strings.Contains(ps.Stdout, p) {
			t.Errorf("ps does not show %s:\n%s", p, ps)
		}
	}
	if len(st.Network.Ports) != 2 || st.Network.Ports[0].HostPort != uint16(p1) {
		t.Errorf("inspect's ports: %+v", st.Network.Ports)
	}
	// Four rules (two chains, two ports), tagged with the container.
	if rules := containerRules(t, st.Network.Bridge); len(rules) != 4 {
		t.Errorf("want 4 DNAT rules tagged %s, got %q", network.Tag(st.ID), rules)
	}
	// A second container cannot take the same host port.
	oneLine(t, ctr(t, opts{}, "run", "-p", fmt.Sprintf("%d:80", p1), "--", "true"), "publishes that port already")
	ctr(t, opts{}, "rm", "-f", "web")
	if rules := containerRules(t, st.Network.Bridge); len(rules) != 0 {
		t.Errorf("rules left after rm: %q", rules)
	}
	if _, err := get(fmt.Sprintf("http://127.0.0.1:%d/", p1)); err == nil {
		t.Errorf("the port still answers after the container is gone")
	}
}

// --net none and --net host make no bridge and take no address.
func TestNetNoneAndHostMakeNoNetwork(t *testing.T) {
	setup(t)
	pruneNetwork(t, sharedRoot(t))
	for _, mode := range []string{"none", "host"} {
		r := ctr(t, opts{}, "run", "--net", mode, "--", "true")
		if r.Code != 0 {
			t.Fatalf("--net %s:\n%s", mode, r)
		}
	}
	if _, err := os.Stat(filepath.Join(sharedRoot(t), "network")); err == nil {
		t.Errorf("--net none or host made the root's network")
	}
	// --net host is the host's own namespace.
	r := ctr(t, opts{}, "run", "--net", "host", "--", "readlink", "/proc/self/ns/net")
	if host, _ := os.Readlink("/proc/self/ns/net"); strings.TrimSpace(r.Stdout) != host {
		t.Errorf("--net host: the container's namespace %q, the host's %q", r.Stdout, host)
	}
}

// A runtime killed with SIGKILL while its container runs on the bridge
// with a published port: the next command removes the rules and gives
// the address back (the cable died with the namespace).
func TestKilledRuntimeLeavesNoNetwork(t *testing.T) {
	setup(t)
	bin := testkit.Stage(t, "06-full-container")
	cmd := exec.Command(bin, "--root", sharedRoot(t), "run", "--name", "netorphan", "-p", "127.0.0.1:18081:80", "--", "sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if r := ctr(t, opts{}, "ps"); strings.Contains(r.Stdout, "netorphan") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cfg := netConfig(t)
	if rules := containerRules(t, cfg.Bridge); len(rules) != 2 {
		t.Fatalf("want the container's 2 rules while it runs, got %q", rules)
	}
	cmd.Process.Kill()
	cmd.Wait()
	ctr(t, opts{}, "ps", "-a")
	if rules := containerRules(t, cfg.Bridge); len(rules) != 0 {
		t.Errorf("rules left after the next command: %q", rules)
	}
	if ents, _ := os.ReadDir(filepath.Join(sharedRoot(t), "network", "addresses")); len(ents) != 0 {
		t.Errorf("addresses left after the next command: %d", len(ents))
	}
	v := vethsOn(t, cfg.Bridge)
	for i := 0; i < 150 && len(v) > 0; i++ { // it goes with the namespace, asynchronously
		time.Sleep(20 * time.Millisecond)
		v = vethsOn(t, cfg.Bridge)
	}
	if len(v) != 0 {
		t.Errorf("veths left in %s: %v", cfg.Bridge, v)
	}
}

// network prune refuses while a container uses the network, then removes
// the bridge and its table; a network whose runtime root was removed is
// removed by the next prune anywhere.
func TestNetworkPruneRemovesTheBridge(t *testing.T) {
	setup(t)
	detached(t, "holder", "--", "sleep", "100")
	cfg := netConfig(t)
	oneLine(t, ctr(t, opts{}, "network", "prune"), "still use "+cfg.Bridge)
	ctr(t, opts{}, "rm", "-f", "holder")
	if r := ctr(t, opts{}, "network", "prune"); r.Code != 0 || !strings.Contains(r.Stdout, "removed "+cfg.Bridge) {
		t.Fatalf("network prune:\n%s", r)
	}
	if _, err := netlink.LinkByName(cfg.Bridge); err == nil {
		t.Errorf("the bridge %s is still there", cfg.Bridge)
	}
	if rules := containerRules(t, cfg.Bridge); rules != nil {
		t.Errorf("the table is still there")
	}
	// A root that is removed takes its network with it.
	bin := testkit.Stage(t, "06-full-container")
	root := t.TempDir()
	r := testkit.Run(t, opts{}, bin, "--root", root, "network", "create")
	if r.Code != 0 {
		t.Fatalf("network create:\n%s", r)
	}
	bridge := strings.Fields(r.Stdout)[0]
	os.RemoveAll(root)
	if r := ctr(t, opts{}, "network", "prune"); !strings.Contains(r.Stdout, "removed "+bridge+" (its runtime root") {
		t.Errorf("prune did not remove the orphan %s:\n%s", bridge, r)
	}
}

// What --explain narrates is what the kernel holds: every `nft add rule`
// line, minus its prefix, is a line of `nft list table`.
func TestNarratedRulesAreWhatNftLists(t *testing.T) {
	setup(t)
	if _, err := exec.LookPath("nft"); err != nil {
		testkit.Unavailable(t, "nft is needed to read the rules back: apt-get install nftables")
	}
	pruneNetwork(t, sharedRoot(t)) // so that the network's own rules are narrated too
	bin := testkit.Stage(t, "06-full-container")
	cmd := exec.Command(bin, "--root", sharedRoot(t), "run", "-i", "--explain", "--name", "narrated", "-p", "127.0.0.1:18082:80/udp", "-p", "18083:81", "--", "cat")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	stdout, _ := cmd.StdoutPipe()
	stdin, _ := cmd.StdinPipe() // cat ends, and the container with it, when it is closed
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); io.Copy(io.Discard, stdout); cmd.Wait() }()
	var narrated []string
	buf := make([]byte, 1<<16)
	var all strings.Builder
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(all.String(), "execve(") {
		n, err := stdout.Read(buf)
		all.Write(buf[:n])
		if err != nil {
			break
		}
	}
	table := ""
	for _, l := range strings.Split(all.String(), "\n") {
		if _, rule, ok := strings.Cut(l, "$ nft add rule ip "); ok {
			f := strings.SplitN(rule, " ", 3)
			table = f[0]
			narrated = append(narrated, f[2])
		}
	}
	if len(narrated) != 7 {
		t.Fatalf("want 3 network rules and 4 port rules narrated, got %d:\n%s", len(narrated), all.String())
	}
	out, err := exec.Command("nft", "list", "table", "ip", table).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list table ip %s: %v\n%s", table, err, out)
	}
	listed := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		listed[strings.TrimSpace(l)] = true
	}
	var missing []string
	for _, r := range narrated {
		if !listed[r] {
			missing = append(missing, r)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("narrated, but not what nft lists:\n  %s\nnft lists:\n%s", strings.Join(missing, "\n  "), out)
	}
}

// The network package's pure parts: -p's syntax, and the rules' words.
func TestPublishSyntax(t *testing.T) {
	for in, want := range map[string]string{
		"8080:80": "0.0.0.0:8080->80/tcp", "127.0.0.1:8080:80": "127.0.0.1:8080->80/tcp",
		"53:53/udp": "0.0.0.0:53->53/udp", "0.0.0.0:1:2/tcp": "0.0.0.0:1->2/tcp",
	} {
		p, err := network.ParsePort(in)
		if err != nil || p.String() != want {
			t.Errorf("-p %s: %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"80", "a:80", "8080:80/sctp", "1.2.3:80:80", "0:80", "70000:80", "::80:80"} {
		if _, err := network.ParsePort(bad); err == nil {
			t.Errorf("-p %s was accepted", bad)
		}
	}
}

// forgeSrc sends one UDP packet with a hand-made IPv4 header from the
// container's eth0 straight to the gateway's MAC address (a packet socket:
// CAP_NET_RAW, which a container keeps by default), so that its
// destination may be any address, 127.0.0.1 included.
const forgeSrc = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
static unsigned short csum(unsigned short *p, int n) {
	unsigned long s = 0;
	for (; n > 1; n -= 2) s += *p++;
	while (s >> 16) s = (s & 0xffff) + (s >> 16);
	return ~s;
}
int main(int argc, char **argv) { /* SRC DST GWMAC PORT PAYLOAD */
	int fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
	if (fd < 0) { perror("socket"); return 1; }
	unsigned char pkt[128] = {0};
	int plen = strlen(argv[5]), len = 20 + 8 + plen;
	struct iphdr *ip = (void *)pkt;
	struct udphdr *u = (void *)(pkt + 20);
	ip->ihl = 5; ip->version = 4; ip->ttl = 64; ip->protocol = 17; ip->tot_len = htons(len);
	ip->saddr = inet_addr(argv[1]); ip->daddr = inet_addr(argv[2]); ip->check = csum((void *)ip, 20);
	u->source = htons(4444); u->dest = htons(atoi(argv[4])); u->len = htons(8 + plen);
	memcpy(pkt + 28, argv[5], plen);
	struct sockaddr_ll a = {0};
	a.sll_family = AF_PACKET; a.sll_protocol = htons(ETH_P_IP); a.sll_halen = 6;
	a.sll_ifindex = if_nametoindex("eth0");
	sscanf(argv[3], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &a.sll_addr[0], &a.sll_addr[1], &a.sll_addr[2], &a.sll_addr[3], &a.sll_addr[4], &a.sll_addr[5]);
	if (sendto(fd, pkt, len, 0, (void *)&a, sizeof a) < 0) { perror("sendto"); return 1; }
	return 0;
}
`

// route_localnet on the bridge lets the host's own packets with a
// loopback source cross it (for -p on 127.0.0.1); it would also let a
// container's forged packet to 127.0.0.1 in, to the services the host
// binds to localhost only (kube-proxy's CVE-2020-8558). The guard chain
// drops them. The same forged packet to the bridge's own address arrives:
// the forging works, only the loopback destination is refused.
func TestContainerCannotReachTheHostsLocalhost(t *testing.T) {
	setup(t)
	dir := t.TempDir()
	cprog(t, dir, "forge", forgeSrc)
	l, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.LocalAddr().(*net.UDPAddr).Port
	st := detached(t, "forger", "-v", dir+":/t:ro", "--", "sleep", "100")
	br, err := netlink.LinkByName(st.Network.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	ip, _, _ := net.ParseCIDR(st.Network.IPAddress)
	got := make(chan string, 4)
	go func() {
		buf := make([]byte, 64)
		for {
			n, _, err := l.ReadFrom(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	for _, dst := range []string{"127.0.0.1", st.Network.Gateway} {
		r := ctr(t, opts{}, "exec", "forger", "--", "/t/forge", ip.String(), dst, br.Attrs().HardwareAddr.String(), fmt.Sprint(port), "to "+dst)
		if r.Code != 0 {
			t.Fatalf("forging a packet to %s:\n%s", dst, r)
		}
	}
	var arrived []string
	timeout := time.After(time.Second)
	for done := false; !done; {
		select {
		case m := <-got:
			arrived = append(arrived, m)
		case <-timeout:
			done = true
		}
	}
	sort.Strings(arrived)
	if want := []string{"to " + st.Network.Gateway}; strings.Join(arrived, ",") != strings.Join(want, ",") {
		t.Errorf("packets that reached the host: %q, want only %q", arrived, want)
	}
}
