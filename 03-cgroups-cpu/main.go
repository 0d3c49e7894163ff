// Stage 03: cgroups, or the busy loop held at 20%.
// Chapter: docs/03-cgroups-cpu.md (the idea, real output, the calls, exercises).
//
// The article's experiment: a shell loop `while : ; do : ; done` eats 100%
// of a CPU. Make a directory under /sys/fs/cgroup/cpu, write 20000 to its
// cpu.cfs_quota_us (20 ms of CPU in every 100 ms period) and the loop's PID
// to its tasks file, and top shows the loop at 20%. Nothing about the
// process changed; the kernel's scheduler now stops it for the rest of each
// period once it has used its 20 ms.
//
// This program does the same on your kernel, with whichever cgroup version
// holds the cpu controller (v1 files as in the article, or v2's cpu.max and
// cgroup.procs), and measures the loop's share from the kernel's counters,
// once a second, before and after.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/container-internals/workshop/03-cgroups-cpu/cgroup"
	"github.com/container-internals/workshop/internal/narrate"
	"github.com/container-internals/workshop/internal/preflight"
	"github.com/container-internals/workshop/internal/stage"
)

const name = "03-cgroups-cpu"

// The article's busy loop, exactly: one shell process, one thread, always
// runnable.
var loopCommand = []string{"sh", "-c", "while : ; do : ; done"}

func main() {
	app := stage.App(name,
		"a busy loop held at 20% of a CPU by a cgroup",
		"Starts a busy loop (100% of a CPU), then creates a control group, writes a CPU quota\n"+
			"into its files (v1 cpu.cfs_quota_us, or v2 cpu.max) and moves the loop in: its\n"+
			"share drops to the quota (20% by default), measured live from the kernel's counters.",
		[]cli.Flag{
			&cli.Int64Flag{Name: "quota", Value: 20000, Usage: "CPU time the group may use per period, in `µs` (1000 or more; the article's 20000 = 20%)"},
			&cli.Uint64Flag{Name: "period", Value: cgroup.DefaultPeriodUs, Usage: "length of a period, in `µs` (1000..1000000)"},
			&cli.Float64Flag{Name: "cpus", Usage: "the limit as a number of `CPUs`, as docker run --cpus takes it (0.2 = quota 20000 per 100000); not with --quota"},
			&cli.IntFlag{Name: "seconds", Value: 5, Usage: "watch the loop for `N` seconds in each phase (uncapped, capped), 1..600"},
			&cli.StringFlag{Name: "cgroup-name", Value: "container", Usage: "`name` of the control group to create"},
			&cli.BoolFlag{Name: "keep", Usage: "leave the (empty) control group in place at the end, to look at, and print how to remove it"},
		},
		run)
	app.UsageText = "sudo go run ./" + name + " [flags]"
	// A value that is not a number gets one line, like every other error,
	// rather than the whole help text.
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
		return stage.Fail("%v: see --help", err)
	}
	stage.Main(app)
}

func run(c *cli.Context) error {
	n := stage.Narrator(c)
	if c.Args().Len() > 0 {
		return stage.Fail("unexpected argument %q: this stage runs its own busy loop (see --help)", c.Args().First())
	}
	quota, period, err := cgroup.ResolveCPU(c.Int64("quota"), c.IsSet("quota"), c.Uint64("period"), c.Float64("cpus"), c.IsSet("cpus"))
	if err != nil {
		return stage.Fail("invalid CPU limit: %v", err)
	}
	if quota < 0 {
		return stage.Fail("invalid CPU limit: --quota -1 means no limit, and this experiment is about the limit: give 1000 or more")
	}
	seconds := c.Int("seconds")
	if seconds < 1 || seconds > 600 {
		return stage.Fail("--seconds %d: give 1 to 600 seconds per phase", seconds)
	}
	if err := cgroup.ValidateName(c.String("cgroup-name")); err != nil {
		return stage.Fail("--cgroup-name: %v", err)
	}
	if err := preflight.RequireRoot(name); err != nil {
		return err
	}
	h, err := cgroup.Detect()
	if err != nil {
		return stage.Fail("%v", err)
	}
	cpu, err := h.Controller("cpu")
	if err != nil {
		return stage.Fail("%v", err)
	}
	// Every file the package writes is shown as the shell command that
	// would do the same.
	h.Trace = n.Trace()

	e := &experiment{n: n, h: h, cpu: cpu, name: c.String("cgroup-name"),
		quota: quota, period: period, phase: time.Duration(seconds) * time.Second, keep: c.Bool("keep")}
	e.catchSignals()
	err = e.run()
	for e.interrupted.Load() {
		time.Sleep(time.Hour) // the signal handler is cleaning up, and will exit
	}
	e.cleanup()
	if err != nil {
		return err
	}
	if e.failed > 0 {
		return stage.Fail("%d check(s) failed: see CHECK FAILED above", e.failed)
	}
	return nil
}

