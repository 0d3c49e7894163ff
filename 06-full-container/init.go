package main

// The container's side of `run`: the re-executed copy of the runtime that
// starts as PID 1 of the new namespaces, builds the container's world from
// its Spec, and becomes the user's command. Read it top to bottom: it is
// stages 01 to 05, in the order runc does them.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/03-cgroups-cpu/cgroup"
	"github.com/container-internals/workshop/04-chroot-pivot-root/rootfs"
	"github.com/container-internals/workshop/05-overlay-layers/layers"
	"github.com/container-internals/workshop/06-full-container/seccomp"
	"github.com/container-internals/workshop/internal/mountinfo"
	"github.com/container-internals/workshop/internal/narrate"
	"github.com/container-internals/workshop/internal/stage"
	"github.com/container-internals/workshop/internal/timing"
	"github.com/container-internals/workshop/internal/trace"
)

// Exit statuses of the runtime itself, as Docker's: 125 the container could
// not be set up, 126 the command could not be run, 127 it was not found.
const (
	exitSetup    = 125
	exitNotExec  = 126
	exitNotFound = 127
)

// containerInit is the container's first process, from its clone to the
// exec of the user's command: the list below is the whole story, one step
// per method, in the order runc does them. Each step's timing is taken here,
// in one place (WORKSHOP_TIMING=1 prints them).
func containerInit(specPath string, rest []string) {
	timing.Mark("init: Go runtime started")
	// Capabilities, no_new_privs and the cgroup namespace belong to one
	// thread, and exec keeps only the thread that calls it: everything
	// below runs on this one OS thread, up to the exec.
	runtime.LockOSThread()
	// A Ctrl-C during the setup must not kill us half way (Go's default is
	// to exit): catch it and let the runtime decide. Caught, not ignored:
	// an ignored signal would stay ignored in the user's command after exec.
	signal.Notify(make(chan os.Signal, 1), unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	c := &initProcess{n: narrate.FromEnv(narrate.Container), link: stage.ParentLink(), specPath: specPath, exe: -1, startFifo: -1}
	failLink.link, failLink.n = c.link, c.n
	if len(rest) > 0 {
		c.cgroupDirs = rest[0]
	}
	for _, step := range []struct {
		done string
		do   func()
	}{
		{"go received, spec read", c.waitForGo},
		{"cgroups joined", c.joinCgroups},
		{"namespaces joined", c.joinNamespaces},
		{"mounts made private", c.privateMounts},
		{"root mounted", c.mountRoot},
		{"/proc /dev /sys mounted, devices made", c.mountInside},
		{"OCI hooks before pivot_root run", c.hooksBeforePivot},
		{"pivot_root", c.pivotRoot},
		{"paths masked and read-only", c.harden},
		{"a session of its own, and its terminal (-t)", c.openTerminal},
		{"the process prepared", c.prepareProcess},
		{"ready and started", c.waitReadyAndStart},
	} {
		step.do()
		timing.Mark("init: " + step.done)
	}
	if c.spec.NoProcess {
		initFail("config.json has no process: nothing to run")
	}
	if c.spec.Init {
		c.execTinyInit()
	}
	c.execCommand()
}

// initProcess is what the first process knows as it goes.
type initProcess struct {
	n          *narrate.Narrator
	link       *stage.Link
	specPath   string
	spec       *Spec
	cgroupDirs string // "" where clone3 put it in its cgroup already
	exe        int    // this program, held for --init's exec after pivot_root
	startFifo  int    // OCI create: the directory of the FIFO `start` opens
	keep       uint64 // the capabilities the command keeps
	path       string // the command, found in the container's PATH
	filter     *seccomp.Filter
	filterErr  chan error // the filter is compiled beside the setup
}

// waitForGo waits for the runtime's go-ahead: once the spec is written and
// it has our PID (and, with --explain, once it has told its part).
func (c *initProcess) waitForGo() {
	c.link.WaitGo(c.n)
	// Non-dumpable until the exec (which resets it). Before the go-ahead
	// this process is alone in its new PID namespace; from now on, while
	// this copy of the runtime still holds every capability, no process of
	// the container (an `exec` between OCI create and start) may open its
	// /proc/<pid>/mem, fd/ or exe without CAP_SYS_PTRACE on the host.
	c.n.Call("prctl(PR_SET_DUMPABLE, 0)   # no container process may open this one's /proc/<pid>/mem until the exec")
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		initFail("prctl(PR_SET_DUMPABLE, 0): %v", err)
	}
	var err error
	if c.spec, err = readSpec(c.specPath); err != nil {
		initFail("reading the container's spec: %v", err)
	}
	// The seccomp filter is compiled beside the setup, on another thread
	// (a Go program has several), while this one waits in the kernel for
	// the mounts below; it is installed last of all, before execve.
	c.filterErr = make(chan error, 1)
	go func() {
		var err error
		c.filter, err = seccompFilter(c.spec)
		c.filterErr <- err
	}()
}

