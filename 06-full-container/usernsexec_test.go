package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/container-internals/workshop/internal/testkit"
)

// execDetached runs `exec --detach --pid-file` (not through ctr: the
// detached process keeps its stdio, and a pipe would make the caller wait
// for it) and returns the process's host PID; the process is killed when
// the test ends.
func execDetached(t *testing.T, args ...string) int {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	cmd := exec.Command(testkit.Stage(t, "06-full-container"), append([]string{"--root", sharedRoot(t), "exec", "--detach", "--pid-file", pidFile}, args...)...)
	if err := cmd.Run(); err != nil {
		t.Fatalf("exec --detach %v: %v", args, err)
	}
	b, _ := os.ReadFile(pidFile)
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatalf("exec --pid-file wrote %q", b)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	return pid
}

// `exec` into a container with a user namespace lands where its first
// process is: root inside, uid 100000 on the host, with the container's
// capabilities (none over the host), its seccomp filter and no_new_privs;
// an OCI process's user is mapped the same way, and an unmapped one is
// refused in one line.
func TestExecIntoAUserNamespace(t *testing.T) {
	usernsSetup(t)
	st := detached(t, "usexec", "--userns", "--net", "none", "--", "sleep", "1000")
	r := ctr(t, opts{}, "exec", "usexec", "--", "sh", "-c", "id; cat /proc/self/uid_map | tr -s ' '")
	if r.Code != 0 || r.Stdout != "uid=0(root) gid=0(root)\n 0 100000 65536\n" {
		t.Fatalf("exec into the user namespace, inside:\n%s", r)
	}
	pid := execDetached(t, "usexec", "--", "sleep", "1000")
	if uid := statusField(t, pid, "Uid"); uid != "100000" {
		t.Errorf("from the host, the exec'd process runs as uid %s, want 100000", uid)
	}
	for _, f := range []string{"CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb", "Seccomp", "NoNewPrivs"} {
		if got, want := statusField(t, pid, f), statusField(t, st.Pid, f); got != want {
			t.Errorf("the exec'd process's %s is %s, the container's first process's %s", f, got, want)
		}
	}
	if s := statusField(t, pid, "Seccomp"); s != "2" {
		t.Errorf("the exec'd process's Seccomp is %s, want 2 (a filter)", s)
	}
	var theirs, ours syscall.Stat_t
	syscall.Stat("/proc/"+strconv.Itoa(pid)+"/ns/user", &theirs)
	syscall.Stat("/proc/"+strconv.Itoa(st.Pid)+"/ns/user", &ours)
	if theirs.Ino != ours.Ino {
		t.Errorf("the exec'd process is not in the container's user namespace")
	}

	proc := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(proc, []byte(`{"user":{"uid":1000,"gid":1000,"additionalGids":[20]},"args":["sleep","1000"],"env":["PATH=/bin"],"cwd":"/"}`), 0o644)
	pid = execDetached(t, "--process", proc, "usexec")
	if uid, gid := statusField(t, pid, "Uid"), statusField(t, pid, "Gid"); uid != "101000" || gid != "101000" {
		t.Errorf("process.user 1000:1000 runs as %s:%s on the host, want 101000:101000", uid, gid)
	}
	if g := statusField(t, pid, "Groups"); g != "100020" {
		t.Errorf("its additional group 20 is %s on the host, want 100020", g)
	}
	if eff, bnd := statusField(t, pid, "CapEff"), statusField(t, pid, "CapBnd"); eff != "0000000000000000" || bnd != statusField(t, st.Pid, "CapBnd") {
		t.Errorf("a non-root user in the container holds CapEff %s (want none), CapBnd %s (want the container's)", eff, bnd)
	}
	// Without noNewPrivileges the filter goes on right after the setns,
	// while the child holds CAP_SYS_ADMIN in the namespace (usernsexec.go).
	if s, nnp := statusField(t, pid, "Seccomp"), statusField(t, pid, "NoNewPrivs"); s != "2" || nnp != "0" {
		t.Errorf("a process without noNewPrivileges has Seccomp %s (want 2), NoNewPrivs %s (want 0)", s, nnp)
	}
	os.WriteFile(proc, []byte(`{"user":{"uid":70000,"gid":0},"args":["true"],"env":["PATH=/bin"],"cwd":"/"}`), 0o644)
	oneLine(t, ctr(t, opts{}, "exec", "--process", proc, "usexec"), "uid 70000 is not mapped in the container's user namespace")
}

// `exec -it` into a user namespace: the pty is made in the container's
// devpts, and belongs to the container's root, not to nobody.
func TestExecItIntoAUserNamespace(t *testing.T) {
	usernsSetup(t)
	detached(t, "usexec-tty", "--userns", "--net", "none", "--", "sleep", "1000")
	u := newUserTTY(t, 33, 99)
	u.start("exec", "-it", "usexec-tty", "--", "sh")
	u.expect(0, prompt)
	u.expect(u.typ("ls -ln $(tty) | tr -s ' ' | cut -d ' ' -f 3,4,10\r"), `(?m)^0 0 /dev/pts/0\r$`)
	u.expect(u.typ("stty size\r"), `(?m)^33 99\r$`)
	u.typ("exit 3\r")
	if code := u.wait(); code != 3 {
		t.Errorf("exit 3 in the shell: exec exited %d\n%q", code, u.output())
	}
}

// hostile_test.go's attack on exec's child, against a container with a
// user namespace: the child holds the host's privileges until its setns,
// then every capability in the container's namespace, and takes the
// container's root's uid before its execve. The container's root may not
// open its memory at any point (it is not dumpable: the helper's
// PR_SET_DUMPABLE passes the fork, and the kernel keeps it so at the
// change of uid).
func TestUsernsExecChildMemoryIsOutOfTheContainersReach(t *testing.T) {
	usernsSetup(t)
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o711)
	execMemoryRace(t, dir, "usmemrace", "--userns")
}
