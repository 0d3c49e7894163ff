// Stage 05: union mounts and image layers.
// Chapter: docs/05-overlay-layers.md (the idea, real output, the calls, exercises).
//
// The article merges two directories, A/{a,x} and B/{b,x}, with aufs into
// C: C shows a, b and one x, the upper branch's. Then it explains how Docker
// builds a container's root from the same idea: read-only image layers, an
// init layer for /etc/hosts, /etc/hostname and /etc/resolv.conf, and a
// read-write layer on top that `docker commit` turns into a new layer,
// named by digests (diffID, chain ID) in /var/lib/docker.
//
// Modern kernels have no aufs, so we do it all with overlayfs and show the
// aufs spelling beside it. The reusable code is in ./layers (stage 06's
// image store and container roots are made of it).
package main

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/05-overlay-layers/layers"
	"github.com/container-internals/workshop/internal/narrate"
	"github.com/container-internals/workshop/internal/preflight"
	"github.com/container-internals/workshop/internal/stage"
	"github.com/container-internals/workshop/internal/trace"

	"github.com/container-internals/workshop/internal/mountinfo"
)

const name = "05-overlay-layers"

func main() {
	app := stage.App(name,
		"union mounts: A+B→C, copy-on-write, whiteouts, and a container's layered root",
		"Merges A/{a,x} and B/{b,x} into C with overlayfs (the article used aufs), changes and\n"+
			"deletes files through C, then builds a container root the Docker way (image layers +\n"+
			"init layer + rw layer), commits it to a layer tar and names the layers by diffID and chain ID.",
		[]cli.Flag{
			&cli.IntFlag{Name: "layers", Usage: "instead: stack `N` layers that each hold a version of one file (up to 500)"},
			&cli.StringFlag{Name: "workdir", Usage: "work in `DIR` (empty or new; on the machine's own disk) instead of a temp dir"},
			&cli.BoolFlag{Name: "keep", Usage: "leave everything mounted in the workdir to explore; prints how to clean up"},
		},
		run)
	app.UsageText = "sudo go run ./" + name + " [--layers N] [--workdir DIR [--keep]]\n" +
		"go run ./" + name + " chainid DIFFID...   (no root needed)"
	app.Commands = []*cli.Command{{
		Name:      "chainid",
		Usage:     "print the chain ID of each prefix of a list of diffIDs (bottom layer first)",
		ArgsUsage: "DIFFID...",
		Description: "Give the RootFS.Layers of `docker image inspect IMAGE`, in order: each line is the\n" +
			"chain ID Docker keys that layer by in /var/lib/docker/image/overlay2/layerdb/sha256/.",
		Action: chainIDCommand,
	}}
	stage.Main(app)
}

// chainIDCommand computes what the article does by hand with sha256sum.
func chainIDCommand(c *cli.Context) error {
	if c.NArg() == 0 {
		return stage.Fail("usage: %s chainid DIFFID... (the sha256: digests of `docker image inspect`'s RootFS.Layers, bottom first)", name)
	}
	ids, err := layers.ChainIDs(c.Args().Slice())
	if err != nil {
		return stage.Fail("%v", err)
	}
	for _, id := range ids {
		fmt.Println(id)
	}
	return nil
}

func run(c *cli.Context) error {
	if c.NArg() > 0 {
		return stage.Fail("unexpected argument %q: see `%s --help`", c.Args().First(), name)
	}
	n := &checkedNarrator{Narrator: stage.Narrator(c)}
	if err := preflight.RequireRoot(name); err != nil {
		return err
	}
	if err := preflight.RequireFilesystem("overlay"); err != nil {
		return err
	}
	depth := c.Int("layers")
	if c.IsSet("layers") {
		// Refuse a depth the kernel cannot mount before creating anything.
		if depth < 1 {
			return stage.Fail("--layers %d: give a number of layers from 1 to %d", depth, layers.MaxLowerLayers)
		}
		if depth > layers.MaxLowerLayers {
			return stage.Fail("overlayfs stacks at most %d lower layers; got %d: give --layers %d or fewer", layers.MaxLowerLayers, depth, layers.MaxLowerLayers)
		}
	}
	// Ctrl-C at any moment, from here on: stop, unmount and remove what
	// exists so far. (Listening before the workdir exists leaves no moment
	// where a Ctrl-C could leave it behind.)
	var (
		wmu sync.Mutex
		w   *workdir
	)
	stopSignals := cleanupOnSignal(n, func() *workdir { wmu.Lock(); defer wmu.Unlock(); return w })
	defer stopSignals()
	nw, err := newWorkdir(c.String("workdir"))
	if err != nil {
		return err
	}
	wmu.Lock()
	w = nw
	wmu.Unlock()
	keep := c.Bool("keep")
	if err := layers.CheckUpperFS(w.dir); err != nil {
		_ = w.remove()
		return stage.Fail("%v", err)
	}
	if c.IsSet("layers") {
		err = deepStack(n, w, depth)
	} else {
		err = tour(n, w, keep)
	}
	if err != nil || interrupted.Load() {
		w.cleanup(n, false)
		if errors.Is(err, errInterrupted) || interrupted.Load() {
			return stage.ExitStatus(130)
		}
		return err
	}
	w.cleanup(n, keep)
	if interrupted.Load() { // Ctrl-C during the final clean-up: still a Ctrl-C
		return stage.ExitStatus(130)
	}
	if n.Failed() {
		return stage.ExitStatus(1)
	}
	return nil
}

