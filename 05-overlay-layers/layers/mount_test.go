package layers

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/testkit"
)

// The article's experiment: A/{a,x} and B/{b,x} merged into C.
func articleDirs(t *testing.T) (base, A, B, upper, work, C string) {
	base = t.TempDir()
	A, B = filepath.Join(base, "A"), filepath.Join(base, "B")
	upper, work, C = filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "C")
	write(t, A, map[string]string{"a": "a from A\n", "x": "x from A\n"})
	write(t, B, map[string]string{"b": "b from B\n", "x": "x from B\n"})
	mkdirs(t, upper, work, C)
	return
}

func TestMergedViewHoldsBothLayersAndUpperXWins(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	_, A, B, upper, work, C := articleDirs(t)
	mountOverlay(t, C, []string{B, A}, upper, work) // bottom first: A is on top
	var names []string
	entries, _ := os.ReadDir(C)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "a b x" {
		t.Errorf("C holds %q, want \"a b x\" (x only once)", got)
	}
	if got := read(t, filepath.Join(C, "x")); got != "x from A\n" {
		t.Errorf("C/x = %q, want the top layer's (A's) x", got)
	}
}

func TestWritingLowerFileCopiesItUp(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	_, A, B, upper, work, C := articleDirs(t)
	mountOverlay(t, C, []string{B, A}, upper, work)
	if _, err := os.Stat(filepath.Join(upper, "b")); !os.IsNotExist(err) {
		t.Fatalf("upper/b exists before any write")
	}
	f, err := os.OpenFile(filepath.Join(C, "b"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("changed through C\n")
	f.Close()
	if got := read(t, filepath.Join(upper, "b")); got != "b from B\nchanged through C\n" {
		t.Errorf("upper/b = %q, want the whole file copied up plus the change", got)
	}
	if got := read(t, filepath.Join(B, "b")); got != "b from B\n" {
		t.Errorf("B/b = %q: the lower layer changed", got)
	}
}

func TestDeletingLowerFileLeavesCharDeviceWhiteout(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	_, A, B, upper, work, C := articleDirs(t)
	mountOverlay(t, C, []string{B, A}, upper, work)
	if err := os.Remove(filepath.Join(C, "a")); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(upper, "a"), &st); err != nil {
		t.Fatalf("no whiteout upper/a: %v", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("upper/a has mode %o rdev %d, want a 0/0 character device", st.Mode, st.Rdev)
	}
	if !IsWhiteout(filepath.Join(upper, "a")) {
		t.Errorf("IsWhiteout(upper/a) = false")
	}
	if _, err := os.Stat(filepath.Join(C, "a")); !os.IsNotExist(err) {
		t.Errorf("C/a still visible: %v", err)
	}
	if got := read(t, filepath.Join(A, "a")); got != "a from A\n" {
		t.Errorf("A/a changed: %q", got)
	}
}

func TestRecreatedDirectoryIsOpaque(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	base, A, B, upper, work, C := articleDirs(t)
	write(t, B, map[string]string{"d/old1": "1", "d/old2": "2"})
	_ = base
	mountOverlay(t, C, []string{B, A}, upper, work)
	if err := os.RemoveAll(filepath.Join(C, "d")); err != nil {
		t.Fatal(err)
	}
	write(t, C, map[string]string{"d/new": "n"})
	if !IsOpaque(filepath.Join(upper, "d")) {
		t.Errorf("upper/d lacks %s=y", OpaqueXattr)
	}
	entries, _ := os.ReadDir(filepath.Join(C, "d"))
	if len(entries) != 1 || entries[0].Name() != "new" {
		t.Errorf("C/d holds %v, want only new (the lower d hidden)", entries)
	}
}

// makeLayers creates n one-file layers under base named 0..n-1 (short names:
// the classic mount(2) path needs them), each with f = its number.
func makeLayers(t *testing.T, base string, n int) []string {
	t.Helper()
	lowers := make([]string, n)
	for i := range lowers {
		lowers[i] = filepath.Join(base, fmt.Sprint(i))
		write(t, lowers[i], map[string]string{"f": fmt.Sprint(i)})
	}
	return lowers
}

func TestStacksOf1And128And500LayersMountAndTopWins(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	// Mount picks the new API where the kernel has lowerdir+ (6.7+), and
	// mount(2) with relative paths before that: both must reach 500.
	t.Logf("lowerdir+ available: %v", HasLowerdirPlus())
	for _, n := range []int{1, 128, 500} {
		base := t.TempDir()
		lowers := makeLayers(t, base, n)
		up, wk, m := filepath.Join(base, "u"), filepath.Join(base, "w"), filepath.Join(base, "m")
		mkdirs(t, up, wk, m)
		start := time.Now()
		if err := Mount(m, lowers, up, wk, nil); err != nil {
			t.Fatalf("%d layers: %v", n, err)
		}
		took := time.Since(start)
		got := read(t, filepath.Join(m, "f"))
		if err := Unmount(m, nil); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d layers: mounted in %v", n, took)
		if want := fmt.Sprint(n - 1); got != want {
			t.Errorf("%d layers: f = %q, want %q (the top layer's)", n, got, want)
		}
	}
}

// Without lowerdir+, mount(2) with absolute paths would need far more than a
// page for 500 layers (even relative to their common parent, with names this
// long); short relative names from a thread of its own fit.
func TestClassicMountReaches500LayersWithRelativePaths(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	forceClassic = true
	defer func() { forceClassic = false }()
	base := t.TempDir()
	lowers := make([]string, MaxLowerLayers)
	for i := range lowers {
		lowers[i] = filepath.Join(base, fmt.Sprintf("%064d", i), "diff") // like overlay2/<cache-id>/diff
		write(t, lowers[i], map[string]string{"f": fmt.Sprint(i)})
	}
	up, wk, m := filepath.Join(base, "u"), filepath.Join(base, "w"), filepath.Join(base, "m")
	mkdirs(t, up, wk, m)
	if abs := len(classicOptions(lowers, up, wk)); abs < 8*os.Getpagesize() {
		t.Fatalf("absolute options are only %d bytes: the test does not exercise the page limit", abs)
	}
	cwd, _ := os.Getwd()
	mountOverlay(t, m, lowers, up, wk)
	if got := read(t, filepath.Join(m, "f")); got != "499" {
		t.Errorf("f = %q, want 499", got)
	}
	if now, _ := os.Getwd(); now != cwd {
		t.Errorf("the process's working directory moved from %s to %s", cwd, now)
	}
	if left, _ := filepath.Glob(filepath.Join(os.TempDir(), "overlay-lowers-*")); len(left) > 0 {
		t.Errorf("the links directory was left behind: %v", left)
	}
}

func Test501LayersGiveOneClearError(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	base := t.TempDir()
	lowers := makeLayers(t, base, MaxLowerLayers+1)
	m := filepath.Join(base, "m")
	mkdirs(t, m)
	err := Mount(m, lowers, "", "", nil)
	if err == nil {
		Unmount(m, nil)
		t.Fatal("501 layers mounted")
	}
	if want := "overlayfs stacks at most 500 lower layers; got 501"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	// And the limit is the kernel's, not only ours.
	if HasLowerdirPlus() {
		fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		var kerr error
		for _, l := range lowers {
			if kerr = unix.FsconfigSetString(fd, "lowerdir+", l); kerr != nil {
				break
			}
		}
		if kerr == nil {
			kerr = unix.FsconfigCreate(fd)
		}
		if kerr == nil {
			t.Errorf("the kernel accepted 501 lower layers: MaxLowerLayers is wrong")
		} else {
			t.Logf("the kernel refuses layer 501: %v (%s)", kerr, fsMessages(fd))
		}
	}
}

func TestMountErrorsNameTheProblem(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	base := t.TempDir()
	m := filepath.Join(base, "m")
	mkdirs(t, m)
	err := Mount(m, []string{filepath.Join(base, "missing")}, "", "", nil)
	if err == nil {
		Unmount(m, nil)
		t.Fatal("mounted a missing layer")
	}
	if !strings.Contains(err.Error(), "missing") {
		t.Errorf("error %q does not name the missing layer", err)
	}
	if err := Mount(m, nil, "", "", nil); err == nil {
		t.Error("mounted no layers")
	}
	if err := Unmount(m, nil); err == nil || !strings.Contains(err.Error(), "not a mount point") {
		t.Errorf("Unmount of a plain directory: %v", err)
	}
}

func TestLocalDiskCanHostAnUpperDir(t *testing.T) {
	testkit.RequireRoot(t)
	if err := CheckUpperFS(t.TempDir()); err != nil {
		t.Errorf("CheckUpperFS(a temp dir): %v", err)
	}
	if err := CheckUpperFS("/proc"); err == nil {
		t.Errorf("CheckUpperFS(/proc) accepted a filesystem without files of its own")
	}
}

// A container's throwaway layer is mounted volatile: the kernel shows the
// option in the mount table, writes land in the upper directory as usual,
// and the kernel marks the work directory (work/incompat/volatile). Where
// the new mount API is missing (Linux < 6.7), it is a plain Mount.
func TestMountVolatileSkipsTheSyncAndSaysSo(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	want := HasLowerdirPlus()
	_, A, B, upper, work, C := articleDirs(t)
	if err := MountVolatile(C, []string{B, A}, upper, work, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Unmount(C, nil) })
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var line string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, " "+C+" ") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no overlay on %s in the mount table", C)
	}
	if got := strings.Contains(line, "volatile"); got != want {
		t.Errorf("volatile in the mount table: %v, want %v (new mount API: %v): %q", got, want, want, line)
	}
	if err := os.WriteFile(filepath.Join(C, "new"), []byte("n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(upper, "new")); got != "n\n" {
		t.Errorf("upper/new = %q after a write through the volatile overlay", got)
	}
	if _, err := os.Stat(filepath.Join(work, "work", "incompat", "volatile")); (err == nil) != want {
		t.Errorf("work/work/incompat/volatile: %v, want it only when volatile (%v)", err, want)
	}
	if err := Unmount(C, nil); err != nil {
		t.Fatal(err)
	}
}
