package main

// Terminals: `run -it`, `exec -it`, and the OCI console socket through
// which `docker run -it` reaches a runtime.
//
// A pty is a pair of character devices joined by the kernel's line
// discipline: the master, held by whoever plays the terminal (xterm, sshd,
// here the runtime), and the slave, /dev/pts/N, which the program sees as
// its terminal. The line discipline echoes, edits lines, and turns keys
// into signals: Ctrl-C typed on the master becomes SIGINT for the slave's
// foreground process group.
//
// The pair is made in the container's own devpts (mounted `newinstance` in
// its /dev/pts), by a process already inside: the container's first
// process, or exec's helper. That process keeps the slave (it becomes the
// command's stdin, stdout, stderr and controlling terminal) and sends the
// master over a unix socket as SCM_RIGHTS, as runc does, to whoever plays
// the terminal: this runtime for -t, or the caller of `create` or `exec`
// with --console-socket (containerd's shim, for `docker run -it`). The data
// sent with it is the pty's name (runc sends its master's; receivers
// ignore it). The socket is FD_CLOEXEC: it closes when the command execs,
// and the runtime takes that as the moment the user's keys become the
// container's.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/stage"
	"github.com/container-internals/workshop/internal/trace"
)

// consoleFd is where the container's first process finds the console
// socket (with a terminal): after the link's pipes, 3 and 4. execConsoleFd
// is exec's helper's (it has no link).
const (
	consoleFd     = 5
	execConsoleFd = 3
)

// The kernel's numbers for devpts's multiplexer, /dev/pts/ptmx.
const (
	ptmxMajor = 5
	ptmxMinor = 2
)

// ---- Inside the container: the process that makes the pair ----

// openTerminal (the first process's step, after the hardening): no host
// descriptor past the exec, a session of the container's own, and, with a
// terminal, the pty. Always a new session: otherwise the user's terminal
// stays the controlling terminal of every process in the container, and
// one ioctl(TIOCSTI) there types a command into the user's shell, to run
// on the host once the container ends. Outside of its session the kernel
// refuses that without CAP_SYS_ADMIN.
func (c *initProcess) openTerminal() {
	if err := closeHostFdsOnExec(c.n.Trace()); err != nil {
		initFail("%v", err)
	}
	c.n.Call("setsid()   # a session of its own: the user's terminal is not its controlling terminal")
	if _, err := unix.Setsid(); err != nil {
		initFail("setsid: %v", err)
	}
	if !c.spec.Terminal {
		return
	}
	c.n.Step("A terminal of the container's own: a pty in its devpts; the master goes over the console socket")
	if err := closeOnExec(consoleFd); err != nil {
		initFail("the console socket: %v", err)
	}
	master, slave, name, err := newPty(c.n.Trace(), c.spec.ConsoleSize)
	if err != nil {
		initFail("%v", err)
	}
	if c.spec.UID != 0 || c.spec.GID != 0 {
		// Made by root: the configured user gets it, as runc does.
		_ = unix.Fchown(slave, c.spec.UID, c.spec.GID)
	}
	if c.spec.mountMode() == mountsNew {
		if err := bindConsole(c.n.Trace(), slave, name); err != nil {
			initFail("%v", err)
		}
	}
	if err := sendConsole(c.n.Trace(), consoleFd, master, name); err != nil {
		initFail("%v", err)
	}
	if err := takeTerminal(c.n.Trace(), slave, name); err != nil {
		initFail("%v", err)
	}
}

// closeHostFdsOnExec marks every descriptor past stderr close-on-exec.
// Go opens its own files O_CLOEXEC, but a descriptor the runtime inherited
// without the flag (from the shell that started it, or a caller's leaked
// pipe) would pass, through every exec, into the container's command: a
// handle on a host file or pipe, inside. runc does the same before its
// exec. (Linux 5.11; before, each descriptor in /proc/self/fd.)
func closeHostFdsOnExec(hook trace.Hook) error {
	hook.Call("", "close_range(3, ~0U, CLOSE_RANGE_CLOEXEC)   # no descriptor of the host's passes the exec")
	err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err != unix.ENOSYS && err != unix.EINVAL {
		return err
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			_ = closeOnExec(fd)
		}
	}
	return nil
}

