package main

// Hardening, the way Docker does it by default: a root process inside the
// container is still uid 0, so what it may do is cut down by capabilities,
// no_new_privs, /proc and /sys paths hidden or made read-only, and a
// seccomp filter on its system calls.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/03-cgroups-cpu/cgroup"
	"github.com/container-internals/workshop/06-full-container/devices"
	"github.com/container-internals/workshop/06-full-container/seccomp"
	"github.com/container-internals/workshop/internal/narrate"
	"github.com/container-internals/workshop/internal/stage"
	"github.com/container-internals/workshop/internal/trace"
)

var capNames = map[string]uintptr{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE,
	"CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH, "CAP_FOWNER": unix.CAP_FOWNER,
	"CAP_FSETID": unix.CAP_FSETID, "CAP_KILL": unix.CAP_KILL, "CAP_SETGID": unix.CAP_SETGID,
	"CAP_SETUID": unix.CAP_SETUID, "CAP_SETPCAP": unix.CAP_SETPCAP,
	"CAP_LINUX_IMMUTABLE": unix.CAP_LINUX_IMMUTABLE, "CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
	"CAP_NET_BROADCAST": unix.CAP_NET_BROADCAST, "CAP_NET_ADMIN": unix.CAP_NET_ADMIN,
	"CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_IPC_LOCK": unix.CAP_IPC_LOCK, "CAP_IPC_OWNER": unix.CAP_IPC_OWNER,
	"CAP_SYS_MODULE": unix.CAP_SYS_MODULE, "CAP_SYS_RAWIO": unix.CAP_SYS_RAWIO,
	"CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT, "CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE,
	"CAP_SYS_PACCT": unix.CAP_SYS_PACCT, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN,
	"CAP_SYS_BOOT": unix.CAP_SYS_BOOT, "CAP_SYS_NICE": unix.CAP_SYS_NICE,
	"CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE, "CAP_SYS_TIME": unix.CAP_SYS_TIME,
	"CAP_SYS_TTY_CONFIG": unix.CAP_SYS_TTY_CONFIG, "CAP_MKNOD": unix.CAP_MKNOD,
	"CAP_LEASE": unix.CAP_LEASE, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE,
	"CAP_AUDIT_CONTROL": unix.CAP_AUDIT_CONTROL, "CAP_SETFCAP": unix.CAP_SETFCAP,
	"CAP_MAC_OVERRIDE": unix.CAP_MAC_OVERRIDE, "CAP_MAC_ADMIN": unix.CAP_MAC_ADMIN,
	"CAP_SYSLOG": unix.CAP_SYSLOG, "CAP_WAKE_ALARM": unix.CAP_WAKE_ALARM,
	"CAP_BLOCK_SUSPEND": unix.CAP_BLOCK_SUSPEND, "CAP_AUDIT_READ": unix.CAP_AUDIT_READ,
	"CAP_PERFMON": unix.CAP_PERFMON, "CAP_BPF": unix.CAP_BPF,
	"CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
}

// capBits turns capability names into a bit set.
func capBits(names []string) (uint64, error) {
	var bits uint64
	for _, n := range names {
		c, ok := capNames[strings.ToUpper(n)]
		if !ok {
			return 0, fmt.Errorf("unknown capability %q", n)
		}
		bits |= 1 << c
	}
	return bits, nil
}

func lastCap() uintptr {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return unix.CAP_LAST_CAP
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return unix.CAP_LAST_CAP
	}
	return uintptr(v)
}

// dropBounding removes every capability not in keep from the calling
// thread's bounding set (capabilities belong to threads: the caller must be
// locked to its OS thread and exec from it). The bounding set is what a root
// process gets at exec, so this is what really takes CAP_SYS_ADMIN away. It
// needs CAP_SETPCAP, so it comes before any change of user.
func dropBounding(keep uint64) error {
	last := lastCap()
	for c := uintptr(0); c <= last; c++ {
		if keep&(1<<c) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("dropping capability %d from the bounding set: %v", c, err)
		}
	}
	return nil
}

// setCaps sets the calling thread's effective, permitted and inheritable
// capabilities.
func setCaps(effective, permitted, inheritable uint64) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	data[0] = unix.CapUserData{Effective: uint32(effective), Permitted: uint32(permitted), Inheritable: uint32(inheritable)}
	data[1] = unix.CapUserData{Effective: uint32(effective >> 32), Permitted: uint32(permitted >> 32), Inheritable: uint32(inheritable >> 32)}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %v", err)
	}
	return nil
}

