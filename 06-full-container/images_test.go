package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/testkit"
)

// Hostile images and archives (issue 15): each test feeds the input an
// attacker would, and passes only because it is refused in one line with
// nothing outside the runtime's own files changed.

// ownRoot is a --root of the test's own, for attacks that, if they worked,
// would damage the store (the shared one must survive a failing test), or
// whose result is looked for in the whole store. run runs the stage with it.
func ownRoot(t *testing.T) (root string, run func(args ...string) testkit.Result) {
	t.Helper()
	root = t.TempDir()
	bin := testkit.Stage(t, "06-full-container")
	run = func(args ...string) testkit.Result {
		t.Helper()
		return testkit.Run(t, opts{}, bin, append([]string{"--root", root}, args...)...)
	}
	return root, run
}

// bystander starts a container in root that an attack must not disturb,
// and removes it when the test ends.
func bystander(t *testing.T, run func(args ...string) testkit.Result) {
	t.Helper()
	if r := run("run", "-d", "--name", "bystander", "--", "sleep", "100"); r.Code != 0 {
		t.Fatalf("run -d bystander:\n%s", r)
	}
	t.Cleanup(func() { run("rm", "-f", "bystander") })
}

// storeIntact checks that the store holds what it did (before, a treeHash
// of it) and that the bystander still runs on its layers.
func storeIntact(t *testing.T, root, before string, run func(args ...string) testkit.Result) {
	t.Helper()
	if after := treeHash(t, filepath.Join(root, "images")); after != before {
		t.Errorf("the image store changed")
	}
	if r := run("images"); !strings.Contains(r.Stdout, "workshop-default") {
		t.Errorf("the default image is gone:\n%s", r)
	}
	if r := run("exec", "bystander", "--", "cat", "/etc/motd"); r.Code != 0 || !strings.Contains(r.Stdout, "workshop") {
		t.Errorf("the running container lost its layers:\n%s", r)
	}
	leftovers(t, root)
}

// leftovers fails the test for any unpacking directory left in the store.
func leftovers(t *testing.T, root string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(root, "images"))
	for _, e := range ents {
		switch e.Name() {
		case "image", "overlay2", "containers", exeLowerDir:
			// the store, detached containers' logs, the sealed program's empty layer
		default:
			t.Errorf("left in the store's root: %s", e.Name())
		}
	}
	ents, _ = os.ReadDir(filepath.Join(root, "images", "overlay2"))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), "-incomplete") {
			t.Errorf("left in the store's overlay2/: %s", e.Name())
		}
	}
}

// ".wh..." is a whiteout of "..". In a `docker save` archive, whose top
// level is unpacked in a directory of the store's root, it once meant
// RemoveAll(<store root>): every image, every layer, and the running
// containers' layers, with only "manifest.json lists no image" printed.
func TestWhiteoutOfDotDotInSaveArchiveLeavesTheStore(t *testing.T) {
	setup(t)
	root, run := ownRoot(t)
	bystander(t, run)
	before := treeHash(t, filepath.Join(root, "images"))
	evil := filepath.Join(t.TempDir(), "evil.tar")
	writeTar(t, evil, []tarEntry{{".wh...", nil, 0o644, ""}, {"manifest.json", []byte("[]"), 0o644, ""}})
	r := run("import", evil, "evil")
	storeIntact(t, root, before, run)
	oneLine(t, r, `".wh..." is a whiteout of ".."`)
}

// secretFile writes a random secret into a file of the host's, readable by
// root only: what a leak would carry, and unmistakable wherever it lands.
func secretFile(t *testing.T) (dir, secret string) {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	dir, secret = t.TempDir(), "host-secret-"+hex.EncodeToString(b)
	for _, name := range []string{"secret", "f"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, secret
}

// findInStore returns the store's files (and their layers) holding secret.
func findInStore(t *testing.T, root, secret string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(filepath.Join(root, "images"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secret)) {
				found = append(found, p)
			}
		}
		return nil
	})
	return found
}

