package main

// Rootless: `run` started by an ordinary user.
//
// userns.go gives a container a user namespace, made by the runtime as the
// host's root: it mounts the overlay in the host's mount namespace, writes
// any map it likes, and moves the container into cgroups. An ordinary user
// can do none of that. What the kernel does let an ordinary user do is
// create a user namespace (unless the distribution forbids it: Ubuntu 24.04
// does, through AppArmor; `make doctor` says so) and be root in it: all
// the capabilities, over the namespaces that user namespace owns and over
// nothing of the host's.
//
// So, as rootless Podman and rootlesskit do, the runtime first puts
// itself in a user namespace (with a mount namespace of its own), and the
// ordinary code path runs there, as "root":
//
//  1. The outer runtime (uid 1000, say) starts a sealed copy of itself
//     (selfexe.go: CVE-2019-5736) with CLONE_NEWUSER | CLONE_NEWNS. The copy
//     waits, on a pipe, for its maps.
//  2. The outer runtime writes the maps. With newuidmap/newgidmap (the
//     setuid helpers of the uidmap package) and a range for the user in
//     /etc/subuid and /etc/subgid: 0 -> the user's own ID, and 1-65536 ->
//     the user's range, so the image's other users exist. Without them,
//     the one map the kernel lets an unprivileged process write itself:
//     0 -> its own ID, after "deny" in /proc/<pid>/setgroups (else a
//     process could drop a group the host uses to keep it out of a file).
//     Then the container has a single user: root, who is the user.
//  3. The copy re-executes itself: an exec as uid 0 of its namespace gives
//     it the full set of capabilities there (the first exec, before the
//     maps, ran as an unmapped user and kept none).
//  4. The copy is the runtime, root of its namespace, and runs `run` as
//     root would: it mounts the overlay (allowed in a user namespace since
//     Linux 5.11, with "userxattr": see 05's layers.InUserNamespace),
//     clones the container into new PID, mount, UTS, IPC (and network)
//     namespaces, which its user namespace owns, and binds the host's device
//     nodes (mknod is refused) and, without a network namespace of the
//     container's own, the host's /sys (a new sysfs is refused).
//
// What stays out of reach, refused in one line before anything is made:
// a cgroup (its files are the host root's; a systemd host can delegate a
// subtree to a user, which this runtime does not use yet), so no limits and
// no cgroup of the container's own; the bridge network and -p (a veth pair
// and NAT rules are the host's network: rootless Docker and Podman use
// slirp4netns or pasta, user-space network stacks this workshop does not
// have), so the default network is none; --userns (the runtime's own user
// namespace is the container's); -d and --proc-view (a monitor and a FUSE
// server that outlive the command, and more state to clean up as a user).

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/05-overlay-layers/layers"
	"github.com/container-internals/workshop/internal/narrate"
	"github.com/container-internals/workshop/internal/stage"
)

// rootlessArg marks the sealed copy that waits for its maps (step 1).
const rootlessArg = "__rootless__"

// rootlessEnv hands the copy what the outer runtime decided (rootlessMode,
// as JSON). The copy takes it out of its environment at once: no container
// process inherits it.
const rootlessEnv = "_WORKSHOP_ROOTLESS"

// ownIDEnv forces the single-ID map even where newuidmap could do better.
const ownIDEnv = "WORKSHOP_ROOTLESS_OWN_ID"

// rootlessMode is set in the runtime that runs in the user namespace.
type rootlessMode struct {
	On     bool   `json:"-"`
	UID    int    `json:"uid"` // the user, outside
	GID    int    `json:"gid"`
	Parent int    `json:"parent"` // the outer runtime's PID
	Images string `json:"images"` // the default store for this user
	State  string `json:"state"`
	OwnID  bool   `json:"ownID"` // the single-ID map (no newuidmap)
}

var rootless rootlessMode

// rootlessInside is called first thing: in the copy of step 4, it reads
// what the outer runtime decided. The marker counts only inside a user
// namespace (a root who sets it by hand changes nothing).
func rootlessInside() {
	v, ok := os.LookupEnv(rootlessEnv)
	if !ok {
		return
	}
	os.Unsetenv(rootlessEnv)
	if err := json.Unmarshal([]byte(v), &rootless); err != nil || !layers.InUserNamespace() {
		rootless = rootlessMode{}
		return
	}
	rootless.On = true
	// The exec that made it root of its namespace cleared its parent-death
	// signal (the kernel does so when an exec raises capabilities): set it
	// again, and make sure the outer runtime did not die meanwhile.
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	if os.Getppid() != rootless.Parent {
		os.Exit(137)
	}
}

