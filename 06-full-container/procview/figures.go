package procview

// What the view is computed from: the container's cgroup files, read on
// the host (v1 and v2), and the host's own /proc for what the cgroup does
// not say.

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/container-internals/workshop/03-cgroups-cpu/cgroup"
)

// userHZ is the unit of /proc/stat's times (USER_HZ, 100 on every Linux
// architecture the kernel exports to user space) and of /proc/PID/stat's
// start time.
const userHZ = 100

// Memory is the container's memory as its cgroup counts it, in bytes.
type Memory struct {
	Limit, Usage         uint64 // Limit 0: none
	SwapLimit, SwapUsage uint64 // SwapLimit 0: no swap for it
	// From memory.stat (v1's hierarchical total_ keys, v2's own).
	Cache, Anon, Shmem, Mapped, Dirty, Writeback       uint64
	ActiveAnon, InactiveAnon, ActiveFile, InactiveFile uint64
	Unevictable, SlabReclaimable, SlabUnreclaimable    uint64
}

// readMemory reads the group's limit, use and breakdown.
func readMemory(g *cgroup.Group) (Memory, bool) {
	st, err := g.Memory()
	if err != nil {
		return Memory{}, false
	}
	m := Memory{Usage: st.Usage}
	if st.Limit >= 0 {
		m.Limit = uint64(st.Limit)
	}
	dir := g.Path("memory")
	kv := readKV(filepath.Join(dir, "memory.stat"))
	if g.Version("memory") == cgroup.V2 {
		m.Cache, m.Anon, m.Shmem, m.Mapped = kv["file"], kv["anon"], kv["shmem"], kv["file_mapped"]
		m.Dirty, m.Writeback = kv["file_dirty"], kv["file_writeback"]
		m.ActiveAnon, m.InactiveAnon = kv["active_anon"], kv["inactive_anon"]
		m.ActiveFile, m.InactiveFile = kv["active_file"], kv["inactive_file"]
		m.Unevictable, m.SlabReclaimable, m.SlabUnreclaimable = kv["unevictable"], kv["slab_reclaimable"], kv["slab_unreclaimable"]
		if max, ok := readUint(filepath.Join(dir, "memory.swap.max")); ok {
			m.SwapLimit = max
			m.SwapUsage, _ = readUint(filepath.Join(dir, "memory.swap.current"))
		}
		return m, true
	}
	m.Cache, m.Anon, m.Shmem, m.Mapped = kv["total_cache"], kv["total_rss"], kv["total_shmem"], kv["total_mapped_file"]
	m.Dirty, m.Writeback = kv["total_dirty"], kv["total_writeback"]
	m.ActiveAnon, m.InactiveAnon = kv["total_active_anon"], kv["total_inactive_anon"]
	m.ActiveFile, m.InactiveFile = kv["total_active_file"], kv["total_inactive_file"]
	m.Unevictable = kv["total_unevictable"]
	// v1 counts memory plus swap together (memsw), when the kernel
	// accounts swap at all.
	if memsw, ok := readUint(filepath.Join(dir, "memory.memsw.limit_in_bytes")); ok && memsw < 1<<62 && m.Limit > 0 && memsw >= m.Limit {
		m.SwapLimit = memsw - m.Limit
		if used, ok := readUint(filepath.Join(dir, "memory.memsw.usage_in_bytes")); ok && used > m.Usage {
			m.SwapUsage = used - m.Usage
		}
	}
	return m, true
}

// CPUTimes is the CPU time the group used, in USER_HZ ticks.
type CPUTimes struct{ User, System uint64 }

// readCPUTimes: v2 cpu.stat (user_usec, system_usec), v1 cpuacct.stat
// (user, system, already in USER_HZ ticks).
func readCPUTimes(g *cgroup.Group) CPUTimes {
	for _, c := range []string{"cpu", "memory", "pids"} {
		if g.Version(c) == cgroup.V2 {
			kv := readKV(filepath.Join(g.Path(c), "cpu.stat"))
			return CPUTimes{User: kv["user_usec"] / (1e6 / userHZ), System: kv["system_usec"] / (1e6 / userHZ)}
		}
	}
	if dir := g.Path("cpuacct"); dir != "" {
		kv := readKV(filepath.Join(dir, "cpuacct.stat"))
		return CPUTimes{User: kv["user"], System: kv["system"]}
	}
	return CPUTimes{}
}

