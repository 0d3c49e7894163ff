// Command guestinit is PID 1 of the proving-ground VM (see ../doc.go): it
// makes the guest look like a learner's pure cgroup v2 VM (shared `/`,
// cgroup2 alone at /sys/fs/cgroup, cpu, memory and pids enabled at the root
// as systemd does), runs every test binary the host packed, gives every stage
// its default run, repeats stage 03 without cpu in the root's
// cgroup.subtree_control, and powers off.
//
// It reports on the serial console: go test's own -test.v lines between
// markers (../protocol.go), and its own checks in the same shape, so that
// the host reads everything the same way.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/testkit"
	"github.com/container-internals/workshop/vmtest"
)

const cgroupRoot = "/sys/fs/cgroup"

var env = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root",
	"TERM=dumb",
	"LANG=C.UTF-8",
	"WORKSHOP_STRICT=1",
	"WORKSHOP_PREBUILT=" + vmtest.GuestPrebuilt,
}

func main() {
	if os.Getpid() == 1 {
		reaper()
		return
	}
	work()
}

// reaper is PID 1: it starts the real work as its child and reaps every
// orphan until that child ends (a PID 1 that never waits fills the process
// table with zombies), then powers off: an init that exits panics the
// kernel, and a hung guest only ends at the host's timeout.
func reaper() {
	defer powerOff()
	cmd := exec.Command("/usr/sbin/guestinit", "work")
	// The console: /dev/null does not exist until the worker mounts /dev.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stdout
	if err := cmd.Start(); err != nil {
		fmt.Printf("guestinit: %v\n", err)
		return
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid == cmd.Process.Pid {
			return
		}
	}
}

func work() {
	defer func() {
		if r := recover(); r != nil {
			fmt.Printf("guestinit: panic: %v\n", r)
		}
	}()
	os.Stdout.Sync()

	var plan vmtest.Plan
	b, err := os.ReadFile(vmtest.PlanPath)
	if err == nil {
		err = json.Unmarshal(b, &plan)
	}
	if err != nil {
		fmt.Printf("guestinit: reading the plan: %v\n", err)
		return
	}
	os.Clearenv()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}

	if !boot(plan) {
		fmt.Println(vmtest.MarkDone)
		return
	}
	before, err := testkit.SnapshotHost()
	for _, p := range plan.Packages {
		runPackage(p, plan.PackageTimeout)
	}
	tour(plan)
	quirk(plan)
	leaks(before, err)
	kernelLog()
	fmt.Println(vmtest.MarkDone)
}

// suite prints go test's lines for the guest's own checks.
type suite struct {
	rel    string
	start  time.Time
	failed bool
}

func begin(rel string) *suite {
	fmt.Println(vmtest.MarkPackage + rel)
	return &suite{rel: rel, start: time.Now()}
}

// test reports one check: fn returns "" when it passed, or why it failed.
func (s *suite) test(name string, fn func() string) {
	fmt.Printf("=== RUN   %s\n", name)
	start := time.Now()
	why := fn()
	verdict := "PASS"
	if why != "" {
		verdict = "FAIL"
		s.failed = true
		for _, l := range strings.Split(strings.TrimRight(why, "\n"), "\n") {
			fmt.Printf("    %s\n", l)
		}
	}
	fmt.Printf("--- %s: %s (%.2fs)\n", verdict, name, time.Since(start).Seconds())
}

func (s *suite) end() {
	code := 0
	if s.failed {
		code = 1
	}
	fmt.Printf("%s%s exit=%d seconds=%.2f\n", vmtest.MarkEnd, s.rel, code, time.Since(s.start).Seconds())
}

