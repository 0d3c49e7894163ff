// Stage 02: the mount namespace.
// Chapter: docs/02-mount-namespace.md (the idea, real output, the calls, exercises).
//
// The article's experiment: a C program clones a child with CLONE_NEWNS and
// runs a shell. Surprise: `ls /tmp` inside shows exactly the host's files. A
// new mount namespace starts as a COPY of the parent's mounts; the view only
// changes when something is mounted. Then the fix: mount a tmpfs on /tmp
// before running the shell, and /tmp is empty inside while the host sees no
// such mount. On systemd hosts one more call is needed first, or the mount
// leaks back to the host: make every mount private.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/mountinfo"
	"github.com/container-internals/workshop/internal/narrate"
	"github.com/container-internals/workshop/internal/preflight"
	"github.com/container-internals/workshop/internal/stage"
)

const name = "02-mount-namespace"

// childArg marks the re-executed copy of this program that runs inside the
// new mount namespace (see stage 01 for why Go re-executes itself).
const childArg = "__child__"

func main() {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		child(os.Args[2:])
		return
	}
	stage.Main(stage.App(name,
		"a new mount namespace: a copy of the host's mounts, until you mount something",
		"Starts a child in a new mount namespace. First it sees the host's /tmp; after the\n"+
			"mounts are made private and a tmpfs is mounted on /tmp, /tmp is empty inside and\n"+
			"the host never sees that mount. --no-private shows the mount leaking to the host.",
		[]cli.Flag{
			&cli.BoolFlag{Name: "no-private", Usage: "skip the private remount and watch the new mount leak back to the host"},
		},
		run))
}

func run(c *cli.Context) error {
	n := stage.Narrator(c)
	if err := preflight.RequireRoot(name); err != nil {
		return err
	}
	if err := preflight.RequireNamespaces("mnt"); err != nil {
		return err
	}
	private := !c.Bool("no-private")

	// The marker: a file on the host's /tmp the learner will recognise inside.
	marker, err := os.CreateTemp("/tmp", "hello-from-the-host-*.txt")
	if err != nil {
		return stage.Fail("cannot create a marker file in /tmp: %v", err)
	}
	marker.Close()
	defer os.Remove(marker.Name())

	// Where the tmpfs will go. With --no-private the leak must be shown on a
	// mount that really is shared: /tmp's own mount if the host made it
	// shared (systemd does), otherwise a shared mount made here for the demo.
	n.Step("Create a child in a new mount namespace, and nothing else")
	target := "/tmp"
	if !private && !mountOf("/tmp").Shared() {
		demo, err := newSharedDemo()
		if err != nil {
			return err
		}
		defer demo.remove(n)
		target = demo.dir
		n.Note("/tmp is not on a shared mount here, so the leak is shown on a shared mount made for it:")
		n.Call(`mount("%s", "%s", "", MS_BIND, "")`, target, target)
		n.Call(`mount("", "%s", "", MS_SHARED, "")`, target)
	}
	before := hostMountIDs()
	n.Call("clone(CLONE_NEWNS | SIGCHLD)   # via a re-exec of /proc/self/exe")
	n.Say("a marker file on the host: %s", marker.Name())
	cmd := exec.Command("/proc/self/exe", append([]string{childArg, fmt.Sprint(private), target, filepath.Base(marker.Name())}, c.Args().Slice()...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), n.Env())
	cmd.SysProcAttr = &unix.SysProcAttr{Cloneflags: unix.CLONE_NEWNS}
	link, err := stage.LinkTo(cmd)
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		link.Close()
		return stage.Fail("clone with CLONE_NEWNS failed: %v (are you root?)", err)
	}
	link.Started()
	stop := stage.ForwardSignals(cmd.Process)
	link.Resume(n)

	// The child pauses once, right after its mount: look from the host.
	leaked := ""
	if link.Paused(n) {
		leaked = lookFromTheHost(n, target, before, private)
		link.Resume(n)
	}
	for link.Paused(n) {
		link.Resume(n)
	}
	err = cmd.Wait()
	stop()
	link.Close()

	// The child may have been interrupted between its mount and our look:
	// whatever leaked is ours to remove either way.
	if leaked == "" && !private {
		leaked = newTmpfsOn(target, before)
	}
	if leaked != "" {
		cleanUpTheLeak(n, target)
	}
	return stage.Propagate(err)
}

