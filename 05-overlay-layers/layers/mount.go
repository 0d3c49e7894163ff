// Package layers is how a container's root is made of image layers: overlay
// mounts of a stack of read-only directories plus a writable one, layers as
// tar archives with OCI whiteouts, their digests (diffID and chain ID), the
// init layer, and a small on-disk store laid out like Docker's
// /var/lib/docker (layerdb keyed by chain ID, a cache-id naming the files).
//
// Order convention, everywhere in this package: layer lists are BOTTOM
// FIRST, the order of an image config's rootfs.diff_ids and of
// `docker image inspect`'s RootFS.Layers. The last layer's files win.
// (The kernel's lowerdir= option is the other way round, top first; Mount
// turns the list around for it.)
package layers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/trace"
)

// MaxLowerLayers is the deepest stack overlayfs accepts: OVL_MAX_STACK in
// the kernel's fs/overlayfs (500 since Linux 4.x). Docker's overlay2 driver
// stops at 128 on its own.
const MaxLowerLayers = 500

// forceClassic makes Mount use mount(2) even where fsopen and lowerdir+
// work, so that tests can prove the fallback on a new kernel.
var forceClassic = false

// Mount mounts an overlay filesystem at target.
//
// lowers are the read-only layers, BOTTOM FIRST: lowers[len(lowers)-1] is
// the top, its files hide those of the layers below it. upper receives every
// change made through target and work is overlayfs's scratch directory
// (same filesystem as upper, empty); leave both empty for a read-only mount.
//
// It uses the new mount API (fsopen, one fsconfig "lowerdir+" per layer,
// fsmount, move_mount: Linux 6.7+), so each path can be long and the stack as
// deep as the kernel allows; on older kernels it falls back to mount(2),
// with short relative names for the layers when their paths do not fit in
// mount(2)'s one page of options (see mountClassic).
func Mount(target string, lowers []string, upper, work string, hook trace.Hook) error {
	return mount(target, lowers, upper, work, false, hook)
}

// MountVolatile is Mount for a read-write layer that will be thrown away:
// overlayfs's "volatile" option (Linux 5.10+). Without it, unmounting the
// overlay syncs the whole filesystem that holds the upper directory (it
// cannot tell which dirty pages are the layer's), and a container's exit
// waits for a disk flush. Volatile skips that sync; after a crash the
// kernel refuses to mount the layer again (it leaves work/incompat/volatile
// as a mark), which a container's throwaway layer never is. Podman mounts
// its transient containers this way. It is used with the new mount API
// only; on older kernels MountVolatile is Mount.
func MountVolatile(target string, lowers []string, upper, work string, hook trace.Hook) error {
	return mount(target, lowers, upper, work, upper != "", hook)
}

func mount(target string, lowers []string, upper, work string, volatile bool, hook trace.Hook) error {
	if len(lowers) == 0 {
		return errors.New("an overlay needs at least one lower layer")
	}
	if len(lowers) > MaxLowerLayers {
		return fmt.Errorf("overlayfs stacks at most %d lower layers; got %d", MaxLowerLayers, len(lowers))
	}
	if (upper == "") != (work == "") {
		return errors.New("an overlay needs both an upper and a work directory, or neither (read-only)")
	}
	// Name a missing directory ourselves: the classic mount(2) only says
	// "invalid argument" (the reason goes to the kernel log).
	for _, d := range append(append([]string(nil), lowers...), upper, work) {
		if d == "" {
			continue
		}
		if fi, err := os.Stat(d); err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		} else if !fi.IsDir() {
			return fmt.Errorf("layer %s is not a directory", d)
		}
	}
	if hasLowerdirPlus(hook) {
		return mountNewAPI(target, lowers, upper, work, volatile, hook)
	}
	return mountClassic(target, lowers, upper, work, hook)
}

// Unmount unmounts the overlay at target.
func Unmount(target string, hook trace.Hook) error {
	hook.Call("", `umount2(%q, 0)`, target)
	err := unix.Unmount(target, 0)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("unmount %s: busy: a process has its working directory or an open file inside it (leave it and retry, or `umount -l %s`)", target, target)
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("unmount %s: not a mount point", target)
	}
	return fmt.Errorf("unmount %s: %w", target, err)
}

var (
	lowerdirPlusOnce sync.Once
	lowerdirPlus     bool
)

// HasLowerdirPlus reports whether this kernel has the new mount API with
// overlayfs's "lowerdir+" key (one layer per call, Linux 6.7+). It asks the
// kernel: open an overlay context and hand it one layer, without mounting.
func HasLowerdirPlus() bool { return hasLowerdirPlus(nil) }

