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
		return stage.Fail("usage: exec [-i] NAME -- CMD ARGS...   (or: exec --process FILE [--detach] ID)")
	}
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
	n := narrate.New(narrate.Options{Quiet: !c.Bool("explain"), NoColor: c.Bool("no-color")}, narrate.Host)
	n.Step("exec: a new process inside %s, whose PID 1 is PID %d on the host", st.Name, st.Pid)
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
	if c.Bool("interactive") || c.IsSet("process") {
		helper.Stdin = os.Stdin
	}
	// The helper dies with us (a killed `exec` leaves nothing running),
	// and Pdeathsig belongs to the thread that forks: keep it ours.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	helper.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL}
	n.Call("prctl(PR_SET_PDEATHSIG, SIGKILL)   # in the helper, before its exec: it dies with this command")
	if err := helper.Start(); err != nil {
		return err
	}
	stop := stage.ForwardSignals(helper.Process)
	err = helper.Wait()
	stop()
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
	n := narrate.FromEnv(narrate.Container)
	os.Unsetenv(narrate.EnvVar) // the command must not inherit it
	// Non-dumpable: no process of the container may open this helper's
	// /proc/<pid>/mem (or fd/, or exe) while it works inside, unless it
	// holds CAP_SYS_PTRACE over the host's user namespace.
	n.Call("prctl(PR_SET_DUMPABLE, 0)   # no container process may open this helper's /proc/<pid>/mem")
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return execFail("prctl(PR_SET_DUMPABLE, 0): %v", err)
	}
	ctrPid, specPath, cgroupDirs, mode, pidFile, argv := args[0], args[1], args[2], args[3], args[4], args[6:]
	spec, err := readSpec(specPath)
	if err != nil {
		return execFail("reading the container's spec: %v", err)
	}
	filter, err := seccompFilter(spec)
	if err != nil {
		return execFail("%v", err)
	}
	// Into the container's cgroups first, while the host's /sys/fs/cgroup is
	// still in view: the command forked below from this thread inherits
	// them (and their limits: an exec'd memory hog is fenced in like the
	// rest). On v1 this thread alone moves, as the container's init does
	// (containerInit says why); the helper's other threads stay out.
	for _, d := range strings.Split(cgroupDirs, ",") {
		if d == "" {
			continue
		}
		if err := cgroup.JoinThread(d, n.Trace()); err != nil {
			if errors.Is(err, fs.ErrNotExist) { // removed once the container ended
				return execFail("container %s exited", short(spec.ID))
			}
			return execFail("joining the cgroup %s: %v", d, err)
		}
	}
	// The PID file is the caller's path, on the host: open it while the
	// host's filesystem is still in view.
	var pidOut *os.File
	if pidFile != "" {
		if pidOut, err = os.OpenFile(pidFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644); err != nil {
			return execFail("--pid-file: %v", err)
		}
	}
	// Open every namespace before joining any: once in the container's
	// mount namespace, the host's /proc/<pid> is out of sight.
	kinds := []struct {
		name, flagName string
		flag           int
	}{{"cgroup", "CLONE_NEWCGROUP", unix.CLONE_NEWCGROUP}, {"ipc", "CLONE_NEWIPC", unix.CLONE_NEWIPC},
		{"uts", "CLONE_NEWUTS", unix.CLONE_NEWUTS}, {"net", "CLONE_NEWNET", unix.CLONE_NEWNET},
		{"pid", "CLONE_NEWPID", unix.CLONE_NEWPID}, {"mnt", "CLONE_NEWNS", unix.CLONE_NEWNS}}
	fds := make([]int, len(kinds))
	for i, k := range kinds {
		fd, err := unix.Open("/proc/"+ctrPid+"/ns/"+k.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil && k.name == "mnt" {
			// Its PID 1 is gone: without its mount namespace the command
			// would run in the host's.
			return execFail("container %s exited", short(spec.ID))
		}
		if err != nil {
			fds[i] = -1
			continue
		}
		fds[i] = fd
	}
	n.Call("open(/proc/%s/ns/{cgroup,ipc,uts,net,pid,mnt})   # every namespace first: once in the mount namespace, the host's /proc is gone", ctrPid)
	n.Call("unshare(CLONE_FS)   # this thread's own root and cwd: setns(CLONE_NEWNS) refuses a shared one")
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return execFail("unshare(CLONE_FS): %v", err)
	}
	for i, k := range kinds {
		if fds[i] < 0 {
			continue
		}
		n.Call("setns(%d, %s)   # /proc/%s/ns/%s", fds[i], k.flagName, ctrPid, k.name)
		if err := unix.Setns(fds[i], k.flag); err != nil {
			return execFail("setns(%s): %v", k.name, err)
		}
		unix.Close(fds[i])
	}
	n.Call("keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)   # a session keyring of its own")
	if err := newSessionKeyring(); err != nil {
		return execFail("%v", err)
	}
	// setns(mnt) put this thread at the container's root; the working
	// directory is the image's.
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	n.Call("chdir(%q)   # the image's working directory, inside", cwd)
	if err := unix.Chdir(cwd); err != nil {
		return execFail("chdir %s: %v", cwd, err)
	}
	os.Clearenv()
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	path, err := stage.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %s: command not found in the container's root (PATH=%s)\n", name, argv[0], os.Getenv("PATH"))
		return exitNotFound
	}
	keep, err := capBits(spec.Capabilities)
	if err != nil {
		return execFail("%v", err)
	}
	for _, r := range spec.Rlimits {
		if err := unix.Setrlimit(r.Type, &unix.Rlimit{Cur: r.Soft, Max: r.Hard}); err != nil {
			return execFail("setrlimit %d: %v", r.Type, err)
		}
	}
	if spec.Umask != nil {
		unix.Umask(int(*spec.Umask))
	}
	if spec.NoNewPrivs {
		n.Call("prctl(PR_SET_NO_NEW_PRIVS, 1)")
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return execFail("no_new_privs: %v", err)
		}
	}
	n.Call("prctl(PR_CAPBSET_DROP) x %d, capset(...)   # the container's %d capabilities", int(lastCap())+1-len(spec.Capabilities), len(spec.Capabilities))
	// The command gets the container's seccomp filter: installed on this
	// thread, the one that forks, it passes to the child and across its
	// execve (the child itself runs only raw system calls until then; its
	// fork.go code could load a prepared filter as well, but the kernel
	// would take it there only with no_new_privs, and this thread has
	// CAP_SYS_ADMIN for the other case). Filters belong to threads: the
	// helper's other threads (signal forwarding) stay unfiltered, and this
	// one goes on to make only calls Docker's profile allows: read, close,
	// wait4, write to the PID file.
	if err := dropPrivileges(n, spec, keep, filter); err != nil {
		return execFail("%v", err)
	}
	// setns(CLONE_NEWPID) only sets the namespace of this thread's future
	// children: the command must be a new process to be inside it. It is
	// made with fork(2), not os/exec's vfork: fork.go says which attack
	// that stops. With a caller attached, the command dies with this
	// helper (PR_SET_PDEATHSIG): a killed `exec` leaves nothing running.
	n.Call("fork()   # a copy of this thread, in the container's PID namespace; not vfork: fork.go says why")
	if mode != "detach" {
		n.Call("prctl(PR_SET_PDEATHSIG, SIGKILL)   # in the child: it dies with this helper")
	}
	n.Call("execve(%q, %q)", path, argv)
	pid, err := forkExec(path, argv, os.Environ(), mode != "detach")
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot run %s: %v\n", name, argv[0], err)
		return exitNotExec
	}
	if pidOut != nil {
		_, err := pidOut.WriteString(strconv.Itoa(pid))
		pidOut.Close()
		if err != nil {
			return execFail("--pid-file: %v", err)
		}
	}
	if mode == "detach" {
		// The process lives on; its new parent is whoever reaps orphans
		// here (containerd's shim is a subreaper, as it is for runc).
		return 0
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return execFail("%v", err)
	}
	stop := stage.ForwardSignals(proc)
	ps, err := proc.Wait()
	stop()
	if err != nil {
		return execFail("waiting for %s: %v", argv[0], err)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func execFail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "%s: exec: %s\n", name, fmt.Sprintf(format, args...))
	return exitSetup
}
