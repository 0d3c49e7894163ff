package main

// `exec`: run a command inside a running container, the way `docker exec`
// does: join the container's namespaces with setns(), found as files under
// /proc/<pid>/ns/, and its cgroups, then fork the command there.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/03-cgroups-cpu/cgroup"
	"github.com/container-internals/workshop/06-full-container/seccomp"
	"github.com/container-internals/workshop/internal/narrate"
	"github.com/container-internals/workshop/internal/stage"
)

func execCmd(c *cli.Context) error {
	ref, args := splitCommand(c)
	if ref == "" && len(args) > 0 {
		ref, args = args[0], args[1:]
	}
	if c.IsSet("process") {
		ref, args = c.Args().First(), nil
	}
	if ref == "" || (len(args) == 0 && !c.IsSet("process")) {
		return stage.Fail("usage: exec [-i] [-t] NAME -- CMD ARGS...   (or: exec --process FILE [--detach] [--console-socket PATH] ID)")
	}
	tty := c.Bool("tty")
	rt, err := runtimeFor(c)
	if err != nil {
		return err
	}
	st, err := rt.dirs.find(ref)
	if err != nil {
		return stage.Fail("%v", err)
	}
	if (st.Status != Running && st.Status != Created) || !alive(st.Pid, st.PidStart) {
		return stage.Fail("container %s is not running: exec needs a running container; start a new one with `run -d`", st.Name)
	}
	specPath := rt.dirs.configPath(st.ID)
	if p := c.String("process"); p != "" {
		base, err := readSpec(specPath)
		if err != nil {
			return stage.Fail("%v", err)
		}
		ps, err := processSpec(base, p)
		if err != nil {
			return stage.Fail("exec --process: %v", err)
		}
		tty = tty || ps.Terminal
		f, err := os.CreateTemp(rt.dirs.containerDir(st.ID), "exec-*.json")
		if err != nil {
			return err
		}
		f.Close()
		defer os.Remove(f.Name())
		if err := writeSpec(f.Name(), ps); err != nil {
			return err
		}
		specPath, args = f.Name(), ps.Args
	}
	var dirs []string
	for _, d := range st.CgroupPaths {
		dirs = append(dirs, d)
	}
	mode := "attach"
	if c.Bool("detach") {
		mode = "detach"
	}
	if err := checkExecTerminal(c, tty); err != nil {
		return err
	}
	if tty {
		mode += "+tty"
		if !c.IsSet("process") { // its size, for the helper to set before the command runs
			if specPath, err = execSpecWithSize(rt.dirs.containerDir(st.ID), specPath); err != nil {
				return err
			}
			defer os.Remove(specPath)
		}
	}
	n := narrate.New(narrate.Options{Quiet: !c.Bool("explain"), NoColor: c.Bool("no-color")}, narrate.Host)
	n.Step("exec: a new process inside %s, whose PID 1 is PID %d on the host", st.Name, st.Pid)
	stdin, console, term, err := execTerminal(c, tty, n.Trace())
	if err != nil {
		return err
	}
	defer term.finish() // the user's terminal as it was, on every way out
	self, how, err := sealedExe(n.Trace())
	if err != nil {
		return stage.Fail("%v", err)
	}
	n.Call("fork + execve(this program, from a sealed %s copy)   # the helper, still on the host", how)
	helper := exec.Command(self, append([]string{execArg, strconv.Itoa(st.Pid), specPath,
		strings.Join(dirs, ","), mode, c.String("pid-file"), "--"}, args...)...)
	helper.Args[0] = "workshop-exec"
	helper.Stdout, helper.Stderr = os.Stdout, os.Stderr
	helper.Env = append(os.Environ(), n.Env())
	helper.Stdin = stdin
	if console != nil {
		helper.ExtraFiles = []*os.File{console} // execConsoleFd
	}
	// The helper dies with us (a killed `exec` leaves nothing running),
	// and Pdeathsig belongs to the thread that forks: keep it ours.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	helper.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL}
	n.Call("prctl(PR_SET_PDEATHSIG, SIGKILL)   # in the helper, before its exec: it dies with this command")
	err = helper.Start()
	if console != nil {
		console.Close() // the helper has its own copy
	}
	if err != nil {
		return err
	}
	stop := stage.ForwardSignals(helper.Process)
	err = helper.Wait()
	stop()
	term.finish()
	return stage.Propagate(err)
}