// storageDriver shows the line of `docker info` the articles point to,
// Storage Driver: overlay2, with the two facts Docker checks before it
// picks overlay2 for a directory. With a running Docker it is Docker's own
// answer (for /var/lib/docker); without one, the same facts read from the
// kernel for dir, and labelled as such.
func storageDriver(n *checkedNarrator, dir string) {
	if _, err := exec.LookPath("docker"); err == nil {
		if out, err := exec.Command("docker", "info").Output(); err == nil {
			n.Call("docker info | grep -A2 'Storage Driver'   # Docker's own answer, for its /var/lib/docker")
			lines := strings.Split(string(out), "\n")
			for i, l := range lines {
				if strings.Contains(l, "Storage Driver:") {
					n.Output(strings.Join(lines[i:min(i+3, len(lines))], "\n"))
					return
				}
			}
			n.Output("")
			return
		}
	}
	n.Call("docker info | grep -A2 'Storage Driver'   # no Docker running here: the same facts, read from the kernel for %s", dir)
	driver, why := "(none)", "this kernel has no overlay in /proc/filesystems"
	if b, err := os.ReadFile("/proc/filesystems"); err == nil && strings.Contains(string(b), "\toverlay\n") {
		driver, why = "overlay2", "/proc/filesystems lists overlay"
	}
	backing, magic := "unknown", "statfs(2) failed"
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) == nil {
		backing, magic = dockerFSName(int64(st.Type)), fmt.Sprintf("statfs(2): f_type 0x%x", st.Type)
	}
	row := func(s, why string) string { return fmt.Sprintf("%-30s # %s", s, why) }
	n.Output(strings.Join([]string{
		row(" Storage Driver: "+driver, why),
		row("  Backing Filesystem: "+backing, magic),
		row(fmt.Sprintf("  Supports d_type: %v", supportsDType(dir)), "getdents(2) gives each entry's file type"),
	}, "\n"))
}

// dockerFSName names a filesystem magic number as `docker info` does.
func dockerFSName(magic int64) string {
	switch magic {
	case 0xef53:
		return "extfs"
	case 0x58465342:
		return "xfs"
	case 0x9123683e:
		return "btrfs"
	case 0x01021994:
		return "tmpfs"
	case 0x794c7630:
		return "overlayfs"
	}
	return "unknown"
}

// supportsDType makes a file in dir and reads the directory with
// getdents64: overlayfs needs the type in each entry (d_type), where a
// filesystem without it says DT_UNKNOWN.
func supportsDType(dir string) bool {
	f, err := os.CreateTemp(dir, ".dtype-probe-")
	if err != nil {
		return false
	}
	name := filepath.Base(f.Name())
	f.Close()
	defer os.Remove(f.Name())
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	buf := make([]byte, 64<<10)
	for {
		nb, err := unix.Getdents(fd, buf)
		if err != nil || nb <= 0 {
			return false
		}
		// struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name.
		for off := 0; off+19 < nb; {
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			typ := buf[off+18]
			ent := string(bytes.TrimRight(buf[off+19:off+reclen], "\x00"))
			if ent == name {
				return typ == unix.DT_REG
			}
			off += reclen
		}
	}
}