// ChooseCPUs is the set of CPUs a container of quota µs per period µs is
// shown (and pinned to): the quota's CPUs rounded up (0.5 CPU is 1 CPU,
// 1.5 are 2), taken from allowed, the CPUs this process may run on; no
// quota (quotaUs < 0), all of allowed. As the cgroup's cpuset would be,
// had the runtime made one.
func ChooseCPUs(allowed []int, quotaUs int64, periodUs uint64) []int {
	if quotaUs <= 0 || periodUs == 0 {
		return allowed
	}
	n := int(math.Ceil(float64(quotaUs) / float64(periodUs)))
	if n < 1 {
		n = 1
	}
	if n > len(allowed) {
		n = len(allowed)
	}
	return allowed[:n]
}

// tasks lists the group's threads (v1 tasks, v2 cgroup.threads).
func tasks(g *cgroup.Group) []string {
	for _, c := range []string{"cpu", "memory", "pids", "cpuacct"} {
		dir := g.Path(c)
		if dir == "" {
			continue
		}
		file := "tasks"
		if g.Version(c) == cgroup.V2 {
			file = "cgroup.threads"
		}
		if b, err := os.ReadFile(filepath.Join(dir, file)); err == nil {
			return strings.Fields(string(b))
		}
	}
	return nil
}

// runnable counts the group's threads that are running or waiting to run
// (R), and those in uninterruptible sleep (D): what the kernel's load
// average counts.
func runnable(g *cgroup.Group) (running, blocked, total int) {
	for _, tid := range tasks(g) {
		b, err := os.ReadFile("/proc/" + tid + "/stat")
		if err != nil {
			continue
		}
		total++
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 {
			switch s[i+2] {
			case 'R':
				running++
			case 'D':
				blocked++
			}
		}
	}
	return running, blocked, total
}

// ioStat is one block device's I/O by the group.
type ioStat struct {
	major, minor                  string
	reads, writes, rbytes, wbytes uint64
}

// readIO reads the group's I/O per device: v2 io.stat, v1
// blkio.throttle.io_serviced and io_service_bytes. Empty where the group
// has no I/O controller (the runtime does not ask for one).
func readIO(g *cgroup.Group) []ioStat {
	var out []ioStat
	for _, c := range []string{"memory", "cpu", "pids"} {
		if g.Version(c) != cgroup.V2 {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(g.Path(c), "io.stat"))
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			maj, min, _ := strings.Cut(f[0], ":")
			s := ioStat{major: maj, minor: min}
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				n, _ := strconv.ParseUint(v, 10, 64)
				switch k {
				case "rios":
					s.reads = n
				case "wios":
					s.writes = n
				case "rbytes":
					s.rbytes = n
				case "wbytes":
					s.wbytes = n
				}
			}
			out = append(out, s)
		}
		return out
	}
	dir := g.Path("blkio")
	if dir == "" {
		return nil
	}
	byDev := map[string]*ioStat{}
	var order []string
	for _, file := range []string{"blkio.throttle.io_serviced", "blkio.throttle.io_service_bytes"} {
		b, _ := os.ReadFile(filepath.Join(dir, file))
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) != 3 {
				continue
			}
			s := byDev[f[0]]
			if s == nil {
				maj, min, _ := strings.Cut(f[0], ":")
				s = &ioStat{major: maj, minor: min}
				byDev[f[0]] = s
				order = append(order, f[0])
			}
			n, _ := strconv.ParseUint(f[2], 10, 64)
			switch {
			case file == "blkio.throttle.io_serviced" && f[1] == "Read":
				s.reads = n
			case file == "blkio.throttle.io_serviced" && f[1] == "Write":
				s.writes = n
			case f[1] == "Read":
				s.rbytes = n
			case f[1] == "Write":
				s.wbytes = n
			}
		}
	}
	for _, d := range order {
		out = append(out, *byDev[d])
	}
	return out
}

func readKV(path string) map[string]uint64 {
	kv := map[string]uint64{}
	b, err := os.ReadFile(path)
	if err != nil {
		return kv
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				kv[f[0]] = v
			}
		}
	}
	return kv
}

// readUint reads a file holding one number ("max" is not one).
func readUint(path string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return v, err == nil
}
