package main

// A plain fork(), for the one place where Go's own must not be used.
//
// Go's os/exec starts every process with clone(CLONE_VM | CLONE_VFORK): until
// the child calls execve, it *shares the parent's memory*. That is fast and
// harmless in general, but not in `exec`'s helper: the thread that forks has
// joined the container's namespaces, so the child is inside the container
// (its PID is in the container's /proc) while sharing memory with the
// helper, whose other threads are still on the host, with every capability.
// A container process that opens /proc/<child>/mem for writing in that
// window patches code those host threads run: root on the host. (The
// helper is also made non-dumpable, which closes /proc/<pid>/mem to anyone
// without CAP_SYS_PTRACE; the fork closes it even to a container that was
// given CAP_SYS_PTRACE.)
//
// With fork(2) the child gets its own copy of the memory: nothing it holds
// before execve reaches the helper. runc gets the same from C code that
// joins the namespaces and forks before the Go runtime starts.

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// forkExec runs path with argv and env in a new process made by fork(2)
// from the calling thread (it must be locked to it: the child inherits that
// thread's namespaces and credentials). With pdeathsig, the child is killed
// when that thread exits. The child starts a session of its own; with a
// tty (>= 0: a pty's slave), that is its controlling terminal and its
// stdin, stdout and stderr. It returns the child's PID once execve
// succeeded.
//
// With into (non-nil), the child first enters a user namespace and takes
// the process's credentials there (usernsexec.go says why it is the
// child's work); a failure names the step that failed.
func forkExec(path string, argv, env []string, pdeathsig bool, tty int, into *usernsEntry) (int, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return 0, err
	}
	av, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return 0, err
	}
	ev, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return 0, err
	}
	// The child reports a failed execve on this pipe; a successful one
	// closes it (O_CLOEXEC), and the parent reads end-of-file.
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return 0, err
	}
	var sig uintptr
	if pdeathsig {
		sig = uintptr(unix.SIGKILL)
	}
	// ForkLock: no other goroutine may create a file descriptor without
	// O_CLOEXEC while we fork (the same lock os/exec takes).
	syscall.ForkLock.Lock()
	pid, errno := rawForkExec(p, &av[0], &ev[0], fds[1], sig, tty, into)
	syscall.ForkLock.Unlock()
	runtime.KeepAlive(into) // what its pointers point to, too: the child read them from its copy
	unix.Close(fds[1])
	defer unix.Close(fds[0])
	if errno != 0 {
		return 0, fmt.Errorf("fork: %v", errno)
	}
	var report childFailure
	if n, _ := unix.Read(fds[0], (*[8]byte)(unsafe.Pointer(&report))[:]); n == 8 {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
		if report.step == stepExec {
			return 0, syscall.Errno(report.errno)
		}
		return 0, fmt.Errorf("%s: %v", childSteps[report.step], syscall.Errno(report.errno))
	}
	return pid, nil
}

// childFailure is what a failed child writes on the error pipe: the
// error number, and the step that failed.
type childFailure struct{ errno, step uint32 }

// The child's steps, as a failure names them.
const (
	stepExec uint32 = iota // setsid, the terminal, execve: the error alone says it
	stepSetnsUser
	stepSeccomp
	stepBounding
	stepKeepCaps
	stepSetgroups
	stepSetgid
	stepSetuid
	stepCapset
	stepAmbient
	stepNoNewPrivs
)

var childSteps = [...]string{stepExec: "execve", stepSetnsUser: "setns(CLONE_NEWUSER)",
	stepSeccomp: "seccomp(SECCOMP_SET_MODE_FILTER)", stepBounding: "prctl(PR_CAPBSET_DROP)",
	stepKeepCaps: "prctl(PR_SET_KEEPCAPS)", stepSetgroups: "setgroups", stepSetgid: "setresgid",
	stepSetuid: "setresuid", stepCapset: "capset", stepAmbient: "prctl(PR_CAP_AMBIENT_RAISE)",
	stepNoNewPrivs: "prctl(PR_SET_NO_NEW_PRIVS)"}

// rawForkExec forks and, in the child, execs. Between fork and execve the
// child runs only raw system calls: it is a copy of one thread of a Go
// program whose runtime it must not touch (no allocation, no stack growth,
// no Go signal handler). Signals are blocked across the fork, and the child
// puts every handler back to its default before unblocking them.
//
//go:nosplit
//go:norace
func rawForkExec(path *byte, argv, envp **byte, errFd int, pdeathsig uintptr, tty int, into *usernsEntry) (int, syscall.Errno) {
	var old uint64
	r, e := rawFork(&old)
	if r != 0 || e != 0 {
		return int(r), e // the parent (or a failed fork)
	}
	// The child.
	ppid, _, _ := syscall.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&old)), 0, 8, 0, 0)
	step := stepExec
	if into != nil {
		step, e = rawEnterUserns(into)
	}
	// After any change of credentials: the kernel clears the parent-death
	// signal at one. A parent that died before it was set made this child
	// an orphan (another parent): it ends here.
	if e == 0 && pdeathsig != 0 {
		syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, pdeathsig, 0)
		if now, _, _ := syscall.RawSyscall(unix.SYS_GETPPID, 0, 0, 0); now != ppid {
			syscall.RawSyscall(unix.SYS_EXIT_GROUP, 127, 0, 0)
		}
	}
	// A session of its own: the caller's terminal must not be the
	// controlling terminal of a container process (TIOCSTI types into it).
	if e == 0 {
		_, _, e = syscall.RawSyscall(unix.SYS_SETSID, 0, 0, 0)
	}
	if e == 0 && tty >= 0 {
		_, _, e = syscall.RawSyscall(unix.SYS_IOCTL, uintptr(tty), unix.TIOCSCTTY, 0)
		for fd := uintptr(0); fd < 3 && e == 0; fd++ {
			_, _, e = syscall.RawSyscall(unix.SYS_DUP3, uintptr(tty), fd, 0)
		}
	}
	if e == 0 {
		_, _, e = syscall.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(path)), uintptr(unsafe.Pointer(argv)), uintptr(unsafe.Pointer(envp)))
	}
	report := childFailure{errno: uint32(e), step: step}
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(errFd), uintptr(unsafe.Pointer(&report)), 8)
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 127, 0, 0)
	}
}

