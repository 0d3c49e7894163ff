package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-internals/workshop/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// mountExt4 makes a small ext4 image, with or without a journal, and mounts
// it (through a loop device) until the test ends.
func mountExt4(t *testing.T, journal bool) string {
	t.Helper()
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		testkit.Unavailable(t, "mkfs.ext4 not found: `apt-get install e2fsprogs`")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	features := "^has_journal"
	if journal {
		features = "has_journal"
	}
	if out, err := exec.Command(mkfs, "-q", "-F", "-O", features, img, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		testkit.Unavailable(t, "cannot mount an ext4 image through a loop device: %v: %s", err, out)
	}
	// umount frees the loop device too (mount -o loop sets it to autoclear).
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

func TestFilesystemOfTellsAJournalledExt4FromOneWithout(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	for _, journal := range []bool{true, false} {
		mnt := mountExt4(t, journal)
		// A directory below the mount point, as the benchmark's temp dir is.
		sub := filepath.Join(mnt, "workshop-bench-1")
		if err := os.Mkdir(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		fs, err := filesystemOf(sub)
		if err != nil {
			t.Fatal(err)
		}
		if fs.Type != "ext4" || fs.Journal != journal || !strings.HasPrefix(fs.Device, "loop") {
			t.Errorf("journal %v: filesystemOf = %+v, want ext4 on a loop device with Journal %v", journal, fs, journal)
		}
		if said := fs.String(); strings.Contains(said, "without") == journal {
			t.Errorf("journal %v: described as %q", journal, said)
		}
		if w := fs.Warning(); (w != "" && strings.Contains(w, "TMPDIR")) == journal {
			t.Errorf("journal %v: warning %q (it is for ext4 without a journal only, and says what to do)", journal, w)
		}
	}
}

func TestFilesystemOfATmpfs(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "workshop-bench-test", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	defer func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	}()
	fs, err := filesystemOf(mnt)
	if err != nil {
		t.Fatal(err)
	}
	if fs.Type != "tmpfs" || fs.Device != "" || fs.Journal || fs.String() != "tmpfs" || fs.Warning() != "" {
		t.Errorf("filesystemOf(a tmpfs) = %+v (%q), want type tmpfs, no block device", fs, fs)
	}
}