// execInside runs in a fresh copy of the runtime: args are the container's
// PID, its spec, its cgroup directories, attach or detach, a PID file (or
// ""), "--", the command.
//
// Joining a mount namespace from Go needs care. setns(CLONE_NEWNS) refuses a
// thread that shares its filesystem context (root, cwd, umask) with other
// threads, and every Go thread does (they are cloned with CLONE_FS). So this
// goroutine locks itself to one OS thread and first calls
// unshare(CLONE_FS): that thread gets a private copy of the filesystem
// context, and may then join. Namespaces belong to threads too, so the
// command is forked from this same thread, and inherits them all.
func execInside(args []string) int {
	runtime.LockOSThread()
	h := &execHelper{n: narrate.FromEnv(narrate.Container), ctrPid: args[0], specPath: args[1],
		cgroupDirs: args[2], mode: args[3], pidFile: args[4], argv: args[6:], slave: -1, userns: -1}
	h.mode, h.tty = strings.CutSuffix(h.mode, "+tty")
	os.Unsetenv(narrate.EnvVar) // the command must not inherit it
	for _, step := range []func() error{
		h.notDumpable, h.readSpec, h.joinCgroups, h.joinNamespaces, h.prepareProcess, h.closeHostFds, h.dropPrivileges, h.openTerminal, h.givePty,
	} {
		if err := step(); err != nil {
			return exitCodeOf(err)
		}
	}
	return h.forkAndWait()
}

// execHelper is what exec's helper knows as it goes.
type execHelper struct {
	n                                  *narrate.Narrator
	ctrPid, specPath, cgroupDirs, mode string
	pidFile                            string
	argv                               []string
	spec                               *Spec
	filter                             *seccomp.Filter
	pidOut                             *os.File
	path                               string
	keep                               uint64
	tty                                bool // -t: the command gets a pty (tty.go)
	slave                              int  // its slave, for the command's 0, 1, 2
	userns                             int  // the container's user namespace, if not ours (usernsexec.go); else -1
	uidMap, gidMap                     []IDMap
	into                               *usernsEntry // what the child does to enter it
}

// notDumpable: no process of the container may open this helper's
// /proc/<pid>/mem (or fd/, or exe) while it works inside, unless it holds
// CAP_SYS_PTRACE over the host's user namespace.
func (h *execHelper) notDumpable() error {
	h.n.Call("prctl(PR_SET_DUMPABLE, 0)   # no container process may open this helper's /proc/<pid>/mem")
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return execFailure("prctl(PR_SET_DUMPABLE, 0): %v", err)
	}
	return nil
}

func (h *execHelper) readSpec() (err error) {
	if h.spec, err = readSpec(h.specPath); err != nil {
		return execFailure("reading the container's spec: %v", err)
	}
	if h.filter, err = seccompFilter(h.spec); err != nil {
		return execFailure("%v", err)
	}
	return nil
}

// joinCgroups: into the container's cgroups first, while the host's
// /sys/fs/cgroup is still in view: the command forked below from this
// thread inherits them (and their limits: an exec'd memory hog is fenced in
// like the rest). On v1 this thread alone moves, as the container's first
// process does; the helper's other threads stay out. The PID file is the
// caller's path, on the host: it is opened now too, while in view.
func (h *execHelper) joinCgroups() (err error) {
	for _, d := range strings.Split(h.cgroupDirs, ",") {
		if d == "" {
			continue
		}
		if err := cgroup.JoinThread(d, h.n.Trace()); err != nil {
			if errors.Is(err, fs.ErrNotExist) { // removed once the container ended
				return execFailure("container %s exited", short(h.spec.ID))
			}
			return execFailure("joining the cgroup %s: %v", d, err)
		}
	}
	if h.pidFile != "" {
		if h.pidOut, err = os.OpenFile(h.pidFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644); err != nil {
			return execFailure("--pid-file: %v", err)
		}
	}
	return nil
}

