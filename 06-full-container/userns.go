package main

// The user namespace: root in the container is nobody on the host.
//
// Stage 04 showed a root process escaping a chroot: root inside was root
// outside. A user namespace maps the container's user IDs onto a range of
// the host's that belongs to nobody (by default container 0-65535 -> host
// 100000-165535): the container's root is uid 100000 to the host's kernel,
// and its capabilities hold only over what its user namespace owns.
//
// How this runtime does it, in the order of `run --userns`:
//
//  1. The root filesystem. The image's files belong to the host's root
//     (uid 0), which is unmapped inside: the container would see them
//     owned by nobody (65534) and could not change them. They must appear
//     owned by the container's root. Two ways: an idmapped mount of each
//     layer (mount_setattr with MOUNT_ATTR_IDMAP, Linux 5.12; overlayfs
//     takes idmapped layers since 5.19) shows uid 0 on disk as uid 100000,
//     without touching a file; where the kernel refuses, a copy of each
//     layer with every owner shifted by 100000, made once per mapping and
//     kept in the image store. The overlay is mounted by the runtime, as
//     the host's root, in a mount namespace of the cloning thread's own:
//     the container's first process is cloned from that thread, so its
//     mount namespace starts as a copy holding the overlay, and the host's
//     mount table never sees it.
//  2. The clone. CLONE_NEWUSER with the other CLONE_NEW* flags in one
//     clone(): the kernel makes the user namespace first and gives it the
//     others, so the container's root holds CAP_SYS_ADMIN over its own
//     mount, network, PID... namespaces, and over nothing of the host's.
//  3. The maps. The child cannot write its own uid_map with more than its
//     own ID: the runtime, outside, writes /proc/<pid>/uid_map and gid_map
//     (Go's os/exec does it between the clone and the child's exec). A
//     gid_map written by a process holding CAP_SETGID outside leaves
//     setgroups allowed, so the container's root can still drop its groups.
//  4. Inside, what needs the host's privileges is done another way: device
//     nodes cannot be made in a user namespace (mknod), so the host's are
//     bound; a fresh sysfs needs a network namespace of its own, else the
//     host's /sys is bound (as runc does); the runtime moves the first
//     process into its v1 cgroups from outside (their files are the host
//     root's).

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/03-cgroups-cpu/cgroup"
	"github.com/container-internals/workshop/05-overlay-layers/layers"
	"github.com/container-internals/workshop/internal/narrate"
	"github.com/container-internals/workshop/internal/stage"
)

// IDMap is one line of /proc/<pid>/uid_map or gid_map: Size IDs from
// ContainerID inside are HostID on outside.
type IDMap struct {
	ContainerID uint32 `json:"containerID"`
	HostID      uint32 `json:"hostID"`
	Size        uint32 `json:"size"`
}

func (m IDMap) String() string { return fmt.Sprintf("%d %d %d", m.ContainerID, m.HostID, m.Size) }

// defaultUserns is `run --userns`: the container's 0-65535 on the host's
// 100000-165535, the range useradd gives the first user in /etc/subuid.
var defaultUserns = IDMap{ContainerID: 0, HostID: 100000, Size: 65536}

// usernsArg marks a re-executed copy of this program that only holds a
// user namespace (with the container's mapping) for the idmapped mounts.
const usernsArg = "__userns__"

// run's options for a user namespace.
var (
	usernsFlag      = &cli.BoolFlag{Name: "userns", Usage: "a user namespace: the container's uid/gid 0-65535 are the host's 100000-165535"}
	usernsRemapFlag = &cli.StringFlag{Name: "userns-remap", Usage: "a user namespace on `USER`'s range in /etc/subuid and /etc/subgid (as dockerd's userns-remap)"}
)

// parseUserns reads --userns and --userns-remap into the maps.
func parseUserns(c *cli.Context, o *runOptions) error {
	if u := c.String("userns-remap"); u != "" {
		uid, err := subIDRange("/etc/subuid", u)
		if err != nil {
			return err
		}
		gid, err := subIDRange("/etc/subgid", u)
		if err != nil {
			return err
		}
		o.uidMap, o.gidMap = []IDMap{uid}, []IDMap{gid}
		return nil
	}
	if c.Bool("userns") {
		o.uidMap, o.gidMap = []IDMap{defaultUserns}, []IDMap{defaultUserns}
	}
	return nil
}