// tour is the default run: the article's steps, one method each.
func tour(n *checkedNarrator, w *workdir, keep bool) error {
	t := &tourRun{n: n, w: w, keep: keep}
	for _, step := range []func() error{t.mergeAB, t.copyOnWrite, t.whiteouts, t.containerRoot, t.commit} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// tourRun is what the tour's steps share: the article's directories, and
// the layer store of steps 4 and 5.
type tourRun struct {
	n                    *checkedNarrator
	w                    *workdir
	keep                 bool
	A, B, C, upper, work string
	store                *layers.Store
	img                  layers.Image
	root                 layers.ContainerRoot
}

// mergeAB is step 1: A + B -> C.
func (t *tourRun) mergeAB() error {
	n, w := t.n, t.w
	n.Step("Merge A and B into C: the article's union mount")
	n.Say("working in %s", w.dir)
	t.A, t.B, t.C = w.path("A"), w.path("B"), w.path("C")
	t.upper, t.work = w.path("upper"), w.path("work")
	A, B, C, upper, work := t.A, t.B, t.C, t.upper, t.work
	if err := writeFiles(map[string]string{
		"A/a": "a: in A\n", "A/x": "x: in A\n",
		"B/b": "b: in B\n", "B/x": "x: in B\n",
		"B/dir/old1": "old1: in B\n", "B/dir/old2": "old2: in B\n", // for step 3
	}, w.dir); err != nil {
		return err
	}
	if err := mkdirs(C, upper, work); err != nil {
		return err
	}
	n.Call("find A B -type f")
	n.Output(listTree(w.dir, "A", "B"))
	aufs, _ := preflight.HasFilesystem("aufs")
	n.Say("the article:  mount -t aufs -o dirs=./A:./B none ./C")
	if !aufs {
		n.Note("this kernel has no aufs (it is not in /proc/filesystems): it never entered mainline Linux")
	}
	n.Say("overlayfs:    mount -t overlay overlay -o lowerdir=./A:./B,upperdir=./upper,workdir=./work ./C")
	n.Note("lowerdir lists read-only layers top first (A over B); changes go to upperdir; workdir is overlayfs's scratch space")
	if err := mountNarrated(n, w, C, []string{B, A}, nil, upper, work); err != nil {
		return err
	}
	n.Call("grep ' C ' /proc/self/mountinfo   # (the filesystem and its options, paths relative to the workdir)")
	n.Output(mountLine(w, C))
	n.Call("ls C")
	names := ls(C)
	n.Output(strings.Join(names, "  "))
	x, _ := os.ReadFile(filepath.Join(C, "x"))
	n.Call("cat C/x")
	n.Output(string(x))
	n.Check(strings.Join(names, " ") == "a b dir x", "C holds a, b and x only once (plus B's dir, for step 3)")
	n.Check(string(x) == "x: in A\n", "C/x is A's: the upper layer wins")
	return nil
}

// copyOnWrite is step 2: copy-on-write.
func (t *tourRun) copyOnWrite() error {
	n := t.n
	B, C, upper := t.B, t.C, t.upper
	n.Step("Copy-on-write: change b through C")
	n.Call(`echo "b: changed through C" >> C/b`)
	if err := appendFile(filepath.Join(C, "b"), "b: changed through C\n"); err != nil {
		return err
	}
	n.Call("ls upper; cat upper/b")
	n.Output(strings.Join(ls(upper), "  "))
	ub, _ := os.ReadFile(filepath.Join(upper, "b"))
	n.Output(string(ub))
	bb, _ := os.ReadFile(filepath.Join(B, "b"))
	n.Call("cat B/b")
	n.Output(string(bb))
	n.Note("overlayfs copied the WHOLE file b up into upper, then changed the copy; B/b is untouched")
	n.Note("with the article's aufs mount the first branch, A, was the writable one: b would have been copied up into A")
	n.Check(string(ub) == "b: in B\nb: changed through C\n", "upper/b holds a full copy of b plus the change")
	n.Check(string(bb) == "b: in B\n", "B/b is unchanged: lower layers are never written")
	return nil
}

// whiteouts is step 3: whiteouts and an opaque directory.
func (t *tourRun) whiteouts() error {
	n, w, keep := t.n, t.w, t.keep
	A, C, upper := t.A, t.C, t.upper
	n.Step("Delete a through C: a whiteout")
	n.Call("rm C/a")
	if err := os.Remove(filepath.Join(C, "a")); err != nil {
		return err
	}
	n.Call("ls -l upper/a   # (without the date)")
	n.Output(lsl(filepath.Join(upper, "a")))
	_, aErr := os.Lstat(filepath.Join(C, "a"))
	n.Note("overlayfs marks the deletion with a character device numbered 0/0 named a; aufs would have written an empty file .wh.a in its writable branch")
	n.Check(layers.IsWhiteout(filepath.Join(upper, "a")), "upper/a is a 0/0 character device: overlayfs's whiteout")
	n.Check(os.IsNotExist(aErr) && fileIs(filepath.Join(A, "a"), "a: in A\n"), "a is gone from C but still in A")
	n.Say("now remove a whole directory and make a new one of the same name:")
	n.Call("rm -r C/dir; mkdir C/dir; echo new > C/dir/new")
	if err := os.RemoveAll(filepath.Join(C, "dir")); err != nil {
		return err
	}
	if err := writeFiles(map[string]string{"dir/new": "new\n"}, C); err != nil {
		return err
	}
	n.Call("ls C/dir; getfattr -n %s upper/dir", layers.OpaqueXattr)
	n.Output(strings.Join(ls(filepath.Join(C, "dir")), "  "))
	opaque := layers.IsOpaque(filepath.Join(upper, "dir"))
	if opaque {
		n.Output(layers.OpaqueXattr + `="y"`)
	}
	n.Note("an opaque directory hides everything below it in lower layers (old1, old2); aufs would have written dir/.wh..wh..opq")
	n.Check(opaque && strings.Join(ls(filepath.Join(C, "dir")), " ") == "new", "upper/dir is opaque: C/dir shows only new, not B's old1 and old2")
	if !keep {
		if err := w.unmount(C, n.Trace()); err != nil {
			return err
		}
	}
	return nil
}

// containerRoot is step 4: a container's root, Docker's way.
func (t *tourRun) containerRoot() error {
	n, w, keep := t.n, t.w, t.keep
	n.Step("A container's root: 3 image layers + the init layer + the read-write layer")
	store, img, err := t.buildImage()
	if err != nil {
		return err
	}
	root, err := store.CreateRoot("ctr1", img, "ctr1", nil)
	if err != nil {
		return err
	}
	n.Say("init layer: %s/diff  (etc/hostname etc/hosts etc/resolv.conf, and mount points)", short(root.MountID)+"-init")
	n.Say("rw layer:   %s/diff  (empty)", short(root.MountID))
	n.Note("the article's aufs mounted image layers as ro+wh (read-only, may hold whiteouts) and the container layer rw; overlayfs: lowerdir and upperdir")
	labels := []string{"layer 1 (image)", "layer 2 (image)", "layer 3 (image)", "init layer"}
	if err := mountNarrated(n, w, root.Merged, root.Lowers, labels, root.Upper, root.Work); err != nil {
		return err
	}
	n.Say("the container changes its root:")
	n.Call(`echo debug=true > /etc/app.conf; rm -r /var/cache/app; mkdir /var/cache/app; echo x > /var/cache/app/new`)
	n.Call(`rm /bin/sh; printf X | dd of=/usr/lib/libbig.so bs=1 count=1 conv=notrunc`)
	m := root.Merged
	if err := writeFiles(map[string]string{"etc/app.conf": "debug=true\n"}, m); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(m, "var/cache/app")); err != nil {
		return err
	}
	if err := writeFiles(map[string]string{"var/cache/app/new": "x\n"}, m); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(m, "bin/sh")); err != nil {
		return err
	}
	if err := overwriteOneByte(filepath.Join(m, "usr/lib/libbig.so")); err != nil {
		return err
	}
	named := []string{"rw", "init", "layer 3", "layer 2", "layer 1"}
	dirs := []string{root.Upper, root.Init}
	for i := len(img.DiffIDs) - 1; i >= 0; i-- {
		dirs = append(dirs, root.Lowers[i])
	}
	n.Call("find / ! -type d   # in the merged root, with the layer each file comes from")
	origins := originTable(m, dirs, named)
	n.Output(origins.text)
	n.Check(origins.from["/etc/hostname"] == "init" && origins.from["/etc/resolv.conf"] == "init" && origins.from["/etc/hosts"] == "init",
		"/etc/hostname, /etc/hosts and /etc/resolv.conf come from the init layer (hiding the image's /etc/hostname)")
	n.Check(origins.from["/usr/bin/app"] == "layer 3" && fileIs(filepath.Join(m, "usr/bin/app"), "app v2\n"), "/usr/bin/app comes from layer 3, which hides layer 2's")
	n.Check(origins.from["/etc/app.conf"] == "rw" && origins.from["/usr/lib/libbig.so"] == "rw", "changed files live in the rw layer")
	big, _ := os.Stat(filepath.Join(root.Upper, "usr/lib/libbig.so"))
	if big != nil {
		n.Note("changing 1 byte of /usr/lib/libbig.so copied all %d bytes of it into the rw layer: copy-on-write works on whole files", big.Size())
	}
	if !keep {
		if err := w.unmount(root.Merged, n.Trace()); err != nil {
			return err
		}
	}
	t.store, t.img, t.root = store, img, root
	return nil
}

