package main

// Joining namespaces that exist already: an OCI config's
// linux.namespaces[].path (what Docker writes for `--network container:X`,
// `--ipc container:X`, `--pid container:X`), the same setns() that `exec`
// makes, but for a container's first process. Each kind has its own rule:
//
//   - net, ipc, uts, cgroup: setns() on the container's first process, as
//     soon as it runs, like `exec`.
//   - pid: setns(CLONE_NEWPID) never moves the caller, only its future
//     children (a process's PID cannot change). So the runtime joins it on
//     the host's side, on the one thread that then clones the first
//     process, and goes back to its own PID namespace right after.
//   - mnt: the kernel refuses setns(CLONE_NEWNS) to a thread that shares
//     its filesystem context (root, cwd, umask) with others, and every
//     thread of a Go program does (they are cloned with CLONE_FS). The
//     joining thread first calls unshare(CLONE_FS), locked to its OS
//     thread: it gets a copy of its own, and may then join. The mount
//     namespace is joined last: once in it, the host's /proc/<pid>/ns
//     files are out of sight. A joined mount namespace is another's: the
//     container mounts nothing in it (no root, no /proc, no masked paths),
//     and runs in it as it is, as `exec` does.
//   - user: the first process must be born in it (its new namespaces are
//     then that user namespace's), and a Go program cannot setns into one:
//     it is started by raw system calls instead (joinuserns.go).

import (
	"fmt"
	"os"
	"runtime"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/trace"
)

// joinOrder is the order the namespaces are joined in (runc's): mnt last.
var joinOrder = []struct {
	kind, flagName string
	flag           int
}{
	{"ipc", "CLONE_NEWIPC", unix.CLONE_NEWIPC}, {"uts", "CLONE_NEWUTS", unix.CLONE_NEWUTS},
	{"net", "CLONE_NEWNET", unix.CLONE_NEWNET}, {"cgroup", "CLONE_NEWCGROUP", unix.CLONE_NEWCGROUP},
	{"mnt", "CLONE_NEWNS", unix.CLONE_NEWNS},
}

// Where a container's mounts happen.
const (
	mountsNew    = "new"    // a mount namespace of its own: the whole setup
	mountsJoined = "joined" // another's, joined by path: used as it is
	mountsNone   = "none"   // the caller's: nothing mounted, chroot only
)

// mountMode says which of the three a spec asks for.
func (s *Spec) mountMode() string {
	switch {
	case s.JoinNamespaces["mnt"] != "":
		return mountsJoined
	case slices.Contains(s.Namespaces, "mnt"):
		return mountsNew
	}
	return mountsNone
}

// joinExisting joins the namespaces named in paths (every kind but pid),
// on the calling thread, which must be locked to its OS thread: the one
// that will exec. Every file is opened before any is joined.
func joinExisting(paths map[string]string, hook trace.Hook) error {
	fds := map[string]int{}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, k := range joinOrder {
		if p := paths[k.kind]; p != "" {
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("opening the %s namespace %s: %v", k.kind, p, err)
			}
			fds[k.kind] = fd
		}
	}
	if _, ok := fds["mnt"]; ok {
		hook.Call("this thread's own root and cwd: setns(CLONE_NEWNS) refuses a thread that shares them, and Go's threads do", "unshare(CLONE_FS)")
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return fmt.Errorf("unshare(CLONE_FS): %v", err)
		}
	}
	for _, k := range joinOrder {
		fd, ok := fds[k.kind]
		if !ok {
			continue
		}
		hook.Call("join an existing namespace", "setns(open(%q), %s)", paths[k.kind], k.flagName)
		if err := unix.Setns(fd, k.flag); err != nil {
			return fmt.Errorf("joining the %s namespace %s: %v", k.kind, paths[k.kind], err)
		}
	}
	return nil
}

// pidNamespaceForChildren makes the calling goroutine's thread clone its
// next children into the PID namespace at path, and returns what puts it
// back: call it right after the clone. The thread stays locked until then.
func pidNamespaceForChildren(path string, hook trace.Hook) (restore func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	own, err := unix.Open("/proc/self/ns/pid", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(own)
		return nil, fmt.Errorf("opening the pid namespace %s: %v", path, err)
	}
	defer unix.Close(target)
	runtime.LockOSThread()
	hook.Call("a PID namespace is joined by the children cloned next, never by the caller: this thread's next clone", "setns(open(%q), CLONE_NEWPID)", path)
	if err := unix.Setns(target, unix.CLONE_NEWPID); err != nil {
		runtime.UnlockOSThread()
		unix.Close(own)
		return nil, fmt.Errorf("joining the pid namespace %s: %v", path, err)
	}
	return func() error {
		defer unix.Close(own)
		hook.Call("back to the runtime's own PID namespace, for its later children", "setns(open(\"/proc/self/ns/pid\"), CLONE_NEWPID)")
		if err := unix.Setns(own, unix.CLONE_NEWPID); err != nil {
			// The thread stays locked to this goroutine, which fails the
			// command: no other goroutine's child may land in the
			// container's namespace.
			return fmt.Errorf("returning to the runtime's pid namespace: %v", err)
		}
		runtime.UnlockOSThread()
		return nil
	}, nil
}

// checkNamespaceFile checks that path is a namespace file of the kind
// wanted (NS_GET_NSTYPE), so that create fails naming the field, not the
// container's first process half way through its setup.
func checkNamespaceFile(path, kind string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	t, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("%s is not a namespace file (such as /proc/PID/ns/%s)", path, kind)
	}
	want := map[string]int{"pid": unix.CLONE_NEWPID, "user": unix.CLONE_NEWUSER, "time": unix.CLONE_NEWTIME}[kind]
	for _, k := range joinOrder {
		if k.kind == kind {
			want = k.flag
		}
	}
	if t != want {
		return fmt.Errorf("%s is a namespace of another kind, not %s", path, kind)
	}
	return nil
}

// execChroot: `exec` into a container without a mount namespace of its own
// joined the host's with setns, whose root is the host's: the command goes
// under the container's chroot, which its first process's root shows.
func execChroot(spec *Spec, ctrPid string, hook trace.Hook) error {
	if spec.mountMode() != mountsNone {
		return nil
	}
	root := "/proc/" + ctrPid + "/root"
	hook.Call("no mount namespace of its own: the container's root is its first process's chroot", "chroot(%q)", root)
	if err := unix.Chroot(root); err != nil {
		return fmt.Errorf("chroot %s: %v", root, err)
	}
	return nil
}
