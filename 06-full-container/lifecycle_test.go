package main

// Hostile input and careless operators: bad input is refused in
// one line before anything is made, a cleanup only ever removes what its
// own command made, and what a killed runtime left is collected by the
// next command.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/03-cgroups-cpu/cgroup"
	"github.com/container-internals/workshop/internal/testkit"
)

// Each bad option gets one line that says what is wrong and what is
// allowed, a non-zero exit, and leaves no container behind; none of them
// gets as far as the kernel refusing it half way through a setup.
func TestBadOptionsAreRefusedInOneLine(t *testing.T) {
	setup(t)
	n := runtime.NumCPU()
	for _, tc := range []struct {
		args []string
		want string
	}{
		// 99999999999 << 30 wraps around: it was "too small".
		{[]string{"run", "--memory", "99999999999g", "--", "true"}, "--memory 99999999999g is too large: give 6m to 8589934591g"},
		{[]string{"run", "--memory", "99999999999999999999", "--", "true"}, "is too large: give 6m to"},
		// It started, and died 137 when pids.max refused the number.
		{[]string{"run", "--pids-limit", "99999999999999", "--", "true"}, "--pids-limit 99999999999999: give 1 to 4194304 (the kernel's PID_MAX_LIMIT)"},
		// It failed late, with "sethostname: invalid argument".
		{[]string{"run", "--hostname", strings.Repeat("h", 300), "--", "true"}, "--hostname is 300 bytes long: give at most 64"},
		{[]string{"run", "--hostname", "a\n10.0.0.1 evil", "--", "true"}, "invalid --hostname"},
		// Accepted, as a quota that can never bind.
		{[]string{"run", "--cpus", "1000", "--", "true"}, fmt.Sprintf("the range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", n, n)},
		{[]string{"run", "--cpus", "0.001", "--", "true"}, "the range of CPUs is from 0.01"},
		// Silently became 100000.
		{[]string{"run", "--cpu-period", "0", "--cpus", "0.5", "--", "true"}, "--cpu-period 0: give 1000 to 1000000 µs"},
		{[]string{"run", "--cpu-period", "2000000", "--", "true"}, "--cpu-period 2000000: give 1000 to 1000000 µs"},
		// `run sh` is the image sh, as Docker reads it: say what was meant.
		{[]string{"run", "sh"}, `unknown image "sh"`},
		{[]string{"run", "sh"}, "to run a command in the default image, put it after --: run -- sh"},
		{[]string{"run", "sh", "-c", "exit 0"}, "put it after --: run -- sh -c exit 0"},
		// OCI verbs: an ID is a directory name, never a path.
		{[]string{"state", "../containers"}, `invalid container ID "../containers"`},
		{[]string{"kill", "../x", "KILL"}, `invalid container ID "../x"`},
		{[]string{"delete", "-f", "../../etc"}, `invalid container ID "../../etc"`},
		{[]string{"start", "a/b"}, `invalid container ID "a/b"`},
	} {
		t.Run(tc.args[0]+" "+tc.args[1], func(t *testing.T) { oneLine(t, ctr(t, opts{}, tc.args...), tc.want) })
	}
	// --root '' used the defaults: /var/lib/workshop and /run/workshop.
	r := testkit.Run(t, opts{}, testkit.Stage(t, "06-full-container"), "--root", "", "run", "--", "true")
	oneLine(t, r, "--root is empty: give a directory")
	noContainersLeft(t)
}