// subIDRange reads user's first range in /etc/subuid or /etc/subgid
// ("name:start:count"), up to 65536 IDs.
func subIDRange(file, user string) (IDMap, error) {
	m, err := lookupSubIDs(file, []string{user})
	switch {
	case errors.Is(err, os.ErrNotExist):
		return IDMap{}, stage.Fail("--userns-remap %s: no range for %s in %s: add one with `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s`", user, user, file, user)
	case err != nil:
		return IDMap{}, stage.Fail("--userns-remap %s: %v: add a range with `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s`", user, err, user)
	}
	return m, nil
}

// lookupSubIDs finds the first line of file whose name is one of keys (a
// user's name or number, as newuidmap accepts both), up to 65536 IDs;
// os.ErrNotExist when there is none.
func lookupSubIDs(file string, keys []string) (IDMap, error) {
	f, err := os.Open(file)
	if err != nil {
		return IDMap{}, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.Split(strings.TrimSpace(s.Text()), ":")
		if len(parts) != 3 || !slices.Contains(keys, parts[0]) {
			continue
		}
		start, err1 := strconv.ParseUint(parts[1], 10, 32)
		count, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 || start == 0 || start+count > 1<<32-1 {
			return IDMap{}, fmt.Errorf("%s has an unusable line %q: give name:start:count, start above 0", file, s.Text())
		}
		return IDMap{ContainerID: 0, HostID: uint32(start), Size: uint32(min(count, 65536))}, nil
	}
	return IDMap{}, os.ErrNotExist
}

// hasUserns: the spec asks for a new user namespace.
func (s *Spec) hasUserns() bool { return s.newUserns() || s.JoinNamespaces["user"] != "" }

// newUserns: a user namespace of the container's own (a joined one has
// its maps already: joinuserns.go).
func (s *Spec) newUserns() bool { return slices.Contains(s.Namespaces, "user") }

// hostRoot is the host's uid and gid of the container's root.
func (s *Spec) hostRoot() (int, int) {
	return hostID(s.UIDMappings, 0), hostID(s.GIDMappings, 0)
}

// hostID maps a container ID to the host's (-1: unmapped).
func hostID(maps []IDMap, id uint32) int {
	for _, m := range maps {
		if id >= m.ContainerID && id-m.ContainerID < m.Size {
			return int(m.HostID + id - m.ContainerID)
		}
	}
	return -1
}

