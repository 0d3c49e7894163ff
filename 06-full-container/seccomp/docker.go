package seccomp

// Docker's seccomp profile: its JSON format (what `docker run
// --security-opt seccomp=FILE` reads), the default profile itself, and what
// Docker's daemon does with a profile before it hands it to the runtime:
// it keeps the rules whose conditions hold for this container (its
// capabilities, this machine's architecture, this kernel's version) and
// writes what is left into config.json's linux.seccomp, the OCI form that
// Compile reads.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Profile is a profile in Docker's JSON format.
type Profile struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"` // the old form of archMap
	ArchMap          []ArchMap                `json:"archMap,omitempty"`
	Syscalls         []Rule                   `json:"syscalls"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
}

// ArchMap says which ABIs to filter on a machine of architecture Arch:
// itself and the older ABIs its processes can still call through.
type ArchMap struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

// Rule is a rule of linux.seccomp, with the conditions under which Docker
// keeps it.
type Rule struct {
	Name     string                   `json:"name,omitempty"` // the old form of names
	Names    []string                 `json:"names,omitempty"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []*specs.LinuxSeccompArg `json:"args"`
	Comment  string                   `json:"comment"`
	Includes When                     `json:"includes"`
	Excludes When                     `json:"excludes"`
}

// When: a rule is kept if the container has all of Caps, the machine is
// one of Arches and the kernel is at least MinKernel (includes), and
// dropped if it has any of Caps, is one of Arches, or the kernel is at
// least MinKernel (excludes).
type When struct {
	Caps      []string `json:"caps,omitempty"`
	Arches    []string `json:"arches,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"`
}

// ParseProfile reads a profile in Docker's JSON format. An unknown field
// is an error: a misspelt "sycalls" would otherwise be a profile with no
// rules.
func ParseProfile(b []byte) (*Profile, error) {
	var p Profile
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&p); err != nil {
		return nil, errors.New(strings.Replace(err.Error(), "json: ", "", 1))
	}
	return &p, nil
}

// dockerArch is Docker's name for an architecture (Go's, with x86 for 386).
func dockerArch(goarch string) string {
	if goarch == "386" {
		return "x86"
	}
	return goarch
}

// Render does what Docker's daemon does with a profile for one container
// (docker 20.10's setupSeccomp, profiles/seccomp/seccomp_linux.go): it
// keeps the rules whose includes hold and whose excludes do not, for the
// container's capabilities (its bounding set), this machine's
// architecture and this kernel, and writes them in the OCI form. Every
// rule is checked, kept or not: errors name it by its place in the
// profile.
func Render(p *Profile, caps []string) (*specs.LinuxSeccomp, error) {
	return render(p, caps, runtime.GOARCH, kernelVersion())
}

func render(p *Profile, caps []string, goarch string, kernel [2]int) (*specs.LinuxSeccomp, error) {
	if p.DefaultAction == "" && len(p.Syscalls) == 0 {
		return nil, nil // nothing asked for: no filter, as Docker
	}
	if p.DefaultAction == "" {
		return nil, errors.New("defaultAction is missing: say what a call no rule names gets (SCMP_ACT_ERRNO)")
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return nil, errors.New("architectures and archMap: use one or the other")
	}
	out := &specs.LinuxSeccomp{DefaultAction: p.DefaultAction, DefaultErrnoRet: p.DefaultErrnoRet,
		Architectures: p.Architectures, Flags: p.Flags, ListenerPath: p.ListenerPath, ListenerMetadata: p.ListenerMetadata}
	arch := dockerArch(goarch)
	native := runnable(goarch)
	for _, m := range p.ArchMap {
		if len(native) > 0 && m.Arch == native[0] {
			out.Architectures = append(append(out.Architectures, m.Arch), m.SubArches...)
			break
		}
	}
	atLeast := func(field, v string) (bool, error) {
		want, err := parseKernel(v)
		if err != nil {
			return false, fmt.Errorf("%s %q: %v", field, v, err)
		}
		return kernel[0] > want[0] || (kernel[0] == want[0] && kernel[1] >= want[1]), nil
	}
	for i, r := range p.Syscalls {
		if r.Name != "" && len(r.Names) > 0 {
			return nil, fmt.Errorf("syscalls[%d]: name and names: use one or the other", i)
		}
		call := specs.LinuxSyscall{Names: r.Names, Action: r.Action, ErrnoRet: r.ErrnoRet}
		if r.Name != "" {
			call.Names = []string{r.Name}
		}
		for j, a := range r.Args {
			if a == nil {
				return nil, fmt.Errorf("syscalls[%d].args[%d] is null", i, j)
			}
			call.Args = append(call.Args, *a)
		}
		if _, _, err := checkRule(call); err != nil {
			return nil, fmt.Errorf("syscalls[%d].%v", i, err)
		}
		keep := !has(r.Excludes.Arches, arch) && !hasAny(caps, r.Excludes.Caps)
		if r.Excludes.MinKernel != "" {
			newer, err := atLeast(fmt.Sprintf("syscalls[%d].excludes.minKernel", i), r.Excludes.MinKernel)
			if err != nil {
				return nil, err
			}
			keep = keep && !newer
		}
		if len(r.Includes.Arches) > 0 && !has(r.Includes.Arches, arch) {
			keep = false
		}
		for _, c := range r.Includes.Caps {
			keep = keep && has(caps, c)
		}
		if r.Includes.MinKernel != "" {
			newer, err := atLeast(fmt.Sprintf("syscalls[%d].includes.minKernel", i), r.Includes.MinKernel)
			if err != nil {
				return nil, err
			}
			keep = keep && newer
		}
		if keep {
			out.Syscalls = append(out.Syscalls, call)
		}
	}
	return out, nil
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasAny(list, any []string) bool {
	for _, s := range any {
		if has(list, s) {
			return true
		}
	}
	return false
}

// parseKernel reads "4.8" (a kernel version and major revision).
func parseKernel(v string) ([2]int, error) {
	a, b, ok := strings.Cut(v, ".")
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || x < 0 || y < 0 || (x == 0 && y == 0) {
		return [2]int{}, errors.New(`want a kernel version such as "4.8"`)
	}
	return [2]int{x, y}, nil
}

// kernelVersion is this kernel's version and major revision (6.1 for
// "6.1.0-18-amd64"), as Docker compares them.
func kernelVersion() [2]int {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return [2]int{}
	}
	rel := unix.ByteSliceToString(u.Release[:])
	a, rest, _ := strings.Cut(rel, ".")
	b := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		b = rest[:i]
	}
	x, _ := strconv.Atoi(a)
	y, _ := strconv.Atoi(b)
	return [2]int{x, y}
}