// rawFork forks the calling thread with every signal blocked, and returns
// the child's PID (or the error) in the parent, its mask restored. In the
// child it returns 0 with the signals still blocked (old holds the mask
// to restore), every caught signal put back to its default first: Go's
// handler is not the child's to run. Ignored signals stay ignored, as
// across any execve.
//
//go:nosplit
//go:norace
func rawFork(old *uint64) (uintptr, syscall.Errno) {
	all := ^uint64(0)
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&all)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
	r, _, e := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if r != 0 || e != 0 {
		syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(old)), 0, 8, 0, 0)
		return r, e
	}
	var act, prev sigaction
	for s := uintptr(1); s < 65; s++ {
		if s == uintptr(unix.SIGKILL) || s == uintptr(unix.SIGSTOP) {
			continue
		}
		if _, _, e := syscall.RawSyscall6(unix.SYS_RT_SIGACTION, s, 0, uintptr(unsafe.Pointer(&prev)), 8, 0, 0); e == 0 && prev.handler != 1 {
			syscall.RawSyscall6(unix.SYS_RT_SIGACTION, s, uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
		}
	}
	return 0, 0
}

// sigaction is the kernel's struct sigaction (handler, flags, restorer,
// mask): zero is SIG_DFL with no flags.
type sigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// usernsEntry is what `exec`'s child does to enter a container's user
// namespace and become the process there (usernsexec.go prepares it, and
// says why the child does it): every value is ready before the fork, the
// child only passes them to the kernel.
type usernsEntry struct {
	userns      int             // /proc/<container>/ns/user, open
	noNewPrivs  bool            // prctl(PR_SET_NO_NEW_PRIVS, 1), and the filter after the credentials
	filter      *unix.SockFprog // the seccomp filter, nil for none
	filterFlags uintptr
	lastCap     uintptr // /proc/sys/kernel/cap_last_cap
	bounding    uint64  // the bounding set kept
	groups      *uint32 // setgroups's list (nGroups gid_t), nil for none
	nGroups     uintptr
	uid, gid    uintptr // the process's IDs in the container
	capHeader   unix.CapUserHeader
	caps        [2]unix.CapUserData // effective, permitted, inheritable
	ambient     uint64              // raised one by one (each permitted and inheritable)
}

// rawEnterUserns is the child's part of usernsEntry, in this order:
// setns(CLONE_NEWUSER), which gives it every capability, in that
// namespace only; the seccomp filter while it still holds CAP_SYS_ADMIN
// there (without no_new_privs the kernel takes a filter only then); the
// bounding set; the IDs (keepcaps: the permitted set survives them); the
// capabilities; the ambient ones; no_new_privs and then the filter, if
// the process asks for no_new_privs. It returns the step that failed
// (stepExec and 0: none did).
//
//go:nosplit
//go:norace
func rawEnterUserns(u *usernsEntry) (uint32, syscall.Errno) {
	if _, _, e := syscall.RawSyscall(unix.SYS_SETNS, uintptr(u.userns), unix.CLONE_NEWUSER, 0); e != 0 {
		return stepSetnsUser, e
	}
	if u.filter != nil && !u.noNewPrivs {
		if _, _, e := syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, u.filterFlags, uintptr(unsafe.Pointer(u.filter))); e != 0 {
			return stepSeccomp, e
		}
	}
	for c := uintptr(0); c <= u.lastCap; c++ {
		if u.bounding&(1<<c) == 0 {
			if _, _, e := syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, c, 0, 0, 0, 0); e != 0 && e != unix.EINVAL {
				return stepBounding, e
			}
		}
	}
	if _, _, e := syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 1, 0, 0, 0, 0); e != 0 {
		return stepKeepCaps, e
	}
	if _, _, e := syscall.RawSyscall(unix.SYS_SETGROUPS, u.nGroups, uintptr(unsafe.Pointer(u.groups)), 0); e != 0 {
		return stepSetgroups, e
	}
	if _, _, e := syscall.RawSyscall(unix.SYS_SETRESGID, u.gid, u.gid, u.gid); e != 0 {
		return stepSetgid, e
	}
	if _, _, e := syscall.RawSyscall(unix.SYS_SETRESUID, u.uid, u.uid, u.uid); e != 0 {
		return stepSetuid, e
	}
	if _, _, e := syscall.RawSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&u.capHeader)), uintptr(unsafe.Pointer(&u.caps[0])), 0); e != 0 {
		return stepCapset, e
	}
	for c := uintptr(0); c < 64; c++ {
		if u.ambient&(1<<c) != 0 {
			if _, _, e := syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, c, 0, 0, 0); e != 0 {
				return stepAmbient, e
			}
		}
	}
	if u.noNewPrivs {
		if _, _, e := syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); e != 0 {
			return stepNoNewPrivs, e
		}
		if u.filter != nil {
			if _, _, e := syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, u.filterFlags, uintptr(unsafe.Pointer(u.filter))); e != 0 {
				return stepSeccomp, e
			}
		}
	}
	return stepExec, 0
}