// joinCgroups moves us into the container's cgroups (stage 03) first of
// all, before this process uses any memory or device the limits should
// cover. The runtime could move us (echo PID > cgroup.procs), as stage 03
// does, but moving another process waits for the kernel's RCU grace period:
// milliseconds, the largest cost of a container's start. A thread that moves
// itself skips that wait, and this is the thread that will exec the command
// (or --init's PID 1), so the command is wholly inside.
func (c *initProcess) joinCgroups() {
	if c.cgroupDirs == "" {
		return
	}
	for _, dir := range strings.Split(c.cgroupDirs, ",") {
		if err := cgroup.JoinThread(dir, c.n.Trace()); err != nil {
			initFail("joining the container's cgroup: %v", err)
		}
	}
	c.n.Note("0 is the writer itself: this thread, the one that will exec, joins its cgroups")
}

// joinNamespaces gives us a keyring of our own, joins the namespaces the
// spec names by path, and enters a new cgroup namespace: after the move
// into the container's cgroups, so that the container sees its own cgroup
// as the root "/".
func (c *initProcess) joinNamespaces() {
	c.n.Call("keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)   # a session keyring of its own: keys are not namespaced")
	if err := newSessionKeyring(); err != nil {
		initFail("%v", err)
	}
	if c.spec.mountMode() == mountsJoined {
		c.holdForLater() // before the host's files are out of sight
	}
	if err := joinExisting(c.spec.JoinNamespaces, c.n.Trace()); err != nil {
		initFail("%v", err)
	}
	if slices.Contains(c.spec.Namespaces, "cgroup") {
		c.n.Step("Enter a new cgroup namespace (stage 03's cgroups, seen from inside)")
		c.n.Call("unshare(CLONE_NEWCGROUP)")
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			initFail("unshare(CLONE_NEWCGROUP): %v", err)
		}
	}
}

// privateMounts (stage 02): nothing we mount may reach the host. Without
// a mount namespace of the container's own (none, or another's joined)
// nothing is mounted at all, here or in the steps up to pivotRoot.
func (c *initProcess) privateMounts() {
	if c.spec.mountMode() != mountsNew {
		return
	}
	c.n.Step("Mounts (stage 02): nothing we mount may reach the host")
	c.n.Call(`mount("", "/", "", MS_REC | %s, "")`, propagationName(c.spec.Propagation))
	if err := unix.Mount("", "/", "", unix.MS_REC|c.spec.Propagation, ""); err != nil {
		initFail("making / %s: %v", propagationName(c.spec.Propagation), err)
	}
}

// mountRoot mounts the container's root: the image's layers under a
// read-write one (stage 05), or an OCI bundle's directory as it is.
func (c *initProcess) mountRoot() {
	spec := c.spec
	if spec.mountMode() != mountsNew {
		return
	}
	if spec.BindRoot {
		if spec.Upper != "" { // run --userns: the runtime mounted the layers (userns.go)
			c.n.Step("The root filesystem: the overlay the runtime mounted for the user namespace, bound onto itself")
			c.n.Note("pivot_root refuses a mount this namespace inherited from a more privileged one (it is locked): a fresh bind is its own")
		} else {
			c.n.Step("The root filesystem: the bundle's rootfs directory, as it is")
		}
		// pivot_root needs the new root to be a mount point.
		c.n.Call(`mount("%s", "%s", "", MS_BIND | MS_REC, "")`, spec.Rootfs, spec.Rootfs)
		if err := unix.Mount(spec.Rootfs, spec.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			initFail("binding the root %s: %v%s", spec.Rootfs, err, usernsHint(spec, err))
		}
		return
	}
	c.n.Step("The root filesystem (stage 05): image layers + init layer + a read-write layer")
	for i, l := range spec.Lowers {
		c.n.Say("lower %d: %s", i+1, l)
	}
	c.n.Say("upper: %s", spec.Upper)
	if err := layers.MountVolatile(spec.Rootfs, spec.Lowers, spec.Upper, spec.Work, c.n.Trace()); err != nil {
		initFail("mounting the container's root: %v", err)
	}
}

// mountInside mounts /proc, /dev, /sys and the volumes under the new root,
// makes the device nodes, and holds what must be reached after pivot_root.
func (c *initProcess) mountInside() {
	spec := c.spec
	switch spec.mountMode() {
	case mountsJoined:
		return
	case mountsNone:
		// Only the device nodes, in the bundle's own rootfs/dev.
		makeDevices(c.n, spec, filepath.Join(filepath.Dir(c.specPath), madeNodesFile))
		c.holdForLater()
		return
	}
	c.n.Step("Mount /proc, /dev, /sys and the volumes inside the new root")
	devMade := false
	for _, m := range spec.Mounts {
		mountInside(c.n, spec, m)
		if filepath.Clean(m.Target) == "/dev" {
			// The device nodes go into the new /dev right away, before any
			// later mount (a volume on /dev, or under it) can cover it:
			// never into a directory of the host's. A bind mount on /dev is
			// the caller's own /dev (as runc): nothing is made in it.
			if m.Flags&unix.MS_BIND == 0 {
				makeDevices(c.n, spec, "")
			}
			devMade = true
		}
	}
	if !devMade {
		// No /dev mount (a hand-made bundle): the nodes go into the
		// bundle's own rootfs/dev, and `delete` removes what we made.
		makeDevices(c.n, spec, filepath.Join(filepath.Dir(c.specPath), madeNodesFile))
	}
	c.holdForLater()
}