// lookFromTheHost shows the host's tmpfs mounts while the child holds its
// own, and returns the new tmpfs on target the host can see ("" if none).
// The verdict comes from the kernel's own table, by mount ID: a tmpfs on
// target that was not there before the child started.
func lookFromTheHost(n *narrate.Narrator, target string, before map[int]bool, private bool) string {
	n.Step("Back on the host: is the new tmpfs on %s visible here?", target)
	showTmpfsMounts(n, "on the host")
	n.Note("the verdict, from the kernel's table: a tmpfs on %s that was not there before the child started?", target)
	n.Call("grep ' %s ' /proc/self/mountinfo   # on the host", target)
	leaked := newTmpfsOn(target, before)
	n.Output(leaked)
	if private {
		n.Check(leaked == "", "the host's mount table has no tmpfs on %s: the mount exists only in the child's namespace", target)
	} else {
		n.Check(leaked != "", "without the private remount, the child's mount leaked to the host (propagation of a shared mount)")
	}
	return leaked
}

// cleanUpTheLeak unmounts the leaked copy, the host's own mount now: it
// outlives the child.
func cleanUpTheLeak(n *narrate.Narrator, target string) {
	n.Step("Clean up the leak on the host")
	n.Call(`umount2("%s", 0)   # on the host`, target)
	if err := unix.Unmount(target, 0); err != nil {
		n.Warn("could not unmount the leaked tmpfs: %v; run `sudo umount %s`", err, target)
	} else {
		n.Say("removed: the host's %s is as it was", target)
	}
}

// child runs in the new mount namespace. args: private, target, marker name, command...
func child(args []string) {
	n := narrate.FromEnv(narrate.Container)
	link := stage.ParentLink()
	link.WaitGo(n)
	private, target, marker, argv := args[0] == "true", args[1], args[2], args[3:]

	n.Call("ls -A /tmp   # inside")
	names := stage.ListDir("/tmp")
	n.Output(summarise(names, marker))
	n.Check(slices.Contains(names, marker), "the child sees the host's marker %s: it inherited a copy of the host's mounts", marker)

	step := "Make every mount private, then mount a tmpfs on " + target
	if !private {
		step = "Mount a tmpfs on " + target + ", WITHOUT making mounts private first (--no-private)"
	}
	n.Step("%s", step)
	root := mountOf("/")
	n.Say("how / is mounted, from /proc/self/mountinfo: %s", root.Line)
	if root.Shared() {
		n.Note("'shared:%s' = / is in a peer group: a mount under it is copied to every peer, the host included", root.PeerGroup())
	} else {
		n.Note("no 'shared:' tag: / is private here; on systemd hosts it reads 'shared:1' and mounts made here would reach the host")
	}
	if private {
		// systemd mounts / shared, and a new namespace inherits that: every
		// mount made here would propagate to the host's peers. MS_PRIVATE
		// cuts the link, MS_REC for every mount below / as well.
		n.Call(`mount("", "/", "", MS_REC | MS_PRIVATE, "")`)
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			fail("making mounts private: %v", err)
		}
		n.Say("now: %s", mountOf("/").Line)
	}
	n.Call(`mount("none", "%s", "tmpfs", 0, "")`, target)
	if err := unix.Mount("none", target, "tmpfs", 0, ""); err != nil {
		fail("mounting a tmpfs on %s: %v", target, err)
	}
	n.Call("ls -A %s   # inside", target)
	inside := stage.ListDir(target)
	n.Output(strings.Join(inside, "\n"))
	n.Check(len(inside) == 0, "%s is empty inside: the tmpfs hides the host's files", target)
	showTmpfsMounts(n, "inside")
	link.Pause(n)

	if len(argv) > 0 {
		n.Step("Run the command in the new namespace: %s", strings.Join(argv, " "))
		link.Done(n)
		_ = stage.Exec(name, argv)
	}
	link.Done(n)
}

