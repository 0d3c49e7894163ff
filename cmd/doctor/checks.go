package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/mountinfo"

	"github.com/container-internals/workshop/internal/toolchain"
)

// status is a check's verdict.
type status int

const (
	pass status = iota
	warn        // works, but something differs from the VM or is worth knowing
	fail        // a stage will not work here until this is fixed
)

func (s status) String() string {
	return [...]string{"pass", "WARN", "FAIL"}[s]
}

// result is one row of the doctor's table.
type result struct {
	name   string
	status status
	detail string // what was found
	fix    string // for warn and fail: the command or change that fixes it
}

// host says where the doctor looks. Every path can be redirected (flags and
// environment variables), so that the tests run the real checks on a fake
// mount table or cgroup tree.
type host struct {
	proc        string   // procfs: self/mountinfo, self/ns/*, filesystems, sys/kernel/osrelease
	cgroupRoot  string   // where cgroups are mounted: /sys/fs/cgroup
	overlayDirs []string // where stages keep layers: an overlay must work on their filesystems
	secureDirs  []string // sudo's secure_path on Debian and Ubuntu
	apparmorDir string   // AppArmor's profiles: /etc/apparmor.d
	euid        int
	lookPath    func(string) (string, error)
}

func defaultHost() host {
	return host{
		proc:        "/proc",
		cgroupRoot:  "/sys/fs/cgroup",
		overlayDirs: []string{"/var/lib", "/tmp"},
		secureDirs:  []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", "/snap/bin"},
		apparmorDir: "/etc/apparmor.d",
		euid:        os.Geteuid(),
		lookPath:    exec.LookPath,
	}
}

// checkAll runs every check, in the order a learner meets the stages.
func checkAll(h host) []result {
	var rs []result
	rs = append(rs, checkRoot(h))
	rs = append(rs, checkKernel(h))
	rs = append(rs, checkNamespaces(h)...)
	rs = append(rs, checkUserNamespaceRestriction(h)...)
	mounts, err := readMountinfo(h.proc)
	if err != nil {
		rs = append(rs, result{"mount table", fail, err.Error(),
			"is /proc mounted? `sudo mount -t proc proc /proc`"})
	} else {
		rs = append(rs, checkProc(h, mounts)...)
		rs = append(rs, checkPropagation(mounts))
		rs = append(rs, checkCgroups(h, mounts)...)
	}
	rs = append(rs, checkOverlay(h, mounts)...)
	rs = append(rs, checkNetwork(h)...)
	rs = append(rs, checkGo(h)...)
	rs = append(rs, checkHelpers(h)...)
	return rs
}

// --- root ----------------------------------------------------------------

func checkRoot(h host) result {
	if h.euid == 0 {
		if u := os.Getenv("SUDO_USER"); u != "" {
			return result{name: "root", detail: "running as root (through sudo, for " + u + ")"}
		}
		return result{name: "root", detail: "running as root (uid 0)"}
	}
	if p, err := h.lookPath("sudo"); err == nil {
		return result{name: "root", detail: fmt.Sprintf("uid %d, with sudo at %s: run stages as `sudo go run ./NN-...`", h.euid, p)}
	}
	return result{"root", fail, fmt.Sprintf("uid %d and no sudo: namespaces, mounts and cgroups need root", h.euid),
		"log in as root, or as root: `apt-get install -y sudo && usermod -aG sudo YOU`"}
}

// --- kernel --------------------------------------------------------------

// minKernel is the oldest kernel the stages are written for: cgroup v2's
// cpu controller appeared in 4.15, and 4.18 is the oldest still-supported
// enterprise kernel.
var minKernel = [2]int{4, 18}

