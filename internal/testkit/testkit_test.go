package testkit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
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

// A link (a bridge, down) or an nftables table that a test forgot must count as a leak too.
func TestSnapshotNoticesALeftLinkAndTable(t *testing.T) {
	RequireRoot(t)
	before, err := SnapshotHost()
	if err != nil {
		t.Fatal(err)
	}
	link := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "wktestkit0"}}
	if err := netlink.LinkAdd(link); err != nil {
		Unavailable(t, "cannot add a bridge: %v", err)
	}
	defer netlink.LinkDel(link)
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	table := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "wktestkit"})
	if err := c.Flush(); err != nil {
		Unavailable(t, "cannot add an nftables table: %v", err)
	}
	during, _ := SnapshotHost()
	c.DelTable(table)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkDel(link); err != nil {
		t.Fatal(err)
	}
	after, _ := SnapshotHost()
	d := strings.Join(Diff(before, during), "\n")
	if !strings.Contains(d, "network appeared: link wktestkit0") || !strings.Contains(d, "network appeared: nft table ip wktestkit") {
		t.Fatalf("want the bridge and the table reported, got:\n%s", d)
	}
	if d := Diff(before, after); len(d) != 0 {
		t.Fatalf("after removing them, want no difference, got %q", d)
	}
}