// holdForLater opens, while they are in view, the files needed after the
// root changes: this program for --init's exec, and the FIFO `start` will
// read from.
func (c *initProcess) holdForLater() {
	var err error
	if c.spec.Init && c.exe < 0 { // --init execs this program again, after pivot_root
		if c.exe, err = unix.Open("/proc/self/exe", unix.O_PATH|unix.O_CLOEXEC, 0); err != nil {
			initFail("opening this program for --init: %v", err)
		}
	}
	if c.spec.WaitStart && c.startFifo < 0 {
		// Its directory, not the FIFO: opening a FIFO for writing blocks,
		// and after the root changes (without a /proc, too) it is reached
		// with openat from there.
		if c.startFifo, err = unix.Open(filepath.Dir(c.spec.StartFifo), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			initFail("opening %s: %v", c.spec.StartFifo, err)
		}
	}
}

// pivotRoot (stage 04) changes root and lets go of the host's; then the
// kernel parameters of the container's own namespaces are written, while
// /proc/sys can still be.
func (c *initProcess) pivotRoot() {
	switch c.spec.mountMode() {
	case mountsJoined:
		return // setns put this thread at that namespace's root
	case mountsNone:
		// No mount namespace to pivot: chroot, as runc does. Stage 04's
		// escape works against it for a process that keeps CAP_SYS_CHROOT.
		c.n.Step("Change root with chroot (stage 04): without a mount namespace there is no pivot_root")
		c.n.Call("chdir(%q); chroot(\".\")", c.spec.Rootfs)
		if err := unix.Chdir(c.spec.Rootfs); err != nil {
			initFail("chdir %s: %v", c.spec.Rootfs, err)
		}
		if err := unix.Chroot("."); err != nil {
			initFail("chroot %s: %v", c.spec.Rootfs, err)
		}
		return
	}
	c.n.Step("Change root with pivot_root (stage 04), and let go of the host's root")
	if err := rootfs.PivotRoot(c.spec.Rootfs, c.n.Trace()); err != nil {
		initFail("pivot_root into %s: %v", c.spec.Rootfs, err)
	}
	for k, v := range c.spec.Sysctl {
		// create checked the namespaces; checked again here, the name alone.
		if _, err := sysctlNamespace(k); err != nil {
			initFail("sysctl: %v", err)
		}
		c.n.Call("sysctl %s=%s", k, v)
		if err := writeSysctl(k, v); err != nil {
			initFail("sysctl %s: %v", k, err)
		}
	}
}

// harden does what Docker does by default, up to the capabilities (which
// go just before the exec).
func (c *initProcess) harden() {
	spec, n := c.spec, c.n
	n.Step("Harden, as Docker does by default")
	n.Say("mask %d paths: /dev/null over a file, an empty read-only tmpfs over a directory (paths this kernel lacks are skipped)", len(spec.MaskedPaths))
	for _, p := range spec.MaskedPaths {
		if _, err := maskPath(p, n.Trace()); err != nil {
			initFail("masking %s: %v", p, err)
		}
	}
	n.Say("make %d paths read-only: each bound onto itself, then that bind remounted read-only", len(spec.ReadonlyPaths))
	for _, p := range spec.ReadonlyPaths {
		if _, err := readonlyPath(p, n.Trace()); err != nil {
			initFail("making %s read-only: %v", p, err)
		}
	}
	if spec.Readonly {
		n.Call(`mount("", "/", "", MS_BIND | MS_REMOUNT | MS_RDONLY, "")`)
		if err := unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			initFail("making the root read-only: %v", err)
		}
	}
	if slices.Contains(spec.Namespaces, "uts") && spec.Hostname != "" {
		n.Call(`sethostname("%s")   # the UTS namespace's own name`, spec.Hostname)
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			initFail("sethostname: %v", err)
		}
	}
	if slices.Contains(spec.Namespaces, "net") {
		n.Call("ioctl(SIOCSIFFLAGS, lo, IFF_UP)   # a new network namespace has only lo, and it is down")
		if err := loopbackUp(); err != nil {
			initFail("bringing up lo: %v", err)
		}
	}
	if spec.NoNewPrivs {
		n.Call("prctl(PR_SET_NO_NEW_PRIVS, 1)   # no setuid binary can give the privileges back")
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			initFail("no_new_privs: %v", err)
		}
	}
}

