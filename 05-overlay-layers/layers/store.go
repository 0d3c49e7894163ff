package layers

import (
	"bufio"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/trace"
)

// Store is a layer and image store laid out like Docker's /var/lib/docker
// with the overlay2 driver, so the two can be compared file by file:
//
//	image/overlay2/layerdb/sha256/<chainID>/diff       the layer's diffID
//	                                       /cache-id   names its files' directory
//	                                       /parent     the chain ID below (absent at the bottom)
//	                                       /size       bytes of its files
//	image/overlay2/layerdb/mounts/<container>/{mount-id,init-id,parent}
//	image/overlay2/imagedb/content/sha256/<imageID>     image config (JSON, rootfs.diff_ids)
//	image/overlay2/repositories.json                    name:tag -> image ID
//	overlay2/<cache-id>/diff/                           a layer's files
//	overlay2/<mount-id>-init/diff/                      a container's init layer
//	overlay2/<mount-id>/{diff,work,merged}/             its read-write layer and root
type Store struct {
	Root string
	// Trace, when set, is told the kernel calls the store makes (the
	// unmounts of RemoveRoot).
	Trace trace.Hook
}

// Layer is one layer's record in the layer database.
type Layer struct {
	ChainID string // its key: it and every layer below it
	DiffID  string // sha256 of its uncompressed tar
	Parent  string // chain ID of the layer below; "" at the bottom
	CacheID string // the directory under overlay2/ holding its files
	Size    int64  // bytes of its regular files
	Dir     string // overlay2/<cache-id>/diff: the files, for Mount
}