// hasLowerdirPlus asks the kernel once per process, and tells hook the
// calls of the question when it asks.
func hasLowerdirPlus(hook trace.Hook) bool {
	if forceClassic {
		return false
	}
	lowerdirPlusOnce.Do(func() {
		hook.Call("does this kernel take lowerdir+? (asked once, without mounting)", `fsopen("overlay", FSOPEN_CLOEXEC)`)
		fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		// Before overlayfs moved to the new mount API (Linux 6.5), its
		// context is a "legacy" one that accepts ANY key and only fails at
		// create time. So a key that cannot exist must be refused too, or
		// the kernel is not really parsing keys and has no lowerdir+.
		hook.Call("", `fsconfig(fd, FSCONFIG_SET_STRING, "lowerdir+", "/")`)
		if unix.FsconfigSetString(fd, "lowerdir+", "/") != nil {
			return
		}
		hook.Call("a key no kernel has must be refused", `fsconfig(fd, FSCONFIG_SET_STRING, "x-workshop-no-such-option", "1")`)
		lowerdirPlus = unix.FsconfigSetString(fd, "x-workshop-no-such-option", "1") != nil
	})
	return lowerdirPlus
}

// mountNewAPI builds the overlay key by key in a filesystem context: no
// single option string, so no one-page limit, and no escaping of ':' or ','.
func mountNewAPI(target string, lowers []string, upper, work string, volatile bool, hook trace.Hook) error {
	hook.Call("a new overlay filesystem, configured one key at a time", `fsopen("overlay", FSOPEN_CLOEXEC)`)
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen(\"overlay\"): %w", err)
	}
	defer unix.Close(fsfd)
	// fsconfig's errors come with a message the kernel queues on the
	// context's file descriptor ("e overlayfs: ..."): it names the problem,
	// where errno alone only says EINVAL.
	fail := func(what string, err error) error {
		if msg := fsMessages(fsfd); msg != "" {
			return fmt.Errorf("%s: %s (%v)", what, msg, err)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	hook.Call("", `fsconfig(fd, FSCONFIG_SET_STRING, "source", "overlay")`)
	if err := unix.FsconfigSetString(fsfd, "source", "overlay"); err != nil {
		return fail("fsconfig source", err)
	}
	for i := len(lowers) - 1; i >= 0; i-- { // the kernel wants the top first
		hook.Call("", `fsconfig(fd, FSCONFIG_SET_STRING, "lowerdir+", %q)`, lowers[i])
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", lowers[i]); err != nil {
			return fail(fmt.Sprintf("lower layer %s", lowers[i]), err)
		}
	}
	if upper != "" {
		hook.Call("", `fsconfig(fd, FSCONFIG_SET_STRING, "upperdir", %q)`, upper)
		if err := unix.FsconfigSetString(fsfd, "upperdir", upper); err != nil {
			return fail("upper dir "+upper, err)
		}
		hook.Call("", `fsconfig(fd, FSCONFIG_SET_STRING, "workdir", %q)`, work)
		if err := unix.FsconfigSetString(fsfd, "workdir", work); err != nil {
			return fail("work dir "+work, err)
		}
		if InUserNamespace() {
			hook.Call("in a user namespace trusted.* xattrs are the host root's: overlayfs keeps its whiteout and opaque marks in user.overlay.* (Linux 5.11+)", `fsconfig(fd, FSCONFIG_SET_FLAG, "userxattr")`)
			if err := unix.FsconfigSetFlag(fsfd, "userxattr"); err != nil {
				return fail("userxattr", err)
			}
		}
		if volatile {
			// Refused before Linux 5.10: then mount without it.
			hook.Call("the read-write layer is thrown away (or committed) when the container ends: its unmount need not flush the disk", `fsconfig(fd, FSCONFIG_SET_FLAG, "volatile")`)
			_ = unix.FsconfigSetFlag(fsfd, "volatile")
		}
	}
	hook.Call("", `fsconfig(fd, FSCONFIG_CMD_CREATE)`)
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fail("create the overlay", err)
	}
	hook.Call("", `fsmount(fd, FSMOUNT_CLOEXEC, 0)`)
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fail("fsmount", err)
	}
	defer unix.Close(mfd)
	hook.Call("", `move_mount(mfd, "", AT_FDCWD, %q, MOVE_MOUNT_F_EMPTY_PATH)`, target)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount onto %s: %w", target, err)
	}
	return nil
}

// fsMessages drains the messages the kernel queued on a filesystem context.
func fsMessages(fd int) string {
	var msgs []string
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		m := strings.TrimSpace(string(buf[:n]))
		// Each message starts with its level: "e " error, "w " warning, "i " info.
		if len(m) > 2 && m[1] == ' ' {
			m = m[2:]
		}
		msgs = append(msgs, m)
	}
	return strings.Join(msgs, "; ")
}

