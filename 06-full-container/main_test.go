package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/06-full-container/network"
	"github.com/container-internals/workshop/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

var (
	rootOnce sync.Once
	rootDir  string
)

// sharedRoot is one --root for the package's tests: the default image is
// built once, and every test's containers are separate anyway.
func sharedRoot(t *testing.T) string {
	rootOnce.Do(func() {
		d, err := os.MkdirTemp("", "workshop-06-test-")
		if err != nil {
			t.Fatal(err)
		}
		rootDir = d
		testkit.AfterAll(func() { os.RemoveAll(d) })
	})
	return rootDir
}

type opts = testkit.RunOpts

// ctr runs the stage with the shared --root.
func ctr(t *testing.T, o opts, args ...string) testkit.Result {
	t.Helper()
	bin := testkit.Stage(t, "06-full-container")
	return testkit.Run(t, o, bin, append([]string{"--root", sharedRoot(t)}, args...)...)
}

// detached runs `run -d --name name ARGS...`, removes the container when
// the test ends (before the host check: CheckHost's cleanup runs last), and
// returns what `inspect` says of it.
func detached(t *testing.T, name string, args ...string) State {
	t.Helper()
	r := ctr(t, opts{}, append([]string{"run", "-d", "--name", name}, args...)...)
	if r.Code != 0 {
		t.Fatalf("run -d --name %s:\n%s", name, r)
	}
	t.Cleanup(func() { ctr(t, opts{}, "rm", "-f", name) })
	var st State
	insp := ctr(t, opts{}, "inspect", name)
	if err := json.Unmarshal([]byte(insp.Stdout), &st); err != nil || st.Pid <= 0 {
		t.Fatalf("inspect %s: %v\n%s", name, err, insp)
	}
	return st
}

func setup(t *testing.T) {
	t.Helper()
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	sharedRoot(t)
	// Containers are on the bridge by default, and the bridge stays until
	// `network prune`: prune it when the test ends (before the host check,
	// which runs last), and check what the test's containers left.
	t.Cleanup(func() { pruneNetwork(t, sharedRoot(t)) })
}

// pruneNetwork removes a runtime root's bridge network, after checking
// that its containers gave back their addresses.
func pruneNetwork(t *testing.T, root string) {
	t.Helper()
	if cfg, _ := (&network.Manager{Dir: filepath.Join(root, "network")}).Config(); cfg != nil {
		if r := containerRules(t, cfg.Bridge); len(r) > 0 {
			t.Errorf("per-container rules left after the test: %q", r)
		}
		v := vethsOn(t, cfg.Bridge)
		for i := 0; i < 150 && len(v) > 0; i++ { // a dead namespace's veth goes asynchronously
			time.Sleep(20 * time.Millisecond)
			v = vethsOn(t, cfg.Bridge)
		}
		if len(v) > 0 {
			t.Errorf("veths left in %s after the test: %v", cfg.Bridge, v)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "network", "addresses")); len(ents) > 0 {
		var held []string
		for _, e := range ents {
			held = append(held, e.Name())
		}
		t.Errorf("addresses still allocated after the test: %v", held)
	}
	r := testkit.Run(t, opts{}, testkit.Stage(t, "06-full-container"), "--root", root, "network", "prune")
	if r.Code != 0 {
		t.Errorf("network prune:\n%s", r)
	}
}

func oneLine(t *testing.T, r testkit.Result, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	if r.Code == 0 || len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Fatalf("want a non-zero exit and one line containing %q:\n%s", want, r)
	}
}

// noContainersLeft checks that the runtime keeps no state after a test.
func noContainersLeft(t *testing.T) {
	t.Helper()
	noContainersLeftIn(t, filepath.Join(sharedRoot(t), "images"), filepath.Join(sharedRoot(t), "containers"))
}

// noContainersLeftIn is noContainersLeft for a store and a state directory.
func noContainersLeftIn(t *testing.T, images, state string) {
	t.Helper()
	ents, _ := os.ReadDir(state)
	for _, e := range ents {
		// (.exe-lower, the sealed copy of the runtime's empty layer, is
		// the runtime's, not a container's.)
		if e.IsDir() && e.Name() != exeLowerDir {
			t.Errorf("container state left behind: %s", e.Name())
		}
	}
	mounts, _ := os.ReadDir(filepath.Join(images, "image", "overlay2", "layerdb", "mounts"))
	if len(mounts) != 0 {
		t.Errorf("%d container layer records left behind", len(mounts))
	}
}

