package main

// Images: the default image (built offline from the host on first use),
// `images`, `commit` and `import`. The store itself is stage 05's: layers
// keyed by chain ID, each with a cache-id naming its files, as Docker's.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/container-internals/workshop/04-chroot-pivot-root/rootfs"
	"github.com/container-internals/workshop/05-overlay-layers/layers"
	"github.com/container-internals/workshop/internal/stage"
)

// defaultImage is what `run` uses without an IMAGE.
const defaultImage = "workshop-default"

// image finds the image to run; the default one is built on first use.
func (rt *Runtime) image(ref string) (layers.Image, error) {
	if ref == "" {
		return rt.defaultImage()
	}
	img, err := rt.store.Image(ref)
	if err != nil {
		return layers.Image{}, stage.Fail("unknown image %q: see `images`, or make one with `import` or `commit`", ref)
	}
	return img, nil
}

// defaultImage returns the default image, building it first if needed:
// busybox when the host has it (one static binary, a shell and all the
// usual tools), otherwise the host's own tools with their libraries (stage
// 04's rootfs package). Two layers, so that `images` shows a real stack:
// the tools, then a base system (/etc/passwd, /etc/group, /tmp ...).
// Callers hold the state lock: twenty runs at once build it once.
func (rt *Runtime) defaultImage() (layers.Image, error) {
	if img, err := rt.store.Image(defaultImage); err == nil {
		return img, nil
	}
	rt.n.Say("building the default image %s (first use only)", defaultImage)
	tmp, err := os.MkdirTemp("", "workshop-image-")
	if err != nil {
		return layers.Image{}, err
	}
	defer os.RemoveAll(tmp)
	tools, base := filepath.Join(tmp, "tools"), filepath.Join(tmp, "base")
	if err := buildTools(tools); err != nil {
		return layers.Image{}, stage.Fail("building the default image: %v", err)
	}
	if err := rootfs.Skeleton(base); err != nil {
		return layers.Image{}, stage.Fail("building the default image: %v", err)
	}
	if err := os.WriteFile(filepath.Join(base, "etc", "motd"), []byte("A container of the container-internals workshop.\n"), 0o644); err != nil {
		return layers.Image{}, err
	}
	var diffIDs []string
	parent := ""
	for _, dir := range []string{tools, base} {
		var buf bytes.Buffer
		if err := layers.WriteLayerTar(&buf, dir); err != nil {
			return layers.Image{}, stage.Fail("building the default image: %v", err)
		}
		l, err := rt.store.Add(parent, &buf)
		if err != nil {
			return layers.Image{}, stage.Fail("building the default image: %v", err)
		}
		diffIDs = append(diffIDs, l.DiffID)
		parent = l.ChainID
	}
	img, err := rt.store.PutImage(defaultImage, diffIDs, layers.ImageConfig{Cmd: []string{"sh"}})
	if err != nil {
		return layers.Image{}, stage.Fail("building the default image: %v", err)
	}
	return img, nil
}

// hostTools are copied with their libraries when the host has no busybox.
var hostTools = []string{"sh", "ls", "cat", "echo", "ps", "hostname", "mount", "mkdir", "rm", "sleep", "id", "true", "false", "head", "grep", "ip", "free", "env", "touch", "uname"}

