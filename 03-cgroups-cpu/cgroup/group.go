package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/container-internals/workshop/internal/trace"
)

// RemoveTimeout bounds how long Kill and Remove wait for a group's last
// processes to leave (a killed process leaves its cgroup a moment after the
// signal). A variable, so that tests can shorten it.
var RemoveTimeout = 5 * time.Second

// cgroup2Magic is the filesystem magic number of cgroup v2 (statfs f_type).
const cgroup2Magic = 0x63677270

// Group is one control group: a directory of the same name in every
// hierarchy that holds one of its controllers.
type Group struct {
	h        *Hierarchy
	name     string
	ctrls    map[string]Controller // controller -> where it lives
	paths    map[string]string     // controller -> the group's directory
	unified  string                // the group's v2 directory, "" when it has none
	dirs     []string              // distinct directories, in creation order
	ancestor []string              // parent directories Create made, outermost first
}

// resolve works out which hierarchies a group with these controllers uses.
// On v1 the cpu controller's usage counter lives in cpuacct, which some
// hosts mount as a hierarchy of its own, so asking for cpu brings cpuacct
// along: CPUStat then works everywhere. No controller at all means the
// unified hierarchy alone (v2's core files: cgroup.procs, cpu.stat usage).
func (h *Hierarchy) resolve(name string, controllers []string) (*Group, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	clean := filepath.Clean(name)
	g := &Group{h: h, name: clean, ctrls: map[string]Controller{}, paths: map[string]string{}}
	var want []string
	for _, c := range controllers {
		if slices.Contains(want, c) {
			continue
		}
		want = append(want, c)
		if c == "cpu" && !slices.Contains(controllers, "cpuacct") {
			if cc, err := h.Controller("cpu"); err == nil && cc.Version == V1 {
				if _, err := h.Controller("cpuacct"); err == nil {
					want = append(want, "cpuacct")
				}
			}
		}
	}
	for _, name := range want {
		c, err := h.Controller(name)
		if err != nil {
			return nil, err
		}
		g.ctrls[name] = c
		dir := filepath.Join(c.Mount, clean)
		g.paths[name] = dir
		if c.Version == V2 {
			g.unified = dir
		}
		if !slices.Contains(g.dirs, dir) {
			g.dirs = append(g.dirs, dir)
		}
	}
	if len(want) == 0 {
		u, ok := h.Unified()
		if !ok {
			return nil, fmt.Errorf("a group without controllers lives in the cgroup v2 hierarchy, and this host has none mounted: name the controllers you need (cpu, memory, pids)")
		}
		g.unified = filepath.Join(u.Dir, clean)
		g.dirs = []string{g.unified}
	}
	return g, nil
}

// ValidateName checks a group name: a relative path inside the hierarchy,
// such as "container" or "workshop/abc".
func ValidateName(name string) error {
	clean := filepath.Clean(name)
	if name == "" || clean == "." || filepath.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("invalid cgroup name %q: give a relative name such as container or workshop/abc", name)
	}
	return nil
}

