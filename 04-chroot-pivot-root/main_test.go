package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-internals/workshop/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func stage04(t *testing.T, args ...string) testkit.Result {
	t.Helper()
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	return testkit.Run(t, testkit.RunOpts{}, testkit.Stage(t, "04-chroot-pivot-root"), args...)
}

// leftovers lists what the stage may create in the temporary directory: a
// run must remove all of it.
func leftovers(t *testing.T) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(os.TempDir(), "workshop-04-*"))
	return m
}

func noneLeft(t *testing.T, before []string) {
	t.Helper()
	if after := leftovers(t); len(after) != len(before) {
		t.Errorf("the run left files behind: before %q, after %q", before, after)
	}
}

func topLevel(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return strings.Join(names, "\n")
}

func TestDefaultRunPassesEveryCheckAndLeavesNothing(t *testing.T) {
	before := leftovers(t)
	r := stage04(t)
	if r.Code != 0 || strings.Contains(r.Stdout, "CHECK FAILED") {
		t.Fatalf("default run failed:\n%s", r)
	}
	for _, claim := range []string{
		"check passed: ls / shows only the rootfs: bin dev etc",
		"check passed: the escape reached the host",
		"check passed: the escape failed",
		"check passed: only the rootfs (/) and the container's /proc are mounted",
		"check passed: the host's mount table is unchanged",
	} {
		if !strings.Contains(r.Stdout, claim) {
			t.Errorf("no %q in the default run:\n%s", claim, r.Stdout)
		}
	}
	noneLeft(t, before)
}

func TestLsInChrootPrintsExactlyTheRootfsTopLevel(t *testing.T) {
	root := filepath.Join(t.TempDir(), "rootfs")
	r := stage04(t, "-q", "--rootfs", root, "--mode", "chroot", "--", "ls", "/")
	if r.Code != 0 {
		t.Fatalf("--mode chroot -- ls / failed:\n%s", r)
	}
	want := topLevel(t, root)
	if got := strings.TrimSpace(r.Stdout); got != want {
		t.Fatalf("ls / inside printed\n%s\nwant exactly the rootfs's entries\n%s", got, want)
	}
	for _, p := range []string{"bin", "etc/passwd", "usr/bin/ls"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("--rootfs %s should be kept with %s in it: %v", root, p, err)
		}
	}
	// The same directory again: reused, same answer.
	r = stage04(t, "-q", "--rootfs", root, "--mode", "pivot_root", "--", "ls", "/")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != want {
		t.Fatalf("reusing --rootfs under pivot_root: want\n%s\ngot:\n%s", want, r)
	}
}

// The test's own marker, in a host directory outside the rootfs: only a
// process that reaches the host's files can list it.
func TestEscapeReachesHostUnderChrootButNotUnderPivotRoot(t *testing.T) {
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "only-on-the-host"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := stage04(t, "-q", "--mode", "chroot", "--escape", "--", "ls", hostDir)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "only-on-the-host" {
		t.Fatalf("under chroot the escape should reach the host and list %s:\n%s", hostDir, r)
	}
	r = stage04(t, "-q", "--mode", "pivot_root", "--escape", "--", "ls", hostDir)
	if r.Code == 0 || strings.Contains(r.Stdout, "only-on-the-host") {
		t.Fatalf("under pivot_root the escape must not reach %s:\n%s", hostDir, r)
	}
	if !strings.Contains(r.Stderr, "No such file or directory") {
		t.Fatalf("want ls inside to say %s does not exist:\n%s", hostDir, r)
	}
}

// In a user namespace the same escape still reaches the host's files, but
// lands as uid 100000: root inside, an ordinary user to the host's kernel.
// A file of the host's root, mode 600, stays closed; a file it makes is
// uid 100000's. Without --userns the same script reads the file.
func TestEscapeFromAUserNamespaceLandsAsAnUnprivilegedUser(t *testing.T) {
	testkit.RequireRoot(t)
	hostDir, err := os.MkdirTemp("", "userns-escape-test-") // not t.TempDir: uid 100000 must pass through its parents
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(hostDir)
	if err := os.Chmod(hostDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostDir, "root-only"), []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("id -u; ls %[1]s; cat %[1]s/root-only 2>/dev/null || echo refused; touch %[1]s/made-inside", hostDir)
	r := stage04(t, "-q", "--mode", "chroot", "--escape", "--userns", "--", "sh", "-c", script)
	if r.Code != 0 || r.Stdout != "0\nroot-only\nrefused\n" {
		t.Fatalf("--userns: want root inside, the host's directory listed, its root-only file refused:\n%s", r)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(hostDir, "made-inside"), &st); err != nil || st.Uid != 100000 || st.Gid != 100000 {
		t.Fatalf("the file the escaped root made: owner %d:%d (%v), want 100000:100000", st.Uid, st.Gid, err)
	}
	os.Remove(filepath.Join(hostDir, "made-inside"))
	r = stage04(t, "-q", "--mode", "chroot", "--escape", "--", "sh", "-c", script)
	if r.Code != 0 || r.Stdout != "0\nroot-only\nsecret\n" {
		t.Fatalf("without --userns the escaped root is the host's: want the secret read:\n%s", r)
	}
}