func buildTools(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if bb, err := exec.LookPath("busybox"); err == nil {
		if _, err := rootfs.CopyWithLibraries(dir, bb); err != nil {
			return err
		}
		list, err := exec.Command(bb, "--list-full").Output()
		if err != nil {
			return fmt.Errorf("busybox --list-full: %v", err)
		}
		inside := "/" + strings.TrimPrefix(bb, "/")
		for _, applet := range strings.Fields(string(list)) {
			p := filepath.Join(dir, applet)
			if _, err := os.Lstat(p); err == nil {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(inside, p); err != nil {
				return err
			}
		}
		return nil
	}
	var found []string
	for _, t := range hostTools {
		if p, err := exec.LookPath(t); err == nil {
			found = append(found, p)
		}
	}
	if len(found) == 0 {
		return errors.New("neither busybox nor a shell found on the host: install busybox-static")
	}
	_, err := rootfs.Build(dir, found...)
	return err
}

func imagesCmd(c *cli.Context) error {
	rt, err := runtimeFor(c)
	if err != nil {
		return err
	}
	imgs, err := rt.store.Images()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(w, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tLAYERS\tSIZE")
	for _, img := range imgs {
		var size int64
		if stack, err := rt.store.Stack(img.TopChainID()); err == nil {
			for _, l := range stack {
				size += l.Size
			}
		}
		names := img.Names
		if len(names) == 0 {
			names = []string{"<none>:<none>"}
		}
		for _, nm := range names {
			repo, tag, _ := strings.Cut(nm, ":")
			fmt.Fprintf(w, "%s\t%s\t%s\t%s ago\t%d\t%s\n", repo, tag, short(img.ID), ago(img.Created), len(img.DiffIDs), humanSize(size))
		}
	}
	return w.Flush()
}

func humanSize(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1fGB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1fMB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1fkB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%dB", b)
}

func commitCmd(c *cli.Context) error {
	if c.Args().Len() != 2 {
		return stage.Fail("usage: commit NAME IMAGE")
	}
	rt, err := runtimeFor(c)
	if err != nil {
		return err
	}
	st, err := rt.dirs.find(c.Args().Get(0))
	if err != nil {
		return stage.Fail("%v", err)
	}
	if st.ImageID == "" {
		return stage.Fail("container %s runs on --rootfs %s, not an image: `import` the directory as an image first (tar -C DIR -c . > r.tar)", st.Name, st.RootDir)
	}
	if err := refuseCommitOfUserns(rt.dirs.configPath(st.ID)); err != nil {
		return err
	}
	unlock, err := rt.dirs.lock() // no rmi takes its layers away meanwhile
	if err != nil {
		return stage.Fail("cannot lock %s: %v", rt.dirs.State, err)
	}
	defer unlock()
	if c.Bool("pause") {
		thaw, err := rt.freezeWhileCommitting(st)
		if err != nil {
			return stage.Fail("commit %s: pausing it: %v (or commit with --pause=false)", st.Name, err)
		}
		defer thaw()
	}
	img, layer, err := rt.store.Commit(st.ID, c.Args().Get(1), layers.ImageConfig{Cmd: st.Command})
	if err != nil {
		return stage.Fail("commit: %v", err)
	}
	fmt.Printf("%s (new layer %s, diffID %s)\n", img.ID, short(layer.ChainID), short(layer.DiffID))
	return nil
}

// freezeWhileCommitting pauses a running container (its cgroup's
// freezer, as `pause`) until the returned function is called, as `docker
// commit` does by default: the layer is read as of one instant, not file
// by file while its processes go on writing. One already paused stays so.
func (rt *Runtime) freezeWhileCommitting(st *State) (thaw func(), err error) {
	nothing := func() {}
	if st.Cgroup == "" || !alive(st.Pid, st.PidStart) {
		return nothing, nil
	}
	g, err := rt.openGroup(st.Cgroup)
	if err != nil {
		return nothing, err
	}
	if frozen, _ := g.Frozen(); frozen {
		return nothing, nil
	}
	if err := g.Freeze(); err != nil {
		return nothing, err
	}
	return func() { _ = g.Thaw() }, nil
}

func importCmd(c *cli.Context) error {
	if c.Args().Len() != 2 {
		return stage.Fail("usage: import [--force] TAR IMAGE")
	}
	rt, err := runtimeFor(c)
	if err != nil {
		return err
	}
	path, ref := c.Args().Get(0), c.Args().Get(1)
	unlock, err := rt.dirs.lock() // no rmi removes a layer it finds in the store before its image names it
	if err != nil {
		return stage.Fail("cannot lock %s: %v", rt.dirs.State, err)
	}
	defer unlock()
	isSave, err := isSaveArchive(path)
	if err != nil {
		return stage.Fail("import %s: %v", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return stage.Fail("import: %v", err)
	}
	defer f.Close()
	opt := layers.ImportOptions{Name: ref, Force: c.Bool("force")}
	fail := func(err error) error {
		if errors.Is(err, layers.ErrNameInUse) {
			return stage.Fail("import %s: %v: pass --force to repoint it, or import under another name", path, err)
		}
		return stage.Fail("import %s: %v", path, err)
	}
	if !isSave {
		img, err := rt.store.ImportTar(f, layers.ImageConfig{Cmd: []string{"sh"}}, opt)
		if err != nil {
			return fail(err)
		}
		fmt.Println(img.ID)
		return nil
	}
	imgs, err := rt.store.ImportSave(f, opt)
	if err != nil {
		return fail(err)
	}
	if len(imgs) == 0 {
		return stage.Fail("import %s: the archive's manifest.json lists no image", path)
	}
	// One line per image, its ID then every name it now has: the archive's
	// RepoTags are names too (as with `docker load`), and this says so.
	for _, img := range imgs {
		fmt.Println(strings.Join(append([]string{img.ID}, img.Names...), " "))
	}
	return nil
}

// isSaveArchive tells a `docker save` archive (it has a manifest.json at
// the top) from a root filesystem tar.
func isSaveArchive(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var r io.Reader = f
	if gz, err := gzip.NewReader(f); err == nil {
		r = gz
	} else if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("not a tar archive: %v", err)
		}
		if strings.TrimPrefix(h.Name, "./") == "manifest.json" {
			return true, nil
		}
	}
}

// rmiCmd removes images, as `docker rmi`: a name of an image that has
// others only loses that name ("Untagged"); an image's last name, or its
// ID, removes the image, then every layer no other image or container
// stands on ("Deleted"), with the chowned copies `run --userns` made of
// them.
func rmiCmd(c *cli.Context) error {
	if c.Args().Len() == 0 {
		return stage.Fail("usage: rmi [--force] IMAGE...   (see `images`)")
	}
	rt, err := runtimeFor(c)
	if err != nil {
		return err
	}
	unlock, err := rt.dirs.lock() // no run may start on an image while it goes
	if err != nil {
		return stage.Fail("cannot lock %s: %v", rt.dirs.State, err)
	}
	defer unlock()
	for _, ref := range c.Args().Slice() {
		if err := rt.removeImage(ref, c.Bool("force")); err != nil {
			return err
		}
	}
	return nil
}

func (rt *Runtime) removeImage(ref string, force bool) error {
	img, err := rt.store.Image(ref)
	if err != nil {
		return stage.Fail("rmi: unknown image %q: see `images`", ref)
	}
	if name := nameOf(img, ref); name != "" && len(img.Names) > 1 {
		if err := rt.store.Untag(name); err != nil {
			return stage.Fail("rmi %s: %v", ref, err)
		}
		fmt.Println("Untagged:", name)
		return nil
	}
	if len(img.Names) > 1 && !force {
		return stage.Fail("rmi %s: the image has %d names (%s): remove them one by one, or pass --force", ref, len(img.Names), strings.Join(img.Names, ", "))
	}
	if users, err := rt.containersOf(img.ID); err != nil {
		return stage.Fail("rmi %s: %v", ref, err)
	} else if len(users) > 0 {
		return stage.Fail("rmi %s: container %s uses the image: remove it first (`rm -f %s`)", ref, users[0], users[0])
	}
	if err := rt.store.RemoveImage(img.ID); err != nil {
		return stage.Fail("rmi %s: %v", ref, err)
	}
	for _, n := range img.Names {
		fmt.Println("Untagged:", n)
	}
	fmt.Println("Deleted:", img.ID)
	removed, err := rt.store.RemoveUnusedLayers()
	for _, l := range removed {
		if cerr := rt.removeShiftedCopies(l.Dir); cerr != nil && err == nil {
			err = cerr
		}
		fmt.Println("Deleted:", l.ChainID)
	}
	if err != nil {
		return stage.Fail("rmi %s: removing its layers: %v", ref, err)
	}
	return nil
}

// nameOf is the name of img that ref gives ("busybox" is busybox:latest),
// or "" when ref is an ID.
func nameOf(img layers.Image, ref string) string {
	for _, n := range img.Names {
		if n == ref || n == ref+":latest" {
			return n
		}
	}
	return ""
}

// containersOf names the containers (running or stopped, not yet removed)
// made from the image id.
func (rt *Runtime) containersOf(id string) ([]string, error) {
	all, err := rt.dirs.all()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, st := range all {
		if st.ImageID == id {
			names = append(names, st.Name)
		}
	}
	return names, nil
}
