package testkit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { Main(m) }

// The leak check must notice a mount that a test forgot, and forget it
// again once it is gone: otherwise every "nothing left behind" is hollow.
func TestSnapshotNoticesALeftMount(t *testing.T) {
	RequireRoot(t)
	dir := t.TempDir()
	before, err := SnapshotHost()
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("none", dir, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	during, _ := SnapshotHost()
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	after, _ := SnapshotHost()
	d := Diff(before, during)
	if len(d) != 1 || !strings.Contains(d[0], "mount appeared") || !strings.Contains(d[0], dir) {
		t.Fatalf("want one appeared mount at %s, got %q", dir, d)
	}
	if d := Diff(before, after); len(d) != 0 {
		t.Fatalf("after unmounting, want no difference, got %q", d)
	}
}

func TestSnapshotNoticesALeftCgroup(t *testing.T) {
	RequireRoot(t)
	root := "/sys/fs/cgroup/unified"
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		root = "/sys/fs/cgroup"
	}
	dir := filepath.Join(root, "workshop-testkit-probe")
	before, _ := SnapshotHost()
	if err := os.Mkdir(dir, 0o755); err != nil {
		Unavailable(t, "cannot create a cgroup under %s: %v", root, err)
	}
	during, _ := SnapshotHost()
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	after, _ := SnapshotHost()
	d := Diff(before, during)
	if len(d) != 1 || d[0] != "cgroup appeared: "+dir {
		t.Fatalf("want the new cgroup reported, got %q", d)
	}
	if d := Diff(before, after); len(d) != 0 {
		t.Fatalf("after rmdir, want no difference, got %q", d)
	}
}

func TestHostManagedCgroupsAreIgnored(t *testing.T) {
	for name, want := range map[string]bool{"process_api": true, "user.slice": true, "session-3.scope": true, "container": false, "workshop": false} {
		if managedByHost(name) != want {
			t.Errorf("managedByHost(%q) = %v, want %v", name, !want, want)
		}
	}
}
