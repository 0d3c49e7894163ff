package rootfs

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/trace"
)

// Trace, when not nil, is told each kernel call just before it is made, with
// the reason it is needed: stages print it as narration.
type Trace = trace.Hook

// Chroot makes root the calling process's root directory, the article's way
// (`chroot $HOME/test /bin/bash`), and moves the working directory into it.
//
// This changes one thing: where this process's path lookups start. The old
// root is still mounted in the same mount namespace, only out of sight, and
// a root process can walk back to it (see the stage's escape). Containers
// use PivotRoot.
func Chroot(root string, trace Trace) error {
	logCall(trace, fmt.Sprintf("chroot(%q)", root), "from now on, paths starting with / start at "+root+" for this process")
	if err := unix.Chroot(root); err != nil {
		return fmt.Errorf("chroot(%s): %v", root, err)
	}
	logCall(trace, `chdir("/")`, "chroot does not move the working directory: without this, the process would still stand outside its new root")
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir(/) after chroot: %v", err)
	}
	return nil
}

// PivotRoot makes newRoot the root of the calling process's mount namespace
// and removes the old root from it entirely, the way runc does. It must be
// called in a mount namespace of the caller's own (after
// unshare(CLONE_NEWNS) or clone with CLONE_NEWNS), never in the host's: it
// refuses to run in the mount namespace of PID 1.
//
// Unlike chroot, the old root does not stay behind out of sight: after the
// lazy unmount, no path and no ".." leads to it from this namespace.
func PivotRoot(newRoot string, trace Trace) error {
	newRoot, err := filepath.Abs(newRoot)
	if err != nil {
		return err
	}
	if err := requireOwnMountNamespace(); err != nil {
		return err
	}

	// 1. Our mounts are copies of the host's. If / is shared (systemd makes
	// it so, as on the workshop VM), every mount or unmount we make below
	// would propagate to the host's namespace: the bind mount would appear
	// there, and the final unmount of the old root would be felt there too.
	// pivot_root(2) also refuses (EINVAL) when the new root's parent mount
	// or the current root is shared. So cut propagation, for every mount in
	// the namespace (MS_REC). runc defaults to MS_SLAVE (host mounts still
	// flow in, nothing flows out); MS_PRIVATE cuts both ways, which is all a
	// one-shot container needs.
	logCall(trace, `mount("", "/", "", MS_REC|MS_PRIVATE, "")`,
		"make every mount in this namespace private: nothing we do propagates to the host (pivot_root refuses shared mounts anyway)")
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private in the new mount namespace: %v", err)
	}

	// 2. pivot_root(2) needs the new root to be a mount point, and not on
	// the same mount as the current root. A directory under /tmp is
	// neither; binding it onto itself makes it a mount point of its own.
	// MS_REC keeps whatever is already mounted inside it (stage 06 mounts
	// its overlay there).
	logCall(trace, fmt.Sprintf("mount(%q, %q, \"\", MS_BIND|MS_REC, \"\")", newRoot, newRoot),
		"pivot_root needs the new root to be a mount point: bind it onto itself")
	if err := unix.Mount(newRoot, newRoot, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mounting %s onto itself: %v", newRoot, err)
	}

	// 3. pivot_root(".", ".") works on the working directory.
	logCall(trace, fmt.Sprintf("chdir(%q)", newRoot), "pivot_root(\".\", \".\") below works on the current directory")
	if err := unix.Chdir(newRoot); err != nil {
		return fmt.Errorf("chdir(%s): %v", newRoot, err)
	}

	// 4. pivot_root(new_root, put_old) moves the old root to put_old, a
	// directory under the new root. Passing "." for both (runc's trick,
	// documented in pivot_root(2)) stacks the old root on top of the new
	// one at the same place: no put_old directory has to exist in, or be
	// left behind in, the image, which may even be read-only.
	logCall(trace, `pivot_root(".", ".")`,
		"the new root becomes / for the whole namespace; the old root is now mounted on top of it, at /")
	if err := unix.PivotRoot(".", "."); err != nil {
		_ = unix.Unmount(newRoot, unix.MNT_DETACH)
		return fmt.Errorf("pivot_root(%s): %v", newRoot, err)
	}

	// 5. "." now names the topmost mount there: the old root. Unmount it.
	// MNT_DETACH (lazy) because it is busy (the host's /proc, /sys, our own
	// binary may be in use under it): it disappears from the namespace now
	// and is freed when the last user lets go. After this, nothing in this
	// namespace leads back to the host's files. Skip it and `ls /` still
	// shows the new root (lookups start at the process's root, under the
	// stacked mount), but the chroot escape climbs into the old root again.
	logCall(trace, `umount2(".", MNT_DETACH)`,
		"detach the old root: the host's / and everything mounted under it leave this namespace")
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmounting the old root: %v", err)
	}

	// 6. The working directory was the new root's directory; make it "/".
	logCall(trace, `chdir("/")`, "stand at the top of the new root")
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir(/) after pivot_root: %v", err)
	}
	return nil
}

// requireOwnMountNamespace refuses to pivot the host: making / private and
// pivoting in the host's mount namespace would change the whole system. The
// host's namespace is PID 1's; where PID 1 cannot be inspected (some
// sandboxes hide it), the parent's stands in for it: a caller that made a
// namespace of its own (clone or unshare with CLONE_NEWNS) differs from it.
func requireOwnMountNamespace() error {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return nil // no /proc to ask: the caller knows what it does
	}
	if ref, which := referenceMountNamespace(); ref == self {
		return fmt.Errorf("pivot_root must run in a new mount namespace (clone or unshare with CLONE_NEWNS first): this process shares %s's, and pivoting there would change / for the whole host", which)
	}
	return nil
}

// referenceMountNamespace returns the mount namespace a caller of PivotRoot
// must have left: PID 1's, or the parent's if PID 1's cannot be read.
func referenceMountNamespace() (ns, which string) {
	if ns, err := os.Readlink("/proc/1/ns/mnt"); err == nil {
		return ns, "PID 1"
	}
	ns, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid()))
	return ns, "its parent"
}

func logCall(t Trace, call, why string) {
	if t != nil {
		t(call, why)
	}
}
