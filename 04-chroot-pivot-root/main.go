// Stage 04: chroot and pivot_root.
// Chapter: docs/04-chroot-pivot-root.md (the idea, real output, the calls, exercises).
//
// The article builds a root by hand: copy bash and ls, then every library
// `ldd` names, at the same paths; `chroot` into it, and `ls /` shows only
// that directory. Then it leaves a question: Docker prefers pivot_root and
// falls back to chroot, so what is the difference? This stage answers by
// experiment. Under chroot, a root process escapes in three system calls
// and lists the host's files. In a new mount namespace, after pivot_root
// and a lazy unmount of the old root, the same trick finds nothing above
// the new root, and the mount table holds none of the host's mounts.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/04-chroot-pivot-root/rootfs"
	"github.com/container-internals/workshop/internal/narrate"
	"github.com/container-internals/workshop/internal/preflight"
	"github.com/container-internals/workshop/internal/stage"

	"github.com/container-internals/workshop/internal/mountinfo"
)

const name = "04-chroot-pivot-root"

// childArg marks the re-executed copy of this program that changes its root
// (Go cannot run code between fork and exec, so the child is this same
// binary, started again through /proc/self/exe). The child is started on
// the host, BEFORE it changes root: after chroot or pivot_root neither
// /proc/self/exe nor this binary would be reachable (there is no /proc in
// the rootfs, and the binary was never copied in), so everything the child
// does after that (the escape, listing /) runs in this process, and the only
// thing it ever executes is a program from the rootfs.
const childArg = "__child__"

// The PATH inside the rootfs: the host's could name directories it lacks.
const insidePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func main() {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		os.Exit(child(os.Args[2:]))
	}
	stage.Main(stage.App(name,
		"a hand-made rootfs; chroot, its escape, and why Docker uses pivot_root",
		"Builds a root filesystem from the host's bash and ls and the libraries ldd names.\n"+
			"chroot into it: `ls /` shows only the rootfs, but root escapes to the host in three calls.\n"+
			"pivot_root in a new mount namespace: the same escape finds nothing, no host mount is left.",
		[]cli.Flag{
			&cli.StringFlag{Name: "mode", Usage: "run only this `MODE` (chroot or pivot_root) with the command after -- (default: a shell)"},
			&cli.StringSliceFlag{Name: "add", Usage: "also copy this host binary (a `PATH` or a command name) and its libraries into the rootfs; repeatable"},
			&cli.StringFlag{Name: "rootfs", Usage: "build (or reuse) the rootfs in `DIR` and keep it, instead of a temporary directory"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the temporary rootfs and print where it is"},
			&cli.BoolFlag{Name: "escape", Usage: "with --mode: try the chroot escape before running the command"},
			&cli.BoolFlag{Name: "userns", Usage: "with --mode chroot: the child in a user namespace, root inside and uid 100000 on the host (where does the escape land now?)"},
		},
		run))
}

// interrupted is set by SIGINT/SIGTERM/SIGHUP/SIGPIPE: the stage then stops
// at the next step and cleans up.
var interrupted atomic.Int32 // the signal number