// raiseAmbient adds capabilities to the ambient set: the only way a
// non-root program keeps a capability across exec without file caps. The
// kernel raises one only if it is both permitted and inheritable; runc
// raises them one by one and only warns about those it refuses (runc's own
// `runc spec` once wrote ambient capabilities with no inheritable set at
// all), so a config runc runs runs here too. It returns the refused ones.
func raiseAmbient(bits uint64) []string {
	var refused []string
	for c := uintptr(0); c < 64; c++ {
		if bits&(1<<c) != 0 {
			if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, c, 0, 0); err != nil {
				refused = append(refused, capName(c))
			}
		}
	}
	return refused
}

// warnAmbient says which ambient capabilities were not raised.
func warnAmbient(refused []string) {
	if len(refused) > 0 {
		fmt.Fprintf(os.Stderr, "%s: warning: ambient capabilities %s not raised: the kernel raises only those both permitted and inheritable (list them in process.capabilities.inheritable); going on without them, as runc does\n",
			name, strings.Join(refused, ", "))
	}
}

// capName is a capability's name, for messages.
func capName(c uintptr) string {
	for name, bit := range capNames {
		if bit == c {
			return name
		}
	}
	return strconv.Itoa(int(c))
}

// maskPath hides a path: /dev/null over a file, an empty read-only tmpfs
// over a directory. Missing paths are fine: kernels differ.
func maskPath(p string, hook trace.Hook) (bool, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return false, nil
	}
	if fi.IsDir() {
		hook.Call("", `mount("tmpfs", %q, "tmpfs", MS_RDONLY, "size=0")`, p)
		return true, unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0")
	}
	hook.Call("", `mount("/dev/null", %q, "", MS_BIND, "")`, p)
	return true, unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
}

// readonlyPath makes a path read-only: bind it onto itself (so it is a
// mount of its own), then remount that bind read-only.
func readonlyPath(p string, hook trace.Hook) (bool, error) {
	if _, err := os.Stat(p); err != nil {
		return false, nil
	}
	hook.Call("", `mount(%q, %q, "", MS_BIND | MS_REC, "")`, p, p)
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return true, err
	}
	hook.Call("", `mount(%q, %q, "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "")`, p, p)
	return true, unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
}

// newSessionKeyring gives this thread (and what it execs) a new, empty
// session keyring. The kernel's keyrings are not namespaced: without this,
// the container shares the session keyring of whoever started the runtime
// (a host root's keys, readable, and a place to plant keys for the host).
// runc does the same for every container.
func newSessionKeyring() error {
	// KEYCTL_JOIN_SESSION_KEYRING with a NULL name: a new anonymous one.
	if _, _, e := unix.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0); e != 0 {
		return fmt.Errorf("keyctl(KEYCTL_JOIN_SESSION_KEYRING): %v", e)
	}
	return nil
}

