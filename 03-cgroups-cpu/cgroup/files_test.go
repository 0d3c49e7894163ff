package cgroup

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// These tests write to a temporary directory laid out like cgroupfs: they
// check which file gets which value, in which order, on each version. A
// plain directory does not fill itself like the kernel's, so kernelMakes
// plays that part after each mkdir.

func kernelMakes(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		writeFake(t, filepath.Join(dir, name), content)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func traced(h *Hierarchy, root string) *[]string {
	var log []string
	h.Trace = func(cmd, _ string) { log = append(log, strings.ReplaceAll(cmd, root, "")) }
	return &log
}

func inOrder(t *testing.T, log []string, want ...string) {
	t.Helper()
	i := 0
	for _, l := range log {
		if i < len(want) && l == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("trace lacks %q (in this order); it was:\n  %s", want[i], strings.Join(log, "\n  "))
	}
}

var v1Files = map[string]string{
	"cpu":     "cpu.cfs_period_us=100000 cpu.cfs_quota_us=-1 cpu.stat tasks cgroup.procs",
	"cpuacct": "cpuacct.usage=0 tasks cgroup.procs",
	"memory":  "memory.limit_in_bytes=9223372036854771712 memory.memsw.limit_in_bytes=9223372036854771712 memory.usage_in_bytes=4096 memory.max_usage_in_bytes=8192 memory.oom_control tasks cgroup.procs",
	"pids":    "pids.max=max pids.current=0 tasks cgroup.procs",
}

func fill(t *testing.T, dir, spec string) {
	files := map[string]string{}
	for _, f := range strings.Fields(spec) {
		name, val, _ := strings.Cut(f, "=")
		files[name] = val
	}
	kernelMakes(t, dir, files)
}

func TestV1WritesGoToTheArticlesFilesOnEachHierarchy(t *testing.T) {
	h, root := detect(t, "hybrid-debian12.mountinfo", nil)
	for _, m := range h.Mounts() {
		if err := os.MkdirAll(m.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	log := traced(h, root)
	g, err := h.Create("workshop/abc", "cpu", "memory", "pids")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"cpu", "cpuacct", "memory", "pids"} {
		if g.Version(c) != V1 {
			t.Errorf("%s is %s, want v1", c, g.Version(c))
		}
		fill(t, g.Path(c), v1Files[c])
	}
	inOrder(t, *log, "mkdir /sys/fs/cgroup/cpu/workshop", "mkdir /sys/fs/cgroup/cpu/workshop/abc",
		"mkdir /sys/fs/cgroup/cpuacct/workshop/abc", "mkdir /sys/fs/cgroup/memory/workshop/abc", "mkdir /sys/fs/cgroup/pids/workshop/abc")

	cpu := g.Path("cpu")
	if q, p, err := g.CPU(); err != nil || q != -1 || p != 100000 {
		t.Errorf("CPU() before = %d, %d, %v; want -1, 100000", q, p, err)
	}
	if err := g.SetCPU(20000, 100000); err != nil {
		t.Fatal(err)
	}
	inOrder(t, *log, "echo 100000 > /sys/fs/cgroup/cpu/workshop/abc/cpu.cfs_period_us",
		"echo 20000 > /sys/fs/cgroup/cpu/workshop/abc/cpu.cfs_quota_us")
	if q, p, err := g.CPU(); err != nil || q != 20000 || p != 100000 {
		t.Errorf("CPU() after = %d, %d, %v; want 20000, 100000", q, p, err)
	}
	if err := g.SetCPU(-1, 100000); err != nil || read(t, filepath.Join(cpu, "cpu.cfs_quota_us")) != "-1" {
		t.Errorf("SetCPU(-1): %v, quota file %q", err, read(t, filepath.Join(cpu, "cpu.cfs_quota_us")))
	}
	if err := g.SetCPU(500, 100000); err == nil {
		t.Error("SetCPU(500 µs) was accepted")
	}

	// Lowering the limit: memory first, then memory+swap to the same value
	// (no swap). Raising it: memory+swap first, or the kernel refuses.
	*log = nil
	if err := g.SetMemory(64 << 20); err != nil {
		t.Fatal(err)
	}
	mem := "/sys/fs/cgroup/memory/workshop/abc/"
	inOrder(t, *log, "echo 67108864 > "+mem+"memory.limit_in_bytes", "echo 67108864 > "+mem+"memory.memsw.limit_in_bytes")
	*log = nil
	if err := g.SetMemory(128 << 20); err != nil {
		t.Fatal(err)
	}
	inOrder(t, *log, "echo 134217728 > "+mem+"memory.memsw.limit_in_bytes", "echo 134217728 > "+mem+"memory.limit_in_bytes")
	if ms, err := g.Memory(); err != nil || ms.Limit != 128<<20 || ms.Usage != 4096 || ms.Peak != 8192 {
		t.Errorf("Memory() = %+v, %v", ms, err)
	}

	if err := g.SetPids(64); err != nil || read(t, filepath.Join(g.Path("pids"), "pids.max")) != "64" {
		t.Errorf("SetPids(64): %v", err)
	}
	if ps, err := g.Pids(); err != nil || ps.Max != 64 {
		t.Errorf("Pids() = %+v, %v", ps, err)
	}

	*log = nil
	if err := g.AddTask(4242); err != nil {
		t.Fatal(err)
	}
	inOrder(t, *log, "echo 4242 > /sys/fs/cgroup/cpu/workshop/abc/tasks", "echo 4242 > /sys/fs/cgroup/cpuacct/workshop/abc/tasks",
		"echo 4242 > /sys/fs/cgroup/memory/workshop/abc/tasks", "echo 4242 > /sys/fs/cgroup/pids/workshop/abc/tasks")
	*log = nil
	if err := g.Add(4343); err != nil {
		t.Fatal(err)
	}
	inOrder(t, *log, "echo 4343 > /sys/fs/cgroup/cpu/workshop/abc/cgroup.procs", "echo 4343 > /sys/fs/cgroup/pids/workshop/abc/cgroup.procs")

	writeFake(t, filepath.Join(g.Path("cpuacct"), "cpuacct.usage"), "1500000000\n")
	writeFake(t, filepath.Join(cpu, "cpu.stat"), "nr_periods 50\nnr_throttled 48\nthrottled_time 3900000000\nnr_bursts 0\n")
	st, err := g.CPUStat()
	if err != nil || st.Usage.Seconds() != 1.5 || st.Periods != 50 || st.Throttled != 48 || st.ThrottledTime.Seconds() != 3.9 {
		t.Errorf("CPUStat() = %+v, %v; want usage 1.5s from cpuacct.usage, 50/48 periods, 3.9s throttled", st, err)
	}
}

func TestV2WritesCpuMaxAndEnablesControllersFromTheRootDown(t *testing.T) {
	h, root := detect(t, "v2-ubuntu2404.mountinfo", map[string]string{
		"sys/fs/cgroup/cgroup.controllers":              "cpuset cpu io memory hugetlb pids rdma misc\n",
		"sys/fs/cgroup/cgroup.subtree_control":          "memory pids\n",
		"sys/fs/cgroup/workshop/cgroup.subtree_control": "\n",
	})
	log := traced(h, root)
	g, err := h.Create("workshop/abc", "cpu", "memory", "pids")
	if err != nil {
		t.Fatal(err)
	}
	// The root already hands out memory and pids: only cpu is added there;
	// the existing parent "workshop" gets all three; the leaf gets none.
	inOrder(t, *log, "echo +cpu > /sys/fs/cgroup/cgroup.subtree_control",
		"echo +cpu > /sys/fs/cgroup/workshop/cgroup.subtree_control",
		"echo +memory > /sys/fs/cgroup/workshop/cgroup.subtree_control",
		"echo +pids > /sys/fs/cgroup/workshop/cgroup.subtree_control",
		"mkdir /sys/fs/cgroup/workshop/abc")
	for _, l := range *log {
		if strings.Contains(l, "+memory > /sys/fs/cgroup/cgroup.subtree_control") || l == "mkdir /sys/fs/cgroup/workshop" {
			t.Errorf("unneeded change: %s", l)
		}
	}
	dir := g.Path("cpu")
	if len(g.Dirs()) != 1 || g.Path("memory") != dir || g.Version("cpu") != V2 {
		t.Fatalf("v2 group dirs %v: want one directory for everything", g.Dirs())
	}
	fill(t, dir, "cpu.max=max\x20100000 cpu.stat memory.max=max memory.swap.max=max memory.current=0 memory.events pids.max=max pids.current=0 cgroup.procs cgroup.kill")
	writeFake(t, filepath.Join(dir, "cpu.max"), "max 100000\n")
	if q, p, err := g.CPU(); err != nil || q != -1 || p != 100000 {
		t.Errorf("CPU() before = %d, %d, %v; want -1 (max), 100000", q, p, err)
	}
	if err := g.SetCPU(20000, 100000); err != nil || read(t, filepath.Join(dir, "cpu.max")) != "20000 100000" {
		t.Errorf("SetCPU: %v, cpu.max = %q; want \"20000 100000\"", err, read(t, filepath.Join(dir, "cpu.max")))
	}
	if err := g.SetCPU(-1, 50000); err != nil || read(t, filepath.Join(dir, "cpu.max")) != "max 50000" {
		t.Errorf("SetCPU(-1): %v, cpu.max = %q; want \"max 50000\"", err, read(t, filepath.Join(dir, "cpu.max")))
	}
	if err := g.SetMemory(64 << 20); err != nil || read(t, filepath.Join(dir, "memory.max")) != "67108864" || read(t, filepath.Join(dir, "memory.swap.max")) != "0" {
		t.Errorf("SetMemory: %v; memory.max %q, memory.swap.max %q; want 67108864 and 0 (no swap)", err,
			read(t, filepath.Join(dir, "memory.max")), read(t, filepath.Join(dir, "memory.swap.max")))
	}
	if err := g.SetMemory(-1); err != nil || read(t, filepath.Join(dir, "memory.max")) != "max" {
		t.Errorf("SetMemory(-1): %v", err)
	}
	if err := g.SetPids(-1); err != nil || read(t, filepath.Join(dir, "pids.max")) != "max" {
		t.Errorf("SetPids(-1): %v", err)
	}
	*log = nil
	if err := g.AddTask(77); err != nil || len(*log) != 1 || (*log)[0] != "echo 77 > /sys/fs/cgroup/workshop/abc/cgroup.procs" {
		t.Errorf("AddTask on v2: %v, %v; want one write to cgroup.procs (v2 has no tasks file)", err, *log)
	}
	writeFake(t, filepath.Join(dir, "cpu.stat"), "usage_usec 2000000\nuser_usec 1\nsystem_usec 1\nnr_periods 50\nnr_throttled 49\nthrottled_usec 3950000\n")
	if st, err := g.CPUStat(); err != nil || st.Usage.Seconds() != 2 || st.Throttled != 49 || st.ThrottledTime.Seconds() != 3.95 {
		t.Errorf("CPUStat() = %+v, %v", st, err)
	}
}

func TestV2CpuRefusedAtTheRootSaysWhatToDo(t *testing.T) {
	h, root := detect(t, "v2-ubuntu2404.mountinfo", map[string]string{
		"sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory pids\n",
	})
	// /proc/version reads fine and refuses writes (EIO), as the kernel
	// refuses +cpu while real-time threads live outside the root.
	if err := os.Symlink("/proc/version", filepath.Join(root, "sys/fs/cgroup/cgroup.subtree_control")); err != nil {
		t.Fatal(err)
	}
	_, err := h.Create("container", "cpu")
	if err == nil || !strings.Contains(err.Error(), "multipathd") || !strings.Contains(err.Error(), "echo +cpu | sudo tee") {
		t.Fatalf("err = %v, want the multipathd fix", err)
	}
	if _, serr := os.Stat(filepath.Join(root, "sys/fs/cgroup/container")); serr == nil {
		t.Error("the group was created although its controller could not be enabled")
	}
}

func TestCreateUndoesWhatItMadeWhenAHierarchyFails(t *testing.T) {
	h, root := detect(t, "v1-centos7.mountinfo", nil)
	cpu := filepath.Join(root, "sys/fs/cgroup/cpu,cpuacct")
	if err := os.MkdirAll(cpu, 0o755); err != nil {
		t.Fatal(err)
	}
	// The memory hierarchy's directory is missing: its mkdir fails.
	_, err := h.Create("workshop/abc", "cpu", "memory")
	if err == nil || !strings.Contains(err.Error(), "cannot create cgroup") {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(cpu); len(entries) != 0 {
		t.Errorf("Create left %v in the cpu hierarchy after failing", entries)
	}
}

func TestCreateRefusesAnExistingGroupAndOpenFindsIt(t *testing.T) {
	h, root := detect(t, "hybrid-debian12.mountinfo", nil)
	cpu := filepath.Join(root, "sys/fs/cgroup/cpu/container")
	if err := os.MkdirAll(cpu, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := h.Create("container", "cpu")
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "sudo rmdir "+cpu) {
		t.Errorf("Create over an existing group: %v; want fs.ErrExist and the rmdir command", err)
	}
	g, err := h.Open("container", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	// Only the cpu directory exists; cpuacct's was never made.
	if d := g.Dirs(); len(d) != 1 || d[0] != cpu {
		t.Errorf("Open dirs = %v, want [%s]", d, cpu)
	}
	if _, err := h.Open("other", "cpu"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want fs.ErrNotExist", err)
	}
	for _, bad := range []string{"", "/abs", "../up", "."} {
		if _, err := h.Open(bad, "cpu"); err == nil || !strings.Contains(err.Error(), "invalid cgroup name") {
			t.Errorf("Open(%q) = %v, want invalid name", bad, err)
		}
	}
}