// experiment holds what the steps share, and what must be undone.
type experiment struct {
	n           *narrate.Narrator
	h           *cgroup.Hierarchy
	cpu         cgroup.Controller
	name        string
	quota       int64
	period      uint64
	phase       time.Duration
	keep        bool
	failed      int
	uncapped    float64 // the loop's share of one CPU, in %, before the limit
	capped      float64 // and after
	cappedWall  time.Duration
	cgroupUsage time.Duration // what the group's own counter says for the capped phase
	movedAt     time.Time     // when the loop moved into the group

	// mu is held while something is being made that cleanup must undo, so
	// that a Ctrl-C never finds half of it.
	mu          sync.Mutex
	undo        []func()
	interrupted atomic.Bool
	group       *cgroup.Group
	loop        *exec.Cmd
}

func (e *experiment) run() error {
	if err := e.where(); err != nil {
		return err
	}
	if err := e.create(); err != nil {
		return err
	}
	e.defaults()
	if err := e.startLoop(); err != nil {
		return err
	}
	e.n.Say("its share of one CPU, once a second (from /proc/%d/schedstat, the kernel's count of its CPU time):", e.loop.Process.Pid)
	e.uncapped, _ = e.watch()
	e.top(e.uncapped, "100.0")
	if err := e.limit(); err != nil {
		return err
	}
	e.counters()
	e.procProblem()
	e.finish()
	return nil
}

// Step 1: where the cgroup filesystem is, and which version holds cpu.
func (e *experiment) where() error {
	n := e.n
	n.Step("Find the cgroup filesystems: mount -t cgroup, as in the article (and mount -t cgroup2)")
	e.listMounts()
	switch e.h.Mode() {
	case "v1":
		n.Say("this host has cgroup v1: one hierarchy per controller, as in the article")
	case "v2":
		n.Say("this host has cgroup v2: one hierarchy for every controller (the article predates it)")
	default:
		u, _ := e.h.Unified()
		n.Say("this host is hybrid: v1 hierarchies for the controllers, and a cgroup2 at %s with %s", u.MountPoint, orNone(u.Controllers))
	}
	n.Say("the cpu controller is %s, at %s", e.cpu.Version, e.cpu.Mount)
	n.Call("ls %s", e.cpu.Mount)
	n.Output(columns(stage.ListDir(e.cpu.Mount)))
	if e.cpu.Version == cgroup.V1 {
		e.check(exists(filepath.Join(e.cpu.Mount, "cpu.cfs_quota_us")), "the cpu hierarchy has the article's files: cpu.cfs_period_us, cpu.cfs_quota_us, tasks")
		return nil
	}
	// On v2 the root hands a controller to the groups below it by listing
	// it in cgroup.subtree_control; Create adds cpu there if it is missing.
	sub := filepath.Join(e.cpu.Mount, "cgroup.subtree_control")
	n.Call("cat %s", sub)
	b, _ := os.ReadFile(sub)
	n.Output(string(b))
	n.Note("v2 files are named differently: cpu.max holds \"<quota> <period>\", cgroup.procs replaces tasks")
	e.check(true, "cgroup.controllers at %s lists cpu", e.cpu.Mount)
	return nil
}