// removeMadeNodes removes the device nodes and links the container's init
// made in a bundle's own rootfs/dev (see makeDevices). The rootfs belongs to
// the container, which may have turned rootfs/dev into a symlink to the
// host's /dev by now: every name is looked up beneath the rootfs without
// following any symlink, and only a device node or a link is removed.
func removeMadeNodes(containerDir string) {
	list, err := os.ReadFile(filepath.Join(containerDir, madeNodesFile))
	if err != nil {
		return
	}
	spec, err := readSpec(filepath.Join(containerDir, "config.json"))
	if err != nil {
		return
	}
	root, err := unix.Open(spec.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(root)
	made := strings.Fields(string(list))
	slices.Reverse(made) // the directories made for nodes come before them
	for _, rel := range made {
		dir, err := unix.Openat2(root, filepath.Dir(rel), &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err != nil {
			continue
		}
		var st unix.Stat_t
		base := filepath.Base(rel)
		if unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			if t := st.Mode & unix.S_IFMT; t == unix.S_IFCHR || t == unix.S_IFBLK || t == unix.S_IFLNK {
				_ = unix.Unlinkat(dir, base, 0)
			} else if t == unix.S_IFDIR {
				_ = unix.Unlinkat(dir, base, unix.AT_REMOVEDIR) // only if empty: nothing of the image's
			}
		}
		unix.Close(dir)
	}
}

// checkSysctl accepts only a kernel parameter that belongs to a namespace
// the container has of its own: most of /proc/sys is global, and a value
// written there from a container is the host's (kernel.core_pattern names a
// program the kernel runs as root on the host). The same list as runc's.
func checkSysctl(key string, s *Spec) error {
	kind, err := sysctlNamespace(key)
	if err != nil {
		return err
	}
	own := slices.Contains(s.Namespaces, kind)
	if p := s.JoinNamespaces[kind]; p != "" {
		// Joined: it must not be the host's own namespace.
		var a, b unix.Stat_t
		own = unix.Stat(p, &a) == nil && unix.Stat("/proc/self/ns/"+kind, &b) == nil && a.Ino != b.Ino
	}
	if !own {
		return fmt.Errorf("%s needs a %s namespace of the container's own", key, kind)
	}
	return nil
}

// sysctlNamespace says which kind of namespace a kernel parameter belongs
// to, or refuses it.
func sysctlNamespace(key string) (string, error) {
	if !sysctlName.MatchString(key) {
		return "", fmt.Errorf("%q is not a sysctl name (dot-separated words, like net.ipv4.ip_forward)", key)
	}
	switch {
	case ipcSysctls[key] || strings.HasPrefix(key, "fs.mqueue."):
		return "ipc", nil
	case strings.HasPrefix(key, "net."):
		return "net", nil
	case key == "kernel.domainname":
		return "uts", nil
	}
	return "", fmt.Errorf("%s is not namespaced: it would change the host's value (only net.*, fs.mqueue.*, kernel.domainname and the System V IPC limits are)", key)
}

var (
	sysctlName = regexp.MustCompile(`^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$`)
	ipcSysctls = map[string]bool{"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true,
		"kernel.sem": true, "kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true,
		"kernel.shm_rmid_forced": true}
)

// writeSysctl sets a namespaced kernel parameter (net.*, kernel.shm*, ...).
func writeSysctl(key, value string) error {
	p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	return os.WriteFile(p, []byte(value), 0o644)
}

// loopbackUp brings up lo in a new network namespace: the only interface
// it has, and it starts down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// applyDeviceRules fences the container in to the device nodes it was
// given: without it, root inside (which keeps CAP_MKNOD) could make a node
// for the host's disk and read it. cgroup v1 has the devices controller's
// allow and deny files; cgroup v2 asks an eBPF program attached to the
// group (see the devices package).
func (rt *Runtime) applyDeviceRules(g *cgroup.Group, rules []devices.Rule) error {
	if dir := g.Path("devices"); dir != "" {
		rt.n.Call("echo a > %s/devices.deny; echo 'c 1:3 rwm' > devices.allow ...   # %d rules", dir, len(rules))
		return devices.ApplyV1(dir, rules)
	}
	for _, dir := range g.Dirs() {
		if isCgroup2(dir) {
			rt.n.Call("bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE); bpf(BPF_PROG_ATTACH, %s)   # %d rules", dir, len(rules))
			_, err := devices.AttachV2(dir, rules)
			return err
		}
	}
	return errors.New("cannot enforce device rules here: there is no v1 devices controller, and the container's cgroup is not on cgroup v2")
}

// defaultDeviceRules are Docker's: nothing but the container's own device
// nodes and its terminals may be read or written; any node may be made
// (mknod), but not used.
func defaultDeviceRules(nodes []Device) []devices.Rule {
	num := func(v int64) *int64 { return &v }
	rules := []devices.Rule{{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Access: "m"}, {Allow: true, Type: "b", Access: "m"},
		{Allow: true, Type: "c", Major: num(136), Access: "rwm"},              // the ptys of devpts
		{Allow: true, Type: "c", Major: num(5), Minor: num(2), Access: "rwm"}} // /dev/ptmx
	return append(rules, nodeRules(nodes)...)
}

// nodeRules allows the device nodes the runtime itself creates in /dev.
func nodeRules(nodes []Device) []devices.Rule {
	var rules []devices.Rule
	for _, d := range nodes {
		typ := "c"
		if d.Type == unix.S_IFBLK {
			typ = "b"
		} else if d.Type == unix.S_IFIFO {
			continue // a FIFO is no device
		}
		major, minor := int64(d.Major), int64(d.Minor)
		rules = append(rules, devices.Rule{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: "rwm"})
	}
	return rules
}

// alwaysAllowed are the devices runc allows after an OCI caller's rules,
// whatever they say (its specconv.AllowedDevices): making any node (m),
// the terminals (/dev/console, the container's ptys and /dev/ptmx, which
// `docker run -t` needs) and /dev/net/tun. Docker's own rules count on them.
func alwaysAllowed() []devices.Rule {
	n := func(v int64) *int64 { return &v }
	return []devices.Rule{ // no major or minor: any
		{Allow: true, Type: "c", Access: "m"},
		{Allow: true, Type: "b", Access: "m"},
		{Allow: true, Type: "c", Major: n(5), Minor: n(1), Access: "rwm"},    // /dev/console
		{Allow: true, Type: "c", Major: n(136), Access: "rwm"},               // /dev/pts/*
		{Allow: true, Type: "c", Major: n(5), Minor: n(2), Access: "rwm"},    // /dev/ptmx
		{Allow: true, Type: "c", Major: n(10), Minor: n(200), Access: "rwm"}, // /dev/net/tun
	}
}

// seccompOption is `run --security-opt`: Docker's default profile unless
// seccomp=unconfined; seccomp=FILE, a profile in Docker's JSON format.
// Either is rendered for the container's capabilities, as Docker's daemon
// renders it before it writes config.json.
func seccompOption(opts []string, caps []string) (*specs.LinuxSeccomp, error) {
	profile, file := seccomp.DockerDefault(), ""
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		switch {
		case k != "seccomp" || v == "":
			return nil, stage.Fail("--security-opt %s: use seccomp=unconfined or seccomp=FILE (a profile in Docker's format)", o)
		case v == "unconfined":
			profile, file = nil, ""
			continue
		}
		b, err := os.ReadFile(v)
		if err != nil {
			return nil, stage.Fail("--security-opt %s: %v", o, err)
		}
		if profile, err = seccomp.ParseProfile(b); err != nil {
			return nil, stage.Fail("--security-opt %s: %v", o, err)
		}
		file = v
	}
	if profile == nil {
		return nil, nil
	}
	out, err := seccomp.Render(profile, caps)
	if err == nil && out != nil && file != "" {
		err = seccomp.Check(out)
	}
	if err != nil {
		return nil, stage.Fail("--security-opt seccomp=%s: %v", file, err)
	}
	return out, nil
}