// buildImage makes step 4's layer store and its three-layer image, from
// files with fixed modes and times: the same diffIDs on every machine.
func (t *tourRun) buildImage() (*layers.Store, layers.Image, error) {
	n, w := t.n, t.w
	store, err := layers.OpenStore(w.path("docker"))
	if err != nil {
		return nil, layers.Image{}, err
	}
	n.Say("a layer store laid out like /var/lib/docker, in %s", store.Root)
	storageDriver(n, store.Root)
	imageLayers := []map[string]string{
		{"bin/sh": "#!busybox sh\n", "etc/os-release": "NAME=workshop\n", "etc/hostname": "localhost\n", "usr/lib/libbig.so": bigFile},
		{"usr/bin/app": "app v1\n", "etc/app.conf": "debug=false\n", "var/cache/app/index1": "1\n", "var/cache/app/index2": "2\n"},
		{"usr/bin/app": "app v2\n"},
	}
	var diffIDs []string
	parent := ""
	for i, files := range imageLayers {
		dir := w.path(fmt.Sprintf("build/layer%d", i+1))
		if err := writeFiles(files, dir); err != nil {
			return nil, layers.Image{}, err
		}
		// Fixed modes and times: the same files give the same tar, hence the
		// same diffIDs on every machine (those in the docs).
		if err := settle(dir); err != nil {
			return nil, layers.Image{}, err
		}
		var buf bytes.Buffer
		if err := layers.WriteLayerTar(&buf, dir); err != nil {
			return nil, layers.Image{}, err
		}
		l, err := store.Add(parent, &buf)
		if err != nil {
			return nil, layers.Image{}, err
		}
		parent = l.ChainID
		diffIDs = append(diffIDs, l.DiffID)
		n.Say("layer %d: %s  (%s)", i+1, short(l.DiffID), strings.Join(sortedKeys(files), " "))
	}
	img, err := store.PutImage("workshop/app", diffIDs, layers.ImageConfig{Cmd: []string{"/usr/bin/app"}})
	return store, img, err
}