func TestExitStatusIsTheCommands(t *testing.T) {
	setup(t)
	for _, tc := range []struct {
		cmd  string
		want int
	}{{"exit 0", 0}, {"exit 3", 3}, {"sh -c 'kill -KILL $$'; exit $?", 137}} {
		r := ctr(t, opts{}, "run", "--", "sh", "-c", tc.cmd)
		if r.Code != tc.want {
			t.Errorf("%q: want exit %d:\n%s", tc.cmd, tc.want, r)
		}
	}
	noContainersLeft(t)
}

// WORKSHOP_TIMING=1 (what `make bench` uses for its breakdown) makes the
// runtime and the container's init mark each phase on stderr, the init's
// marks between the runtime's clone and the container's exit; unset, a run
// prints nothing of the kind.
func TestTimingMarksCoverBothProcesses(t *testing.T) {
	setup(t)
	r := ctr(t, opts{Env: []string{"WORKSHOP_TIMING=1"}}, "run", "--", "/bin/true")
	if r.Code != 0 {
		t.Fatalf("run with WORKSHOP_TIMING=1:\n%s", r)
	}
	at := map[string]int64{}
	for _, l := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
		f := strings.SplitN(l, " ", 3)
		if len(f) != 3 || f[0] != "timing" {
			t.Fatalf("a line that is not a timing mark on stderr: %q", l)
		}
		us, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatalf("bad mark %q", l)
		}
		at[f[2]] = us
	}
	order := []string{"runtime: Go runtime started", "runtime: init cloned into new namespaces",
		"init: root mounted", "init: pivot_root", "init: capabilities dropped, exec",
		"runtime: container exited", "runtime: cleaned up"}
	for i, what := range order {
		if _, ok := at[what]; !ok {
			t.Fatalf("no mark %q in:\n%s", what, r.Stderr)
		}
		if i > 0 && at[what] < at[order[i-1]] {
			t.Errorf("mark %q comes before %q", what, order[i-1])
		}
	}
	r = ctr(t, opts{}, "run", "--", "/bin/true")
	if r.Code != 0 || strings.Contains(r.Stderr, "timing ") {
		t.Errorf("without WORKSHOP_TIMING a run printed marks:\n%s", r)
	}
}

func TestCommandIsPIDOne(t *testing.T) {
	setup(t)
	r := ctr(t, opts{}, "run", "--", "sh", "-c", "echo $$")
	if r.Code != 0 || r.Stdout != "1\n" {
		t.Fatalf("want 1:\n%s", r)
	}
}

func TestPsInsideSeesOnlyTheContainer(t *testing.T) {
	setup(t)
	r := ctr(t, opts{}, "run", "--", "ps", "-o", "pid,comm")
	rows := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if r.Code != 0 || len(rows) != 2 || strings.Fields(rows[1])[0] != "1" || strings.Fields(rows[1])[1] != "ps" {
		t.Fatalf("ps inside should list only itself, as PID 1:\n%s", r)
	}
}

func TestHostnameIsTheContainers(t *testing.T) {
	setup(t)
	r := ctr(t, opts{}, "run", "--hostname", "box", "--", "hostname")
	if r.Stdout != "box\n" {
		t.Fatalf("want box:\n%s", r)
	}
	host, _ := os.Hostname()
	if host == "box" {
		t.Fatal("the host's hostname changed")
	}
	// Default: the short container ID, as Docker's.
	r = ctr(t, opts{}, "run", "--", "hostname")
	if !regexp.MustCompile(`^[0-9a-f]{12}\n$`).MatchString(r.Stdout) {
		t.Fatalf("want a 12-digit ID as hostname:\n%s", r)
	}
}

func TestNetNoneHasOnlyLoopbackUp(t *testing.T) {
	setup(t)
	r := ctr(t, opts{}, "run", "--net", "none", "--", "sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/operstate; ping -c1 -W1 127.0.0.1 >/dev/null && echo ping-ok")
	if r.Code != 0 || r.Stdout != "lo\nunknown\nping-ok\n" {
		t.Fatalf("want only lo, up and answering:\n%s", r)
	}
	r = ctr(t, opts{}, "run", "--net", "host", "--", "ls", "/sys/class/net")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) == "lo" {
		t.Fatalf("--net host should see the host's interfaces:\n%s", r)
	}
}

func TestVolumesBindAndReadOnly(t *testing.T) {
	setup(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "from-host"), []byte("hello\n"), 0o644)
	r := ctr(t, opts{}, "run", "-v", dir+":/data", "--", "sh", "-c", "cat /data/from-host; echo back > /data/from-ctr")
	if r.Code != 0 || r.Stdout != "hello\n" {
		t.Fatalf("volume not readable:\n%s", r)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "from-ctr")); string(b) != "back\n" {
		t.Fatalf("a write inside did not reach the host: %q", b)
	}
	r = ctr(t, opts{}, "run", "-v", dir+":/data:ro", "--", "sh", "-c", "echo no > /data/ro-write")
	if r.Code == 0 {
		t.Fatalf("a write to a :ro volume succeeded:\n%s", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "ro-write")); err == nil {
		t.Fatal("the :ro volume was written on the host")
	}
	oneLine(t, ctr(t, opts{}, "run", "-v", "/no/such/dir:/data", "--", "true"), "does not exist")
	oneLine(t, ctr(t, opts{}, "run", "-v", "relative", "--", "true"), "invalid -v")
}

