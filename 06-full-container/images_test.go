package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-internals/workshop/internal/testkit"
)

// Hostile images and archives (issue 15): each test feeds the input an
// attacker would, and passes only because it is refused in one line with
// nothing outside the runtime's own files changed.

// ownRoot is a --root of the test's own, for attacks that, if they worked,
// would damage the store: the shared one must survive a failing test.
// It holds the default image and a running container, "bystander".
func ownRoot(t *testing.T) (root string, run func(args ...string) testkit.Result) {
	t.Helper()
	root = t.TempDir()
	bin := testkit.Stage(t, "06-full-container")
	run = func(args ...string) testkit.Result {
		t.Helper()
		return testkit.Run(t, opts{}, bin, append([]string{"--root", root}, args...)...)
	}
	if r := run("run", "-d", "--name", "bystander", "--", "sleep", "100"); r.Code != 0 {
		t.Fatalf("run -d bystander:\n%s", r)
	}
	t.Cleanup(func() { run("rm", "-f", "bystander") })
	return root, run
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

// leftovers fails the test for any unpacking directory left in the store's root.
func leftovers(t *testing.T, root string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(root, "images"))
	for _, e := range ents {
		if e.Name() != "image" && e.Name() != "overlay2" {
			t.Errorf("left in the store's root: %s", e.Name())
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
	before := treeHash(t, filepath.Join(root, "images"))
	evil := filepath.Join(t.TempDir(), "evil.tar")
	writeTar(t, evil, []tarEntry{{".wh...", nil, 0o644, ""}, {"manifest.json", []byte("[]"), 0o644, ""}})
	r := run("import", evil, "evil")
	storeIntact(t, root, before, run)
	oneLine(t, r, `".wh..." is a whiteout of ".."`)
}
