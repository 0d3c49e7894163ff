package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// row is one line of the doctor's table, as printed.
type row struct{ status, detail, fix string }

var rowRE = regexp.MustCompile(`^(\S.*?)\s+(pass|WARN|FAIL)  (.*)$`)

// table parses the doctor's output into rows by check name.
func table(t *testing.T, out string) map[string]row {
	t.Helper()
	rows := map[string]row{}
	last := ""
	for _, l := range strings.Split(out, "\n") {
		if m := rowRE.FindStringSubmatch(l); m != nil {
			rows[m[1]] = row{status: m[2], detail: m[3]}
			last = m[1]
			continue
		}
		if i := strings.Index(l, "fix: "); i >= 0 && last != "" && strings.TrimSpace(l[:i]) == "" {
			r := rows[last]
			r.fix = l[i+len("fix: "):]
			rows[last] = r
		}
	}
	if len(rows) == 0 {
		t.Fatalf("no table in the doctor's output:\n%s", out)
	}
	return rows
}

func doctor(t *testing.T, opts testkit.RunOpts, args ...string) (testkit.Result, map[string]row) {
	t.Helper()
	res := testkit.Run(t, opts, testkit.Stage(t, "cmd/doctor"), args...)
	return res, table(t, res.Stdout)
}

func want(t *testing.T, rows map[string]row, name, status string, detailHas ...string) row {
	t.Helper()
	r, ok := rows[name]
	if !ok {
		t.Fatalf("no %q row", name)
	}
	if r.status != status {
		t.Errorf("%s: %s (%s), want %s", name, r.status, r.detail, status)
	}
	for _, s := range detailHas {
		if !strings.Contains(r.detail+" fix: "+r.fix, s) {
			t.Errorf("%s: %q (fix %q) does not mention %q", name, r.detail, r.fix, s)
		}
	}
	return r
}

// cgroupLayout finds this machine's cgroup layout another way than the
// doctor does (statfs magic numbers rather than the mount table), so the
// test can tell whether the doctor told the truth.
func cgroupLayout(t *testing.T) string {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "v2 only"
	}
	if err := unix.Statfs("/sys/fs/cgroup/unified", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "hybrid"
	}
	return "v1 only"
}

func TestDoctorReportsThisMachinesCgroupsAndOverlay(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	res, rows := doctor(t, testkit.RunOpts{})

	layout := cgroupLayout(t)
	want(t, rows, "cgroup mode", "pass", layout)
	for _, c := range []string{"cpu", "memory", "pids"} {
		var st unix.Statfs_t
		v1 := "/sys/fs/cgroup/" + c
		if layout != "v2 only" && unix.Statfs(v1, &st) == nil && st.Type == unix.CGROUP_SUPER_MAGIC {
			want(t, rows, "cgroup "+c, "pass", "v1 hierarchy at "+v1)
			continue
		}
		sub, _ := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control")
		if slices.Contains(strings.Fields(string(sub)), c) {
			want(t, rows, "cgroup "+c, "pass", "v2, enabled for child cgroups")
		} else if r := rows["cgroup "+c]; r.status == "pass" {
			t.Errorf("cgroup %s: pass (%s), but it is neither a v1 hierarchy nor in subtree_control", c, r.detail)
		}
	}
	if layout == "hybrid" {
		// This sandbox: cgroup2 holds none of the controllers the stages use.
		want(t, rows, "cgroup mode", "pass", "cgroup2 at /sys/fs/cgroup/unified")
		sub, _ := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
		if !strings.Contains(string(sub), "cpu") && !strings.Contains(string(sub), "memory") && !strings.Contains(string(sub), "pids") {
			want(t, rows, "cgroup mode", "pass", "(none of cpu, memory, pids)")
		}
	}

	if ok, _ := hasFilesystem("/proc", "overlay"); !ok {
		testkit.Unavailable(t, "the kernel has no overlay: `sudo modprobe overlay`")
	}
	want(t, rows, "overlayfs", "pass")
	for _, dir := range []string{"/var/lib", "/tmp"} {
		want(t, rows, "overlay upper on "+dir, "pass", "copy-up landed in the upper dir")
		leftovers, _ := filepath.Glob(filepath.Join(dir, "workshop-doctor-*"))
		if len(leftovers) > 0 {
			t.Errorf("the overlay test left %v behind", leftovers)
		}
	}
	for _, k := range namespaceKinds {
		want(t, rows, "namespace "+k.name, "pass")
	}
	want(t, rows, "root", "pass")
	want(t, rows, "program busybox", "pass")

	failed := 0
	for _, r := range rows {
		if r.status == "FAIL" {
			failed++
		}
	}
	if (failed == 0) != (res.Code == 0) {
		t.Errorf("exit status %d with %d FAIL rows: the status must be 0 exactly when nothing failed\n%s", res.Code, failed, res.Stdout)
	}
	if !regexp.MustCompile(`(?m)^doctor: \d+ pass, \d+ warn, \d+ FAIL: `).MatchString(res.Stdout) {
		t.Errorf("no summary line:\n%s", res.Stdout)
	}
}