func run(c *cli.Context) error {
	n := stage.Narrator(c)
	mode, argv, adds := c.String("mode"), c.Args().Slice(), c.StringSlice("add")
	if err := checkFlags(mode, argv, adds, c.Bool("escape"), c.Bool("userns")); err != nil {
		return err
	}
	if err := preflight.RequireRoot(name); err != nil {
		return err
	}
	if err := preflight.RequireNamespaces("mnt"); err != nil {
		return err
	}

	// SIGPIPE too: with `| head`, a closed pipe would otherwise kill the
	// stage mid-write and leave the rootfs behind.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGPIPE)
	defer signal.Stop(sigs)
	go func() {
		for sig := range sigs {
			interrupted.Store(int32(sig.(unix.Signal)))
		}
	}()

	// Where the rootfs goes. A directory the learner named is theirs: it is
	// kept (and reused next time). A temporary one goes at the end.
	root, cleanup, err := rootDir(n, c.String("rootfs"), c.Bool("keep"))
	if err != nil {
		return err
	}
	built := false
	defer func() { cleanup(built) }()

	// The host's side of the escape test: a file that exists only outside
	// the rootfs. Seen from inside, it proves the process reached the host.
	marker, err := hostMarker(root)
	if err != nil {
		return err
	}
	defer os.Remove(marker)

	story := mode == ""
	shell, err := build(n, root, adds, story)
	if err != nil {
		return err
	}
	built = true
	if sig := interrupted.Load(); sig != 0 {
		return stage.ExitStatus(128 + int(sig))
	}

	if !story {
		if len(argv) == 0 {
			argv = []string{shell}
		}
		esc := "stay"
		if c.Bool("escape") {
			esc = "escape"
		}
		return runChild(n, mode, "command", root, marker, esc, c.Bool("userns"), argv)
	}

	// Steps 2 and 3: chroot, ls /, then the escape.
	if err := runChild(n, "chroot", "story", root, marker, "escape", false, []string{shell}); err != nil {
		return err
	}
	// Steps 4 to 7: a new mount namespace, pivot_root, ls /, the same
	// escape, the mount table.
	return runChild(n, "pivot_root", "story", root, marker, "escape", false, []string{shell})
}

// checkFlags refuses a bad combination of flags, before anything is made.
func checkFlags(mode string, argv, adds []string, escape, userns bool) error {
	switch mode {
	case "", "chroot", "pivot_root":
	default:
		return stage.Fail("unknown --mode %q: use --mode chroot or --mode pivot_root", mode)
	}
	if mode == "" && len(argv) > 0 {
		return stage.Fail("a command after -- needs a mode: add --mode chroot or --mode pivot_root")
	}
	if mode == "" && escape {
		return stage.Fail("--escape needs a mode: add --mode chroot or --mode pivot_root (the default run always tries it)")
	}
	if userns && mode != "chroot" {
		// pivot_root's story mounts a /proc, which a user namespace may
		// do only with a PID namespace of its own: this experiment is
		// about where chroot's escape lands.
		return stage.Fail("--userns goes with --mode chroot: add --mode chroot --escape to see where the escape lands")
	}
	for _, a := range adds {
		if err := checkBinary(a); err != nil {
			return stage.Fail("--add %s: %v", a, err)
		}
	}
	return nil
}

// checkBinary says why a --add argument cannot be copied, before anything
// is created.
func checkBinary(a string) error {
	p := a
	if !strings.Contains(a, "/") {
		var err error
		if p, err = exec.LookPath(a); err != nil {
			return fmt.Errorf("no such command in PATH: give the path of an existing binary")
		}
	}
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("no such file: give the path of an existing binary")
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file: give the path of a binary")
	}
	return nil
}

// rootDir returns the rootfs directory and what to do with it at the end
// (told whether the rootfs was built).
func rootDir(n *narrate.Narrator, dir string, keep bool) (string, func(built bool), error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "workshop-04-rootfs-")
		if err != nil {
			return "", nil, stage.Fail("cannot create a temporary directory for the rootfs: %v", err)
		}
		return d, func(built bool) {
			if keep && built {
				n.Say("kept the rootfs: %s (use it again with --rootfs %s)", d, d)
				return
			}
			os.RemoveAll(d)
		}, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, stage.Fail("--rootfs %s: %v", dir, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		if real == "/" {
			return "", nil, stage.Fail("--rootfs %s is the host's /: give a directory of its own, such as /tmp/rootfs", dir)
		}
		abs = real // a link to a directory: use the directory
	}
	fi, err := os.Stat(abs)
	switch {
	case err == nil && !fi.IsDir():
		return "", nil, stage.Fail("--rootfs %s is a file, not a directory: give a directory (it is created if missing)", dir)
	case err == nil:
		return abs, func(bool) {}, nil
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(abs, 0o755); err != nil {
			return "", nil, stage.Fail("--rootfs %s: cannot create it: %v", dir, err)
		}
		// A failed build in a directory we made leaves nothing behind.
		return abs, func(built bool) {
			if !built {
				os.RemoveAll(abs)
			}
		}, nil
	default:
		return "", nil, stage.Fail("--rootfs %s: %v", dir, err)
	}
}

