package rootfs

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/container-internals/workshop/internal/testkit"
)

func TestMain(m *testing.M) {
	// The pivot_root test re-executes this binary as helper processes; they
	// must not take testkit's lock, which their parent holds.
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(helper(role))
	}
	testkit.Main(m)
}

func interpOf(t *testing.T, binary string) string {
	t.Helper()
	f, err := elf.Open(binary)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := interpreter(f)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLibrariesOfHostBinariesIncludeLoaderAndLibc(t *testing.T) {
	for _, bin := range []string{"/bin/ls", "/bin/sh"} {
		libs, err := Libraries(bin)
		if err != nil {
			t.Fatalf("Libraries(%s): %v", bin, err)
		}
		interp := interpOf(t, bin)
		var hasInterp, hasLibc bool
		for _, l := range libs {
			if _, err := os.Stat(l); err != nil {
				t.Errorf("Libraries(%s) lists %s, which does not exist on the host", bin, l)
			}
			hasInterp = hasInterp || l == interp
			hasLibc = hasLibc || strings.HasPrefix(filepath.Base(l), "libc.")
		}
		if !hasInterp || !hasLibc {
			t.Errorf("Libraries(%s) = %q: want the loader %s and a libc", bin, libs, interp)
		}
	}
}

// A static binary: busybox where installed, else this Go test binary (Go
// links statically unless it uses cgo).
func TestLibrariesOfStaticBinaryIsEmpty(t *testing.T) {
	bin := "/usr/bin/busybox"
	if _, err := os.Stat(bin); err != nil || interpOf(t, bin) != "" {
		bin, _ = os.Executable()
	}
	if interpOf(t, bin) != "" {
		t.Fatalf("found no static binary to test with (%s is dynamic)", bin)
	}
	libs, err := Libraries(bin)
	if err != nil || len(libs) != 0 {
		t.Fatalf("Libraries(%s) = %q, %v: a static binary needs nothing", bin, libs, err)
	}
}

func TestLibrariesRejectsMissingAndNonELFFiles(t *testing.T) {
	if _, err := Libraries("/no/such/binary"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: error %v", err)
	}
	text := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(text, []byte("hello\n"), 0o644)
	if _, err := Libraries(text); err == nil || !strings.Contains(err.Error(), "not an ELF binary") {
		t.Errorf("text file: error %v", err)
	}
	if _, err := CopyWithLibraries(t.TempDir(), "no-such-command-here"); err == nil || !strings.Contains(err.Error(), "no such command") {
		t.Errorf("unknown command: error %v", err)
	}
}

// runInside runs argv chrooted into root (the kernel does the chroot
// between fork and exec) and returns its output.
func runInside(t *testing.T, root string, argv ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestBuiltRootHasTheLoaderAndRunsLs(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	root := filepath.Join(t.TempDir(), "rootfs")
	made, err := Build(root, "/bin/ls")
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	interp := interpOf(t, "/bin/ls")
	if _, err := readInside(t, root, interp); err != nil {
		t.Fatalf("the loader %s does not resolve inside the root: %v (copied: %q)", interp, err, made)
	}
	out, err := runInside(t, root, "/bin/ls", "/")
	if err != nil {
		t.Fatalf("ls in the chroot: %v\n%s", err, out)
	}
	entries, _ := os.ReadDir(root)
	var want []string
	for _, e := range entries {
		want = append(want, e.Name())
	}
	sort.Strings(want)
	if got := strings.Fields(out); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("ls / inside printed %q, want the root's entries %q", got, want)
	}
	// Skeleton's /etc/passwd and /etc/group: ls shows names, not numbers.
	out, err = runInside(t, root, "/bin/ls", "-l", "/etc/passwd")
	if err != nil || !strings.Contains(out, " root root ") {
		t.Fatalf("ls -l /etc/passwd inside printed %q (%v), want owner and group `root`", out, err)
	}
}

func TestCopyWithLibrariesBringsAScriptsInterpreter(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "hello.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho hello from the script\n"), 0o755)
	root := filepath.Join(dir, "rootfs")
	if err := Skeleton(root); err != nil {
		t.Fatal(err)
	}
	if _, err := CopyWithLibraries(root, script); err != nil {
		t.Fatalf("CopyWithLibraries(%s): %v", script, err)
	}
	out, err := runInside(t, root, script)
	if err != nil || strings.TrimSpace(out) != "hello from the script" {
		t.Fatalf("the script inside printed %q (%v)", out, err)
	}
	// A second copy into the same root is a no-op, not an error.
	if _, err := CopyWithLibraries(root, script); err != nil {
		t.Fatalf("copying again: %v", err)
	}
}