// boot sets the guest up; false means nothing else can run.
func boot(plan vmtest.Plan) bool {
	s := begin(vmtest.BootPackage)
	defer s.end()
	s.test("TestMounts", func() string {
		var errs []string
		for _, m := range []struct{ src, dir, fstype, data string }{
			{"proc", "/proc", "proc", ""},
			{"sysfs", "/sys", "sysfs", ""},
			{"devtmpfs", "/dev", "devtmpfs", "mode=0755"},
			{"devpts", "/dev/pts", "devpts", "gid=5,mode=620,ptmxmode=000"},
			{"tmpfs", "/dev/shm", "tmpfs", "mode=1777"},
			// nsdelegate and memory_recursiveprot: as systemd mounts it.
			{"cgroup2", cgroupRoot, "cgroup2", "nsdelegate,memory_recursiveprot"},
			{"tmpfs", "/run", "tmpfs", "mode=0755,size=20%"},
		} {
			os.MkdirAll(m.dir, 0o755)
			if err := unix.Mount(m.src, m.dir, m.fstype, unix.MS_NOSUID, m.data); err != nil {
				errs = append(errs, fmt.Sprintf("mount -t %s %s: %v", m.fstype, m.dir, err))
			}
		}
		// systemd makes every mount shared at boot; so must we, or the
		// stages' MS_PRIVATE lessons would pass for the wrong reason.
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SHARED, ""); err != nil {
			errs = append(errs, fmt.Sprintf("mount --make-rshared /: %v", err))
		}
		os.Chmod("/tmp", 0o1777) // on the root filesystem, as on Ubuntu: no tmpfs
		os.Symlink("/proc/self/mounts", "/etc/mtab")
		return strings.Join(errs, "\n")
	})
	s.test("TestBusyboxAppletsAndLoopback", func() string {
		out, err := exec.Command("/usr/bin/busybox", "--install", "-s").CombinedOutput()
		if err != nil {
			return fmt.Sprintf("busybox --install -s: %v\n%s", err, out)
		}
		unix.Sethostname([]byte("vmtest"))
		// systemd raises pid_max to 2^22 on 64-bit machines (its
		// 50-pid-max.conf); ps sizes its PID column from it.
		os.WriteFile("/proc/sys/kernel/pid_max", []byte("4194304"), 0)
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			return fmt.Sprintf("ip link set lo up: %v\n%s", err, out)
		}
		return ""
	})
	s.test("TestModules", func() string {
		var errs []string
		for _, m := range plan.Modules {
			out, err := exec.Command("insmod", filepath.Join(vmtest.GuestModules, m)).CombinedOutput()
			if err != nil {
				errs = append(errs, fmt.Sprintf("insmod %s: %v %s", m, err, out))
			}
		}
		return strings.Join(errs, "\n")
	})
	s.test("TestNetworkCardUp", func() string {
		// QEMU's user-mode network: the guest is 10.0.2.15, the host 10.0.2.2.
		for _, args := range [][]string{
			{"link", "set", "eth0", "up"},
			{"addr", "add", "10.0.2.15/24", "dev", "eth0"},
			{"route", "add", "default", "via", "10.0.2.2"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				return fmt.Sprintf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		return ""
	})
	s.test("TestPureCgroupV2", func() string {
		var errs []string
		var st unix.Statfs_t
		if err := unix.Statfs(cgroupRoot, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
			errs = append(errs, cgroupRoot+" is not cgroup2")
		}
		if mi, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(mi, []byte(" - cgroup ")) {
			errs = append(errs, "a cgroup v1 hierarchy is mounted")
		}
		for _, c := range plan.Controllers {
			if err := os.WriteFile(cgroupRoot+"/cgroup.subtree_control", []byte("+"+c), 0); err != nil {
				errs = append(errs, fmt.Sprintf("echo +%s > %s/cgroup.subtree_control: %v", c, cgroupRoot, err))
			}
		}
		up, _ := os.ReadFile("/proc/uptime")
		fmt.Printf("%skernel: %s, up %ss when the suites start\n", vmtest.MarkNote, release(), strings.Fields(string(up) + " ?")[0])
		fmt.Printf("%scgroup.controllers: %s\n", vmtest.MarkNote, read(cgroupRoot+"/cgroup.controllers"))
		fmt.Printf("%sroot cgroup.subtree_control: %s\n", vmtest.MarkNote, read(cgroupRoot+"/cgroup.subtree_control"))
		return strings.Join(errs, "\n")
	})
	s.test("TestRunsInASessionScopeLikeSystemd", func() string {
		// On the learners' VM, `sudo go run` runs in a leaf of systemd's
		// tree, not in the root cgroup; systemd's own PID 1 sits in
		// init.scope. Do the same, so a stage that reads /proc/self/cgroup
		// or creates groups beside its own meets what learners meet.
		for _, g := range []struct{ dir, pid string }{
			{"init.scope", "1"},
			{"user.slice/user-0.slice/session-1.scope", fmt.Sprint(os.Getpid())},
		} {
			dir := filepath.Join(cgroupRoot, g.dir)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err.Error()
			}
			if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(g.pid), 0); err != nil {
				return fmt.Sprintf("echo %s > %s/cgroup.procs: %v", g.pid, dir, err)
			}
		}
		self, _ := os.ReadFile("/proc/self/cgroup")
		fmt.Printf("%sthe suites run in cgroup %s\n", vmtest.MarkNote, strings.TrimSpace(string(self)))
		return ""
	})
	s.test("TestRootIsSharedMount", func() string {
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		for _, l := range strings.Split(string(mi), "\n") {
			f := strings.Fields(l)
			if len(f) > 6 && f[4] == "/" {
				fmt.Printf("%s/ in mountinfo: %s\n", vmtest.MarkNote, strings.Join(f[4:], " "))
				if !strings.Contains(l, " shared:") {
					return "/ is not a shared mount: " + l
				}
				return ""
			}
		}
		return "no / in /proc/self/mountinfo"
	})
	return !s.failed
}

