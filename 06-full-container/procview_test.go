package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-internals/workshop/04-chroot-pivot-root/rootfs"
	"github.com/container-internals/workshop/internal/mountinfo"
	"github.com/container-internals/workshop/internal/testkit"
)

// procpsRoot is a root of the host's procps and coreutils programs (stage
// 04's rootfs.Build). Their free reads /proc/meminfo; busybox's asks the
// kernel through sysinfo(2), which no file can change.
func procpsRoot(t *testing.T) string {
	t.Helper()
	var bins []string
	for _, b := range []string{"sh", "free", "nproc", "head", "cat", "grep", "sleep"} {
		p, err := exec.LookPath(b)
		if err != nil {
			testkit.Unavailable(t, "%s is needed to read the view as a distribution's tools do: apt-get install procps coreutils", b)
		}
		bins = append(bins, p)
	}
	if out, _ := exec.Command("free", "-V").CombinedOutput(); !strings.Contains(string(out), "procps") {
		testkit.Unavailable(t, "free is not procps's (%q): apt-get install procps", strings.TrimSpace(string(out)))
	}
	dir := filepath.Join(t.TempDir(), "root")
	if _, err := rootfs.Build(dir, bins...); err != nil {
		t.Fatal(err)
	}
	return dir
}

// noProcView checks that nothing of a view is left on the host: no FUSE
// mount, and no runtime process (its server) for the test's containers.
func noProcView(t *testing.T) {
	t.Helper()
	ms, err := mountinfo.Self()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if strings.HasPrefix(m.FSType, "fuse.procview") {
			t.Errorf("a /proc view is still mounted on the host: %s", m.Line)
		}
	}
	if out, _ := exec.Command("pgrep", "-f", "^workshop-(monitor|init) .*"+sharedRoot(t)).Output(); len(out) != 0 {
		t.Errorf("a runtime process is still alive: %s", out)
	}
}

// hostMemTotal is the host's MemTotal, in bytes.
func hostMemTotal(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}

// figures runs the learner's commands in a container of 64 MB and half a
// CPU, and returns what they said: free's total, nproc, the cpuN lines of
// /proc/stat, the processors of /proc/cpuinfo, the uptime in seconds, and
// the memory limit read from /sys/fs/cgroup ("" when not there).
func figures(t *testing.T, root string, view bool) (total int64, nproc, cpuLines, processors int, uptime float64, cgroupLimit string) {
	t.Helper()
	args := []string{"run", "--net", "none", "--rootfs", root, "--memory", "64m", "--cpus", "0.5"}
	if view {
		args = append(args, "--proc-view")
	}
	script := `free -b | grep '^Mem:'; nproc; grep -c '^cpu[0-9]' /proc/stat; grep -c ^processor /proc/cpuinfo; sleep 1; cat /proc/uptime
cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || echo none`
	r := ctr(t, opts{}, append(args, "--", "sh", "-c", script)...)
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if r.Code != 0 || len(lines) != 6 {
		t.Fatalf("view=%v: want 6 lines:\n%s", view, r)
	}
	mem := strings.Fields(lines[0])
	total, _ = strconv.ParseInt(mem[1], 10, 64)
	nproc, _ = strconv.Atoi(lines[1])
	cpuLines, _ = strconv.Atoi(lines[2])
	processors, _ = strconv.Atoi(lines[3])
	uptime, _ = strconv.ParseFloat(strings.Fields(lines[4])[0], 64)
	return total, nproc, cpuLines, processors, uptime, lines[5]
}

// With --proc-view, free, nproc, /proc/stat, /proc/cpuinfo and
// /proc/uptime tell the container's figures (64 MB, half a CPU rounded up
// to 1, its own few seconds); without it, the host's, as the articles show.
func TestProcViewTellsTheContainersFigures(t *testing.T) {
	setup(t)
	root := procpsRoot(t)
	t.Cleanup(func() { noProcView(t) })

	total, nproc, cpuLines, processors, uptime, limit := figures(t, root, true)
	const limitBytes = 64 << 20
	if d := total - limitBytes; d < -4096 || d > 4096 {
		t.Errorf("with the view, free's total is %d bytes: want the limit, %d (within a page)", total, limitBytes)
	}
	if nproc != 1 || cpuLines != 1 || processors != 1 {
		t.Errorf("with the view and --cpus 0.5: nproc %d, %d cpuN lines in /proc/stat, %d processors in /proc/cpuinfo: want 1 each", nproc, cpuLines, processors)
	}
	var hostUp float64
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		hostUp, _ = strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	}
	if uptime < 1 || uptime > 10 || hostUp < uptime+5 {
		t.Errorf("with the view, /proc/uptime says %.2f s after a 1 s sleep (the host's: %.2f): want the container's own, 1 to 10 s", uptime, hostUp)
	}
	if limit != strconv.Itoa(limitBytes) {
		t.Errorf("with the view, /sys/fs/cgroup shows the memory limit %q: want %d", limit, limitBytes)
	}

	total, nproc, cpuLines, processors, uptime, _ = figures(t, root, false)
	if host := hostMemTotal(t); total != host {
		t.Errorf("without the view, free's total is %d: want the host's %d", total, host)
	}
	if cpus := runtime.NumCPU(); nproc != cpus || cpuLines != cpus || processors < cpus {
		t.Errorf("without the view: nproc %d, %d cpuN lines, %d processors: want the host's %d", nproc, cpuLines, processors, cpus)
	}
	if uptime < hostUp {
		t.Errorf("without the view, /proc/uptime says %.2f: want the host's (%.2f or more)", uptime, hostUp)
	}
}