// listMounts runs the article's `mount -t cgroup`, and `mount -t cgroup2`
// for today's hierarchy. Without a mount program it shows the same table
// from /proc/self/mountinfo, which is what the cgroup package reads.
func (e *experiment) listMounts() {
	n := e.n
	if _, err := exec.LookPath("mount"); err != nil {
		n.Note("mount is not installed here (apt-get install mount): the same table, from /proc/self/mountinfo")
		n.Call("grep cgroup /proc/self/mountinfo")
		var lines []string
		for _, m := range e.h.Mounts() {
			fstype := "cgroup"
			if m.Version == cgroup.V2 {
				fstype = "cgroup2"
			}
			lines = append(lines, fmt.Sprintf("%s on %s type %s (%s)", fstype, m.MountPoint, fstype, m.Options))
		}
		n.Output(strings.Join(lines, "\n"))
	} else {
		for _, fstype := range []string{"cgroup", "cgroup2"} {
			n.Call("mount -t %s", fstype)
			out, err := exec.Command("mount", "-t", fstype).Output()
			if err != nil {
				n.Warn("mount -t %s: %v", fstype, err)
			}
			n.Output(string(out))
		}
	}
	for _, m := range e.h.Mounts() {
		if m.Version == cgroup.V2 {
			n.Say("%s/cgroup.controllers lists: %s", m.MountPoint, orNone(m.Controllers))
		}
	}
}

// Step 2: a control group is a directory; the kernel fills it.
func (e *experiment) create() error {
	n := e.n
	n.Step("Create the control group %q: a directory", e.name)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.removeLeftover(); err != nil {
		return err
	}
	g, err := e.h.Create(e.name, "cpu")
	if err != nil {
		return stage.Fail("%v", err)
	}
	e.group = g
	e.undo = append(e.undo, func() {
		if err := g.Kill(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		}
		if err := g.Remove(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		}
	})
	dir := g.Path("cpu")
	if acct := g.Path("cpuacct"); acct != "" && acct != dir {
		n.Note("cpuacct, which counts the group's CPU time, is a hierarchy of its own here (most v1 hosts mount cpu,cpuacct together), so the group is made there too")
	}
	n.Call("ls %s", dir)
	files := stage.ListDir(dir)
	n.Output(columns(files))
	want := "cpu.cfs_quota_us"
	if e.cpu.Version == cgroup.V2 {
		want = "cpu.max"
	}
	e.check(slices.Contains(files, want), "we only made a directory; the kernel filled it with %d files, %s among them", len(files), want)
	return nil
}

// removeLeftover deals with a group of the same name from an earlier run
// that crashed or was killed: its busy loops are ours to stop; anything
// else in it is not, and is reported instead.
func (e *experiment) removeLeftover() error {
	old, err := e.h.Open(e.name, "cpu")
	if err != nil {
		return nil // nothing left over
	}
	procs, err := old.Procs()
	if err != nil {
		return stage.Fail("cannot read the processes of the existing cgroup %s: %v", strings.Join(old.Dirs(), ", "), err)
	}
	for _, pid := range procs {
		if parent := runningStage(pid); parent > 0 {
			return stage.Fail("cgroup %s is in use by another run of this stage (PID %d) right now: wait for it to end, or give this run another --cgroup-name", old.Dirs()[0], parent)
		}
		if !isOurLoop(pid) {
			return stage.Fail("cgroup %s already exists and holds process %d, which is not this stage's busy loop: choose another --cgroup-name, or stop its processes and run `sudo rmdir %s`",
				old.Dirs()[0], pid, strings.Join(old.Dirs(), " "))
		}
	}
	e.n.Warn("%s was left by an earlier run (with %d busy loop(s) in it): emptying and removing it first", strings.Join(old.Dirs(), ", "), len(procs))
	if err := old.Kill(); err != nil {
		return stage.Fail("%v", err)
	}
	if err := old.Remove(); err != nil {
		return stage.Fail("%v", err)
	}
	return nil
}

