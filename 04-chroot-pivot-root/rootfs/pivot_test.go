package rootfs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/testkit"
)

// The pivot_root tests run in helper processes (this test binary,
// re-executed), each in a mount namespace of its own, so nothing they mount
// can reach the host:
//
//	test ── outer: new mount namespace; makes its copy of / private (cut from
//	        │      the host), then shared again, as systemd leaves it on the
//	        │      workshop VM: a peer group that exists only in here
//	        └─ inner: new mount namespace, its mounts peers of outer's;
//	                  PivotRoot must work there and leak nothing to outer
const helperEnv = "ROOTFS_TEST_HELPER"

func TestPivotRootWorksWhenRootIsSharedAndLeaksNothing(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	if _, err := Build(root, "/bin/ls"); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "host-only-marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := runHelper(t, "outer", root, marker)
	for _, want := range []string{
		"inner: / is shared",
		"inner: ls / = bin dev etc lib",
		"inner: mounts = / /proc",
		"inner: escape stayed inside",
		"outer: mount table unchanged",
		"inner-raw: pivot_root without making / private: invalid argument",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("helper output lacks %q:\n%s", want, out)
		}
	}
}

func TestPivotRootRefusesTheHostsMountNamespace(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	self, _ := os.Readlink("/proc/self/ns/mnt")
	if ref, which := referenceMountNamespace(); self == "" || ref != self {
		// Only ever call PivotRoot here if its guard is sure to refuse.
		t.Fatalf("this test's mount namespace (%s) is not %s's (%s): cannot test the refusal safely", self, which, ref)
	}
	err := PivotRoot(t.TempDir(), func(call, _ string) { t.Fatalf("PivotRoot made a call in the host's namespace: %s", call) })
	if err == nil || !strings.Contains(err.Error(), "new mount namespace") {
		t.Fatalf("PivotRoot in the host's mount namespace: error %v, want a refusal", err)
	}
}

func runHelper(t *testing.T, role string, args ...string) string {
	t.Helper()
	ns, _ := os.Readlink("/proc/self/ns/mnt")
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Env = append(os.Environ(), helperEnv+"="+role, "PARENT_MNTNS="+ns)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper %s: %v\n%s", role, err, out.String())
	}
	return out.String()
}

// helper is main() of the helper processes.
func helper(role string) int {
	self, _ := os.Readlink("/proc/self/ns/mnt")
	if self == "" || self == os.Getenv("PARENT_MNTNS") {
		fmt.Printf("%s: not in a mount namespace of my own: refusing to mount anything\n", role)
		return 1
	}
	var err error
	switch role {
	case "outer":
		err = outer(os.Args[1], os.Args[2])
	case "inner":
		err = inner(os.Args[1], os.Args[2])
	case "inner-raw":
		err = innerRaw(os.Args[1])
	}
	if err != nil {
		fmt.Printf("%s: %v\n", role, err)
		return 1
	}
	return 0
}

func sub(role string, args ...string) error {
	ns, _ := os.Readlink("/proc/self/ns/mnt")
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Env = append(os.Environ(), helperEnv+"="+role, "PARENT_MNTNS="+ns)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

func outer(root, marker string) error {
	// Private first: on a host whose / is shared, our copies are peers of
	// the host's mounts, and making them shared again would keep them so.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SHARED, ""); err != nil {
		return err
	}
	before, _ := os.ReadFile("/proc/self/mountinfo")
	if err := sub("inner", root, marker); err != nil {
		return fmt.Errorf("inner: %v", err)
	}
	after, _ := os.ReadFile("/proc/self/mountinfo")
	if bytes.Equal(before, after) {
		fmt.Println("outer: mount table unchanged")
	} else {
		fmt.Printf("outer: mount table changed:\n%s\n---\n%s\n", before, after)
	}
	// Last, as it leaks into this namespace by design.
	return sub("inner-raw", root)
}

func inner(root, marker string) error {
	if !rootIsShared() {
		return fmt.Errorf("/ is not shared here: the test would prove nothing")
	}
	fmt.Println("inner: / is shared")
	if err := PivotRoot(root, nil); err != nil {
		return err
	}
	if err := unix.Mount("proc", "/proc", "proc", 0, ""); err != nil {
		return err
	}
	ls := exec.Command("/bin/ls", "/")
	ls.Stdin = strings.NewReader("") // there is no /dev/null in this root
	out, err := ls.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ls /: %v %s", err, out)
	}
	fmt.Printf("inner: ls / = %s\n", strings.Join(strings.Fields(string(out)), " "))
	var points []string
	info, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(strings.TrimSpace(string(info)), "\n") {
		points = append(points, strings.Fields(l)[4])
	}
	fmt.Printf("inner: mounts = %s\n", strings.Join(points, " "))
	// The chroot escape (see the stage): chroot into a subdirectory, walk
	// up, chroot("."). Under pivot_root the walk ends at the new root.
	if err := unix.Chroot("/tmp"); err != nil {
		return err
	}
	for i := 0; i < 64; i++ {
		_ = unix.Chdir("..")
	}
	if err := unix.Chroot("."); err != nil {
		return err
	}
	if _, err := os.Stat(marker); err == nil {
		return fmt.Errorf("escaped: the host's %s is visible", marker)
	}
	fmt.Println("inner: escape stayed inside")
	return nil
}

// innerRaw skips PivotRoot's first step to show why it is there.
func innerRaw(root string) error {
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Chdir(root); err != nil {
		return err
	}
	err := unix.PivotRoot(".", ".")
	if err == nil {
		return fmt.Errorf("pivot_root succeeded with / shared")
	}
	fmt.Printf("inner-raw: pivot_root without making / private: %v\n", err)
	return nil
}

func rootIsShared() bool {
	info, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(info), "\n") {
		f := strings.Fields(l)
		if len(f) > 6 && f[4] == "/" && strings.Contains(l, " shared:") {
			return true
		}
	}
	return false
}
