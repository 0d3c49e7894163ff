package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-internals/workshop/internal/testkit"
)

// These tests use the real kernel's cgroups: on this machine the cpu,
// cpuacct, memory and pids controllers are v1 and the unified hierarchy is
// v2; on the learners' VM everything is v2.

func realHierarchy(t *testing.T) *Hierarchy {
	t.Helper()
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	h, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func testName(t *testing.T) string {
	return fmt.Sprintf("workshop-test-%d/%s", os.Getpid(), strings.ToLower(t.Name()))
}

// startLoop starts the article's busy loop outside any group of ours.
func startLoop(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", "while : ; do : ; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func inCgroupFile(t *testing.T, pid int, name string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), ":/"+name+"\n")
}

func TestGroupLimitsCountsAndRemovesOnThisKernel(t *testing.T) {
	h := realHierarchy(t)
	name := testName(t)
	g, err := h.Create(name, "cpu", "memory", "pids")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Kill(); _ = g.Remove() })
	t.Logf("%s host; group dirs %v", h.Mode(), g.Dirs())

	if q, p, err := g.CPU(); err != nil || q != -1 || p != 100000 {
		t.Errorf("a new group's CPU() = %d, %d, %v; want the kernel's defaults -1 (no limit), 100000", q, p, err)
	}
	if err := g.SetCPU(20000, 100000); err != nil {
		t.Fatal(err)
	}
	if q, p, err := g.CPU(); err != nil || q != 20000 || p != 100000 {
		t.Errorf("CPU() = %d, %d, %v; want 20000, 100000", q, p, err)
	}
	if err := g.SetMemory(64 << 20); err != nil {
		t.Fatal(err)
	}
	if ms, err := g.Memory(); err != nil || ms.Limit != 64<<20 {
		t.Errorf("Memory() = %+v, %v; want limit 64 MiB", ms, err)
	}
	if err := g.SetPids(32); err != nil {
		t.Fatal(err)
	}

	loop := startLoop(t)
	if err := g.Add(loop.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if procs, err := g.Procs(); err != nil || len(procs) != 1 || procs[0] != loop.Process.Pid {
		t.Errorf("Procs() = %v, %v; want [%d]", procs, err, loop.Process.Pid)
	}
	if !inCgroupFile(t, loop.Process.Pid, name) {
		t.Errorf("/proc/%d/cgroup does not name %s", loop.Process.Pid, name)
	}
	if ps, err := g.Pids(); err != nil || ps.Max != 32 || ps.Current != 1 {
		t.Errorf("Pids() = %+v, %v; want max 32, current 1", ps, err)
	}

	before, err := g.CPUStat()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	after, err := g.CPUStat()
	if err != nil {
		t.Fatal(err)
	}
	used := after.Usage - before.Usage
	// 20 ms per 100 ms period: about 200 ms in a second, never much more.
	if used < 100*time.Millisecond || used > 260*time.Millisecond {
		t.Errorf("the capped loop used %v of CPU in 1 s; want about 200ms", used)
	}
	if after.Throttled <= before.Throttled || after.ThrottledTime <= before.ThrottledTime {
		t.Errorf("throttling counters did not grow: %+v -> %+v", before, after)
	}

	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	werr := loop.Wait()
	if ws, ok := loop.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("the loop ended with %v, want killed by SIGKILL", werr)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, d := range append(g.Dirs(), g.ancestor...) {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still exists after Remove", d)
		}
	}
}