// Step 3: a new group has no limit.
func (e *experiment) defaults() {
	n, dir := e.n, e.group.Path("cpu")
	n.Step("Read the defaults: no limit yet")
	if e.cpu.Version == cgroup.V1 {
		n.Call("cat %s/cpu.cfs_quota_us", dir)
		n.Output(readFile(filepath.Join(dir, "cpu.cfs_quota_us")))
		n.Call("cat %s/cpu.cfs_period_us", dir)
		n.Output(readFile(filepath.Join(dir, "cpu.cfs_period_us")))
		n.Note("quota -1: no limit; period 100000 µs: the quota is counted per 100 ms")
	} else {
		n.Call("cat %s/cpu.max", dir)
		n.Output(readFile(filepath.Join(dir, "cpu.max")))
		n.Note("\"max\": no limit; 100000 µs: the quota is counted per 100 ms (v1 keeps the two in cpu.cfs_quota_us and cpu.cfs_period_us)")
	}
	q, p, err := e.group.CPU()
	e.check(err == nil && q == -1 && p == cgroup.DefaultPeriodUs, "a new group may use all the CPU it wants (quota %d, period %d)", q, p)
}

// Step 4: the busy loop, uncapped.
func (e *experiment) startLoop() error {
	n := e.n
	n.Step("Start the busy loop, outside the group: about 100%% of one CPU")
	n.Call("%s %s '%s' &", loopCommand[0], loopCommand[1], loopCommand[2])
	e.mu.Lock()
	defer e.mu.Unlock()
	cmd := exec.Command(loopCommand[0], loopCommand[1:]...)
	if err := cmd.Start(); err != nil {
		return stage.Fail("cannot start the busy loop: %v (is sh installed?)", err)
	}
	e.loop = cmd
	e.undo = append(e.undo, func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	n.Say("the busy loop is running: PID %d", cmd.Process.Pid)
	return nil
}

// Step 5: the article's two writes.
func (e *experiment) limit() error {
	n, pid := e.n, e.loop.Process.Pid
	pct := 100 * float64(e.quota) / float64(e.period)
	n.Step("Hold it at %.0f%%: write the quota, then move the loop into the group", pct)
	n.Note("%d µs of CPU in every %d µs period: %.0f%% of one CPU", e.quota, e.period, pct)
	if err := e.group.SetCPU(e.quota, e.period); err != nil {
		return stage.Fail("%v: give a smaller --quota or --cpus (the kernel's upper bound is about 2^44 µs)", err)
	}
	if err := e.group.AddTask(pid); err != nil {
		return stage.Fail("%v", err)
	}
	if e.cpu.Version == cgroup.V2 {
		n.Note("the article's v1 names: cpu.max is cpu.cfs_quota_us and cpu.cfs_period_us in one file; cgroup.procs replaces tasks")
	}
	e.movedAt = time.Now()
	st, err := e.group.CPUStat()
	if err != nil {
		return stage.Fail("cannot read the group's CPU counters: %v", err)
	}
	start := time.Now()
	n.Say("its share of one CPU, once a second:")
	e.capped, e.cappedWall = e.watch()
	if end, err := e.group.CPUStat(); err == nil {
		e.cgroupUsage = end.Usage - st.Usage
		e.cappedWall = time.Since(start)
	}
	article := ""
	if e.quota == 20000 && e.period == cgroup.DefaultPeriodUs {
		article = "20.3"
	}
	e.top(e.capped, article)
	if e.quota < int64(e.period) {
		n.Note("the loop did not change: the scheduler stops it once its %d µs of each period are used", e.quota)
	} else {
		n.Note("one thread never uses up a quota of a whole CPU or more")
	}
	return nil
}

// top shows the article's view of the loop: `top` in batch mode, two frames
// a second apart (a frame's %CPU is the share since the frame before), and
// the loop's line of the second frame, beside this stage's own count over
// the whole phase. article is what the article's top showed ("" if it
// showed nothing for these numbers).
func (e *experiment) top(own float64, article string) {
	n, pid := e.n, e.loop.Process.Pid
	said := fmt.Sprintf("this stage's own count: %.1f%% over the %.0f s above", own, e.phase.Seconds())
	if article != "" {
		said = "the article's top: %Cpu0 : " + article + " us; " + said
	} else {
		said = "%Cpu as top counts it; " + said
	}
	if _, err := exec.LookPath("top"); err != nil {
		n.Note("top is not installed here (apt-get install procps), so only %s", said)
		return
	}
	n.Call("top -b -d 1 -n 2   # batch mode: the header and the loop's line of the second frame")
	out, err := exec.Command("top", "-b", "-d", "1", "-n", "2").Output()
	header, line := topLine(string(out), pid)
	if err != nil || line == "" {
		n.Note("top printed no line for PID %d (%v): %s", pid, err, said)
		return
	}
	n.Output(header + "\n" + line)
	cpu, busybox := topCPU(header, line)
	if busybox {
		// busybox's top counts all the machine's CPUs as 100%.
		n.Note("busybox's top: %s%% of all %d CPUs = %.1f%% of one; %s", cpu, runtime.NumCPU(), parseFloat(cpu)*float64(runtime.NumCPU()), said)
		return
	}
	n.Note("top: %s %%CPU; %s", cpu, said)
}

// topLine finds, in top's batch output, the last frame's column header
// and the line of process pid.
func topLine(out string, pid int) (header, line string) {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 2 && f[0] == "PID":
			header, line = strings.TrimRight(l, " "), ""
		case len(f) > 2 && f[0] == strconv.Itoa(pid) && header != "":
			line = strings.TrimRight(l, " ")
		}
	}
	return header, line
}