// newPty makes a pty in the devpts at /dev/pts as the calling thread sees
// it: the container's. The path is the container's, so what is opened
// there is checked to be devpts's ptmx (before an `exec` a container could
// have put a FIFO, a link or another device there) as runc does. The slave
// comes from TIOCGPTPEER: no path to look up for it either. Both are
// O_CLOEXEC: the command gets the slave as its 0, 1 and 2 only.
func newPty(hook trace.Hook, size *specs.Box) (master, slave int, name string, err error) {
	hook.Call("the multiplexer of the container's own devpts: each open makes a new pair",
		`open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)`)
	master, err = unix.Open("/dev/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, -1, "", fmt.Errorf("opening /dev/pts/ptmx: %v", err)
	}
	fail := func(format string, args ...any) (int, int, string, error) {
		unix.Close(master)
		return -1, -1, "", fmt.Errorf(format, args...)
	}
	var st unix.Stat_t
	var fs unix.Statfs_t
	if unix.Fstat(master, &st) != nil || unix.Fstatfs(master, &fs) != nil || fs.Type != unix.DEVPTS_SUPER_MAGIC ||
		st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(ptmxMajor, ptmxMinor) {
		return fail("/dev/pts/ptmx is not the ptmx of a devpts filesystem")
	}
	// O_NONBLOCK was for the open only (a FIFO would have blocked it): the
	// receiver gets a master as any terminal program expects it.
	if err := unix.SetNonblock(master, false); err != nil {
		return fail("%v", err)
	}
	hook.Call("", "ioctl(ptmx, TIOCSPTLCK, 0)   # unlock the new pair")
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fail("unlocking the pty: %v", err)
	}
	num, err := unix.IoctlGetUint32(master, unix.TIOCGPTN)
	if err != nil {
		return fail("the pty's number: %v", err)
	}
	name = fmt.Sprintf("/dev/pts/%d", num)
	hook.Call("the other end, without a path to look up", "ioctl(ptmx, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)   # %s", name)
	fd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		return fail("opening %s: %v", name, errno)
	}
	if size != nil && size.Height > 0 && size.Width > 0 {
		hook.Call("", "ioctl(ptmx, TIOCSWINSZ, {rows %d, cols %d})   # the size of the caller's terminal", size.Height, size.Width)
		ws := &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}
		if err := unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, ws); err != nil {
			unix.Close(int(fd))
			return fail("setting the terminal's size: %v", err)
		}
	}
	return master, int(fd), name, nil
}

// bindConsole makes the container's /dev/console its terminal, as runc
// does for process.terminal: programs that write to the console (an init
// system, a logger) reach the user. The slave is bound from its
// descriptor (open_tree), not its path: nothing the container put under
// /dev/pts is followed, and no /proc is needed. A /dev that cannot take the file (read-only) keeps no console.
func bindConsole(hook trace.Hook, slave int, name string) error {
	hook.Call("/dev/console is the container's terminal, as runc makes it", `open("/dev/console", O_CREAT | O_NOFOLLOW, 0600)`)
	fd, err := unix.Open("/dev/console", unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o600)
	if errors.Is(err, unix.EROFS) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("/dev/console: %v", err)
	}
	unix.Close(fd)
	hook.Call("", "open_tree(slave, \"\", OPEN_TREE_CLONE | AT_EMPTY_PATH)   # a bind mount of %s, not attached yet", name)
	tree, err := unix.OpenTree(slave, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("binding %s on /dev/console: %v", name, err)
	}
	defer unix.Close(tree)
	hook.Call("", `move_mount(tree, "", AT_FDCWD, "/dev/console", MOVE_MOUNT_F_EMPTY_PATH)`)
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, "/dev/console", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("binding %s on /dev/console: %v", name, err)
	}
	return nil
}

// sendConsole hands the master to whoever plays the terminal, and closes
// this process's copy: from now on only the receiver holds it.
func sendConsole(hook trace.Hook, sock, master int, name string) error {
	hook.Call("", "sendmsg(console socket, %q, SCM_RIGHTS [ptmx])   # the master, to whoever plays the terminal", name)
	err := unix.Sendmsg(sock, []byte(name), unix.UnixRights(master), nil, 0)
	unix.Close(master)
	if err != nil {
		return fmt.Errorf("sending the terminal over the console socket: %v", err)
	}
	return nil
}