// swap.c: /a (a file) trades places with /b (a link to the host's secret
// file), and /d (a directory) with /e (a link to the host's directory), as
// fast as the CPU allows: a runtime that lstat()s a name, then open()s it,
// opens the host's file whenever a swap falls in between.
const swapC = `#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static void decoy(const char *p) {
	int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "decoy\n", 6) != 6) { perror(p); _exit(1); }
	close(fd);
}

static void swap(const char *x, const char *y) {
	if (syscall(SYS_renameat2, AT_FDCWD, x, AT_FDCWD, y, RENAME_EXCHANGE) != 0) { perror("renameat2"); _exit(1); }
}

int main(int argc, char **argv) {
	if (argc != 3) { fprintf(stderr, "usage: swap HOSTFILE HOSTDIR\n"); return 2; }
	decoy("/a");
	mkdir("/d", 0755);
	decoy("/d/f");
	if (symlink(argv[1], "/b") || symlink(argv[2], "/e")) { perror("symlink"); return 1; }
	puts("swapping");
	fflush(stdout);
	for (;;) { swap("/a", "/b"); swap("/d", "/e"); }
}
`

// A running container swaps files with links to the host's files while it
// is committed, again and again for two seconds: no committed layer may
// hold the host's secret (the commit once read /etc/shadow this way).
func TestCommitOfASwappingContainerNeverReadsHostFiles(t *testing.T) {
	setup(t)
	root, run := ownRoot(t)
	swap := cprog(t, t.TempDir(), "swap", swapC)
	host, secret := secretFile(t)
	if r := run("run", "-d", "--name", "swapper", "-v", filepath.Dir(swap)+":/t:ro", "--", "/t/swap", filepath.Join(host, "secret"), host); r.Code != 0 {
		t.Fatalf("run -d swapper:\n%s", r)
	}
	t.Cleanup(func() { run("rm", "-f", "swapper") })
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(run("logs", "swapper").Stdout, "swapping"); {
		if time.Now().After(deadline) {
			t.Fatalf("the swapper did not start:\n%s", run("logs", "swapper"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	commits := 0
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		if r := run("commit", "swapper", "swapped"); r.Code == 0 {
			commits++
		}
	}
	if l := run("logs", "swapper"); strings.Contains(l.Stdout+l.Stderr, "renameat2") {
		t.Fatalf("the swapper stopped swapping (the test would prove nothing):\n%s", l)
	}
	// Removed before the store is searched: a search of its live read-write
	// layer would race with the swaps just as a naive commit does.
	if r := run("rm", "-f", "swapper"); r.Code != 0 {
		t.Fatalf("rm -f swapper:\n%s", r)
	}
	if found := findInStore(t, root, secret); len(found) > 0 {
		t.Fatalf("%d commits; the host's secret is in the store: %s", commits, strings.Join(found, ", "))
	}
	if commits < 10 {
		t.Errorf("only %d commits succeeded in 2 s", commits)
	}
}

// saveArchive writes a `docker save` archive of one image, one layer
// holding /etc/flavour, named by repoTags.
func saveArchive(t *testing.T, path, flavour string, repoTags ...string) {
	t.Helper()
	var layer bytes.Buffer
	tarTo(t, &layer, []tarEntry{{"etc/flavour", []byte(flavour + "\n"), 0o644, ""}})
	cfg := fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[%q]}}`, digest(layer.Bytes()))
	manifest, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": repoTags, "Layers": []string{"l1/layer.tar"}}})
	writeTar(t, path, []tarEntry{{"manifest.json", manifest, 0o644, ""}, {"config.json", []byte(cfg), 0o644, ""}, {"l1/layer.tar", layer.Bytes(), 0o644, ""}})
}

// imageID is the IMAGE ID `images` shows for name ("" if none).
func imageID(t *testing.T, run func(args ...string) testkit.Result, name string) string {
	t.Helper()
	for _, l := range strings.Split(run("images").Stdout, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == name {
			return f[2]
		}
	}
	return ""
}

// An archive's RepoTags once repointed any name, the runtime's default
// image's included: every later `run` without an IMAGE ran the archive's
// root. An import adds names; repointing one takes --force, and the
// refusal records nothing.
func TestImportDoesNotRepointNamesWithoutForce(t *testing.T) {
	setup(t)
	root, run := ownRoot(t)
	if r := run("run", "--", "true"); r.Code != 0 {
		t.Fatalf("run (building the default image):\n%s", r)
	}
	def := imageID(t, run, "workshop-default")
	dir := t.TempDir()
	evil, export := filepath.Join(dir, "evil.tar"), filepath.Join(dir, "export.tar")
	saveArchive(t, evil, "evil", "workshop-default:latest", "evil-extra:latest")
	writeTar(t, export, []tarEntry{{"etc/flavour", []byte("exported\n"), 0o644, ""}})
	before := treeHash(t, filepath.Join(root, "images"))
	oneLine(t, run("import", evil, "innocent"), "workshop-default:latest already names the image "+def+": pass --force")
	oneLine(t, run("import", export, "workshop-default"), "pass --force")
	if after := treeHash(t, filepath.Join(root, "images")); after != before {
		t.Errorf("a refused import changed the store")
	}
	if got := imageID(t, run, "workshop-default"); got != def {
		t.Fatalf("workshop-default is now %s, was %s", got, def)
	}
	if r := run("run", "--", "cat", "/etc/motd"); !strings.Contains(r.Stdout, "workshop") {
		t.Fatalf("run without an IMAGE no longer runs the default image:\n%s", r)
	}
	// Names the archive gives to nobody else are recorded, and said.
	saveArchive(t, evil, "kind", "kind-extra:1")
	if r := run("import", evil, "kind"); r.Code != 0 || !strings.HasSuffix(r.Stdout, " kind-extra:1 kind:latest\n") {
		t.Fatalf("import of an archive naming a free name:\n%s", r)
	}
	// --force repoints, as asked.
	saveArchive(t, evil, "evil", "workshop-default:latest")
	if r := run("import", "--force", evil, "evil"); r.Code != 0 || !strings.Contains(r.Stdout, "workshop-default:latest") {
		t.Fatalf("import --force:\n%s", r)
	}
	if got := imageID(t, run, "workshop-default"); got == def {
		t.Fatalf("import --force did not repoint workshop-default")
	}
}

// rawTar writes a tar of headers, each regular file followed by its body.
func rawTar(t *testing.T, path string, hdrs []*tar.Header, bodies map[string][]byte) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hdrs {
		h.Size = int64(len(bodies[h.Name]))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(bodies[h.Name])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// An archive chooses what its names are: manifest.json, the config or a
// layer as a FIFO (the import blocked forever), as a node for /dev/zero
// (100% CPU, forever), or as a link out of the archive. Each is refused
// in one line, at once, and leaves nothing.
func TestImportRefusesFIFOsDevicesAndLinksOut(t *testing.T) {
	setup(t)
	root, _ := ownRoot(t)
	dir := t.TempDir()
	manifest := []byte(`[{"Config":"config.json","RepoTags":[],"Layers":["layer.tar"]}]`)
	config := []byte(`{"rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}`)
	reg := func(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg} }
	fifo := func(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeFifo} }
	zero := func(name string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 5}
	}
	link := func(name, to string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: to}
	}
	bodies := map[string][]byte{"manifest.json": manifest, "config.json": config}
	for _, tc := range []struct {
		what string
		hdrs []*tar.Header
		want string
	}{
		{"manifest.json a FIFO", []*tar.Header{fifo("manifest.json")}, "manifest.json is a FIFO, not a regular file"},
		{"manifest.json /dev/zero", []*tar.Header{zero("manifest.json")}, "manifest.json is a character device, not a regular file"},
		{"config a FIFO", []*tar.Header{reg("manifest.json"), fifo("config.json")}, "config.json is a FIFO"},
		{"layer /dev/zero", []*tar.Header{reg("manifest.json"), reg("config.json"), zero("layer.tar")}, "layer.tar is a character device"},
		{"layer a link to /dev/zero", []*tar.Header{reg("manifest.json"), reg("config.json"), link("layer.tar", "/dev/zero")}, "layer.tar leads outside the archive"},
		{"config a link up", []*tar.Header{reg("manifest.json"), link("config.json", "../../../../../../etc/shadow")}, "config.json leads outside the archive"},
		{"layer through a link up", []*tar.Header{reg("manifest.json"), reg("config.json"), link("up", "../../../../../..")}, ""},
	} {
		if tc.want == "" { // the layer named through a link out of the archive
			bodies["manifest.json"] = []byte(`[{"Config":"config.json","RepoTags":[],"Layers":["up/dev/zero"]}]`)
			tc.want = "up/dev/zero leads outside the archive"
		}
		p := filepath.Join(dir, "hostile.tar")
		rawTar(t, p, tc.hdrs, bodies)
		start := time.Now()
		r := testkit.Run(t, opts{Timeout: 5 * time.Second}, testkit.Stage(t, "06-full-container"), "--root", root, "import", p, "hostile")
		if time.Since(start) > 3*time.Second {
			t.Errorf("%s: the import took %v", tc.what, time.Since(start))
		}
		oneLine(t, r, tc.want)
		leftovers(t, root)
	}
}

