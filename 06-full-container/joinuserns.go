package main

// Joining an existing user namespace at create: an OCI config whose
// linux.namespaces has {"type": "user", "path": ...}, as a pod's containers
// join their sandbox's.
//
// The other namespaces are joined by the first process itself (nsjoin.go),
// but not this one: setns(CLONE_NEWUSER) is refused to a process with more
// than one thread, which a Go program always is, and the namespaces the
// first process gets new (mount, UTS, IPC...) must belong to the joined
// user namespace, so they must be made after the setns, by a process
// already in it. Go's os/exec cannot setns before its clone. So, for this
// case only, the first process is started with raw system calls, as
// `exec`'s command is (fork.go):
//
//  1. fork(): a copy of the runtime's cloning thread, single-threaded, that
//     makes only raw system calls;
//  2. in it, setns(CLONE_NEWUSER): every capability, in that namespace
//     only; and setns(CLONE_NEWPID) of a PID namespace joined too, which
//     moves only its children: the copy stays in the runtime's, and the
//     PID its clone returns is the one the runtime sees;
//  3. prctl(PR_SET_DUMPABLE, 0): until its execve the first process is a
//     copy of the runtime's memory, which no container process may read;
//     clone(CLONE_PARENT | the CLONE_NEW* flags): the first process, in
//     namespaces the joined user namespace owns, whose parent is the
//     runtime itself (CLONE_PARENT), as if os/exec had started it;
//  4. in the first process: root of the namespace (setresuid(0, 0, 0):
//     the host's uid 0 is unmapped there, and an execve by an unmapped
//     user would keep no capability), its descriptors put in place
//     (stdio, the link, the console, the state directory), execve of the
//     sealed runtime, as os/exec would.
//
// The copy of step 1 reports the first process's PID and exits; the
// runtime waits for it as for any child.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/narrate"
)

// maxSpawnFds is how many descriptors the first process gets: 0, 1, 2,
// the link's 3 and 4, the console's 5, the state directory's 6.
const maxSpawnFds = 8

// joinedSpawn is what the raw code needs, every value ready before the
// fork: pointers into Go memory the copies read from their own copy.
type joinedSpawn struct {
	userns     uintptr
	pidns      uintptr // a PID namespace to clone into (0: none joined)
	cloneFlags uintptr
	pdeathsig  uintptr
	fds        [maxSpawnFds]int32 // the descriptor each of 0..n-1 becomes (-1: closed)
	nfds       uintptr
	setgroups  bool // false where the namespace's setgroups is "deny"
	path       *byte
	argv, envp **byte
	errFd      uintptr // a failure: {errno, step}, 8 bytes
	pidFd      uintptr // the first process's PID, 8 bytes
}