// Create makes the group name (a relative path such as "container" or
// "workshop/abc") in every hierarchy that holds one of the controllers, and
// on v2 first enables those controllers in each parent's
// cgroup.subtree_control, from the root down. A group that already exists
// is an error wrapping fs.ErrExist: open it with Open instead. If Create
// fails half way, it removes what it made.
func (h *Hierarchy) Create(name string, controllers ...string) (*Group, error) {
	g, err := h.resolve(name, controllers)
	if err != nil {
		return nil, err
	}
	for _, dir := range g.dirs {
		if _, err := os.Stat(dir); err == nil {
			return nil, fmt.Errorf("cgroup %s already exists (left by an earlier run?): %w; remove it with `sudo rmdir %s`", dir, fs.ErrExist, dir)
		}
	}
	var v2ctrls []string
	for n, c := range g.ctrls {
		if c.Version == V2 && n != "cpuacct" {
			v2ctrls = append(v2ctrls, n)
		}
	}
	sort.Strings(v2ctrls)
	var made []string
	undo := func() {
		for i := len(made) - 1; i >= 0; i-- {
			_ = os.Remove(made[i])
		}
	}
	for _, dir := range g.dirs {
		top := g.mountOf(dir)
		cur := top
		parts := strings.Split(g.name, "/")
		for i, p := range parts {
			if dir == g.unified && len(v2ctrls) > 0 {
				if err := h.enable(cur, v2ctrls, cur == top); err != nil {
					undo()
					return nil, err
				}
			}
			cur = filepath.Join(cur, p)
			if _, err := os.Stat(cur); err == nil && i < len(parts)-1 {
				continue
			}
			h.trace("mkdir %s", cur)
			if err := os.Mkdir(cur, 0o755); err != nil {
				undo()
				return nil, fmt.Errorf("cannot create cgroup %s: %v", cur, err)
			}
			made = append(made, cur)
			if c, ok := g.ctrls["cpuset"]; ok && c.Version == V1 && dir == g.paths["cpuset"] {
				if err := h.inheritCPUSet(cur); err != nil {
					undo()
					return nil, fmt.Errorf("cannot give cgroup %s its parent's CPUs and memory nodes: %v", cur, err)
				}
			}
			if i < len(parts)-1 {
				g.ancestor = append(g.ancestor, cur)
			}
		}
	}
	return g, nil
}

// mountOf returns the hierarchy root a group directory belongs to.
func (g *Group) mountOf(dir string) string {
	return strings.TrimSuffix(strings.TrimSuffix(dir, g.name), "/")
}

// enable lists controllers in dir/cgroup.subtree_control, so that dir's
// children get them. Two kernel rules can refuse it, and each gets its fix.
func (h *Hierarchy) enable(dir string, ctrls []string, isRoot bool) error {
	file := filepath.Join(dir, "cgroup.subtree_control")
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("cannot read %s: %v", file, err)
	}
	have := strings.Fields(string(b))
	for _, c := range ctrls {
		if slices.Contains(have, c) {
			continue
		}
		err := h.writeFile(file, "+"+c)
		switch {
		case err == nil:
		case errors.Is(err, syscall.EBUSY):
			// v2's "no internal processes" rule: a group (other than the
			// root) that holds processes cannot also hand controllers to
			// children.
			return fmt.Errorf("cannot enable the %s controller in %s: %s holds processes of its own (cgroup v2's \"no internal processes\" rule): create the group under a parent without processes, or move them into a child group first", c, file, dir)
		case c == "cpu" && isRoot:
			return fmt.Errorf("cannot enable the cpu controller in %s (%v): real-time threads outside the root cgroup block it (on Ubuntu: multipathd); run `sudo systemctl disable --now multipathd.service multipathd.socket && echo +cpu | sudo tee %s`", file, errors.Unwrap(err), file)
		default:
			return fmt.Errorf("cannot enable the %s controller in %s: %v: check `cat %s/cgroup.controllers` lists it", c, file, errors.Unwrap(err), dir)
		}
	}
	return nil
}