func checkKernel(h host) result {
	b, err := os.ReadFile(filepath.Join(h.proc, "sys/kernel/osrelease"))
	if err != nil {
		return result{"kernel", fail, "cannot read the kernel release: " + err.Error(), "is /proc mounted?"}
	}
	rel := strings.TrimSpace(string(b))
	maj, min, ok := kernelVersion(rel)
	need := fmt.Sprintf("%d.%d", minKernel[0], minKernel[1])
	if !ok {
		return result{"kernel", warn, "cannot parse kernel release " + strconv.Quote(rel), "the stages need Linux " + need + " or newer"}
	}
	if maj < minKernel[0] || (maj == minKernel[0] && min < minKernel[1]) {
		return result{"kernel", fail, "Linux " + rel + " is older than " + need, "use the workshop VM (`vagrant up`, Ubuntu 24.04, Linux 6.8)"}
	}
	return result{name: "kernel", detail: "Linux " + rel + " (" + need + " or newer needed)"}
}

var kernelRE = regexp.MustCompile(`^(\d+)\.(\d+)`)

func kernelVersion(rel string) (major, minor int, ok bool) {
	m := kernelRE.FindStringSubmatch(rel)
	if m == nil {
		return 0, 0, false
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	return major, minor, true
}

// --- namespaces ----------------------------------------------------------

// The seven kinds, one clone flag each, as /proc/self/ns names them.
var namespaceKinds = []struct{ name, flag, config string }{
	{"pid", "CLONE_NEWPID", "CONFIG_PID_NS"},
	{"mnt", "CLONE_NEWNS", "CONFIG_NAMESPACES"},
	{"uts", "CLONE_NEWUTS", "CONFIG_UTS_NS"},
	{"ipc", "CLONE_NEWIPC", "CONFIG_IPC_NS"},
	{"net", "CLONE_NEWNET", "CONFIG_NET_NS"},
	{"user", "CLONE_NEWUSER", "CONFIG_USER_NS"},
	{"cgroup", "CLONE_NEWCGROUP", "CONFIG_CGROUPS"},
}

func checkNamespaces(h host) []result {
	var rs []result
	for _, k := range namespaceKinds {
		p := filepath.Join(h.proc, "self/ns", k.name)
		name := "namespace " + k.name
		if _, err := os.Lstat(p); err != nil {
			rs = append(rs, result{name, fail, fmt.Sprintf("%s is missing: this kernel has no %s namespace", p, k.name),
				"use a kernel built with " + k.config + ", such as the workshop VM's"})
			continue
		}
		rs = append(rs, result{name: name, detail: fmt.Sprintf("%s (%s)", p, k.flag)})
	}
	return rs
}

// Ubuntu 24.04 lets AppArmor refuse unprivileged user namespaces
// (kernel.apparmor_restrict_unprivileged_userns=1): a program may create
// one only if an AppArmor profile that attaches to it allows `userns`.
// The stages run as root and do not care; stage 06's rootless `run` (an
// ordinary user's) needs one. scripts/provision.sh installs such a profile
// for the workshop's binary alone (workshopBinary); the sysctl would lift
// the restriction for every program on the machine.
const (
	workshopBinary  = "/usr/local/bin/workshop"
	workshopProfile = "workshop"
)

func checkUserNamespaceRestriction(h host) []result {
	b, err := os.ReadFile(filepath.Join(h.proc, "sys/kernel/apparmor_restrict_unprivileged_userns"))
	if err != nil || strings.TrimSpace(string(b)) != "1" {
		return nil
	}
	const name = "rootless userns"
	profile := filepath.Join(h.apparmorDir, workshopProfile)
	if p, err := os.ReadFile(profile); err == nil && strings.Contains(string(p), workshopBinary) && regexp.MustCompile(`(?m)^\s*userns,`).Match(p) {
		return []result{{name: name, detail: fmt.Sprintf("restricted by AppArmor (Ubuntu's default), and %s allows it for %s: run rootless as `%s run -- sh` (not `go run`, whose binary the profile does not name)", profile, workshopBinary, workshopBinary)}}
	}
	return []result{{name, warn, "restricted by AppArmor (Ubuntu's default): an ordinary user's `run` (stage 06 rootless) cannot create its user namespace; the stages run as root and are not affected",
		fmt.Sprintf("for the workshop's binary only: `sudo scripts/provision.sh` (builds %s and installs %s, which allows `userns` for it alone); "+
			"for every program: `sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`", workshopBinary, profile)}}
}

// --- the mount table -----------------------------------------------------

// mountEntry is one line of /proc/self/mountinfo (see proc(5)).
type mountEntry = mountinfo.Mount

func readMountinfo(proc string) ([]mountEntry, error) {
	return mountinfo.Read(filepath.Join(proc, "self/mountinfo"))
}

// A stage that mounts a new proc without first making / private (or one
// killed half-way) leaves a second /proc over the host's: ps then shows the
// container's processes, or nothing.
func checkProc(h host, mounts []mountEntry) []result {
	n := 0
	for _, m := range mounts {
		if m.Point == "/proc" && m.FSType == "proc" {
			n++
		}
	}
	if n > 1 {
		return []result{{"host /proc", fail, fmt.Sprintf("%d proc filesystems are stacked on /proc: one leaked from a container run without MS_PRIVATE", n),
			"`sudo umount /proc` once (it removes the top one), then `make doctor` again"}}
	}
	if self, err := os.Readlink(filepath.Join(h.proc, "self")); err == nil && self != strconv.Itoa(os.Getpid()) {
		return []result{{"host /proc", fail, fmt.Sprintf("%s/self is %s but this process is %d: /proc belongs to another PID namespace", h.proc, self, os.Getpid()),
			"`sudo umount /proc` (a container's proc is mounted over the host's), then `make doctor` again"}}
	}
	return []result{{name: "host /proc", detail: "one proc on /proc, of this PID namespace"}}
}

// --- propagation ---------------------------------------------------------

func checkPropagation(mounts []mountEntry) result {
	root, ok := mountinfo.At(mounts, "/")
	if !ok {
		return result{"propagation of /", warn, "no mount at / in the mount table", "is this a chroot? run the doctor on the machine itself"}
	}
	for _, o := range root.Optional {
		if strings.HasPrefix(o, "shared:") {
			return result{name: "propagation of /", detail: "shared (" + o + "), as systemd mounts it: a stage must make / private in its new mount namespace before mounting anything (ours do), or its mounts appear on the host"}
		}
	}
	for _, o := range root.Optional {
		if strings.HasPrefix(o, "master:") {
			return result{name: "propagation of /", detail: "slave (" + o + "): mounts from the host reach containers, never the reverse"}
		}
	}
	return result{name: "propagation of /", detail: "private: mounts made in a new namespace cannot leak here even without MS_PRIVATE (in the workshop VM / is shared)"}
}

// --- cgroups -------------------------------------------------------------

// The controllers the stages use: cpu (stage 03 and 06), memory and pids
// (stage 06's limits).
var controllers = []struct {
	name     string
	severity status
	why      string
}{
	{"cpu", fail, "stage 03's 20% quota"},
	{"memory", warn, "memory limits in stage 06"},
	{"pids", warn, "the process limit in stage 06"},
}

func checkCgroups(h host, mounts []mountEntry) []result {
	var v1, v2 []mountEntry
	for _, m := range mounts {
		switch {
		case m.FSType == "cgroup2":
			v2 = append(v2, m)
		case m.FSType == "cgroup" && strings.HasPrefix(m.Point, h.cgroupRoot+"/"):
			v1 = append(v1, m)
		}
	}
	var unified *mountEntry // the cgroup2 hierarchy the stages would use
	for i := range v2 {
		if v2[i].Point == h.cgroupRoot || unified == nil {
			unified = &v2[i]
		}
	}

	var rs []result
	mode := result{name: "cgroup mode"}
	switch {
	case unified != nil && unified.Point == h.cgroupRoot:
		mode.detail = "v2 only (unified): one hierarchy at " + h.cgroupRoot + ", as in the workshop VM; stages write cpu.max and cgroup.procs"
	case len(v1) > 0 && unified != nil:
		names := v1Controllers(v1)
		inV2 := readWords(filepath.Join(unified.Point, "cgroup.controllers"))
		v2Has := describeList(inV2, "no controllers")
		if !slices.Contains(inV2, "cpu") && !slices.Contains(inV2, "memory") && !slices.Contains(inV2, "pids") {
			v2Has += " (none of cpu, memory, pids)"
		}
		mode.detail = fmt.Sprintf("hybrid: v1 hierarchies for %s under %s, cgroup2 at %s with %s; stages use the v1 files (cpu.cfs_quota_us, tasks)",
			strings.Join(names, ", "), h.cgroupRoot, unified.Point, v2Has)
	case len(v1) > 0:
		mode.detail = "v1 only (legacy): one hierarchy per controller under " + h.cgroupRoot + "; stages use the v1 files (cpu.cfs_quota_us, tasks)"
	default:
		return []result{{"cgroup mode", fail, "no cgroup filesystem is mounted under " + h.cgroupRoot,
			"`sudo mount -t cgroup2 none " + h.cgroupRoot + "` (or boot a systemd distribution, such as the workshop VM)"}}
	}
	rs = append(rs, mode)

	for _, c := range controllers {
		rs = append(rs, checkController(c.name, c.severity, c.why, v1, unified))
	}
	return append(rs, checkLeftoverCgroups(v1, unified))
}

// A stage killed with SIGKILL (or a crashed VM session) cannot remove its
// cgroup. Stage 03's group is called "container", as in the article; stage
// 06's live under "workshop/".
func checkLeftoverCgroups(v1 []mountEntry, unified *mountEntry) result {
	var roots []string
	for _, m := range v1 {
		roots = append(roots, m.Point)
	}
	if unified != nil {
		roots = append(roots, unified.Point)
	}
	var left []string
	for _, r := range roots {
		entries, err := os.ReadDir(r)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.IsDir() && (e.Name() == "container" || strings.HasPrefix(e.Name(), "workshop")) {
				left = append(left, filepath.Join(r, e.Name()))
			}
		}
	}
	if len(left) == 0 {
		return result{name: "leftover cgroups", detail: "none (no container or workshop* group left by an interrupted run)"}
	}
	return result{"leftover cgroups", warn, "left by an interrupted run (or a stage 06 container still running): " + strings.Join(left, " "),
		"`sudo go run ./06-full-container ps` lists running containers; otherwise `sudo rmdir` each group, deepest first " +
			"(if rmdir says busy, `cat DIR/cgroup.procs` lists the processes still inside: stop them first)"}
}