// commit is step 5: commit.
func (t *tourRun) commit() error {
	n, w, keep := t.n, t.w, t.keep
	store, root := t.store, t.root
	n.Step("Commit: the rw layer (not the init layer) becomes a new image layer")
	tarPath := w.path("commit.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		return err
	}
	err = layers.WriteLayerTar(f, root.Upper)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	n.Call("tar -tvf commit.tar   # the rw layer, whiteouts in OCI form")
	entries, err := tarListing(tarPath)
	if err != nil {
		return err
	}
	n.Output(entries)
	n.Check(strings.Contains(entries, "bin/.wh.sh") && strings.Contains(entries, "var/cache/app/.wh..wh..opq"),
		"the deletion of /bin/sh is bin/.wh.sh and the recreated /var/cache/app carries .wh..wh..opq")
	n.Check(!strings.Contains(entries, "hostname") && !strings.Contains(entries, "resolv.conf"), "nothing of the init layer is committed")
	newImg, layer, err := store.Commit("ctr1", "workshop/app:committed", layers.ImageConfig{Cmd: []string{"/usr/bin/app"}})
	if err != nil {
		return err
	}
	tf, err := os.Open(tarPath)
	if err != nil {
		return err
	}
	fileDigest, err := layers.DiffID(tf)
	tf.Close()
	if err != nil {
		return err
	}
	n.Call("sha256sum commit.tar")
	n.Output(strings.TrimPrefix(fileDigest, "sha256:") + "  commit.tar")
	n.Say("its diffID: %s", layer.DiffID)
	n.Check(layer.DiffID == fileDigest, "the diffID is the sha256 of the uncompressed layer tar")
	n.Say("the new image workshop/app:committed, ID %s (the sha256 of its config in imagedb/content/sha256/)", short(newImg.ID))
	n.Call("docker image inspect workshop/app:committed   # its RootFS, as Docker prints it")
	n.Output(rootFSJSON(newImg.DiffIDs))
	chain, err := layers.ChainIDs(newImg.DiffIDs)
	if err != nil {
		return err
	}
	n.Call("ls image/overlay2/layerdb/sha256/   # the layer store, keyed by chain ID")
	var stored []string
	for _, l := range mustLayers(store) {
		stored = append(stored, l.ChainID)
	}
	var table strings.Builder
	for i, cid := range chain {
		l, err := store.Layer(cid)
		if err != nil {
			return err
		}
		how := "= its diffID (bottom layer)"
		if i > 0 {
			how = fmt.Sprintf("= sha256(\"%s %s\")", short(chain[i-1]), short(newImg.DiffIDs[i]))
		}
		fmt.Fprintf(&table, "%s  layer %d %s, cache-id %s\n", strings.TrimPrefix(cid, "sha256:"), i+1, how, short(l.CacheID))
	}
	n.Output(table.String())
	top, _ := store.Layer(chain[len(chain)-1])
	n.Call("ls layerdb/sha256/%s/; cat parent; cat size", short(top.ChainID)+"...")
	n.Output(fmt.Sprintf("cache-id  diff  parent  size\n%s\n%d", top.Parent, top.Size))
	n.Check(sameSet(chain, stored), "the store's layerdb holds exactly the image's %d chain IDs", len(chain))
	n.Note("recompute them: go run ./%s chainid DIFFID... (the Layers above, in order)", name)
	if keep {
		return nil
	}
	return store.RemoveRoot("ctr1")
}