// joinNamespaces opens every namespace before joining any (once in the
// container's mount namespace, the host's /proc/<pid> is out of sight),
// leaves the shared filesystem context, joins them, and takes a keyring of
// its own.
func (h *execHelper) joinNamespaces() error {
	kinds := []struct {
		name, flagName string
		flag           int
	}{{"cgroup", "CLONE_NEWCGROUP", unix.CLONE_NEWCGROUP}, {"ipc", "CLONE_NEWIPC", unix.CLONE_NEWIPC},
		{"uts", "CLONE_NEWUTS", unix.CLONE_NEWUTS}, {"net", "CLONE_NEWNET", unix.CLONE_NEWNET},
		{"pid", "CLONE_NEWPID", unix.CLONE_NEWPID}, {"mnt", "CLONE_NEWNS", unix.CLONE_NEWNS}}
	fds := make([]int, len(kinds))
	for i, k := range kinds {
		fd, err := unix.Open("/proc/"+h.ctrPid+"/ns/"+k.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil && k.name == "mnt" {
			// Its PID 1 is gone: without its mount namespace the command
			// would run in the host's.
			return execFailure("container %s exited", short(h.spec.ID))
		}
		fds[i] = fd
		if err != nil {
			fds[i] = -1
		}
	}
	if err := h.openUserns(); err != nil {
		return execFailure("the container's user namespace: %v", err)
	}
	user := ""
	if h.userns >= 0 {
		user = ",user"
	}
	h.n.Call("open(/proc/%s/ns/{cgroup,ipc,uts,net,pid,mnt%s})   # every namespace first: once in the mount namespace, the host's /proc is gone", h.ctrPid, user)
	h.n.Call("unshare(CLONE_FS)   # this thread's own root and cwd: setns(CLONE_NEWNS) refuses a shared one")
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return execFailure("unshare(CLONE_FS): %v", err)
	}
	for i, k := range kinds {
		if fds[i] < 0 {
			continue
		}
		h.n.Call("setns(%d, %s)   # /proc/%s/ns/%s", fds[i], k.flagName, h.ctrPid, k.name)
		if err := unix.Setns(fds[i], k.flag); err != nil {
			return execFailure("setns(%s): %v", k.name, err)
		}
		unix.Close(fds[i])
	}
	if err := execChroot(h.spec, h.ctrPid, h.n.Trace()); err != nil {
		return execFailure("%v", err)
	}
	h.n.Call("keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)   # a session keyring of its own")
	if err := newSessionKeyring(); err != nil {
		return execFailure("%v", err)
	}
	return nil
}

// prepareProcess: setns(mnt) put this thread at the container's root; the
// working directory, the environment, the limits and the umask are the
// container's, and the command is found in its PATH.
func (h *execHelper) prepareProcess() (err error) {
	spec := h.spec
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	h.n.Call("chdir(%q)   # the image's working directory, inside", cwd)
	if err := unix.Chdir(cwd); err != nil {
		return execFailure("chdir %s: %v", cwd, err)
	}
	os.Clearenv()
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	if h.path, err = stage.LookPath(h.argv[0]); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %s: command not found in the container's root (PATH=%s)\n", name, h.argv[0], os.Getenv("PATH"))
		return exitStatus(exitNotFound)
	}
	if h.keep, err = capBits(spec.Capabilities); err != nil {
		return execFailure("%v", err)
	}
	for _, r := range spec.Rlimits {
		if err := unix.Setrlimit(r.Type, &unix.Rlimit{Cur: r.Soft, Max: r.Hard}); err != nil {
			return execFailure("setrlimit %d: %v", r.Type, err)
		}
	}
	if spec.Umask != nil {
		unix.Umask(int(*spec.Umask))
	}
	return nil
}

