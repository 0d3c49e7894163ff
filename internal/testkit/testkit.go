// Package testkit is what every stage's tests share: requiring root (skip,
// or fail in strict mode), building a stage's real binary once per test run,
// running it, and proving that a test left the host's mount table, cgroup
// tree and network exactly as it found them.
package testkit

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/toolchain"

	"github.com/container-internals/workshop/internal/mountinfo"
)

// StrictEnv, when set to 1, turns every skip for want of root or of a kernel
// feature into a failure. CI sets it: a skipped test proves nothing.
const StrictEnv = "WORKSHOP_STRICT"

// Strict reports whether skips must be failures.
func Strict() bool { return os.Getenv(StrictEnv) == "1" }

// RequireRoot skips the test when not root, or fails it in strict mode.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root: run `make test` (it uses sudo) or `sudo go test ./...`")
	}
}

// Unavailable skips the test for a reason outside the code (no root, a
// kernel feature missing), or fails it in strict mode.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("%s (strict mode: %s=1, so this is a failure, not a skip)", msg, StrictEnv)
	}
	t.Skip(msg)
}

// lockPath serialises the root tests of every package across processes:
// `go test ./...` runs packages in parallel, and one package's mounts or busy
// loops must not trip another's leak check or skew its CPU measurements.
const lockPath = "/run/workshop-tests.lock"

// Main is the TestMain of every package whose tests touch the kernel: it
// takes the cross-package lock, runs the tests, and removes built binaries.
func Main(m *testing.M) {
	unlock := lock()
	code := m.Run()
	for i := len(afterAll) - 1; i >= 0; i-- {
		afterAll[i]()
	}
	cleanupBuilds()
	unlock()
	os.Exit(code)
}

var afterAll []func()

// AfterAll registers f to run once every test of the package has run (for
// what tests share, such as one image store), before Main exits.
func AfterAll(f func()) { afterAll = append(afterAll, f) }

func lock() func() {
	if os.Geteuid() != 0 {
		return func() {}
	}
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return func() {}
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_EX)
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}
}

var (
	buildMu  sync.Mutex
	builds   = map[string]string{}
	buildDir string
)

// PrebuiltEnv names a directory of stage binaries built beforehand (named
// after their stage directories). Where there is no Go toolchain, as inside
// the proving-ground VM, tests use those instead of building.
const PrebuiltEnv = "WORKSHOP_PREBUILT"

// Stage builds the stage in directory dir (a path relative to the module
// root, such as "01-pid-namespace") once per test run and returns the
// binary's path. The binary lives in a directory every user can read, so
// tests can also run it as an unprivileged user.
func Stage(t testing.TB, dir string) string {
	t.Helper()
	if pre := os.Getenv(PrebuiltEnv); pre != "" {
		p := filepath.Join(pre, filepath.Base(dir))
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s but %v", PrebuiltEnv, pre, err)
		}
		return p
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := builds[dir]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "workshop-bin-")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	root := ModuleRoot(t)
	out := filepath.Join(buildDir, filepath.Base(dir))
	// The same build as `make build` (see the Makefile's TAGS and CGO_ENABLED).
	cmd := exec.Command(toolchain.GoTool(), "build", "-tags", "urfave_cli_no_docs", "-o", out, "./"+dir)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./%s: %v\n%s", dir, err, b)
	}
	builds[dir] = out
	return out
}

func cleanupBuilds() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		os.RemoveAll(buildDir)
		buildDir = ""
	}
}

// ModuleRoot returns the directory holding go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	d, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			t.Fatal("go.mod not found above the test's directory")
		}
		d = parent
	}
}

// Result is what a finished program printed and how it ended.
type Result struct {
	Stdout, Stderr string
	Code           int
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout ---\n%s--- stderr ---\n%s", r.Code, r.Stdout, r.Stderr)
}