// TestUnifiedHierarchyForReal creates a group in the cgroup v2 hierarchy
// (on this hybrid machine the almost empty /sys/fs/cgroup/unified), moves a
// process in through cgroup.procs, reads it back and removes it.
func TestUnifiedHierarchyForReal(t *testing.T) {
	h := realHierarchy(t)
	u, ok := h.Unified()
	if !ok {
		testkit.Unavailable(t, "no cgroup2 hierarchy is mounted")
	}
	name := testName(t)
	g, err := h.Create(name) // no controllers: the unified hierarchy alone
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Kill(); _ = g.Remove() })
	if d := g.Dirs(); len(d) != 1 || d[0] != u.Dir+"/"+name {
		t.Fatalf("dirs = %v, want %s/%s", d, u.Dir, name)
	}
	loop := startLoop(t)
	if err := g.Add(loop.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if procs, err := g.Procs(); err != nil || len(procs) != 1 || procs[0] != loop.Process.Pid {
		t.Errorf("Procs() = %v, %v; want [%d]", procs, err, loop.Process.Pid)
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", loop.Process.Pid))
	if !strings.Contains(string(b), "0::/"+name+"\n") {
		t.Errorf("/proc/%d/cgroup lacks the v2 line 0::/%s:\n%s", loop.Process.Pid, name, b)
	}
	// cpu.stat's usage is part of every v2 group, controller or not.
	time.Sleep(300 * time.Millisecond)
	if st, err := g.CPUStat(); err != nil || st.Usage < 50*time.Millisecond {
		t.Errorf("CPUStat() = %+v, %v; want the loop's usage (> 50ms)", st, err)
	}
	var log []string
	h.Trace = func(cmd, _ string) { log = append(log, cmd) }
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = loop.Wait()
	if _, err := os.Stat(u.Dir + "/" + name + "/cgroup.kill"); err == nil && (len(log) == 0 || log[0] != "echo 1 > "+u.Dir+"/"+name+"/cgroup.kill") {
		t.Errorf("Kill did not use cgroup.kill: %v", log)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(u.Dir + "/" + name); !os.IsNotExist(err) {
		t.Errorf("the v2 group is still there: %v", err)
	}
}

func TestRemoveReportsAGroupThatStillHoldsAProcess(t *testing.T) {
	h := realHierarchy(t)
	defer func(d time.Duration) { RemoveTimeout = d }(RemoveTimeout)
	RemoveTimeout = 300 * time.Millisecond
	g, err := h.Create(testName(t), "pids")
	if err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait(); _ = g.Remove() }()
	if err := g.Add(sleeper.Process.Pid); err != nil {
		t.Fatal(err)
	}
	err = g.Remove()
	want := fmt.Sprintf("still holds processes %d", sleeper.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "sudo rmdir "+g.Path("pids")) {
		t.Fatalf("Remove() of a busy group = %v; want it to say %q and give the rmdir command", err, want)
	}
	if _, err := os.Stat(g.Path("pids")); err != nil {
		t.Errorf("the busy group vanished anyway: %v", err)
	}
}

func TestOpenFindsAGroupLeftByAnEarlierRun(t *testing.T) {
	h := realHierarchy(t)
	name := testName(t)
	g, err := h.Create(name, "cpu")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Remove() }()
	if _, err := h.Create(name, "cpu"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second Create = %v, want 'already exists'", err)
	}
	again, err := h.Open(name, "cpu")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(again.Dirs(), " ") != strings.Join(g.Dirs(), " ") {
		t.Errorf("Open dirs %v, Create dirs %v", again.Dirs(), g.Dirs())
	}
	if err := again.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, d := range g.Dirs() {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s is still there", d)
		}
	}
}

// JoinThread is how stage 06's init enters its cgroups: on v1 the calling
// thread alone moves (echo 0 > tasks), the process's other threads stay;
// on v2 the whole process moves. Either way the thread ends up inside, and
// moving back leaves the group empty and removable.
func TestJoinThreadMovesTheCallingThread(t *testing.T) {
	h := realHierarchy(t)
	name := testName(t)
	g, err := h.Create(name, "pids")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Remove() })
	dir := g.Path("pids")
	v1 := g.Version("pids") == V1

	type result struct {
		inside, othersInside bool
		err                  error
	}
	done := make(chan result)
	go func() {
		// Never unlocked: the thread's cgroup changed, so it ends with the goroutine.
		runtime.LockOSThread()
		var r result
		tid := syscall.Gettid()
		self := fmt.Sprintf("/proc/self/task/%d/cgroup", tid)
		back, err := threadGroupDir(self, h, v1)
		if err != nil {
			r.err = err
			done <- r
			return
		}
		if r.err = JoinThread(dir, nil); r.err != nil {
			done <- r
			return
		}
		b, _ := os.ReadFile(self)
		r.inside = strings.Contains(string(b), "/"+name+"\n")
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, e := range tasks {
			if e.Name() == fmt.Sprint(tid) {
				continue
			}
			b, _ := os.ReadFile("/proc/self/task/" + e.Name() + "/cgroup")
			if strings.Contains(string(b), "/"+name+"\n") {
				r.othersInside = true
			}
		}
		if err := JoinThread(back, nil); err != nil {
			r.err = fmt.Errorf("moving back to %s: %w", back, err)
		}
		done <- r
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !r.inside {
		t.Errorf("after JoinThread(%s) the thread's /proc/.../cgroup does not name %s", dir, name)
	}
	if v1 && r.othersInside {
		t.Errorf("v1: JoinThread moved other threads of the process too; want the calling thread alone")
	}
	if !v1 && !r.othersInside {
		t.Errorf("v2: JoinThread left the process's other threads behind; v2 moves whole processes")
	}
	if err := g.Remove(); err != nil {
		t.Errorf("the group should be empty again after moving back: %v", err)
	}
}

// threadGroupDir is the directory of the pids hierarchy's group a thread
// is in, read from its /proc/.../cgroup file.
func threadGroupDir(cgroupFile string, h *Hierarchy, v1 bool) (string, error) {
	b, err := os.ReadFile(cgroupFile)
	if err != nil {
		return "", err
	}
	c, err := h.Controller("pids")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if (v1 && strings.Contains(","+parts[1]+",", ",pids,")) || (!v1 && parts[0] == "0") {
			return c.Mount + parts[2], nil
		}
	}
	return "", fmt.Errorf("no pids line in %s", cgroupFile)
}
