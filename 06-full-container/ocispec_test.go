package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/03-cgroups-cpu/cgroup"
)

// createAndStart creates and starts a bundle, waits for it, deletes it, and
// returns what its process printed (stdout and stderr, as a shim sees them).
func createAndStart(t *testing.T, dir, id string) string {
	t.Helper()
	out, r := create(t, dir, id)
	if r.Code != 0 {
		t.Fatalf("create %s:\n%s", id, r)
	}
	defer ctr(t, opts{}, "delete", "--force", id)
	if r := ctr(t, opts{}, "start", id); r.Code != 0 {
		t.Fatalf("start %s:\n%s", id, r)
	}
	waitStopped(t, id)
	b, _ := os.ReadFile(out)
	return string(b)
}

// runc 1.1's `runc spec` gives the process three ambient capabilities and
// no inheritable set. The kernel raises an ambient capability only if it
// is permitted and inheritable: runc warns and runs the bundle anyway, and
// so does this runtime. With the inheritable set they are raised.
func TestRuncSpecsAmbientCapabilitiesRun(t *testing.T) {
	setup(t)
	three := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	for _, inheritable := range [][]string{nil, three} {
		dir := bundle(t, func(c *specs.Spec) {
			c.Process.Capabilities = &specs.LinuxCapabilities{Bounding: three, Effective: three, Permitted: three,
				Inheritable: inheritable, Ambient: three}
			c.Process.Args = []string{"sh", "-c", "grep -E '^Cap(Inh|Eff|Amb)' /proc/self/status | tr -s '\\t' ' '"}
		})
		got := createAndStart(t, dir, "ambient")
		want := "CapInh: 0000000000000000\nCapEff: 0000000020000420\nCapAmb: 0000000000000000\n"
		if inheritable != nil {
			want = "CapInh: 0000000020000420\nCapEff: 0000000020000420\nCapAmb: 0000000020000420\n"
		} else {
			warning := "warning: ambient capabilities CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE not raised"
			if !strings.Contains(got, warning) {
				t.Fatalf("no inheritable set: want the warning %q:\n%s", warning, got)
			}
			got = got[strings.Index(got, "\n")+1:]
		}
		if got != want {
			t.Fatalf("inheritable %v: inside:\n%s\nwant:\n%s", inheritable, got, want)
		}
	}
	noContainersLeft(t)
}

// The other cgroup limits of linux.resources land in the files of this
// host's cgroup version (runc's conversions on v2), seen from the host
// before start, and from inside after.
func TestOCICgroupLimitsBeyondTheQuota(t *testing.T) {
	setup(t)
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	cpuV2 := isV2(h, "cpu")
	shares, rtRuntime, rtPeriod := uint64(512), int64(10000), uint64(1000000)
	major, minor, disk := diskOf(t)
	dir := bundle(t, func(c *specs.Spec) {
		c.Linux.CgroupsPath = "/workshop-limits-test"
		c.Linux.Resources = &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &shares, Cpus: "0", Mems: "0"}}
		if disk {
			c.Linux.Resources.BlockIO = &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: 1048576}}}
		}
		if !cpuV2 { // a real-time budget is a v1 file
			c.Linux.Resources.CPU.RealtimeRuntime, c.Linux.Resources.CPU.RealtimePeriod = &rtRuntime, &rtPeriod
		}
		c.Process.Args = []string{"sh", "-c", "grep Cpus_allowed_list /proc/self/status | tr -s '\\t' ' '"}
	})
	out, r := create(t, dir, "limits")
	if r.Code != 0 {
		t.Fatalf("create:\n%s", r)
	}
	defer ctr(t, opts{}, "delete", "--force", "limits")
	var st State
	b, _ := os.ReadFile(filepath.Join(sharedRoot(t), "containers", "limits", "state.json"))
	json.Unmarshal(b, &st)
	dev := fmt.Sprintf("%d:%d", major, minor)
	want := map[string]string{filepath.Join(st.CgroupPaths["cpuset"], "cpuset.cpus"): "0", filepath.Join(st.CgroupPaths["cpuset"], "cpuset.mems"): "0"}
	if cpuV2 {
		want[filepath.Join(st.CgroupPaths["cpu"], "cpu.weight")] = "20" // runc: 1 + (512-2)*9999/262142
	} else {
		want[filepath.Join(st.CgroupPaths["cpu"], "cpu.shares")] = "512"
		want[filepath.Join(st.CgroupPaths["cpu"], "cpu.rt_runtime_us")] = "10000"
		want[filepath.Join(st.CgroupPaths["cpu"], "cpu.rt_period_us")] = "1000000"
	}
	switch {
	case !disk:
		t.Log("no block device here (a guest without a disk): blockIO not checked")
	case st.CgroupPaths["blkio"] != "":
		want[filepath.Join(st.CgroupPaths["blkio"], "blkio.throttle.read_bps_device")] = dev + " 1048576"
	default:
		want[filepath.Join(st.CgroupPaths["io"], "io.max")] = dev + " rbps=1048576 wbps=max riops=max wiops=max"
	}
	for file, w := range want {
		if got, err := os.ReadFile(file); err != nil || strings.TrimSpace(string(got)) != w {
			t.Errorf("%s = %q, want %q (%v)", file, got, w, err)
		}
	}
	ctr(t, opts{}, "start", "limits")
	waitStopped(t, "limits")
	if got, _ := os.ReadFile(out); string(got) != "Cpus_allowed_list: 0\n" {
		t.Errorf("inside: %q, want CPU 0 only", got)
	}
	if cpuV2 {
		refused := bundle(t, func(c *specs.Spec) {
			c.Linux.Resources = &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: &rtRuntime}}
		})
		if _, r := create(t, refused, "rt"); r.Code == 0 || !strings.Contains(r.Stdout, "v2 has no real-time") {
			ctr(t, opts{}, "delete", "--force", "rt")
			t.Errorf("a real-time budget on cgroup v2:\n%s", r)
		}
	}
	// Huge pages: set where a group may have the controller, refused by
	// name where not.
	limit := uint64(8 << 20)
	huge := bundle(t, func(c *specs.Spec) {
		c.Linux.Resources = &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: limit}}}
		c.Process.Args = []string{"true"}
	})
	_, r = create(t, huge, "huge")
	if herr := h.Usable("hugetlb"); herr != nil {
		if r.Code == 0 || !strings.Contains(r.Stdout, "linux.resources.hugepageLimits") {
			t.Errorf("hugepageLimits without a usable hugetlb controller (%v):\n%s", herr, r)
		}
	} else if r.Code != 0 {
		t.Errorf("hugepageLimits with a hugetlb controller:\n%s", r)
	}
	ctr(t, opts{}, "delete", "--force", "huge")
	ctr(t, opts{}, "delete", "limits")
	noContainersLeft(t)
}