// `ps -a | head`: the reader is gone before ps writes. It printed
// "write /dev/stdout: broken pipe"; now it ends quietly, as a program that
// SIGPIPE ends does.
func TestPsIntoAClosedPipeEndsQuietly(t *testing.T) {
	setup(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	cmd := exec.Command(testkit.Stage(t, "06-full-container"), "--root", sharedRoot(t), "ps", "-a")
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = w, &stderr
	err = cmd.Run()
	w.Close()
	if err == nil || cmd.ProcessState.ExitCode() != 141 || stderr.String() != "" {
		t.Fatalf("want exit 141 and nothing on stderr: %v, stderr %q", err, stderr.String())
	}
}

// exec racing the container's end: the monitor removes the cgroup once the
// container exits, and exec, which found it running a moment before, then
// cannot join it. It printed the raw "joining the cgroup ...: no such file".
// Here the state names a cgroup that is gone, as it is in that race.
func TestExecIntoAnEndedContainerSaysItExited(t *testing.T) {
	setup(t)
	st := detached(t, "racer", "--", "sleep", "100")
	path := filepath.Join(sharedRoot(t), "containers", st.ID, "state.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	gone := map[string]string{}
	for k, d := range st.CgroupPaths {
		gone[k] = d + "-gone"
	}
	raw["cgroupPaths"] = gone
	b, _ = json.Marshal(raw)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	oneLine(t, ctr(t, opts{}, "exec", "racer", "--", "true"), fmt.Sprintf("exec: container %s exited", st.ID[:12]))
}

// A create killed before it saved its process's PID leaves a record in
// `creating` with pid 0. `delete -f` sent SIGKILL to that PID: kill(0)
// is every process of the caller's process group. Here the group is a
// shell, a sleeping sibling and the runtime: all of them must survive,
// and the record go.
func TestForcedDeleteOfAPidlessContainerKillsNoOne(t *testing.T) {
	setup(t)
	id := "pidless"
	dir := filepath.Join(sharedRoot(t), "containers", id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, _ := json.Marshal(State{ID: id, Name: id, Status: Creating, Bundle: t.TempDir(), Created: time.Now().UTC()})
	if err := os.WriteFile(filepath.Join(dir, "state.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	sh := exec.Command("sh", "-c", `sleep 30 >/dev/null 2>&1 & echo $!; "$0" --root "$1" delete -f "$2"; echo "delete: $?"`,
		testkit.Stage(t, "06-full-container"), sharedRoot(t), id)
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a group of its own, not the test's
	out, err := sh.CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	sibling, _ := strconv.Atoi(lines[0])
	if sibling > 0 {
		defer syscall.Kill(sibling, syscall.SIGKILL)
	}
	if err != nil || len(lines) != 2 || lines[1] != "delete: 0" {
		t.Fatalf("delete -f should succeed, and the shell that ran it live on: %v\n%s", err, out)
	}
	if !alive(sibling, startTime(sibling)) {
		t.Fatalf("the sleeping process beside delete -f (PID %d) was killed", sibling)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the record is still there: %v", err)
	}
}

// linux.cgroupsPath naming a cgroup that exists already: create refused it
// ("exists already"), then its cleanup killed every process in that cgroup
// and removed it. The cleanup removes only what this create made.
func TestFailedCreateLeavesAnExistingCgroupAlone(t *testing.T) {
	setup(t)
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	// A cgroup of the test's own, under the runtime's "workshop" parent,
	// with a sleeping process in it.
	name := fmt.Sprintf("workshop/not-yours-%d", os.Getpid())
	g, err := h.Create(name, "pids")
	if err != nil {
		testkit.Unavailable(t, "cannot make a pids cgroup: %v", err)
	}
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sleeper.Process.Kill()
		sleeper.Wait()
		if err := g.Remove(); err != nil {
			t.Errorf("removing the test's cgroup: %v", err)
		}
	})
	if err := g.Add(sleeper.Process.Pid); err != nil {
		t.Fatal(err)
	}
	dir := bundle(t, func(c *specs.Spec) { c.Linux.CgroupsPath = "/" + name })
	_, r := create(t, dir, "trespasser")
	if r.Code == 0 || !strings.Contains(r.Stdout, "exists already") {
		ctr(t, opts{}, "delete", "-f", "trespasser")
		t.Fatalf("create into an existing cgroup should be refused:\n%s", r)
	}
	if !alive(sleeper.Process.Pid, startTime(sleeper.Process.Pid)) {
		t.Fatal("the failed create killed the process of a cgroup it did not make")
	}
	if procs, err := g.Procs(); err != nil || len(procs) != 1 {
		t.Fatalf("the cgroup %s should still hold its process: %v %v", name, procs, err)
	}
	noContainersLeft(t)
}

// An ID, or a name, that another container answers to is refused, before
// anything is made. An OCI container whose ID was another's short ID was
// given that container's cgroup name; its create failed ("exists already")
// and the cleanup killed the other container.
func TestAnotherContainersIDOrNameIsRefused(t *testing.T) {
	setup(t)
	st := detached(t, "bystander", "--", "sleep", "100")
	shortID := st.ID[:12]
	_, r := create(t, bundle(t, nil), shortID)
	if !alive(st.Pid, st.PidStart) {
		t.Fatalf("create %s killed the container whose short ID that is:\n%s", shortID, r)
	}
	if r.Code == 0 || !strings.Contains(r.Stdout, "is in use by container bystander") {
		ctr(t, opts{}, "delete", "-f", shortID)
		t.Fatalf("an OCI ID equal to another container's short ID should be refused:\n%s", r)
	}
	oneLine(t, ctr(t, opts{}, "run", "--name", shortID, "--", "true"), "is in use by container")
	if r := ctr(t, opts{}, "run", "--name", st.ID[:20], "--", "true"); r.Code != 0 {
		t.Fatalf("a longer prefix of its ID is no name of the bystander's, and should run:\n%s", r)
	}
	if !alive(st.Pid, st.PidStart) {
		t.Fatal("the bystander was killed")
	}
	if insp := ctr(t, opts{}, "inspect", "bystander"); !strings.Contains(insp.Stdout, `"running": true`) {
		t.Fatalf("the bystander should still run:\n%s", insp)
	}
}

// `yes` in a detached container filled the state root (/run, a tmpfs) in
// seconds, and then no container could start. Its log is now on disk with
// its layers, and capped: container.log and one older file, each at most
// --log-max-size; `logs` prints both, in order.
func TestLogOfAnEndlessPrinterStaysCapped(t *testing.T) {
	setup(t)
	const max = 64 << 10
	st := detached(t, "chatter", "--log-max-size", "64k", "--", "yes")
	time.Sleep(1500 * time.Millisecond)
	if !alive(st.Pid, st.PidStart) {
		t.Fatal("yes stopped: its output is not being drained")
	}
	data := filepath.Join(sharedRoot(t), "images", "containers", st.ID)
	for _, f := range []string{"container.log", "container.log.1"} {
		fi, err := os.Stat(filepath.Join(data, f))
		if err != nil || fi.Size() > max {
			t.Fatalf("%s should exist and hold at most %d bytes: %v", f, max, err)
		}
	}
	if _, err := os.Stat(filepath.Join(sharedRoot(t), "containers", st.ID, "container.log")); err == nil {
		t.Fatal("the log is in the state root")
	}
	l := ctr(t, opts{}, "logs", "chatter")
	out := strings.TrimPrefix(l.Stdout, "\n") // the older file may start between "y" and its newline
	if l.Code != 0 || len(out) < max || len(l.Stdout) > 2*max || strings.Trim(out, "y\n") != "" || strings.Contains(out, "yy") || strings.Contains(out, "\n\n") {
		t.Fatalf("logs should print both files, whole lines of y, at most %d bytes: %d bytes, exit %d, stderr %s", 2*max, len(l.Stdout), l.Code, l.Stderr)
	}
	if r := ctr(t, opts{}, "rm", "-f", "chatter"); r.Code != 0 {
		t.Fatalf("rm -f:\n%s", r)
	}
	if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("rm left the log's directory: %v", err)
	}
	noContainersLeft(t)
}

// With the disk full, the final state of a container could not be saved,
// and `ps -a` printed "Exited (0) 2562047 hours ago" for one killed with
// 137. A save that fails leaves the previous state whole and no temporary
// file, and ps says the end is unknown. The disk here is a small tmpfs.
func TestFailedStateSaveKeepsThePreviousState(t *testing.T) {
	setup(t)
	root := t.TempDir()
	if err := unix.Mount("workshop-test", root, "tmpfs", 0, "size=48m"); err != nil {
		testkit.Unavailable(t, "cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(root, 0); err != nil {
			t.Errorf("unmount %s: %v", root, err)
			unix.Unmount(root, unix.MNT_DETACH)
		}
	})
	bin := testkit.Stage(t, "06-full-container")
	run := func(args ...string) testkit.Result {
		return testkit.Run(t, opts{}, bin, append([]string{"--root", root}, args...)...)
	}
	// --net none: the bridge network's address file would be freed at the
	// end, and the final save would find room again.
	if r := run("run", "-d", "--net", "none", "--name", "full", "--", "sleep", "100"); r.Code != 0 {
		t.Fatalf("run -d:\n%s", r)
	}
	t.Cleanup(func() { run("rm", "-f", "full") })
	var st State
	if r := run("inspect", "full"); json.Unmarshal([]byte(r.Stdout), &st) != nil || st.Pid <= 0 {
		t.Fatalf("inspect:\n%s", r)
	}
	statePath := filepath.Join(root, "containers", st.ID, "state.json")
	before, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	// Fill the disk, then end the container: its monitor's save fails.
	filler, err := os.Create(filepath.Join(root, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := filler.Write(chunk); err != nil {
			break
		}
	}
	for i := 0; i < 64; i++ { // what a page of a file's tail still holds
		if _, err := filler.Write(chunk[:512]); err != nil {
			break
		}
	}
	filler.Close()
	syscall.Kill(st.Pid, syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); alive(st.Monitor, st.MonitorStart) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	ps := run("ps", "-a")
	after, err := os.ReadFile(statePath)
	if err != nil || string(after) != string(before) {
		t.Fatalf("the previous state should be there, whole: %v\n%s", err, after)
	}
	ents, _ := os.ReadDir(filepath.Dir(statePath))
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("a failed save left %s", e.Name())
		}
	}
	if !strings.Contains(ps.Stdout, "Exited (unknown)") || strings.Contains(ps.Stdout, "hours ago") {
		t.Fatalf("ps -a should say the end is unknown:\n%s", ps)
	}
	os.Remove(filepath.Join(root, "filler"))
	if r := run("rm", "full"); r.Code != 0 {
		t.Fatalf("rm once the disk has room again:\n%s", r)
	}
}

