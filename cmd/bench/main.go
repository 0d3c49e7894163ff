// Command bench measures stage 06's runtime against the workshop's targets:
// how long `run -- /bin/true` takes from start to exit, beside `unshare ...
// chroot` on the same root filesystem (and runc, crun and bwrap when they
// are installed); how long the OCI lifecycle takes (create, start, wait
// for the exit, delete: what containerd's shim does for `docker run`),
// beside runc and crun; how long `exec` takes; how much memory the runtime
// process that waits for a container keeps resident; and what a system
// call costs under the seccomp filter (syscalls.go).
//
//	make build && sudo bin/bench --bin bin/06-full-container --runs 50
//
// It builds nothing: it is given the runtime's binary. Everything it makes
// (a temporary --root, an exported root filesystem, containers) is removed
// at the end, and on Ctrl-C.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The workshop's targets: run and the OCI lifecycle at least 2x faster than
// runc, and the waiting runtime under 10 MB. (The ratio to unshare + chroot,
// and to crun where crun runs, is printed as information: two starts of a Go
// program alone take ~5 ms, where a C one starts in ~1 ms.)
const (
	minFasterRunc = 2.0      // run and create+start+delete, against runc
	maxMonitorKB  = 10 << 10 // the waiting runtime process keeps under 10 MB
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == syscallLoopArg {
		n, _ := strconv.Atoi(os.Args[2])
		syscallLoop(n)
		return
	}
	bin := flag.String("bin", "bin/06-full-container", "the built runtime (`make build` puts it in bin/)")
	runs := flag.Int("runs", 50, "timed runs of each command")
	strict := flag.Bool("strict", false, "exit 1 when a target is missed")
	flag.Parse()
	b, err := newBench(*bin, *runs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	verdicts, err := b.run()
	b.cleanup()
	if interrupted.Load() {
		os.Exit(130) // a command failing because of Ctrl-C is no error of its own
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	if *strict && missed(verdicts) > 0 {
		os.Exit(1)
	}
}

type bench struct {
	bin    string // the runtime, absolute
	runs   int
	tmp    string // everything we make lives here
	root   string // the runtime's --root
	rootfs string // the default image's root, exported for the others
	names  []string
	oci    []ociContainer  // OCI containers created and not yet deleted
	before map[string]bool // cgroups named workshop/* before we started
}

// ociContainer is one container made by an OCI runtime's create.
type ociContainer struct{ runtime, state, id string }

func newBench(bin string, runs int) (*bench, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root (namespaces, mounts, cgroups): run `sudo bin/bench` or `make bench`")
	}
	if runs < 1 {
		return nil, fmt.Errorf("--runs %d: give at least 1", runs)
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(abs); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("%s: no such program: run `make build` first, or give --bin PATH", bin)
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return nil, errors.New("unshare not found: install util-linux")
	}
	tmp, err := os.MkdirTemp("", "workshop-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{bin: abs, runs: runs, tmp: tmp, root: filepath.Join(tmp, "root"),
		rootfs: filepath.Join(tmp, "rootfs"), before: workshopCgroups()}
	// Ctrl-C: stop after the command that runs now, then clean up as usual.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		interrupted.Store(true)
		b.say("interrupted: cleaning up")
	}()
	return b, nil
}

var (
	interrupted    atomic.Bool
	errInterrupted = errors.New("interrupted")
)

func (b *bench) say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// rt runs the runtime with our --root and returns its output.
func (b *bench) rt(args ...string) (string, error) {
	cmd := exec.Command(b.bin, append([]string{"--root", b.root}, args...)...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", filepath.Base(b.bin), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// timed runs argv to its exit and returns how long that took.
func timed(dir string, argv ...string) (time.Duration, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(out.String()))
	}
	return d, nil
}

// contender is one way of running /bin/true on the same root.
type contender struct {
	label string
	dir   string
	argv  func(i int) []string
	// cycle, instead of argv: a sequence of commands, timed as a whole.
	cycle func(i int) (time.Duration, error)
	times []time.Duration
}