// NobodyDirs makes a HOME and an XDG_RUNTIME_DIR of nobody's own (65534,
// as RunOpts.AsUser runs), reachable by it, removed after the test, and
// returns them as environment entries: where a rootless run keeps its
// images and state.
func NobodyDirs(t testing.TB) []string {
	t.Helper()
	dir := t.TempDir()
	var env []string
	for _, d := range []struct{ name, env string }{{"home", "HOME"}, {"run", "XDG_RUNTIME_DIR"}} {
		p := filepath.Join(dir, d.name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		env = append(env, d.env+"="+p)
	}
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

// RunOpts tunes Run.
type RunOpts struct {
	Env     []string      // added to the environment
	Stdin   string        // fed to the program
	AsUser  bool          // run as the unprivileged user nobody (65534)
	Timeout time.Duration // default 60s; the program is killed after it
}

// Run runs a program to completion and returns its output and exit status.
// A program killed by a signal reports 128+signal, as a shell would.
func Run(t testing.TB, opts RunOpts, bin string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = strings.NewReader(opts.Stdin)
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1"), opts.Env...)
	if opts.AsUser {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		cmd.Dir = "/"
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	timer := time.AfterFunc(timeout, func() { _ = cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	code := 0
	if err != nil {
		ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
		switch {
		case ok && ws.Signaled():
			code = 128 + int(ws.Signal())
		case ok:
			code = ws.ExitStatus()
		default:
			t.Fatalf("%s: %v", bin, err)
		}
	}
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}

// HostState is a snapshot of what a test must leave as it found it.
type HostState struct {
	Mounts  []string
	Cgroups []string
	Network []string // links, addresses, routes, nftables, host-wide sysctls (hostnet.go)
}

// SnapshotHost records the host's mount table, cgroup directories and
// network.
func SnapshotHost() (HostState, error) {
	m, err := mounts()
	if err != nil {
		return HostState{}, err
	}
	n, err := hostNetwork()
	if err != nil {
		return HostState{}, err
	}
	return HostState{Mounts: m, Cgroups: cgroupDirs("/sys/fs/cgroup"), Network: n}, nil
}

// CheckHost snapshots the host now and, when the test ends (after its own
// cleanups), fails it if any mount or cgroup directory appeared or vanished.
func CheckHost(t testing.TB) {
	t.Helper()
	before, err := SnapshotHost()
	if err != nil {
		t.Fatalf("snapshot host: %v", err)
	}
	// Registered first, so it runs last: after the test's own cleanups.
	t.Cleanup(func() {
		// Lazy unmounts and cgroup removals finish asynchronously; give the
		// kernel a moment before calling anything a leak.
		var diff []string
		for i := 0; i < 20; i++ {
			after, err := SnapshotHost()
			if err != nil {
				t.Errorf("snapshot host: %v", err)
				return
			}
			diff = Diff(before, after)
			if len(diff) == 0 {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("the test changed the host (it must leave it as it found it):\n  %s", strings.Join(diff, "\n  "))
	})
}

// Diff lists what differs between two snapshots, one line per item.
func Diff(before, after HostState) []string {
	var out []string
	out = append(out, setDiff("mount", before.Mounts, after.Mounts)...)
	out = append(out, setDiff("cgroup", before.Cgroups, after.Cgroups)...)
	out = append(out, setDiff("network", before.Network, after.Network)...)
	return out
}

func setDiff(kind string, a, b []string) []string {
	in := func(list []string) map[string]int {
		m := map[string]int{}
		for _, s := range list {
			m[s]++
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for s, n := range mb {
		if ma[s] < n {
			out = append(out, fmt.Sprintf("%s appeared: %s", kind, s))
		}
	}
	for s, n := range ma {
		if mb[s] < n {
			out = append(out, fmt.Sprintf("%s vanished: %s", kind, s))
		}
	}
	sort.Strings(out)
	return out
}

// mounts returns one line per mount of the host's mount namespace, without
// the mount IDs (which change if a mount is replaced by an identical one).
func mounts() ([]string, error) {
	ms, err := mountinfo.Self()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		out = append(out, strings.Join(strings.Fields(m.Line)[3:], " "))
	}
	return out, nil
}

// cgroupDirs lists every cgroup directory under root, except subtrees that
// the host's own service manager creates and removes on its own (systemd's
// slices and scopes, this sandbox's per-command groups): they come and go
// while tests run and are not ours.
func cgroupDirs(root string) []string {
	var out []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if p != root && managedByHost(d.Name()) {
			return filepath.SkipDir
		}
		out = append(out, p)
		return nil
	})
	sort.Strings(out)
	return out
}

func managedByHost(name string) bool {
	return name == "process_api" || strings.HasSuffix(name, ".slice") || strings.HasSuffix(name, ".scope")
}