func checkController(name string, severity status, why string, v1 []mountEntry, unified *mountEntry) result {
	row := "cgroup " + name
	for _, m := range v1 {
		for _, o := range strings.Split(m.Super, ",") {
			if o == name {
				return result{name: row, detail: "v1 hierarchy at " + m.Point}
			}
		}
	}
	if unified == nil {
		return result{row, severity, "no v1 hierarchy has it and there is no cgroup2: " + why + " will not work",
			"boot with the " + name + " controller enabled (use the workshop VM)"}
	}
	dir := unified.Point
	if !slices.Contains(readWords(filepath.Join(dir, "cgroup.controllers")), name) {
		return result{row, severity, "not in " + filepath.Join(dir, "cgroup.controllers") + " (nor in any v1 hierarchy): " + why + " will not work",
			"the kernel lacks it or a v1 hierarchy holds it elsewhere; use the workshop VM"}
	}
	sub := filepath.Join(dir, "cgroup.subtree_control")
	if slices.Contains(readWords(sub), name) {
		return result{name: row, detail: "v2, enabled for child cgroups in " + sub}
	}
	fix := "`echo +" + name + " | sudo tee " + sub + "`"
	if name == "cpu" {
		fix = "real-time threads outside the root cgroup (Ubuntu's multipathd) block it: " +
			"`sudo systemctl disable --now multipathd.service multipathd.socket && sudo systemctl mask multipathd.service && echo +cpu | sudo tee " + sub + "` " +
			"(`sudo scripts/provision.sh` does this, and keeps it after a reboot)"
	}
	return result{row, severity, "v2, but not enabled for child cgroups: it is missing from " + sub, fix}
}