// deepStack is --layers N: N layers that each hold a version of one file.
func deepStack(n *checkedNarrator, w *workdir, depth int) error {
	n.Step("Stack %d layers, each with its own version of the same file", depth)
	lowers := make([]string, depth)
	for i := range lowers {
		lowers[i] = w.path("layers", fmt.Sprint(i+1))
		if err := writeFiles(map[string]string{"file": fmt.Sprintf("version %d\n", i+1)}, lowers[i]); err != nil {
			return err
		}
	}
	n.Say("layers/1/file says \"version 1\" ... layers/%d/file says \"version %d\" (layer %d is the top)", depth, depth, depth)
	top := make([]string, depth)
	for i, l := range lowers {
		top[depth-1-i] = l
	}
	opts := "lowerdir=" + strings.Join(top, ":")
	n.Note("with absolute paths, mount(2)'s lowerdir= option alone would be %d bytes; the kernel copies at most one page (%d bytes) of options", len(opts), os.Getpagesize())
	if depth > 128 {
		n.Note("Docker's overlay2 driver refuses images of more than 128 layers; the kernel allows %d", layers.MaxLowerLayers)
	}
	C, upper, work := w.path("C"), w.path("upper"), w.path("work")
	if err := mkdirs(C, upper, work); err != nil {
		return err
	}
	start := time.Now()
	if err := mountNarrated(n, w, C, lowers, nil, upper, work); err != nil {
		return err
	}
	took := time.Since(start)
	got, _ := os.ReadFile(filepath.Join(C, "file"))
	n.Call("cat C/file")
	n.Output(string(got))
	n.Say("mounting %d layers took %.1f ms", depth, float64(took.Microseconds())/1000)
	n.Check(string(got) == fmt.Sprintf("version %d\n", depth), "the top layer's version wins")
	return nil
}

// mountNarrated mounts the overlay and shows each call the layers package
// makes, as it makes it (fsopen, fsconfig, fsmount, move_mount where the
// kernel has lowerdir+; one mount(2) where it does not). Paths are shown
// relative to the work directory; labels, if given, name each lower layer
// (bottom first); a deep stack shows its first and last layers.
func mountNarrated(n *checkedNarrator, w *workdir, target string, lowers, labels []string, upper, work string) error {
	label := map[string]string{}
	for i, l := range labels {
		label[lowers[i]] = l
	}
	lowerSeen := 0
	hook := func(call, why string) {
		shown := w.shorten(call)
		if strings.Contains(call, `"lowerdir+", "`) && !strings.HasSuffix(call, `"lowerdir+", "/")`) {
			lowerSeen++
			if len(lowers) > 4 && lowerSeen > 2 && lowerSeen < len(lowers) {
				if lowerSeen == 3 {
					n.Say("... %d more lowerdir+, one per layer, top first", len(lowers)-3)
				}
				return
			}
			for path, l := range label {
				if strings.HasSuffix(call, fmt.Sprintf("%q)", path)) {
					shown += "   # " + l
				}
			}
		}
		if strings.HasPrefix(call, `mount("overlay"`) && len(lowers) > 4 {
			shown = deepOptions.ReplaceAllString(shown, "lowerdir=$1:...:$2")
		}
		n.Call("%s", shown)
		if why != "" {
			n.Note("%s", why)
		}
	}
	if err := w.mount(target, lowers, upper, work, hook); err != nil {
		if errors.Is(err, errInterrupted) {
			return err
		}
		return stage.Fail("mount the overlay on %s: %v", target, err)
	}
	return nil
}

// relTrace passes the calls on with paths relative to the work directory.
func (w *workdir) relTrace(h trace.Hook) trace.Hook {
	return func(call, why string) { h(w.shorten(call), why) }
}

// shorten shows the paths in s relative to the work directory, with
// 64-digit IDs cut to 12.
func (w *workdir) shorten(s string) string {
	s = strings.ReplaceAll(s, w.dir+"/", "")
	return longID.ReplaceAllStringFunc(s, func(id string) string { return id[:12] + "..." })
}

// deepOptions finds the first and last of a long lowerdir= list.
var deepOptions = regexp.MustCompile(`lowerdir=([^:,]+):[^,]*:([^:,]+)`)

// ---- the work directory: everything this run creates, and its cleanup ----

type workdir struct {
	dir     string
	created bool // we made dir itself (so we remove it)
	mu      sync.Mutex
	mounted []string
}

func newWorkdir(dir string) (*workdir, error) {
	if dir == "" {
		// The temp dir is on the machine's own disk (not a synced folder),
		// where overlayfs can keep its whiteouts and xattrs.
		d, err := os.MkdirTemp("", "workshop-05-")
		if err != nil {
			return nil, stage.Fail("cannot create a temporary directory: %v (set TMPDIR to a writable directory)", err)
		}
		return &workdir{dir: d, created: true}, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, stage.Fail("--workdir %s: %v", dir, err)
	}
	entries, err := os.ReadDir(abs)
	switch {
	case os.IsNotExist(err):
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, stage.Fail("--workdir %s: cannot create it: %v", dir, err)
		}
		return &workdir{dir: abs, created: true}, nil
	case err != nil:
		return nil, stage.Fail("--workdir %s: %v", dir, err)
	case len(entries) > 0:
		return nil, stage.Fail("--workdir %s is not empty: give a new or empty directory (this program removes what it creates there)", dir)
	}
	return &workdir{dir: abs}, nil
}

