package main

// The seccomp filter, on the real kernel: what Docker's default profile
// refuses is refused inside a container (and works without it), each
// action and each operator of a profile does what it says, calls through
// the other ABIs of an amd64 machine (int $0x80, x32) cannot walk around
// it, and OCI bundles, exec and --init get it too.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/06-full-container/seccomp"
	"github.com/container-internals/workshop/internal/testkit"
)

// blockedCalls makes the calls Docker's profile refuses (and one it
// answers ENOSYS) and prints "name errno" for each, 0 for success.
const blockedCalls = `
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>
static void show(const char *name, long r) { printf("%s %d\n", name, r < 0 ? errno : 0); }
int main(void) {
	setvbuf(stdout, NULL, _IONBF, 0);
	show("keyctl(KEYCTL_JOIN_SESSION_KEYRING)", syscall(SYS_keyctl, 1, "workshop-test"));
	show("add_key", syscall(SYS_add_key, "user", "workshop", "secret", 6, -3));
	struct { unsigned int bytes; int type; unsigned char h[128]; } fh = { 128 };
	int mnt;
	show("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, "/dev/null", &fh, &mnt, 0));
	show("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, &fh, O_RDONLY));
	show("personality(ADDR_NO_RANDOMIZE)", personality(ADDR_NO_RANDOMIZE));
	show("personality(PER_LINUX32)", personality(PER_LINUX32));
	personality(PER_LINUX);
	show("bpf", syscall(SYS_bpf, 0, NULL, 0));
	show("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
	show("mount", mount("none", "/tmp", "tmpfs", 0, ""));
	show("clone3", syscall(SYS_clone3, NULL, 0));
	show("unshare(CLONE_NEWUSER)", unshare(CLONE_NEWUSER)); /* last: it changes what the others may do */
	return 0;
}
`

// otherABIs calls the kernel the 32-bit way (int $0x80, i386's numbers)
// or the x32 way (x86_64's numbers with bit 30), as argv[1] says.
const otherABIs = `
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
static long int80(long nr, long a, long b, long c) {
	long r;
	__asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
	return r;
}
int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IONBF, 0);
	long r;
	if (strcmp(argv[1], "int80-keyctl") == 0)      /* i386 288: keyctl; on x86_64, 288 is accept4 */
		r = int80(288, 0, -3, 0);                  /* KEYCTL_GET_KEYRING_ID of the session keyring */
	else if (strcmp(argv[1], "int80-getpid") == 0)
		r = int80(20, 0, 0, 0);
	else if (strcmp(argv[1], "x32-keyctl") == 0)
		r = syscall(250 | 0x40000000, 0, -3, 0) < 0 ? -errno : 0;
	else
		r = syscall(39 | 0x40000000) < 0 ? -errno : 0;
	printf("%s %ld\n", argv[1], r < 0 && r > -4096 ? -r : 0);
	return 0;
}
`

// actions calls what the test profile has a rule for, as argv says.
const actions = `
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
static void onsys(int sig, siginfo_t *si, void *ctx) {
	printf("SIGSYS code=%d syscall=%d\n", si->si_code, si->si_syscall);
}
static void *killer(void *arg) { syscall(SYS_getsid, 0); return NULL; }
static void *victim(void *arg) { syscall(SYS_getitimer, 0, NULL); printf("thread survived\n"); return NULL; }
int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IONBF, 0);
	struct sigaction sa = { .sa_sigaction = onsys, .sa_flags = SA_SIGINFO };
	sigaction(SIGSYS, &sa, NULL);
	if (strcmp(argv[1], "trap") == 0) {
		syscall(SYS_getpgid, 0);
		printf("after the trap\n");
	} else if (strcmp(argv[1], "kill-process") == 0) {
		pthread_t t;
		pthread_create(&t, NULL, killer, NULL);
		pthread_join(t, NULL);
		printf("main thread survived\n");
	} else if (strcmp(argv[1], "kill-thread") == 0) {
		pthread_t t;
		pthread_create(&t, NULL, victim, NULL);
		pthread_join(t, NULL);
		printf("main thread alive\n");
	} else {
		/* argv: nr arg0 arg1 ...: one call each, "nr arg0 arg1 errno" */
		for (int i = 2; i + 2 < argc + 1; i += 3) {
			long nr = atol(argv[i]);
			unsigned long a = strtoul(argv[i + 1], NULL, 0), b = strtoul(argv[i + 2], NULL, 0);
			long r = syscall(nr, a, b, 0, 0, 0, 0);
			printf("%ld %#lx %#lx %d\n", nr, a, b, r < 0 ? errno : 0);
		}
	}
	return 0;
}
`