// dropPrivileges gives this thread the container's privileges, and its
// seccomp filter: installed on this thread, the one that forks, it passes
// to the child and across its execve (the child itself runs only raw system
// calls until then; its fork.go code could load a prepared filter as well,
// but the kernel would take it there only with no_new_privs, and this
// thread has CAP_SYS_ADMIN for the other case). Filters belong to threads:
// the helper's other threads (signal forwarding) stay unfiltered, and this
// one goes on to make only calls Docker's profile allows: read, close,
// wait4, write to the PID file.
//
// In a user namespace, the child does it all (usernsexec.go says why).
func (h *execHelper) dropPrivileges() error {
	if h.userns >= 0 {
		return h.prepareUsernsEntry()
	}
	if h.spec.NoNewPrivs {
		h.n.Call("prctl(PR_SET_NO_NEW_PRIVS, 1)")
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return execFailure("no_new_privs: %v", err)
		}
	}
	h.n.Call("prctl(PR_CAPBSET_DROP) x %d, capset(...)   # the container's %d capabilities", int(lastCap())+1-len(h.spec.Capabilities), len(h.spec.Capabilities))
	if err := dropPrivileges(h.n, h.spec, h.keep, h.filter); err != nil {
		return execFailure("%v", err)
	}
	return nil
}

// forkAndWait: setns(CLONE_NEWPID) only sets the namespace of this
// thread's future children, so the command must be a new process to be
// inside it. It is made with fork(2), not os/exec's vfork: fork.go says
// which attack that stops. With a caller attached, the command dies with
// this helper (PR_SET_PDEATHSIG): a killed `exec` leaves nothing running.
func (h *execHelper) forkAndWait() int {
	attached := h.mode != "detach"
	h.n.Call("fork()   # a copy of this thread, in the container's PID namespace; not vfork: fork.go says why")
	if h.into != nil {
		h.narrateUsernsEntry()
	}
	if attached {
		h.n.Call("prctl(PR_SET_PDEATHSIG, SIGKILL)   # in the child: it dies with this helper")
	}
	h.n.Call("setsid()   # in the child: a session of its own, never the user's terminal as its controlling one")
	if h.tty {
		h.n.Call("ioctl(slave, TIOCSCTTY, 0), dup3(slave, 0 | 1 | 2)   # in the child: the pty is its controlling terminal and its stdio")
	}
	h.n.Call("execve(%q, %q)", h.path, h.argv)
	pid, err := forkExec(h.path, h.argv, os.Environ(), attached, h.slave, h.into)
	if h.tty {
		unix.Close(h.slave)
		unix.Close(execConsoleFd) // the command's copy closed at its execve: the terminal's relay begins
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot run %s: %v\n", name, h.argv[0], err)
		return exitNotExec
	}
	if h.pidOut != nil {
		_, err := h.pidOut.WriteString(strconv.Itoa(pid))
		h.pidOut.Close()
		if err != nil {
			return execFail("--pid-file: %v", err)
		}
	}
	if !attached {
		// The process lives on; its new parent is whoever reaps orphans
		// here (containerd's shim is a subreaper, as it is for runc).
		return 0
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return execFail("%v", err)
	}
	stop := forwardToGroup(pid)
	ps, err := proc.Wait()
	stop()
	if err != nil {
		return execFail("waiting for %s: %v", h.argv[0], err)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// forwardToGroup passes SIGINT, SIGTERM and SIGHUP (a killed `exec`) on
// to the command's process group, which it leads (fork.go's setsid): a
// shell's children get them too, as they would from a terminal. Sent to
// the command alone, a TERM ended `sh -c 'sleep 100; ...'` and left its
// sleep running in the container.
func forwardToGroup(pid int) func() {
	return stage.ForwardSignalsTo(func(s os.Signal) { _ = unix.Kill(-pid, s.(unix.Signal)) })
}

func execFail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "%s: exec: %s\n", name, fmt.Sprintf(format, args...))
	return exitSetup
}

// exitStatus is an error that ends the helper with that status, its message
// already printed.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// execFailure prints why exec could not be set up, and ends it with 125.
func execFailure(format string, args ...any) error {
	return exitStatus(execFail(format, args...))
}

func exitCodeOf(err error) int {
	var e exitStatus
	if errors.As(err, &e) {
		return int(e)
	}
	return exitSetup
}
