package cgroup

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// runc's conversions, at the ends of the ranges and at the defaults.
func TestConversionsAreRuncs(t *testing.T) {
	for shares, want := range map[uint64]uint64{2: 1, 1024: 39, 262144: 10000} {
		if got := CPUWeightFromShares(shares); got != want {
			t.Errorf("cpu.shares %d -> cpu.weight %d, want %d", shares, got, want)
		}
	}
	for w, want := range map[uint16]uint64{10: 1, 500: 4950, 1000: 10000} {
		if got := IOWeightFromBlkio(w); got != want {
			t.Errorf("blkio.weight %d -> io.weight %d, want %d", w, got, want)
		}
	}
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// blockDevice is one of this machine's disks, as major:minor (false: it
// has none, as a guest booted from an initramfs may not).
func blockDevice(t *testing.T) (int64, int64, bool) {
	t.Helper()
	ents, _ := filepath.Glob("/sys/block/*/dev")
	for _, e := range ents {
		if strings.Contains(e, "/loop") || strings.Contains(e, "/ram") {
			continue
		}
		maj, min, ok := strings.Cut(readTrim(t, e), ":")
		a, _ := strconv.ParseInt(maj, 10, 64)
		b, _ := strconv.ParseInt(min, 10, 64)
		if ok {
			return a, b, true
		}
	}
	return 0, 0, false
}

// Every limit lands in the file of this kernel's version, and a process
// can still join the group (a v1 cpuset group starts with no CPUs).
func TestResourceLimitsOnThisKernel(t *testing.T) {
	h := realHierarchy(t)
	ctrls := []string{"cpu", "cpuset"}
	block := "io"
	if c, err := h.Controller("blkio"); err == nil && c.Version == V1 {
		block = "blkio"
	}
	for _, c := range []string{"cpuset", block} {
		if err := h.Usable(c); err != nil {
			t.Fatal(err)
		}
	}
	ctrls = append(ctrls, block)
	hugeErr := h.Usable("hugetlb")
	if hugeErr == nil {
		ctrls = append(ctrls, "hugetlb")
	}
	g, err := h.Create(testName(t), ctrls...)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Remove()
	if err := g.SetCPUShares(512); err != nil {
		t.Fatal(err)
	}
	if g.Version("cpu") == V2 {
		if got := readTrim(t, filepath.Join(g.Path("cpu"), "cpu.weight")); got != "20" {
			t.Errorf("cpu.weight = %s, want 20 (runc's conversion of 512 shares)", got)
		}
		if err := g.SetCPURealtime(1000, 100000); err == nil || !strings.Contains(err.Error(), "v2 has no real-time") {
			t.Errorf("a real-time budget on v2: %v", err)
		}
	} else {
		if got := readTrim(t, filepath.Join(g.Path("cpu"), "cpu.shares")); got != "512" {
			t.Errorf("cpu.shares = %s, want 512", got)
		}
		// The group's parent (made by Create) has no real-time time:
		// the kernel refuses, and the message names the parent's file.
		if err := g.SetCPURealtime(1000, 100000); err == nil || !strings.Contains(err.Error(), "real-time time of its parent") {
			t.Errorf("a real-time budget larger than the parent's: %v", err)
		}
	}
	if err := g.SetCPUSet("0", "0"); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{"cpuset.cpus": "0", "cpuset.mems": "0"} {
		if got := readTrim(t, filepath.Join(g.Path("cpuset"), f)); got != want {
			t.Errorf("%s = %s, want %s", f, got, want)
		}
	}
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := g.Add(cmd.Process.Pid); err != nil {
		t.Fatalf("joining a cpuset group: %v", err)
	}
	if got := readTrim(t, "/proc/"+strconv.Itoa(cmd.Process.Pid)+"/status"); !strings.Contains(got, "Cpus_allowed_list:\t0\n") {
		t.Errorf("the process may run on other CPUs than 0:\n%s", got)
	}
	var file string
	if major, minor, ok := blockDevice(t); ok {
		if err := g.SetIOThrottle(ReadBps, major, minor, 1048576); err != nil {
			t.Fatal(err)
		}
		dev := strconv.FormatInt(major, 10) + ":" + strconv.FormatInt(minor, 10)
		want := dev + " 1048576"
		file = "blkio.throttle.read_bps_device"
		if g.Version(block) == V2 {
			file, want = "io.max", dev+" rbps=1048576 wbps=max riops=max wiops=max"
		}
		if got := readTrim(t, filepath.Join(g.Path(block), file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	} else {
		t.Log("no block device here (a guest without a disk): the I/O throttle not checked")
	}
	if hugeErr != nil {
		t.Logf("no hugetlb here for a group: %v", hugeErr)
		return
	}
	if !fileExistsHere("/sys/kernel/mm/hugepages/hugepages-2048kB") {
		t.Fatal("a hugetlb controller but no 2MB huge pages")
	}
	if err := g.SetHugepageLimit("2MB", 8<<20); err != nil {
		t.Fatal(err)
	}
	file = "hugetlb.2MB.limit_in_bytes"
	if g.Version("hugetlb") == V2 {
		file = "hugetlb.2MB.max"
	}
	if got := readTrim(t, filepath.Join(g.Path("hugetlb"), file)); got != "8388608" {
		t.Errorf("%s = %s, want 8388608", file, got)
	}
	if err := g.SetHugepageLimit("3MB", 0); err == nil {
		t.Error("a huge page size this host lacks was accepted")
	}
}

func fileExistsHere(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