// calls parses "name errno" lines.
func calls(t *testing.T, out string) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		i := strings.LastIndexByte(l, ' ')
		n, err := strconv.Atoi(l[i+1:])
		if i < 0 || err != nil {
			t.Fatalf("bad line %q in:\n%s", l, out)
		}
		m[l[:i]] = n
	}
	return m
}

func errnoName(e int) string {
	if e == 0 {
		return "success"
	}
	return unix.ErrnoName(unix.Errno(e))
}

func requireAmd64(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		testkit.Unavailable(t, "the test programs call the kernel the amd64 ways")
	}
}

func TestDefaultProfileRefusesWhatDockerRefuses(t *testing.T) {
	setup(t)
	requireAmd64(t)
	dir := t.TempDir()
	cprog(t, dir, "blocked", blockedCalls)
	r := ctr(t, opts{}, "run", "-v", dir+":/t:ro", "--", "/t/blocked")
	if r.Code != 0 {
		t.Fatalf("run:\n%s", r)
	}
	filtered := calls(t, r.Stdout)
	r = ctr(t, opts{}, "run", "--security-opt", "seccomp=unconfined", "-v", dir+":/t:ro", "--", "/t/blocked")
	if r.Code != 0 {
		t.Fatalf("run --security-opt seccomp=unconfined:\n%s", r)
	}
	free := calls(t, r.Stdout)
	eperm, enosys := int(unix.EPERM), int(unix.ENOSYS)
	for _, tc := range []struct {
		call             string
		filtered, freely int
	}{
		// Refused by the filter alone: they work without it.
		{"unshare(CLONE_NEWUSER)", eperm, 0},
		{"keyctl(KEYCTL_JOIN_SESSION_KEYRING)", eperm, 0},
		{"add_key", eperm, 0},
		{"name_to_handle_at", eperm, 0},
		{"personality(ADDR_NO_RANDOMIZE)", eperm, 0},
		{"clone3", enosys, int(unix.EINVAL)}, // the profile says ENOSYS: the C library falls back to clone
		// The filter refuses them before the kernel looks; without it, the
		// missing capability does (the same answer, from further in; bpf
		// also depends on kernel.unprivileged_bpf_disabled: -1, not checked).
		{"open_by_handle_at", eperm, eperm},
		{"bpf", eperm, -1},
		{"kexec_load", eperm, -1}, // without the filter: EPERM, or ENOSYS on a kernel without kexec
		{"mount", eperm, eperm},
		// Allowed.
		{"personality(PER_LINUX32)", 0, 0},
	} {
		if got := filtered[tc.call]; got != tc.filtered {
			t.Errorf("%s under Docker's profile: %s, want %s", tc.call, errnoName(got), errnoName(tc.filtered))
		}
		if got := free[tc.call]; tc.freely >= 0 && got != tc.freely {
			t.Errorf("%s with seccomp=unconfined: %s, want %s", tc.call, errnoName(got), errnoName(tc.freely))
		}
	}
}