// DockerDefault is Docker's default profile, as Docker 20.10.24 (Debian
// 12's docker.io) sends it: refuse every call (EPERM) but the ~350 that
// ordinary programs make, and allow a few dozen more only to a container
// that holds the capability the call needs anyway, so that a capability
// given with --cap-add still works. The rules, their order and their
// conditions are Docker's (its profiles/seccomp/default_linux.go); a test
// compares what this renders to with the linux.seccomp that the installed
// Docker writes into config.json.
func DockerDefault() *Profile {
	enosys := uint(unix.ENOSYS)
	allowWithCap := func(capability string, names ...string) Rule {
		return Rule{Names: names, Action: specs.ActAllow, Includes: When{Caps: []string{capability}}}
	}
	allowOn := func(arches []string, names ...string) Rule {
		return Rule{Names: names, Action: specs.ActAllow, Includes: When{Arches: arches}}
	}
	personality := func(v uint64) Rule {
		return Rule{Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []*specs.LinuxSeccompArg{{Index: 0, Value: v, Op: specs.OpEqualTo}}}
	}
	// clone's flags word holding none of these makes a thread or a
	// process, not a new namespace.
	const newNamespaces = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
		unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP
	return &Profile{
		DefaultAction: specs.ActErrno,
		ArchMap: []ArchMap{
			{specs.ArchX86_64, []specs.Arch{specs.ArchX86, specs.ArchX32}},
			{specs.ArchAARCH64, []specs.Arch{specs.ArchARM}},
			{specs.ArchMIPS64, []specs.Arch{specs.ArchMIPS, specs.ArchMIPS64N32}},
			{specs.ArchMIPS64N32, []specs.Arch{specs.ArchMIPS, specs.ArchMIPS64}},
			{specs.ArchMIPSEL64, []specs.Arch{specs.ArchMIPSEL, specs.ArchMIPSEL64N32}},
			{specs.ArchMIPSEL64N32, []specs.Arch{specs.ArchMIPSEL, specs.ArchMIPSEL64}},
			{specs.ArchS390X, []specs.Arch{specs.ArchS390}},
		},
		Syscalls: []Rule{
			// What ordinary programs call: files, memory, signals,
			// processes and threads, sockets, time, System V IPC.
			{Action: specs.ActAllow, Names: []string{
				"accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset",
				"chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
				"clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
				"clock_nanosleep", "clock_nanosleep_time64", "close", "close_range", "connect",
				"copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
				"epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
				"epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
				"faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark",
				"fchdir", "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64",
				"fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr",
				"fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
				"ftruncate64", "futex", "futex_time64", "futex_waitv", "futimesat", "getcpu", "getcwd",
				"getdents", "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid",
				"getgid32", "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid",
				"getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresgid32",
				"getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid",
				"getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid",
				"getuid32", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1",
				"inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
				"io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
				"io_submit", "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc", "kill",
				"landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
				"lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr",
				"_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise",
				"membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod",
				"mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr",
				"mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
				"mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd",
				"msync", "munlock", "munlockall", "munmap", "nanosleep", "newfstatat", "_newselect",
				"open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe",
				"pipe2", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2",
				"prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev",
				"pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom",
				"recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename",
				"renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction",
				"rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
				"rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity",
				"sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
				"sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
				"sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler",
				"sched_yield", "seccomp", "select", "semctl", "semget", "semop", "semtimedop",
				"semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto",
				"setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
				"setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32",
				"setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32",
				"setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area",
				"set_tid_address", "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt",
				"shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask",
				"sigreturn", "socket", "socketcall", "socketpair", "splice", "stat", "stat64",
				"statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
				"syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
				"timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
				"timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
				"timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
				"ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat",
				"utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid",
				"write", "writev",
			}},
			// ptrace was a way around seccomp before 4.8 (a tracer could
			// change a call after the filter had allowed it).
			{Names: []string{"ptrace"}, Action: specs.ActAllow, Includes: When{MinKernel: "4.8"}},
			// personality: only the everyday ones (Linux, 32-bit, and
			// UNAME26, a kernel that says it is 2.6); 0xffffffff only
			// asks. ADDR_NO_RANDOMIZE, which turns off the address
			// randomisation an exploit must guess past, is refused.
			personality(0x0), personality(0x0008), personality(0x20000), personality(0x20008), personality(0xffffffff),
			allowOn([]string{"ppc64le"}, "sync_file_range2"),
			allowOn([]string{"arm", "arm64"}, "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"),
			allowOn([]string{"amd64", "x32"}, "arch_prctl"),
			allowOn([]string{"amd64", "x32", "x86"}, "modify_ldt"),
			allowOn([]string{"s390", "s390x"}, "s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
			// open_by_handle_at opens any file of a filesystem by its
			// handle, past the container's root: the 2014 "shocker"
			// escape from Docker 0.11.
			allowWithCap("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
			// Mounts, namespaces, BPF, perf, the kernel log: the powers of
			// CAP_SYS_ADMIN. Without it, unshare and setns (and so user
			// namespaces, where a process holds every capability again),
			// mount and bpf are refused before the kernel looks at them.
			allowWithCap("CAP_SYS_ADMIN", "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
				"lookup_dcookie", "mount", "mount_setattr", "move_mount", "name_to_handle_at", "open_tree",
				"perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog",
				"umount", "umount2", "unshare"),
			// Without CAP_SYS_ADMIN, clone only without a new namespace.
			{Names: []string{"clone"}, Action: specs.ActAllow,
				Args:     []*specs.LinuxSeccompArg{{Index: 0, Value: newNamespaces, ValueTwo: 0, Op: specs.OpMaskedEqual}},
				Excludes: When{Caps: []string{"CAP_SYS_ADMIN"}, Arches: []string{"s390", "s390x"}}},
			{Names: []string{"clone"}, Action: specs.ActAllow,
				Args:     []*specs.LinuxSeccompArg{{Index: 1, Value: newNamespaces, ValueTwo: 0, Op: specs.OpMaskedEqual}},
				Comment:  "s390 parameter ordering for clone is different",
				Includes: When{Arches: []string{"s390", "s390x"}}, Excludes: When{Caps: []string{"CAP_SYS_ADMIN"}}},
			// clone3 passes its flags in memory, where a filter cannot
			// look: "not implemented" (ENOSYS), and the C library falls
			// back to clone, whose flags it can.
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys, Excludes: When{Caps: []string{"CAP_SYS_ADMIN"}}},
			allowWithCap("CAP_SYS_BOOT", "reboot"),
			allowWithCap("CAP_SYS_CHROOT", "chroot"),
			// Kernel modules. kexec_load (boot another kernel) and the
			// keyring calls (keyctl, add_key, request_key: keys are not
			// namespaced) have no rule at all: refused to every container.
			allowWithCap("CAP_SYS_MODULE", "delete_module", "init_module", "finit_module"),
			allowWithCap("CAP_SYS_PACCT", "acct"),
			allowWithCap("CAP_SYS_PTRACE", "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"),
			allowWithCap("CAP_SYS_RAWIO", "iopl", "ioperm"),
			allowWithCap("CAP_SYS_TIME", "settimeofday", "stime", "clock_settime"),
			allowWithCap("CAP_SYS_TTY_CONFIG", "vhangup"),
			allowWithCap("CAP_SYS_NICE", "get_mempolicy", "mbind", "set_mempolicy"),
			allowWithCap("CAP_SYSLOG", "syslog"),
		},
	}
}