// topCPU reads the %CPU column of a process's line, and whether the
// header is busybox's (which has a %VSZ column and counts all CPUs as 100%).
func topCPU(header, line string) (string, bool) {
	h, f := strings.Fields(header), strings.Fields(line)
	for i, col := range h {
		if col == "%CPU" && i < len(f) {
			return strings.TrimSuffix(f[i], "%"), slices.Contains(h, "%VSZ")
		}
	}
	return "?", false
}

func parseFloat(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// Step 6: what the kernel counted while it held the loop back.
func (e *experiment) counters() {
	n, g := e.n, e.group
	n.Step("The throttling counters")
	dir := g.Path("cpu")
	n.Call("cat %s/cpu.stat", dir)
	// One read, shown and then summed: the loop still runs, and a second
	// read would already count another period or two.
	text := readFile(filepath.Join(dir, "cpu.stat"))
	since := time.Since(e.movedAt)
	n.Output(text)
	kv := statFields(text)
	periods, throttled := kv["nr_periods"], kv["nr_throttled"]
	stopped := time.Duration(kv["throttled_time"]) // v1, in ns
	if us, ok := kv["throttled_usec"]; ok {
		stopped = time.Duration(us) * time.Microsecond // v2
	}
	// The group was empty until the loop moved in, and an empty group
	// uses no periods: the file's counts are the loop's.
	n.Say("in the %.1f s since the loop moved in: %d periods, throttled in %d of them, stopped for %.2f s in all",
		since.Seconds(), periods, throttled, stopped.Seconds())
	if e.cpu.Version == cgroup.V1 {
		acct := g.Path("cpuacct")
		n.Call("cat %s/cpuacct.usage", acct)
		n.Output(readFile(filepath.Join(acct, "cpuacct.usage")))
		n.Note("nanoseconds of CPU the group's processes have used")
	}
	share := 100 * e.cgroupUsage.Seconds() / e.cappedWall.Seconds()
	if _, err := g.CPUStat(); err != nil {
		e.check(false, "read the group's counters: %v", err)
		return
	}
	n.Say("the group's own counter: %.3f s of CPU in %.3f s = %.1f%%", e.cgroupUsage.Seconds(), e.cappedWall.Seconds(), share)
	if e.quota < int64(e.period) {
		e.check(periods > 0 && float64(throttled) >= 0.8*float64(periods), "the loop used up its quota and was throttled in %d of %d periods", throttled, periods)
	} else {
		e.check(throttled == 0, "a quota of a whole CPU or more is never used up by one thread: throttled in %d of %d periods", throttled, periods)
	}
	e.check(abs(share-e.capped) <= 2, "the group's counter (%.1f%%) agrees with the loop's own (%.1f%%)", share, e.capped)
}

// Step 7: what /proc says inside the group.
func (e *experiment) procProblem() {
	n := e.n
	pct := 100 * float64(e.quota) / float64(e.period)
	n.Step("The /proc problem: ask inside the group how many CPUs there are")
	// The shell waits on its stdin until it is in the group, then asks.
	script := `read go; echo "nproc: $(nproc)"; echo "processors in /proc/cpuinfo: $(grep -c ^processor /proc/cpuinfo)"`
	n.Call("sh -c 'nproc; grep -c ^processor /proc/cpuinfo'   # a process inside the group")
	cmd := exec.Command("sh", "-c", script)
	in, err := cmd.StdinPipe()
	var out strings.Builder
	cmd.Stdout = &out
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		e.check(false, "start a process in the group: %v", err)
		return
	}
	if err := e.group.AddTask(cmd.Process.Pid); err != nil {
		e.check(false, "%v", err)
	}
	_, _ = in.Write([]byte("go\n"))
	_ = in.Close()
	_ = cmd.Wait()
	n.Output(out.String())
	host := strings.Count(readFile("/proc/cpuinfo"), "processor\t:")
	says := strings.Contains(out.String(), fmt.Sprintf("/proc/cpuinfo: %d", host))
	nproc := 0
	fmt.Sscanf(out.String(), "nproc: %d", &nproc)
	if nproc > 0 && nproc < host {
		n.Note("this nproc reads the group's cpu.max (GNU coreutils 9.8+, cgroup v2) and rounds the quota: %d; /proc/cpuinfo does not", nproc)
	}
	n.Note("/proc knows nothing of cgroups: a program that sizes its thread pool (or a JVM its heap) from it plans for %d CPUs and gets %.2f CPU; lxcfs, or reading the cgroup files, fixes that", host, pct/100)
	e.check(says && runtime.NumCPU() == host, "inside the group, /proc still shows all %d CPUs while the quota allows %.2f of one", host, pct/100)
}