func TestOrdinaryProgramsRunUnderTheDefaultProfile(t *testing.T) {
	setup(t)
	script := `set -e
grep '^Seccomp:' /proc/self/status
mkdir -p /tmp/a/b && echo hello > /tmp/a/b/f && cp /tmp/a/b/f /tmp/g && cat /tmp/g
tar -C /tmp -cf /tmp/t.tar a && tar -tf /tmp/t.tar | sort | head -1
echo 3 1 2 | tr ' ' '\n' | sort -n | tr '\n' ' '; echo
sleep 0.01 & wait
ps -o pid,comm | head -2
id -u; date +%Y >/dev/null; uname -s; ls /proc/self/ns | wc -l; df / >/dev/null; top -bn1 >/dev/null
linux32 uname -m`
	r := ctr(t, opts{}, "run", "--", "sh", "-c", script)
	want := "Seccomp:\t2\nhello\na/\n1 2 3 \nPID   COMMAND\n    1 sh\n0\nLinux\n"
	linux32 := map[string]string{"amd64": "i686", "arm64": "armv8l"}[runtime.GOARCH] // personality(PER_LINUX32), allowed
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, want) || !strings.Contains(r.Stdout, "\n"+linux32+"\n") {
		t.Fatalf("busybox's tools under the filter:\n%s\nwant it to start with:\n%s", r, want)
	}
	// PID 1's argv[0], set by its execve: its comm (what ps shows) it sets
	// itself once running, and a slow machine ran the command before.
	r = ctr(t, opts{}, "run", "--init", "--", "sh", "-c", "grep -h '^Seccomp:' /proc/1/status /proc/self/status; tr '\\0' '\\n' < /proc/1/cmdline | head -1")
	if r.Code != 0 || r.Stdout != "Seccomp:\t2\nSeccomp:\t2\nworkshop-init\n" {
		t.Fatalf("--init's PID 1 and its command, both filtered:\n%s", r)
	}
}

func TestExecGetsTheContainersFilter(t *testing.T) {
	setup(t)
	requireAmd64(t)
	dir := t.TempDir()
	cprog(t, dir, "blocked", blockedCalls)
	detached(t, "filtered", "-v", dir+":/t:ro", "--", "sleep", "100")
	detached(t, "unfiltered", "--security-opt", "seccomp=unconfined", "-v", dir+":/t:ro", "--", "sleep", "100")
	for name, want := range map[string]int{"filtered": int(unix.EPERM), "unfiltered": 0} {
		r := ctr(t, opts{}, "exec", name, "--", "/t/blocked")
		if r.Code != 0 {
			t.Fatalf("exec %s:\n%s", name, r)
		}
		if got := calls(t, r.Stdout)["unshare(CLONE_NEWUSER)"]; got != want {
			t.Errorf("exec into %s: unshare(CLONE_NEWUSER) gave %s, want %s", name, errnoName(got), errnoName(want))
		}
	}
	r := ctr(t, opts{}, "exec", "filtered", "--", "sh", "-c", "grep '^Seccomp:' /proc/self/status; exit 3")
	if r.Code != 3 || r.Stdout != "Seccomp:\t2\n" {
		t.Fatalf("exec's command should run filtered, and its helper still report its status:\n%s", r)
	}
}