// rootlessWait is the copy of step 1: it waits for its maps, then
// re-executes itself (step 3). /proc/self/exe is the sealed copy, not the
// host's file.
func rootlessWait(args []string) {
	ready := os.NewFile(3, "maps written")
	b := make([]byte, 1)
	if n, _ := ready.Read(b); n != 1 {
		os.Exit(1) // the outer runtime could not write the maps: it says why
	}
	ready.Close()
	err := unix.Exec("/proc/self/exe", append([]string{"workshop-rootless"}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "%s: re-executing in the user namespace: %v\n", name, err)
	os.Exit(1)
}

// refuseRootless says, in one line, why an option needs the host's root.
// It runs on both sides (the outer runtime first: nothing is made).
func refuseRootless(c *cli.Context, o *runOptions) error {
	const as = "as an ordinary user"
	switch {
	case o.bridge && c.IsSet("net"):
		return stage.Fail("--net bridge %s is not possible: the bridge, the container's veth pair and its NAT rules are the host's network, which needs root (rootless Docker and Podman use slirp4netns or pasta, which this workshop does not have): use --net none (the default %s) or --net host", as, as)
	case len(c.StringSlice("publish")) > 0:
		return stage.Fail("-p %s is not possible: publishing a port needs --net bridge, which needs root", as)
	case o.cpuQuota > 0 || o.memory > 0 || o.pids > 0:
		return stage.Fail("%s %s is not possible: a limit needs a cgroup of the container's own, and %s", limitFlag(c), as, cgroupDelegation())
	case len(o.uidMap) > 0:
		return stage.Fail("--userns/--userns-remap %s: a rootless run already has a user namespace, the runtime's own, and the container's root is you: leave the option out", as)
	case o.detach:
		return stage.Fail("-d %s is not supported: a detached container needs a monitor that outlives this command; run it in the foreground, or as root", as)
	case o.procView:
		return stage.Fail("--proc-view %s is not supported: it serves /proc files through FUSE from the host's side and reads the container's cgroup, which a rootless container has not; leave it out, or run as root", as)
	}
	return nil
}

// limitFlag names the first limit given, as the user wrote it.
func limitFlag(c *cli.Context) string {
	for _, f := range []string{"memory", "cpus", "cpu-quota", "pids-limit"} {
		if c.IsSet(f) {
			return "--" + f
		}
	}
	return "a limit"
}

// cgroupDelegation says why there is no cgroup the user may write: the
// user's own cgroup (from /proc/self/cgroup) on the unified hierarchy, and
// whether it is theirs. systemd delegates user@UID.service to its user on
// a pure cgroup v2 host; a hybrid host's controllers are v1's, root's.
func cgroupDelegation() string {
	own, v1, err := ownCgroup()
	if err != nil {
		return fmt.Sprintf("/proc/self/cgroup cannot be read (%v)", err)
	}
	if v1 || own == "" {
		return "this host's controllers are on cgroup v1, whose files are root's (no cgroup can be delegated to a user there)"
	}
	dir := filepath.Join("/sys/fs/cgroup", own)
	if unix.Access(filepath.Join(dir, "cgroup.subtree_control"), unix.W_OK) != nil {
		return fmt.Sprintf("your cgroup %s is not delegated to you (its cgroup.subtree_control is not yours to write)", dir)
	}
	return fmt.Sprintf("your cgroup %s is delegated to you, but this runtime does not create cgroups there yet", dir)
}

// rootlessDirs is an ordinary user's default store, as rootless Podman's:
// images under $XDG_DATA_HOME (~/.local/share), state under
// $XDG_RUNTIME_DIR (a tmpfs a reboot empties, like /run), else a directory
// of the user's own in /tmp.
func rootlessDirs(uid int) (images, state string, err error) {
	data := os.Getenv("XDG_DATA_HOME")
	if data == "" {
		home := os.Getenv("HOME")
		if home == "" || home == "/" {
			return "", "", stage.Fail("no $HOME to keep your images in: set HOME or XDG_DATA_HOME, or give --root DIR")
		}
		data = filepath.Join(home, ".local", "share")
	}
	run := os.Getenv("XDG_RUNTIME_DIR")
	if run == "" {
		run = filepath.Join(os.TempDir(), "workshop-run-"+strconv.Itoa(uid))
		if err := os.Mkdir(run, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return "", "", stage.Fail("%v", err)
		}
		// Another user may have made it first, to read or plant state.
		var st unix.Stat_t
		if err := unix.Lstat(run, &st); err != nil || int(st.Uid) != uid || st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Mode&0o077 != 0 {
			return "", "", stage.Fail("%s is not a directory of yours alone: remove it, set XDG_RUNTIME_DIR, or give --root DIR", run)
		}
	}
	return filepath.Join(data, "workshop"), filepath.Join(run, "workshop"), nil
}

// runRootless is `run` by an ordinary user, from the outer side: steps 1
// to 3 of the top of this file, then it waits for the copy, which is the
// runtime from then on, and exits as it does.
func runRootless(c *cli.Context, o *runOptions, sigs chan os.Signal) error {
	if err := refuseRootless(c, o); err != nil {
		return err
	}
	if err := usernsRestriction("/proc"); err != nil {
		return err
	}
	uid, gid := os.Getuid(), os.Getgid()
	mode := rootlessMode{UID: uid, GID: gid, Parent: os.Getpid()}
	if c.String("root") == "" {
		var err error
		if mode.Images, mode.State, err = rootlessDirs(uid); err != nil {
			return err
		}
	}
	n := narrate.New(narrate.Options{Quiet: !o.explain, Step: c.Bool("step"), NoColor: c.Bool("no-color")}, narrate.Host)
	n.Step("Rootless: this runtime runs as uid %d, not root; it first gives itself a user namespace, where it is root", uid)
	if !c.IsSet("net") {
		n.Note("--net none, the rootless default: the bridge needs root")
	}
	uids, gids, helpers := subIDMaps(uid, gid)
	mode.OwnID = helpers == ""
	if mode.OwnID {
		uids, gids = []IDMap{{0, uint32(uid), 1}}, []IDMap{{0, uint32(gid), 1}}
	}
	self, how, err := sealedExe(n.Trace())
	if err != nil {
		return stage.Fail("%v", err)
	}
	cmd, goAhead, err := startRootlessCopy(n, self, how, mode)
	if err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	if err := writeRootlessMaps(n, cmd.Process.Pid, uids, gids, helpers); err != nil {
		goAhead.Close() // it exits at once
		_ = cmd.Wait()
		return err
	}
	n.Call(`execve("/proc/self/exe", ...)   # in the copy, after the maps: uid 0 of its namespace, all capabilities there, none outside`)
	_, _ = goAhead.Write([]byte{1})
	goAhead.Close()
	stop := passSignals(cmd.Process, sigs)
	err = cmd.Wait()
	stop()
	status, ok := stage.StatusOf(err)
	switch {
	case !ok:
		return stage.Fail("the runtime in the user namespace: %v", err)
	case status != 0:
		return stage.ExitStatus(status)
	}
	return nil
}

// startRootlessCopy clones the sealed copy into a new user and mount
// namespace, waiting on a pipe for its maps. It dies with this thread's
// process (PR_SET_PDEATHSIG), and the thread stays locked for that.
func startRootlessCopy(n *narrate.Narrator, self, how string, mode rootlessMode) (*exec.Cmd, *os.File, error) {
	env, _ := json.Marshal(mode)
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	n.Call("clone(CLONE_NEWUSER | CLONE_NEWNS)   # a copy of this runtime, from a sealed %s copy, in a user namespace and a mount namespace of its own; it waits for its maps", how)
	n.Call("prctl(PR_SET_PDEATHSIG, SIGKILL)   # in the copy, before its exec, and again once it is root of its namespace (that exec clears it): it dies with this runtime")
	cmd := exec.Command(self, append([]string{rootlessArg}, os.Args[1:]...)...)
	cmd.Args[0] = "workshop-rootless"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{r}
	cmd.Env = append(os.Environ(), rootlessEnv+"="+string(env), n.Env())
	runtime.LockOSThread()
	cmd.SysProcAttr = &unix.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS, Pdeathsig: unix.SIGKILL}
	if err := cmd.Start(); err != nil {
		runtime.UnlockOSThread()
		w.Close()
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOSPC) {
			return nil, nil, stage.Fail("this host does not let an ordinary user create a user namespace (%v): `make doctor` says why and how to allow it", err)
		}
		return nil, nil, stage.Fail("starting the runtime in a user namespace: %v", err)
	}
	return cmd, w, nil
}