// setIDMaps asks os/exec to write the child's maps from outside, between
// its clone and its exec, and to leave setgroups allowed.
func setIDMaps(n *narrate.Narrator, cmd *exec.Cmd, s *Spec) {
	if !s.newUserns() {
		return
	}
	for _, m := range s.UIDMappings {
		cmd.SysProcAttr.UidMappings = append(cmd.SysProcAttr.UidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	for _, m := range s.GIDMappings {
		cmd.SysProcAttr.GidMappings = append(cmd.SysProcAttr.GidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	cmd.SysProcAttr.GidMappingsEnableSetgroups = true
	// A new user namespace changes no one's IDs: the child is still the
	// host's root (unmapped inside) until it takes uid 0 of its namespace,
	// which the map makes uid 100000 to the host's kernel.
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	n.Call("echo '%s' > /proc/<child>/uid_map   # from outside, while the child waits: the container's root is uid %d on the host", joinMaps(s.UIDMappings), hostID(s.UIDMappings, 0))
	n.Call("echo '%s' > /proc/<child>/gid_map   # setgroups stays \"allow\": the writer holds CAP_SETGID outside", joinMaps(s.GIDMappings))
	n.Call("setgroups(0, []), setresgid(0, 0, 0), setresuid(0, 0, 0)   # in the child, after the maps: root of its namespace, uid %d on the host", hostID(s.UIDMappings, 0))
}

func joinMaps(maps []IDMap) string {
	var out []string
	for _, m := range maps {
		out = append(out, m.String())
	}
	return strings.Join(out, `\n`)
}

// checkUsernsMaps checks an OCI config's mappings: a user namespace needs
// both, and mappings need a user namespace.
func checkUsernsMaps(s *Spec) error {
	switch {
	case s.hasUserns() && (len(s.UIDMappings) == 0 || len(s.GIDMappings) == 0):
		return errors.New("a user namespace needs linux.uidMappings and linux.gidMappings")
	case !s.hasUserns() && (len(s.UIDMappings) > 0 || len(s.GIDMappings) > 0):
		return errors.New("linux.uidMappings/gidMappings need a new user namespace in linux.namespaces")
	case len(s.UIDMappings) > 340 || len(s.GIDMappings) > 340:
		return errors.New("linux.uidMappings/gidMappings: the kernel takes at most 340 lines")
	}
	return nil
}

// buildRootForUserns mounts the container's overlay for a user namespace,
// on the calling thread, in a mount namespace of that thread's own (see
// the top of this file). The caller clones the container's first process
// from this thread, then calls restore (once or more: it acts once), which
// puts the thread back in the host's mount namespace.
func (rt *Runtime) buildRootForUserns(ctr *Container) (restore func() error, err error) {
	spec, n := ctr.Spec, rt.n
	if !spec.hasUserns() || spec.Upper == "" {
		return func() error { return nil }, nil // an OCI bundle's root is the caller's
	}
	uid, gid := spec.hostRoot()
	n.Step("The root for a user namespace: the image's files must belong to the container's root, uid %d on the host", uid)
	n.Call("chown -R %d:%d %s %s   # the container's own layers: its read-write layer, its init layer", uid, gid, spec.Upper, spec.initLayer())
	for _, d := range []string{spec.Upper, spec.initLayer()} {
		if err := shiftOwners(d, spec.UIDMappings, spec.GIDMappings); err != nil {
			return nil, stage.Fail("giving the container's own layers to its root: %v", err)
		}
	}
	runtime.LockOSThread()
	undo, err := ownMountNamespace(n)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, stage.Fail("%v", err)
	}
	fail := func(e error) (func() error, error) {
		if err := undo(); err == nil {
			runtime.UnlockOSThread()
		}
		return nil, e
	}
	lowers, err := rt.usernsLowers(ctr)
	if err != nil {
		return fail(err)
	}
	if err := layers.MountVolatile(spec.Rootfs, lowers, spec.Upper, spec.Work, n.Trace()); err != nil {
		return fail(stage.Fail("mounting the container's root: %v", err))
	}
	var once sync.Once
	return func() (err error) {
		once.Do(func() {
			if err = undo(); err == nil {
				runtime.UnlockOSThread()
			} // else the thread stays locked to this goroutine, which fails the command
		})
		return err
	}, nil
}

// initLayer is the init layer of a spec's lowers (the top one), "" for none.
func (s *Spec) initLayer() string {
	if len(s.Lowers) == 0 || s.Upper == "" {
		return ""
	}
	return s.Lowers[len(s.Lowers)-1]
}

// ownMountNamespace moves the calling (locked) thread into a mount
// namespace of its own, a copy of the host's in which nothing propagates
// back, and returns what brings it home.
func ownMountNamespace(n *narrate.Narrator) (func() error, error) {
	host, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	cwd, err := unix.Open(".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(host)
		return nil, err
	}
	home := func() error {
		defer unix.Close(host)
		defer unix.Close(cwd)
		n.Call("setns(open(\"/proc/thread-self/ns/mnt\" as it was), CLONE_NEWNS)   # the thread goes home; its namespace goes with its last user")
		if err := unix.Setns(host, unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("returning to the host's mount namespace: %v", err)
		}
		return unix.Fchdir(cwd)
	}
	n.Call("unshare(CLONE_FS | CLONE_NEWNS)   # this thread's own mount namespace: the root is built there, never in the host's")
	if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
		unix.Close(host)
		unix.Close(cwd)
		return nil, fmt.Errorf("unshare(CLONE_FS | CLONE_NEWNS): %v", err)
	}
	n.Call(`mount("", "/", "", MS_REC | MS_SLAVE, "")   # nothing mounted here reaches the host`)
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		_ = home()
		return nil, fmt.Errorf("making / a slave: %v", err)
	}
	return home, nil
}

// usernsLowers are the image's layers as the container's root must see
// them: idmapped where the kernel can, else chowned copies. The container's
// init layer was chowned in place already: it is its own.
func (rt *Runtime) usernsLowers(ctr *Container) ([]string, error) {
	spec, n := ctr.Spec, rt.n
	image := spec.Lowers[:len(spec.Lowers)-1]
	if os.Getenv("WORKSHOP_USERNS_COPY") == "1" {
		n.Note("WORKSHOP_USERNS_COPY=1: chowned copies of the layers, not idmapped mounts")
	} else {
		idmapped, err := rt.idmapLayers(ctr, image)
		if err == nil {
			n.Note("idmapped mounts: uid 0 on disk is uid %d to this overlay; not a file was changed", hostID(spec.UIDMappings, 0))
			return append(idmapped, spec.initLayer()), nil
		}
		n.Note("idmapped mounts are not usable here (%v): chowned copies of the layers instead", err)
	}
	var out []string
	for _, l := range image {
		c, err := rt.shiftedCopy(l, spec.UIDMappings, spec.GIDMappings)
		if err != nil {
			return nil, stage.Fail("a chowned copy of layer %s: %v", l, err)
		}
		out = append(out, c)
	}
	return append(out, spec.initLayer()), nil
}

// idmapLayers makes an idmapped mount of each layer, attached under the
// container's state directory in the thread's own mount namespace.
func (rt *Runtime) idmapLayers(ctr *Container, image []string) ([]string, error) {
	n := rt.n
	userns, err := rt.holdUserns(ctr.Spec)
	if err != nil {
		return nil, err
	}
	defer unix.Close(userns)
	var out []string
	for i, l := range image {
		target := filepath.Join(rt.dirs.containerDir(ctr.State.ID), "idmapped", strconv.Itoa(i))
		if err := os.MkdirAll(target, 0o700); err != nil {
			return nil, err
		}
		n.Call(`open_tree(AT_FDCWD, %q, OPEN_TREE_CLONE)   # a private copy of the layer's mount`, l)
		fd, err := unix.OpenTree(unix.AT_FDCWD, l, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("open_tree: %v", err)
		}
		n.Call(`mount_setattr(<tree>, "", AT_EMPTY_PATH, {MOUNT_ATTR_IDMAP, userns})   # owners seen through the user namespace's map`)
		err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns)})
		if err == nil {
			n.Call(`move_mount(<tree>, "", AT_FDCWD, %q, MOVE_MOUNT_F_EMPTY_PATH)`, target)
			err = unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH)
		}
		unix.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("mount_setattr(MOUNT_ATTR_IDMAP): %v", err)
		}
		out = append(out, target)
	}
	return out, nil
}