func (b *bench) run() ([]verdict, error) {
	b.say("building the default image once (in %s)", b.root)
	if _, err := b.rt("run", "--net", "none", "--", "/bin/true"); err != nil {
		return nil, err
	}

	// A detached container: exec's target, the monitor to weigh, and the
	// merged root to export for the other runtimes.
	name := "bench-exec"
	b.names = append(b.names, name)
	if _, err := b.rt("run", "-d", "--net", "none", "--name", name, "--", "sleep", "1000"); err != nil {
		return nil, err
	}
	in, err := b.inspect(name)
	if err != nil {
		return nil, err
	}
	b.say("exporting the default image's root (the container's /, one filesystem) to %s", b.rootfs)
	if err := exportRoot(in.Pid, b.rootfs); err != nil {
		return nil, err
	}
	time.Sleep(200 * time.Millisecond) // let the monitor settle in its wait
	monitorKB, err := rssKB(in.Monitor)
	if err != nil {
		return nil, fmt.Errorf("the monitor (PID %d): %v", in.Monitor, err)
	}

	contenders := []*contender{
		{label: "run /bin/true: 06-full-container", argv: func(int) []string {
			return []string{b.bin, "--root", b.root, "run", "--net", "none", "--", "/bin/true"}
		}},
		{label: "run /bin/true: unshare + chroot", argv: func(int) []string {
			return []string{"unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--net", "chroot", b.rootfs, "/bin/true"}
		}},
	}
	var runc *contender
	skipped := map[string]string{} // label -> why
	for _, tool := range []string{"runc", "crun", "bwrap"} {
		c, why := b.prepare(tool)
		if c == nil {
			c = &contender{label: "run /bin/true: " + tool}
			skipped[c.label] = why
		}
		if tool == "runc" && why == "" {
			runc = c
		}
		contenders = append(contenders, c)
	}

	// The OCI lifecycle, as containerd's shim drives it for `docker run`:
	// create (the process waits), start, wait for its exit, delete. The
	// shim is the containers' subreaper, so it is told of the exit by
	// wait4, not by polling `state`; so are we.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %v", err)
	}
	oursBundle, err := b.ociBundle("06-full-container", exec.Command(b.bin, "spec", "--bundle", "."))
	if err != nil {
		return nil, err
	}
	oursCycle := &contender{label: "create+start+delete /bin/true: 06-full-container", cycle: func(i int) (time.Duration, error) {
		return b.lifecycle(b.bin, b.root, oursBundle, fmt.Sprintf("bench-oci-%d", i))
	}}
	contenders = append(contenders, oursCycle)
	var runcCycle *contender
	for _, tool := range []string{"runc", "crun"} {
		c := &contender{label: "create+start+delete /bin/true: " + tool}
		path, err := exec.LookPath(tool)
		bundle := filepath.Join(b.tmp, tool+"-bundle")
		switch {
		case err != nil:
			skipped[c.label] = "skipped: " + tool + " is not installed"
		case skipped["run /bin/true: "+tool] != "":
			skipped[c.label] = skipped["run /bin/true: "+tool]
		default:
			state := filepath.Join(b.tmp, tool+"-oci-state")
			c.cycle = func(i int) (time.Duration, error) {
				return b.lifecycle(path, state, bundle, fmt.Sprintf("bench-oci-%s-%d", tool, i))
			}
			if tool == "runc" {
				runcCycle = c
			}
		}
		contenders = append(contenders, c)
	}

	contenders = append(contenders, &contender{label: "exec /bin/true into a running one", argv: func(int) []string {
		return []string{b.bin, "--root", b.root, "exec", name, "--", "/bin/true"}
	}})
	// What the seccomp filter costs a container's start (compiled and
	// installed by its first process).
	contenders = append(contenders, &contender{label: "run /bin/true: 06-full-container, no seccomp filter", argv: func(int) []string {
		return []string{b.bin, "--root", b.root, "run", "--net", "none", "--security-opt", "seccomp=unconfined", "--", "/bin/true"}
	}})

	b.say("timing %d runs of each (interleaved)", b.runs)
	for i := 0; i < b.runs; i++ {
		for _, c := range contenders {
			if interrupted.Load() {
				return nil, errInterrupted
			}
			var d time.Duration
			var err error
			switch {
			case c.cycle != nil:
				d, err = c.cycle(i)
			case c.argv != nil:
				d, err = timed(c.dir, c.argv(i)...)
			default:
				continue
			}
			if err != nil && c != contenders[0] && c != contenders[1] {
				// Another runtime that cannot run here (crun refuses hybrid
				// cgroups, for one) is reported, not fatal.
				msg := err.Error()
				if i := strings.LastIndex(msg, ": "); i >= 0 && len(msg)-i < 160 {
					msg = msg[i+2:]
				}
				skipped[c.label] = "failed: " + msg
				c.argv, c.cycle = nil, nil
				continue
			}
			if err != nil {
				return nil, err
			}
			c.times = append(c.times, d)
		}
	}

	if interrupted.Load() {
		return nil, errInterrupted
	}
	nb := b.runs
	if nb > 20 {
		nb = 20
	}
	b.say("timing the phases of %d more runs (WORKSHOP_TIMING=1)", nb)
	phaseRows, err := b.breakdown(nb)
	if err != nil {
		return nil, err
	}
	b.say("timing system calls in a container, with Docker's seccomp filter and without")
	syscallRows, err := b.syscallRows()
	if err != nil {
		return nil, err
	}
	b.say("weighing the foreground run while its container sleeps")
	foregroundKB, err := b.foregroundRSS()
	if err != nil {
		return nil, err
	}
	if _, err := b.rt("rm", "-f", name); err != nil {
		return nil, err
	}
	b.names = nil

	var rows []row
	for _, c := range contenders {
		if why, ok := skipped[c.label]; ok {
			rows = append(rows, row{what: c.label, skipped: why})
			continue
		}
		rows = append(rows, timingRow(c.label, c.times))
	}
	rows = append(rows,
		row{what: "VmRSS of `run` while its container runs", median: mb(foregroundKB), p90: "-"},
		row{what: "VmRSS of a detached run's monitor", median: mb(monitorKB), p90: "-"})

	ours, unshare := median(contenders[0].times), median(contenders[1].times)
	var verdicts []verdict
	judge := func(target string, c *contender, a time.Duration) {
		switch {
		case c == nil:
			verdicts = append(verdicts, verdict{target: target, skip: "runc is not installed"})
		case skipped[c.label] != "":
			verdicts = append(verdicts, verdict{target: target, skip: "runc " + skipped[c.label]})
		default:
			verdicts = append(verdicts, fasterBy(target, a, median(c.times), minFasterRunc))
		}
	}
	judge("run >= 2x faster than runc", runc, ours)
	judge("create+start+delete >= 2x faster than runc", runcCycle, median(oursCycle.times))
	verdicts = append(verdicts, info("run / unshare+chroot (information)", ours, unshare))
	for _, c := range contenders {
		if strings.HasSuffix(c.label, ": crun") && skipped[c.label] == "" && len(c.times) > 0 {
			if strings.HasPrefix(c.label, "run ") {
				verdicts = append(verdicts, info("run / crun run (information)", ours, median(c.times)))
			} else {
				verdicts = append(verdicts, info("create+start+delete / crun's (information)", median(oursCycle.times), median(c.times)))
			}
		}
	}
	verdicts = append(verdicts,
		below("monitor VmRSS < 10 MB (detached)", monitorKB, maxMonitorKB),
		below("run VmRSS < 10 MB (foreground)", foregroundKB, maxMonitorKB))

	fmt.Printf("%d runs each, median and 90th percentile, on %s\n", b.runs, machine())
	if fs, err := filesystemOf(b.tmp); err == nil {
		fmt.Printf("the containers' files: %s, on %s\n%s", b.tmp, fs, fs.Warning())
	}
	fmt.Println()
	fmt.Print(table(rows, verdicts))
	fmt.Printf("\nwhere the time of `run /bin/true` goes: %d runs with WORKSHOP_TIMING=1, each phase\ntimed from the mark before it (the cleanup's two halves run side by side)\n\n", nb)
	fmt.Print(table(phaseRows, nil))
	fmt.Printf("\none system call in a loop, in a container: the best of 5 loops of 200000 calls,\nmedian of 5 containers each\n\n")
	fmt.Print(table(syscallRows, nil))
	return verdicts, nil
}

