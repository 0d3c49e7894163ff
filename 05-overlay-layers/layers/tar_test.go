package layers

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/testkit"
)

// A container that adds, changes and deletes files (a whole directory too)
// is committed: its upper directory becomes a layer tar. Applying the image's
// layer tars in fresh directories must give back the merged view, file for
// file: flattened into one plain directory, and as overlay lower layers.
func TestCommitThenApplyReproducesMergedView(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	base := t.TempDir()
	image := filepath.Join(base, "image")
	write(t, image, map[string]string{
		"etc/conf":        "v1\n",
		"etc/keep":        "kept\n",
		"bin/tool":        "#!/bin/sh\n",
		"data/dir1/f1":    "1",
		"data/dir1/sub/2": "2",
		"data/other":      "o",
		"cache/a":         "a",
		"cache/b":         "b",
		"old":             "to delete",
	})
	os.Chmod(filepath.Join(image, "bin/tool"), 0o755)
	os.Symlink("etc/conf", filepath.Join(image, "conf-link"))
	layer1 := tarOf(t, image)

	// The image as an overlay lower layer, unpacked from its tar.
	lower := filepath.Join(base, "lower1")
	if err := ApplyLayerTar(bytes.NewReader(layer1), lower); err != nil {
		t.Fatal(err)
	}
	upper, work, merged := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	mkdirs(t, upper, work, merged)
	mountOverlay(t, merged, []string{lower}, upper, work)

	// The container's changes.
	write(t, merged, map[string]string{"etc/conf": "v2\n", "new/file": "added\n", "cache/new": "fresh"})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Remove(filepath.Join(merged, "old")))
	must(os.RemoveAll(filepath.Join(merged, "data/dir1")))
	must(os.RemoveAll(filepath.Join(merged, "cache")))
	write(t, merged, map[string]string{"cache/new": "fresh"})
	must(os.Chmod(filepath.Join(merged, "etc/keep"), 0o600))
	must(os.Lchown(filepath.Join(merged, "new/file"), 1000, 1000))
	must(os.Symlink("/proc/self", filepath.Join(merged, "new/abs-link")))
	must(os.Link(filepath.Join(merged, "new/file"), filepath.Join(merged, "new/hardlink")))
	want := tree(t, merged)
	must(Unmount(merged, nil))

	// Commit: the upper directory as a layer tar, with OCI whiteouts.
	layer2 := tarOf(t, upper)
	names := tarNames(t, layer2)
	for _, w := range []string{".wh.old", "data/.wh.dir1", "cache/.wh..wh..opq"} {
		if !names[w] {
			t.Errorf("the committed tar lacks %s; it has %v", w, names)
		}
	}
	if !bytes.Equal(layer2, tarOf(t, upper)) {
		t.Errorf("two tars of the same directory differ: the diffID would not be reproducible")
	}

	// 1. Flattened into one plain directory: deletions applied.
	flat := filepath.Join(base, "flat")
	must(FlattenLayerTar(bytes.NewReader(layer1), flat))
	must(FlattenLayerTar(bytes.NewReader(layer2), flat))
	if got := tree(t, flat); got != want {
		t.Errorf("flattened layers differ from the merged view:\n--- merged ---\n%s\n--- flattened ---\n%s", want, got)
	}

	// 2. As two fresh overlay layers, mounted read-only.
	l1, l2, m2 := filepath.Join(base, "l1"), filepath.Join(base, "l2"), filepath.Join(base, "m2")
	must(ApplyLayerTar(bytes.NewReader(layer1), l1))
	must(ApplyLayerTar(bytes.NewReader(layer2), l2))
	if !IsWhiteout(filepath.Join(l2, "old")) || !IsOpaque(filepath.Join(l2, "cache")) {
		t.Errorf("applied layer lacks the overlay whiteout of old or the opaque cache/")
	}
	mkdirs(t, m2)
	mountOverlay(t, m2, []string{l1, l2}, "", "")
	if got := tree(t, m2); got != want {
		t.Errorf("re-mounted layers differ from the merged view:\n--- merged ---\n%s\n--- re-mounted ---\n%s", want, got)
	}
}