func hostMarker(root string) (string, error) {
	dir := os.TempDir()
	if within(dir, root) {
		dir = filepath.Dir(root)
	}
	f, err := os.CreateTemp(dir, "workshop-04-host-only-")
	if err != nil {
		return "", stage.Fail("cannot create a marker file in %s: %v", dir, err)
	}
	f.Close()
	return f.Name(), nil
}

// within reports whether p is root or below it.
func within(p, root string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// build is step 1: the article's rootfs, bash and ls and their libraries.
// It returns the shell the rootfs now holds.
func build(n *narrate.Narrator, root string, adds []string, story bool) (string, error) {
	shell := "/bin/bash"
	if _, err := os.Stat(shell); err != nil {
		shell = "/bin/sh" // no bash on this host: the next best shell
	}
	bins := append([]string{shell, "/bin/ls"}, adds...)

	names := []string{filepath.Base(shell), "ls"}
	for _, a := range adds {
		names = append(names, filepath.Base(a))
	}
	n.Step("Build a root filesystem by hand: %s, and what ldd says they need", strings.Join(names, ", "))
	n.Call("mkdir %s", root)
	if story {
		for _, b := range bins[:2] {
			n.Call("ldd %s", b)
			out, _ := exec.Command("ldd", b).CombinedOutput()
			n.Output(strings.ReplaceAll(string(out), "\t", ""))
		}
		n.Note("each => is a library and where the loader found it on the host; the last line is the loader itself;")
		n.Note("linux-vdso.so.1 has no path: the kernel maps it into every process, there is no file to copy")
	}
	shown := map[string]bool{}
	for _, b := range bins {
		if sig := interrupted.Load(); sig != 0 {
			return "", stage.ExitStatus(128 + int(sig))
		}
		paths, err := rootfs.CopyWithLibraries(root, b)
		if err != nil {
			return "", stage.Fail("cannot copy %s into the rootfs: %v", b, err)
		}
		for _, p := range paths {
			if story && !shown[p] {
				showCopy(n, root, p)
			}
			shown[p] = true
		}
	}
	n.Call("mkdir %s/{proc,dev,tmp,root,etc}; echo root:x:0:0:... > %s/etc/passwd; echo root:x:0: > %s/etc/group", root, root, root)
	if err := rootfs.Skeleton(root); err != nil {
		return "", stage.Fail("cannot create the rootfs skeleton in %s: %v", root, err)
	}
	text, files, size := tree(root)
	if story {
		n.Call("tree %s", root)
		n.Output(text)
	}
	n.Say("the rootfs: %d files, %.1f MB, and no kernel: processes in it will run on the host's", files, float64(size)/1e6)
	return shell, nil
}

// showCopy narrates one path CopyWithLibraries placed in the rootfs.
func showCopy(n *narrate.Narrator, root, p string) {
	fi, err := os.Lstat(filepath.Join(root, p))
	if err != nil {
		return
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(filepath.Join(root, p))
		n.Call("ln -s %s %s%s   # as on the host", target, root, p)
	case fi.Mode().IsRegular():
		n.Call("cp %s %s%s", p, root, p)
	}
}

// runChild re-executes this program as the child that changes its root
// (with userns, in a user namespace of its own), and waits for it. The child narrates its own steps (prefix `ctr |`);
// over a stage.Link it hands the step number back, and in pivot_root mode
// it pauses once so that the host can look at its own mount table while
// the container is alive.
func runChild(n *narrate.Narrator, mode, kind, root, marker, esc string, userns bool, argv []string) error {
	if sig := interrupted.Load(); sig != 0 {
		return stage.ExitStatus(128 + int(sig))
	}
	switch {
	case kind == "command":
		n.Step("Run %s inside the rootfs, under %s", strings.Join(argv, " "), mode)
	case mode == "chroot":
		n.Step("chroot into the rootfs and run ls /, as the article does")
	default:
		n.Step("A new mount namespace, and pivot_root into the same rootfs")
	}
	cmd := exec.Command("/proc/self/exe", append([]string{childArg, mode, kind, root, marker, esc}, argv...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), n.Env())
	if mode == "pivot_root" {
		// pivot_root changes the root of a whole mount namespace: the
		// child gets a namespace of its own, a copy of the host's.
		cmd.SysProcAttr = &unix.SysProcAttr{Cloneflags: unix.CLONE_NEWNS}
		n.Call("clone(CLONE_NEWNS | SIGCHLD)   # via a re-exec of /proc/self/exe")
	} else if userns {
		inUserNamespace(n, cmd, root)
	} else {
		n.Call("fork + exec /proc/self/exe   # the child calls chroot(2) itself")
	}
	link, err := stage.LinkTo(cmd)
	if err != nil {
		return err
	}
	before := hostMounts()
	if err := cmd.Start(); err != nil {
		link.Close()
		return stage.Fail("starting the %s child failed: %v", mode, err)
	}
	link.Started()
	stop := stage.ForwardSignals(cmd.Process)
	link.Resume(n)

	failed := false
	// In pivot_root's story the child pauses after pivoting: look from the host.
	if link.Paused(n) {
		n.Step("Back on the host, while the container runs: did anything reach the host's mount table?")
		n.Call("diff <(cat /proc/self/mountinfo) <before the child>   # on the host")
		added := newMounts(before, hostMounts())
		n.Output(strings.Join(added, "\n"))
		ok := len(added) == 0
		failed = failed || !ok
		n.Check(ok, "the host's mount table is unchanged: the bind mount, the detached old root and the container's /proc exist only in its namespace")
		link.Resume(n)
	}
	for link.Paused(n) {
		link.Resume(n)
	}
	err = cmd.Wait()
	stop()
	link.Close()
	status, ok := stage.StatusOf(err)
	if !ok {
		return stage.Fail("the %s child: %v", mode, err)
	}
	if status != 0 {
		return stage.ExitStatus(status)
	}
	if failed {
		return stage.ExitStatus(1)
	}
	// A signal that came while the child ran was the child's to act on
	// (an interactive bash ignores Ctrl-C): it ended well, so go on.
	interrupted.Store(0)
	return nil
}

// inUserNamespace makes the chroot child's clone give it a user namespace
// (stage 06's `run --userns` tells the whole story): its uids and gids
// 0-65535 are the host's 100000-165535. The maps are written from outside,
// by this process (Go's os/exec does it between the clone and the child's
// exec), and the child then becomes root *of its namespace*: a new user
// namespace changes no one's IDs, and a child still holding the host's uid
// 0, unmapped inside (65534), would lose every capability at its execve:
// chroot would be refused. The rootfs is opened to others (o+rx): uid
// 100000 must reach it.
func inUserNamespace(n *narrate.Narrator, cmd *exec.Cmd, root string) {
	ids := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
	cmd.SysProcAttr = &unix.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER, UidMappings: ids, GidMappings: ids,
		GidMappingsEnableSetgroups: true, Credential: &syscall.Credential{Uid: 0, Gid: 0}}
	os.Chmod(root, 0o755)
	n.Call("clone(CLONE_NEWUSER | SIGCHLD)   # via a re-exec of /proc/self/exe: a user namespace of its own")
	n.Call("echo '0 100000 65536' > /proc/<child>/uid_map; the same > gid_map   # from outside: root inside is uid 100000 on the host")
	n.Call("setgroups(0, []), setresgid(0, 0, 0), setresuid(0, 0, 0)   # in the child: root of its namespace, no longer the host's uid 0")
}