// subIDMaps finds the maps newuidmap and newgidmap may write for this
// user: 0 -> the user, 1-65536 -> the user's first range (by name or by
// number, as the helpers read /etc/subuid and /etc/subgid). helpers is
// "" when the single-ID map must do, with the reason narrated later.
func subIDMaps(uid, gid int) (uids, gids []IDMap, helpers string) {
	if os.Getenv(ownIDEnv) == "1" {
		return nil, nil, ""
	}
	if _, err := exec.LookPath("newuidmap"); err != nil {
		return nil, nil, ""
	}
	if _, err := exec.LookPath("newgidmap"); err != nil {
		return nil, nil, ""
	}
	keys := []string{strconv.Itoa(uid)}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		keys = append([]string{u.Username}, keys...)
	}
	su, err1 := lookupSubIDs("/etc/subuid", keys)
	sg, err2 := lookupSubIDs("/etc/subgid", keys)
	if err1 != nil || err2 != nil {
		return nil, nil, ""
	}
	su.ContainerID, sg.ContainerID = 1, 1
	return []IDMap{{0, uint32(uid), 1}, su}, []IDMap{{0, uint32(gid), 1}, sg}, "newuidmap"
}

// writeRootlessMaps writes the copy's maps from outside: through the
// setuid helpers, or the single-ID map the kernel allows anyone.
func writeRootlessMaps(n *narrate.Narrator, pid int, uids, gids []IDMap, helpers string) error {
	if helpers != "" {
		for _, h := range []struct {
			prog string
			maps []IDMap
		}{{"newuidmap", uids}, {"newgidmap", gids}} {
			args := []string{strconv.Itoa(pid)}
			for _, m := range h.maps {
				args = append(args, strings.Fields(m.String())...)
			}
			n.Call("%s %s   # setuid-root helper (uidmap): writes the map /etc/sub%sid allows this user", h.prog, strings.Join(args, " "), h.prog[3:4])
			if out, err := exec.Command(h.prog, args...).CombinedOutput(); err != nil {
				return stage.Fail("%s %s: %v: %s", h.prog, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
			}
		}
		n.Note("the container's root is you (uid %d); its uids 1-%d are your range from /etc/subuid", uids[0].HostID, uids[1].Size)
		return nil
	}
	why := ownIDEnv + "=1"
	if os.Getenv(ownIDEnv) != "1" {
		why = "no newuidmap/newgidmap, or no range for you in /etc/subuid and /etc/subgid"
	}
	n.Note("%s: the one map an ordinary user may write alone, 0 -> your own ID; the container has a single user, root, and files of any other owner show as nobody (65534)", why)
	for _, w := range []struct{ file, text, why string }{
		{"setgroups", "deny", "the kernel's condition for writing a gid_map without CAP_SETGID: no setgroups() inside"},
		{"uid_map", uids[0].String(), "the container's root is you"},
		{"gid_map", gids[0].String(), "and your group its root group"},
	} {
		p := fmt.Sprintf("/proc/%d/%s", pid, w.file)
		n.Call("echo '%s' > %s   # %s", w.text, p, w.why)
		if err := os.WriteFile(p, []byte(w.text), 0); err != nil {
			return stage.Fail("writing %s: %v", p, err)
		}
	}
	return nil
}

// passSignals: the terminal's Ctrl-C (and hang-up) reaches the whole
// foreground process group, the copy included, which passes it on to the
// container; passing it again would count as a second Ctrl-C. A signal
// sent to this process alone (kill PID, or no terminal: a script's) is
// passed on.
func passSignals(p *os.Process, sigs chan os.Signal) func() {
	terminal := narrate.IsTerminal(os.Stdin)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				if s == unix.SIGTERM || !terminal {
					_ = p.Signal(s)
				}
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); signal.Stop(sigs) }
}