func (w *workdir) path(parts ...string) string {
	return filepath.Join(append([]string{w.dir}, parts...)...)
}

func (w *workdir) mount(target string, lowers []string, upper, work string, hook trace.Hook) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if interrupted.Load() {
		return errInterrupted
	}
	if err := layers.Mount(target, lowers, upper, work, hook); err != nil {
		return err
	}
	w.mounted = append(w.mounted, target)
	return nil
}

func (w *workdir) unmount(target string, hook trace.Hook) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := layers.Unmount(target, w.relTrace(hook)); err != nil {
		return err
	}
	for i, m := range w.mounted {
		if m == target {
			w.mounted = append(w.mounted[:i], w.mounted[i+1:]...)
			break
		}
	}
	return nil
}

// cleanup unmounts and removes everything, or with keep says how to.
func (w *workdir) cleanup(n *checkedNarrator, keep bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if keep {
		n.Step("Keep everything for exploring (--keep)")
		for _, m := range w.mounted {
			n.Say("mounted: %s", m)
		}
		n.Say("look around: cd %s; ls C upper; find docker -maxdepth 4", w.dir)
		if len(w.mounted) > 0 {
			n.Say("to clean up: sudo umount %s && sudo rm -rf %s", strings.Join(w.mounted, " "), w.removeTarget())
		} else {
			n.Say("to clean up: sudo rm -rf %s", w.removeTarget())
		}
		return
	}
	n.Step("Clean up")
	for i := len(w.mounted) - 1; i >= 0; i-- {
		if err := layers.Unmount(w.mounted[i], w.relTrace(n.Trace())); err != nil {
			// Still busy (a Ctrl-C mid-read): detach it, it goes when unused.
			_ = unix.Unmount(w.mounted[i], unix.MNT_DETACH)
		}
	}
	w.mounted = nil
	n.Call("rm -rf %s", w.removeTarget())
	if err := w.remove(); err != nil {
		n.Warn("could not remove %s: %v", w.dir, err)
		return
	}
	n.Check(w.gone(), "nothing left: no mount, no directory")
}

func (w *workdir) removeTarget() string {
	if w.created {
		return w.dir
	}
	return w.dir + "/*"
}