func TestHardeningStopsMountAndSysrq(t *testing.T) {
	setup(t)
	// Each check proves itself against the host first: the files exist and
	// are readable or writable there, so only the hardening can stop them.
	for _, p := range []string{"/proc/timer_list", "/proc/keys", "/sys/firmware", "/proc/sys/kernel/domainname"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing on this host: the check below would prove nothing", p)
		}
	}
	r := ctr(t, opts{}, "run", "--", "sh", "-c",
		"mkdir -p /mnt; mount -t tmpfs none /mnt 2>/dev/null && echo MOUNTED; "+
			"if [ -e /proc/sysrq-trigger ]; then echo h 2>/dev/null > /proc/sysrq-trigger && echo SYSRQ; fi; "+
			"echo x 2>/dev/null > /proc/sys/kernel/domainname && echo PROCSYS; "+
			"cat /proc/timer_list /proc/keys | wc -c; ls /sys/firmware | wc -l; grep CapBnd /proc/self/status")
	if r.Code != 0 || strings.Contains(r.Stdout, "MOUNTED") || strings.Contains(r.Stdout, "SYSRQ") || strings.Contains(r.Stdout, "PROCSYS") {
		t.Fatalf("mount, sysrq-trigger or /proc/sys worked inside:\n%s", r)
	}
	// Docker's 14 capabilities, and no CAP_SYS_ADMIN (bit 21).
	m := regexp.MustCompile(`CapBnd:\s+([0-9a-f]+)`).FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("no CapBnd:\n%s", r)
	}
	bnd, _ := strconv.ParseUint(m[1], 16, 64)
	if bnd != 0xa80425fb || bnd&(1<<21) != 0 {
		t.Fatalf("bounding set %x, want Docker's default a80425fb", bnd)
	}
	if !strings.HasPrefix(r.Stdout, "0\n0\n") {
		t.Fatalf("/proc/timer_list, /proc/keys and /sys/firmware should be masked (empty):\n%s", r)
	}
	// The same reads on the host are not empty: the masking did it.
	if b, _ := os.ReadFile("/proc/timer_list"); len(b) == 0 {
		t.Fatal("/proc/timer_list is empty on the host too")
	}
	r = ctr(t, opts{}, "run", "--", "grep", "NoNewPrivs", "/proc/self/status")
	if !strings.Contains(r.Stdout, "1") {
		t.Fatalf("no_new_privs not set:\n%s", r)
	}
}

func TestRootIsTheImageAndRootfsDirIsUnchanged(t *testing.T) {
	setup(t)
	dir := t.TempDir()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		testkit.Unavailable(t, "busybox is needed to make a root directory: apt-get install busybox-static")
	}
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	data, _ := os.ReadFile(bb)
	os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755)
	for _, a := range []string{"sh", "ls", "cat", "touch", "rm"} {
		os.Symlink("busybox", filepath.Join(dir, "bin", a))
	}
	os.WriteFile(filepath.Join(dir, "only-here"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "data"), []byte("original\n"), 0o644)
	before := treeHash(t, dir)
	r := ctr(t, opts{}, "run", "--rootfs", dir, "--", "sh", "-c", "ls /; touch /new; rm /only-here; echo changed >> /data; cat /data")
	if r.Code != 0 || !strings.Contains(r.Stdout, "only-here") || !strings.HasSuffix(r.Stdout, "original\nchanged\n") {
		t.Fatalf("run --rootfs:\n%s", r)
	}
	if after := treeHash(t, dir); after != before {
		t.Fatal("--rootfs DIR was modified")
	}
	noContainersLeft(t)
}

func treeHash(t *testing.T, dir string) string {
	h := sha256.New()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		fi, _ := os.Lstat(p)
		fmt.Fprintf(h, "%s %v %d\n", p, fi.Mode(), fi.Size())
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}