func v1Controllers(v1 []mountEntry) []string {
	var names []string
	for _, m := range v1 {
		for _, o := range strings.Split(m.Super, ",") {
			switch {
			case o == "rw" || o == "ro" || strings.Contains(o, "="):
			default:
				names = append(names, o)
			}
		}
	}
	sort.Strings(names)
	return names
}

func readWords(p string) []string {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

func describeList(list []string, none string) string {
	if len(list) == 0 {
		return none
	}
	return "only " + strings.Join(list, ", ")
}

// --- overlayfs -----------------------------------------------------------

func checkOverlay(h host, mounts []mountEntry) []result {
	known, err := hasFilesystem(h.proc, "overlay")
	if err != nil || !known {
		detail := "the kernel does not list overlay in " + filepath.Join(h.proc, "filesystems")
		if err != nil {
			detail = err.Error()
		}
		return []result{{"overlayfs", fail, detail, "`sudo modprobe overlay`, then `make doctor` again"}}
	}
	rs := []result{{name: "overlayfs", detail: "the kernel offers overlay"}}
	for _, dir := range h.overlayDirs {
		name := "overlay upper on " + dir
		fstype := "?"
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			if m, ok := mountinfo.Containing(mounts, real); ok {
				fstype = m.FSType
			}
		}
		if h.euid != 0 {
			rs = append(rs, result{name, warn, "not tried (" + fstype + "): mounting needs root", "run the doctor as root: `make doctor` or `sudo bin/doctor`"})
			continue
		}
		if err := tryOverlay(dir); err != nil {
			rs = append(rs, result{name, fail, fmt.Sprintf("a test overlay with its upper dir on %s (%s) failed: %v", dir, fstype, err),
				"keep layers on the machine's own disk (ext4, xfs, btrfs, tmpfs): shared folders (vboxsf, nfs, 9p, sshfs) and a directory inside another container's overlay cannot hold an upper dir"})
			continue
		}
		rs = append(rs, result{name: name, detail: fmt.Sprintf("%s: mounted a test overlay, wrote through it, copy-up landed in the upper dir", fstype)})
	}
	return rs
}