// takeTerminal makes slave the controlling terminal of this process (a
// session leader, after setsid) and its stdin, stdout and stderr, for the
// command it execs next: Ctrl-C and job control now work inside.
func takeTerminal(hook trace.Hook, slave int, name string) error {
	hook.Call("the controlling terminal of this session: Ctrl-C typed there signals its foreground group", "ioctl(%s, TIOCSCTTY, 0)", name)
	if err := unix.IoctlSetInt(slave, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("TIOCSCTTY %s: %v", name, err)
	}
	hook.Call("", "dup3(%s, 0 | 1 | 2)   # stdin, stdout and stderr", name)
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(slave, i, 0); err != nil {
			return fmt.Errorf("dup3 %s: %v", name, err)
		}
	}
	return unix.Close(slave)
}

// closeOnExec marks the console socket to close at the command's execve,
// which tells the runtime that the command runs.
func closeOnExec(fd int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
	return err
}

// ---- On the host: the runtime plays the terminal ----

// parseTerminal checks run's -i and -t, as Docker does.
func parseTerminal(o *runOptions) error {
	if o.detach && (o.tty || o.interactive) {
		return stage.Fail("-i and -t are for a run in the foreground: drop -d (a detached container's output goes to its log: see logs)")
	}
	if o.tty && o.interactive && userTerminal() != 0 {
		return stage.Fail("the input device is not a TTY: -it needs a terminal on stdin; to pipe input in, use -i alone")
	}
	if o.tty {
		o.consoleSize = terminalSize()
	}
	return nil
}

// runStdio is what the container's first process gets as its stdin,
// stdout and stderr, and with -t the terminal that relays its pty. As in
// Docker, stdin is attached only with -i; and with -t the user's terminal
// is never handed in at all (the first process replaces its 0, 1 and 2
// with the pty before the command runs).
func (rt *Runtime) runStdio(ctr *Container, o *runOptions) ([]*os.File, *terminal, error) {
	stdio := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	if !o.interactive || o.tty {
		null, err := os.Open(os.DevNull)
		if err != nil {
			return nil, nil, err
		}
		stdio[0] = null
	}
	if !o.tty {
		return stdio, nil, nil
	}
	t, err := newTerminal(rt.n.Trace(), o.interactive)
	if err != nil {
		return nil, nil, stage.Fail("%v", err)
	}
	ctr.console = t.peer
	return stdio, t, nil
}

// terminal is the runtime's side of -t: the pty's master, relayed to and
// from the user's terminal (the runtime's stdin and stdout).
type terminal struct {
	hook        trace.Hook
	sock, peer  *os.File // peer goes to the process that makes the pair
	interactive bool     // -i: the user's keys go to the container
	user        int      // the user's terminal (fd 0 or 1), or -1

	mu       sync.Mutex
	saved    *unix.Termios // the user's terminal as it was, to put back
	master   *os.File
	finished bool
	output   chan struct{} // closed when the container's output is all copied
	ready    chan struct{} // closed once the relay is set up (or never will be)
	winch    chan os.Signal
}

// newTerminal makes the socket pair: peer, for the process that makes the
// pty (its console socket), and ours, where the master arrives.
func newTerminal(hook trace.Hook, interactive bool) (*terminal, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %v", err)
	}
	t := &terminal{hook: hook, sock: os.NewFile(uintptr(fds[0]), "console"), peer: os.NewFile(uintptr(fds[1]), "console-peer"),
		interactive: interactive, user: userTerminal(), output: make(chan struct{}), ready: make(chan struct{})}
	go t.relay()
	return t, nil
}

// userTerminal is the fd of the user's terminal: stdin, else stdout.
func userTerminal() int {
	for _, fd := range []int{0, 1} {
		if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
			return fd
		}
	}
	return -1
}

// terminalSize is the user's terminal's size, for process.consoleSize (nil
// without a terminal).
func terminalSize() *specs.Box {
	fd := userTerminal()
	if fd < 0 {
		return nil
	}
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 || ws.Col == 0 {
		return nil
	}
	return &specs.Box{Height: uint(ws.Row), Width: uint(ws.Col)}
}

