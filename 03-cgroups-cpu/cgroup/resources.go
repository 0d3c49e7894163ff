package cgroup

// The limits beyond stage 03's quota: CPU shares, CPU and memory-node
// pinning (cpuset), real-time CPU time, huge pages and block I/O. Each is a
// v1 file and, where v2 has an equivalent, a v2 file; the conversions
// between the two are runc's, so that a config means the same on both.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// CPUWeightFromShares is runc's conversion of v1's cpu.shares (2 to
// 262144, 1024 the default) to v2's cpu.weight (1 to 10000, 100 the
// default): a linear map of one range onto the other.
func CPUWeightFromShares(shares uint64) uint64 {
	if shares < 2 {
		shares = 2
	}
	if shares > 262144 {
		shares = 262144
	}
	return 1 + ((shares-2)*9999)/262142
}

// IOWeightFromBlkio is runc's conversion of v1's blkio.weight (10 to
// 1000) to v2's io.weight (1 to 10000).
func IOWeightFromBlkio(weight uint16) uint64 {
	return 1 + (uint64(weight)-10)*9999/990
}

// SetCPUShares sets the group's share of CPU time against its siblings
// when the CPUs are contended: v1 cpu.shares, v2 cpu.weight (converted).
func (g *Group) SetCPUShares(shares uint64) error {
	dir, v, err := g.dir("cpu")
	if err != nil {
		return err
	}
	if v == V2 {
		return g.write(dir, "cpu.weight", strconv.FormatUint(CPUWeightFromShares(shares), 10))
	}
	return g.write(dir, "cpu.shares", strconv.FormatUint(shares, 10))
}

// SetCPURealtime gives the group runtimeUs of real-time CPU time in every
// periodUs (v1's cpu.rt_period_us and cpu.rt_runtime_us; the kernel
// refuses more than the parent group has). cgroup v2 has no such files.
func (g *Group) SetCPURealtime(runtimeUs int64, periodUs uint64) error {
	dir, v, err := g.dir("cpu")
	if err != nil {
		return err
	}
	if v == V2 {
		return fmt.Errorf("cgroup v2 has no real-time CPU budget (cpu.rt_runtime_us is a v1 file): leave realtimeRuntime and realtimePeriod out")
	}
	if periodUs > 0 {
		if err := g.write(dir, "cpu.rt_period_us", strconv.FormatUint(periodUs, 10)); err != nil {
			return err
		}
	}
	if err := g.write(dir, "cpu.rt_runtime_us", strconv.FormatInt(runtimeUs, 10)); err != nil {
		return fmt.Errorf("%w (a group gets at most the real-time time of its parent: see %s)", err, filepath.Join(filepath.Dir(dir), "cpu.rt_runtime_us"))
	}
	return nil
}

// SetCPUSet pins the group to CPUs and memory nodes ("0-1", "0"): the
// cpuset.cpus and cpuset.mems files of either version ("" leaves one as
// it is).
func (g *Group) SetCPUSet(cpus, mems string) error {
	dir, _, err := g.dir("cpuset")
	if err != nil {
		return err
	}
	if cpus != "" {
		if err := g.write(dir, "cpuset.cpus", cpus); err != nil {
			return err
		}
	}
	if mems != "" {
		return g.write(dir, "cpuset.mems", mems)
	}
	return nil
}

// inheritCPUSet fills a new v1 cpuset group with its parent's CPUs and
// memory nodes: v1 leaves them empty, and no process may join a cpuset
// group with none (v2 gives a new group its parent's at once).
func (h *Hierarchy) inheritCPUSet(dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(dir), f))
		if err != nil {
			return err
		}
		if err := h.writeFile(filepath.Join(dir, f), strings.TrimSpace(string(b))); err != nil {
			return err
		}
	}
	return nil
}

var pageSizeRE = regexp.MustCompile(`^[0-9]+[KMG]B$`)