func hasFilesystem(proc, name string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(proc, "filesystems"))
	if err != nil {
		return false, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && f[len(f)-1] == name {
			return true, nil
		}
	}
	return false, nil
}

// tryOverlay mounts a tiny overlay whose upper dir is on dir's filesystem,
// writes through it, and checks that copy-up happened. The mount is made in
// a private mount namespace of one OS thread, which dies with the thread:
// nothing can leak to the host, even if the doctor is killed half-way.
func tryOverlay(dir string) error {
	tmp, err := os.MkdirTemp(dir, "workshop-doctor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	done := make(chan error, 1)
	go func() {
		// Never unlocked: Go ends the thread, and its namespace, with the goroutine.
		runtime.LockOSThread()
		done <- overlayInPrivateNamespace(tmp)
	}()
	return <-done
}

func overlayInPrivateNamespace(tmp string) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare(CLONE_NEWNS): %v", err)
	}
	// A new mount namespace copies the host's propagation: with / shared,
	// the test mount would appear on the host. Make it private first.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %v", err)
	}
	d := func(n string) string { return filepath.Join(tmp, n) }
	for _, n := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(d(n), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(d("lower/x"), []byte("lower\n"), 0o644); err != nil {
		return err
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", d("lower"), d("upper"), d("work"))
	if err := unix.Mount("overlay", d("merged"), "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay: %v", err)
	}
	defer unix.Unmount(d("merged"), unix.MNT_DETACH)
	if err := os.WriteFile(d("merged/x"), []byte("changed\n"), 0o644); err != nil {
		return fmt.Errorf("write through the overlay: %v", err)
	}
	if b, err := os.ReadFile(d("upper/x")); err != nil || string(b) != "changed\n" {
		return fmt.Errorf("no copy-up into the upper dir")
	}
	if b, _ := os.ReadFile(d("lower/x")); string(b) != "lower\n" {
		return fmt.Errorf("the lower dir changed")
	}
	return nil
}

// --- Go ------------------------------------------------------------------

var minGo = [2]int{1, 22}