func TestMemoryHogIsKilledAndHostIsFine(t *testing.T) {
	setup(t)
	// tail -c 300m keeps the last 300 MB it read: from /dev/zero, it grows
	// until the limit stops it.
	r := ctr(t, opts{}, "run", "--memory", "32m", "--", "tail", "-c", "300m", "/dev/zero")
	if r.Code != 137 {
		t.Fatalf("a memory hog as PID 1 should end with 137 (OOM kill):\n%s", r)
	}
	// The host is fine, and so is the next container.
	r = ctr(t, opts{}, "run", "--", "sh", "-c", "head -c 1m /dev/zero | wc -c")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "1048576" {
		t.Fatalf("after the OOM kill, a new container does not run:\n%s", r)
	}
	oneLine(t, ctr(t, opts{}, "run", "--memory", "12q", "--", "true"), "invalid memory size")
	noContainersLeft(t)
}

func TestForkBombStopsAtPidsLimit(t *testing.T) {
	setup(t)
	// The inner shell forks until the kernel refuses, and dies of it; its
	// sleeps live on, re-parented to PID 1.
	st := detached(t, "forker", "--pids-limit", "10", "--", "sh", "-c",
		"sh -c 'while :; do sleep 30 & done'; echo forked; sleep 30")
	current := func() int {
		b, _ := os.ReadFile(filepath.Join(st.CgroupPaths["pids"], "pids.current"))
		v, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return v
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(ctr(t, opts{}, "logs", "forker").Stdout, "forked") {
		time.Sleep(50 * time.Millisecond)
	}
	if n := current(); n < 5 || n > 10 {
		t.Fatalf("the container should be held at 10 processes at most (and have reached it), has %d", n)
	}
	events, _ := os.ReadFile(filepath.Join(st.CgroupPaths["pids"], "pids.events"))
	if m := regexp.MustCompile(`max (\d+)`).FindSubmatch(events); m == nil || string(m[1]) == "0" {
		t.Fatalf("pids.events should count refused forks: %q", events)
	}
	if logs := ctr(t, opts{}, "logs", "forker"); !strings.Contains(logs.Stdout, "can't fork") {
		t.Fatalf("the shell should report failed forks:\n%s", logs)
	}
}

func TestCPUQuotaHoldsTheLoopNearTarget(t *testing.T) {
	setup(t)
	st := detached(t, "cpuhog", "--cpus", "0.2", "--", "sh", "-c", "while :; do :; done")
	usage := func() time.Duration {
		p := st.CgroupPaths["cpuacct"]
		file := filepath.Join(p, "cpuacct.usage")
		if _, err := os.Stat(file); err != nil {
			// cgroup v2: usage_usec in cpu.stat
			b, _ := os.ReadFile(filepath.Join(st.CgroupPaths["cpu"], "cpu.stat"))
			m := regexp.MustCompile(`usage_usec (\d+)`).FindSubmatch(b)
			v, _ := strconv.ParseInt(string(m[1]), 10, 64)
			return time.Duration(v) * time.Microsecond
		}
		b, _ := os.ReadFile(file)
		v, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return time.Duration(v)
	}
	time.Sleep(500 * time.Millisecond)
	u0, t0 := usage(), time.Now()
	time.Sleep(3 * time.Second)
	share := float64(usage()-u0) / float64(time.Since(t0)) * 100
	t.Logf("--cpus 0.2: measured %.1f%% of one CPU over 3 s", share)
	if share < 17 || share > 23 {
		t.Fatalf("want about 20%%, measured %.1f%%", share)
	}
}

func TestExecJoinsTheContainer(t *testing.T) {
	setup(t)
	detached(t, "execme", "--hostname", "inside", "--", "sh", "-c", "echo hi > /tmp/made-inside; sleep 100")
	time.Sleep(100 * time.Millisecond)
	r := ctr(t, opts{}, "exec", "execme", "--", "sh", "-c", "hostname; cat /tmp/made-inside; ps -o pid,comm | grep -c sleep; echo $$")
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if r.Code != 0 || len(lines) != 4 || lines[0] != "inside" || lines[1] != "hi" || lines[2] != "1" {
		t.Fatalf("exec should see the container's hostname, files and processes:\n%s", r)
	}
	if pid, _ := strconv.Atoi(lines[3]); pid <= 1 || pid > 100 {
		t.Fatalf("exec'd shell's PID should be a small number in the container's namespace, got %s", lines[3])
	}
	r = ctr(t, opts{Stdin: "typed\n"}, "exec", "-i", "execme", "--", "cat")
	if r.Stdout != "typed\n" {
		t.Fatalf("exec -i did not pass stdin:\n%s", r)
	}
	if r = ctr(t, opts{}, "exec", "execme", "--", "sh", "-c", "exit 4"); r.Code != 4 {
		t.Fatalf("exec's status:\n%s", r)
	}
	oneLine(t, ctr(t, opts{}, "exec", "execme", "--", "no-such-cmd"), "command not found")
	if ps := ctr(t, opts{}, "ps"); !strings.Contains(ps.Stdout, "execme") || !strings.Contains(ps.Stdout, "Up ") {
		t.Fatalf("ps does not list the running container:\n%s", ps)
	}
	if r = ctr(t, opts{}, "stop", "-t", "1", "execme"); r.Code != 0 {
		t.Fatalf("stop:\n%s", r)
	}
	oneLine(t, ctr(t, opts{}, "exec", "execme", "--", "true"), "is not running")
	if ps := ctr(t, opts{}, "ps", "-a"); !strings.Contains(ps.Stdout, "Exited (137)") {
		t.Fatalf("ps -a should show the stopped container:\n%s", ps)
	}
}

func TestDetachedLogsAndRemove(t *testing.T) {
	setup(t)
	r := ctr(t, opts{}, "run", "-d", "--name", "logger", "--", "sh", "-c", "echo one; echo two >&2")
	if r.Code != 0 || !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(r.Stdout) {
		t.Fatalf("run -d should print the container's ID:\n%s", r)
	}
	time.Sleep(300 * time.Millisecond)
	if l := ctr(t, opts{}, "logs", "logger"); l.Stdout != "one\ntwo\n" {
		t.Fatalf("logs:\n%s", l)
	}
	oneLine(t, ctr(t, opts{}, "run", "--name", "logger", "--", "true"), "in use")
	if r = ctr(t, opts{}, "rm", "logger"); r.Code != 0 {
		t.Fatalf("rm:\n%s", r)
	}
	noContainersLeft(t)
}

func TestCommitThenRunSeesTheChange(t *testing.T) {
	setup(t)
	r := ctr(t, opts{}, "run", "-d", "--name", "changer", "--", "sh", "-c", "echo committed > /etc/greeting; rm /etc/motd")
	if r.Code != 0 {
		t.Fatalf("run:\n%s", r)
	}
	defer ctr(t, opts{}, "rm", "-f", "changer")
	time.Sleep(300 * time.Millisecond)
	if r = ctr(t, opts{}, "commit", "changer", "greeted"); r.Code != 0 {
		t.Fatalf("commit:\n%s", r)
	}
	r = ctr(t, opts{}, "run", "greeted", "--", "sh", "-c", "cat /etc/greeting; ls /etc/motd 2>&1")
	if !strings.HasPrefix(r.Stdout, "committed\n") || !strings.Contains(r.Stdout, "No such file") {
		t.Fatalf("the new image should hold the change and the deletion:\n%s", r)
	}
	if img := ctr(t, opts{}, "images"); !regexp.MustCompile(`greeted\s+latest\s+[0-9a-f]{12}\s+.*\s3\s`).MatchString(img.Stdout) {
		t.Fatalf("images should list greeted with 3 layers:\n%s", img)
	}
}

func TestImportExportTarAndSaveArchive(t *testing.T) {
	setup(t)
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testkit.Unavailable(t, "busybox is needed: apt-get install busybox-static")
	}
	dir := t.TempDir()
	// A `docker export`-style tar: one flat root filesystem.
	export := filepath.Join(dir, "export.tar")
	writeTar(t, export, []tarEntry{{"bin/busybox", bb, 0o755, ""}, {"bin/sh", nil, 0, "busybox"}, {"bin/cat", nil, 0, "busybox"}, {"bin/ls", nil, 0, "busybox"}, {"etc/flavour", []byte("exported\n"), 0o644, ""}})
	if r := ctr(t, opts{}, "import", export, "exported"); r.Code != 0 {
		t.Fatalf("import export tar:\n%s", r)
	}
	if r := ctr(t, opts{}, "run", "exported", "--", "cat", "/etc/flavour"); r.Stdout != "exported\n" {
		t.Fatalf("run exported:\n%s", r)
	}
	// A `docker save` archive: two layers, the second deleting a file of the
	// first (whiteout) and replacing a directory (opaque).
	var l1, l2 bytes.Buffer
	tarTo(t, &l1, []tarEntry{{"bin/busybox", bb, 0o755, ""}, {"bin/sh", nil, 0, "busybox"}, {"bin/ls", nil, 0, "busybox"}, {"bin/cat", nil, 0, "busybox"},
		{"old", []byte("gone soon\n"), 0o644, ""}, {"d/a", []byte("a\n"), 0o644, ""}})
	tarTo(t, &l2, []tarEntry{{".wh.old", nil, 0o644, ""}, {"d/.wh..wh..opq", nil, 0o644, ""}, {"d/b", []byte("b\n"), 0o644, ""}})
	d1, d2 := digest(l1.Bytes()), digest(l2.Bytes())
	cfg := fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[%q,%q]}}`, d1, d2)
	manifest := `[{"Config":"config.json","RepoTags":["saved:latest"],"Layers":["l1/layer.tar","l2/layer.tar"]}]`
	save := filepath.Join(dir, "save.tar")
	writeTar(t, save, []tarEntry{{"manifest.json", []byte(manifest), 0o644, ""}, {"config.json", []byte(cfg), 0o644, ""},
		{"l1/layer.tar", l1.Bytes(), 0o644, ""}, {"l2/layer.tar", l2.Bytes(), 0o644, ""}})
	if r := ctr(t, opts{}, "import", save, "saved"); r.Code != 0 {
		t.Fatalf("import save archive:\n%s", r)
	}
	r := ctr(t, opts{}, "run", "saved", "--", "sh", "-c", "ls /old 2>&1; ls /d")
	if !strings.Contains(r.Stdout, "No such file") || !strings.HasSuffix(r.Stdout, "b\n") || strings.Contains(r.Stdout, "a\n") {
		t.Fatalf("whiteouts not honoured (want /old gone, /d holding only b):\n%s", r)
	}
	oneLine(t, ctr(t, opts{}, "import", filepath.Join(dir, "missing.tar"), "x"), "import")
	noContainersLeft(t)
}

type tarEntry struct {
	name string
	data []byte
	mode int64
	link string
}

func tarTo(t *testing.T, w *bytes.Buffer, entries []tarEntry) {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	for _, e := range entries {
		for d := filepath.Dir(e.name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		}
		if e.link != "" {
			tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeSymlink, Linkname: e.link, Mode: 0o777})
			continue
		}
		tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: e.mode, Size: int64(len(e.data))})
		tw.Write(e.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeTar(t *testing.T, path string, entries []tarEntry) {
	var b bytes.Buffer
	tarTo(t, &b, entries)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestInitReapsAndForwardsSignals(t *testing.T) {
	setup(t)
	// An orphan (the inner sh exits, its sleep is re-parented to PID 1) must
	// not stay a zombie once it ends.
	r := ctr(t, opts{}, "run", "--init", "--", "sh", "-c", "sh -c 'sleep 0.2 &'; sleep 0.6; ps -o pid,stat,comm")
	if r.Code != 0 || strings.Contains(r.Stdout, " Z ") || !regexp.MustCompile(`\n\s+1 \S+\s+workshop-init`).MatchString(r.Stdout) {
		t.Fatalf("with --init, PID 1 should be the init and no zombie remain:\n%s", r)
	}
	// A signal to the container reaches the command through the init.
	r = ctr(t, opts{}, "run", "-d", "--init", "--name", "sig", "--", "sh", "-c", "trap 'echo got TERM; exit 7' TERM; while :; do sleep 0.1; done")
	if r.Code != 0 {
		t.Fatalf("run -d --init:\n%s", r)
	}
	defer ctr(t, opts{}, "rm", "-f", "sig")
	time.Sleep(300 * time.Millisecond)
	if r = ctr(t, opts{}, "stop", "-t", "5", "sig"); r.Code != 0 {
		t.Fatalf("stop:\n%s", r)
	}
	if l := ctr(t, opts{}, "logs", "sig"); !strings.Contains(l.Stdout, "got TERM") {
		t.Fatalf("SIGTERM was not forwarded by the init:\n%s", l)
	}
	if ps := ctr(t, opts{}, "ps", "-a"); !strings.Contains(ps.Stdout, "Exited (7)") {
		t.Fatalf("the command's status should be the container's:\n%s", ps)
	}
}

// Twenty containers started at once all work, each on the bridge with an
// address of its own (the allocator's lock): each writes its address to a
// shared volume and waits until all twenty have, so that they all hold
// their addresses at the same moment.
func TestTwentyContainersAtOnce(t *testing.T) {
	setup(t)
	ctr(t, opts{}, "run", "--", "true") // the default image exists before the rush
	shared := t.TempDir()
	var wg sync.WaitGroup
	results := make([]testkit.Result, 20)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			script := fmt.Sprintf("echo $$ %d; hostname; ip -4 -o addr show eth0 > /sync/%d; "+
				"n=0; while [ ! -e /sync/go ] && [ $n -lt 300 ]; do sleep 0.05; n=$((n+1)); done; cat /sync/%d", i, i, i)
			results[i] = ctr(t, opts{}, "run", "--name", fmt.Sprintf("many%d", i), "-v", shared+":/sync", "--", "sh", "-c", script)
		}(i)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ents, _ := os.ReadDir(shared); len(ents) == 20 {
			break
		}
	}
	os.WriteFile(filepath.Join(shared, "go"), nil, 0o644)
	wg.Wait()
	addrs := map[string]int{}
	inet := regexp.MustCompile(`inet (\S+)`)
	for i, r := range results {
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, fmt.Sprintf("1 %d\n", i)) {
			t.Errorf("container %d:\n%s", i, r)
		}
		m := inet.FindStringSubmatch(r.Stdout)
		if m == nil {
			t.Errorf("container %d has no address on eth0:\n%s", i, r)
			continue
		}
		if j, ok := addrs[m[1]]; ok {
			t.Errorf("containers %d and %d both have %s at once", j, i, m[1])
		}
		addrs[m[1]] = i
	}
	noContainersLeft(t)
}

func TestKilledRuntimeIsCleanedByTheNextCommand(t *testing.T) {
	setup(t)
	bin := testkit.Stage(t, "06-full-container")
	cmd := exec.Command(bin, "--root", sharedRoot(t), "run", "--name", "orphan", "--memory", "64m", "--", "sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until it runs, then kill the runtime without mercy.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if r := ctr(t, opts{}, "ps"); strings.Contains(r.Stdout, "orphan") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	time.Sleep(100 * time.Millisecond)
	// The next command notices and cleans up: no state, no cgroup.
	if r := ctr(t, opts{}, "ps", "-a"); strings.Contains(r.Stdout, "orphan") {
		t.Fatalf("ps still lists the dead runtime's container:\n%s", r)
	}
	noContainersLeft(t)
}

// A create that fails half way (here: the disk refuses the container's
// layers, after its cgroups exist and, without --explain, after its first
// process was cloned) says so in one line and removes all it made: the
// cgroups, the waiting process, the state. It once panicked instead.
func TestFailedCreateLeavesNothing(t *testing.T) {
	setup(t)
	bin := testkit.Stage(t, "06-full-container")
	root := t.TempDir()
	t.Cleanup(func() { pruneNetwork(t, root) })
	if r := testkit.Run(t, opts{}, bin, "--root", root, "run", "--", "true"); r.Code != 0 {
		t.Fatalf("the first run (building the default image):\n%s", r)
	}
	// An immutable directory refuses new entries, even to root.
	store := filepath.Join(root, "images", "overlay2")
	setImmutable(t, store, true)
	t.Cleanup(func() { setImmutable(t, store, false) })
	for _, explain := range []bool{false, true} {
		args := []string{"--root", root, "run", "--", "true"}
		if explain {
			args = []string{"--root", root, "run", "--explain", "--", "true"}
		}
		r := testkit.Run(t, opts{}, bin, args...)
		if r.Code == 0 || strings.Contains(r.Stderr, "panic") || !strings.Contains(r.Stderr, "preparing the container's layers") {
			t.Fatalf("explain=%v: want a failure that names the layers, and no panic:\n%s", explain, r)
		}
		if !explain {
			oneLine(t, r, "preparing the container's layers")
		}
		ents, _ := os.ReadDir(filepath.Join(root, "containers"))
		for _, e := range ents {
			if e.IsDir() && e.Name() != exeLowerDir {
				t.Errorf("explain=%v: container state left behind: %s", explain, e.Name())
			}
		}
		if out, _ := exec.Command("pgrep", "-f", "^workshop-init __init__ "+root).Output(); len(out) != 0 {
			t.Errorf("explain=%v: the container's first process is still alive: %s", explain, out)
		}
	}
	setImmutable(t, store, false)
	if r := testkit.Run(t, opts{}, bin, "--root", root, "run", "--", "echo", "ok"); r.Code != 0 || r.Stdout != "ok\n" {
		t.Fatalf("a run after the failures:\n%s", r)
	}
}

// setImmutable sets or clears a directory's immutable attribute (chattr +i).
func setImmutable(t *testing.T, dir string, on bool) {
	const immutable = 0x10 // FS_IMMUTABLE_FL, <linux/fs.h>
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		testkit.Unavailable(t, "this filesystem has no file attributes (chattr): %v", err)
	}
	if on {
		flags |= immutable
	} else {
		flags &^= immutable
	}
	v := int(flags)
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, v); err != nil {
		testkit.Unavailable(t, "cannot set the immutable attribute here: %v", err)
	}
}

func TestBadInputGivesOneLineAndLeavesNothing(t *testing.T) {
	setup(t)
	oneLine(t, ctr(t, opts{}, "run", "no-such-image", "--", "true"), "unknown image")
	r := ctr(t, opts{}, "run", "--", "no-such-command")
	if r.Code != 127 {
		t.Fatalf("want 127 for a command not in the root:\n%s", r)
	}
	oneLine(t, r, "command not found")
	oneLine(t, ctr(t, opts{}, "run", "--memory", "lots", "--", "true"), "invalid memory size")
	oneLine(t, ctr(t, opts{}, "run", "--cpus", "-1", "--", "true"), "cpus")
	oneLine(t, ctr(t, opts{}, "run", "--net", "overlay", "--", "true"), "--net")
	oneLine(t, ctr(t, opts{}, "run", "--net", "none", "-p", "8080:80", "--", "true"), "-p needs --net bridge")
	oneLine(t, ctr(t, opts{}, "run", "-p", "80", "--", "true"), "HOSTPORT:CTRPORT")
	oneLine(t, ctr(t, opts{}, "exec", "nobody-here", "--", "true"), "no such container")
	oneLine(t, ctr(t, opts{}, "run", "--bogus"), "flag provided but not defined")
	noContainersLeft(t)
}

func TestNotRootGetsOneClearLine(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	// (`run` works as an ordinary user: rootless_test.go.)
	r := testkit.Run(t, opts{AsUser: true}, testkit.Stage(t, "06-full-container"), "--root", "/tmp/nowhere", "ps", "-a")
	oneLine(t, r, "needs root")
	// The hint is the learner's own command under sudo: a bare `sudo go
	// run ./06-full-container` would run the demonstration instead.
	oneLine(t, r, "run `sudo go run ./06-full-container --root /tmp/nowhere ps -a`")
}