// mountClassic mounts with mount(2), whose options travel as one string
// that the kernel copies into a single page (4096 bytes). With absolute paths
// a deep stack overflows that page near 147 layers, and the kernel then sees
// a truncated path and reports a misleading "No such file or directory".
//
// So when the absolute options do not fit, the layers get short names: a
// temporary directory of symbolic links 0, 1, 2 ... to them (Docker's
// overlay2 keeps such links in l/ for the same reason), and the mount is
// made from inside that directory with lowerdir=N:...:1:0 (about 4 bytes per
// layer). overlayfs resolves the links at mount time, so they can go
// right after. Relative paths are resolved against the calling thread's
// working directory, which a Go program's threads share: a fresh goroutine
// locks itself to its OS thread, gives that thread its own filesystem
// context with unshare(CLONE_FS), changes directory there and mounts, and
// never unlocks, so Go ends the thread with the goroutine and the rest of
// the program never sees the changed working directory.
func mountClassic(target string, lowers []string, upper, work string, hook trace.Hook) error {
	abs := func(p string) (string, error) {
		if p == "" {
			return "", nil
		}
		return filepath.Abs(p)
	}
	var err error
	if target, err = abs(target); err != nil {
		return err
	}
	all := make([]string, len(lowers))
	for i, l := range lowers {
		if all[i], err = abs(l); err != nil {
			return err
		}
	}
	if upper, err = abs(upper); err != nil {
		return err
	}
	if work, err = abs(work); err != nil {
		return err
	}
	page := unix.Getpagesize()
	if opts := classicOptions(all, upper, work); len(opts) < page && !strings.ContainsAny(strings.Join(all, ""), ",:\\") {
		hook.Call("this kernel has no lowerdir+ (Linux 6.7+): all the layers in one string of options, at most one page", `mount("overlay", %q, "overlay", 0, %q)`, target, opts)
		if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
			return fmt.Errorf("mount overlay on %s: %w (the kernel log says why: dmesg | tail)", target, err)
		}
		return nil
	}
	if strings.ContainsAny(upper+work, ",:\\") {
		return fmt.Errorf("the upper or work path holds ',', ':' or '\\', which mount(2)'s overlay options cannot carry: rename it")
	}
	links, err := os.MkdirTemp("", "overlay-lowers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(links)
	short := make([]string, len(all))
	for i, a := range all {
		short[i] = strconv.Itoa(i)
		if err := os.Symlink(a, filepath.Join(links, short[i])); err != nil {
			return err
		}
	}
	opts := classicOptions(short, upper, work)
	if len(opts) >= page {
		return fmt.Errorf("the overlay options are %d bytes even with short layer names, over the %d-byte page mount(2) accepts: shorten the upper and work paths, or use Linux 6.7+ (lowerdir+)", len(opts), page)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: this thread dies with the goroutine
		hook.Call("this thread alone will change directory", "unshare(CLONE_FS)")
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_FS): %w", err)
			return
		}
		hook.Call("too long with absolute paths: the layers are linked as 0, 1, 2 ... here (Docker's l/ trick)", "chdir(%q)", links)
		if err := unix.Chdir(links); err != nil {
			errc <- fmt.Errorf("chdir %s: %w", links, err)
			return
		}
		hook.Call("", `mount("overlay", %q, "overlay", 0, %q)`, target, opts)
		if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
			errc <- fmt.Errorf("mount overlay on %s (layers linked from %s): %w (the kernel log says why: dmesg | tail)", target, links, err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

// classicOptions builds mount(2)'s option string; lowerdir is top first.
func classicOptions(lowers []string, upper, work string) string {
	top := make([]string, len(lowers))
	for i, l := range lowers {
		top[len(lowers)-1-i] = l
	}
	o := "lowerdir=" + strings.Join(top, ":")
	if upper != "" {
		o += ",upperdir=" + upper + ",workdir=" + work
		if InUserNamespace() {
			o += ",userxattr" // see mountNewAPI
		}
	}
	return o
}

// InUserNamespace reports whether this process runs in a user namespace
// other than the host's (a rootless runtime's): there the kernel refuses
// trusted.* xattrs, where overlayfs keeps its marks by default, and an
// overlay whose upper layer cannot hold them fails to remove a directory of
// a lower layer (EIO; the kernel log says "try mounting with 'userxattr'").
// The initial namespace maps all IDs onto themselves: "0 0 4294967295".
func InUserNamespace() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	return err == nil && strings.Join(strings.Fields(string(b)), " ") != "0 0 4294967295"
}
