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
func forkExec(path string, argv, env []string, pdeathsig bool, tty int) (int, error) {
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
	pid, errno := rawForkExec(p, &av[0], &ev[0], fds[1], sig, tty)
	syscall.ForkLock.Unlock()
	unix.Close(fds[1])
	defer unix.Close(fds[0])
	if errno != 0 {
		return 0, fmt.Errorf("fork: %v", errno)
	}
	var buf [4]byte
	if n, _ := unix.Read(fds[0], buf[:]); n == 4 {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
		return 0, syscall.Errno(*(*uint32)(unsafe.Pointer(&buf[0])))
	}
	return pid, nil
}

// rawForkExec forks and, in the child, execs. Between fork and execve the
// child runs only raw system calls: it is a copy of one thread of a Go
// program whose runtime it must not touch (no allocation, no stack growth,
// no Go signal handler). Signals are blocked across the fork, and the child
// puts every handler back to its default before unblocking them.
//
//go:nosplit
//go:norace
func rawForkExec(path *byte, argv, envp **byte, errFd int, pdeathsig uintptr, tty int) (int, syscall.Errno) {
	all, old := ^uint64(0), uint64(0)
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&all)), uintptr(unsafe.Pointer(&old)), 8, 0, 0)
	r, _, e := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if r != 0 || e != 0 {
		// The parent (or a failed fork).
		syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&old)), 0, 8, 0, 0)
		return int(r), e
	}
	// The child.
	if pdeathsig != 0 {
		syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, pdeathsig, 0)
	}
	var act, prev sigaction
	for s := uintptr(1); s < 65; s++ {
		if s == uintptr(unix.SIGKILL) || s == uintptr(unix.SIGSTOP) {
			continue
		}
		// Ignored signals stay ignored (as across any execve); caught ones
		// would run Go's handler in here: back to the default.
		if _, _, e := syscall.RawSyscall6(unix.SYS_RT_SIGACTION, s, 0, uintptr(unsafe.Pointer(&prev)), 8, 0, 0); e == 0 && prev.handler != 1 {
			syscall.RawSyscall6(unix.SYS_RT_SIGACTION, s, uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
		}
	}
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&old)), 0, 8, 0, 0)
	// A session of its own: the caller's terminal must not be the
	// controlling terminal of a container process (TIOCSTI types into it).
	_, _, e = syscall.RawSyscall(unix.SYS_SETSID, 0, 0, 0)
	if e == 0 && tty >= 0 {
		_, _, e = syscall.RawSyscall(unix.SYS_IOCTL, uintptr(tty), unix.TIOCSCTTY, 0)
		for fd := uintptr(0); fd < 3 && e == 0; fd++ {
			_, _, e = syscall.RawSyscall(unix.SYS_DUP3, uintptr(tty), fd, 0)
		}
	}
	if e == 0 {
		_, _, e = syscall.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(path)), uintptr(unsafe.Pointer(argv)), uintptr(unsafe.Pointer(envp)))
	}
	code := uint32(e)
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(errFd), uintptr(unsafe.Pointer(&code)), 4)
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 127, 0, 0)
	}
}

// sigaction is the kernel's struct sigaction (handler, flags, restorer,
// mask): zero is SIG_DFL with no flags.
type sigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}