// runPackage runs one test binary in its package's directory, its -test.v
// output straight to the console.
func runPackage(p vmtest.Package, timeout string) {
	fmt.Println(vmtest.MarkPackage + p.Rel)
	start := time.Now()
	d, err := time.ParseDuration(timeout)
	if err != nil {
		d = 4 * time.Minute
	}
	// go test's own -test.timeout panics with every goroutine's stack; the
	// context is the backstop if even that hangs.
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	args := []string{"-test.v", "-test.count=1", "-test.timeout=" + d.String()}
	if len(p.HostOnly) > 0 {
		var names []string
		for _, h := range p.HostOnly {
			names = append(names, regexp.QuoteMeta(h.Test))
			fmt.Printf("%snot run in the guest: %s %s: %s\n", vmtest.MarkNote, p.Rel, h.Test, h.Why)
		}
		args = append(args, "-test.skip=^("+strings.Join(names, "|")+")$")
	}
	cmd := exec.CommandContext(ctx, p.Binary, args...)
	cmd.Dir = filepath.Join(vmtest.GuestWork, p.Rel)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	err = cmd.Run()
	code := exitCode(cmd, err)
	os.Stdout.Sync()
	fmt.Printf("\n%s%s exit=%d seconds=%.2f\n", vmtest.MarkEnd, p.Rel, code, time.Since(start).Seconds())
}

// tour gives every stage its default run, judged as `make tour` judges it:
// exit 0, at least one "check passed:", no "CHECK FAILED:".
func tour(plan vmtest.Plan) {
	if len(plan.Stages) == 0 {
		return
	}
	s := begin(vmtest.TourPackage)
	defer s.end()
	for _, st := range plan.Stages {
		st := st
		s.test("TestDefaultRun/"+st, func() string {
			out, code := runStage(st, plan.StageTimeout)
			if strings.HasPrefix(st, "03-") {
				for _, l := range shareLines(out) {
					fmt.Printf("%s%s measured: %s\n", vmtest.MarkNote, st, l)
				}
			}
			return judge(out, code)
		})
	}
}

// quirk covers the Ubuntu VM quirk (../../docs/testing.md): the root's
// cgroup.subtree_control without cpu. The stage must either enable it or
// say in one line how to.
func quirk(plan vmtest.Plan) {
	if plan.QuirkStage == "" {
		return
	}
	s := begin(vmtest.QuirkPackage)
	defer s.end()
	ctl := cgroupRoot + "/cgroup.subtree_control"
	s.test("TestStageWithoutCPUInRootSubtreeControl", func() string {
		if err := os.WriteFile(ctl, []byte("-cpu"), 0); err != nil {
			return fmt.Sprintf("echo -cpu > %s: %v (the quirk cannot be set up)", ctl, err)
		}
		defer os.WriteFile(ctl, []byte("+cpu"), 0)
		before := read(ctl)
		if hasWord(before, "cpu") {
			return "cpu is still in " + ctl + " after -cpu: " + before
		}
		fmt.Printf("    %s before the run: %q\n", ctl, before)
		out, code := runStage(plan.QuirkStage, plan.StageTimeout)
		after := read(ctl)
		fmt.Printf("    %s after the run: %q\n", ctl, after)
		note, why := quirkVerdict(plan.QuirkStage, code, out, after)
		if note != "" {
			fmt.Printf("%squirk: %s\n", vmtest.MarkNote, note)
		}
		return why
	})
}

// quirkVerdict judges a stage run with cpu missing from the root's
// cgroup.subtree_control: given its exit status, its output and the file's
// contents afterwards, either a note (what the stage did right) or why it
// failed the learner.
func quirkVerdict(stage string, code int, out, after string) (note, why string) {
	ctl := cgroupRoot + "/cgroup.subtree_control"
	switch {
	case code == 0 && hasWord(after, "cpu"):
		if why := judge(out, code); why != "" {
			return "", "the stage enabled cpu but its run failed: " + why
		}
		return stage + " enabled cpu in the root's cgroup.subtree_control itself and passed", ""
	case code != 0:
		var hint []string
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "subtree_control") {
				hint = append(hint, strings.TrimSpace(l))
			}
		}
		if len(hint) == 0 {
			return "", fmt.Sprintf("the stage failed (exit %d) without a line naming cgroup.subtree_control to tell the learner how to enable cpu", code)
		}
		return fmt.Sprintf("%s exited %d and told the learner: %s", stage, code, hint[len(hint)-1]), ""
	default:
		return "", fmt.Sprintf("the stage exited 0 but cpu is still missing from %s (%q): it neither enabled it nor said how", ctl, after)
	}
}

