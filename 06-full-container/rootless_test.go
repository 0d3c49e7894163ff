package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-internals/workshop/internal/testkit"
)

// The tests run as root; the runtime runs as this ordinary user, whom the
// host does not know (no line in /etc/passwd: no user is added to the
// host). The newuidmap tests give it a name and ranges in a private mount
// namespace of their own (rootlessUser.run).
const (
	learnerUID = 4321
	learnerGID = 4321
)

// rootlessUser is the ordinary user's home: its default store
// (~/.local/share/workshop) and runtime directory ($XDG_RUNTIME_DIR), and
// a directory of its own to use as a volume.
type rootlessUser struct {
	home, run, vol string
	subIDs         bool // newuidmap with ranges (else the single-ID map)
}

func newRootlessUser(t *testing.T, subIDs bool) *rootlessUser {
	t.Helper()
	setup(t)
	if subIDs {
		for _, p := range []string{"newuidmap", "newgidmap", "unshare", "setpriv"} {
			if _, err := exec.LookPath(p); err != nil {
				testkit.Unavailable(t, "needs %s: `apt-get install uidmap util-linux`", p)
			}
		}
	}
	dir := t.TempDir()
	u := &rootlessUser{home: filepath.Join(dir, "home"), run: filepath.Join(dir, "run"), vol: filepath.Join(dir, "vol"), subIDs: subIDs}
	for _, d := range []string{u.home, u.run, u.vol} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, learnerUID, learnerGID); err != nil {
			t.Fatal(err)
		}
	}
	// t.TempDir's directories are 0700: the user must pass through them.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	if subIDs {
		host, err := os.ReadFile("/etc/passwd")
		if err != nil {
			t.Fatal(err)
		}
		// By name in subuid, by number in subgid: newuidmap reads both.
		if err := os.Mkdir(filepath.Join(dir, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, text := range map[string]string{
			"passwd": string(host) + "learner:x:4321:4321::" + u.home + ":/bin/sh\n",
			"subuid": "learner:200000:65536\n",
			"subgid": "4321:300000:65536\n",
		} {
			if err := os.WriteFile(filepath.Join(dir, "etc", name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return u
}

// images and state are the user's default store and state directory.
func (u *rootlessUser) images() string { return filepath.Join(u.home, ".local", "share", "workshop") }
func (u *rootlessUser) state() string  { return filepath.Join(u.run, "workshop") }

// command is the runtime as the user. With subIDs: in a mount namespace
// of the test's own, a read-only overlay on /etc shows the test's passwd,
// subuid and subgid over the host's (the host's files are never touched,
// not even their times), then setpriv becomes the user and runs it;
// newuidmap, setuid root, reads them there.
func (u *rootlessUser) command(t *testing.T, env []string, args ...string) *exec.Cmd {
	bin := testkit.Stage(t, "06-full-container")
	var cmd *exec.Cmd
	if u.subIDs {
		etc := filepath.Join(filepath.Dir(u.home), "etc")
		script := `set -e
mount -t overlay overlay -o "lowerdir=$0:/etc" /etc
exec setpriv --reuid 4321 --regid 4321 --clear-groups "$@"`
		cmd = exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, etc, bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: learnerUID, Gid: learnerGID, Groups: []uint32{}}}
	}
	cmd.Dir = "/"
	cmd.Env = append([]string{"HOME=" + u.home, "XDG_RUNTIME_DIR=" + u.run, "PATH=" + os.Getenv("PATH"), "NO_COLOR=1"}, env...)
	return cmd
}

// runAs runs the runtime as the user to completion.
func (u *rootlessUser) runAs(t *testing.T, env []string, args ...string) testkit.Result {
	t.Helper()
	cmd := u.command(t, env, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	_ = cmd.Wait()
	timer.Stop()
	code := cmd.ProcessState.ExitCode()
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	return testkit.Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}

// nothingLeft: no container state, read-write layer or mount record in
// the user's store, and nothing of the user's running.
func (u *rootlessUser) nothingLeft(t *testing.T) {
	t.Helper()
	noContainersLeftIn(t, u.images(), u.state())
	if inits, _ := filepath.Glob(filepath.Join(u.images(), "overlay2", "*-init")); len(inits) > 0 {
		t.Errorf("container layers left in the user's store: %v", inits)
	}
	for i := 0; ; i++ {
		pids := processesOf(t, learnerUID)
		if len(pids) == 0 {
			return
		}
		if i == 100 {
			t.Errorf("processes of uid %d still running: %v", learnerUID, pids)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processesOf lists the host PIDs whose real uid is uid.
func processesOf(t *testing.T, uid int) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" && f[1] == strconv.Itoa(uid) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// findProcess waits for the host PID of a process whose command line is
// args (the container's `sleep N`).
func findProcess(t *testing.T, args ...string) int {
	t.Helper()
	want := strings.Join(args, "\x00") + "\x00"
	for i := 0; i < 500; i++ {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline"); string(b) == want {
				pid, _ := strconv.Atoi(e.Name())
				return pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no process %q appeared", args)
	return 0
}

// An ordinary user's `run`, with newuidmap and ranges: root inside, and
// the user on the host. Inside: uid 0, the maps (0 -> 4321, 1-65536 -> the
// ranges), an uid of the range usable (chown 1000), a directory of the
// image removed and made again (overlayfs's opaque mark, which needs
// "userxattr" in a user namespace). Outside: the container's process runs
// as 4321, its files on the volume are 4321's and 200999's, and `kill` of
// the runtime ends it and leaves nothing.
func TestRootlessRunIsRootInsideAndTheUserOutside(t *testing.T) {
	u := newRootlessUser(t, true)
	script := "id -u; cat /proc/self/uid_map /proc/self/gid_map | tr -s ' '; touch /data/by-root; touch /data/by-1000; chown 1000:1000 /data/by-1000; " +
		"rm -r /etc && mkdir /etc && echo opaque; echo > /data/ready; exec sleep 31337"
	cmd := u.command(t, nil, "run", "--explain", "-v", u.vol+":/data", "--", "sh", "-c", script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	pid := findProcess(t, "sleep", "31337")
	if uid := statusField(t, pid, "Uid"); uid != "4321" {
		t.Fatalf("from the host, the container's process runs as uid %s, want 4321", uid)
	}
	if m, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/uid_map"); strings.Join(strings.Fields(string(m)), " ") != "0 4321 1 1 200000 65536" {
		t.Fatalf("its uid_map, from the host: %q", m)
	}
	for file, want := range map[string][2]uint32{"by-root": {4321, 4321}, "by-1000": {200999, 300999}} {
		var fi syscall.Stat_t
		if err := syscall.Stat(filepath.Join(u.vol, file), &fi); err != nil || fi.Uid != want[0] || fi.Gid != want[1] {
			t.Errorf("the container's %s on the volume is %d:%d on the host (%v), want %d:%d", file, fi.Uid, fi.Gid, err, want[0], want[1])
		}
	}
	cmd.Process.Signal(syscall.SIGTERM) // kill, to the runtime alone
	_ = cmd.Wait()
	out := stdout.String()
	want := "0\n 0 4321 1\n 1 200000 65536\n 0 4321 1\n 1 300000 65536\nopaque\n"
	if code := cmd.ProcessState.ExitCode(); code != 137 || !strings.Contains(out, want) {
		t.Fatalf("want exit 137 (the container killed after SIGTERM) and inside:\n%s\ngot exit %d:\n%s\n%s", want, code, out, stderr.String())
	}
	for _, narrated := range []string{"$ newuidmap ", "$ newgidmap ", `"userxattr"`, "no cgroup of the container's own"} {
		if !strings.Contains(out, narrated) {
			t.Errorf("the narration does not say %q:\n%s", narrated, out)
		}
	}
	u.nothingLeft(t)
}

// Without newuidmap, the single-ID map: 0 -> the user, setgroups denied.
// Only root exists inside: an uid of the image's other users cannot be
// given. Forced by WORKSHOP_ROOTLESS_OWN_ID=1, and found by itself with
// newuidmap out of PATH. Runs in the pure cgroup v2 guest too.
func TestRootlessWithoutNewuidmapMapsOneID(t *testing.T) {
	u := newRootlessUser(t, false)
	script := "id -u; cat /proc/self/uid_map | tr -s ' '; cat /proc/self/setgroups; touch /data/f; chown 1000 /data/f 2>/dev/null || echo no-1000; ls /sys/kernel >/dev/null && echo sys"
	for _, c := range []struct {
		env []string
		why string
	}{
		{[]string{ownIDEnv + "=1"}, ownIDEnv + "=1: the one map"},
		{[]string{"PATH=/nonexistent"}, "no newuidmap/newgidmap, or no range for you"},
	} {
		os.Remove(filepath.Join(u.vol, "f"))
		r := u.runAs(t, c.env, "run", "--explain", "-v", u.vol+":/data", "--", "sh", "-c", script)
		if r.Code != 0 || !strings.Contains(r.Stdout, "0\n 0 4321 1\ndeny\nno-1000\nsys\n") || !strings.Contains(r.Stdout, c.why) {
			t.Fatalf("%v: want root inside on the single-ID map, narrated as %q:\n%s", c.env, c.why, r)
		}
		var fi syscall.Stat_t
		if err := syscall.Stat(filepath.Join(u.vol, "f"), &fi); err != nil || fi.Uid != learnerUID {
			t.Fatalf("the container's file on the volume is uid %d on the host (%v), want %d", fi.Uid, err, learnerUID)
		}
	}
	u.nothingLeft(t)
}

// What needs the host's root is refused in one line that names the
// reason, before anything is made: not even the user's store.
func TestRootlessRefusesWhatNeedsRootInOneLine(t *testing.T) {
	u := newRootlessUser(t, false)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--memory", "64m"}, "--memory as an ordinary user is not possible: a limit needs a cgroup of the container's own, and "},
		{[]string{"--cpus", "0.5"}, "--cpus as an ordinary user is not possible"},
		{[]string{"--pids-limit", "10"}, "--pids-limit as an ordinary user is not possible"},
		{[]string{"--net", "bridge"}, "--net bridge as an ordinary user is not possible: the bridge, the container's veth pair and its NAT rules are the host's network"},
		{[]string{"--net", "bridge", "-p", "8080:80"}, "--net bridge as an ordinary user"},
		{[]string{"-p", "8080:80"}, "-p needs --net bridge"},
		{[]string{"--userns"}, "a rootless run already has a user namespace"},
		{[]string{"-d"}, "-d as an ordinary user is not supported"},
		{[]string{"--proc-view"}, "--proc-view as an ordinary user is not supported"},
	} {
		r := u.runAs(t, nil, append(append([]string{"run"}, c.args...), "--", "true")...)
		oneLine(t, r, c.want)
	}
	if _, err := os.Stat(filepath.Join(u.home, ".local")); err == nil {
		t.Error("a refused run made the user's store")
	}
	// The other commands still need root.
	oneLine(t, u.runAs(t, nil, "ps"), "needs root")
	u.nothingLeft(t)
}

// Ctrl-C from a terminal reaches the runtime's whole process group, the
// runtime in the user namespace included; SIGKILL of the runtime takes
// the container with it (parent-death signals down the chain), and the
// next run removes what it left.
func TestRootlessCtrlCAndKillLeaveNothing(t *testing.T) {
	u := newRootlessUser(t, false)
	cmd := u.command(t, nil, "run", "--", "sleep", "31338")
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	findProcess(t, "sleep", "31338")
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	endsWithin(t, cmd, 10*time.Second, "run did not end within 10 s of Ctrl-C")
	if code := cmd.ProcessState.ExitCode(); code != 137 && code != 130 {
		t.Fatalf("Ctrl-C: want exit 137 or 130, got %d", code)
	}
	u.nothingLeft(t)

	cmd = u.command(t, nil, "run", "--", "sleep", "31339")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := findProcess(t, "sleep", "31339")
	cmd.Process.Kill()
	cmd.Wait()
	for i := 0; syscall.Kill(pid, 0) == nil; i++ {
		if i == 250 {
			t.Fatal("the container outlived its killed runtime by 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := u.runAs(t, nil, "run", "--", "true"); r.Code != 0 {
		t.Fatalf("the next run:\n%s", r)
	}
	u.nothingLeft(t)
}

// Ubuntu 24.04's restriction, on a fake /proc (this host has no AppArmor):
// refused in one line naming both fixes while this program runs
// unconfined; let through under a profile, or without the restriction.
func TestRootlessSaysWhenAppArmorRestrictsUserNamespaces(t *testing.T) {
	proc := t.TempDir()
	write := func(p, s string) {
		os.MkdirAll(filepath.Dir(filepath.Join(proc, p)), 0o755)
		if err := os.WriteFile(filepath.Join(proc, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := usernsRestriction(proc); err != nil {
		t.Fatalf("no restriction file: %v", err)
	}
	write("sys/kernel/apparmor_restrict_unprivileged_userns", "1\n")
	write("self/attr/apparmor/current", "unconfined\n")
	err := usernsRestriction(proc)
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "scripts/provision.sh") || !strings.Contains(err.Error(), "apparmor_restrict_unprivileged_userns=0") {
		t.Fatalf("restricted and unconfined: want one line naming the profile and the sysctl, got %v", err)
	}
	write("self/attr/apparmor/current", "workshop (unconfined)\n")
	if err := usernsRestriction(proc); err != nil {
		t.Fatalf("under the workshop's profile: %v", err)
	}
	write("sys/kernel/apparmor_restrict_unprivileged_userns", "0\n")
	write("self/attr/apparmor/current", "unconfined\n")
	if err := usernsRestriction(proc); err != nil {
		t.Fatalf("restriction off: %v", err)
	}
}
