package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/testkit"
)

// userTTY is the test playing the user's terminal: a pty of the host's,
// whose slave is the runtime's stdin, stdout, stderr and controlling
// terminal, as a terminal emulator's shell would have it.
type userTTY struct {
	t      *testing.T
	master *os.File
	slave  *os.File
	mu     sync.Mutex
	out    bytes.Buffer
	cmd    *exec.Cmd
	extra  []*os.File // more descriptors for the runtime, from 3 on
	env    []string   // more of its environment
}

func newUserTTY(t *testing.T, rows, cols uint16) *userTTY {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(m, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	u := &userTTY{t: t, master: os.NewFile(uintptr(m), "ptmx"), slave: s}
	u.resize(rows, cols)
	t.Cleanup(func() { u.master.Close(); u.slave.Close() })
	return u
}

func (u *userTTY) resize(rows, cols uint16) {
	if err := unix.IoctlSetWinsize(int(u.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		u.t.Fatal(err)
	}
}

func (u *userTTY) termios() unix.Termios {
	tio, err := unix.IoctlGetTermios(int(u.slave.Fd()), unix.TCGETS)
	if err != nil {
		u.t.Fatal(err)
	}
	return *tio
}

// start runs the runtime (shared --root) on the terminal.
func (u *userTTY) start(args ...string) {
	u.t.Helper()
	bin := testkit.Stage(u.t, "06-full-container")
	u.startProgram(bin, append([]string{"--root", sharedRoot(u.t)}, args...)...)
}

// startProgram runs a program (the runtime, or the docker client) on the
// terminal, with u.env added to its environment.
func (u *userTTY) startProgram(path string, args ...string) {
	u.t.Helper()
	u.cmd = exec.Command(path, args...)
	u.cmd.Stdin, u.cmd.Stdout, u.cmd.Stderr = u.slave, u.slave, u.slave
	u.cmd.Env = append(append(os.Environ(), "NO_COLOR=1", "TERM=xterm"), u.env...)
	u.cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	u.cmd.ExtraFiles = u.extra
	if err := u.cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	u.follow()
	u.t.Cleanup(func() {
		if u.cmd.ProcessState == nil {
			_ = u.cmd.Process.Kill()
			_ = u.cmd.Wait()
		}
	})
}

// follow keeps what the terminal shows.
func (u *userTTY) follow() {
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := u.master.Read(buf)
			u.mu.Lock()
			u.out.Write(buf[:n])
			u.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
}

func (u *userTTY) output() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.out.String()
}

// expect waits until what the terminal shows matches re (after mark: the
// length of the output when the command was typed).
func (u *userTTY) expect(mark int, re string) {
	u.t.Helper()
	r := regexp.MustCompile(re)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if out := u.output(); len(out) >= mark && r.MatchString(out[mark:]) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	u.t.Fatalf("the terminal never showed %q; it shows:\n%q", re, u.output())
}

// typ types keys and returns the mark to expect from.
func (u *userTTY) typ(keys string) int {
	mark := len(u.output())
	if _, err := u.master.Write([]byte(keys)); err != nil {
		u.t.Fatal(err)
	}
	return mark
}

// wait returns the runtime's exit status.
func (u *userTTY) wait() int {
	u.t.Helper()
	done := make(chan error, 1)
	go func() { done <- u.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		u.t.Fatalf("the runtime did not end; the terminal shows:\n%q", u.output())
	}
	return u.cmd.ProcessState.ExitCode()
}

// waitForCommand waits until a process runs with that command line (its
// arguments joined by NUL), and its shell has made it the terminal's
// foreground job: a key typed before would be read as the shell's input.
func waitForCommand(t *testing.T, cmdline string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			if b, _ := os.ReadFile(p); strings.TrimRight(string(b), "\x00") == cmdline {
				time.Sleep(100 * time.Millisecond)
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%q never ran", cmdline)
}

// prompt is busybox sh's (with TERM=xterm it asks where the cursor is).
const prompt = `# (\x1b\[6n)?$`

func raw(tio unix.Termios) bool {
	return tio.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) == 0 && tio.Oflag&unix.OPOST == 0
}

// The article's first command, `docker run -it busybox /bin/sh`: the shell
// has a terminal of the container's own, its size follows the user's,
// Ctrl-C typed reaches the foreground job (and not the runtime), and the
// user's terminal is as it was once the shell exits, with its status.
func TestRunItGivesTheShellATerminalOfTheContainersOwn(t *testing.T) {
	setup(t)
	u := newUserTTY(t, 30, 100)
	before := u.termios()
	u.start("run", "-it", "--net", "none", "--", "sh")
	u.expect(0, prompt)
	if !raw(u.termios()) {
		t.Errorf("while the shell runs, the user's terminal is not in raw mode: %+v", u.termios())
	}
	u.expect(u.typ("tty\r"), `(?m)^/dev/pts/0\r$`)
	u.expect(u.typ("ls /dev/pts\r"), `(?m)^0\s+ptmx\r$`) // its own devpts: no host terminal in it
	u.expect(u.typ("stat -c %t:%T /dev/console\r"), `(?m)^88:0\r$`) // /dev/console is that terminal (136:0), as runc's
	u.expect(u.typ("stty size\r"), `(?m)^30 100\r$`)
	u.resize(40, 120) // the kernel sends the runtime SIGWINCH
	time.Sleep(200 * time.Millisecond)
	u.expect(u.typ("stty size\r"), `(?m)^40 120\r$`)
	u.typ("sleep 101\r")
	waitForCommand(t, "sleep\x00101")
	m := u.typ("\x03") // Ctrl-C, through the pty: SIGINT for the foreground job
	u.expect(m, `\^C\r\n.*# (\x1b\[6n)?$`)
	u.expect(u.typ("echo the shell lives\r"), `(?m)^the shell lives\r$`)
	u.typ("exit 3\r")
	if code := u.wait(); code != 3 {
		t.Errorf("exit 3 in the shell: the runtime exited %d\n%q", code, u.output())
	}
	if after := u.termios(); after != before {
		t.Errorf("the user's terminal was not restored:\nbefore %+v\nafter  %+v", before, after)
	}
	noContainersLeft(t)
}

// However the run ends, the user's terminal is put back: the container
// killed from outside, or the runtime told twice to stop (the first TERM
// goes to the shell, PID 1, which ignores it; the second is followed by a
// SIGKILL).
func TestTerminalIsRestoredWhenTheContainerIsKilled(t *testing.T) {
	setup(t)
	for _, how := range []string{"kill -9 its PID 1", "TERM the runtime twice"} {
		u := newUserTTY(t, 24, 80)
		before := u.termios()
		u.start("run", "-it", "--net", "none", "--name", "killed-tty", "--", "sh")
		u.expect(0, prompt)
		u.expect(u.typ("tty\r"), `(?m)^/dev/pts/0\r$`) // the command runs, the terminal is raw
		if !raw(u.termios()) {
			t.Errorf("%s: the user's terminal is not in raw mode while the shell runs", how)
		}
		if how == "kill -9 its PID 1" {
			var st State
			insp := ctr(t, opts{}, "inspect", "killed-tty")
			if err := json.Unmarshal([]byte(insp.Stdout), &st); err != nil || st.Pid <= 0 {
				t.Fatalf("inspect: %v\n%s", err, insp)
			}
			if err := unix.Kill(st.Pid, unix.SIGKILL); err != nil {
				t.Fatal(err)
			}
		} else {
			_ = u.cmd.Process.Signal(unix.SIGTERM)
			time.Sleep(200 * time.Millisecond)
			_ = u.cmd.Process.Signal(unix.SIGTERM)
		}
		if code := u.wait(); code != 137 {
			t.Errorf("%s: want 137, got %d", how, code)
		}
		if after := u.termios(); after != before {
			t.Errorf("%s: the user's terminal was not restored:\nbefore %+v\nafter  %+v", how, before, after)
		}
	}
	noContainersLeft(t)
}

// `exec -it` makes a terminal in the running container's devpts, not in
// the host's.
func TestExecItGetsATerminalInTheContainersDevpts(t *testing.T) {
	setup(t)
	detached(t, "exec-tty", "--net", "none", "--", "sleep", "1000")
	u := newUserTTY(t, 33, 99)
	before := u.termios()
	u.start("exec", "-it", "exec-tty", "--", "sh")
	u.expect(0, prompt)
	u.expect(u.typ("tty\r"), `(?m)^/dev/pts/0\r$`)
	u.expect(u.typ("stty size\r"), `(?m)^33 99\r$`)
	u.typ("sleep 102\r")
	waitForCommand(t, "sleep\x00102")
	u.expect(u.typ("\x03"), `\^C\r\n.*# (\x1b\[6n)?$`)
	u.typ("exit 3\r")
	if code := u.wait(); code != 3 {
		t.Errorf("exit 3 in the shell: exec exited %d\n%q", code, u.output())
	}
	if after := u.termios(); after != before {
		t.Errorf("the user's terminal was not restored:\nbefore %+v\nafter  %+v", before, after)
	}
}

// Without -t, run from a terminal, the container's processes are in a
// session of their own: the user's terminal is not their controlling
// terminal (field 7 of /proc/PID/stat, tty_nr, is 0), so TIOCSTI cannot
// type into the user's shell. Without -i, stdin is /dev/null; and no
// descriptor the runtime inherited reaches the command.
func TestWithoutTTheUsersTerminalIsOutOfReach(t *testing.T) {
	setup(t)
	detached(t, "no-tty", "--net", "none", "--", "sleep", "1000")
	for _, args := range [][]string{
		{"run", "--net", "none", "--"},
		{"exec", "no-tty", "--"},
	} {
		u := newUserTTY(t, 24, 80)
		path := filepath.Join(t.TempDir(), "leaked-host-file")
		os.WriteFile(path, nil, 0o600)
		leaked, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		// The runtime starts with a host file open as its fd 20, not
		// close-on-exec, as a careless caller would leave it.
		u.extra = append(make([]*os.File, 17), leaked)
		u.start(append(args, "sh", "-c", `echo "tty_nr=$(cut -d' ' -f7 /proc/$$/stat) stdin=$(readlink /proc/$$/fd/0)"; ls -l /proc/$$/fd`)...)
		leaked.Close()
		if code := u.wait(); code != 0 {
			t.Errorf("%s: exit %d\n%q", args[0], code, u.output())
		}
		u.expect(0, `tty_nr=0 stdin=/dev/null\r\n`)
		if strings.Contains(u.output(), "leaked") {
			t.Errorf("%s: a descriptor the runtime inherited reached the command:\n%s", args[0], u.output())
		}
	}
}

// containerd's shim's side of `docker run -it` and `docker exec -it`: it
// listens on a unix socket, gives its path as --console-socket to create
// (process.terminal: true) and to exec --process --detach, receives each
// pty's master there, and is the terminal from then on.
func TestConsoleSocketHandsTheMasterToTheCaller(t *testing.T) {
	setup(t)
	dir := bundle(t, func(c *specs.Spec) {
		c.Process.Terminal = true
		c.Process.ConsoleSize = &specs.Box{Height: 25, Width: 90}
		c.Process.Args = []string{"sh"}
		c.Process.Env = append(c.Process.Env, "TERM=dumb")
	})
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	bin := testkit.Stage(t, "06-full-container")
	run := func(args ...string) (*userTTY, string) {
		t.Helper()
		got := make(chan *os.File, 1)
		name := make(chan string, 1)
		go func() {
			f, n := receiveMaster(t, l)
			got <- f
			name <- n
		}()
		cmd := exec.Command(bin, append([]string{"--root", sharedRoot(t)}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		select {
		case f := <-got:
			u := &userTTY{t: t, master: f}
			t.Cleanup(func() { f.Close() })
			u.follow()
			return u, <-name
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no master came over the console socket", strings.Join(args, " "))
		}
		return nil, ""
	}
	u, name := run("create", "--bundle", dir, "--console-socket", sock, "tty-oci")
	t.Cleanup(func() { ctr(t, opts{}, "delete", "--force", "tty-oci") })
	if name != "/dev/pts/0" {
		t.Errorf("the name sent with the master: %q, want /dev/pts/0", name)
	}
	if r := ctr(t, opts{}, "start", "tty-oci"); r.Code != 0 {
		t.Fatalf("start:\n%s", r)
	}
	u.expect(u.typ("tty; stty size\r"), `/dev/pts/0\r\n25 90\r\n`)

	process := filepath.Join(t.TempDir(), "process.json")
	b, _ := json.Marshal(specs.Process{Terminal: true, ConsoleSize: &specs.Box{Height: 10, Width: 50}, Args: []string{"sh"},
		Env: []string{"PATH=/bin", "TERM=dumb"}, Cwd: "/"})
	os.WriteFile(process, b, 0o644)
	pidFile := filepath.Join(t.TempDir(), "pid")
	e, name := run("exec", "--process", process, "--detach", "--pid-file", pidFile, "--console-socket", sock, "tty-oci")
	if name != "/dev/pts/1" {
		t.Errorf("the name sent with exec's master: %q, want /dev/pts/1", name)
	}
	e.expect(e.typ("tty; stty size\r"), `/dev/pts/1\r\n10 50\r\n`)
	e.typ("exit\r")
	u.typ("exit\r")
	waitStopped(t, "tty-oci")
	if r := ctr(t, opts{}, "delete", "tty-oci"); r.Code != 0 {
		t.Fatalf("delete:\n%s", r)
	}
	noContainersLeft(t)
}

// receiveMaster accepts one connection on the console socket and receives
// the master sent there (one SCM_RIGHTS descriptor, its name as data).
func receiveMaster(t *testing.T, l net.Listener) (*os.File, string) {
	conn, err := l.Accept()
	if err != nil {
		t.Error(err)
		return nil, ""
	}
	defer conn.Close()
	buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.(*net.UnixConn).ReadMsgUnix(buf, oob)
	if err != nil {
		t.Error(err)
		return nil, ""
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Errorf("want one control message, got %d (%v)", len(msgs), err)
		return nil, ""
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Errorf("want one descriptor, got %v (%v)", fds, err)
		return nil, ""
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), string(buf[:n])
}

// A terminal needs somewhere to send its master, and a socket is only for
// a terminal: both refused in one line, as runc does, with nothing left.
func TestConsoleSocketAndTerminalGoTogether(t *testing.T) {
	setup(t)
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	withTerminal := bundle(t, func(c *specs.Spec) { c.Process.Terminal = true })
	oneLine(t, ctr(t, opts{}, "create", "--bundle", withTerminal, "refused-tty"), "give --console-socket PATH")
	plain := bundle(t, nil)
	oneLine(t, ctr(t, opts{}, "create", "--bundle", plain, "--console-socket", sock, "refused-tty"), "--console-socket is for a terminal")
	detached(t, "exec-refused-tty", "--net", "none", "--", "sleep", "1000")
	oneLine(t, ctr(t, opts{}, "exec", "-t", "--detach", "exec-refused-tty", "--", "sh"), "needs --console-socket")
	oneLine(t, ctr(t, opts{}, "exec", "--console-socket", sock, "exec-refused-tty", "--", "sh"), "--console-socket is for a terminal")
	oneLine(t, ctr(t, opts{}, "run", "-it", "--", "sh"), "the input device is not a TTY")
	oneLine(t, ctr(t, opts{}, "run", "-d", "-t", "--", "sh"), "drop -d")
	ctr(t, opts{}, "rm", "-f", "exec-refused-tty")
	noContainersLeft(t)
}

// A TERM sent to `exec` reaches its command's whole process group: before,
// it reached the command alone, and `sh -c 'sleep 103; ...'` ended with its
// sleep still running in the container. And `run -i` passes stdin, `run`
// alone does not (Docker's rule).
func TestTermToExecEndsItsCommandAndItsChildren(t *testing.T) {
	setup(t)
	detached(t, "exec-term", "--net", "none", "--", "sleep", "1000")
	bin := testkit.Stage(t, "06-full-container")
	cmd := exec.Command(bin, "--root", sharedRoot(t), "exec", "exec-term", "--", "sh", "-c", "sleep 103; echo after")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForCommand(t, "sleep\x00103")
	if err := cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if status, _ := err.(*exec.ExitError); status == nil || status.ExitCode() != 128+int(unix.SIGTERM) {
		t.Errorf("exec, sent TERM: want status 143, got %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for left := true; left; {
		left = false
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			if b, _ := os.ReadFile(p); string(b) == "sleep\x00103\x00" {
				left = true
			}
		}
		if left && time.Now().After(deadline) {
			t.Fatal("the exec'd shell's sleep still runs in the container after exec was sent TERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := ctr(t, opts{Stdin: "typed\n"}, "run", "-i", "--net", "none", "--", "cat"); r.Stdout != "typed\n" {
		t.Errorf("run -i did not pass stdin:\n%s", r)
	}
	if r := ctr(t, opts{Stdin: "typed\n"}, "run", "--net", "none", "--", "cat"); r.Stdout != "" || r.Code != 0 {
		t.Errorf("run without -i passed stdin:\n%s", r)
	}
}

// tiocsti types a command into the terminal on its stdout, as an attacker
// inside a container would into the user's shell: it runs there once the
// container ends.
const tiocsti = `#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
int main(void) {
	const char *cmd = "INJECTED\n";
	int err = 0;
	for (const char *p = cmd; *p; p++)
		if (ioctl(1, TIOCSTI, p) < 0) { err = errno; break; }
	fprintf(stderr, "TIOCSTI: %s\n", err ? strerror(err) : "typed");
	return 0;
}
`

// The attack itself: from inside, without -t, TIOCSTI on the user's
// terminal (the command's stdout). With the user's terminal as the
// container's controlling terminal, the kernel accepts it from any
// process; in a session of its own, it wants CAP_SYS_ADMIN, which the
// container lacks. Nothing may reach the terminal's input queue.
func TestTIOCSTIFromInsideCannotTypeIntoTheUsersShell(t *testing.T) {
	setup(t)
	dir := filepath.Join(t.TempDir(), "prog")
	cprog(t, dir, "tiocsti", tiocsti)
	detached(t, "tiocsti", "--net", "none", "-v", dir+":/x:ro", "--", "sleep", "1000")
	for _, args := range [][]string{
		{"run", "--net", "none", "-v", dir + ":/x:ro", "--", "/x/tiocsti"},
		{"exec", "tiocsti", "--", "/x/tiocsti"},
	} {
		u := newUserTTY(t, 24, 80)
		u.start(args...)
		if code := u.wait(); code != 0 {
			t.Fatalf("%s: exit %d\n%q", args[0], code, u.output())
		}
		u.expect(0, `TIOCSTI: `)
		queued, err := unix.IoctlGetInt(int(u.slave.Fd()), unix.TIOCINQ)
		if err != nil {
			t.Fatal(err)
		}
		if queued != 0 || !strings.Contains(u.output(), "TIOCSTI: Operation not permitted") {
			t.Errorf("%s: the container typed into the user's terminal (%d bytes waiting for the user's shell):\n%q", args[0], queued, u.output())
		}
	}
}

// With --init and -t, the command leads the terminal's foreground group, as
// under tini: a typed Ctrl-C reaches it once (from the terminal), not a
// second time through PID 1, which passes on the signals it gets.
func TestInitWithATerminalGivesCtrlCOnce(t *testing.T) {
	setup(t)
	u := newUserTTY(t, 24, 80)
	u.start("run", "--init", "-it", "--net", "none", "--", "sh", "-c",
		`n=0; trap 'n=$((n+1)); echo got INT $n; [ $n = 2 ] && exit 3' INT; echo ready; while :; do sleep 0.1; done`)
	u.expect(0, `ready`)
	mark := u.typ("\x03")
	u.expect(mark, `got INT 1`)
	time.Sleep(500 * time.Millisecond)
	if strings.Contains(u.output()[mark:], "got INT 2") {
		t.Errorf("one Ctrl-C typed, the command got two SIGINTs:\n%q", u.output()[mark:])
	}
	u.typ("\x03")
	if code := u.wait(); code != 3 {
		t.Errorf("after the second Ctrl-C: exit status %d, want 3; the terminal shows:\n%q", code, u.output())
	}
}