// child runs the experiment inside. args: mode, kind, root, marker, escape, argv...
func child(args []string) int {
	n := narrate.FromEnv(narrate.Container)
	link := stage.ParentLink()
	link.WaitGo(n)
	mode, kind, root, marker, esc, argv := args[0], args[1], args[2], args[3], args[4], args[5:]
	story := kind == "story"
	trace := func(call, why string) {
		n.Call("%s", call)
		n.Note("%s", why)
	}
	// What ls / must print inside: the rootfs's own top-level entries,
	// read now, while this process still sees the host.
	want := stage.ListDir(root)

	if mode == "chroot" {
		if err := rootfs.Chroot(root, trace); err != nil {
			return fail(link, n, "%v", err)
		}
	} else {
		if err := rootfs.PivotRoot(root, trace); err != nil {
			return fail(link, n, "%v", err)
		}
		// The container's own /proc: the mount table below is read from
		// it. There is no PID namespace here, so it lists every host process.
		n.Call(`mount("proc", "/proc", "proc", 0, "")`)
		n.Note("a /proc of the container's own, to read its mount table (no PID namespace here: it still lists the host's processes)")
		if err := unix.Mount("proc", "/proc", "proc", 0, ""); err != nil {
			return fail(link, n, "mounting /proc inside: %v", err)
		}
	}

	failed := false
	if story {
		n.Call("%s -c 'ls /'   # the rootfs's own shell and ls", argv[0])
		out, err := inside(argv[0], "-c", "ls /")
		n.Output(out)
		got := strings.Fields(out)
		ok := err == nil && strings.Join(got, " ") == strings.Join(want, " ")
		failed = failed || !ok
		n.Check(ok, "ls / shows only the rootfs: %s", strings.Join(want, " "))
		if mode == "chroot" {
			n.Note("the shell does not know its root moved: to it, %s is /", root)
		}
	}

	if esc == "escape" {
		if story {
			n.Step("The escape, as root inside the %s: chroot into a subdirectory, climb .., chroot(\".\")", mode)
		}
		reached, err := escape(n, marker)
		if err != nil {
			return fail(link, n, "%v", err)
		}
		if story {
			failed = escapeVerdict(n, mode, marker, reached) || failed
		}
	}

	if story && mode == "pivot_root" {
		failed = !onlyOwnMounts(n) || failed
		link.Pause(n)
	}
	if story {
		link.Done(n)
		if failed {
			return 1
		}
		return 0
	}

	// --mode: the learner's command replaces this process, as in a container.
	link.Done(n)
	os.Setenv("PATH", strings.TrimPrefix(insidePath, "PATH="))
	os.Unsetenv(narrate.EnvVar)
	_ = stage.Exec(name, argv)
	return 126
}