// checkSummaryCounts: the last line counts the rows, and tells to fix them
// when any failed (whatever else failed on this host, a missing Go say).
func checkSummaryCounts(t *testing.T, out string, rows map[string]row) {
	t.Helper()
	n := map[string]int{}
	for _, r := range rows {
		n[r.status]++
	}
	want := fmt.Sprintf("doctor: %d pass, %d warn, %d FAIL: ", n["pass"], n["WARN"], n["FAIL"])
	if !strings.Contains(out, want) {
		t.Errorf("the summary must say %q:\n%s", want, out)
	}
	if n["FAIL"] > 0 && !strings.Contains(out, "FAIL: fix the FAIL rows") {
		t.Errorf("the summary must say to fix the FAIL rows:\n%s", out)
	}
}

// fakeProc builds the files the doctor reads from /proc, describing the
// workshop VM (Ubuntu 24.04: cgroup v2 only, / shared) with its cgroup root
// in a temporary directory. mutate can break it before the doctor runs.
type fakeMachine struct {
	proc, cgroupRoot, apparmorDir string
}

func newFakeVM(t *testing.T) fakeMachine {
	t.Helper()
	dir := t.TempDir()
	m := fakeMachine{proc: filepath.Join(dir, "proc"), cgroupRoot: filepath.Join(dir, "cgroup"), apparmorDir: filepath.Join(dir, "apparmor.d")}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		t.Helper()
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, []byte(s), 0o644))
	}
	for _, k := range namespaceKinds {
		write(filepath.Join(m.proc, "self/ns", k.name), "")
	}
	write(filepath.Join(m.proc, "sys/kernel/osrelease"), "6.8.0-31-generic\n")
	write(filepath.Join(m.proc, "sys/kernel/apparmor_restrict_unprivileged_userns"), "1\n")
	write(filepath.Join(m.proc, "filesystems"), "nodev\tsysfs\nnodev\tproc\nnodev\tcgroup2\n\text4\nnodev\toverlay\n")
	write(filepath.Join(m.proc, "self/mountinfo"), strings.Join([]string{
		"1 0 252:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
		"22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw",
		"23 1 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw",
		"30 23 0:27 / " + m.cgroupRoot + " rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot",
		"",
	}, "\n"))
	write(filepath.Join(m.cgroupRoot, "cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma misc\n")
	write(filepath.Join(m.cgroupRoot, "cgroup.subtree_control"), "cpuset cpu io memory pids\n")
	return m
}

func (m fakeMachine) args(extra ...string) []string {
	return append([]string{"--proc", m.proc, "--cgroup-root", m.cgroupRoot, "--overlay-dir", "/tmp", "--apparmor-dir", m.apparmorDir}, extra...)
}

func TestDoctorReadsTheWorkshopVMLayout(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	m := newFakeVM(t)
	res, rows := doctor(t, testkit.RunOpts{}, m.args()...)
	want(t, rows, "cgroup mode", "pass", "v2 only (unified)", m.cgroupRoot)
	for _, c := range []string{"cpu", "memory", "pids"} {
		want(t, rows, "cgroup "+c, "pass", "v2, enabled for child cgroups")
	}
	want(t, rows, "propagation of /", "pass", "shared (shared:1)", "make / private")
	want(t, rows, "kernel", "pass", "6.8.0-31-generic")
	want(t, rows, "rootless userns", "WARN", "restricted by AppArmor", "`sudo scripts/provision.sh`", "/usr/local/bin/workshop", "apparmor_restrict_unprivileged_userns=0")
	want(t, rows, "leftover cgroups", "pass", "none")
	if strings.Contains(res.Stdout, "FAIL  ") && res.Code == 0 {
		t.Errorf("a FAIL row with exit status 0:\n%s", res.Stdout)
	}
}