// startInUserns starts cmd (not started: its Path, Args, Env, stdio,
// ExtraFiles, Cloneflags and Pdeathsig) with the user namespace at path
// joined first (and the PID namespace at pidPath, if not ""), and sets
// cmd.Process: cmd.Wait works as after Start.
func startInUserns(n *narrate.Narrator, cmd *exec.Cmd, path, pidPath string) error {
	userns, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the user namespace %s: %v", path, err)
	}
	defer unix.Close(userns)
	s := &joinedSpawn{userns: uintptr(userns), cloneFlags: cmd.SysProcAttr.Cloneflags, pdeathsig: uintptr(cmd.SysProcAttr.Pdeathsig)}
	if pidPath != "" {
		pidns, err := unix.Open(pidPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening the PID namespace %s: %v", pidPath, err)
		}
		defer unix.Close(pidns)
		s.pidns = uintptr(pidns)
	}
	// Each descriptor is first copied above every target (close-on-exec
	// copies): the first process's dup3 onto 0..n-1 can then never
	// overwrite a source it has still to place.
	files := append([]*os.File{asFile(cmd.Stdin), asFile(cmd.Stdout), asFile(cmd.Stderr)}, cmd.ExtraFiles...)
	if len(files) > maxSpawnFds {
		return fmt.Errorf("%d descriptors for the first process: at most %d", len(files), maxSpawnFds)
	}
	for i, f := range files {
		s.fds[i] = -1
		if f == nil {
			continue
		}
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 100)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		s.fds[i] = int32(fd)
	}
	s.nfds = uintptr(len(files))
	s.setgroups = !setgroupsDeniedIn(path)
	if s.path, err = unix.BytePtrFromString(cmd.Path); err != nil {
		return err
	}
	argv, err := syscall.SlicePtrFromStrings(cmd.Args)
	if err != nil {
		return err
	}
	envp, err := syscall.SlicePtrFromStrings(cmd.Env)
	if err != nil {
		return err
	}
	s.argv, s.envp = &argv[0], &envp[0]
	var errPipe, pidPipe [2]int
	if err := unix.Pipe2(errPipe[:], unix.O_CLOEXEC); err != nil {
		return err
	}
	defer unix.Close(errPipe[0])
	if err := unix.Pipe2(pidPipe[:], unix.O_CLOEXEC); err != nil {
		unix.Close(errPipe[1])
		return err
	}
	defer unix.Close(pidPipe[0])
	s.errFd, s.pidFd = uintptr(errPipe[1]), uintptr(pidPipe[1])

	n.Call("fork()   # a single-threaded copy of this thread: setns(CLONE_NEWUSER) refuses a Go program's several")
	n.Call("setns(open(%q), CLONE_NEWUSER)   # in the copy: every capability, in the joined user namespace only", path)
	if pidPath != "" {
		n.Call("setns(open(%q), CLONE_NEWPID)   # in the copy: its children's PID namespace; it stays in this one, and sees the first process's PID as the host does", pidPath)
	}
	n.Call("prctl(PR_SET_DUMPABLE, 0)   # in the copy: no container process may read the first process's memory before its execve")
	n.Call("clone(CLONE_PARENT | %s)   # in the copy: the first process, its new namespaces owned by the joined user namespace, its parent this runtime", cloneNames(s.cloneFlags))
	n.Call("setresgid(0, 0, 0), setresuid(0, 0, 0)   # in the first process: root of that namespace, before its execve")
	syscall.ForkLock.Lock()
	copyPid, errno := rawSpawnInUserns(s)
	syscall.ForkLock.Unlock()
	runtime.KeepAlive(s)
	runtime.KeepAlive(argv)
	runtime.KeepAlive(envp)
	unix.Close(errPipe[1])
	unix.Close(pidPipe[1])
	if errno != 0 {
		return fmt.Errorf("fork: %v", errno)
	}
	var ws unix.WaitStatus
	_, _ = unix.Wait4(copyPid, &ws, 0, nil)
	var pid int64
	if k, _ := unix.Read(pidPipe[0], (*[8]byte)(unsafe.Pointer(&pid))[:]); k != 8 {
		pid = 0
	}
	var report childFailure
	if k, _ := unix.Read(errPipe[0], (*[8]byte)(unsafe.Pointer(&report))[:]); k == 8 {
		if pid > 0 {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(int(pid), &ws, 0, nil)
		}
		return fmt.Errorf("%s: %v", spawnSteps[report.step], syscall.Errno(report.errno))
	}
	if pid <= 0 {
		return errors.New("the first process was not started")
	}
	if cmd.Process, err = os.FindProcess(int(pid)); err != nil {
		return err
	}
	return nil
}

// asFile is the *os.File behind one of cmd's stdio (nil: none).
func asFile(v any) *os.File {
	f, _ := v.(*os.File)
	return f
}

// The raw code's steps, as a failure names them.
const (
	spawnExec uint32 = iota
	spawnSetns
	spawnSetnsPid
	spawnClone
	spawnSetgroups
	spawnSetgid
	spawnSetuid
	spawnDup
)

var spawnSteps = [...]string{spawnExec: "execve", spawnSetns: "setns(CLONE_NEWUSER)", spawnSetnsPid: "setns(CLONE_NEWPID)", spawnClone: "clone",
	spawnSetgroups: "setgroups", spawnSetgid: "setresgid", spawnSetuid: "setresuid", spawnDup: "dup3"}

// rawSpawnInUserns forks the copy of step 1; the copy joins, clones the
// first process and exits. Only raw system calls from the fork on: see
// rawForkExec.
//
//go:nosplit
//go:norace
func rawSpawnInUserns(s *joinedSpawn) (int, syscall.Errno) {
	var old uint64
	r, e := rawFork(&old)
	if r != 0 || e != 0 {
		return int(r), e
	}
	// The copy, its signals still blocked: the first process unblocks
	// them before its execve.
	step := spawnSetns
	_, _, e = syscall.RawSyscall(unix.SYS_SETNS, s.userns, unix.CLONE_NEWUSER, 0)
	if e == 0 && s.pidns != 0 {
		step = spawnSetnsPid
		_, _, e = syscall.RawSyscall(unix.SYS_SETNS, s.pidns, unix.CLONE_NEWPID, 0)
	}
	if e == 0 {
		// Not dumpable: the first process is a copy of this runtime's
		// memory until its execve, and in a PID namespace joined it may be
		// in sight of the container's processes meanwhile.
		syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 0, 0, 0, 0, 0)
		step = spawnClone
		r, _, e = syscall.RawSyscall6(unix.SYS_CLONE, s.cloneFlags|unix.CLONE_PARENT|uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
		if e == 0 && r == 0 {
			rawFirstProcess(s, &old) // never returns
		}
		if e == 0 {
			pid := int64(r)
			syscall.RawSyscall(unix.SYS_WRITE, s.pidFd, uintptr(unsafe.Pointer(&pid)), 8)
			syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
		}
	}
	report := childFailure{errno: uint32(e), step: step}
	syscall.RawSyscall(unix.SYS_WRITE, s.errFd, uintptr(unsafe.Pointer(&report)), 8)
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 127, 0, 0)
	}
}