// prepareProcess sets what the command inherits: limits, umask, the
// container's environment (nothing of the host's), its working directory,
// and finds the command in the container's PATH.
func (c *initProcess) prepareProcess() {
	spec := c.spec
	for _, r := range spec.Rlimits {
		if err := unix.Setrlimit(r.Type, &unix.Rlimit{Cur: r.Soft, Max: r.Hard}); err != nil {
			initFail("setrlimit(%s, soft %d, hard %d): %v", rlimitName(r.Type), r.Soft, r.Hard, err)
		}
	}
	if spec.OOMScoreAdj != nil {
		_ = os.WriteFile("/proc/self/oom_score_adj", []byte(fmt.Sprint(*spec.OOMScoreAdj)), 0o644)
	}
	if spec.Umask != nil {
		unix.Umask(int(*spec.Umask))
	}
	if len(spec.CPUs) > 0 {
		pinCPUs(c.n, spec.CPUs)
	}
	var err error
	if c.keep, err = capBits(spec.Capabilities); err != nil {
		initFail("%v", err)
	}
	if spec.NoProcess {
		return // nothing will run: start refuses, and delete ends us
	}
	os.Clearenv()
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := os.Chdir(cwd); err != nil {
		initFail("the working directory %s: %v", cwd, err)
	}
	if c.path, err = stage.LookPath(spec.Args[0]); err != nil {
		initExit(exitNotFound, fmt.Sprintf("%s: command not found in the container's root (PATH=%s)", spec.Args[0], os.Getenv("PATH")))
	}
}

// hooksBeforePivot runs an OCI caller's hooks that come before pivot_root
// (hooks.go has the whole table). createRuntime and prestart run in the
// runtime, which can see us from outside now that our namespaces exist: we
// pause for them (Docker's network hook moves a veth into our network
// namespace then). createContainer hooks run here, in our mount namespace.
func (c *initProcess) hooksBeforePivot() {
	h := c.spec.Hooks
	if h == nil {
		return
	}
	if hasHooks(h.CreateRuntime, h.Prestart) {
		c.link.PauseFor(c.n, "hooks")
	}
	if len(h.CreateContainer) > 0 {
		st := *c.spec.HookState
		st.Status, st.Pid = specs.StateCreating, os.Getpid()
		if err := runHooks("createContainer", h.CreateContainer, st, c.say); err != nil {
			initFail("%v", err)
		}
	}
}

// startContainerHooks run at start, as the user the command runs as, with
// its capabilities and filter, just before its exec: the last moment the
// spec gives a caller.
func (c *initProcess) startContainerHooks() {
	if h := c.spec.Hooks; h != nil && len(h.StartContainer) > 0 {
		st := *c.spec.HookState
		st.Status, st.Pid = specs.StateCreated, os.Getpid()
		if err := runHooks("startContainer", h.StartContainer, st, c.say); err != nil {
			initFail("%v", err)
		}
	}
}

func (c *initProcess) say(call string) { c.n.Call("%s", call) }

// waitReadyAndStart: the runtime writes the limits that the setup itself
// would have tripped over (a Go runtime is several threads, and pids.max
// counts threads), then lets us go on. For an OCI create, the creator
// returns now, and the command runs only at `start`, which opens the FIFO
// for reading: until then, opening it for writing blocks.
func (c *initProcess) waitReadyAndStart() {
	if c.spec.WaitReady {
		c.link.Pause(c.n)
	}
	if !c.spec.WaitStart {
		return
	}
	c.link.Done(c.n)
	fd, err := unix.Openat(c.startFifo, filepath.Base(c.spec.StartFifo), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		initFail("waiting for start: %v", err)
	}
	f := os.NewFile(uintptr(fd), c.spec.StartFifo)
	_, _ = f.Write([]byte{0})
	f.Close()
	unix.Close(c.startFifo)
}

// becomeTheUser gives up everything that needed CAP_SYS_ADMIN and becomes
// the configured user, the last thing before the exec it names (next). The
// runtime is told we are done first: after the capabilities are gone this
// process can no longer do anything a container could not.
func (c *initProcess) becomeTheUser(next string) {
	if err := <-c.filterErr; err != nil {
		initFail("%v", err)
	}
	c.n.Call("prctl(PR_CAPBSET_DROP) x %d, capset(...)   # keep %d capabilities: no CAP_SYS_ADMIN", int(lastCap())+1-len(c.spec.Capabilities), len(c.spec.Capabilities))
	c.link.Done(c.n)
	// The seccomp filter goes on here too (see dropPrivileges for the
	// order); for --init, before the execveat: its PID 1 runs under it.
	if err := dropPrivileges(c.n, c.spec, c.keep, c.filter); err != nil {
		initFail("%v", err)
	}
	c.startContainerHooks()
	c.n.Call("%s", next)
}