// relay receives the master, copies the container's output to the user's
// stdout at once, and, once the command runs (the socket closed at its
// execve), puts the user's terminal in raw mode and copies the keys in.
func (t *terminal) relay() {
	defer close(t.ready)
	master, err := recvConsole(t.sock)
	if err != nil {
		close(t.output)
		return // the process ended first: it said why on stderr
	}
	t.mu.Lock()
	t.master = master
	t.mu.Unlock()
	go func() {
		_, _ = io.Copy(os.Stdout, master) // ends with EIO once no process holds the slave
		close(t.output)
	}()
	_, _ = io.Copy(io.Discard, t.sock)
	t.sock.Close()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.finished || t.user < 0 {
		return
	}
	t.resize(true)
	if t.interactive {
		t.makeRaw()
		go func() { _, _ = io.Copy(master, os.Stdin) }()
	}
	t.winch = make(chan os.Signal, 1)
	signal.Notify(t.winch, unix.SIGWINCH)
	go func(ch chan os.Signal) {
		for range ch {
			t.mu.Lock()
			if !t.finished {
				t.resize(false) // not narrated: the screen is the container's now
			}
			t.mu.Unlock()
		}
	}(t.winch)
}

// recvConsole receives a master sent with sendConsole (or by runc's
// SendFd): one SCM_RIGHTS descriptor, the pty's name as data.
func recvConsole(sock *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	var err error
	for {
		n, oobn, _, _, err = unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("no terminal came over the console socket")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("no terminal came over the console socket")
	}
	// Non-blocking, so that Go's poller holds it: a read deadline can then
	// end the copy of the output (see finish).
	_ = unix.SetNonblock(fds[0], true)
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}

