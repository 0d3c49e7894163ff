package main

// The cgroup limits of an OCI config beyond `run`'s flags: CPU shares,
// cpuset pinning, a real-time budget, huge pages and block I/O, each
// written by stage 03's cgroup package (03-cgroups-cpu/cgroup/resources.go)
// in the file of the host's cgroup version. And the resource limits
// (rlimits), checked where the kernel would refuse them later.

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/03-cgroups-cpu/cgroup"
)

// ociLimits is what of linux.resources the cgroup package writes beyond
// the quota, the memory limit and pids.max.
type ociLimits struct {
	cpu     *specs.LinuxCPU
	huge    []specs.LinuxHugepageLimit
	blockIO *specs.LinuxBlockIO
}

// readOCILimits keeps the fields it can honour and refuses, by name, those
// it cannot.
func readOCILimits(r *specs.LinuxResources) (*ociLimits, error) {
	l := &ociLimits{huge: r.HugepageLimits}
	if c := r.CPU; c != nil {
		switch {
		case c.Burst != nil:
			return nil, fmt.Errorf("linux.resources.cpu.burst is not supported by this runtime: remove it")
		case c.Idle != nil:
			return nil, fmt.Errorf("linux.resources.cpu.idle is not supported by this runtime: remove it")
		case c.Shares != nil && *c.Shares != 0 && (*c.Shares < 2 || *c.Shares > 262144):
			return nil, fmt.Errorf("linux.resources.cpu.shares %d: give 2 to 262144 (1024 is the default)", *c.Shares)
		}
		if (c.Shares != nil && *c.Shares != 0) || c.Cpus != "" || c.Mems != "" ||
			(c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0) || (c.RealtimePeriod != nil && *c.RealtimePeriod != 0) {
			l.cpu = c
		}
	}
	if b := r.BlockIO; b != nil && !emptyBlockIO(b) {
		switch {
		case b.LeafWeight != nil && *b.LeafWeight != 0:
			return nil, fmt.Errorf("linux.resources.blockIO.leafWeight is not supported by this runtime (no kernel since 5.0 has it): remove it")
		case len(b.WeightDevice) > 0:
			return nil, fmt.Errorf("linux.resources.blockIO.weightDevice is not supported by this runtime: remove it")
		case b.Weight != nil && *b.Weight != 0 && (*b.Weight < 10 || *b.Weight > 1000):
			return nil, fmt.Errorf("linux.resources.blockIO.weight %d: give 10 to 1000", *b.Weight)
		}
		l.blockIO = b
	}
	return l, nil
}

// controllers names the controllers the limits need, with the field that
// needs each (for the message when the host lacks it).
func (l *ociLimits) controllers(h *cgroup.Hierarchy) map[string]string {
	out := map[string]string{}
	if l == nil {
		return out
	}
	if c := l.cpu; c != nil {
		if (c.Shares != nil && *c.Shares != 0) || c.RealtimeRuntime != nil || c.RealtimePeriod != nil {
			out["cpu"] = "cpu"
		}
		if c.Cpus != "" || c.Mems != "" {
			out["cpuset"] = "cpu.cpus/mems"
		}
	}
	if len(l.huge) > 0 {
		out["hugetlb"] = "hugepageLimits"
	}
	if l.blockIO != nil {
		out[blockController(h)] = "blockIO"
	}
	return out
}

// blockController: blkio where v1 has it, else v2's io.
func blockController(h *cgroup.Hierarchy) string {
	if c, err := h.Controller("blkio"); err == nil && c.Version == cgroup.V1 {
		return "blkio"
	}
	return "io"
}

// apply writes the limits into the container's group.
func (l *ociLimits) apply(g *cgroup.Group) error {
	if l == nil {
		return nil
	}
	if c := l.cpu; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			if err := g.SetCPUShares(*c.Shares); err != nil {
				return fmt.Errorf("linux.resources.cpu.shares: %v", err)
			}
		}
		if c.Cpus != "" || c.Mems != "" {
			if err := g.SetCPUSet(c.Cpus, c.Mems); err != nil {
				return fmt.Errorf("linux.resources.cpu.cpus/mems: %v", err)
			}
		}
		if (c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0) || (c.RealtimePeriod != nil && *c.RealtimePeriod != 0) {
			var rtRuntime int64
			var rtPeriod uint64
			if c.RealtimeRuntime != nil {
				rtRuntime = *c.RealtimeRuntime
			}
			if c.RealtimePeriod != nil {
				rtPeriod = *c.RealtimePeriod
			}
			if err := g.SetCPURealtime(rtRuntime, rtPeriod); err != nil {
				return fmt.Errorf("linux.resources.cpu.realtimeRuntime: %v", err)
			}
		}
	}
	for i, h := range l.huge {
		if err := g.SetHugepageLimit(h.Pagesize, h.Limit); err != nil {
			return fmt.Errorf("linux.resources.hugepageLimits[%d]: %v", i, err)
		}
	}
	if b := l.blockIO; b != nil {
		if b.Weight != nil && *b.Weight != 0 {
			if err := g.SetIOWeight(*b.Weight); err != nil {
				return fmt.Errorf("linux.resources.blockIO.weight: %v", err)
			}
		}
		for _, t := range []struct {
			field, kind string
			devs        []specs.LinuxThrottleDevice
		}{{"throttleReadBpsDevice", cgroup.ReadBps, b.ThrottleReadBpsDevice}, {"throttleWriteBpsDevice", cgroup.WriteBps, b.ThrottleWriteBpsDevice},
			{"throttleReadIOPSDevice", cgroup.ReadIOPS, b.ThrottleReadIOPSDevice}, {"throttleWriteIOPSDevice", cgroup.WriteIOPS, b.ThrottleWriteIOPSDevice}} {
			for i, d := range t.devs {
				if err := g.SetIOThrottle(t.kind, d.Major, d.Minor, d.Rate); err != nil {
					return fmt.Errorf("linux.resources.blockIO.%s[%d]: %v", t.field, i, err)
				}
			}
		}
	}
	return nil
}

// checkRlimits refuses, at create, the resource limits the kernel would
// refuse the container's first process: a soft limit above its hard one,
// and a hard limit above the runtime's own without CAP_SYS_RESOURCE (the
// first process inherits the runtime's limits, and only that capability,
// in the host's user namespace, raises a hard limit).
func checkRlimits(rl []specs.POSIXRlimit) error {
	canRaise := hasCapability(unix.CAP_SYS_RESOURCE)
	for i, r := range rl {
		if r.Soft > r.Hard {
			return fmt.Errorf("process.rlimits[%d] (%s): soft %d is above hard %d", i, r.Type, r.Soft, r.Hard)
		}
		var cur unix.Rlimit
		if t, ok := rlimitTable[r.Type]; ok && !canRaise && unix.Getrlimit(t, &cur) == nil && r.Hard > cur.Max {
			return fmt.Errorf("process.rlimits[%d] (%s): hard %d is above this runtime's own hard limit %d, and raising it needs CAP_SYS_RESOURCE, which this runtime lacks: give at most %d", i, r.Type, r.Hard, cur.Max, cur.Max)
		}
	}
	return nil
}

// hasCapability reads the runtime's effective set.
func hasCapability(c uint) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:\t"); ok {
			bits, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && bits&(1<<c) != 0
		}
	}
	return false
}

// rlimitName is a resource limit's name, for messages.
func rlimitName(t int) string {
	for name, v := range rlimitTable {
		if v == t {
			return name
		}
	}
	return strconv.Itoa(t)
}