// Ubuntu 24.04's AppArmor restriction on unprivileged user namespaces,
// once scripts/provision.sh installed its profile: the doctor accepts the
// very profile the script writes (read from the script, not copied here).
// AppArmor itself is not run: this host has none.
func TestDoctorAcceptsTheProvisionedAppArmorProfile(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	m := newFakeVM(t)
	cmd := exec.Command("bash", "-c", `source scripts/provision.sh; printf '%s' "$APPARMOR_PROFILE"`)
	cmd.Dir = testkit.ModuleRoot(t)
	profile, err := cmd.Output()
	if err != nil || !strings.Contains(string(profile), "userns,") {
		t.Fatalf("the provisioning script's APPARMOR_PROFILE: %v\n%s", err, profile)
	}
	if err := os.MkdirAll(m.apparmorDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.apparmorDir, "workshop"), profile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, rows := doctor(t, testkit.RunOpts{}, m.args()...)
	want(t, rows, "rootless userns", "pass", "restricted by AppArmor", filepath.Join(m.apparmorDir, "workshop")+" allows it for /usr/local/bin/workshop")
}

func TestDoctorFailsWithTheMultipathdFixWhenCPUControllerIsNotDelegated(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	m := newFakeVM(t)
	// The VM before provisioning: multipathd's real-time threads kept the
	// kernel from enabling cpu for child cgroups.
	if err := os.WriteFile(filepath.Join(m.cgroupRoot, "cgroup.subtree_control"), []byte("memory pids\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, rows := doctor(t, testkit.RunOpts{}, m.args()...)
	if res.Code == 0 {
		t.Fatalf("exit status 0 with the cpu controller missing:\n%s", res.Stdout)
	}
	r := want(t, rows, "cgroup cpu", "FAIL", "not enabled for child cgroups", "multipathd",
		"echo +cpu | sudo tee "+filepath.Join(m.cgroupRoot, "cgroup.subtree_control"), "scripts/provision.sh")
	if r.fix == "" {
		t.Errorf("no fix line under the FAIL row:\n%s", res.Stdout)
	}
	want(t, rows, "cgroup memory", "pass")
	checkSummaryCounts(t, res.Stdout, rows)
}

func TestDoctorWarnsAboutACgroupLeftByACrashedRun(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	m := newFakeVM(t)
	left := filepath.Join(m.cgroupRoot, "container")
	if err := os.Mkdir(left, 0o755); err != nil {
		t.Fatal(err)
	}
	_, rows := doctor(t, testkit.RunOpts{}, m.args()...)
	want(t, rows, "leftover cgroups", "WARN", left, "sudo rmdir", "06-full-container ps")
}

func TestDoctorFailsWhenANamespaceKindIsMissing(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	m := newFakeVM(t)
	if err := os.Remove(filepath.Join(m.proc, "self/ns/cgroup")); err != nil {
		t.Fatal(err)
	}
	res, rows := doctor(t, testkit.RunOpts{}, m.args()...)
	if res.Code == 0 {
		t.Errorf("exit status 0 without a cgroup namespace")
	}
	want(t, rows, "namespace cgroup", "FAIL", "no cgroup namespace", "CONFIG_CGROUPS")
	want(t, rows, "namespace pid", "pass")
}

func TestDoctorFailsWithoutOverlayfs(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	m := newFakeVM(t)
	if err := os.WriteFile(filepath.Join(m.proc, "filesystems"), []byte("nodev\tproc\n\text4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, rows := doctor(t, testkit.RunOpts{}, m.args()...)
	if res.Code == 0 {
		t.Errorf("exit status 0 without overlayfs")
	}
	want(t, rows, "overlayfs", "FAIL", "sudo modprobe overlay")
}

func TestDoctorFailsWhenNoOverlayCanBeMountedThere(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	// procfs cannot hold an upper dir (it cannot even hold a directory).
	res, rows := doctor(t, testkit.RunOpts{}, "--overlay-dir", "/proc")
	if res.Code == 0 {
		t.Errorf("exit status 0 though no overlay could be made on /proc")
	}
	want(t, rows, "overlay upper on /proc", "FAIL", "(proc)", "the machine's own disk")
}

func TestDoctorFailsOnAProcLeakedOverTheHosts(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	m := newFakeVM(t)
	f, err := os.OpenFile(filepath.Join(m.proc, "self/mountinfo"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// What a container run without MS_PRIVATE leaves on a shared /.
	_, _ = f.WriteString("99 22 0:55 / /proc rw,relatime shared:40 - proc proc rw\n")
	f.Close()
	res, rows := doctor(t, testkit.RunOpts{}, m.args()...)
	if res.Code == 0 {
		t.Errorf("exit status 0 with two procs on /proc")
	}
	want(t, rows, "host /proc", "FAIL", "stacked", "sudo umount /proc")
}

func TestDoctorFailsWhenBusyboxIsMissing(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	// A PATH holding only go (where there is one: the proving-ground VM
	// runs prebuilt binaries and has none).
	bin := t.TempDir()
	goBin, goErr := exec.LookPath("go")
	if goErr == nil {
		if err := os.Symlink(goBin, filepath.Join(bin, "go")); err != nil {
			t.Fatal(err)
		}
	}
	res, rows := doctor(t, testkit.RunOpts{Env: []string{"PATH=" + bin}}, "--overlay-dir", "/tmp")
	if res.Code == 0 {
		t.Errorf("exit status 0 without busybox, ps and make")
	}
	want(t, rows, "program busybox", "FAIL", "sudo apt-get install -y busybox-static")
	want(t, rows, "program ps", "FAIL", "procps")
	want(t, rows, "program tree", "WARN", "apt-get install -y tree")
	if goErr == nil {
		want(t, rows, "go", "pass")
	}
	checkSummaryCounts(t, res.Stdout, rows)
}

func TestDoctorAsAnOrdinaryUserDoesNotMountAndSaysSo(t *testing.T) {
	testkit.RequireRoot(t) // to become nobody
	testkit.CheckHost(t)
	res, rows := doctor(t, testkit.RunOpts{AsUser: true})
	r := want(t, rows, "overlay upper on /tmp", "WARN", "needs root")
	if !strings.Contains(r.fix, "make doctor") {
		t.Errorf("the fix must say how to run it as root: %q", r.fix)
	}
	if res.Stderr != "" {
		t.Errorf("stderr: %s", res.Stderr)
	}
}

// --- the parsers ---------------------------------------------------------

func TestVersionParsing(t *testing.T) {
	if maj, min, ok := kernelVersion("6.8.0-31-generic"); !ok || maj != 6 || min != 8 {
		t.Errorf("kernelVersion: %d.%d %v", maj, min, ok)
	}
	if maj, min, ok := goVersion("go1.23.4"); !ok || maj != 1 || min != 23 {
		t.Errorf("goVersion: %d.%d %v", maj, min, ok)
	}
	if _, _, ok := goVersion("devel +abc"); ok {
		t.Error("a devel version has no number")
	}
}

func TestOldKernelFails(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sys/kernel"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sys/kernel/osrelease"), []byte("4.4.0-210-generic\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := checkKernel(host{proc: dir})
	if r.status != fail || !strings.Contains(r.fix, "vagrant up") {
		t.Errorf("Linux 4.4: %+v", r)
	}
}

// The doctor reads net.ipv4.ip_forward (never writes it), says what 0
// means and how to change it, and tries the bridge network in a namespace
// of its own.
func TestDoctorReportsIPForwardAndTheBridgeNetwork(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	m := newFakeVM(t)
	dir := filepath.Join(m.proc, "sys/net/ipv4")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"0", "1"} {
		if err := os.WriteFile(filepath.Join(dir, "ip_forward"), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, rows := doctor(t, testkit.RunOpts{}, m.args()...)
		if v == "0" {
			want(t, rows, "net.ipv4.ip_forward", "WARN", "other machines", "sysctl -w net.ipv4.ip_forward=1", "never changes it")
		} else {
			want(t, rows, "net.ipv4.ip_forward", "pass")
		}
		want(t, rows, "bridge network", "pass", "veth pair")
	}
}
