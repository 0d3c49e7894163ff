// Stage 01: the PID namespace.
// Chapter: docs/01-pid-namespace.md (the idea, real output, the calls, exercises).
//
// The article's experiment: `docker run -it busybox /bin/sh`, then `ps`
// inside shows two processes, and the shell is PID 1. On the host the same
// shell has an ordinary PID. The kernel plays a sleight of hand (障眼法):
// employee #100 is made to believe he is employee #1, and cannot see the 99
// before him; the host still knows him as #100.
//
// This program shows the trick from both sides: the child's PID inside and
// out, the NSpid line that holds both numbers for one process, and the
// namespace links under /proc/<pid>/ns.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/narrate"
	"github.com/container-internals/workshop/internal/preflight"
	"github.com/container-internals/workshop/internal/stage"
)

const name = "01-pid-namespace"

// childArg marks the re-executed copy of this program that runs inside the
// new namespaces.
const childArg = "__child__"

// The article types `ps` into the shell inside the container. `; exit` keeps
// sh alive as PID 1 while ps runs as its child (a shell given one command
// may replace itself with it), so ps shows both, as in the article.
var defaultCommand = []string{"sh", "-c", "ps -e -o pid,user,comm; exit"}

func main() {
	// Go cannot do what the article's C does, clone(fn, stack, CLONE_NEWPID,
	// ...): a Go program is many threads, and a clone()d copy of one thread
	// could not run Go code. So the program starts itself again, through
	// /proc/self/exe, with the clone flags set on that new process: the copy
	// notices childArg and plays the container's side.
	if len(os.Args) > 1 && os.Args[1] == childArg {
		child(os.Args[2:])
		return
	}
	stage.Main(stage.App(name,
		"a process that believes it is PID 1",
		"Starts a command in a new PID namespace (and a mount namespace, for a fresh /proc).\n"+
			"Inside, the command is PID 1 and sees only its own processes; the host still\n"+
			"knows it by its real PID. By default the command is `ps`, run from a shell.",
		[]cli.Flag{
			&cli.IntFlag{Name: "nested", Usage: "nest `N` PID namespaces, one inside the other, and show each level's view"},
			&cli.BoolFlag{Name: "siblings", Usage: "two PID namespaces side by side: both are PID 1, neither sees the other"},
		},
		run))
}

func run(c *cli.Context) error {
	n := stage.Narrator(c)
	if err := preflight.RequireRoot(name); err != nil {
		return err
	}
	if err := preflight.RequireNamespaces("pid", "mnt"); err != nil {
		return err
	}
	argv := c.Args().Slice()
	if len(argv) == 0 {
		argv = defaultCommand
	}
	switch {
	case c.Int("nested") < 0 || c.Int("nested") > 32:
		return stage.Fail("--nested takes 1 to 32 levels (the kernel allows 32 nested PID namespaces)")
	case c.Bool("siblings") && c.IsSet("nested"):
		return stage.Fail("--siblings and --nested are two different experiments: choose one")
	case c.Bool("siblings"):
		return siblings(n)
	}
	levels := c.Int("nested")
	if levels == 0 {
		levels = 1
	}
	return single(n, levels, argv)
}

// single runs argv as PID 1 of a new PID namespace, nested `levels` deep.
func single(n *narrate.Narrator, levels int, argv []string) error {
	n.Step("Create a new PID namespace (and a mount namespace, for its own /proc)")
	n.Call("clone(CLONE_NEWPID | CLONE_NEWNS | SIGCHLD)   # via a re-exec of /proc/self/exe")
	cmd, link, err := startChild(n, levels, argv)
	if err != nil {
		return err
	}
	host := cmd.Process.Pid
	hostNS, _ := os.Readlink("/proc/self/ns/pid")
	childNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", host))
	nspid := readNSpid(strconv.Itoa(host))
	n.Say("the child's PID, as the host knows it: %d", host)
	n.Say("/proc/%d/status says  NSpid: %s", host, strings.Join(nspid, " "))
	n.Note("one process, two numbers: %s in the host's namespace, %s in its own", nspid[0], nspid[len(nspid)-1])
	n.Say("/proc/self/ns/pid (this program)  -> %s", hostNS)
	n.Say("/proc/%d/ns/pid (the child)     -> %s", host, childNS)
	n.Check(host != 1 && len(nspid) == 2 && nspid[1] == "1",
		"the host sees the child as PID %d, the child's own namespace numbers it 1", host)
	n.Check(hostNS != childNS, "the two processes live in different PID namespaces")
	link.Resume(n)
	return finish(n, cmd, link)
}

// siblings starts two PID namespaces side by side.
func siblings(n *narrate.Narrator) error {
	n.Step("Create two PID namespaces side by side")
	n.Call("clone(CLONE_NEWPID | CLONE_NEWNS | SIGCHLD)   # twice")
	// Each sibling runs ps as its PID 1: ps lists every process it can see.
	list := []string{"ps", "-e", "-o", "pid,user,comm"}
	a, linkA, err := startChild(n, 1, list)
	if err != nil {
		return err
	}
	b, linkB, err := startChild(n, 1, list)
	if err != nil {
		linkA.Close()
		_ = a.Process.Kill()
		_ = a.Wait()
		return err
	}
	nsA, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", a.Process.Pid))
	nsB, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", b.Process.Pid))
	n.Say("sibling A: host PID %d, NSpid: %s, namespace %s", a.Process.Pid, strings.Join(readNSpid(strconv.Itoa(a.Process.Pid)), " "), nsA)
	n.Say("sibling B: host PID %d, NSpid: %s, namespace %s", b.Process.Pid, strings.Join(readNSpid(strconv.Itoa(b.Process.Pid)), " "), nsB)
	n.Check(nsA != nsB, "two different PID namespaces, alive at the same time")
	// Both stay alive until each has looked around: A looks while B waits.
	n.Say("sibling A looks around while B waits:")
	linkA.Resume(n)
	errA := finish(n, a, linkA)
	n.Say("now sibling B looks around:")
	linkB.Resume(n)
	errB := finish(n, b, linkB)
	if errA != nil {
		return errA
	}
	return errB
}

