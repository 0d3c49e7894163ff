package main

// Issue 15, "hostile containers stay contained": bad input is refused in
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