// Step 8: clean up, then the verdict on the shares.
func (e *experiment) finish() {
	n := e.n
	n.Step("Clean up: stop the loop, remove the group")
	n.Call("kill -KILL %d", e.loop.Process.Pid)
	e.mu.Lock()
	_ = e.loop.Process.Kill()
	_ = e.loop.Wait()
	dirs := e.group.Dirs()
	if e.keep {
		e.undo = nil
		n.Say("kept for you to look at (--keep), now empty: ls %s", dirs[0])
		n.Say("remove it with: sudo rmdir %s", strings.Join(dirs, " "))
	}
	e.mu.Unlock()
	e.cleanup()
	if !e.keep {
		gone := true
		for _, d := range dirs {
			gone = gone && !exists(d)
		}
		e.check(gone, "the group's directories are gone: %s", strings.Join(dirs, ", "))
	}

	pct := 100 * float64(e.quota) / float64(e.period)
	// The quota is a ceiling: above it by more than measuring noise is a
	// failure. A window that starts mid-period also catches that period's
	// quota: one quota's worth over the window is allowed on top. Below the
	// target means the machine was busy, tolerated down to a quarter off.
	target := min(pct, 100) // one thread uses one CPU at most
	low := target - max(2, target/4)
	high := target + 2 + 100*float64(e.quota)/float64(e.cappedWall.Microseconds())
	if e.capped < target-2 {
		n.Note("the loop got less than its quota: the machine was busy, and a quota is a ceiling, not a guarantee")
	}
	if pct < 90 {
		e.check(e.uncapped >= pct+10, "uncapped, the loop used %.1f%% of a CPU: well above the %.0f%% cap", e.uncapped, pct)
	} else {
		n.Note("a one-thread loop cannot use more than one CPU: a %.0f%% cap does not hold it back", pct)
	}
	e.check(e.capped <= high && e.capped >= low, "capped, the loop used %.1f%% of a CPU: the %.0f%% cap held (accepted %.0f%%..%.0f%%)", e.capped, pct, max(low, 0), min(high, 100+2))
}