// ownCgroup reads /proc/self/cgroup: this process's cgroup on the unified
// hierarchy ("" if it has none), and whether v1 hierarchies hold
// controllers.
func ownCgroup() (unified string, v1 bool, err error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" {
			unified = parts[2]
		} else if parts[1] != "" {
			v1 = true
		}
	}
	return unified, v1, err
}

// setgroupsDenied: /proc/self/setgroups says "deny" (the single-ID map).
func setgroupsDenied() bool {
	b, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(b)) == "deny"
}

// usernsRestriction: Ubuntu 24.04's AppArmor lets an unprivileged program
// create a user namespace only under a profile that allows `userns`
// (kernel.apparmor_restrict_unprivileged_userns=1); elsewhere the
// namespace is made, but with no capability in it, and the first mount
// inside fails. Said first, in one line: this process's AppArmor label
// (attr/current) is "unconfined" when no profile attached to its binary.
// scripts/provision.sh installs one for /usr/local/bin/workshop.
func usernsRestriction(proc string) error {
	b, err := os.ReadFile(filepath.Join(proc, "sys/kernel/apparmor_restrict_unprivileged_userns"))
	if err != nil || strings.TrimSpace(string(b)) != "1" {
		return nil
	}
	label, err := os.ReadFile(filepath.Join(proc, "self/attr/apparmor/current"))
	if err != nil {
		label, _ = os.ReadFile(filepath.Join(proc, "self/attr/current"))
	}
	if l := strings.TrimSpace(strings.TrimRight(string(label), "\x00")); l != "" && l != "unconfined" {
		return nil // a profile attached: whether it allows userns, the clone will tell
	}
	return stage.Fail("AppArmor restricts unprivileged user namespaces here (kernel.apparmor_restrict_unprivileged_userns=1) and no profile allows them for this program: run /usr/local/bin/workshop, which `sudo scripts/provision.sh` builds and allows alone (`make doctor` checks it), or lift the restriction for every program with `sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`")
}