// rawFirstProcess is step 4: root of the joined namespace, the
// descriptors in place, the signal mask back, execve.
//
//go:nosplit
//go:norace
func rawFirstProcess(s *joinedSpawn, mask *uint64) {
	step, e := spawnSetgroups, syscall.Errno(0)
	if s.setgroups {
		_, _, e = syscall.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0)
	}
	if e == 0 {
		step = spawnSetgid
		_, _, e = syscall.RawSyscall(unix.SYS_SETRESGID, 0, 0, 0)
	}
	if e == 0 {
		step = spawnSetuid
		_, _, e = syscall.RawSyscall(unix.SYS_SETRESUID, 0, 0, 0)
	}
	if e == 0 && s.pdeathsig != 0 {
		syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, s.pdeathsig, 0)
	}
	for i := uintptr(0); e == 0 && i < s.nfds && i < maxSpawnFds; i++ {
		step = spawnDup
		if fd := s.fds[i]; fd >= 0 {
			_, _, e = syscall.RawSyscall(unix.SYS_DUP3, uintptr(fd), i, 0)
		} else {
			syscall.RawSyscall(unix.SYS_CLOSE, i, 0, 0)
		}
	}
	if e == 0 {
		syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(mask)), 0, 8, 0, 0)
		step = spawnExec
		_, _, e = syscall.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(s.path)), uintptr(unsafe.Pointer(s.argv)), uintptr(unsafe.Pointer(s.envp)))
	}
	report := childFailure{errno: uint32(e), step: step}
	syscall.RawSyscall(unix.SYS_WRITE, s.errFd, uintptr(unsafe.Pointer(&report)), 8)
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 127, 0, 0)
	}
}

// cloneNames names the CLONE_NEW* flags of f.
func cloneNames(f uintptr) string {
	var names []string
	for _, k := range []struct {
		flag uintptr
		name string
	}{{unix.CLONE_NEWPID, "CLONE_NEWPID"}, {unix.CLONE_NEWNS, "CLONE_NEWNS"}, {unix.CLONE_NEWUTS, "CLONE_NEWUTS"},
		{unix.CLONE_NEWIPC, "CLONE_NEWIPC"}, {unix.CLONE_NEWNET, "CLONE_NEWNET"}} {
		if f&k.flag != 0 {
			names = append(names, k.name)
		}
	}
	if len(names) == 0 {
		return "SIGCHLD"
	}
	return strings.Join(names, " | ")
}

// procUsernsPath matches a user namespace named through /proc: its maps
// are that process's.
var procUsernsPath = regexp.MustCompile(`^/proc/([0-9]+)/ns/user$`)

// joinedMaps reads the maps of the user namespace at path (a
// /proc/PID/ns/user), for the runtime's own decisions (who owns the spec
// the first process reads). Elsewhere (a bind-mounted namespace file) the
// config must give them.
func joinedMaps(path string) (uids, gids []IDMap, err error) {
	m := procUsernsPath.FindStringSubmatch(path)
	if m == nil {
		return nil, nil, fmt.Errorf("the maps of the user namespace %s cannot be read: give linux.uidMappings and gidMappings, or a /proc/PID/ns/user path", path)
	}
	if uids, err = readIDMap("/proc/" + m[1] + "/uid_map"); err == nil {
		gids, err = readIDMap("/proc/" + m[1] + "/gid_map")
	}
	return uids, gids, err
}

// setgroupsDeniedIn: a namespace made without CAP_SETGID outside (a
// rootless one) says "deny" in setgroups, and setgroups() fails there.
func setgroupsDeniedIn(path string) bool {
	m := procUsernsPath.FindStringSubmatch(path)
	if m == nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + m[1] + "/setgroups")
	return err == nil && strings.TrimSpace(string(b)) == "deny"
}