// escapeVerdict says what the escape proved (the step is told before the
// escape runs), and reports whether the stage's claim failed.
func escapeVerdict(n *narrate.Narrator, mode, marker string, reached bool) (failed bool) {
	if mode == "chroot" {
		n.Check(reached, "the escape reached the host: %s, which exists only outside the rootfs, is visible", marker)
		n.Warn("chroot is not a security boundary: a process that is root inside a chroot can walk out of it and")
		n.Warn("read, change or run anything on the host. It only changes where one process's paths start.")
		return !reached
	}
	n.Check(!reached, "the escape failed: .. stops at the new root, and %s is nowhere in this namespace", marker)
	n.Note("pivot_root swapped the root of the whole mount namespace and the old root was unmounted:")
	n.Note("there is no path, and no .., that leads back to the host's files")
	return reached
}

// onlyOwnMounts shows the mount table inside the container: only the
// rootfs and its /proc are left.
func onlyOwnMounts(n *narrate.Narrator) bool {
	n.Step("The mount table inside the container")
	n.Call("cat /proc/self/mounts   # inside")
	mounts, _ := os.ReadFile("/proc/self/mounts")
	n.Output(string(mounts))
	ok := strings.Join(mountPoints(string(mounts)), " ") == "/ /proc"
	n.Check(ok, "only the rootfs (/) and the container's /proc are mounted: none of the host's mounts is left")
	return ok
}