func tarNames(t *testing.T, b []byte) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names[strings.TrimSuffix(h.Name, "/")] = true
	}
	return names
}

type entry struct {
	name, link string
	kind       byte
	body       string
}

func buildTar(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.kind, Mode: 0o644, Size: int64(len(e.body))}
		if e.kind != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return buf.Bytes()
}

// Each malicious tar tries to write (or delete) outside the target
// directory, or the target itself; each must be refused, and outside must
// stay as it was.
func TestMaliciousTarsAreRejectedAndWriteNothingOutside(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	sandbox := t.TempDir()
	outside := filepath.Join(sandbox, "outside")
	write(t, outside, map[string]string{"secret": "untouched"})
	cases := map[string][]entry{
		"dot-dot":           {{name: "../pwned", kind: tar.TypeReg, body: "x"}},
		"deep dot-dot":      {{name: "a/../../pwned", kind: tar.TypeReg, body: "x"}},
		"absolute":          {{name: filepath.Join(outside, "pwned"), kind: tar.TypeReg, body: "x"}},
		"symlink then file": {{name: "link", link: outside, kind: tar.TypeSymlink}, {name: "link/pwned", kind: tar.TypeReg, body: "x"}},
		"relative symlink":  {{name: "up", link: "../outside", kind: tar.TypeSymlink}, {name: "up/pwned", kind: tar.TypeReg, body: "x"}},
		"symlink whiteout":  {{name: "link", link: outside, kind: tar.TypeSymlink}, {name: "link/.wh.secret", kind: tar.TypeReg}},
		"hardlink out":      {{name: "h", link: "../outside/secret", kind: tar.TypeLink}},
		"hardlink absolute": {{name: "h", link: filepath.Join(outside, "secret"), kind: tar.TypeLink}},
		"hardlink via link": {{name: "link", link: outside, kind: tar.TypeSymlink}, {name: "h", link: "link/secret", kind: tar.TypeLink}},
		// A whiteout hides one name of its directory: ".wh..." named "..",
		// the directory above the layer (RemoveAll of the whole sandbox).
		"whiteout of ..":      {{name: ".wh...", kind: tar.TypeReg}},
		"deep whiteout of ..": {{name: "a/", kind: tar.TypeDir}, {name: "a/.wh...", kind: tar.TypeReg}},
		"whiteout of .":       {{name: ".wh..", kind: tar.TypeReg}},
		"whiteout of nothing": {{name: "a/.wh.", kind: tar.TypeReg}},
	}
	before := tree(t, sandbox)
	for name, entries := range cases {
		tarball := buildTar(t, entries...)
		for _, flatten := range []bool{false, true} {
			target := filepath.Join(sandbox, "target")
			err := apply(bytes.NewReader(tarball), target, flatten)
			if !errors.Is(err, ErrUnsafeEntry) {
				t.Errorf("%s (flatten=%v): error %v, want ErrUnsafeEntry", name, flatten, err)
			}
			os.RemoveAll(target)
			if got := tree(t, sandbox); got != before {
				t.Errorf("%s (flatten=%v) changed things outside the target:\n%s", name, flatten, got)
			}
		}
	}
}

// testdata/oci-layer.tar was made by GNU tar from files named the OCI way
// (.wh.gone, usr/bin/.wh.oldtool, etc/app/.wh..wh..opq): an archive this
// package did not write.
func TestGNUTarLayerBecomesOverlayWhiteouts(t *testing.T) {
	testkit.RequireRoot(t)
	f, err := os.Open("testdata/oci-layer.tar")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	if err := ApplyLayerTar(f, dir); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"gone", "usr/bin/oldtool"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, w), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s: not a 0/0 character device (mode %o, rdev %d, %v)", w, st.Mode, st.Rdev, err)
		}
	}
	if !IsOpaque(filepath.Join(dir, "etc/app")) {
		t.Errorf("etc/app lacks %s=y", OpaqueXattr)
	}
	if got := read(t, filepath.Join(dir, "etc/motd")); got != "hello from a layer made by GNU tar\n" {
		t.Errorf("etc/motd = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(dir, ".wh.gone")); !os.IsNotExist(err) {
		t.Errorf("the .wh. file itself was written")
	}
}