// startChild re-executes this program in new PID and mount namespaces. The
// child waits on the link until the host has looked at it from outside.
func startChild(n *narrate.Narrator, levels int, argv []string) (*exec.Cmd, *stage.Link, error) {
	cmd := exec.Command("/proc/self/exe", append([]string{childArg, strconv.Itoa(levels), "1"}, argv...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), n.Env())
	cmd.SysProcAttr = &unix.SysProcAttr{Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS}
	link, err := stage.LinkTo(cmd)
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		link.Close()
		return nil, nil, stage.Fail("clone with CLONE_NEWPID failed: %v (are you root, and does the kernel have PID namespaces?)", err)
	}
	link.Started()
	return cmd, link, nil
}

// finish waits for the child and passes its exit status on, as docker run does.
func finish(n *narrate.Narrator, cmd *exec.Cmd, link *stage.Link) error {
	stop := stage.ForwardSignals(cmd.Process)
	for link.Paused(n) {
		link.Resume(n)
	}
	err := cmd.Wait()
	stop()
	link.Close()
	return stage.Propagate(err)
}

// child runs inside the new namespaces. args: levels, this level, argv...
func child(args []string) {
	n := narrate.FromEnv(narrate.Container)
	link := stage.ParentLink()
	link.WaitGo(n)
	levels, _ := strconv.Atoi(args[0])
	level, _ := strconv.Atoi(args[1])
	argv := args[2:]

	if levels > 1 {
		// Read from the /proc we inherited: it still belongs to the host's
		// PID namespace, so NSpid lists this process's number at every level.
		// ("self", not getpid(): in the host's /proc, PID 1 is the host's init.)
		n.Say("level %d: getpid() = %d, NSpid (seen from the host's /proc): %s",
			level, os.Getpid(), strings.Join(readNSpid("self"), " "))
		if level < levels {
			nest(n, link, levels, level+1, argv)
			return
		}
		nspid := readNSpid("self")
		n.Check(len(nspid) == levels+1, "%d nested namespaces: one process, %d numbers (the host's and one per level)", levels, len(nspid))
	}

	n.Step("Inside: make mounts private, then mount a fresh /proc")
	// A new mount namespace starts as a copy of the host's mounts, and on
	// systemd hosts those mounts are "shared": a mount made here would
	// propagate back and replace the host's /proc. Private first.
	n.Call(`mount("", "/", "", MS_REC | MS_PRIVATE, "")`)
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fail("making mounts private: %v", err)
	}
	// The /proc we inherited describes the host's PID namespace: ps reads
	// /proc, so it would list every process on the host. A proc mounted
	// from inside the new namespace shows only this namespace's processes.
	n.Call(`mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "")`)
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		fail("mounting /proc: %v", err)
	}
	n.Say("getpid() = %d", os.Getpid())
	n.Say("the processes this namespace's /proc lists: %s", strings.Join(visiblePIDs(), " "))
	n.Check(os.Getpid() == 1, "inside the new namespace this process is PID 1")

	n.Step("Run the command as PID 1: %s", quote(argv))
	n.Note("exec replaces this program with the command: it keeps PID 1")
	link.Done(n)
	_ = stage.Exec(name, argv)
}

// nest starts the next level down and waits for it, passing its status on.
func nest(n *narrate.Narrator, link *stage.Link, levels, level int, argv []string) {
	n.Call("clone(CLONE_NEWPID | CLONE_NEWNS | SIGCHLD)   # level %d, inside level %d", level, level-1)
	cmd := exec.Command("/proc/self/exe", append([]string{childArg, strconv.Itoa(levels), strconv.Itoa(level)}, argv...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &unix.SysProcAttr{Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS}
	cmd.Env = append(os.Environ(), n.Env())
	inner, err := stage.LinkTo(cmd)
	if err != nil {
		fail("%v", err)
	}
	if err := cmd.Start(); err != nil {
		fail("clone for level %d: %v", level, err)
	}
	inner.Started()
	inner.Resume(n)
	// Relay: the outermost host hears the innermost level's step count.
	for inner.Paused(n) {
		inner.Resume(n)
	}
	link.Done(n)
	err = cmd.Wait()
	status, _ := stage.StatusOf(err)
	os.Exit(status)
}

// readNSpid returns the NSpid line of /proc/<pid>/status: the process's PID
// in each PID namespace it belongs to, from the reader's namespace inwards.
func readNSpid(pid string) []string {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return []string{"?"}
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "NSpid:"); ok {
			return strings.Fields(rest)
		}
	}
	return []string{"?"}
}

// visiblePIDs lists the numeric directories of /proc: the processes this
// PID namespace can see.
func visiblePIDs() []string {
	ents, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, e := range ents {
		if p, err := strconv.Atoi(filepath.Base(e)); err == nil {
			pids = append(pids, p)
		}
	}
	sort.Ints(pids)
	out := make([]string, len(pids))
	for i, p := range pids {
		out[i] = strconv.Itoa(p)
	}
	return out
}

func quote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if strings.ContainsAny(a, " '\"$;|&") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// fail ends the child with one line; the host passes the status on.
func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", name, fmt.Sprintf(format, args...))
	os.Exit(1)
}