// An import killed half way (here: reading a `docker save` archive that
// never ends, from a FIFO) once left its unpacking directory in the store
// for good. The next command removes what a dead import left.
func TestKilledImportIsCleanedByTheNextCommand(t *testing.T) {
	setup(t)
	root, run := ownRoot(t)
	fifo := filepath.Join(t.TempDir(), "in.tar.gz")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testkit.Stage(t, "06-full-container"), "--root", root, "import", fifo, "never")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()
	// The import opens the file twice: once to tell a `docker save` archive
	// from an export tar (it reads up to manifest.json), then to import it.
	// Our end stays open throughout: the first look gets a gzip'd tar
	// starting with manifest.json, in one write (under the pipe's 4 KiB,
	// so that the look reads all of it), and the import proper gets nothing
	// more: it waits, with its unpacking directory made.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	tw := tar.NewWriter(zw)
	manifest := []byte(`[{"Config":"config.json","RepoTags":[],"Layers":["layer.tar"]}]`)
	tw.WriteHeader(&tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(manifest))})
	tw.Write(manifest)
	tw.Flush()
	zw.Flush()
	var w *os.File
	for w == nil { // non-blocking: ENXIO until the import opens it for reading
		if fd, err := unix.Open(fifo, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
			w = os.NewFile(uintptr(fd), fifo)
			defer w.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("the import ended before reading the archive: %s", stderr.String())
		case <-time.After(time.Millisecond):
		}
	}
	if _, err := w.Write(gz.Bytes()); err != nil {
		t.Fatal(err)
	}
	staged := func() bool {
		names, _ := os.ReadDir(filepath.Join(root, "images"))
		return len(names) > 2
	}
	for deadline := time.Now().Add(5 * time.Second); !staged(); time.Sleep(time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("the import ended: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the import staged nothing in the store's root")
		}
	}
	// Killed while it works, without mercy.
	cmd.Process.Kill()
	<-exited
	if r := run("images"); r.Code != 0 {
		t.Fatalf("images:\n%s", r)
	}
	leftovers(t, root)
}

