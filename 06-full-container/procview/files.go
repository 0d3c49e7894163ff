package procview

// The files of the view, each computed from the host's own file and the
// container's figures: what the cgroup knows replaces the host's numbers,
// the rest of the file passes through as the host wrote it (as lxcfs
// does). Pure functions of their inputs, so that a test can check them
// against any host's text.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Files are the /proc files the view serves, bound over the container's.
var Files = []string{"meminfo", "cpuinfo", "stat", "uptime", "loadavg", "swaps", "diskstats"}

// Meminfo is /proc/meminfo with the cgroup's limit as MemTotal and its
// use taken out of it. Without a memory limit it is the host's.
func Meminfo(host string, m Memory) string {
	hostKB := field(host, "MemTotal")
	if m.Limit == 0 || m.Limit/1024 >= hostKB {
		return host
	}
	kb := func(b uint64) uint64 { return b / 1024 }
	total := kb(m.Limit)
	used := min(kb(m.Usage), total)
	free := total - used
	// What the kernel would give back under pressure: the file cache
	// (less what is shared memory, which cannot be dropped).
	cache := kb(m.Cache)
	reclaim := min(kb(m.ActiveFile+m.InactiveFile), used)
	swapTotal := min(kb(m.SwapLimit), field(host, "SwapTotal"))
	swapFree := swapTotal - min(kb(m.SwapUsage), swapTotal)
	set := map[string]uint64{
		"MemTotal": total, "MemFree": free, "MemAvailable": free + reclaim,
		"Buffers": 0, "Cached": cache, "SwapCached": 0,
		"Active": kb(m.ActiveAnon + m.ActiveFile), "Inactive": kb(m.InactiveAnon + m.InactiveFile),
		"Active(anon)": kb(m.ActiveAnon), "Inactive(anon)": kb(m.InactiveAnon),
		"Active(file)": kb(m.ActiveFile), "Inactive(file)": kb(m.InactiveFile),
		"Unevictable": kb(m.Unevictable), "Mlocked": 0,
		"SwapTotal": swapTotal, "SwapFree": swapFree,
		"Dirty": kb(m.Dirty), "Writeback": kb(m.Writeback),
		"AnonPages": kb(m.Anon), "Mapped": kb(m.Mapped), "Shmem": kb(m.Shmem),
		"Slab":         kb(m.SlabReclaimable + m.SlabUnreclaimable),
		"SReclaimable": kb(m.SlabReclaimable), "SUnreclaim": kb(m.SlabUnreclaimable),
	}
	var b strings.Builder
	for _, l := range lines(host) {
		key, _, _ := strings.Cut(l, ":")
		if v, ok := set[key]; ok {
			fmt.Fprintf(&b, "%-15s %8d kB\n", key+":", v)
			continue
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// Cpuinfo keeps the host's entries of the CPUs shown, numbered from 0 as
// the container will count them.
func Cpuinfo(host string, cpus []int) string {
	show := map[int]bool{}
	for _, c := range cpus {
		show[c] = true
	}
	var b strings.Builder
	next := 0
	for _, block := range strings.Split(strings.TrimRight(host, "\n"), "\n\n") {
		first, rest, _ := strings.Cut(block, "\n")
		key, val, ok := strings.Cut(first, ":")
		if !ok || strings.TrimSpace(key) != "processor" {
			b.WriteString(block + "\n\n") // not a CPU's entry (some architectures add one)
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || !show[n] {
			continue
		}
		fmt.Fprintf(&b, "%s: %d\n%s\n\n", key, next, rest)
		next++
	}
	return b.String()
}

// Stat is /proc/stat with the CPU lines made of the container's own CPU
// time (its cgroup's user and system time, the rest idle, spread evenly
// over its CPUs) and its own running and blocked threads; the other lines
// (interrupts, context switches, boot time) are the host's.
func Stat(host string, cpus int, t CPUTimes, uptime float64, running, blocked int) string {
	idle := uint64(0)
	if all := uint64(uptime * userHZ * float64(cpus)); all > t.User+t.System {
		idle = all - t.User - t.System
	}
	line := func(name string, div uint64) string {
		return fmt.Sprintf("%s %d 0 %d %d 0 0 0 0 0 0\n", name, t.User/div, t.System/div, idle/div)
	}
	var b strings.Builder
	b.WriteString(line("cpu ", 1))
	for i := 0; i < cpus; i++ {
		b.WriteString(line("cpu"+strconv.Itoa(i), uint64(cpus)))
	}
	for _, l := range lines(host) {
		switch f := strings.Fields(l); {
		case len(f) > 0 && strings.HasPrefix(f[0], "cpu"):
		case len(f) > 0 && f[0] == "procs_running":
			fmt.Fprintf(&b, "procs_running %d\n", running)
		case len(f) > 0 && f[0] == "procs_blocked":
			fmt.Fprintf(&b, "procs_blocked %d\n", blocked)
		default:
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// Uptime is the time since the container's first process started, and
// the idle time of its CPUs in that time.
func Uptime(uptime float64, cpus int, t CPUTimes) string {
	idle := uptime*float64(cpus) - float64(t.User+t.System)/userHZ
	return fmt.Sprintf("%.2f %.2f\n", uptime, max(idle, 0))
}

// Loadavg is the container's load average, sampled from its cgroup's
// threads (see loadAvg), its runnable and total threads, and no last PID
// (the host's would tell how busy the host is).
func Loadavg(avg [3]float64, running, total int) string {
	return fmt.Sprintf("%.2f %.2f %.2f %d/%d 0\n", avg[0], avg[1], avg[2], running, total)
}

// Swaps shows the container's swap, as one virtual entry, when it has any.
func Swaps(m Memory, hostMeminfo string) string {
	const header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
	size := min(m.SwapLimit/1024, field(hostMeminfo, "SwapTotal"))
	if m.Limit == 0 || size == 0 {
		return header
	}
	return header + fmt.Sprintf("%-40s%-16s%-16d%-16d%d\n", "none", "virtual", size, min(m.SwapUsage/1024, size), 0)
}

// Diskstats has a line for each disk the container did I/O on, with its
// own counts (reads, sectors read, writes, sectors written); the other
// columns, time spent, the cgroup does not give.
func Diskstats(io []ioStat) string {
	var b strings.Builder
	for _, s := range io {
		fmt.Fprintf(&b, "%4s %7s %s %d 0 %d 0 %d 0 %d 0 0 0 0 0 0 0 0 0 0\n",
			s.major, s.minor, devName(s.major, s.minor), s.reads, s.rbytes/512, s.writes, s.wbytes/512)
	}
	return b.String()
}

// devName is a block device's kernel name (sda, vda, nvme0n1).
func devName(major, minor string) string {
	b, err := os.ReadFile(filepath.Join("/sys/dev/block", major+":"+minor, "uevent"))
	if err == nil {
		for _, l := range lines(string(b)) {
			if v, ok := strings.CutPrefix(l, "DEVNAME="); ok {
				return v
			}
		}
	}
	return major + ":" + minor
}

// field reads a "Key:   123 kB" line's number.
func field(text, key string) uint64 {
	for _, l := range lines(text) {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

func lines(s string) []string {
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}