// execTinyInit makes PID 1 a fresh copy of this program (--init), exec'd
// after the capabilities are gone: every thread of it starts with the
// container's credentials, none with the setup's. (Kept on instead, this
// process's other threads would still hold every capability, for any
// container root that patches /proc/1/mem.) It runs from the sealed handle,
// like this process: /proc/1/exe cannot be written through.
func (c *initProcess) execTinyInit() {
	c.n.Step("Start the command under a tiny init (--init): PID 1 reaps and forwards signals")
	argv := append([]string{"workshop-init", tinyArg, c.path}, c.spec.Args...)
	c.becomeTheUser(fmt.Sprintf("execveat(<sealed program>, \"\", %q, AT_EMPTY_PATH)", argv))
	err := execveat(c.exe, argv, append(os.Environ(), c.n.Env()))
	initFail("starting --init's PID 1: %v", err)
}

// execCommand: this process becomes the user's command, PID 1 of the
// container.
func (c *initProcess) execCommand() {
	c.n.Step("exec the command: it becomes PID 1 of the container")
	c.becomeTheUser(fmt.Sprintf("execve(%q, %q)", c.path, c.spec.Args))
	timing.Mark("init: capabilities dropped, exec")
	if err := unix.Exec(c.path, c.spec.Args, os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot run %s: %v\n", name, c.spec.Args[0], err)
		os.Exit(exitNotExec)
	}
}

// madeNodesFile, in the container's state directory, lists the device
// nodes and links made in a bundle's own rootfs/dev (relative to the
// rootfs), for `delete` to remove.
const madeNodesFile = "made-nodes"

// makeDevices makes the spec's device nodes and /dev links. With record,
// it writes down those it made (that were not there before).
func makeDevices(n *narrate.Narrator, spec *Spec, record string) {
	var made, names []string
	for _, d := range spec.Devices {
		// A node in a directory of /dev (Docker's --privileged passes the
		// host's /dev/cpu/0/cpuid...): the directory first, inside the root.
		if dir := filepath.Dir(d.Path); dir != "/dev" && dir != "/" {
			made = append(made, mkdirInRoot(spec.Rootfs, dir)...)
		}
		p, err := inRoot(spec.Rootfs, d.Path)
		if err != nil {
			initFail("device %s: %v", d.Path, err)
		}
		if _, err := os.Lstat(p); err != nil {
			made = append(made, p)
		}
		_ = os.Remove(p)
		if err := unix.Mknod(p, d.Type|d.Mode, int(unix.Mkdev(d.Major, d.Minor))); err != nil {
			if !(spec.hasUserns() || spec.Rootless) || bindDevice(n, d, p) != nil {
				initFail("mknod %s: %v", d.Path, err)
			}
			continue
		}
		_ = os.Chmod(p, os.FileMode(d.Mode))
		_ = os.Chown(p, d.UID, d.GID)
		names = append(names, strings.TrimPrefix(d.Path, "/dev/"))
	}
	n.Call("mknod /dev/{%s} and link %s", strings.Join(names, ","), symlinkNames(spec.Symlinks))
	for _, l := range spec.Symlinks {
		p, err := inRoot(spec.Rootfs, filepath.Dir(l[1]))
		if err != nil {
			initFail("link %s: %v", l[1], err)
		}
		p = filepath.Join(p, filepath.Base(l[1]))
		if _, err := os.Lstat(p); err != nil {
			made = append(made, p)
		}
		_ = os.Remove(p)
		_ = os.Symlink(l[0], p)
	}
	if record == "" || len(made) == 0 {
		return
	}
	var rel []string
	for _, p := range made {
		if r, err := filepath.Rel(spec.Rootfs, p); err == nil && !strings.HasPrefix(r, "..") {
			rel = append(rel, r)
		}
	}
	if err := os.WriteFile(record, []byte(strings.Join(rel, "\n")+"\n"), 0o600); err != nil {
		initFail("recording the device nodes made: %v", err)
	}
}

// switchUser drops the capabilities and becomes the configured user, on
// this thread, just before exec.
func switchUser(spec *Spec, keep uint64) error {
	if err := dropBounding(keep); err != nil {
		return err
	}
	eff, perm, inh, amb := processCaps(spec, keep)
	if spec.CapSets != nil {
		if spec.UID != 0 {
			// Keep the permitted set through the change of user, so that
			// the configured capabilities can be set afterwards.
			if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
				return fmt.Errorf("keepcaps: %v", err)
			}
		}
	}
	if err := unix.Setgroups(spec.Groups); err != nil && !(spec.Rootless && len(spec.Groups) == 0 && setgroupsDenied()) {
		return fmt.Errorf("setgroups: %v", err)
	}
	if spec.GID != 0 {
		if err := unix.Setresgid(spec.GID, spec.GID, spec.GID); err != nil {
			return fmt.Errorf("setgid %d: %v", spec.GID, err)
		}
	}
	if spec.UID != 0 {
		// Leaving uid 0 clears the effective set (and, without keepcaps,
		// the permitted one): a non-root user of `run` has no capabilities
		// at all, as under Docker.
		if err := unix.Setresuid(spec.UID, spec.UID, spec.UID); err != nil {
			return fmt.Errorf("setuid %d: %v", spec.UID, err)
		}
		if spec.CapSets == nil {
			return nil
		}
	}
	if err := setCaps(eff, perm, inh); err != nil {
		return err
	}
	warnAmbient(raiseAmbient(amb))
	return nil
}