// busyboxSave writes a `docker save` archive of one image named by
// repoTags: one layer, busybox alone (sh, true, sleep). One image with
// several names: two imports of one root would be two images whenever a
// second passes between them (the config records its creation time).
func busyboxSave(t *testing.T, path string, repoTags ...string) {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testkit.Unavailable(t, "busybox is needed for an image: apt-get install busybox-static")
	}
	entries := []tarEntry{{name: "bin/busybox", mode: 0o755, data: bb}}
	for _, app := range []string{"sh", "true", "sleep"} {
		entries = append(entries, tarEntry{name: "bin/" + app, link: "busybox"})
	}
	var layer bytes.Buffer
	tarTo(t, &layer, entries)
	cfg := fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[%q]}}`, digest(layer.Bytes()))
	manifest, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": repoTags, "Layers": []string{"l1/layer.tar"}}})
	writeTar(t, path, []tarEntry{{"manifest.json", manifest, 0o644, ""}, {"config.json", []byte(cfg), 0o644, ""}, {"l1/layer.tar", layer.Bytes(), 0o644, ""}})
}

// `rmi` removes a name, then an image, then the layers no other image or
// container stands on, and the chowned copies `run --userns` made of
// them; an image a container uses stays.
func TestRmiRemovesWhatNoOneElseUses(t *testing.T) {
	setup(t)
	root, run := ownRoot(t)
	for _, d := range []string{root, filepath.Dir(root)} { // the container's root passes through (userns)
		os.Chmod(d, 0o711)
	}
	layerDirs := func() int {
		ents, _ := os.ReadDir(filepath.Join(root, "images", "overlay2"))
		return len(ents)
	}
	copies := func() []string {
		c, _ := filepath.Glob(filepath.Join(root, "images", "userns", "*", "*"))
		return c
	}
	if r := run("run", "--net", "none", "--", "true"); r.Code != 0 { // the default image
		t.Fatalf("run:\n%s", r)
	}
	tarPath := filepath.Join(t.TempDir(), "bb.tar")
	busyboxSave(t, tarPath, "bb:latest", "bb2:v1")
	if r := run("import", tarPath, "bb"); r.Code != 0 || imageID(t, run, "bb") != imageID(t, run, "bb2") {
		t.Fatalf("import: want one image named bb and bb2:v1:\n%s\n%s", r, run("images"))
	}
	base := layerDirs()

	// A name of an image that has another goes alone.
	if r := run("rmi", "bb"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "Untagged: bb:latest" {
		t.Fatalf("rmi bb: want only the name removed:\n%s", r)
	}
	if imageID(t, run, "bb2") == "" || layerDirs() != base {
		t.Fatalf("rmi of one name removed the image or a layer:\n%s", run("images"))
	}

	// An image a container uses stays, stopped or running.
	if r := run("run", "-d", "--name", "user", "--net", "none", "bb2:v1", "--", "sleep", "100"); r.Code != 0 {
		t.Fatalf("run -d:\n%s", r)
	}
	t.Cleanup(func() { run("rm", "-f", "user") })
	oneLine(t, run("rmi", "bb2:v1"), "container user uses the image")
	if imageID(t, run, "bb2") == "" {
		t.Fatal("the refused rmi removed the image")
	}
	run("rm", "-f", "user")

	// Chowned copies of its layer, then the image goes: its layer and its
	// copies with it, the default image's stay.
	r := testkit.Run(t, opts{Env: []string{"WORKSHOP_USERNS_COPY=1"}}, testkit.Stage(t, "06-full-container"),
		"--root", root, "run", "--userns", "--net", "none", "bb2:v1", "--", "true")
	if r.Code != 0 {
		t.Fatalf("run --userns:\n%s", r)
	}
	before := copies()
	if len(before) != 1 {
		t.Fatalf("want one chowned copy (the image's one layer), got %v", before)
	}
	r = run("rmi", "bb2:v1")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Untagged: bb2:v1\nDeleted: sha256:") || strings.Count(r.Stdout, "Deleted:") != 2 {
		t.Fatalf("rmi bb2:v1: want the name, the image and its one layer deleted:\n%s", r)
	}
	if layerDirs() != base-1 || len(copies()) != 0 {
		t.Fatalf("rmi left %d layer directories (want %d) and copies %v", layerDirs(), base-1, copies())
	}
	if r := run("run", "--net", "none", "--", "cat", "/etc/motd"); r.Code != 0 || !strings.Contains(r.Stdout, "workshop") {
		t.Fatalf("the default image lost a layer:\n%s", r)
	}
	oneLine(t, run("rmi", "bb2:v1"), "unknown image")

	// The last image: nothing of any layer is left.
	if r := run("rmi", "workshop-default"); r.Code != 0 || strings.Count(r.Stdout, "Deleted:") != 3 {
		t.Fatalf("rmi workshop-default:\n%s", r)
	}
	if l, _ := filepath.Glob(filepath.Join(root, "images", "image", "overlay2", "layerdb", "sha256", "*")); len(l) != 0 || layerDirs() != base-3 {
		t.Fatalf("layers left: records %v, %d directories", l, layerDirs())
	}
	leftovers(t, root)
}

// commit freezes a running container while it reads its layer (as docker
// commit does): the layer is the files as of one instant. The container
// appends a counter to /a, then to /z, with 64 MB between them in the
// tar's order: read unfrozen, /z is thousands ahead of /a; frozen, /a is
// the same or one ahead. After the commit it runs on.
func TestCommitPausesTheContainerWhileItReads(t *testing.T) {
	setup(t)
	_, run := ownRoot(t)
	if r := run("run", "-d", "--name", "writer", "--net", "none", "--", "sh", "-c",
		"dd if=/dev/zero of=/m-big bs=1M count=64 2>/dev/null; i=0; while :; do i=$((i+1)); echo $i >> /a; echo $i >> /z; done"); r.Code != 0 {
		t.Fatalf("run -d:\n%s", r)
	}
	defer run("rm", "-f", "writer")
	last := func(image string) (a, z int) {
		t.Helper()
		r := run("run", "--net", "none", image, "--", "sh", "-c", "tail -n1 /a; tail -n1 /z")
		if _, err := fmt.Sscan(r.Stdout, &a, &z); err != nil || r.Code != 0 {
			t.Fatalf("reading the counters of %s: %v\n%s", image, err, r)
		}
		return a, z
	}
	counter := func() int {
		t.Helper()
		var n int
		r := run("exec", "writer", "--", "tail", "-n1", "/z")
		fmt.Sscan(r.Stdout, &n)
		return n
	}
	for deadline := time.Now().Add(60 * time.Second); counter() == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the writer never wrote")
		}
	}
	for i := 0; i < 3; i++ {
		if r := run("commit", "writer", "snap"); r.Code != 0 {
			t.Fatalf("commit:\n%s", r)
		}
		if a, z := last("snap"); a-z != 0 && a-z != 1 {
			t.Fatalf("commit %d: /a says %d and /z %d: the layer was read while the container wrote", i, a, z)
		}
		if r := run("rmi", "snap"); r.Code != 0 {
			t.Fatalf("rmi:\n%s", r)
		}
	}
	if before := counter(); counter() <= before {
		t.Fatal("the container did not run on after the commit")
	}
}