// seccompFilter compiles the container's filter (nil without one).
func seccompFilter(spec *Spec) (*seccomp.Filter, error) {
	if spec.Seccomp == nil {
		return nil, nil
	}
	f, err := seccomp.Compile(spec.Seccomp)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp.%v", err)
	}
	return f, nil
}

// installSeccomp installs the filter on this thread: what it execs, and
// every process that descends from that, runs under it, for good. It is
// the last step before execve, so that the runtime's own setup is not
// filtered (runc's order): with no_new_privs, after the capabilities are
// dropped; without it, the kernel takes a filter only from a thread that
// holds CAP_SYS_ADMIN, so before (see dropPrivileges).
func installSeccomp(n *narrate.Narrator, f *seccomp.Filter) error {
	if f == nil {
		return nil
	}
	narrateSeccomp(n, f, "")
	return f.Install()
}

// narrateSeccomp says what installing f does (where: "" for this thread,
// or "in the child, ...").
func narrateSeccomp(n *narrate.Narrator, f *seccomp.Filter, where string) {
	if where != "" {
		where += ": "
	}
	n.Call("seccomp(SECCOMP_SET_MODE_FILTER, %s, &prog)   # %sinstall a seccomp filter: %d rules, default action %s, program of %d instructions",
		seccompFlagNames(f.Flags), where, f.Rules, seccomp.ActionName(f.Default), len(f.Program))
	if !n.Quiet() {
		n.Note("the rules name %d system calls; the program's first instructions (the kernel runs it on every call):", f.Calls)
		for _, l := range f.Dump(12) {
			n.Say("  %s", l)
		}
		n.Say("  ... (%d instructions in all)", len(f.Program))
	}
}

func seccompFlagNames(flags uintptr) string {
	var out []string
	if flags&unix.SECCOMP_FILTER_FLAG_LOG != 0 {
		out = append(out, "SECCOMP_FILTER_FLAG_LOG")
	}
	if flags&unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW != 0 {
		out = append(out, "SECCOMP_FILTER_FLAG_SPEC_ALLOW")
	}
	if len(out) == 0 {
		return "0"
	}
	return strings.Join(out, " | ")
}

// dropPrivileges is the end of the hardening, on the thread that will
// exec: the user and the capabilities, and the seccomp filter. Without
// no_new_privs the filter goes on first, while this thread still holds
// CAP_SYS_ADMIN, and the change of user runs under it (Docker's profile
// allows what it needs: capset, setresuid, prctl ...).
func dropPrivileges(n *narrate.Narrator, spec *Spec, keep uint64, f *seccomp.Filter) error {
	if !spec.NoNewPrivs {
		if err := installSeccomp(n, f); err != nil {
			return err
		}
	}
	if err := switchUser(spec, keep); err != nil {
		return err
	}
	if spec.NoNewPrivs {
		return installSeccomp(n, f)
	}
	return nil
}
