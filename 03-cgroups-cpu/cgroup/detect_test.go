package cgroup

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/container-internals/workshop/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// detect reads a recorded mount table with a temporary directory as root.
// files are written under that root first (path -> content), as the kernel
// would show them.
func detect(t *testing.T, mountinfo string, files map[string]string) (*Hierarchy, string) {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		writeFake(t, filepath.Join(root, p), content)
	}
	f, err := os.Open(filepath.Join("testdata", mountinfo))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := DetectFrom(f, root)
	if err != nil {
		t.Fatalf("DetectFrom(%s): %v", mountinfo, err)
	}
	return h, root
}

func writeFake(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantController(t *testing.T, h *Hierarchy, root, name string, v Version, mount string) {
	t.Helper()
	c, err := h.Controller(name)
	if err != nil {
		t.Fatalf("Controller(%q): %v", name, err)
	}
	if c.Version != v || c.Mount != filepath.Join(root, mount) {
		t.Errorf("Controller(%q) = %s at %s, want %s at %s", name, c.Version, c.Mount, v, filepath.Join(root, mount))
	}
}

func TestDetectsPureV1HostWithCpuAndCpuacctCoMounted(t *testing.T) {
	h, root := detect(t, "v1-centos7.mountinfo", nil)
	if got := h.Mode(); got != "v1" {
		t.Errorf("Mode() = %q, want v1", got)
	}
	if _, ok := h.Unified(); ok {
		t.Error("Unified() found a cgroup2 mount on a pure v1 host")
	}
	wantController(t, h, root, "cpu", V1, "/sys/fs/cgroup/cpu,cpuacct")
	wantController(t, h, root, "cpuacct", V1, "/sys/fs/cgroup/cpu,cpuacct")
	wantController(t, h, root, "memory", V1, "/sys/fs/cgroup/memory")
	wantController(t, h, root, "pids", V1, "/sys/fs/cgroup/pids")
	wantController(t, h, root, "net_prio", V1, "/sys/fs/cgroup/net_cls,net_prio")
	if len(h.Mounts()) != 11 {
		t.Errorf("found %d cgroup mounts, want 11 (10 controller hierarchies + name=systemd)", len(h.Mounts()))
	}
	if _, err := h.Controller("rdma"); err == nil || !strings.Contains(err.Error(), "not available") {
		t.Errorf("Controller(rdma) on a host without it: err = %v, want 'not available'", err)
	}
	// Co-mounted: a group with cpu is one directory, holding cpuacct too.
	g, err := h.resolve("container", []string{"cpu"})
	if err != nil {
		t.Fatal(err)
	}
	if d := g.Dirs(); len(d) != 1 || g.Path("cpuacct") != d[0] {
		t.Errorf("group dirs = %v, cpuacct at %q: want one directory for cpu,cpuacct", d, g.Path("cpuacct"))
	}
}

func TestDetectsPureV2UbuntuHost(t *testing.T) {
	h, root := detect(t, "v2-ubuntu2404.mountinfo", map[string]string{
		"sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
	})
	if got := h.Mode(); got != "v2" {
		t.Errorf("Mode() = %q, want v2", got)
	}
	u, ok := h.Unified()
	if !ok || u.MountPoint != "/sys/fs/cgroup" {
		t.Fatalf("Unified() = %+v, %v: want the cgroup2 at /sys/fs/cgroup", u, ok)
	}
	for _, c := range []string{"cpu", "cpuacct", "memory", "pids", "io"} {
		wantController(t, h, root, c, V2, "/sys/fs/cgroup")
	}
	if _, err := h.Controller("blkio"); err == nil {
		t.Error("Controller(blkio) on pure v2 should fail: v2 calls it io")
	}
}

func TestDetectsThisHybridMachine(t *testing.T) {
	h, root := detect(t, "hybrid-debian12.mountinfo", map[string]string{
		"sys/fs/cgroup/unified/cgroup.controllers": "hugetlb\n",
	})
	if got := h.Mode(); got != "hybrid" {
		t.Errorf("Mode() = %q, want hybrid", got)
	}
	wantController(t, h, root, "cpu", V1, "/sys/fs/cgroup/cpu")
	wantController(t, h, root, "cpuacct", V1, "/sys/fs/cgroup/cpuacct")
	wantController(t, h, root, "memory", V1, "/sys/fs/cgroup/memory")
	wantController(t, h, root, "pids", V1, "/sys/fs/cgroup/pids")
	wantController(t, h, root, "hugetlb", V2, "/sys/fs/cgroup/unified")
	// cpu and cpuacct are separate hierarchies here: asking for cpu brings
	// cpuacct along, so the group's CPU usage can be read.
	g, err := h.resolve("container", []string{"cpu"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(root, "/sys/fs/cgroup/cpu/container"), filepath.Join(root, "/sys/fs/cgroup/cpuacct/container")}
	if d := g.Dirs(); strings.Join(d, " ") != strings.Join(want, " ") {
		t.Errorf("group dirs = %v, want %v", d, want)
	}
}

func TestDetectIgnoresASecondMountOfTheSameHierarchy(t *testing.T) {
	mi := `32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
90 27 0:29 / /var/lib/x/cg\040cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
91 27 0:38 / /mnt/unified rw,relatime - cgroup2 cgroup2 rw
`
	h, err := DetectFrom(strings.NewReader(mi), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var mps []string
	for _, m := range h.Mounts() {
		mps = append(mps, m.MountPoint)
	}
	if strings.Join(mps, ",") != "/sys/fs/cgroup/cpu,/sys/fs/cgroup/unified" {
		t.Errorf("mounts = %v, want the first mount of each hierarchy only", mps)
	}
}

func TestDetectWithoutCgroupsSaysWhatToMount(t *testing.T) {
	_, err := DetectFrom(strings.NewReader("27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"), "/")
	if err == nil || !strings.Contains(err.Error(), "mount -t cgroup2") {
		t.Errorf("err = %v, want the mount command", err)
	}
}

// TestDetectMatchesThisKernel reads the real mount table: the controller
// the program uses for the busy loop must be where Detect says.
func TestDetectMatchesThisKernel(t *testing.T) {
	h, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.Controller("cpu")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(c.Mount, "cpu.cfs_quota_us")
	if c.Version == V2 {
		file = filepath.Join(c.Mount, "cgroup.controllers")
		b, _ := os.ReadFile(file)
		if !slices.Contains(strings.Fields(string(b)), "cpu") {
			t.Errorf("%s does not list cpu: %q", file, b)
		}
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("Detect says cpu is %s at %s, but: %v", c.Version, c.Mount, err)
	}
	t.Logf("this host: %s, cpu controller %s at %s", h.Mode(), c.Version, c.Mount)
}