// SetHugepageLimit caps the group's huge pages of one size ("2MB", "1GB"):
// v1 hugetlb.<size>.limit_in_bytes, v2 hugetlb.<size>.max.
func (g *Group) SetHugepageLimit(pageSize string, bytes uint64) error {
	dir, v, err := g.dir("hugetlb")
	if err != nil {
		return err
	}
	file := "hugetlb." + pageSize + ".limit_in_bytes"
	if v == V2 {
		file = "hugetlb." + pageSize + ".max"
	}
	if !pageSizeRE.MatchString(pageSize) || !exists(filepath.Join(dir, file)) {
		return fmt.Errorf("page size %q: this host has no such huge page size (see /sys/kernel/mm/hugepages; write it as 2MB or 1GB)", pageSize)
	}
	return g.write(dir, file, strconv.FormatUint(bytes, 10))
}

// blockController is where block I/O is limited: blkio on v1, io on v2.
func (g *Group) blockController() (string, Version, error) {
	if _, ok := g.ctrls["blkio"]; ok {
		return g.dir("blkio")
	}
	return g.dir("io")
}

// SetIOWeight sets the group's share of block I/O against its siblings
// (10 to 1000): v1 blkio.weight (or blkio.bfq.weight under the BFQ
// scheduler), v2 io.bfq.weight or io.weight (converted). Only some I/O
// schedulers weigh groups: without the file the kernel has nothing to set.
func (g *Group) SetIOWeight(weight uint16) error {
	dir, v, err := g.blockController()
	if err != nil {
		return err
	}
	type choice struct{ file, value string }
	choices := []choice{{"blkio.weight", strconv.Itoa(int(weight))}, {"blkio.bfq.weight", strconv.Itoa(int(weight))}}
	if v == V2 {
		choices = []choice{{"io.bfq.weight", strconv.Itoa(int(weight))}, {"io.weight", "default " + strconv.FormatUint(IOWeightFromBlkio(weight), 10)}}
	}
	for _, c := range choices {
		if exists(filepath.Join(dir, c.file)) {
			return g.write(dir, c.file, c.value)
		}
	}
	return fmt.Errorf("no I/O weight file in %s (%s or %s): this kernel's I/O scheduler does not weigh groups (BFQ does)", dir, choices[0].file, choices[1].file)
}

// Throttle kinds: what SetIOThrottle limits, per device.
const (
	ReadBps   = "rbps"
	WriteBps  = "wbps"
	ReadIOPS  = "riops"
	WriteIOPS = "wiops"
)

// SetIOThrottle limits the group's I/O on one block device (major:minor)
// to rate bytes (or operations) per second: v1 blkio.throttle.*_device,
// v2 io.max.
func (g *Group) SetIOThrottle(kind string, major, minor int64, rate uint64) error {
	dir, v, err := g.blockController()
	if err != nil {
		return err
	}
	dev := fmt.Sprintf("%d:%d", major, minor)
	if v == V2 {
		return g.write(dir, "io.max", fmt.Sprintf("%s %s=%d", dev, kind, rate))
	}
	file := map[string]string{ReadBps: "blkio.throttle.read_bps_device", WriteBps: "blkio.throttle.write_bps_device",
		ReadIOPS: "blkio.throttle.read_iops_device", WriteIOPS: "blkio.throttle.write_iops_device"}[kind]
	if file == "" {
		return fmt.Errorf("unknown I/O throttle %q", kind)
	}
	return g.write(dir, file, fmt.Sprintf("%s %d", dev, rate))
}

// Usable says whether a group may have the named controller without
// changing the host: Controller's answer, and on a hybrid host a
// controller of the cgroup v2 hierarchy must be enabled in its root's
// cgroup.subtree_control already. (On a pure v2 host Create enables what a
// group needs, from the root down, as systemd does; a hybrid host's v2
// root is the host's own business.)
func (h *Hierarchy) Usable(name string) error {
	c, err := h.Controller(name)
	if err != nil || c.Version == V1 || h.Mode() != "hybrid" {
		return err
	}
	file := filepath.Join(c.Mount, "cgroup.subtree_control")
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if !slices.Contains(strings.Fields(string(b)), name) {
		return fmt.Errorf("the %s controller is on this hybrid host's cgroup v2 hierarchy but not enabled in %s, and this program does not change the host's cgroup root: `echo +%s > %s` enables it", name, file, name, file)
	}
	return nil
}