func TestFlattenDeletesWhatWhiteoutsName(t *testing.T) {
	testkit.RequireRoot(t)
	dir := t.TempDir()
	write(t, dir, map[string]string{"gone": "g", "usr/bin/oldtool": "o", "usr/bin/stays": "s", "etc/app/old": "o"})
	f, err := os.Open("testdata/oci-layer.tar")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := FlattenLayerTar(f, dir); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"gone", "usr/bin/oldtool", "etc/app/old"} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("%s survived its whiteout", gone)
		}
	}
	for _, stays := range []string{"usr/bin/stays", "etc/app/config", "usr/motd-link"} {
		if _, err := os.Lstat(filepath.Join(dir, stays)); err != nil {
			t.Errorf("%s: %v", stays, err)
		}
	}
}

// The diffID is the sha256 of the tar file, byte for byte: the same number
// the sha256sum command prints.
func TestDiffIDEqualsSha256sumOfTheFile(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"etc/hostname": "ctr\n", "bin/sh": "#!"})
	p := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(p, tarOf(t, dir), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{p, "testdata/oci-layer.tar"} {
		out, err := exec.Command("sha256sum", file).Output()
		if err != nil {
			t.Fatalf("sha256sum: %v", err)
		}
		f, _ := os.Open(file)
		got, err := DiffID(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := "sha256:" + strings.Fields(string(out))[0]; got != want {
			t.Errorf("DiffID(%s) = %s, sha256sum says %s", file, got, want)
		}
	}
}

// A container being committed swaps a file with a symbolic link to a host
// file (renameat2 RENAME_EXCHANGE, as fast as it can), and a directory
// with a link to a host directory. Reading the layer must never follow
// either: the tar holds the files or the links, never the host's secret.
func TestWriteLayerTarOfASwappingDirNeverReadsThroughLinks(t *testing.T) {
	testkit.RequireRoot(t)
	host := t.TempDir()
	secret := fmt.Sprintf("host-secret-%d", time.Now().UnixNano())
	write(t, host, map[string]string{"secret": secret, "f": secret})
	upper := t.TempDir()
	write(t, upper, map[string]string{"a": "decoy", "d/f": "decoy"})
	for link, target := range map[string]string{"b": filepath.Join(host, "secret"), "e": host} {
		if err := os.Symlink(target, filepath.Join(upper, link)); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			for _, pair := range [][2]string{{"a", "b"}, {"d", "e"}} {
				if err := unix.Renameat2(unix.AT_FDCWD, filepath.Join(upper, pair[0]), unix.AT_FDCWD, filepath.Join(upper, pair[1]), unix.RENAME_EXCHANGE); err != nil {
					done <- err
					return
				}
			}
		}
	}()
	defer func() {
		close(stop)
		if err := <-done; err != nil {
			t.Errorf("renameat2: %v", err)
		}
	}()
	written := 0
	for i := 0; i < 2000; i++ {
		var buf bytes.Buffer
		if err := WriteLayerTar(&buf, upper); err != nil {
			continue // a file that changed under the reader may fail the tar: that is safe
		}
		written++
		if bytes.Contains(buf.Bytes(), []byte(secret)) {
			t.Fatalf("tar %d of the swapping directory holds the host's secret", i)
		}
	}
	if written < 1000 {
		t.Errorf("only %d of 2000 tars were written: the reader should not fail on a mere swap", written)
	}
}