// escape is the classic chroot break-out. It works because chroot(2) moves
// a process's root but not its working directory, and the kernel only stops
// ".." at the process's root: from a working directory outside the root,
// ".." climbs on, up to the real /. It returns whether the host's marker
// was visible afterwards.
func escape(n *narrate.Narrator, marker string) (bool, error) {
	n.Call(`stat("%s")`, marker)
	if _, err := os.Stat(marker); err == nil {
		n.Say("found: this process already sees the host's files")
	} else {
		n.Say("no such file: the host's marker file is out of sight")
	}
	n.Call(`chroot("tmp")`)
	n.Note("any subdirectory will do: the root moves down into /tmp, the working directory stays at the old / (now above the root)")
	if err := unix.Chroot("tmp"); err != nil {
		return false, fmt.Errorf("chroot(tmp): %v", err)
	}
	n.Call(`chdir("..")   # 64 times`)
	n.Note(".. only stops at the process's root, and the working directory is not under it: it climbs to the real top")
	for i := 0; i < 64; i++ {
		if err := unix.Chdir(".."); err != nil {
			return false, fmt.Errorf("chdir(..): %v", err)
		}
	}
	n.Call(`chroot(".")`)
	n.Note("make wherever we ended up the root")
	if err := unix.Chroot("."); err != nil {
		return false, fmt.Errorf("chroot(.): %v", err)
	}
	n.Call("ls /")
	n.Output(strings.Join(stage.ListDir("/"), " "))
	n.Call(`stat("%s")`, marker)
	_, err := os.Stat(marker)
	if err == nil {
		n.Say("found: this is the host's /")
	} else {
		n.Say("no such file")
	}
	return err == nil, nil
}

// inside runs a program of the rootfs and returns what it printed.
func inside(prog string, args ...string) (string, error) {
	cmd := exec.Command(prog, args...)
	cmd.Env = []string{insidePath, "LC_ALL=C"}
	// No /dev/null in the rootfs, which exec.Command would open for stdin.
	cmd.Stdin = strings.NewReader("")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func mountPoints(mounts string) []string {
	var points []string
	sc := bufio.NewScanner(strings.NewReader(mounts))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 1 {
			points = append(points, f[1])
		}
	}
	return points
}

// hostMounts returns this process's mountinfo lines without the mount IDs.
func hostMounts() []string {
	ms, _ := mountinfo.Self()
	var out []string
	for _, m := range ms {
		out = append(out, strings.Join(strings.Fields(m.Line)[2:], " "))
	}
	return out
}

func newMounts(before, after []string) []string {
	had := map[string]int{}
	for _, l := range before {
		had[l]++
	}
	var added []string
	for _, l := range after {
		if had[l] > 0 {
			had[l]--
			continue
		}
		added = append(added, l)
	}
	return added
}

// fail ends the child with one line; the host passes the status on.
func fail(link *stage.Link, n *narrate.Narrator, format string, args ...any) int {
	link.Done(n)
	fmt.Fprintf(os.Stderr, "%s: %s\n", name, fmt.Sprintf(format, args...))
	return 1
}

// tree draws the rootfs the way tree(1) does, and counts its files and
// their bytes.
func tree(root string) (string, int, int64) {
	var b strings.Builder
	var files, dirs int
	var size int64
	b.WriteString(root + "\n")
	var walk func(dir, indent string)
	walk = func(dir, indent string) {
		names := stage.ListDir(dir)
		for i, nm := range names {
			branch, next := "├── ", "│   "
			if i == len(names)-1 {
				branch, next = "└── ", "    "
			}
			p := filepath.Join(dir, nm)
			fi, err := os.Lstat(p)
			if err != nil {
				continue
			}
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				b.WriteString(indent + branch + nm + " -> " + target + "\n")
				files++
			case fi.IsDir():
				b.WriteString(indent + branch + nm + "\n")
				dirs++
				walk(p, indent+next)
			default:
				b.WriteString(indent + branch + nm + "\n")
				files++
				size += fi.Size()
			}
		}
	}
	walk(root, "")
	fmt.Fprintf(&b, "%d directories, %d files", dirs, files)
	return b.String(), files, size
}