// holdUserns returns a handle on a user namespace with the container's
// mapping, for mount_setattr: a copy of this program cloned into a new one
// (its maps written from outside), held open, then let go.
func (rt *Runtime) holdUserns(spec *Spec) (int, error) {
	self, _, err := sealedExe(rt.n.Trace())
	if err != nil {
		return -1, err
	}
	cmd := exec.Command(self, usernsArg, "hold")
	cmd.SysProcAttr = &unix.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER}
	rt.n.Call("clone(CLONE_NEWUSER)   # a user namespace with the container's map, for the idmapped mounts")
	setIDMaps(rt.n, cmd, spec)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return -1, err
	}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("a user namespace for the idmapped mounts: %v", err)
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	stdin.Close() // it exits; the namespace lives on while fd is open
	_ = cmd.Wait()
	return fd, err
}

// holdUsernsMain is the holder's whole life: wait for the runtime to let go.
func holdUsernsMain() {
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// shiftedCopy is a copy of layer whose every owner is mapped to the
// host's IDs of the container's (uid 0 -> the host's uid of the
// container's root), made once per mapping and kept in the image store.
func (rt *Runtime) shiftedCopy(layer string, uids, gids []IDMap) (string, error) {
	dir := filepath.Join(rt.shiftedCopies(), fmt.Sprintf("%s-%s", joinMapsKey(uids), joinMapsKey(gids)), copyName(layer))
	if _, err := os.Stat(dir); err == nil {
		rt.n.Say("a chowned copy made earlier for this mapping: %s", dir)
		return dir, nil
	}
	rt.n.Call("cp -a %s %s; chown -R (each owner mapped)   # once per layer and mapping", layer, dir)
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return "", err
	}
	// Made aside and renamed into place: a run that starts meanwhile
	// never sees half a copy, and of two made at once one is kept.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".copy-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	to := filepath.Join(tmp, "layer")
	if err := copyTree(layer, to); err != nil {
		return "", err
	}
	if err := shiftOwners(to, uids, gids); err != nil {
		return "", err
	}
	if err := os.Rename(to, dir); err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			return dir, nil // another run made it first
		}
		return "", err
	}
	return dir, nil
}