func (w *workdir) remove() error {
	if w.created {
		return os.RemoveAll(w.dir)
	}
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(w.dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func (w *workdir) gone() bool {
	ms, _ := mountinfo.Self()
	for _, m := range ms {
		if strings.HasPrefix(m.Point, w.dir+"/") {
			return false
		}
	}
	if w.created {
		_, err := os.Stat(w.dir)
		return os.IsNotExist(err)
	}
	entries, _ := os.ReadDir(w.dir)
	return len(entries) == 0
}

// errInterrupted ends a run early after Ctrl-C: run then cleans up as after
// any error, and exits with 130 as a shell reports a SIGINT.
var (
	errInterrupted = errors.New("interrupted")
	interrupted    atomic.Bool
)

// cleanupOnSignal makes Ctrl-C (and kill) end the run at the next file or
// mount and clean up. The handler does not clean up itself while the run
// goes on creating files: it would race with it. If the run does not stop
// within 3 seconds, it unmounts and removes everything itself.
func cleanupOnSignal(n *checkedNarrator, current func() *workdir) func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			n.Warn("interrupted (%v): cleaning up", s)
			interrupted.Store(true)
			time.Sleep(3 * time.Second)
			if w := current(); w != nil {
				w.mu.Lock()
				for i := len(w.mounted) - 1; i >= 0; i-- {
					_ = unix.Unmount(w.mounted[i], unix.MNT_DETACH)
				}
				_ = w.remove()
			}
			os.Exit(130)
		case <-done:
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// ---- narration with a memory of failed checks ----

// checkedNarrator remembers whether any check failed, so that the run can
// end with a non-zero status, as the tour expects.
type checkedNarrator struct {
	*narrate.Narrator
	failed bool
}

func (n *checkedNarrator) Check(ok bool, format string, args ...any) {
	if !ok {
		n.failed = true
	}
	n.Narrator.Check(ok, format, args...)
}

func (n *checkedNarrator) Failed() bool { return n.failed }

// ---- small helpers ----

// bigFile is 4 MiB of data: enough to see what copy-up costs.
var bigFile = strings.Repeat("0123456789abcdef", 4<<20/16)

func writeFiles(files map[string]string, dir string) error {
	for _, f := range sortedKeys(files) {
		if interrupted.Load() {
			return errInterrupted
		}
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(files[f]), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// settle gives every file under dir mode 0644 (directories 0755), owner
// root and the time 2024-01-01 00:00 UTC, whatever the umask and the clock.
func settle(dir string) error {
	t := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	return filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if fi.IsDir() {
			mode = 0o755
		}
		if err := os.Lchown(p, 0, 0); err != nil {
			return err
		}
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
		return os.Chtimes(p, t, t)
	})
}

func mkdirs(dirs ...string) error {
	for _, d := range dirs {
		if interrupted.Load() {
			return errInterrupted
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func appendFile(p, s string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func overwriteOneByte(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt([]byte("X"), 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func fileIs(p, content string) bool {
	b, err := os.ReadFile(p)
	return err == nil && string(b) == content
}

func ls(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// listTree prints dirs the way `tree` does, in a few lines.
func listTree(base string, dirs ...string) string {
	var out []string
	for _, d := range dirs {
		var files []string
		_ = filepath.Walk(filepath.Join(base, d), func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				r, _ := filepath.Rel(filepath.Join(base, d), p)
				files = append(files, r)
			}
			return nil
		})
		out = append(out, d+"/"+strings.Join(files, "  "+d+"/"))
	}
	return strings.Join(out, "\n")
}

// lsl is `ls -l` of one entry without the date.
func lsl(p string) string {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return err.Error()
	}
	kind := map[uint32]byte{unix.S_IFCHR: 'c', unix.S_IFDIR: 'd', unix.S_IFLNK: 'l', unix.S_IFREG: '-'}[st.Mode&unix.S_IFMT]
	perm := []byte("rwxrwxrwx")
	for i := range perm {
		if st.Mode&(1<<(8-i)) == 0 {
			perm[i] = '-'
		}
	}
	size := fmt.Sprint(st.Size)
	if kind == 'c' {
		size = fmt.Sprintf("%d, %d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return fmt.Sprintf("%c%s %d %d %s %s", kind, perm, st.Uid, st.Gid, size, filepath.Base(p))
}

// mountLine is the end of target's line in /proc/self/mountinfo: the
// filesystem type, its source and its options, as the kernel records them.
func mountLine(w *workdir, target string) string {
	ms, _ := mountinfo.Self()
	if m, ok := mountinfo.At(ms, target); ok {
		_, end, _ := strings.Cut(m.Line, " - ")
		return strings.ReplaceAll(end, w.dir+"/", "")
	}
	return "(not mounted)"
}

type origins struct {
	text string
	from map[string]string // /path -> layer name
}

// originTable says, for every file of the merged view, which layer it
// comes from: the topmost one holding it (upper first), and which it hides.
func originTable(merged string, dirs, names []string) origins {
	o := origins{from: map[string]string{}}
	var lines []string
	_ = filepath.Walk(merged, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		r, _ := filepath.Rel(merged, p)
		var in []string
		for i, d := range dirs {
			if _, err := os.Lstat(filepath.Join(d, r)); err == nil {
				in = append(in, names[i])
			}
		}
		if len(in) == 0 {
			return nil
		}
		o.from["/"+r] = in[0]
		line := fmt.Sprintf("%-22s %-8s", "/"+r, in[0])
		if len(in) > 1 {
			line += "  (hides " + strings.Join(in[1:], ", ") + ")"
		}
		lines = append(lines, strings.TrimRight(line, " "))
		return nil
	})
	o.text = strings.Join(lines, "\n")
	return o
}

func tarListing(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var lines []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
		lines = append(lines, fmt.Sprintf("%s %d/%d %8d %s", os.FileMode(h.Mode).String()[1:], h.Uid, h.Gid, h.Size, h.Name))
	}
	return strings.Join(lines, "\n"), nil
}

func rootFSJSON(diffIDs []string) string {
	var b strings.Builder
	b.WriteString("\"RootFS\": {\n    \"Type\": \"layers\",\n    \"Layers\": [\n")
	for i, d := range diffIDs {
		sep := ","
		if i == len(diffIDs)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "        \"%s\"%s\n", d, sep)
	}
	b.WriteString("    ]\n},")
	return b.String()
}

func mustLayers(s *layers.Store) []layers.Layer {
	ls, _ := s.Layers()
	return ls
}

func sameSet(a, b []string) bool {
	x, y := append([]string{}, a...), append([]string{}, b...)
	sort.Strings(x)
	sort.Strings(y)
	return strings.Join(x, " ") == strings.Join(y, " ")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// short is a digest or ID cut to 12 hex digits, as `docker images` shows them.
func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func shortAll(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = short(id) + "..."
	}
	return out
}

// rel shows a path relative to the workdir, with 64-digit IDs cut to 12.
func rel(w *workdir, p string) string {
	if r, err := filepath.Rel(w.dir, p); err == nil && !strings.HasPrefix(r, "..") {
		p = r
	}
	return longID.ReplaceAllStringFunc(p, func(id string) string { return id[:12] + "..." })
}

var longID = regexp.MustCompile(`[0-9a-f]{64}`)