// leaks compares the guest's mounts and cgroups after everything ran with
// what they were after boot: each test checks its own, this also covers the
// default runs and anything a test's check could not see.
func leaks(before testkit.HostState, snapErr error) {
	s := begin(vmtest.LeaksPackage)
	defer s.end()
	s.test("TestNothingLeftBehind", func() string {
		if snapErr != nil {
			return "snapshot after boot: " + snapErr.Error()
		}
		var diff []string
		for i := 0; i < 20; i++ { // lazy unmounts and cgroup removals take a moment
			after, err := testkit.SnapshotHost()
			if err != nil {
				return "snapshot: " + err.Error()
			}
			if diff = testkit.Diff(before, after); len(diff) == 0 {
				return ""
			}
			time.Sleep(100 * time.Millisecond)
		}
		return "left behind after every suite ran:\n" + strings.Join(diff, "\n")
	})
}

// kernelLog prints the kernel's warnings and errors of the whole run
// (overlayfs naming an option it refuses, an OOM kill, a WARN_ON) into the
// console log, outside any suite: loglevel=1 kept them off the console while
// the tests ran, and they are what explains an EINVAL.
func kernelLog() {
	out, err := exec.Command("dmesg", "-r").Output()
	if err != nil {
		fmt.Printf("guestinit: dmesg: %v\n", err)
		return
	}
	fmt.Println("guestinit: the kernel's warnings and errors during the run (dmesg):")
	for _, l := range strings.Split(string(out), "\n") {
		// "<N>" or "<facility*8+N>": keep levels 0 (emergency) to 4 (warning).
		if len(l) > 3 && l[0] == '<' {
			if end := strings.IndexByte(l, '>'); end > 0 {
				var n int
				if _, err := fmt.Sscanf(l[1:end], "%d", &n); err == nil && n%8 <= 4 {
					fmt.Printf("    dmesg | %s\n", l[end+1:])
				}
			}
		}
	}
}

func runStage(name, timeout string) (string, int) {
	d, err := time.ParseDuration(timeout)
	if err != nil {
		d = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(vmtest.GuestPrebuilt, name))
	cmd.Dir = vmtest.GuestWork
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	var buf bytes.Buffer
	// Indented, so that no line of the stage's can pass for a marker.
	w := indent{os.Stdout}
	cmd.Stdout = io.MultiWriter(&buf, w)
	cmd.Stderr = io.MultiWriter(&buf, w)
	err = cmd.Run()
	code := exitCode(cmd, err)
	if ctx.Err() != nil {
		fmt.Fprintf(&buf, "\n(timed out after %s)\n", d)
		code = -1
	}
	return buf.String(), code
}

func judge(out string, code int) string {
	passed := strings.Count(out, "check passed:")
	failed := strings.Count(out, "CHECK FAILED:")
	switch {
	case code != 0:
		return fmt.Sprintf("exit status %d", code)
	case failed > 0:
		return fmt.Sprintf("%d CHECK FAILED line(s)", failed)
	case passed == 0:
		return "no check passed (no `check passed:` line)"
	}
	return ""
}

// shareLines picks the lines of stage 03's output that state a measured CPU
// share: they carry a percentage.
var percent = regexp.MustCompile(`\d+(\.\d+)?\s*%`)

func shareLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if percent.MatchString(l) && (strings.Contains(l, "check") || strings.Contains(strings.ToLower(l), "measured")) {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return lines
}

type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		fmt.Fprintf(i.w, "    | %s\n", sc.Text())
	}
	return len(p), nil
}

func exitCode(cmd *exec.Cmd, err error) int {
	if err == nil {
		return 0
	}
	if cmd.ProcessState != nil {
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			if ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return ws.ExitStatus()
		}
	}
	fmt.Printf("guestinit: %v\n", err)
	return -1
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

func read(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return strings.TrimSpace(string(b))
}

func release() string {
	var u unix.Utsname
	unix.Uname(&u)
	return unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Machine[:])
}

func powerOff() {
	os.Stdout.Sync()
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// Reboot only returns on error; never let PID 1 exit.
	select {}
}