// showTmpfsMounts runs the article's `mount -l | grep tmpfs` in the
// calling process's mount namespace (mount lists /proc/self/mountinfo, or
// /proc/mounts for busybox, whose mount has no -l: -l only adds labels).
func showTmpfsMounts(n *narrate.Narrator, where string) {
	cmd := "mount -l | grep tmpfs   # " + where
	out, err := exec.Command("mount", "-l").Output()
	if errors.Is(err, exec.ErrNotFound) {
		n.Note("mount is not installed here (apt-get install mount): the same lines, from /proc/self/mountinfo")
		cmd, out, err = "grep tmpfs /proc/self/mountinfo   # "+where, nil, nil
		for _, e := range mounts() {
			out = append(out, e.Line+"\n"...)
		}
	} else if err != nil {
		cmd = "mount | grep tmpfs   # " + where + " (this mount has no -l, which only adds labels)"
		out, err = exec.Command("mount").Output()
	}
	n.Call("%s", cmd)
	if err != nil {
		n.Warn("%v", err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "tmpfs") {
			lines = append(lines, l)
		}
	}
	n.Output(strings.Join(lines, "\n"))
}

// mounts is this process's mount table (see internal/mountinfo).
func mounts() []mountinfo.Mount {
	ms, _ := mountinfo.Self()
	return ms
}

// mountOf returns the mount that holds path.
func mountOf(path string) mountinfo.Mount {
	m, _ := mountinfo.Containing(mounts(), path)
	return m
}

func hostMountIDs() map[int]bool {
	ids := map[int]bool{}
	for _, e := range mounts() {
		ids[e.ID] = true
	}
	return ids
}

// newTmpfsOn returns the host's mountinfo line of a tmpfs on target that was
// not there before the child started, or "".
func newTmpfsOn(target string, before map[int]bool) string {
	for _, e := range mounts() {
		if e.Point == target && e.FSType == "tmpfs" && !before[e.ID] {
			return e.Line
		}
	}
	return ""
}

// sharedDemo is a shared mount made for --no-private on hosts whose /tmp is
// not shared: the leak then happens there, for real, and nowhere else.
type sharedDemo struct{ dir string }

func newSharedDemo() (*sharedDemo, error) {
	dir, err := os.MkdirTemp("", "workshop-02-shared-")
	if err != nil {
		return nil, stage.Fail("cannot create a directory for the shared-mount demo: %v", err)
	}
	// A bind mount of a directory onto itself makes it a mount point, which
	// can then get its own propagation type.
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		os.Remove(dir)
		return nil, stage.Fail("bind-mounting %s: %v", dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		_ = unix.Unmount(dir, unix.MNT_DETACH)
		os.Remove(dir)
		return nil, stage.Fail("making %s shared: %v", dir, err)
	}
	return &sharedDemo{dir: dir}, nil
}

func (d *sharedDemo) remove(n *narrate.Narrator) {
	// Anything still mounted on top goes with MNT_DETACH of the whole tree.
	_ = unix.Unmount(d.dir, unix.MNT_DETACH)
	_ = unix.Unmount(d.dir, unix.MNT_DETACH)
	if err := os.Remove(d.dir); err != nil {
		n.Warn("could not remove %s: %v", d.dir, err)
	}
}

// summarise shows at most a few names: a busy host /tmp can hold hundreds.
func summarise(names []string, marker string) string {
	const most = 8
	if len(names) <= most {
		return strings.Join(names, "\n")
	}
	shown := []string{marker}
	for _, s := range names {
		if len(shown) == most {
			break
		}
		if s != marker {
			shown = append(shown, s)
		}
	}
	sort.Strings(shown)
	return strings.Join(shown, "\n") + fmt.Sprintf("\n... and %d more", len(names)-len(shown))
}

// fail ends the child with one line; the host passes the status on.
func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", name, fmt.Sprintf(format, args...))
	os.Exit(1)
}