// profileFile writes a profile in Docker's format.
func profileFile(t *testing.T, p *seccomp.Profile) string {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEveryActionAndOperatorDoesWhatItSays(t *testing.T) {
	setup(t)
	requireAmd64(t)
	dir := t.TempDir()
	cprog(t, dir, "actions", actions)
	nr := func(name string) uint32 {
		n, ok := seccomp.Number(specs.ArchX86_64, name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		return n
	}
	errno := func(e uint) *uint { return &e }
	// One call per operator, each failing with its own errno when its
	// condition holds: the values straddle the two 32-bit halves.
	const v, mask, masked = 0x100000005, 0x1000000ff, 0x100000005
	ops := []struct {
		call string
		op   specs.LinuxSeccompOperator
	}{{"getppid", specs.OpEqualTo}, {"getpgrp", specs.OpNotEqual}, {"getuid", specs.OpLessThan},
		{"getgid", specs.OpLessEqual}, {"geteuid", specs.OpGreaterThan}, {"getegid", specs.OpGreaterEqual},
		{"sched_yield", specs.OpMaskedEqual}}
	// SECCOMP_FILTER_FLAG_LOG: the kernel logs every verdict but ALLOW
	// (an ERRNO is not logged without it); SPEC_ALLOW: no speculative
	// store bypass mitigation forced on the container by the filter.
	flags := []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}
	p := &seccomp.Profile{DefaultAction: specs.ActAllow, Flags: flags, Syscalls: []seccomp.Rule{
		{Names: []string{"getpgid"}, Action: specs.ActTrap},
		{Names: []string{"getsid"}, Action: specs.ActKillProcess},
		{Names: []string{"getitimer"}, Action: specs.ActKillThread},
		{Names: []string{"gettid"}, Action: specs.ActErrno, ErrnoRet: errno(120), Args: []*specs.LinuxSeccompArg{
			{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 1, Value: 2, Op: specs.OpEqualTo}}},
		{Names: []string{"acct"}, Action: specs.ActTrace},
		{Names: []string{"sysinfo"}, Action: specs.ActLog},
	}}
	for i, o := range ops {
		a := &specs.LinuxSeccompArg{Index: 0, Value: v, Op: o.op}
		if o.op == specs.OpMaskedEqual {
			a.Value, a.ValueTwo = mask, masked
		}
		p.Syscalls = append(p.Syscalls, seccomp.Rule{Names: []string{o.call}, Action: specs.ActErrno, ErrnoRet: errno(uint(100 + i)), Args: []*specs.LinuxSeccompArg{a}})
	}
	file := profileFile(t, p)
	run := func(args ...string) testkit.Result {
		return ctr(t, opts{}, append([]string{"run", "--security-opt", "seccomp=" + file, "-v", dir + ":/t:ro", "--", "/t/actions"}, args...)...)
	}

	values := []uint64{0, 5, 0xff, 0x100000004, 0x100000005, 0x100000006, 0x1000000ff, 0x200000005, 0xffffffff00000005, 0xffffffffffffffff}
	args := []string{"calls"}
	type call struct {
		nr   uint32
		a, b uint64
		want int
	}
	want := []call{{nr("gettid"), 1, 2, 120}} // first: its log line is looked for below
	for i, o := range ops {
		for _, x := range values {
			c := call{nr: nr(o.call), a: x}
			holds := map[specs.LinuxSeccompOperator]bool{specs.OpEqualTo: x == v, specs.OpNotEqual: x != v, specs.OpLessThan: x < v,
				specs.OpLessEqual: x <= v, specs.OpGreaterThan: x > v, specs.OpGreaterEqual: x >= v, specs.OpMaskedEqual: x&mask == masked}[o.op]
			if holds {
				c.want = 100 + i
			}
			want = append(want, c)
		}
	}
	want = append(want, call{nr("gettid"), 1, 3, 0}, call{nr("gettid"), 7, 2, 0},
		call{nr("acct"), 0, 0, int(unix.ENOSYS)},    // TRACE with no tracer: not run, ENOSYS (run, it is EPERM)
		call{nr("sysinfo"), 0, 0, int(unix.EFAULT)}) // LOG: run (and logged): sysinfo(NULL) is EFAULT
	for _, c := range want {
		args = append(args, fmt.Sprint(c.nr), fmt.Sprintf("%#x", c.a), fmt.Sprintf("%#x", c.b))
	}
	// The kernel's audit records (type=1326) of gettid's ERRNO: action
	// code 0x50000 (the errno itself is not recorded).
	mark := fmt.Sprintf(`comm="actions" exe="/t/actions" sig=0 arch=c000003e syscall=%d compat=0`, nr("gettid"))
	logged := func() (n int) {
		out, _ := exec.Command("dmesg").Output()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, mark) && strings.HasSuffix(l, "code=0x50000") {
				n++
			}
		}
		return n
	}
	before := logged()
	r := run(args...)
	if r.Code != 0 {
		t.Fatalf("run with the profile:\n%s", r)
	}
	// The kernel logged gettid's ERRNO: the LOG flag. (Without auditd the
	// kernel prints audit records under printk's rate limit, ten per five
	// seconds for the whole machine: if this run's were dropped, once more
	// alone, past the limit's window.)
	if logged() <= before {
		time.Sleep(5500 * time.Millisecond)
		run("calls", fmt.Sprint(nr("gettid")), "1", "2")
	}
	if logged() <= before {
		t.Errorf("with SECCOMP_FILTER_FLAG_LOG, the kernel log should hold gettid's ERRNO (audit type=1326, %s ... code=0x50000)", mark)
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != len(want) {
		t.Fatalf("want %d lines:\n%s", len(want), r)
	}
	for i, c := range want {
		f := strings.Fields(lines[i])
		if got, _ := strconv.Atoi(f[3]); got != c.want {
			t.Errorf("call %d (%s) with %#x, %#x: %s, want %s", c.nr, lines[i], c.a, c.b, errnoName(got), errnoName(c.want))
		}
	}

	// TRAP: a SIGSYS the program catches (si_code SYS_SECCOMP, 1), and goes on.
	if r = run("trap"); r.Code != 0 || r.Stdout != fmt.Sprintf("SIGSYS code=1 syscall=%d\nafter the trap\n", nr("getpgid")) {
		t.Errorf("SCMP_ACT_TRAP:\n%s", r)
	}
	// KILL_PROCESS: SIGSYS that no handler catches, for the whole process
	// (called from a second thread): status 128+31.
	if r = run("kill-process"); r.Code != 159 || r.Stdout != "" {
		t.Errorf("SCMP_ACT_KILL_PROCESS: want exit status 159 (SIGSYS) and nothing printed:\n%s", r)
	}
	// KILL_THREAD: only the calling thread dies.
	if r = run("kill-thread"); r.Code != 0 || r.Stdout != "main thread alive\n" {
		t.Errorf("SCMP_ACT_KILL_THREAD: want the other thread to go on:\n%s", r)
	}
}