// Open returns an existing group (left by an earlier run, or re-opened from
// saved state) with the directories that exist of those the controllers
// would use. If none exists, the error wraps fs.ErrNotExist. Remove on an
// opened group removes its own directories, never its parents.
func (h *Hierarchy) Open(name string, controllers ...string) (*Group, error) {
	g, err := h.resolve(name, controllers)
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, d := range g.dirs {
		if _, err := os.Stat(d); err == nil {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("cgroup %s does not exist: %w", g.name, fs.ErrNotExist)
	}
	for c, p := range g.paths {
		if !slices.Contains(dirs, p) {
			delete(g.paths, c)
			delete(g.ctrls, c)
		}
	}
	if !slices.Contains(dirs, g.unified) {
		g.unified = ""
	}
	g.dirs = dirs
	return g, nil
}

// Name is the group's name, relative to each hierarchy's root.
func (g *Group) Name() string { return g.name }

// Path is the group's directory for a controller ("" if it has none).
func (g *Group) Path(controller string) string { return g.paths[controller] }

// Paths maps each of the group's controllers to its directory.
func (g *Group) Paths() map[string]string {
	m := map[string]string{}
	for k, v := range g.paths {
		m[k] = v
	}
	return m
}

// Dirs lists the group's directories, one per hierarchy.
func (g *Group) Dirs() []string { return append([]string(nil), g.dirs...) }

// Version is the cgroup version the controller is used through (0 if the
// group does not have it).
func (g *Group) Version(controller string) Version { return g.ctrls[controller].Version }

// SetCPU limits the group to quotaUs microseconds of CPU time in every
// period of periodUs microseconds (quota 20000 per 100000 = 20% of one CPU;
// a quota above the period spans several CPUs); quotaUs -1 means no limit.
// v1 writes cpu.cfs_period_us then cpu.cfs_quota_us, v2 writes cpu.max.
func (g *Group) SetCPU(quotaUs int64, periodUs uint64) error {
	if err := ValidateCPU(quotaUs, periodUs); err != nil {
		return err
	}
	dir, v, err := g.dir("cpu")
	if err != nil {
		return err
	}
	if v == V2 {
		q := "max"
		if quotaUs >= 0 {
			q = strconv.FormatInt(quotaUs, 10)
		}
		return g.write(dir, "cpu.max", fmt.Sprintf("%s %d", q, periodUs))
	}
	if err := g.write(dir, "cpu.cfs_period_us", strconv.FormatUint(periodUs, 10)); err != nil {
		return err
	}
	return g.write(dir, "cpu.cfs_quota_us", strconv.FormatInt(quotaUs, 10))
}

// CPU reads the group's quota (-1: no limit) and period back, in µs.
func (g *Group) CPU() (quotaUs int64, periodUs uint64, err error) {
	dir, v, err := g.dir("cpu")
	if err != nil {
		return 0, 0, err
	}
	if v == V2 {
		s, err := readString(filepath.Join(dir, "cpu.max"))
		if err != nil {
			return 0, 0, err
		}
		f := strings.Fields(s)
		if len(f) != 2 {
			return 0, 0, fmt.Errorf("%s/cpu.max: unexpected %q", dir, s)
		}
		quotaUs = -1
		if f[0] != "max" {
			if quotaUs, err = strconv.ParseInt(f[0], 10, 64); err != nil {
				return 0, 0, fmt.Errorf("%s/cpu.max: %v", dir, err)
			}
		}
		periodUs, err = strconv.ParseUint(f[1], 10, 64)
		return quotaUs, periodUs, err
	}
	q, err := readInt(filepath.Join(dir, "cpu.cfs_quota_us"))
	if err != nil {
		return 0, 0, err
	}
	p, err := readInt(filepath.Join(dir, "cpu.cfs_period_us"))
	return q, uint64(p), err
}

// SetMemory limits the group's memory to bytes (-1: no limit). Swap is
// closed to the group where the kernel allows it, so that a process over the
// limit is killed by the OOM killer instead of swapping slowly: v2 writes
// memory.max and memory.swap.max (0), v1 writes memory.limit_in_bytes and
// memory.memsw.limit_in_bytes (memory plus swap, the same value) when the
// kernel accounts swap, or memory.swappiness 0 when it does not.
func (g *Group) SetMemory(bytes int64) error {
	return g.SetMemoryLimits(MemoryLimits{Limit: bytes, Swap: bytes})
}

// MemoryLimits are the memory settings an OCI caller (Docker's -m,
// --memory-swap, --memory-reservation, --memory-swappiness,
// --oom-kill-disable) gives, in the runtime spec's terms.
type MemoryLimits struct {
	Limit       int64   // bytes; -1: none
	Swap        int64   // memory plus swap, in bytes (-1: no limit on swap; = Limit: none)
	Reservation int64   // the soft limit, in bytes (0: none)
	Swappiness  *uint64 // v1 only
	// DisableOOMKiller: over the limit, processes wait for memory instead of
	// being killed (v1's memory.oom_control; v2 has no such switch).
	DisableOOMKiller bool
}

// SetMemoryLimits writes m: v2's memory.max, memory.swap.max (swap alone:
// Swap-Limit, as runc converts it) and memory.low; v1's
// memory.limit_in_bytes, memory.memsw.limit_in_bytes, soft_limit_in_bytes,
// swappiness and oom_control.
func (g *Group) SetMemoryLimits(m MemoryLimits) error {
	dir, v, err := g.dir("memory")
	if err != nil {
		return err
	}
	if v == V2 {
		return g.setMemoryV2(dir, m)
	}
	if err := g.setMemoryV1(dir, m.Limit, m.Swap); err != nil {
		return err
	}
	if m.Reservation > 0 {
		if err := g.write(dir, "memory.soft_limit_in_bytes", strconv.FormatInt(m.Reservation, 10)); err != nil {
			return err
		}
	}
	if m.Swappiness != nil {
		if err := g.write(dir, "memory.swappiness", strconv.FormatUint(*m.Swappiness, 10)); err != nil {
			return err
		}
	}
	if m.DisableOOMKiller {
		return g.write(dir, "memory.oom_control", "1")
	}
	return nil
}

func (g *Group) setMemoryV2(dir string, m MemoryLimits) error {
	switch {
	case m.Swappiness != nil:
		return errors.New("memory swappiness: cgroup v2 has no such setting (remove it)")
	case m.DisableOOMKiller:
		return errors.New("disabling the OOM killer: cgroup v2 has no such setting (remove it)")
	case m.Limit >= 0 && m.Swap >= 0 && m.Swap < m.Limit:
		return fmt.Errorf("memory plus swap (%d) is below the memory limit (%d)", m.Swap, m.Limit)
	}
	limit, swap := "max", "max"
	if m.Limit >= 0 {
		limit = strconv.FormatInt(m.Limit, 10)
		if m.Swap >= 0 {
			swap = strconv.FormatInt(m.Swap-m.Limit, 10)
		}
	}
	if err := g.write(dir, "memory.max", limit); err != nil {
		return err
	}
	if exists(filepath.Join(dir, "memory.swap.max")) {
		if err := g.write(dir, "memory.swap.max", swap); err != nil {
			return err
		}
	}
	if m.Reservation > 0 {
		return g.write(dir, "memory.low", strconv.FormatInt(m.Reservation, 10))
	}
	return nil
}

// setMemoryV1 writes the limit and memory plus swap.
func (g *Group) setMemoryV1(dir string, limit, swap int64) error {
	lim, sw := strconv.FormatInt(limit, 10), strconv.FormatInt(swap, 10)
	memsw := filepath.Join(dir, "memory.memsw.limit_in_bytes")
	if !exists(memsw) {
		if swap != limit && swap != -1 && limit >= 0 {
			return errors.New("a swap limit needs the kernel's swap accounting (swapaccount=1)")
		}
		if err := g.write(dir, "memory.limit_in_bytes", lim); err != nil {
			return err
		}
		if limit >= 0 && swap == limit && exists(filepath.Join(dir, "memory.swappiness")) {
			return g.write(dir, "memory.swappiness", "0")
		}
		return nil
	}
	if limit >= 0 && swap >= 0 && swap < limit {
		return fmt.Errorf("memory plus swap (%d) is below the memory limit (%d)", swap, limit)
	}
	// The kernel keeps memsw >= limit at every moment: raise memsw first,
	// lower it last.
	cur, err := readInt(memsw)
	if err != nil {
		return err
	}
	if swap < 0 || swap > cur {
		if err := g.write(dir, "memory.memsw.limit_in_bytes", sw); err != nil {
			return err
		}
		return g.write(dir, "memory.limit_in_bytes", lim)
	}
	if err := g.write(dir, "memory.limit_in_bytes", lim); err != nil {
		return err
	}
	return g.write(dir, "memory.memsw.limit_in_bytes", sw)
}

// SetPids limits how many processes and threads the group may hold (-1: no
// limit): pids.max on both versions.
func (g *Group) SetPids(max int64) error {
	dir, _, err := g.dir("pids")
	if err != nil {
		return err
	}
	v := "max"
	if max >= 0 {
		v = strconv.FormatInt(max, 10)
	}
	return g.write(dir, "pids.max", v)
}

// Add moves a whole process (all its threads) into the group, in every
// hierarchy, by writing its PID to cgroup.procs.
func (g *Group) Add(pid int) error {
	for _, d := range g.dirs {
		if err := g.write(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// AddTask is the classic v1 way the articles show: the thread ID written to
// tasks moves that one thread (a single-threaded process is all of it). v2
// has no tasks file; there the whole process moves through cgroup.procs.
func (g *Group) AddTask(tid int) error {
	for _, d := range g.dirs {
		file := "tasks"
		if d == g.unified {
			file = "cgroup.procs"
		}
		if err := g.write(d, file, strconv.Itoa(tid)); err != nil {
			return err
		}
	}
	return nil
}

// JoinThread moves the calling thread into dir, a group's directory: on
// v1 that thread alone (`echo 0 > tasks`), on v2 its whole process (`echo 0
// > cgroup.procs`: v2 keeps a process's threads together). The caller locks
// its goroutine to the thread (runtime.LockOSThread) first.
//
// Why a thread, and why 0: every other move (another process, or a whole
// process) takes the kernel's global cgroup_threadgroup_rwsem for writing,
// and that waits for an RCU grace period, several milliseconds, on every
// container start. A thread that moves itself skips it. A process that goes
// on to exec from this very thread ends up wholly in the group: exec keeps
// only the thread that calls it, and the program's memory is charged to it.
func JoinThread(dir string, hook trace.Hook) error {
	path := filepath.Join(dir, JoinFile(dir))
	hook.Call("", "echo 0 > %s", path)
	if err := os.WriteFile(path, []byte("0"), 0); err != nil {
		return fmt.Errorf("cannot join %s: %w", dir, err)
	}
	return nil
}

// JoinFile is the file JoinThread writes in dir: tasks on v1, cgroup.procs
// on v2.
func JoinFile(dir string) string {
	var fs syscall.Statfs_t
	if syscall.Statfs(dir, &fs) == nil && fs.Type == cgroup2Magic {
		return "cgroup.procs"
	}
	return "tasks"
}

// Procs lists the PIDs of the processes in the group, in any of its
// hierarchies, sorted.
func (g *Group) Procs() ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for _, d := range g.dirs {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err == nil && !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
	}
	sort.Ints(out)
	return out, nil
}

// CPUStat is what the kernel counted for a group's CPU use.
type CPUStat struct {
	Usage         time.Duration // CPU time used by the group's processes
	Periods       uint64        // periods in which the group was runnable (nr_periods)
	Throttled     uint64        // periods in which it used up its quota (nr_throttled)
	ThrottledTime time.Duration // total time it spent stopped for that
}

// CPUStat reads the group's CPU counters: v2 cpu.stat (usage_usec,
// nr_periods, nr_throttled, throttled_usec); v1 cpuacct.usage (in the
// cpuacct hierarchy, wherever it is) and cpu.stat (nr_periods, nr_throttled,
// throttled_time).
func (g *Group) CPUStat() (CPUStat, error) {
	var s CPUStat
	var v2dir string
	if c, ok := g.ctrls["cpu"]; ok && c.Version == V2 {
		v2dir = g.paths["cpu"]
	} else if _, ok := g.ctrls["cpuacct"]; !ok && g.unified != "" {
		v2dir = g.unified
	}
	if v2dir != "" {
		kv, err := readKV(filepath.Join(v2dir, "cpu.stat"))
		if err != nil {
			return s, err
		}
		s.Usage = time.Duration(kv["usage_usec"]) * time.Microsecond
		s.Periods, s.Throttled = kv["nr_periods"], kv["nr_throttled"]
		s.ThrottledTime = time.Duration(kv["throttled_usec"]) * time.Microsecond
		return s, nil
	}
	acct, _, err := g.dir("cpuacct")
	if err != nil {
		return s, err
	}
	ns, err := readInt(filepath.Join(acct, "cpuacct.usage"))
	if err != nil {
		return s, err
	}
	s.Usage = time.Duration(ns)
	if dir, ok := g.paths["cpu"]; ok {
		kv, err := readKV(filepath.Join(dir, "cpu.stat"))
		if err != nil {
			return s, err
		}
		s.Periods, s.Throttled = kv["nr_periods"], kv["nr_throttled"]
		s.ThrottledTime = time.Duration(kv["throttled_time"])
	}
	return s, nil
}

// MemoryStat is the group's memory limit and use, in bytes.
type MemoryStat struct {
	Limit    int64  // -1: no limit
	Usage    uint64 // now
	Peak     uint64 // highest so far (0 where the kernel does not say)
	OOMKills uint64 // processes the OOM killer killed in the group
}

// unlimited is where the kernel's "no limit" values start (v1 shows
// 9223372036854771712, a page-rounded int64 maximum).
const unlimited = 1 << 62

// Memory reads the memory limit and counters back.
func (g *Group) Memory() (MemoryStat, error) {
	dir, v, err := g.dir("memory")
	if err != nil {
		return MemoryStat{}, err
	}
	var s MemoryStat
	if v == V2 {
		if s.Limit, err = readInt(filepath.Join(dir, "memory.max")); err != nil {
			return s, err
		}
		u, err := readInt(filepath.Join(dir, "memory.current"))
		if err != nil {
			return s, err
		}
		s.Usage = uint64(u)
		if p, err := readInt(filepath.Join(dir, "memory.peak")); err == nil {
			s.Peak = uint64(p)
		}
		ev, err := readKV(filepath.Join(dir, "memory.events"))
		s.OOMKills = ev["oom_kill"]
		return s, err
	}
	if s.Limit, err = readInt(filepath.Join(dir, "memory.limit_in_bytes")); err != nil {
		return s, err
	}
	if s.Limit >= unlimited {
		s.Limit = -1
	}
	u, err := readInt(filepath.Join(dir, "memory.usage_in_bytes"))
	if err != nil {
		return s, err
	}
	s.Usage = uint64(u)
	if p, err := readInt(filepath.Join(dir, "memory.max_usage_in_bytes")); err == nil {
		s.Peak = uint64(p)
	}
	if oc, err := readKV(filepath.Join(dir, "memory.oom_control")); err == nil {
		s.OOMKills = oc["oom_kill"]
	}
	return s, nil
}

// PidsStat is the group's process limit and count.
type PidsStat struct {
	Max     int64 // -1: no limit
	Current uint64
}

// Pids reads pids.max and pids.current back.
func (g *Group) Pids() (PidsStat, error) {
	dir, _, err := g.dir("pids")
	if err != nil {
		return PidsStat{}, err
	}
	m, err := readInt(filepath.Join(dir, "pids.max"))
	if err != nil {
		return PidsStat{}, err
	}
	c, err := readInt(filepath.Join(dir, "pids.current"))
	return PidsStat{Max: m, Current: uint64(c)}, err
}

// Kill kills every process in the group and waits (at most RemoveTimeout)
// until none is left. v2 has cgroup.kill (Linux 5.14+), which kills them all
// at once, including any forked meanwhile; elsewhere each PID gets SIGKILL,
// again until the group stays empty. The caller must not be in the group.
// A killed child of the caller still needs its Wait.
func (g *Group) Kill() error {
	if g.unified != "" && exists(filepath.Join(g.unified, "cgroup.kill")) {
		if err := g.write(g.unified, "cgroup.kill", "1"); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(RemoveTimeout)
	signalled := map[int]bool{}
	for {
		pids, err := g.Procs()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v in cgroup %s survived SIGKILL for %v (stuck in the kernel?): look at `ps -o pid,stat,wchan -p %s`", pids, g.name, RemoveTimeout, joinInts(pids, ","))
		}
		for _, pid := range pids {
			// 0 is a process that this PID namespace cannot see; kill(0)
			// would be our own process group.
			if pid <= 0 || pid == os.Getpid() || signalled[pid] {
				continue
			}
			signalled[pid] = true
			g.h.trace("kill -KILL %d", pid)
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
				return fmt.Errorf("kill %d: %v", pid, err)
			}
		}
		// A frozen process (docker pause) gets its SIGKILL only when thawed.
		if frozen, err := g.Frozen(); err == nil && frozen {
			_ = g.Thaw()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Remove deletes the group's directory in every hierarchy (rmdir; the
// kernel refuses while processes or child groups remain), retrying for at
// most RemoveTimeout while the last processes leave, then the parent
// directories Create made, if nothing else uses them. A directory that
// cannot be removed is reported, with what holds it and the command to run,
// never left silently. Removing a group that is already gone is not an
// error.
func (g *Group) Remove() error {
	deadline := time.Now().Add(RemoveTimeout)
	var errs []string
	for i := len(g.dirs) - 1; i >= 0; i-- {
		if err := g.rmdir(g.dirs[i], deadline); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for i := len(g.ancestor) - 1; i >= 0; i-- {
		d := g.ancestor[i]
		g.h.trace("rmdir %s", d)
		if err := os.Remove(d); err == nil || os.IsNotExist(err) {
			continue
		} else if !errors.Is(err, syscall.EBUSY) && !errors.Is(err, syscall.ENOTEMPTY) {
			errs = append(errs, fmt.Sprintf("cannot remove cgroup %s: %v", d, err))
		} // busy: another group still lives there, and it is not ours
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func (g *Group) rmdir(dir string, deadline time.Time) error {
	g.h.trace("rmdir %s", dir)
	for {
		err := os.Remove(dir)
		if err == nil || os.IsNotExist(err) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			what := "it is busy"
			if b, rerr := os.ReadFile(filepath.Join(dir, "cgroup.procs")); rerr == nil && len(strings.Fields(string(b))) > 0 {
				what = "it still holds processes " + strings.Join(strings.Fields(string(b)), ",") + ": stop them (kill), then"
			} else if !errors.Is(err, syscall.EBUSY) {
				what = errors.Unwrap(err).Error() + ":"
			} else {
				what = "it has child groups or dying processes:"
			}
			return fmt.Errorf("cannot remove cgroup %s (%s run `sudo rmdir %s`)", dir, what, dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dir returns the group's directory for a controller it was made with.
func (g *Group) dir(controller string) (string, Version, error) {
	c, ok := g.ctrls[controller]
	if !ok {
		return "", 0, fmt.Errorf("cgroup %s was made without the %s controller: name it in Create or Open", g.name, controller)
	}
	return g.paths[controller], c.Version, nil
}

func (g *Group) write(dir, file, value string) error {
	return g.h.writeFile(filepath.Join(dir, file), value)
}

// writeFile writes one value to one cgroup file, as `echo value > file`
// does. The file must exist: the kernel makes them, never us.
func (h *Hierarchy) writeFile(path, value string) error {
	h.trace("echo %s > %s", value, path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("the kernel refused %q in %s: %w", value, path, err)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func readString(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

// readInt reads a file holding one number; "max" reads as -1 (no limit).
func readInt(path string) (int64, error) {
	s, err := readString(path)
	if err != nil {
		return 0, err
	}
	if s == "max" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", path, err)
	}
	return n, nil
}

// readKV reads a flat keyed file such as cpu.stat ("nr_periods 50").
func readKV(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]uint64{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			if n, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				m[f[0]] = n
			}
		}
	}
	return m, nil
}

func joinInts(xs []int, sep string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, sep)
}