func TestAddBringsABinaryThatRunsInside(t *testing.T) {
	for _, mode := range []string{"chroot", "pivot_root"} {
		r := stage04(t, "-q", "--add", "cat", "--add", "/bin/echo", "--mode", mode, "--", "cat", "/etc/passwd")
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, "root:x:0:0:") {
			t.Fatalf("--add cat, then cat /etc/passwd under %s: want the rootfs's passwd:\n%s", mode, r)
		}
	}
	r := stage04(t, "-q", "--add", "/bin/echo", "--mode", "chroot", "--", "echo", "brought in")
	if r.Code != 0 || r.Stdout != "brought in\n" {
		t.Fatalf("--add /bin/echo: want `brought in`:\n%s", r)
	}
}

func TestCommandMissingFromRootfsExits127(t *testing.T) {
	before := leftovers(t)
	r := stage04(t, "-q", "--mode", "chroot", "--", "cat", "/etc/passwd")
	if r.Code != 127 || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 || !strings.Contains(r.Stderr, "cat: command not found") {
		t.Fatalf("cat is not in the rootfs: want one line and status 127:\n%s", r)
	}
	noneLeft(t, before)
}

func TestCommandStatusIsPassedOn(t *testing.T) {
	r := stage04(t, "-q", "--mode", "pivot_root", "--", "bash", "-c", "exit 3")
	if r.Code != 3 {
		t.Fatalf("want the command's status 3:\n%s", r)
	}
}

func TestBadInputIsOneClearLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--add", "/no/such/binary"}, "--add /no/such/binary: no such file"},
		{[]string{"--add", "no-such-command-anywhere"}, "no such command in PATH"},
		{[]string{"--rootfs", file}, "is a file, not a directory"},
		{[]string{"--mode", "jail"}, `unknown --mode "jail": use --mode chroot or --mode pivot_root`},
		{[]string{"--", "ls"}, "needs a mode"},
		{[]string{"--userns", "--mode", "pivot_root"}, "--userns goes with --mode chroot"},
	}
	for _, c := range cases {
		before := leftovers(t)
		r := stage04(t, c.args...)
		stderr := strings.TrimSpace(r.Stderr)
		if r.Code == 0 || strings.Contains(stderr, "\n") || !strings.Contains(stderr, c.want) ||
			!strings.HasPrefix(stderr, "04-chroot-pivot-root: ") {
			t.Errorf("%q: want one line containing %q and a non-zero status:\n%s", c.args, c.want, r)
		}
		noneLeft(t, before)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Errorf("--rootfs %s changed the file", file)
	}
}

func TestNotRootIsOneClearLine(t *testing.T) {
	testkit.RequireRoot(t) // to switch to nobody
	r := testkit.Run(t, testkit.RunOpts{AsUser: true}, testkit.Stage(t, "04-chroot-pivot-root"))
	stderr := strings.TrimSpace(r.Stderr)
	if r.Code == 0 || strings.Contains(stderr, "\n") || !strings.Contains(stderr, "needs root") {
		t.Fatalf("as nobody: want one `needs root` line and a non-zero status:\n%s", r)
	}
}

func TestCtrlCStopsTheCommandAndCleansUp(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	before := leftovers(t)
	cmd := exec.Command(testkit.Stage(t, "04-chroot-pivot-root"), "-q", "--add", "sleep", "--mode", "pivot_root", "--", "sleep", "30")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the rootfs exists and sleep runs in it, then interrupt.
	deadline := time.Now().Add(10 * time.Second)
	for len(leftovers(t)) == len(before) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Fatalf("after Ctrl-C: %v, want exit status 130\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("Ctrl-C did not stop the stage\n%s", out.String())
	}
	noneLeft(t, before)
}