// processCaps are the capability sets a process runs with: those of an
// OCI config's process.capabilities, else every kept one (and no ambient).
func processCaps(spec *Spec, keep uint64) (eff, perm, inh, amb uint64) {
	cs := spec.CapSets
	if cs == nil {
		return keep, keep, keep, 0
	}
	eff, _ = capBits(cs.Effective)
	perm, _ = capBits(cs.Permitted)
	inh, _ = capBits(cs.Inheritable)
	amb, _ = capBits(cs.Ambient)
	return eff, perm, inh, amb
}

// inRoot resolves path inside root the way the container will see it
// after pivot_root: symlinks are followed relative to root, and ".." stops
// at root. A plain filepath.Join would follow an image's symlink
// (etc/hosts -> /tmp/x) to the HOST's /tmp/x, and mount there: a container
// image must never choose where on the host the runtime writes.
func inRoot(root, path string) (string, error) {
	resolved := "/"
	remaining := path
	for links := 0; remaining != ""; {
		var part string
		part, remaining, _ = strings.Cut(strings.TrimLeft(remaining, "/"), "/")
		switch part {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, part)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			resolved = next // a directory, a file, or not there yet
			continue
		}
		if links++; links > 255 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", path)
		}
		dest, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(dest) {
			resolved = "/"
		}
		remaining = dest + "/" + remaining
	}
	return filepath.Join(root, resolved), nil
}

// mountInside makes one of the spec's mounts under the new root.
func mountInside(n *narrate.Narrator, spec *Spec, m Mount) {
	root := spec.Rootfs
	target, err := inRoot(root, m.Target)
	if err != nil {
		initFail("mount target %s: %v", m.Target, err)
	}
	if m.Flags&unix.MS_BIND != 0 {
		// A bind mount's target must exist and be the same kind as its source.
		if fi, err := os.Stat(m.Source); err == nil && !fi.IsDir() {
			_ = os.MkdirAll(filepath.Dir(target), 0o755)
			if f, err := os.OpenFile(target, os.O_CREATE, 0o644); err == nil {
				f.Close()
			}
		} else {
			_ = os.MkdirAll(target, 0o755)
		}
	} else {
		_ = os.MkdirAll(target, 0o755)
	}
	flags := m.Flags
	data := m.Data

	// Read-only is applied as a second step, a bind remount, which changes
	// only this mount's flags. Never remount the filesystem itself read-only:
	// a sysfs or proc without a namespace of its own shares its superblock
	// with the host's, and the host's /sys would turn read-only too.
	if m.Type == "cgroup" || m.Type == "cgroup2" {
		if err := mountCgroupfs(target, flags, n.Trace()); err != nil {
			initFail("mounting the cgroup filesystem on %s: %v", m.Target, err)
		}
		if m.Why != "" {
			n.Note("%s", m.Why)
		}
		return
	}
	n.Call(`mount("%s", "%s", "%s", %s, "%s")`, m.Source, m.Target, m.Type, mountFlagNames(flags&^unix.MS_RDONLY), data)
	if m.Why != "" {
		n.Note("%s", m.Why)
	}
	err = unix.Mount(m.Source, target, m.Type, flags&^unix.MS_RDONLY, data)
	if err != nil && m.Type == "sysfs" {
		// Without a network namespace of its own (--net host) the kernel
		// may refuse a new sysfs: bind the host's instead.
		n.Call(`mount("/sys", "%s", "", MS_BIND | MS_REC, "")`, m.Target)
		n.Note("a new sysfs needs a network namespace of the container's own: the host's /sys, bound")
		err = unix.Mount("/sys", target, "", unix.MS_BIND|unix.MS_REC, "")
	}
	if err == nil && flags&unix.MS_RDONLY != 0 {
		perMount := flags & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RDONLY)
		n.Call(`mount("", "%s", "", MS_BIND | MS_REMOUNT | %s, "")`, m.Target, mountFlagNames(perMount))
		err = unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|perMount, "")
	}
	if err != nil {
		initFail("mount %s on %s: %v%s", m.Source, m.Target, err, usernsHint(spec, err))
	}
}