type inspection struct {
	Pid     int `json:"pid"`
	Monitor int `json:"monitor"`
}

func (b *bench) inspect(name string) (inspection, error) {
	var in inspection
	out, err := b.rt("inspect", name)
	if err != nil {
		return in, err
	}
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		return in, fmt.Errorf("inspect %s: %v", name, err)
	}
	if in.Pid == 0 || in.Monitor == 0 {
		return in, fmt.Errorf("inspect %s: no pid or monitor", name)
	}
	return in, nil
}

// exportRoot copies a running container's root filesystem, as its PID 1
// sees it, without what is mounted on it (/proc, /dev, /sys).
func exportRoot(pid int, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	sh := fmt.Sprintf("tar --one-file-system -C /proc/%d/root -cf - . | tar -C %s -xf -", pid, dst)
	if out, err := exec.Command("sh", "-c", sh).CombinedOutput(); err != nil {
		return fmt.Errorf("exporting the root: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if _, err := os.Lstat(filepath.Join(dst, "bin", "true")); err != nil {
		return fmt.Errorf("the exported root has no /bin/true: %v", err)
	}
	return nil
}

// prepare gets another runtime ready to run /bin/true on our exported
// root, or says why it cannot.
func (b *bench) prepare(tool string) (*contender, string) {
	path, err := exec.LookPath(tool)
	if err != nil {
		return nil, "skipped: " + tool + " is not installed"
	}
	label := "run /bin/true: " + tool
	if tool == "bwrap" {
		return &contender{label: label, argv: func(int) []string {
			return []string{path, "--ro-bind", b.rootfs, "/", "--proc", "/proc", "--dev", "/dev",
				"--unshare-pid", "--unshare-uts", "--unshare-ipc", "--unshare-net", "/bin/true"}
		}}, ""
	}
	// runc and crun: an OCI bundle whose config.json is their own default
	// (`spec`), pointed at our root, running /bin/true without a terminal.
	bundle, err := b.ociBundle(tool, exec.Command(path, "spec"))
	if err != nil {
		return nil, "skipped: " + err.Error()
	}
	state := filepath.Join(b.tmp, tool+"-state")
	return &contender{label: label, dir: bundle, argv: func(i int) []string {
		return []string{path, "--root", state, "run", "--bundle", bundle, fmt.Sprintf("bench-%s-%d", tool, i)}
	}}, ""
}

// ociBundle makes an OCI bundle in tmp/TOOL-bundle: the config.json that
// spec (the tool's own `spec` command, run in the bundle) writes, pointed
// at our exported root and running /bin/true without a terminal.
func (b *bench) ociBundle(tool string, spec *exec.Cmd) (string, error) {
	bundle := filepath.Join(b.tmp, tool+"-bundle")
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		return "", err
	}
	spec.Dir = bundle
	if out, err := spec.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s spec: %v: %s", tool, err, strings.TrimSpace(string(out)))
	}
	cfgPath := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(cfgPath)
	var cfg map[string]any
	if err == nil {
		err = json.Unmarshal(raw, &cfg)
	}
	if err != nil {
		return "", fmt.Errorf("reading %s's config.json: %v", tool, err)
	}
	process, _ := cfg["process"].(map[string]any)
	if process == nil {
		return "", fmt.Errorf("%s's config.json has no process", tool)
	}
	process["terminal"] = false
	process["args"] = []string{"/bin/true"}
	cfg["root"] = map[string]any{"path": b.rootfs, "readonly": true}
	if raw, err = json.MarshalIndent(cfg, "", "  "); err == nil {
		err = os.WriteFile(cfgPath, raw, 0o644)
	}
	if err != nil {
		return "", fmt.Errorf("writing %s's config.json: %v", tool, err)
	}
	return bundle, nil
}