// shiftedCopies is where the chowned copies are kept, in the image store:
// userns/<mapping>/<copyName(layer)>.
func (rt *Runtime) shiftedCopies() string { return filepath.Join(rt.dirs.Images, "userns") }

// copyName names a layer's copies after its directory.
func copyName(layer string) string {
	sum := sha256.Sum256([]byte(layer))
	return fmt.Sprintf("%x", sum[:8])
}

// removeShiftedCopies removes a layer's chowned copies, for every mapping
// (`rmi` calls it for each layer it removes), and the mappings' directories
// left empty.
func (rt *Runtime) removeShiftedCopies(layer string) error {
	mappings, err := os.ReadDir(rt.shiftedCopies())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, m := range mappings {
		dir := filepath.Join(rt.shiftedCopies(), m.Name())
		if err := os.RemoveAll(filepath.Join(dir, copyName(layer))); err != nil {
			return err
		}
		_ = os.Remove(dir) // only if empty
	}
	_ = os.Remove(rt.shiftedCopies())
	return nil
}

// refuseCommitOfUserns: a user namespace's read-write layer holds files
// owned by the host's IDs of the container (100000...); committed as they
// are, they would be owned by uid 100000 in every container of the image.
func refuseCommitOfUserns(specPath string) error {
	if spec, err := readSpec(specPath); err == nil && spec.hasUserns() {
		uid, _ := spec.hostRoot()
		return stage.Fail("commit of a container with a user namespace is not supported: its files belong to host uid %d, and the image would keep that owner; run it without --userns to commit", uid)
	}
	return nil
}

func joinMapsKey(maps []IDMap) string {
	var out []string
	for _, m := range maps {
		out = append(out, fmt.Sprintf("%d_%d_%d", m.ContainerID, m.HostID, m.Size))
	}
	return strings.Join(out, ".")
}

// copyTree copies a layer: files, directories, links, device nodes (an
// overlay whiteout is a 0/0 character device), owners, modes and extended
// attributes (overlay's opaque directories are one). Hard links stay
// links.
func copyTree(src, dst string) error {
	links := map[uint64]string{}
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		st := fi.Sys().(*syscall.Stat_t)
		switch {
		case fi.IsDir():
			if err := os.Mkdir(to, 0o700); err != nil {
				return err
			}
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, to); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if first, ok := links[st.Ino]; ok && st.Nlink > 1 {
				return os.Link(first, to)
			}
			links[st.Ino] = to
			if err := copyFile(p, to); err != nil {
				return err
			}
		default:
			if err := unix.Mknod(to, st.Mode, int(st.Rdev)); err != nil {
				return err
			}
		}
		if err := unix.Lchown(to, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			if err := unix.Chmod(to, st.Mode&0o7777); err != nil {
				return err
			}
		}
		return copyXattrs(p, to)
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func copyXattrs(from, to string) error {
	size, err := unix.Llistxattr(from, nil)
	if err != nil || size == 0 {
		return nil // none, or a filesystem without them
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(from, buf)
	if err != nil {
		return nil
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		vsize, err := unix.Lgetxattr(from, name, nil)
		if err != nil {
			continue
		}
		val := make([]byte, vsize)
		if vsize, err = unix.Lgetxattr(from, name, val); err != nil {
			continue
		}
		if err := unix.Lsetxattr(to, name, val[:vsize], 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("%s: xattr %s: %v", to, name, err)
		}
	}
	return nil
}

// shiftOwners maps every owner under dir through the maps (an owner
// outside them becomes the overflow ID, 65534, as the kernel shows it).
// chown clears setuid and setgid bits: they are put back.
func shiftOwners(dir string, uids, gids []IDMap) error {
	if dir == "" {
		return nil
	}
	return filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		uid, gid := hostID(uids, st.Uid), hostID(gids, st.Gid)
		if uid < 0 {
			uid = hostID(uids, 65534)
		}
		if gid < 0 {
			gid = hostID(gids, 65534)
		}
		if err := unix.Lchown(p, uid, gid); err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink == 0 && st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
			return unix.Chmod(p, st.Mode&0o7777)
		}
		return nil
	})
}