func checkGo(h host) []result {
	p, err := h.lookPath("go")
	if err != nil {
		return []result{{"go", fail, "no go on PATH", "`sudo scripts/provision.sh` installs Go 1.23.4; any Go 1.22 or newer works"}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p, "env", "GOVERSION")
	cmd.Dir = "/" // outside any module: no toolchain switch, no download
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	out, err := cmd.Output()
	v := strings.TrimSpace(string(out))
	var rs []result
	maj, min, ok := goVersion(v)
	switch {
	case err != nil:
		rs = append(rs, result{"go", fail, fmt.Sprintf("%s env GOVERSION: %v", p, err), "reinstall Go: `sudo scripts/provision.sh`"})
	case !ok:
		rs = append(rs, result{"go", warn, fmt.Sprintf("%s reports %q", p, v), "the workshop needs Go 1.22 or newer"})
	case maj < minGo[0] || (maj == minGo[0] && min < minGo[1]):
		rs = append(rs, result{"go", fail, fmt.Sprintf("%s is %s, older than go1.22", p, v), "`sudo scripts/provision.sh` installs Go 1.23.4"})
	default:
		rs = append(rs, result{name: "go", detail: fmt.Sprintf("%s at %s (go1.22 or newer needed)", v, p)})
	}
	rs = append(rs, checkGoUnderSudo(h, p))
	return rs
}

var goVersionRE = regexp.MustCompile(`^go(\d+)\.(\d+)`)

func goVersion(v string) (major, minor int, ok bool) {
	m := goVersionRE.FindStringSubmatch(v)
	if m == nil {
		return 0, 0, false
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	return major, minor, true
}

// sudo replaces PATH with its secure_path, which does not include
// /usr/local/go/bin: `sudo go run` then says "go: command not found".
func checkGoUnderSudo(h host, goPath string) result {
	for _, d := range h.secureDirs {
		p := filepath.Join(d, "go")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return result{name: "go under sudo", detail: p + " is on sudo's secure_path"}
		}
	}
	real := goPath
	if r, err := filepath.EvalSymlinks(goPath); err == nil {
		real = r
	}
	return result{"go under sudo", warn, "no go in sudo's secure_path (" + strings.Join(h.secureDirs, ":") + "): `sudo go run ./01-...` will say `go: command not found`",
		"`sudo ln -s " + real + " /usr/local/bin/go` (the provisioning script does it)"}
}

// --- helper programs -----------------------------------------------------

var helpers = []struct {
	name, pkg string
	severity  status
	why       string
}{
	{"busybox", "busybox-static", fail, "a one-file shell and coreutils for the containers' root filesystems"},
	{"ps", "procps", fail, "what the PID namespace hides"},
	{"make", "make", fail, "`make tour`, `make test`"},
	{"tree", "tree", warn, "shows the layers and root filesystems"},
	{"gcc", "gcc", warn, "the exercises that rebuild the articles' C programs"},
	{"lsns", "util-linux", warn, "lists namespaces"},
	{"nsenter", "util-linux", warn, "enters a running container (docker exec)"},
	{"mount", "mount", warn, "stages 02 and 03 show `mount -l` and `mount -t cgroup` as the articles do"},
	{"top", "procps", warn, "stage 03 shows the busy loop's line in `top`, as the articles do"},
	{"getfattr", "attr", warn, "stage 05's exercise 1 reads overlayfs's opaque xattr"},
	{"strace", "strace", warn, "stage 06's exercise 6 finds every system call of a run"},
	{"jq", "jq", warn, "the OCI chapter edits config.json with it"},
	{"qemu-system-x86_64", "qemu-system-x86", warn, "`make test` runs the whole suite again in a pure cgroup v2 VM under QEMU"},
}

func checkHelpers(h host) []result {
	var rs []result
	for _, hp := range helpers {
		row := "program " + hp.name
		p, err := h.lookPath(hp.name)
		if err != nil {
			rs = append(rs, result{row, hp.severity, "not found on PATH (" + hp.why + ")", "`sudo apt-get install -y " + hp.pkg + "`"})
			continue
		}
		if hp.name == "busybox" && !toolchain.IsStatic(p) {
			rs = append(rs, result{row, hp.severity, p + " is dynamically linked: copied into a bare root filesystem it cannot start",
				"`sudo apt-get install -y busybox-static`"})
			continue
		}
		rs = append(rs, result{name: row, detail: p})
	}
	return rs
}
