package main

// Why runtimes are careful about /proc/self/exe.
//
// The runtime starts copies of itself that end up inside the container: the
// container's first process (before it becomes the user's command), the
// `exec` helper's command, `--init`. Each of them runs *this program's
// file*, and /proc/<pid>/exe of a process is a handle on the file it runs.
// CVE-2019-5736 (runc, 2019) used exactly that: the container replaced
// /bin/sh with a script starting `#!/proc/self/exe`, so the next
// `docker exec ... sh` ran the runtime binary again, inside the container.
// A process there kept an O_PATH handle on /proc/<that pid>/exe and, once
// the binary was no longer running (ETXTBSY), reopened it for writing
// through /proc/self/fd: it rewrote the host's runc, and the operator's next
// command ran the attacker's file as root.
//
// The fix, as runc's: never start a copy of ourselves from the host's file.
// Start it from a read-only handle that cannot be turned back into the file:
// a file of a private, read-only, lower-only overlay mount that exists in no
// mount table (made with fsopen/fsmount, zero copies), or, where overlayfs
// cannot do that, a sealed copy in memory (memfd_create + F_SEAL_WRITE).
// Whoever reaches /proc/<pid>/exe then reaches that handle, and writing
// through it fails.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/trace"
)

// exeLowerDir, in the image store's directory, is overlayExe's empty layer.
const exeLowerDir = ".exe-lower"

var sealed struct {
	emptyDir string // see overlayExe: set by the runtime before the first use
	once     sync.Once
	fd       int    // a high, close-on-exec fd of the sealed program
	how      string // "overlay" or "memfd"
	err      error
}

// sealedExe returns the path to exec this program by, safely: /proc/self/fd/N
// of a sealed handle. It is made once per process.
func sealedExe(hook trace.Hook) (path, how string, err error) {
	sealed.once.Do(func() {
		var fd int
		fd, sealed.how, sealed.err = sealSelf(hook)
		if sealed.err != nil {
			return
		}
		// A high number: os/exec moves the child's extra files (the link's
		// pipes) onto fds 3, 4, ... before exec, and must not overwrite it.
		sealed.fd, sealed.err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 100)
		unix.Close(fd)
	})
	if sealed.err != nil {
		return "", "", fmt.Errorf("making a sealed copy of this program (CVE-2019-5736): %v", sealed.err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", sealed.fd), sealed.how, nil
}

func sealSelf(hook trace.Hook) (int, string, error) {
	if fd, err := overlayExe(hook); err == nil {
		return fd, "overlay", nil
	}
	fd, err := memfdExe(hook)
	return fd, "memfd", err
}

// overlayExe opens this program through an overlay mount made of its own
// directory and an empty one, with no upper layer: such an overlay is
// read-only for good (there is nowhere to copy a changed file up to), and
// it is never attached to any mount namespace, so nothing can remount it.
func overlayExe(hook trace.Hook) (int, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return -1, err
	}
	if strings.HasSuffix(exe, " (deleted)") || !filepath.IsAbs(exe) {
		return -1, fmt.Errorf("%s is not a path on disk", exe)
	}
	// overlayfs needs two lower layers to run without an upper one; the
	// second is an empty directory of the runtime's own. It must not be
	// inside the first (overlayfs refuses overlapping layers: ELOOP).
	empty := sealed.emptyDir
	if empty == "" || strings.HasPrefix(empty, filepath.Dir(exe)+"/") || filepath.Dir(exe) == "/" {
		return -1, fmt.Errorf("no empty directory outside %s", filepath.Dir(exe))
	}
	if err := os.MkdirAll(empty, 0o700); err != nil {
		return -1, err
	}
	hook.Call("a read-only view of this program, for every copy of it that enters a container (CVE-2019-5736)", `fsopen("overlay", FSOPEN_CLOEXEC)`)
	ctx, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, err
	}
	defer unix.Close(ctx)
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`, `,`, `\,`)
	lower := esc.Replace(filepath.Dir(exe)) + ":" + esc.Replace(empty)
	hook.Call("two lower layers and no upper one: nothing can ever be written", `fsconfig(fd, FSCONFIG_SET_STRING, "lowerdir", %q)`, lower)
	if err := unix.FsconfigSetString(ctx, "lowerdir", lower); err != nil {
		return -1, err
	}
	hook.Call("", `fsconfig(fd, FSCONFIG_SET_STRING, "xino", "off")`)
	_ = unix.FsconfigSetString(ctx, "xino", "off")
	hook.Call("", `fsconfig(fd, FSCONFIG_CMD_CREATE)`)
	if err := unix.FsconfigCreate(ctx); err != nil {
		return -1, err
	}
	hook.Call("a mount that is never attached anywhere: nothing can remount it", `fsmount(fd, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID)`)
	mnt, err := unix.Fsmount(ctx, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID)
	if err != nil {
		return -1, err
	}
	defer unix.Close(mnt)
	hook.Call("", `openat(mfd, %q, O_PATH | O_NOFOLLOW | O_CLOEXEC)`, filepath.Base(exe))
	return unix.Openat(mnt, filepath.Base(exe), unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// memfdExe copies this program into memory and seals the copy: no write,
// no resize, no new seals. It costs one copy of the binary per run.
func memfdExe(hook trace.Hook) (int, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return -1, err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return -1, err
	}
	hook.Call("overlayfs could not make a read-only view: a copy in memory, sealed", `memfd_create("workshop-sealed-exe", MFD_CLOEXEC | MFD_ALLOW_SEALING); sendfile(...); fcntl(F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)`)
	fd, err := unix.MemfdCreate("workshop-sealed-exe", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, err
	}
	for left := fi.Size(); left > 0; {
		n, err := unix.Sendfile(fd, int(src.Fd()), nil, int(min(left, 1<<30)))
		if err != nil || n == 0 {
			unix.Close(fd)
			return -1, fmt.Errorf("copying the program: %v", err)
		}
		left -= int64(n)
	}
	if err := unix.Fchmod(fd, 0o511); err != nil {
		unix.Close(fd)
		return -1, err
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