// bindDevice: in a user namespace mknod is refused, so the host's node is
// bound onto an empty file instead (as runc does).
func bindDevice(n *narrate.Narrator, d Device, target string) error {
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	f.Close()
	n.Call(`mount("%s", "%s", "", MS_BIND, "")   # no mknod in a user namespace: the host's node, bound`, d.Path, d.Path)
	return unix.Mount(d.Path, target, "", unix.MS_BIND, "")
}

// prepareUserns (run --userns): the spec gets its user namespace and
// maps, and the root a mount point the container's root can reach: in the
// container's state directory (whose parents are o+x), not in the image
// store (0700).
func (c *creation) prepareUserns() error {
	if len(c.o.uidMap) == 0 {
		return nil
	}
	s := c.ctr.Spec
	s.Namespaces = append(s.Namespaces, "user")
	s.UIDMappings, s.GIDMappings = c.o.uidMap, c.o.gidMap
	dir := c.rt.dirs.containerDir(c.st.ID)
	s.Rootfs, s.BindRoot = filepath.Join(dir, "rootfs"), true
	if err := os.Mkdir(s.Rootfs, 0o755); err != nil {
		return stage.Fail("%v", err)
	}
	return reachableBy(dir, hostID(s.UIDMappings, 0))
}

// reachableBy checks that uid can pass through every directory up to
// dir (the container's root reads its spec there), and opens dir itself
// to passing through.
func reachableBy(dir string, uid int) error {
	if err := os.Chmod(dir, 0o711); err != nil {
		return stage.Fail("%v", err)
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			return stage.Fail("%v", err)
		}
		if st.Mode&0o001 == 0 && int(st.Uid) != uid {
			return stage.Fail("a user namespace: the container's root, uid %d on the host, cannot pass through %s to read its spec: `chmod o+x %s`, or choose a --root it can reach", uid, d, d)
		}
		if d == "/" {
			return nil
		}
	}
}

// giveToContainerRoot makes a file of the container's state (its spec,
// the start FIFO) the container's root's, so that its first process, uid
// 100000 on the host, may open it.
func (s *Spec) giveToContainerRoot(path string) error {
	if !s.hasUserns() {
		return nil
	}
	uid, gid := s.hostRoot()
	return os.Lchown(path, uid, gid)
}

// addToCgroup moves a process into the group from outside (stage 03's
// echo PID > cgroup.procs).
func (rt *Runtime) addToCgroup(g *cgroup.Group, pid int) error {
	if rt.n != nil && !rt.n.Quiet() {
		rt.cg.Trace = rt.n.Trace()
		defer func() { rt.cg.Trace = nil }()
	}
	return g.Add(pid)
}

// usernsHint explains a permission error in a user namespace: the setup
// runs as the container's root, an ordinary uid to the host's files.
func usernsHint(spec *Spec, err error) string {
	if !spec.hasUserns() || !errors.Is(err, unix.EACCES) {
		return ""
	}
	uid, _ := spec.hostRoot()
	return fmt.Sprintf(" (the container's root is uid %d on the host: every directory above it needs o+x)", uid)
}