func TestPersonalityMaskedEqualAllowsOnlyWhatItNames(t *testing.T) {
	setup(t)
	requireAmd64(t)
	dir := t.TempDir()
	cprog(t, dir, "actions", actions)
	// Docker's profile, with its five personality rules (EQ 0, 8, 0x20000,
	// 0x20008, 0xffffffff) replaced by one: allowed when the flag bits are
	// all clear, PER_LINUX (0) and PER_LINUX32 (8); not READ_IMPLIES_EXEC
	// (0x0400000), ADDR_NO_RANDOMIZE (0x0040000), nor a query (0xffffffff).
	p := seccomp.DockerDefault()
	var kept []seccomp.Rule
	for _, r := range p.Syscalls {
		if len(r.Names) != 1 || r.Names[0] != "personality" {
			kept = append(kept, r)
		}
	}
	p.Syscalls = append(kept, seccomp.Rule{Names: []string{"personality"}, Action: specs.ActAllow,
		Args: []*specs.LinuxSeccompArg{{Index: 0, Value: 0xffffff00, ValueTwo: 0, Op: specs.OpMaskedEqual}}})
	file := profileFile(t, p)
	n, _ := seccomp.Number(specs.ArchX86_64, "personality")
	var args []string
	for _, v := range []string{"0", "8", "0x0040000", "0x0400008", "0xffffffff", "0"} {
		args = append(args, fmt.Sprint(n), v, "0")
	}
	r := ctr(t, opts{}, append([]string{"run", "--security-opt", "seccomp=" + file, "-v", dir + ":/t:ro", "--", "/t/actions", "calls"}, args...)...)
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if f := strings.Fields(l); len(f) == 4 {
			got = append(got, f[1]+"="+errnoName(atoi(f[3])))
		}
	}
	want := "0=success 0x8=success 0x40000=EPERM 0x400008=EPERM 0xffffffff=EPERM 0=success"
	if r.Code != 0 || strings.Join(got, " ") != want {
		t.Fatalf("personality under MASKED_EQ 0xffffff00 == 0: got %q, want %q\n%s", strings.Join(got, " "), want, r)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func TestOtherABIsCannotWalkAroundTheFilter(t *testing.T) {
	setup(t)
	requireAmd64(t)
	dir := t.TempDir()
	cprog(t, dir, "abi", otherABIs)
	one := func(secopt, call string) testkit.Result {
		return ctr(t, opts{}, "run", "--security-opt", secopt, "-v", dir+":/t:ro", "--", "/t/abi", call)
	}
	result := func(r testkit.Result) string {
		if r.Code != 0 {
			return fmt.Sprintf("exit %d", r.Code)
		}
		f := strings.Fields(r.Stdout)
		if len(f) != 2 {
			return "?" + r.Stdout
		}
		return errnoName(atoi(f[1]))
	}
	// A deny-list that names only the x86_64 ABI: keyctl refused there.
	only64 := profileFile(t, &seccomp.Profile{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []seccomp.Rule{{Names: []string{"keyctl"}, Action: specs.ActErrno}}})
	for _, tc := range []struct{ secopt, call, want string }{
		// Without a filter: i386's keyctl works; this kernel has no x32 ABI.
		{"seccomp=unconfined", "int80-keyctl", "success"},
		{"seccomp=unconfined", "x32-keyctl", "ENOSYS"},
		// Docker's profile names i386 and x32 too, and judges each call by
		// its own ABI's numbers: keyctl is refused all three ways (i386's
		// 288 is accept4 on x86_64, allowed there).
		{"seccomp=builtin", "int80-keyctl", "EPERM"},
		{"seccomp=builtin", "x32-keyctl", "EPERM"},
		{"seccomp=builtin", "int80-getpid", "success"},
		// An ABI the profile does not name: the process is killed (SIGSYS,
		// 128+31), whatever the call.
		{"seccomp=" + only64, "int80-getpid", "exit 159"},
		{"seccomp=" + only64, "x32-getpid", "exit 159"},
		{"seccomp=" + only64, "int80-keyctl", "exit 159"},
	} {
		secopt := tc.secopt
		if secopt == "seccomp=builtin" {
			secopt = "seccomp=" + profileFile(t, seccomp.DockerDefault())
		}
		if got := result(one(secopt, tc.call)); got != tc.want {
			t.Errorf("%s with %s: %s, want %s", tc.call, tc.secopt, got, tc.want)
		}
	}
}

func TestOCIBundleWithSeccompRunsUnderCreateStart(t *testing.T) {
	setup(t)
	for _, nnp := range []bool{true, false} {
		dir := bundle(t, func(c *specs.Spec) {
			// Docker's default, as Docker renders it, and a call no kernel
			// has yet: a profile from the future still loads.
			p, err := seccomp.Render(seccomp.DockerDefault(), c.Process.Capabilities.Bounding)
			if err != nil {
				t.Fatal(err)
			}
			p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"futex_wake_all_2099"}, Action: specs.ActAllow})
			c.Linux.Seccomp = p
			c.Process.NoNewPrivileges = nnp
			c.Process.Args = []string{"sh", "-c", "grep '^Seccomp:' /proc/self/status; unshare -U true 2>&1; echo unshare=$?"}
		})
		got, code := runBundle(t, testkit.Stage(t, "06-full-container"), sharedRoot(t), dir, "seccomp-bundle")
		want := "Seccomp:\t2\nunshare: unshare(0x10000000): Operation not permitted\nunshare=1\n"
		if code != 0 || got != want {
			t.Errorf("noNewPrivileges %v: got %q (exit %d), want %q", nnp, got, code, want)
		}
	}
}

func TestMalformedProfilesGiveOneLineNamingTheField(t *testing.T) {
	setup(t)
	bad := filepath.Join(t.TempDir(), "bad.json")
	for content, want := range map[string]string{
		`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["write"], "action": "SCMP_ACT_SOMETIMES"}]}`:       "syscalls[1].action",
		`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}`: "syscalls[0].args[0].op",
		`{"defaultAction": "SCMP_ACT_ERRNO", "sycalls": []}`:                                          `"sycalls"`,
		`{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_PPC64LE"], "syscalls": []}`: "architectures[0]",
	} {
		os.WriteFile(bad, []byte(content), 0o644)
		oneLine(t, ctr(t, opts{}, "run", "--security-opt", "seccomp="+bad, "--", "true"), want)
	}
	oneLine(t, ctr(t, opts{}, "run", "--security-opt", "apparmor=unconfined", "--", "true"), "seccomp=unconfined or seccomp=FILE")
	noContainersLeft(t)
}