func isV2(h *cgroup.Hierarchy, controller string) bool {
	c, err := h.Controller(controller)
	return err == nil && c.Version == cgroup.V2
}

// diskOf is one of this machine's disks (false: it has none, as a guest
// booted from an initramfs may not).
func diskOf(t *testing.T) (int64, int64, bool) {
	t.Helper()
	ents, _ := filepath.Glob("/sys/block/*/dev")
	for _, e := range ents {
		if strings.Contains(e, "/loop") || strings.Contains(e, "/ram") || strings.Contains(e, "/zram") {
			continue
		}
		var major, minor int64
		b, _ := os.ReadFile(e)
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &major, &minor); err == nil {
			return major, minor, true
		}
	}
	return 0, 0, false
}

// Resource limits: a soft limit above the hard one, or a hard limit the
// runtime could not raise (without CAP_SYS_RESOURCE), fail create naming
// the field. AppArmor and SELinux fields are accepted where that module
// does not enforce, and refused where it does.
func TestOCIRlimitsAndSecurityModules(t *testing.T) {
	setup(t)
	var cur unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &cur)
	cases := map[string]func(*specs.Spec){
		"soft 2048 is above hard 1024": func(c *specs.Spec) {
			c.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2048, Hard: 1024}}
		},
	}
	if !hasCapability(unix.CAP_SYS_RESOURCE) {
		cases["needs CAP_SYS_RESOURCE"] = func(c *specs.Spec) {
			c.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: cur.Max + 1}}
		}
	}
	for want, edit := range cases {
		_, r := create(t, bundle(t, edit), "rlimit")
		if lines := strings.Split(strings.TrimSpace(r.Stdout), "\n"); r.Code == 0 || len(lines) != 1 || !strings.Contains(r.Stdout, "process.rlimits[0] (RLIMIT_NOFILE): ") || !strings.Contains(r.Stdout, want) {
			ctr(t, opts{}, "delete", "--force", "rlimit")
			t.Errorf("want one line naming the field and %q:\n%s", want, r)
		}
	}
	lsm := bundle(t, func(c *specs.Spec) {
		c.Process.ApparmorProfile = "docker-default"
		c.Process.SelinuxLabel = "system_u:system_r:container_t:s0"
		c.Linux.MountLabel = "system_u:object_r:container_file_t:s0"
		c.Process.Args = []string{"true"}
	})
	_, r := create(t, lsm, "lsm")
	ctr(t, opts{}, "delete", "--force", "lsm")
	switch {
	case apparmorEnforcing() && !strings.Contains(r.Stdout, "process.apparmorProfile"),
		selinuxEnforcing() && !apparmorEnforcing() && !strings.Contains(r.Stdout, "selinux"),
		!apparmorEnforcing() && !selinuxEnforcing() && r.Code != 0:
		t.Errorf("AppArmor enforcing: %v, SELinux enforcing: %v; create said:\n%s", apparmorEnforcing(), selinuxEnforcing(), r)
	}
	noContainersLeft(t)
}