// The view is computed at each read: memory the container takes (20 MB in
// its /dev/shm, charged to its cgroup) shows as used.
func TestProcViewUsedMemoryGrowsWithTheContainer(t *testing.T) {
	setup(t)
	root := procpsRoot(t)
	t.Cleanup(func() { noProcView(t) })
	r := ctr(t, opts{}, "run", "--net", "none", "--rootfs", root, "--memory", "64m", "--proc-view", "--",
		"sh", "-c", "free -k | grep ^Mem:; head -c 20m /dev/zero > /dev/shm/fill; free -k | grep ^Mem:")
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if r.Code != 0 || len(lines) != 2 {
		t.Fatalf("want two Mem: lines:\n%s", r)
	}
	used := func(l string) int64 {
		v, _ := strconv.ParseInt(strings.Fields(l)[2], 10, 64)
		return v
	}
	if before, after := used(lines[0]), used(lines[1]); after-before < 19<<10 {
		t.Errorf("free's used went from %d to %d kB after 20 MB were taken: want 19 MB more or so", before, after)
	}
}

// A detached container's view is served by its monitor, and nothing of it
// is mounted on the host while it runs (the container holds the only
// binds); `rm -f` ends the monitor, and with it the server.
func TestProcViewOfADetachedContainerGoesWithIt(t *testing.T) {
	setup(t)
	t.Cleanup(func() { noProcView(t) })
	st := detached(t, "viewed", "--net", "none", "--memory", "48m", "--proc-view", "--", "sleep", "100")
	r := ctr(t, opts{}, "exec", "viewed", "--", "head", "-1", "/proc/meminfo")
	if f := strings.Fields(r.Stdout); r.Code != 0 || len(f) < 2 || f[1] != strconv.Itoa(48<<10) {
		t.Fatalf("exec head -1 /proc/meminfo: want MemTotal 49152 kB:\n%s", r)
	}
	ms, _ := mountinfo.Self()
	for _, m := range ms {
		if strings.HasPrefix(m.FSType, "fuse.") {
			t.Errorf("the host sees the view mounted while the container runs: %s", m.Line)
		}
	}
	// Nothing of the server is within the container's reach: no process
	// inside holds /dev/fuse.
	r = ctr(t, opts{}, "exec", "viewed", "--", "sh", "-c", "ls -l /proc/[0-9]*/fd/ 2>/dev/null | grep -c fuse")
	if strings.TrimSpace(r.Stdout) != "0" {
		t.Errorf("a container process holds /dev/fuse:\n%s", r)
	}
	// Nor can it write to the view: its files are read-only binds.
	if r := ctr(t, opts{}, "exec", "viewed", "--", "sh", "-c", "echo 1 > /proc/meminfo"); r.Code == 0 {
		t.Errorf("a write to the view's /proc/meminfo succeeded:\n%s", r)
	}
	if r := ctr(t, opts{}, "rm", "-f", "viewed"); r.Code != 0 {
		t.Fatalf("rm -f:\n%s", r)
	}
	if !waitGone(&State{Pid: st.Monitor, PidStart: st.MonitorStart}, 5*time.Second) {
		t.Errorf("the monitor (the view's server) of a removed container is still alive")
	}
}

// A runtime killed between the view's mount and its detach (here: stopped
// as soon as the mount appears, then SIGKILLed) leaves a mount whose server
// is gone; the next command removes it, without waiting on it.
func TestKilledRuntimesProcViewIsCleanedByTheNextCommand(t *testing.T) {
	setup(t)
	t.Cleanup(func() { noProcView(t) })
	bin := testkit.Stage(t, "06-full-container")
	caught := false
	for try := 0; try < 20 && !caught; try++ {
		cmd := exec.Command(bin, "--root", sharedRoot(t), "run", "--net", "none", "--proc-view", "--", "sleep", "100")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && !caught {
			if viewMounted(sharedRoot(t)) {
				_ = cmd.Process.Signal(syscall.SIGSTOP)
				caught = viewMounted(sharedRoot(t)) // still there: stopped before its detach
				break
			}
			if r := ctr(t, opts{}, "ps"); strings.Contains(r.Stdout, "sleep") && !viewMounted(sharedRoot(t)) {
				break // the container runs: the window was missed
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
	if !caught {
		t.Fatal("never saw the view mounted before its detach, in 20 runs")
	}
	if !viewMounted(sharedRoot(t)) {
		t.Fatal("the killed runtime's view is not mounted: nothing left to check")
	}
	if r := ctr(t, opts{Timeout: 20 * time.Second}, "ps", "-a"); r.Code != 0 {
		t.Fatalf("ps -a after the kill:\n%s", r)
	}
	if viewMounted(sharedRoot(t)) {
		t.Errorf("the next command left the killed runtime's view mounted")
	}
	noContainersLeft(t)
}

func viewMounted(root string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if m, ok := mountinfo.ParseLine(l); ok && m.FSType == "fuse.procview" && strings.HasPrefix(m.Point, root) {
			return true
		}
	}
	return false
}