// lifecycle runs /bin/true through an OCI runtime's verbs, as containerd's
// shim does: `create --bundle B --pid-file F ID` (the process waits),
// `start ID`, wait4 for the process's exit (we are its subreaper, as the
// shim is), `delete -f ID`. It returns how long all that took.
func (b *bench) lifecycle(runtime, state, bundle, id string) (time.Duration, error) {
	pidFile := filepath.Join(b.tmp, "oci.pid")
	// The container's output goes to a file: a pipe would stay open as
	// long as the container runs, and create must return before that.
	out, err := os.Create(filepath.Join(b.tmp, "oci.out"))
	if err != nil {
		return 0, err
	}
	defer out.Close()
	verb := func(args ...string) error {
		cmd := exec.Command(runtime, append([]string{"--root", state}, args...)...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			msg, _ := os.ReadFile(out.Name())
			return fmt.Errorf("%s %s: %v: %s", filepath.Base(runtime), strings.Join(args, " "), err, strings.TrimSpace(string(msg)))
		}
		return nil
	}
	_ = os.Remove(pidFile)
	c := ociContainer{runtime: runtime, state: state, id: id}
	b.oci = append(b.oci, c)
	start := time.Now()
	if err := verb("create", "--bundle", bundle, "--pid-file", pidFile, id); err != nil {
		return 0, err
	}
	raw, err := os.ReadFile(pidFile)
	pid, perr := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || perr != nil || pid <= 0 {
		return 0, fmt.Errorf("%s create: no PID in --pid-file (%q)", filepath.Base(runtime), raw)
	}
	if err := verb("start", id); err != nil {
		return 0, err
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		return 0, fmt.Errorf("%s: waiting for the container's process %d: %v", filepath.Base(runtime), pid, err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return 0, fmt.Errorf("%s: /bin/true in the container did not exit 0 (wait status %#x)", filepath.Base(runtime), uint32(ws))
	}
	if err := verb("delete", "-f", id); err != nil {
		return 0, err
	}
	d := time.Since(start)
	b.oci = b.oci[:len(b.oci)-1]
	return d, nil
}

// foregroundRSS runs a container in the foreground and weighs the `run`
// process once the container's command runs: the largest of three runs.
func (b *bench) foregroundRSS() (int64, error) {
	var most int64
	for k := 0; k < 3; k++ {
		cmd := exec.Command(b.bin, "--root", b.root, "run", "--net", "none", "--", "sleep", "1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		kB, err := rssWhenChildIs(cmd.Process.Pid, "sleep", 5*time.Second)
		if werr := cmd.Wait(); werr != nil && err == nil {
			err = fmt.Errorf("run -- sleep 1: %v: %s", werr, strings.TrimSpace(out.String()))
		}
		if err != nil {
			return 0, err
		}
		if kB > most {
			most = kB
		}
	}
	return most, nil
}

// rssWhenChildIs waits until a child of pid runs comm, then reads pid's
// resident memory.
func rssWhenChildIs(pid int, comm string, timeout time.Duration) (int64, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, c := range children(pid) {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c)); err == nil && strings.TrimSpace(string(b)) == comm {
				return rssKB(pid)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("the container's %s never started under PID %d", comm, pid)
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}

// rssKB reads VmRSS (resident memory, in kB) from /proc/PID/status.
func rssKB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// cleanup removes every container, mount and directory we made, and says
// so if anything stays.
func (b *bench) cleanup() {
	for _, n := range b.names {
		_, _ = b.rt("rm", "-f", n)
	}
	b.names = nil
	// Every run here is --net none; should one ever make the bridge network,
	// it goes with the root (a bridge outlives its root otherwise).
	_, _ = b.rt("network", "prune")
	for _, c := range b.oci {
		cmd := exec.Command(c.runtime, "--root", c.state, "delete", "-f", c.id)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.say("%s delete -f %s: %v: %s", filepath.Base(c.runtime), c.id, err, strings.TrimSpace(string(out)))
		}
	}
	b.oci = nil
	reapOrphans()
	if ents, _ := os.ReadDir(filepath.Join(b.root, "containers")); len(ents) > 0 {
		for _, e := range ents {
			// (.exe-lower is the runtime's own: the empty layer of its
			// sealed copy, not a container's.)
			if e.IsDir() && e.Name() != ".exe-lower" {
				b.say("left behind: container state %s", e.Name())
			}
		}
	}
	if m, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(m), b.tmp) {
		b.say("left behind: mounts under %s (see /proc/self/mountinfo)", b.tmp)
	} else if err := os.RemoveAll(b.tmp); err != nil {
		b.say("removing %s: %v", b.tmp, err)
	}
	for g := range workshopCgroups() {
		// A group with processes belongs to a container that still runs:
		// another runtime's (tests, a learner), not ours, which all ended.
		if procs, err := os.ReadFile(filepath.Join(g, "cgroup.procs")); err == nil && len(bytes.TrimSpace(procs)) == 0 && !b.before[g] {
			b.say("left behind: cgroup %s", g)
		}
	}
}

// reapOrphans collects the exit status of any container process left to
// us as their subreaper (after a failed lifecycle), so none stays a zombie.
func reapOrphans() {
	for {
		var ws unix.WaitStatus
		if pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil); pid <= 0 || err != nil {
			return
		}
	}
}

// workshopCgroups lists the runtime's container cgroups in every hierarchy.
func workshopCgroups() map[string]bool {
	out := map[string]bool{}
	for _, pattern := range []string{"/sys/fs/cgroup/*/workshop/*", "/sys/fs/cgroup/workshop/*"} {
		m, _ := filepath.Glob(pattern)
		for _, d := range m {
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				out[d] = true
			}
		}
	}
	return out
}

// machine names the CPU and kernel, for the table's heading.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	var u syscall.Utsname
	kernel := "?"
	if syscall.Uname(&u) == nil {
		var s []byte
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			s = append(s, byte(c))
		}
		kernel = string(s)
	}
	cpus := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		cpus = strings.Count(string(b), "\nprocessor")
		if strings.HasPrefix(string(b), "processor") {
			cpus++
		}
	}
	return fmt.Sprintf("%s x%d, Linux %s", cpu, cpus, kernel)
}