// watch prints the loop's share of one CPU once a second for one phase and
// returns the average share over the phase and how long it lasted.
func (e *experiment) watch() (float64, time.Duration) {
	pid := e.loop.Process.Pid
	start, t0 := cpuTime(pid), time.Now()
	prev, tprev := start, t0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 1; time.Since(t0) < e.phase-50*time.Millisecond; i++ {
		<-tick.C
		now, tnow := cpuTime(pid), time.Now()
		share := 100 * (now - prev).Seconds() / tnow.Sub(tprev).Seconds()
		e.n.Output(fmt.Sprintf("%3ds %6.1f%% |%s", i, share, bar(share)))
		prev, tprev = now, tnow
	}
	return 100 * (prev - start).Seconds() / tprev.Sub(t0).Seconds(), tprev.Sub(t0)
}

// cpuTime is how much CPU a process has used: the first field of
// /proc/PID/schedstat, in nanoseconds, kept by the scheduler itself.
func cpuTime(pid int) time.Duration {
	f := strings.Fields(readFile(fmt.Sprintf("/proc/%d/schedstat", pid)))
	if len(f) == 0 {
		return 0
	}
	ns, _ := strconv.ParseInt(f[0], 10, 64)
	return time.Duration(ns)
}

// bar draws a share of one CPU, 2% a character.
func bar(share float64) string {
	w := int(share/2 + 0.5)
	w = max(0, min(w, 50))
	return strings.Repeat("#", w) + strings.Repeat(" ", 50-w) + "|"
}

// catchSignals makes Ctrl-C (or kill) at any moment stop the loop and
// remove the group before the program exits with 128+signal, as a shell
// reports it.
func (e *experiment) catchSignals() {
	// A reader that goes away (`| head`) must not kill the stage before it
	// cleans up: with SIGPIPE ignored, narration writes just fail.
	signal.Ignore(syscall.SIGPIPE)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		e.interrupted.Store(true)
		// The lock stays held until the exit: the main goroutine must not
		// start anything new once cleanup has begun.
		e.mu.Lock()
		e.undoAll()
		fmt.Fprintf(os.Stderr, "%s: interrupted (%v): stopped the busy loop and removed the control group %q\n", name, s, e.name)
		os.Exit(128 + int(s.(syscall.Signal)))
	}()
}

// cleanup undoes what was made, newest first, once.
func (e *experiment) cleanup() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.undoAll()
}

func (e *experiment) undoAll() {
	for i := len(e.undo) - 1; i >= 0; i-- {
		e.undo[i]()
	}
	e.undo = nil
}

func (e *experiment) check(ok bool, format string, args ...any) {
	e.n.Check(ok, format, args...)
	if !ok {
		e.failed++
	}
}

// isOurLoop tells this stage's busy loop from any other process.
func isOurLoop(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && string(b) == strings.Join(loopCommand, "\x00")+"\x00"
}

// runningStage returns the PID of the live run of this stage that owns
// process pid (its parent), or 0. A crashed run's loop has lost its parent.
func runningStage(pid int) int {
	stat := readFile(fmt.Sprintf("/proc/%d/stat", pid))
	// pid (comm) state ppid ...: comm may hold spaces, so cut after ')'.
	f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	if ppid > 1 && ppid != os.Getpid() && readFile(fmt.Sprintf("/proc/%d/comm", ppid)) == name {
		return ppid
	}
	return 0
}

// columns lays names out the way ls does on a terminal, in columns read
// top to bottom, within 76 characters.
func columns(names []string) string {
	width := 0
	for _, s := range names {
		width = max(width, len(s)+2)
	}
	if len(names) == 0 || width == 0 {
		return ""
	}
	cols := max(1, 76/width)
	rows := (len(names) + cols - 1) / cols
	var b strings.Builder
	for r := 0; r < rows; r++ {
		var line strings.Builder
		for c := 0; c < cols; c++ {
			if i := c*rows + r; i < len(names) {
				fmt.Fprintf(&line, "%-*s", width, names[i])
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	return b.String()
}

// statFields reads "name value" lines, as in cpu.stat.
func statFields(text string) map[string]uint64 {
	kv := map[string]uint64{}
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				kv[f[0]] = v
			}
		}
	}
	return kv
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimRight(string(b), "\n")
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "(none)"
	}
	return strings.Join(list, " ")
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
