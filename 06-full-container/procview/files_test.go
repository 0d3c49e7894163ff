package procview

import (
	"strings"
	"testing"
)

const hostMeminfo = `MemTotal:       24684092 kB
MemFree:        22000000 kB
MemAvailable:   23000000 kB
Buffers:          100000 kB
Cached:          1000000 kB
SwapTotal:       1048576 kB
SwapFree:        1048576 kB
HugePages_Total:       0
`

// A 64 MB container using 16 MB, 4 of them file cache: MemTotal is the
// limit, MemFree what is left of it, MemAvailable counts the cache back,
// and what the cgroup says nothing of (HugePages) is the host's line.
func TestMeminfoIsTheLimitAndTheUse(t *testing.T) {
	m := Memory{Limit: 64 << 20, Usage: 16 << 20, Cache: 4 << 20, ActiveFile: 1 << 20, InactiveFile: 3 << 20}
	got := Meminfo(hostMeminfo, m)
	for key, want := range map[string]uint64{"MemTotal": 65536, "MemFree": 49152, "MemAvailable": 53248, "Cached": 4096, "Buffers": 0, "SwapTotal": 0} {
		if v := field(got, key); v != want {
			t.Errorf("%s: %d kB, want %d\n%s", key, v, want, got)
		}
	}
	if !strings.Contains(got, "HugePages_Total:       0\n") {
		t.Errorf("the host's other lines should pass through:\n%s", got)
	}
	if Meminfo(hostMeminfo, Memory{Usage: 1 << 20}) != hostMeminfo {
		t.Error("without a memory limit, meminfo should be the host's")
	}
}

// The shown CPUs' entries, renumbered from 0; the others are left out.
func TestCpuinfoKeepsTheShownCPUsRenumbered(t *testing.T) {
	host := "processor\t: 0\nmodel name\t: A\n\nprocessor\t: 1\nmodel name\t: B\n\nprocessor\t: 2\nmodel name\t: C\n\n"
	got := Cpuinfo(host, []int{1, 2})
	want := "processor\t: 0\nmodel name\t: B\n\nprocessor\t: 1\nmodel name\t: C\n\n"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

// One cpuN line per CPU shown, the group's times in them, the host's
// other lines kept, procs_running the container's.
func TestStatHasOneLinePerCPU(t *testing.T) {
	host := "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\ncpu1 1 2 3 4 5 6 7 8 9 10\nintr 5 6\nctxt 7\nbtime 100\nprocs_running 9\nprocs_blocked 3\n"
	got := Stat(host, 1, CPUTimes{User: 50, System: 20}, 10, 1, 0)
	want := "cpu  50 0 20 930 0 0 0 0 0 0\ncpu0 50 0 20 930 0 0 0 0 0 0\nintr 5 6\nctxt 7\nbtime 100\nprocs_running 1\nprocs_blocked 0\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// The quota's CPUs rounded up, at least one, at most those allowed.
func TestChooseCPUsRoundsTheQuotaUp(t *testing.T) {
	all := []int{0, 1, 2, 3}
	for _, c := range []struct {
		quota int64
		want  int
	}{{50000, 1}, {100000, 1}, {150000, 2}, {1000000, 4}, {-1, 4}, {1000, 1}} {
		if got := ChooseCPUs(all, c.quota, 100000); len(got) != c.want {
			t.Errorf("quota %d per 100000: %v, want %d CPUs", c.quota, got, c.want)
		}
	}
}

func TestUptimeAndLoadavgFormats(t *testing.T) {
	if got := Uptime(12.5, 2, CPUTimes{User: 100, System: 50}); got != "12.50 23.50\n" {
		t.Errorf("Uptime: %q", got)
	}
	if got := Loadavg([3]float64{0.5, 0.25, 0}, 1, 3); got != "0.50 0.25 0.00 1/3 0\n" {
		t.Errorf("Loadavg: %q", got)
	}
	if got := Swaps(Memory{Limit: 1 << 20}, hostMeminfo); strings.Count(got, "\n") != 1 {
		t.Errorf("Swaps without swap for the container should be the header alone: %q", got)
	}
}