// mountCgroupfs shows the container its own cgroups at target: with a
// cgroup namespace, a cgroup filesystem mounted here has the container's
// cgroup as its root. On cgroup v2 that is one mount; on v1 (and hybrid
// hosts) a tmpfs holding one mount per hierarchy, as /sys/fs/cgroup is.
func mountCgroupfs(target string, flags uintptr, hook trace.Hook) error {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return err
	}
	flags &^= unix.MS_BIND | unix.MS_REC
	var v1 []string
	unified := false
	// Where we are in each hierarchy: "/" in a cgroup namespace of our own;
	// without one (Docker's default on cgroup v1), the container's group.
	own := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" {
			unified = true
		} else if parts[1] != "" {
			v1 = append(v1, parts[1])
		}
		own[parts[1]] = parts[2]
	}
	if len(v1) == 0 && unified {
		hook.Call("", `mount("cgroup2", %q, "cgroup2", %s, "")`, target, mountFlagNames(flags))
		return unix.Mount("cgroup2", target, "cgroup2", flags, "")
	}
	hook.Call("", `mount("tmpfs", %q, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755")`, target)
	if err := unix.Mount("tmpfs", target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
		return err
	}
	for _, ctrls := range v1 {
		dir := filepath.Join(target, strings.TrimPrefix(ctrls, "name="))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		opts := ctrls
		if strings.HasPrefix(ctrls, "name=") {
			opts = "none," + ctrls
		}
		if err := mountHierarchy(target, dir, "cgroup", opts, own[ctrls], flags, hook); err != nil {
			return fmt.Errorf("%s: %v", ctrls, err)
		}
	}
	if unified {
		dir := filepath.Join(target, "unified")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := mountHierarchy(target, dir, "cgroup2", "", own[""], flags, hook); err != nil {
			return err
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		hook.Call("", `mount("", %q, "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "")`, target)
		return unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	}
	return nil
}

// mountHierarchy mounts a cgroup hierarchy at dir. Without a cgroup
// namespace (own, the container's group in it, is not "/") it shows the
// container its own group, as runc does (a program reading its limits there
// reads its own, not the host root's): the hierarchy goes on a staging
// directory in target, its group is bound at dir, and the staging mount goes.
func mountHierarchy(target, dir, fstype, opts, own string, flags uintptr, hook trace.Hook) error {
	if own == "" || own == "/" {
		hook.Call("", `mount(%q, %q, %q, %s, %q)`, fstype, dir, fstype, mountFlagNames(flags), opts)
		err := unix.Mount(fstype, dir, fstype, flags, opts)
		if errors.Is(err, unix.EPERM) {
			return bindHostHierarchy(dir, fstype, opts, "/", flags, hook)
		}
		return err
	}
	staging := filepath.Join(target, ".hierarchy")
	if err := os.Mkdir(staging, 0o700); err != nil {
		return err
	}
	defer os.Remove(staging)
	hook.Call("", `mount(%q, %q, %q, %s, %q)`, fstype, staging, fstype, mountFlagNames(flags), opts)
	if err := unix.Mount(fstype, staging, fstype, flags, opts); err != nil {
		if errors.Is(err, unix.EPERM) {
			return bindHostHierarchy(dir, fstype, opts, own, flags, hook)
		}
		return err
	}
	hook.Call("", `mount(%q, %q, "", MS_BIND, "")   # the container's own group, not the host's root`, filepath.Join(staging, own), dir)
	err := unix.Mount(filepath.Join(staging, own), dir, "", unix.MS_BIND, "")
	hook.Call("", `umount2(%q, MNT_DETACH)`, staging)
	if uerr := unix.Unmount(staging, unix.MNT_DETACH); err == nil {
		err = uerr
	}
	return err
}

// bindHostHierarchy: in a user namespace without a cgroup namespace of its
// own, the kernel refuses a cgroup filesystem (its root would be the host's
// hierarchy). The host's mount of that hierarchy is still in view, before
// pivot_root: the container's own group is bound from it, as runc does.
func bindHostHierarchy(dir, fstype, opts, own string, flags uintptr, hook trace.Hook) error {
	mounts, err := mountinfo.Self()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if m.FSType != fstype || m.Root != "/" || (fstype == "cgroup" && !hasEvery(m.Super, strings.TrimPrefix(opts, "none,"))) {
			continue
		}
		from := filepath.Join(m.Point, own)
		hook.Call("no cgroup filesystem in a user namespace without a cgroup namespace: the host's hierarchy, at the container's group", `mount(%q, %q, "", MS_BIND, "")`, from, dir)
		if err := unix.Mount(from, dir, "", unix.MS_BIND, ""); err != nil || flags&unix.MS_RDONLY == 0 {
			return err
		}
		ro := unix.MS_BIND | unix.MS_REMOUNT | flags&(unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
		hook.Call("", `mount("", %q, "", %s, "")`, dir, mountFlagNames(ro))
		return unix.Mount("", dir, "", ro, "")
	}
	return fmt.Errorf("mounting %s: %v, and the host has no mount of it to bind", fstype, unix.EPERM)
}