// ImageConfig is the part of an image config a runtime uses to start it.
type ImageConfig struct {
	Cmd        []string `json:"Cmd,omitempty"`
	Env        []string `json:"Env,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
}

// Image is an image record: its config and the names pointing at it.
type Image struct {
	ID      string // sha256 of its config file: `docker images`' IMAGE ID
	Names   []string
	Created time.Time
	DiffIDs []string // rootfs.diff_ids, bottom first
	Config  ImageConfig
}

// imageFile is the JSON of an image config, as `docker save` stores it.
type imageFile struct {
	Architecture string      `json:"architecture"`
	OS           string      `json:"os"`
	Created      time.Time   `json:"created"`
	Config       ImageConfig `json:"config"`
	RootFS       struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// OpenStore opens (creating it if needed) the store under root.
func OpenStore(root string) (*Store, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	s := &Store{Root: root}
	for _, d := range []string{s.layerdb(""), s.mountdb(""), s.imagedb(""), filepath.Join(root, "overlay2")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create the store under %s: %w", root, err)
		}
	}
	s.collect()
	return s, nil
}

// Work in progress lives in the store's root until it is complete: an
// import unpacks its archive in import-<random>/, a new layer is unpacked in
// incomplete-<cacheID>/ and renamed into overlay2/ once whole. A process
// killed half way (an import of a huge or hostile archive, interrupted)
// leaves them behind; the next OpenStore removes them.
var stagingPrefixes = []string{"import-", "incomplete-"}

func isStaging(name string) bool {
	for _, p := range stagingPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// working holds the store's root directory locked shared (flock) while
// its caller stages files there; the kernel drops the lock when the
// process dies, however it dies. Call the returned function when done.
func (s *Store) working() (func(), error) {
	fd, err := unix.Open(s.Root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(fd, unix.LOCK_SH); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return func() { unix.Close(fd) }, nil
}

// collect removes staging directories whose process is gone. If the lock
// can be taken exclusive, no process is staging anything (each holds it
// shared from before it creates its directory until after it removes
// it), so every staging directory there is a dead one's. If it cannot,
// someone is working: a later command will collect.
func (s *Store) collect() {
	names, err := readNames(s.Root)
	if err != nil || !slices.ContainsFunc(names, isStaging) {
		return // the usual case: one small directory read, no lock
	}
	fd, err := unix.Open(s.Root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return
	}
	names, _ = readNames(s.Root) // again, under the lock
	for _, n := range names {
		if isStaging(n) {
			os.RemoveAll(filepath.Join(s.Root, n))
		}
	}
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func (s *Store) layerdb(chainID string) string {
	return filepath.Join(s.Root, "image/overlay2/layerdb/sha256", strings.TrimPrefix(chainID, digestPrefix))
}
func (s *Store) mountdb(id string) string {
	return filepath.Join(s.Root, "image/overlay2/layerdb/mounts", id)
}
func (s *Store) imagedb(id string) string {
	return filepath.Join(s.Root, "image/overlay2/imagedb/content/sha256", strings.TrimPrefix(id, digestPrefix))
}
func (s *Store) driverDir(id string) string { return filepath.Join(s.Root, "overlay2", id) }
func (s *Store) reposFile() string {
	return filepath.Join(s.Root, "image/overlay2/repositories.json")
}

func randomID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // the kernel's random source failing is a bug, not an input error
	}
	return hex.EncodeToString(b)
}

// Add unpacks a layer tar on top of the layer parent (a chain ID; "" for a
// bottom layer) and records it. If the store already holds that chain ID,
// the new copy is dropped and the existing layer returned: the same diffID
// on the same parent is the same layer, which is why images share layers.
func (s *Store) Add(parent string, r io.Reader) (Layer, error) {
	if parent != "" {
		if _, err := s.Layer(parent); err != nil {
			return Layer{}, err
		}
	}
	done, err := s.working()
	if err != nil {
		return Layer{}, err
	}
	defer done()
	cacheID := randomID()
	tmp := filepath.Join(s.Root, "incomplete-"+cacheID)
	h := sha256.New()
	tee := io.TeeReader(r, h)
	if err := ApplyLayerTar(tee, filepath.Join(tmp, "diff")); err != nil {
		os.RemoveAll(tmp)
		return Layer{}, err
	}
	// The tar reader stops at the end-of-archive marker; the diffID covers
	// every byte, padding included.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		os.RemoveAll(tmp)
		return Layer{}, err
	}
	diffID := digestPrefix + hex.EncodeToString(h.Sum(nil))
	chainID, err := ChainID(parent, diffID)
	if err != nil {
		os.RemoveAll(tmp)
		return Layer{}, err
	}
	if l, err := s.Layer(chainID); err == nil {
		os.RemoveAll(tmp)
		return l, nil
	}
	size, err := dirSize(filepath.Join(tmp, "diff"))
	if err != nil {
		os.RemoveAll(tmp)
		return Layer{}, err
	}
	if err := os.Rename(tmp, s.driverDir(cacheID)); err != nil {
		os.RemoveAll(tmp)
		return Layer{}, err
	}
	meta := map[string]string{"diff": diffID, "cache-id": cacheID, "size": fmt.Sprint(size)}
	if parent != "" {
		meta["parent"] = parent
	}
	if err := writeDirAtomically(s.layerdb(chainID), meta); err != nil {
		os.RemoveAll(s.driverDir(cacheID))
		return Layer{}, err
	}
	return s.Layer(chainID)
}

// writeDirAtomically writes small files into a new directory that appears
// all at once (a rename), so a crash never leaves half a record.
func writeDirAtomically(dir string, files map[string]string) error {
	tmp := dir + "-incomplete"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(content), 0o600); err != nil {
			os.RemoveAll(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return nil
}

func dirSize(dir string) (int64, error) {
	var size int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			size += fi.Size()
		}
		return nil
	})
	return size, err
}

// Layer reads one layer's record by chain ID.
func (s *Store) Layer(chainID string) (Layer, error) {
	if err := ValidateDigest(chainID); err != nil {
		return Layer{}, err
	}
	dir := s.layerdb(chainID)
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		return strings.TrimSpace(string(b)), err
	}
	l := Layer{ChainID: chainID}
	var err error
	if l.DiffID, err = read("diff"); err != nil {
		if os.IsNotExist(err) {
			return Layer{}, fmt.Errorf("no layer %s in the store %s", chainID, s.Root)
		}
		return Layer{}, err
	}
	if l.CacheID, err = read("cache-id"); err != nil {
		return Layer{}, err
	}
	if l.Parent, err = read("parent"); err != nil && !os.IsNotExist(err) {
		return Layer{}, err
	}
	size, _ := read("size")
	fmt.Sscan(size, &l.Size)
	l.Dir = filepath.Join(s.driverDir(l.CacheID), "diff")
	return l, nil
}

// Layers lists every layer in the store, sorted by chain ID.
func (s *Store) Layers() ([]Layer, error) {
	entries, err := os.ReadDir(s.layerdb(""))
	if err != nil {
		return nil, err
	}
	var out []Layer
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "-incomplete") {
			continue
		}
		l, err := s.Layer(digestPrefix + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// Stack returns the layer chainID and every layer below it, bottom first:
// the lower directories to mount, in Mount's order.
func (s *Store) Stack(chainID string) ([]Layer, error) {
	var stack []Layer
	for c := chainID; c != ""; {
		l, err := s.Layer(c)
		if err != nil {
			return nil, err
		}
		stack = append([]Layer{l}, stack...)
		c = l.Parent
		if len(stack) > MaxLowerLayers+1 {
			return nil, fmt.Errorf("layer %s: parent chain too long (a loop?)", chainID)
		}
	}
	return stack, nil
}

// TopChainID is the chain ID of an image's top layer ("" for no layers).
func (img Image) TopChainID() string {
	ids, err := ChainIDs(img.DiffIDs)
	if err != nil || len(ids) == 0 {
		return ""
	}
	return ids[len(ids)-1]
}

// PutImage records an image config whose layers (diffIDs, bottom first) are
// all in the store, and points name at it ("name" means "name:latest").
// The image's ID is the sha256 of its config file, as Docker's is.
func (s *Store) PutImage(name string, diffIDs []string, cfg ImageConfig) (Image, error) {
	chain, err := ChainIDs(diffIDs)
	if err != nil {
		return Image{}, err
	}
	for i, c := range chain {
		if _, err := s.Layer(c); err != nil {
			return Image{}, fmt.Errorf("layer %d (%s) of image %s: %w", i+1, diffIDs[i], name, err)
		}
	}
	f := imageFile{Architecture: runtime.GOARCH, OS: "linux", Created: time.Now().UTC().Truncate(time.Second), Config: cfg}
	f.RootFS.Type = "layers"
	f.RootFS.DiffIDs = append([]string{}, diffIDs...)
	b, err := json.Marshal(f)
	if err != nil {
		return Image{}, err
	}
	return s.putImageConfig(name, b)
}

func (s *Store) putImageConfig(name string, config []byte) (Image, error) {
	id := Digest(config)
	if err := os.WriteFile(s.imagedb(id), config, 0o600); err != nil {
		return Image{}, err
	}
	if name != "" {
		if err := s.Tag(name, id); err != nil {
			return Image{}, err
		}
	}
	return s.Image(id)
}

// Tag points name (name:tag; ":latest" if no tag) at an image ID.
func (s *Store) Tag(name, id string) error {
	if name == "" || strings.ContainsAny(name, " \t\n") {
		return fmt.Errorf("invalid image name %q", name)
	}
	repos, err := s.repositories()
	if err != nil {
		return err
	}
	repos[fullName(name)] = id
	return s.writeRepositories(repos)
}

// writeRepositories replaces repositories.json (written aside, renamed in).
func (s *Store) writeRepositories(repos map[string]string) error {
	// Docker's shape: {"Repositories": {"busybox": {"busybox:latest": "sha256:..."}}}
	file := map[string]map[string]map[string]string{"Repositories": {}}
	for n, i := range repos {
		repo := n[:strings.LastIndex(n, ":")]
		if file["Repositories"][repo] == nil {
			file["Repositories"][repo] = map[string]string{}
		}
		file["Repositories"][repo][n] = i
	}
	b, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.reposFile() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.reposFile())
}

func fullName(name string) string {
	if i := strings.LastIndex(name, ":"); i < 0 || strings.Contains(name[i:], "/") {
		return name + ":latest"
	}
	return name
}

func (s *Store) repositories() (map[string]string, error) {
	repos := map[string]string{}
	b, err := os.ReadFile(s.reposFile())
	if os.IsNotExist(err) {
		return repos, nil
	}
	if err != nil {
		return nil, err
	}
	var file struct{ Repositories map[string]map[string]string }
	if err := json.Unmarshal(b, &file); err != nil {
		return nil, fmt.Errorf("%s: %w", s.reposFile(), err)
	}
	for _, tags := range file.Repositories {
		for n, id := range tags {
			repos[n] = id
		}
	}
	return repos, nil
}

// Image finds an image by name (name or name:tag), by full ID, or by a
// unique prefix of its hex ID (at least 4 digits, as `docker images` shows 12).
func (s *Store) Image(ref string) (Image, error) {
	repos, err := s.repositories()
	if err != nil {
		return Image{}, err
	}
	id, ok := repos[fullName(ref)]
	if !ok {
		hexRef := strings.TrimPrefix(ref, digestPrefix)
		if len(hexRef) >= 4 {
			entries, _ := os.ReadDir(s.imagedb(""))
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), hexRef) {
					if id != "" {
						return Image{}, fmt.Errorf("image ID prefix %q is ambiguous: give more digits", ref)
					}
					id = digestPrefix + e.Name()
				}
			}
		}
	}
	if id == "" {
		return Image{}, fmt.Errorf("no image %q in the store %s (see its images with the `images` command)", ref, s.Root)
	}
	b, err := os.ReadFile(s.imagedb(id))
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", id, err)
	}
	var f imageFile
	if err := json.Unmarshal(b, &f); err != nil {
		return Image{}, fmt.Errorf("image config %s: %w", id, err)
	}
	img := Image{ID: id, Created: f.Created, DiffIDs: f.RootFS.DiffIDs, Config: f.Config}
	for n, i := range repos {
		if i == id {
			img.Names = append(img.Names, n)
		}
	}
	sort.Strings(img.Names)
	return img, nil
}

// Images lists every image config in the store, newest first.
func (s *Store) Images() ([]Image, error) {
	entries, err := os.ReadDir(s.imagedb(""))
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, e := range entries {
		img, err := s.Image(digestPrefix + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// ContainerRoot is a container's root filesystem made of layers: the
// image's layers and its init layer read-only, its own layer read-write.
type ContainerRoot struct {
	ID      string
	MountID string   // overlay2/<mount-id>: its rw layer; <mount-id>-init: its init layer
	Parent  string   // chain ID of the image's top layer
	Lowers  []string // bottom first: image layers, then the init layer
	Init    string   // the init layer's files
	Upper   string   // the read-write layer: everything the container changes
	Work    string
	Merged  string // where the root is mounted
}

// CreateRoot prepares (but does not mount) a container's root from an
// image: a fresh init layer written for hostname (nameservers as in
// WriteInitLayer), an empty read-write layer, and the record in
// layerdb/mounts/<id>.
func (s *Store) CreateRoot(id string, img Image, hostname string, nameservers []string) (ContainerRoot, error) {
	if id == "" || strings.ContainsAny(id, "/ ") {
		return ContainerRoot{}, fmt.Errorf("invalid container id %q", id)
	}
	if _, err := os.Stat(s.mountdb(id)); err == nil {
		return ContainerRoot{}, fmt.Errorf("container %s already has a root in %s", id, s.Root)
	}
	mountID := randomID()
	base := s.driverDir(mountID)
	for _, d := range []string{base + "-init/diff", base + "/diff", base + "/work", base + "/merged"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			os.RemoveAll(base + "-init")
			os.RemoveAll(base)
			return ContainerRoot{}, err
		}
	}
	if err := WriteInitLayer(base+"-init/diff", hostname, nameservers); err != nil {
		os.RemoveAll(base + "-init")
		os.RemoveAll(base)
		return ContainerRoot{}, err
	}
	meta := map[string]string{"mount-id": mountID, "init-id": mountID + "-init", "parent": img.TopChainID()}
	if err := writeDirAtomically(s.mountdb(id), meta); err != nil {
		os.RemoveAll(base + "-init")
		os.RemoveAll(base)
		return ContainerRoot{}, err
	}
	return s.ContainerRoot(id)
}

// ContainerRoot reads a container root's record.
func (s *Store) ContainerRoot(id string) (ContainerRoot, error) {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(s.mountdb(id), name))
		return strings.TrimSpace(string(b)), err
	}
	mountID, err := read("mount-id")
	if err != nil {
		return ContainerRoot{}, fmt.Errorf("no container root %q in the store %s", id, s.Root)
	}
	parent, err := read("parent")
	if err != nil {
		return ContainerRoot{}, err
	}
	r := ContainerRoot{ID: id, MountID: mountID, Parent: parent}
	if parent != "" {
		stack, err := s.Stack(parent)
		if err != nil {
			return ContainerRoot{}, err
		}
		for _, l := range stack {
			r.Lowers = append(r.Lowers, l.Dir)
		}
	}
	base := s.driverDir(mountID)
	r.Init = base + "-init/diff"
	r.Lowers = append(r.Lowers, r.Init)
	r.Upper, r.Work, r.Merged = base+"/diff", base+"/work", base+"/merged"
	return r, nil
}

// ContainerRoots lists the IDs of the containers that have a root in the
// store (layerdb/mounts/), sorted.
func (s *Store) ContainerRoots() ([]string, error) {
	entries, err := os.ReadDir(s.mountdb(""))
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), "-incomplete") {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// Mount mounts the container's root at r.Merged.
func (r ContainerRoot) Mount(hook trace.Hook) error {
	return Mount(r.Merged, r.Lowers, r.Upper, r.Work, hook)
}

// Unmount unmounts r.Merged.
func (r ContainerRoot) Unmount(hook trace.Hook) error { return Unmount(r.Merged, hook) }

// HasRoot reports whether the container id has a root in the store.
func (s *Store) HasRoot(id string) bool {
	_, err := os.Stat(filepath.Join(s.mountdb(id), "mount-id"))
	return err == nil
}

// RemoveRoot deletes a container's root (unmount it first): its rw layer,
// its init layer and its record. The image's layers stay.
func (s *Store) RemoveRoot(id string) error {
	b, err := os.ReadFile(filepath.Join(s.mountdb(id), "mount-id"))
	if err != nil {
		return fmt.Errorf("no container root %q in the store %s", id, s.Root)
	}
	mountID := strings.TrimSpace(string(b))
	if mountID == "" || strings.ContainsAny(mountID, "/.") {
		return fmt.Errorf("container root %q: bad mount-id %q", id, mountID)
	}
	merged := filepath.Join(s.driverDir(mountID), "merged")
	// In case it is still mounted here; not mounted is fine.
	_ = Unmount(merged, s.Trace)
	// Two independent trees: remove them side by side, each waits on the
	// disk. The record goes last: a RemoveRoot stopped half way (its
	// process killed) leaves it, naming what is left, to be done again.
	dirs := []string{s.driverDir(mountID), s.driverDir(mountID + "-init")}
	errs := make(chan error, len(dirs))
	for _, d := range dirs {
		go func(d string) { errs <- os.RemoveAll(d) }(d)
	}
	var first error
	for range dirs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return first
	}
	return os.RemoveAll(s.mountdb(id))
}

// RemoveUnfinishedRoots removes what a CreateRoot stopped half way left: a
// record still named -incomplete, and the directories of a root that no
// record names. A root's directories are <mount-id>-init (made first) and
// <mount-id> (with work/ and merged/); an image layer's directory holds only
// diff/, and one being unpacked ends in -incomplete: those stay. The caller
// makes sure that no CreateRoot runs meanwhile.
func (s *Store) RemoveUnfinishedRoots() error {
	records, err := os.ReadDir(s.mountdb(""))
	if err != nil {
		return err
	}
	named := map[string]bool{}
	for _, e := range records {
		if strings.HasSuffix(e.Name(), "-incomplete") {
			if err := os.RemoveAll(s.mountdb(e.Name())); err != nil {
				return err
			}
			continue // its directories are named by no record now: below
		}
		if b, err := os.ReadFile(filepath.Join(s.mountdb(e.Name()), "mount-id")); err == nil {
			named[strings.TrimSpace(string(b))] = true
		}
	}
	dirs, err := os.ReadDir(filepath.Join(s.Root, "overlay2"))
	if err != nil {
		return err
	}
	isDir := func(p string) bool { fi, err := os.Stat(p); return err == nil && fi.IsDir() }
	for _, d := range dirs {
		id := strings.TrimSuffix(d.Name(), "-init")
		if named[id] || strings.HasSuffix(d.Name(), "-incomplete") {
			continue
		}
		if id != d.Name() || isDir(filepath.Join(s.driverDir(id), "work")) || isDir(filepath.Join(s.driverDir(id), "merged")) {
			_ = Unmount(filepath.Join(s.driverDir(id), "merged"), s.Trace)
			for _, p := range []string{s.driverDir(id), s.driverDir(id + "-init")} {
				if err := os.RemoveAll(p); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Commit turns a container's read-write layer (not its init layer) into a
// new layer on top of its image's, and records an image name made of the
// image's layers plus that one, as `docker commit` does.
func (s *Store) Commit(id, name string, cfg ImageConfig) (Image, Layer, error) {
	r, err := s.ContainerRoot(id)
	if err != nil {
		return Image{}, Layer{}, err
	}
	var diffIDs []string
	if r.Parent != "" {
		stack, err := s.Stack(r.Parent)
		if err != nil {
			return Image{}, Layer{}, err
		}
		for _, l := range stack {
			diffIDs = append(diffIDs, l.DiffID)
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(WriteLayerTar(pw, r.Upper)) }()
	l, err := s.Add(r.Parent, pr)
	pr.CloseWithError(errors.New("commit stopped"))
	if err != nil {
		return Image{}, Layer{}, fmt.Errorf("commit %s: %w", id, err)
	}
	img, err := s.PutImage(name, append(diffIDs, l.DiffID), cfg)
	return img, l, err
}

// ImportOptions say which names an import records.
type ImportOptions struct {
	Name  string // the name of the (first) image; "" for none
	Force bool   // let it repoint names that already name another image
}

// ErrNameInUse is wrapped by the error of an import that would repoint a
// name at another image without ImportOptions.Force. An archive's
// RepoTags once repointed workshop-default, the image every `run` without
// an IMAGE starts, at the archive's: an import adds names, it does not
// take them over unless asked to.
var ErrNameInUse = errors.New("the name is in use")

// claim checks that the import may point name at the image id (id "": an
// image not made yet, hence different from any). claimed holds the names
// this import already gave, so that an archive cannot give one twice.
func (s *Store) claim(repos, claimed map[string]string, name, id string, force bool) error {
	if name == "" || strings.ContainsAny(name, " \t\n") {
		return fmt.Errorf("invalid image name %q", name)
	}
	full := fullName(name)
	if cur, ok := claimed[full]; ok && (cur != id || id == "") {
		return fmt.Errorf("the archive gives the name %s to two images", full)
	}
	claimed[full] = id
	if cur, ok := repos[full]; ok && (cur != id || id == "") && !force {
		return fmt.Errorf("%w: %s already names the image %s", ErrNameInUse, full, shortID(cur))
	}
	return nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, digestPrefix)
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ImportTar makes a one-layer image from a root filesystem tar, such as
// `docker export` writes (gzip-compressed or not), named opt.Name.
func (s *Store) ImportTar(r io.Reader, cfg ImageConfig, opt ImportOptions) (Image, error) {
	repos, err := s.repositories()
	if err != nil {
		return Image{}, err
	}
	if err := s.claim(repos, map[string]string{}, opt.Name, "", opt.Force); err != nil {
		return Image{}, err
	}
	rd, err := maybeGunzip(r)
	if err != nil {
		return Image{}, err
	}
	l, err := s.Add("", rd)
	if err != nil {
		return Image{}, fmt.Errorf("import %s: %w", opt.Name, err)
	}
	return s.PutImage(opt.Name, []string{l.DiffID}, cfg)
}

func maybeGunzip(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return gzip.NewReader(br)
	}
	return br, nil
}

// maxJSON bounds what is read of manifest.json and of an image config:
// Docker's are a few kilobytes.
const maxJSON = 8 << 20

// ImportSave loads the images of a `docker save` archive (the classic
// layout with <id>/layer.tar and the OCI layout with blobs/sha256/, both
// described by manifest.json), checking every layer's diffID against its
// image config. The first image is named opt.Name, and each image gets
// the names its RepoTags list, as `docker load` does; but without
// opt.Force no name that names another image is repointed: the import is
// refused, and records nothing.
// It returns the images it recorded.
//
// Every name the archive gives (manifest.json's Config and Layers, and
// the links among its files) must lead to a regular file inside the
// archive: a path out of it is refused, and a FIFO or a device node is
// never opened (reading /dev/zero never ends, a FIFO never answers).
func (s *Store) ImportSave(r io.Reader, opt ImportOptions) ([]Image, error) {
	done, err := s.working()
	if err != nil {
		return nil, err
	}
	defer done()
	tmp, err := os.MkdirTemp(s.Root, "import-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	rd, err := maybeGunzip(r)
	if err != nil {
		return nil, err
	}
	// The archive itself is a tar: unpack it with the same escape checks.
	if err := FlattenLayerTar(rd, tmp); err != nil {
		return nil, fmt.Errorf("unpack the archive: %w", err)
	}
	dir, err := os.Open(tmp)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	readJSON := func(name string, v any) ([]byte, error) {
		f, err := openBeneath(dir, name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxJSON+1))
		if err != nil {
			return nil, err
		}
		if len(b) > maxJSON {
			return nil, fmt.Errorf("%s is over %d MiB: not a `docker save` archive's", name, maxJSON>>20)
		}
		if err := json.Unmarshal(b, v); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return b, nil
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if _, err := readJSON("manifest.json", &manifest); err != nil {
		return nil, fmt.Errorf("not a `docker save` archive: %w", err)
	}
	// Read every config and check every name before any layer is added:
	// a refused import records nothing.
	type image struct {
		config  []byte
		diffIDs []string
		layers  []string
		names   []string
	}
	var plan []image
	repos, err := s.repositories()
	if err != nil {
		return nil, err
	}
	claimed := map[string]string{}
	for i, m := range manifest {
		var f imageFile
		config, err := readJSON(m.Config, &f)
		if err != nil {
			return nil, fmt.Errorf("image config: %w", err)
		}
		if len(f.RootFS.DiffIDs) != len(m.Layers) {
			return nil, fmt.Errorf("image config %s lists %d layers, manifest.json %d", m.Config, len(f.RootFS.DiffIDs), len(m.Layers))
		}
		names := append([]string{}, m.RepoTags...)
		if i == 0 && opt.Name != "" {
			names = append([]string{opt.Name}, names...)
		}
		for _, n := range names {
			if err := s.claim(repos, claimed, n, Digest(config), opt.Force); err != nil {
				return nil, err
			}
		}
		plan = append(plan, image{config, f.RootFS.DiffIDs, m.Layers, names})
	}
	var out []Image
	for _, p := range plan {
		parent := ""
		for i, lp := range p.layers {
			l, err := s.addFrom(dir, lp, parent)
			if err != nil {
				return nil, err
			}
			if l.DiffID != p.diffIDs[i] {
				return nil, fmt.Errorf("layer %s has diffID %s but the image config says %s: the archive is damaged", lp, l.DiffID, p.diffIDs[i])
			}
			parent = l.ChainID
		}
		// Keep Docker's own config bytes: then the image ID is the same as
		// `docker images` showed on the machine that saved it.
		img, err := s.putImageConfig("", p.config)
		if err != nil {
			return nil, err
		}
		for _, n := range p.names {
			if err := s.Tag(n, img.ID); err != nil {
				return nil, err
			}
		}
		if img, err = s.Image(img.ID); err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// addFrom adds the layer tar name of the unpacked archive dir.
func (s *Store) addFrom(dir *os.File, name, parent string) (Layer, error) {
	f, err := openBeneath(dir, name)
	if err != nil {
		return Layer{}, err
	}
	defer f.Close()
	r, err := maybeGunzip(f)
	if err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", name, err)
	}
	l, err := s.Add(parent, r)
	if err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", name, err)
	}
	return l, nil
}