// Ctrl-C on a foreground run: PID 1 ignores SIGINT (it has no handler), so
// the runtime follows up with SIGKILL, and cleans up everything.
func TestCtrlCEndsTheContainerAndCleansUp(t *testing.T) {
	setup(t)
	cmd := exec.Command(testkit.Stage(t, "06-full-container"), "--root", sharedRoot(t), "run", "--name", "interrupted", "--memory", "64m", "--", "sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt it early, while the runtime may still be setting up (as a
	// learner's Ctrl-C may come at any moment): as soon as its state exists.
	deadline := time.Now().Add(20 * time.Second)
	for made := false; !made && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		ents, _ := os.ReadDir(filepath.Join(sharedRoot(t), "containers"))
		for _, e := range ents {
			made = made || (e.IsDir() && e.Name() != exeLowerDir) // not the lock file, nor the runtime's own
		}
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	endsWithin(t, cmd, 10*time.Second, "run did not end within 10 s of Ctrl-C")
	// ...130 if it came before the container ran (the setup was undone),
	// 137 if the container was killed.
	if code := cmd.ProcessState.ExitCode(); code != 137 && code != 130 {
		t.Fatalf("want exit 137 or 130, got %d after %v", code, time.Since(start))
	}
	noContainersLeft(t)

	// And once it surely runs, with a PID 1 that has no SIGINT handler
	// (sleep): whether the signal finds the runtime's init still setting up
	// (it catches it) or sleep (which ignores it, as PID 1), the runtime
	// follows with SIGKILL: 137.
	cmd = exec.Command(testkit.Stage(t, "06-full-container"), "--root", sharedRoot(t), "run", "--name", "interrupted2", "--", "sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(ctr(t, opts{}, "ps").Stdout, "Up ") {
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 137 {
		t.Fatalf("want 137 once the container runs, got %v", err)
	}
	noContainersLeft(t)
}

// Root inside keeps CAP_MKNOD (Docker's default): it can make a node for a
// device of the host's (here the kernel log, /dev/kmsg, c 1:11), but the
// device cgroup refuses to let it open one. The node is opened for writing:
// reading the kernel log also needs CAP_SYSLOG (with dmesg_restrict), which
// the container lacks anyway, so a read would be refused without the cgroup
// too, and prove nothing.
func TestDeviceCgroupKeepsHostDevicesOut(t *testing.T) {
	setup(t)
	// On the host, the same node opens: the cgroup makes the difference.
	dir := t.TempDir()
	if err := unix.Mknod(filepath.Join(dir, "kmsg"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 11))); err != nil {
		t.Fatal(err)
	}
	if f, err := os.OpenFile(filepath.Join(dir, "kmsg"), os.O_WRONLY, 0); err != nil {
		t.Fatalf("the host cannot open c 1:11 for writing either (%v): the check would prove nothing", err)
	} else {
		f.Close()
	}
	r := ctr(t, opts{}, "run", "--", "sh", "-c", "mknod /tmp/kmsg c 1 11 && echo made; echo workshop-device-cgroup-probe > /tmp/kmsg; head -c1 /dev/zero | wc -c")
	if r.Code != 0 || r.Stdout != "made\n1\n" || !strings.Contains(r.Stderr, "Operation not permitted") {
		t.Fatalf("want the node made (m), refused when opened, /dev/zero fine:\n%s", r)
	}
}