// hasEvery says whether the comma-separated options have every one of want's.
func hasEvery(options, want string) bool {
	have := strings.Split(options, ",")
	for _, w := range strings.Split(want, ",") {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// tinyInit is --init: PID 1 that runs the command as its child, passes on
// every signal it receives, reaps every zombie (orphans are re-parented to
// PID 1), and exits with the command's status. Without it, the command
// itself is PID 1: it gets no default signal handling, and if it never
// calls wait(), orphaned children stay zombies forever.
func tinyInit(path string, args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(os.Stderr, "%s: %s needs a command\n", name, tinyArg)
		return exitSetup
	}
	// The narration settings came in the environment; the command must
	// not inherit them.
	n := narrate.FromEnv(narrate.Container)
	os.Unsetenv(narrate.EnvVar)
	// Named for what it is, in ps: exec'd from a descriptor, it would be
	// named after the descriptor's number.
	n.Call(`prctl(PR_SET_NAME, "workshop-init")   # PID 1, named for what it is in ps`)
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&[]byte("workshop-init\x00")[0])), 0, 0, 0)
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs)
	cmd := exec.Command(path, args[1:]...)
	cmd.Args = args
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if _, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil {
		// On a terminal (-t): the command leads the terminal's foreground
		// process group, as tini does, so that a typed Ctrl-C reaches it
		// once, from the terminal, and not a second time through us.
		n.Call("setpgid(0, 0), tcsetpgrp(0, <its group>)   # in the child: the terminal's foreground job is the command's")
		cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true, Foreground: true, Ctty: 0}
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot run %s: %v\n", name, args[0], err)
		return exitNotExec
	}
	child := cmd.Process.Pid
	for sig := range sigs {
		if sig == unix.SIGCHLD {
			// Reap everything that has exited: our child, and any orphan.
			for {
				var ws unix.WaitStatus
				pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
				if pid == child {
					if ws.Signaled() {
						return 128 + int(ws.Signal())
					}
					return ws.ExitStatus()
				}
			}
			continue
		}
		if s, ok := sig.(unix.Signal); ok && s != unix.SIGURG {
			_ = unix.Kill(child, s)
		}
	}
	return 0
}

// execveat runs the program open at fd (execveat(2) with AT_EMPTY_PATH):
// no path to look up in the container's root.
func execveat(fd int, argv, env []string) error {
	empty, err := unix.BytePtrFromString("")
	if err != nil {
		return err
	}
	av, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return err
	}
	ev, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return err
	}
	_, _, e := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&av[0])), uintptr(unsafe.Pointer(&ev[0])), unix.AT_EMPTY_PATH, 0)
	return e
}

func initFail(format string, args ...any) {
	initExit(exitSetup, fmt.Sprintf(format, args...))
}

// failLink is the first process's link to the runtime, while it is open.
var failLink struct {
	link *stage.Link
	n    *narrate.Narrator
}

// initExit ends the first process during its setup: the reason goes to its
// stderr (the container's) and to the runtime, which repeats it (an OCI
// caller reads it from create's --log: Docker shows it).
func initExit(code int, msg string) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", name, msg)
	if failLink.link != nil {
		failLink.link.Fail(failLink.n, msg)
	}
	os.Exit(code)
}

// mkdirInRoot makes dir (an absolute path in the container) and its
// missing parents, each resolved inside the root, and returns those it made.
func mkdirInRoot(rootfs, dir string) []string {
	parent, err := inRoot(rootfs, filepath.Dir(dir))
	if err != nil {
		initFail("directory %s: %v", dir, err)
	}
	var made []string
	if _, err := os.Lstat(parent); err != nil {
		made = mkdirInRoot(rootfs, filepath.Dir(dir))
		if parent, err = inRoot(rootfs, filepath.Dir(dir)); err != nil {
			initFail("directory %s: %v", dir, err)
		}
	}
	p := filepath.Join(parent, filepath.Base(dir))
	if err := os.Mkdir(p, 0o755); err == nil {
		made = append(made, p)
	} else if !os.IsExist(err) {
		initFail("directory %s: %v", dir, err)
	}
	return made
}

func symlinkNames(links [][2]string) string {
	var names []string
	for _, l := range links {
		names = append(names, strings.TrimPrefix(l[1], "/dev/"))
	}
	return strings.Join(names, ", ")
}

func propagationName(p uintptr) string {
	switch p {
	case unix.MS_SLAVE:
		return "MS_SLAVE"
	case unix.MS_SHARED:
		return "MS_SHARED"
	case unix.MS_UNBINDABLE:
		return "MS_UNBINDABLE"
	}
	return "MS_PRIVATE"
}

func mountFlagNames(f uintptr) string {
	names := []struct {
		bit  uintptr
		name string
	}{{unix.MS_BIND, "MS_BIND"}, {unix.MS_REC, "MS_REC"}, {unix.MS_RDONLY, "MS_RDONLY"},
		{unix.MS_NOSUID, "MS_NOSUID"}, {unix.MS_NODEV, "MS_NODEV"}, {unix.MS_NOEXEC, "MS_NOEXEC"},
		{unix.MS_STRICTATIME, "MS_STRICTATIME"}, {unix.MS_RELATIME, "MS_RELATIME"}}
	var out []string
	for _, n := range names {
		if f&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "0"
	}
	return strings.Join(out, " | ")
}