// resize copies the user's terminal's size to the pty: the kernel sends
// SIGWINCH to the container's foreground group when it changes.
func (t *terminal) resize(narrate bool) {
	ws, err := unix.IoctlGetWinsize(t.user, unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 {
		return
	}
	if narrate {
		t.hook.Call("", "ioctl(ptmx, TIOCSWINSZ, {rows %d, cols %d})   # the user's terminal's size, on the container's pty (again at each SIGWINCH)", ws.Row, ws.Col)
	}
	_ = unix.IoctlSetWinsize(int(t.master.Fd()), unix.TIOCSWINSZ, ws)
}

// makeRaw turns off everything the user's terminal's own line discipline
// would do (the container's pty does it now): no echo, no line editing, no
// Ctrl-C turned into a signal for the runtime, no output translation. It
// is x/term's MakeRaw, the same dozen flags, written out.
func (t *terminal) makeRaw() {
	old, err := unix.IoctlGetTermios(t.user, unix.TCGETS)
	if err != nil {
		return
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	t.hook.Call("", "ioctl(%d, TCSETS, raw)   # the user's terminal: every key goes to the container's pty as typed", t.user)
	if err := unix.IoctlSetTermios(t.user, unix.TCSETS, &raw); err == nil {
		t.saved = old
	}
}

// finish ends the relay once the container's process has exited: its
// last output, then the user's terminal put back as it was. Every exit of
// run and exec goes through it (a deferred call too; a second is a no-op).
func (t *terminal) finish() {
	if t == nil {
		return
	}
	select {
	case <-t.ready:
	case <-time.After(2 * time.Second):
	}
	t.mu.Lock()
	already := t.finished
	t.finished = true
	master := t.master
	t.mu.Unlock()
	if already {
		return
	}
	if master != nil {
		// All of it, unless a process still holds the slave (one started
		// in the background from an exec'd shell): then what is there.
		select {
		case <-t.output:
		case <-time.After(time.Second):
			_ = master.SetReadDeadline(time.Now())
			<-t.output
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.winch != nil {
		signal.Stop(t.winch)
		close(t.winch)
	}
	if t.saved != nil {
		_ = unix.IoctlSetTermios(t.user, unix.TCSETS, t.saved)
		t.saved = nil
		// Said once made: in raw mode the line would not start at the margin.
		t.hook.Call("", "ioctl(%d, TCSETS, saved)   # the user's terminal, as it was", t.user)
	}
	if master != nil {
		master.Close()
	}
}

// ---- exec -t, and the OCI callers' console socket ----

// checkExecTerminal checks exec's -i, -t, --detach and --console-socket
// together, as runc does.
func checkExecTerminal(c *cli.Context, tty bool) error {
	socket := c.IsSet("console-socket")
	switch {
	case socket && !tty:
		return stage.Fail("--console-socket is for a terminal: add -t (or process.terminal: true in --process)")
	case tty && c.Bool("detach") && !socket:
		return stage.Fail("a detached exec with a terminal needs --console-socket PATH: something must hold the pty's master")
	case tty && !socket && c.Bool("interactive") && userTerminal() != 0:
		return stage.Fail("the input device is not a TTY: -it needs a terminal on stdin; to pipe input in, use -i alone")
	}
	return nil
}

// execTerminal is the helper's stdin, and with a terminal the console
// socket it sends the master on (its fd 3): ours, relayed by the
// terminal returned, or the OCI caller's.
func execTerminal(c *cli.Context, tty bool, hook trace.Hook) (stdin, console *os.File, t *terminal, err error) {
	if !tty {
		if c.Bool("interactive") || c.IsSet("process") {
			return os.Stdin, nil, nil, nil
		}
		return nil, nil, nil, nil // /dev/null
	}
	if p := c.String("console-socket"); p != "" {
		console, err := dialConsoleSocket(p)
		if err != nil {
			return nil, nil, nil, stage.Fail("%v", err)
		}
		return nil, console, nil, nil
	}
	if t, err = newTerminal(hook, c.Bool("interactive")); err != nil {
		return nil, nil, nil, stage.Fail("%v", err)
	}
	return nil, t.peer, t, nil
}

// execSpecWithSize is a copy of the container's spec for one `exec -t`,
// with the user's terminal's size.
func execSpecWithSize(dir, specPath string) (string, error) {
	spec, err := readSpec(specPath)
	if err != nil {
		return "", stage.Fail("%v", err)
	}
	spec.ConsoleSize = terminalSize()
	f, err := os.CreateTemp(dir, "exec-*.json")
	if err != nil {
		return "", err
	}
	f.Close()
	if err := writeSpec(f.Name(), spec); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// closeHostFds (exec's helper's step): no descriptor the helper inherited
// passes into the command (closeHostFdsOnExec says why). The flag is
// copied by fork(2): it closes them at the command's execve.
func (h *execHelper) closeHostFds() error {
	if err := closeHostFdsOnExec(h.n.Trace()); err != nil {
		return execFailure("%v", err)
	}
	return nil
}

// openTerminal (exec's helper's step, after the container's privileges
// and seccomp filter are on): the pty, made in the container's devpts
// with the container's credentials; the master goes over the console
// socket, the slave to the command (fork.go makes it its controlling
// terminal). The socket closes at the command's execve.
func (h *execHelper) openTerminal() error {
	if !h.tty {
		return nil
	}
	if err := closeOnExec(execConsoleFd); err != nil {
		return execFailure("the console socket: %v", err)
	}
	master, slave, name, err := newPty(h.n.Trace(), h.spec.ConsoleSize)
	if err != nil {
		return execFailure("%v", err)
	}
	if err := sendConsole(h.n.Trace(), execConsoleFd, master, name); err != nil {
		unix.Close(slave)
		return execFailure("%v", err)
	}
	h.slave = slave
	return nil
}

// ociConsole checks process.terminal against create's --console-socket, as
// runc does, and connects to the socket. `create` returns while the
// container lives on, so the master must go to its caller.
func ociConsole(spec *Spec, path string) (*os.File, error) {
	switch {
	case spec.Terminal && path == "":
		return nil, stage.Fail("process.terminal is true: give --console-socket PATH, a unix socket to send the pty's master to (create returns; the caller holds the terminal)")
	case !spec.Terminal && path != "":
		return nil, stage.Fail("--console-socket is for a terminal: set process.terminal to true in config.json, or leave the flag out")
	case path == "":
		return nil, nil
	}
	f, err := dialConsoleSocket(path)
	if err != nil {
		return nil, stage.Fail("%v", err)
	}
	return f, nil
}

// dialConsoleSocket connects to an OCI caller's --console-socket: the
// process that makes the pty sends the master on this connection.
func dialConsoleSocket(path string) (*os.File, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("--console-socket %s: %v", path, err)
	}
	defer conn.Close()
	f, err := conn.(*net.UnixConn).File() // a blocking copy, for the child
	if err != nil {
		return nil, fmt.Errorf("--console-socket %s: %v", path, err)
	}
	return f, nil
}