// What a runtime killed with SIGKILL left was collected only in part: its
// cgroups, mounts and processes went with the next command, but its layers
// (up to 22 MB a container), an empty state directory or a record half
// written stayed for good. The runtime is killed here at several points;
// each time the next command must leave, under the root, only the image
// and what a living container still uses.
func TestWhatAKilledRuntimeLeftIsCollected(t *testing.T) {
	setup(t)
	root := t.TempDir()
	bin := testkit.Stage(t, "06-full-container")
	run := func(args ...string) testkit.Result {
		return testkit.Run(t, opts{}, bin, append([]string{"--root", root}, args...)...)
	}
	keeper := func() State {
		var st State
		r := run("inspect", "keeper")
		if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil || !alive(st.Pid, st.PidStart) {
			t.Fatalf("the living container is gone: %v\n%s", err, r)
		}
		return st
	}
	if r := run("run", "-d", "--name", "keeper", "--", "sleep", "100"); r.Code != 0 {
		t.Fatalf("run -d:\n%s", r)
	}
	t.Cleanup(func() { run("rm", "-f", "keeper") })
	live := keeper()
	overlay := filepath.Join(root, "images", "overlay2")
	before := names(t, overlay)
	// killAt starts the runtime and kills it once ready says so.
	killAt := func(what string, ready func(pid int, out string) bool, args ...string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--root", root}, args...)...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); !ready(cmd.Process.Pid, out.String()) && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		cmd.Process.Kill()
		cmd.Wait()
		var killed []string // the containers it left, by the cgroup each has
		for _, id := range names(t, filepath.Join(root, "containers")) {
			if id != ".lock" && id != live.ID {
				killed = append(killed, "/workshop/"+id[:12])
			}
		}
		left := fmt.Sprint(names(t, filepath.Join(root, "containers")), names(t, filepath.Join(root, "images", "containers")),
			names(t, filepath.Join(root, "images", "image", "overlay2", "layerdb", "mounts")), len(names(t, overlay))-len(before))
		t.Logf("%s: killed, leaving states, data, layer records, layer directories: %s", what, left)
		run("ps", "-a") // the next command
		if got := names(t, filepath.Join(root, "containers")); strings.Join(got, " ") != ".lock "+live.ID {
			t.Errorf("%s: the state root holds %v, want only the living container's", what, got)
		}
		if got := names(t, filepath.Join(root, "images", "containers")); strings.Join(got, " ") != live.ID {
			t.Errorf("%s: the data directory holds %v, want only the living container's", what, got)
		}
		if got := names(t, filepath.Join(root, "images", "image", "overlay2", "layerdb", "mounts")); strings.Join(got, " ") != live.ID {
			t.Errorf("%s: the layer records of containers are %v, want only the living one's", what, got)
		}
		if got := names(t, overlay); strings.Join(got, " ") != strings.Join(before, " ") {
			t.Errorf("%s: the layer directories are %v, want %v", what, got, before)
		}
		for _, cg := range killed {
			if pids := inCgroup(cg); len(pids) > 0 {
				t.Errorf("%s: processes left in %s: %v", what, cg, pids)
			}
			if dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + cg); len(dirs) > 0 {
				t.Errorf("%s: cgroups left: %v", what, dirs)
			}
		}
		keeper()
	}
	says := func(s string) func(int, string) bool {
		return func(_ int, out string) bool { return strings.Contains(out, s) }
	}
	killAt("run, once its container's process runs", func(pid int, _ string) bool { return hasChild(pid) },
		"run", "--", "sleep", "100")
	killAt("run, making the layers", says("Prepare the container's own layers"),
		"run", "--explain", "--", "true")
	killAt("run -d, layers made and its monitor not started", says("read-write layer:"),
		"run", "-d", "--explain", "--", "sleep", "100")
	// rm, half way through removing a stopped container with many files.
	if r := run("run", "--name", "big", "-d", "--", "sh", "-c", "mkdir /many && cd /many && seq 1 4000 | xargs touch"); r.Code != 0 {
		t.Fatalf("run -d big:\n%s", r)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(run("ps", "-a").Stdout, "Exited (0)") && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	var big State
	json.Unmarshal([]byte(run("inspect", "big").Stdout), &big)
	bigState := filepath.Join(root, "containers", big.ID, "state.json")
	killAt("rm, removing", func(int, string) bool {
		b, err := os.ReadFile(bigState)
		return err != nil || strings.Contains(string(b), `"removing": true`)
	}, "rm", "big")
}

// names lists a directory's entries, sorted.
func names(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// inCgroup lists the processes in a cgroup named cg (in any hierarchy).
func inCgroup(cg string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cgroup"); err == nil && strings.Contains(string(b), cg+"\n") {
			out = append(out, pid)
		}
	}
	return out
}

// hasChild reports whether some process has pid as its parent.
func hasChild(pid int) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == strconv.Itoa(pid) {
				return true
			}
		}
	}
	return false
}
