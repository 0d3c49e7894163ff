package main

// The OCI runtime interface: the five verbs runc, crun and youki obey
// (create, start, state, kill, delete) and `spec`, so that Docker or
// containerd can use this runtime for real images. A bundle is a directory
// holding a root filesystem and config.json; config.json is read with the
// runtime spec's own Go types and turned into the same Spec that `run`
// builds, so both paths share every line of the container's setup.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/03-cgroups-cpu/cgroup"
	"github.com/container-internals/workshop/06-full-container/devices"
	"github.com/container-internals/workshop/06-full-container/seccomp"
	"github.com/container-internals/workshop/internal/stage"
)

func ociCommands() []*cli.Command {
	return []*cli.Command{
		{Name: "create", Usage: "OCI: set up a container from a bundle; its process waits for start", ArgsUsage: "ID",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "the bundle `DIR` (config.json and the root filesystem)"},
				&cli.StringFlag{Name: "pid-file", Usage: "write the container process's PID to `FILE`"},
				&cli.StringFlag{Name: "console-socket", Usage: "process.terminal: send the pty's master to this unix socket (tty.go)"},
				&cli.BoolFlag{Name: "no-pivot", Usage: "not supported: this runtime always uses pivot_root"},
				&cli.BoolFlag{Name: "no-new-keyring", Usage: "accepted: this runtime never makes a session keyring"},
				&cli.IntFlag{Name: "preserve-fds", Usage: "not supported (must be 0)"},
			}, Action: createCmd},
		{Name: "start", Usage: "OCI: run the program of a created container", ArgsUsage: "ID", Action: startCmd},
		{Name: "state", Usage: "OCI: print a container's state as JSON", ArgsUsage: "ID", Action: stateCmd},
		{Name: "kill", Usage: "OCI: send a signal (TERM, KILL, 9 ...) to the container's process", ArgsUsage: "ID [SIGNAL]",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "signal every process of the container"}}, Action: killCmd},
		{Name: "delete", Usage: "OCI: remove a stopped container's resources", ArgsUsage: "ID",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill it first if it is not stopped"}}, Action: deleteCmd},
		{Name: "spec", Usage: "OCI: write a default config.json, as `runc spec` does",
			Flags: []cli.Flag{&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "write it in `DIR`"}}, Action: specCmd},
	}
}

// An ID becomes a directory name (the state) and a cgroup name: no '/',
// no leading '.', so that "../x" can never name a path outside the root.
// runc's rule, and a length a file name can hold.
var idRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`) })

// checkID refuses an ID that could not be a directory of its own.
func checkID(id string) error {
	if !idRE().MatchString(id) {
		return stage.Fail("invalid container ID %q: use up to 128 letters, digits, '_', '.' and '-', starting with a letter or digit", id)
	}
	return nil
}

func createCmd(c *cli.Context) error {
	if c.Args().Len() != 1 {
		return stage.Fail("usage: create [--bundle DIR] [--pid-file FILE] ID")
	}
	id := c.Args().First()
	if err := checkID(id); err != nil {
		return err
	}
	switch {
	case c.Bool("no-pivot"):
		return stage.Fail("--no-pivot is not supported: this runtime always changes root with pivot_root")
	case c.Int("preserve-fds") > 0:
		return stage.Fail("--preserve-fds is not supported")
	}
	bundle, err := filepath.Abs(c.String("bundle"))
	if err != nil {
		return stage.Fail("--bundle: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return stage.Fail("no bundle at %s: it needs a config.json (make one with `spec`) and a root filesystem", bundle)
	}
	var cfg specs.Spec
	if err := json.Unmarshal(b, &cfg); err != nil {
		return stage.Fail("%s/config.json: %v", bundle, err)
	}
	spec, res, err := fromOCI(&cfg, bundle)
	if err != nil {
		return stage.Fail("config.json: %v", err)
	}
	console, err := ociConsole(spec, c.String("console-socket"))
	if err != nil {
		return err
	}
	rt, err := openRuntime(c, false)
	if err != nil {
		return err
	}
	ctr, err := rt.createFromBundle(id, bundle, spec, res, cfg.Annotations, console)
	if err != nil {
		return err
	}
	// The container's process waits at the FIFO; this command returns, as
	// runc's does. Whoever started us (containerd's shim) reaps it.
	cmd, link, err := rt.start(ctr, nil, false)
	if err != nil {
		rt.destroy(ctr, true)
		return err
	}
	if err := rt.serve(ctr, link); err != nil {
		link.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		rt.destroy(ctr, true)
		return stage.Fail("%v", err)
	}
	link.Close()
	if !link.Completed() {
		// It died during setup: its reason is on the container's stderr,
		// and it told us, for --log (where Docker looks for it).
		err := cmd.Wait()
		rt.destroy(ctr, true)
		status, ok := stage.StatusOf(err)
		if !ok || status == 0 {
			status = 1
		}
		if why := link.Failure(); why != "" {
			return cli.Exit(why, status)
		}
		return cli.Exit("the container's process exited during setup", status)
	}
	ctr.State.Status = Created
	if err := rt.dirs.save(ctr.State); err != nil {
		return err
	}
	if p := c.String("pid-file"); p != "" {
		if err := os.WriteFile(p, []byte(strconv.Itoa(ctr.State.Pid)), 0o644); err != nil {
			return stage.Fail("--pid-file: %v", err)
		}
	}
	_ = cmd.Process.Release()
	return nil
}

// createFromBundle records an OCI container and its cgroups. Its root is
// the bundle's own directory, used as it is (no layers: the caller, such as
// containerd, prepared it).
func (rt *Runtime) createFromBundle(id, bundle string, spec *Spec, res *runOptions, annotations map[string]string, console *os.File) (*Container, error) {
	unlock, err := rt.dirs.lock()
	if err != nil {
		return nil, stage.Fail("cannot lock %s: %v", rt.dirs.State, err)
	}
	defer unlock()
	if _, err := os.Stat(rt.dirs.containerDir(id)); err == nil {
		return nil, stage.Fail("a container with ID %s exists already: `delete` it first, or choose another ID", id)
	}
	cgroupPath := "workshop/" + id
	if res.name != "" {
		cgroupPath = res.name
	}
	all, _ := rt.dirs.all()
	if err := claim(all, id, id, cgroupPath); err != nil {
		return nil, stage.Fail("%v: choose another ID (or linux.cgroupsPath)", err)
	}
	// The cgroup is recorded once this create has made it, not before: a
	// cleanup (this one's, or a `delete` after it was killed) removes the
	// recorded cgroup and kills what is in it, and one that existed
	// already, with its processes, is not ours.
	st := &State{ID: id, Name: id, Image: bundle, RootDir: spec.Rootfs, Bundle: bundle, Command: spec.Args,
		Hostname: spec.Hostname, Created: time.Now().UTC(), Status: Creating,
		Annotations: annotations}
	st.Monitor, st.MonitorStart = os.Getpid(), startTime(os.Getpid())
	if err := os.MkdirAll(rt.dirs.containerDir(id), 0o700); err != nil {
		return nil, err
	}
	ctr := &Container{State: st, Spec: spec, console: console}
	fail := func(err error) (*Container, error) {
		rt.destroyLocked(ctr, true)
		return nil, err
	}
	if err := rt.dirs.save(st); err != nil {
		return fail(err)
	}
	if ctr.Group, err = rt.createCgroup(cgroupPath, res); err != nil {
		return fail(err)
	}
	st.Cgroup, st.CgroupPaths = cgroupPath, ctr.Group.Paths()
	if res.pids > 0 {
		st.PidsLimit = res.pids
	}
	if err := rt.dirs.save(st); err != nil {
		return fail(err)
	}
	// Cloned now, as run does: its Go runtime starts while the rest is
	// written; it reads the spec once start (below, in createCmd) says go.
	if ctr.pending, err = rt.spawn(ctr, nil, false); err != nil {
		return fail(err)
	}
	// The device rules, while its Go runtime starts: it waits for go.
	if len(res.devRules) > 0 {
		if err := rt.applyDeviceRules(ctr.Group, res.devRules); err != nil {
			return fail(stage.Fail("%v", err))
		}
	}
	spec.ID = id
	if spec.Hooks != nil {
		hs := hookState(id, bundle, annotations, "", 0)
		spec.HookState = &hs
	}
	spec.WaitStart, spec.WaitReady = true, st.PidsLimit > 0
	fifo := filepath.Join(rt.dirs.containerDir(id), "exec.fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return fail(err)
	}
	spec.StartFifo = fifo
	if spec.hasUserns() { // its first process is the container's root: it reads both, through stateDirFd
		spec.StartFifo = stateDirPath("exec.fifo")
	}
	if err := writeSpec(rt.dirs.configPath(id), spec); err != nil {
		return fail(err)
	}
	if spec.hasUserns() {
		if err := errors.Join(os.Chmod(rt.dirs.containerDir(id), 0o711),
			spec.giveToContainerRoot(rt.dirs.configPath(id)), spec.giveToContainerRoot(fifo)); err != nil {
			return fail(err)
		}
	}
	return ctr, nil // start saves the state, with the PID
}

// ociStatus is the status the spec asks for, read from the process itself:
// a container whose process has exited is stopped, whoever noticed or not.
func ociStatus(st *State) string {
	if st.Status == Creating {
		return Creating
	}
	if !alive(st.Pid, st.PidStart) {
		return Stopped
	}
	if st.Status == Created {
		return Created
	}
	if frozen(st) {
		return Paused
	}
	return Running
}

// frozen reads the freezer of a running container's cgroup.
func frozen(st *State) bool {
	for _, dir := range st.CgroupPaths {
		for _, f := range []string{"freezer.state", "cgroup.freeze"} {
			if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
				if s := strings.TrimSpace(string(b)); s == "FROZEN" || s == "FREEZING" || s == "1" {
					return true
				}
			}
		}
	}
	return false
}

var errNoContainer = errors.New("does not exist")

func ociContainer(c *cli.Context) (*Runtime, *State, error) {
	if c.Args().Len() < 1 {
		return nil, nil, stage.Fail("give the container ID")
	}
	// OCI callers name a container by its exact ID (no name, no prefix),
	// and the ID is a path: checked first.
	id := c.Args().First()
	if err := checkID(id); err != nil {
		return nil, nil, err
	}
	rt, err := openRuntime(c, false)
	if err != nil {
		return nil, nil, err
	}
	st, err := rt.dirs.load(id)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("container %s %w", id, errNoContainer)
	}
	if err != nil {
		return nil, nil, stage.Fail("%v", err)
	}
	return rt, st, nil
}

func startCmd(c *cli.Context) error {
	rt, st, err := ociContainer(c)
	if err != nil {
		return err
	}
	if s := ociStatus(st); s != Created {
		return stage.Fail("container %s is %s: start needs a created container", st.ID, s)
	}
	if spec, err := readSpec(rt.dirs.configPath(st.ID)); err == nil && spec.NoProcess {
		return stage.Fail("container %s was created without a process in config.json: there is nothing to start (the runtime spec requires one at start); delete it", st.ID)
	}
	fifo := filepath.Join(rt.dirs.containerDir(st.ID), "exec.fifo")
	// Non-blocking, so that a process that died meanwhile cannot hang us:
	// opening the reading end releases the process blocked opening the
	// writing end; it then writes one byte and execs the program.
	fd, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return stage.Fail("container %s: %v", st.ID, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := unix.Read(fd, buf)
		if n == 1 {
			break
		}
		if (err != nil && err != unix.EAGAIN) || time.Now().After(deadline) || !alive(st.Pid, st.PidStart) {
			return stage.Fail("container %s did not start: its process is gone", st.ID)
		}
		// Wait for its byte (or 50 ms, to look at it again).
		_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 50)
	}
	_ = os.Remove(fifo)
	st.Status = Running
	if err := rt.dirs.save(st); err != nil {
		return err
	}
	// poststart hooks: the command runs; a failure is only a warning.
	if spec, err := readSpec(rt.dirs.configPath(st.ID)); err == nil && spec.Hooks != nil && spec.HookState != nil {
		hs := *spec.HookState
		hs.Status, hs.Pid = specs.StateRunning, st.Pid
		if err := runHooks("poststart", spec.Hooks.Poststart, hs, nil); err != nil {
			warnOCI("%v", err)
		}
	}
	return nil
}

func stateCmd(c *cli.Context) error {
	_, st, err := ociContainer(c)
	if err != nil {
		return err
	}
	out := specs.State{Version: specs.Version, ID: st.ID, Status: specs.ContainerState(ociStatus(st)),
		Bundle: st.Bundle, Annotations: st.Annotations}
	if out.Status != specs.StateStopped {
		out.Pid = st.Pid
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Println(string(b))
	return nil
}

func killCmd(c *cli.Context) error {
	rt, st, err := ociContainer(c)
	if err != nil {
		return err
	}
	sig := unix.SIGTERM
	if c.Args().Len() > 1 {
		if sig, err = parseSignal(c.Args().Get(1)); err != nil {
			return err
		}
	}
	if s := ociStatus(st); s != Created && s != Running && s != Paused {
		return stage.Fail("container %s is %s: there is no process to signal", st.ID, s)
	}
	if c.Bool("all") {
		if g, err := rt.openGroup(st.Cgroup); err == nil {
			procs, _ := g.Procs()
			for _, p := range procs {
				if p > 0 { // 0: a process outside our PID namespace's view
					_ = unix.Kill(p, sig)
				}
			}
			thawToDie(g, sig)
			return nil
		}
	}
	if err := st.signal(sig); err != nil {
		return stage.Fail("kill %s: %v", st.ID, err)
	}
	if g, err := rt.openGroup(st.Cgroup); err == nil {
		thawToDie(g, sig)
	}
	return nil
}

// thawToDie lets a paused container's processes act on a SIGKILL: frozen,
// they would never see it (runc thaws them the same way).
func thawToDie(g *cgroup.Group, sig unix.Signal) {
	if frozen, err := g.Frozen(); sig == unix.SIGKILL && err == nil && frozen {
		_ = g.Thaw()
	}
}

func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, stage.Fail("invalid signal %q: give a name such as TERM or KILL, or a number 1-64", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, stage.Fail("invalid signal %q: give a name such as TERM or KILL, or a number 1-64", s)
}

func deleteCmd(c *cli.Context) error {
	rt, st, err := ociContainer(c)
	if err != nil && c.Bool("force") && errors.Is(err, errNoContainer) {
		return nil // gone already: what --force asks for (runc's answer too; containerd relies on it)
	}
	if err != nil {
		return err
	}
	if s := ociStatus(st); s != Stopped {
		if !c.Bool("force") {
			return stage.Fail("container %s is %s: delete needs a stopped container (`kill` it, or `delete --force`)", st.ID, s)
		}
		// A container left in creating (its create was killed) may have no
		// PID: signal refuses that, and the cgroup's processes go below.
		_ = st.signal(unix.SIGKILL)
		if !waitGone(st, 5*time.Second) {
			return stage.Fail("container %s: its process did not die after SIGKILL", st.ID)
		}
	}
	// poststop hooks, once everything of the container is gone: read
	// before its state directory goes with it. A failure is a warning.
	spec, _ := readSpec(rt.dirs.configPath(st.ID))
	rt.destroy(&Container{State: st}, true)
	if spec != nil && spec.Hooks != nil && spec.HookState != nil {
		hs := *spec.HookState
		hs.Status = specs.StateStopped
		if err := runHooks("poststop", spec.Hooks.Poststop, hs, nil); err != nil {
			warnOCI("%v", err)
		}
	}
	return nil
}

// specCmd writes the default config.json: the same container `run` makes,
// with the root filesystem in the bundle's rootfs/ directory.
func specCmd(c *cli.Context) error {
	path := filepath.Join(c.String("bundle"), "config.json")
	if _, err := os.Stat(path); err == nil {
		return stage.Fail("%s exists already: remove it first", path)
	}
	b, _ := json.MarshalIndent(defaultOCISpec(), "", "\t")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return stage.Fail("%v", err)
	}
	return nil
}

func defaultOCISpec() *specs.Spec {
	var mounts []specs.Mount
	for _, m := range defaultMounts() {
		mounts = append(mounts, specs.Mount{Destination: m.Target, Type: m.Type, Source: m.Source, Options: mountOptions(m)})
	}
	rlimit := specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			User: specs.User{UID: 0, GID: 0},
			Args: []string{"sh"},
			Env:  []string{defaultPATH, "TERM=xterm"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{Bounding: defaultCaps, Effective: defaultCaps,
				Permitted: defaultCaps},
			Rlimits:         []specs.POSIXRlimit{rlimit},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "workshop",
		Mounts:   mounts,
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
				{Type: specs.CgroupNamespace}},
			MaskedPaths:   defaultMasked,
			ReadonlyPaths: defaultReadonly,
		},
	}
}

// mountOptions writes a Mount's flags the way config.json spells them.
func mountOptions(m Mount) []string {
	var out []string
	for _, o := range mountOptionTable {
		if o.set && o.flag != 0 && m.Flags&o.flag == o.flag && o.name != "rw" {
			out = append(out, o.name)
		}
	}
	if m.Data != "" {
		out = append(out, strings.Split(m.Data, ",")...)
	}
	return out
}

var mountOptionTable = []struct {
	name string
	flag uintptr
	set  bool // set the flag (true) or clear it (false)
}{
	{"ro", unix.MS_RDONLY, true}, {"rw", unix.MS_RDONLY, false},
	{"nosuid", unix.MS_NOSUID, true}, {"suid", unix.MS_NOSUID, false},
	{"nodev", unix.MS_NODEV, true}, {"dev", unix.MS_NODEV, false},
	{"noexec", unix.MS_NOEXEC, true}, {"exec", unix.MS_NOEXEC, false},
	{"strictatime", unix.MS_STRICTATIME, true}, {"relatime", unix.MS_RELATIME, true},
	{"noatime", unix.MS_NOATIME, true}, {"nodiratime", unix.MS_NODIRATIME, true},
	{"sync", unix.MS_SYNCHRONOUS, true}, {"async", unix.MS_SYNCHRONOUS, false},
	{"bind", unix.MS_BIND, true}, {"rbind", unix.MS_BIND | unix.MS_REC, true},
}

var propagationTable = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE, "slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED, "unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE,
}

var rlimitTable = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// fromOCI turns config.json into the runtime's Spec (and the resource
// limits into the options `run` takes). Whatever it cannot honour it
// refuses, naming the field: a runtime that silently ignores a setting is
// worse than one that says no.
func fromOCI(c *specs.Spec, bundle string) (*Spec, *runOptions, error) {
	// process is optional at create and required at start (the spec's
	// rule): without one, everything is set up, and start refuses.
	noProcess := c.Process == nil
	if noProcess {
		c.Process = &specs.Process{Args: []string{"(none)"}, Cwd: "/"}
	}
	if err := refuseUnsupported(c); err != nil {
		return nil, nil, err
	}
	if err := checkHooks(c.Hooks); err != nil {
		return nil, nil, err
	}
	p, l := c.Process, c.Linux
	root := c.Root.Path
	if !filepath.IsAbs(root) {
		root = filepath.Join(bundle, root)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return nil, nil, fmt.Errorf("root.path %s is not a directory: put the root filesystem there", root)
	}
	s := &Spec{
		Hostname: c.Hostname, Args: p.Args, Env: p.Env, Cwd: p.Cwd,
		UID: int(p.User.UID), GID: int(p.User.GID), Umask: p.User.Umask,
		Rootfs: root, BindRoot: true, Readonly: c.Root.Readonly,
		Propagation: unix.MS_SLAVE, Devices: defaultDevices(), Symlinks: defaultSymlinks()[:5], // not /dev/core: runc (as Debian ships it) makes none for a bundle
		MaskedPaths: l.MaskedPaths, ReadonlyPaths: l.ReadonlyPaths, Sysctl: l.Sysctl,
		NoNewPrivs: p.NoNewPrivileges, OOMScoreAdj: p.OOMScoreAdj,
		JoinNamespaces: map[string]string{},
		Hooks:          c.Hooks, NoProcess: noProcess,
	}
	for _, step := range []func(*specs.Spec, string, *Spec) error{ociProcess, ociNamespaces, ociMountsAndDevices} {
		if err := step(c, bundle, s); err != nil {
			return nil, nil, err
		}
	}
	res, err := ociResources(l)
	if err != nil {
		return nil, nil, err
	}
	if len(res.devRules) > 0 {
		res.devRules = append(append(append([]devices.Rule(nil), res.devRules...), nodeRules(s.Devices)...), alwaysAllowed()...)
	}
	return s, res, nil
}

// refuseUnsupported refuses, naming the field, what this runtime cannot
// honour: a runtime that silently ignores a setting is worse than one that
// says no.
func refuseUnsupported(c *specs.Spec) error {
	if !strings.HasPrefix(c.Version, "1.") {
		return fmt.Errorf("ociVersion %q: this runtime reads version 1.x configs", c.Version)
	}
	refuse := func(field string) error { return fmt.Errorf("%s is not supported by this runtime: remove it", field) }
	switch {
	case c.Root == nil:
		return errors.New("root is missing: it names the root filesystem")
	case c.Linux == nil:
		return errors.New("linux is missing")
	case c.Domainname != "":
		return refuse("domainname")
	}
	p, l := c.Process, c.Linux
	switch {
	case len(p.Args) == 0:
		return errors.New("process.args is empty: say what to run")
	case p.Scheduler != nil:
		return refuse("process.scheduler")
	case p.IOPriority != nil:
		return refuse("process.ioPriority")
	case p.ExecCPUAffinity != nil:
		return refuse("process.execCPUAffinity")
	case l.IntelRdt != nil:
		return refuse("linux.intelRdt")
	case l.Personality != nil:
		return refuse("linux.personality")
	case len(l.TimeOffsets) > 0:
		return refuse("linux.timeOffsets")
	}
	return checkLSMFields(p.ApparmorProfile, p.SelinuxLabel, l.MountLabel)
}

// ociProcess reads process: groups, capabilities, rlimits, and the
// seccomp profile (checked here, so that a bad one fails create with the
// field named; compiled and installed by the container's first process).
func ociProcess(c *specs.Spec, _ string, s *Spec) error {
	p, l := c.Process, c.Linux
	s.Terminal, s.ConsoleSize = p.Terminal, p.ConsoleSize
	for _, g := range p.User.AdditionalGids {
		s.Groups = append(s.Groups, int(g))
	}
	if l.Seccomp != nil {
		// Checked here, so that a bad profile fails create with the field
		// named; compiled and installed by the container's first process.
		if err := seccomp.Check(l.Seccomp); err != nil {
			return fmt.Errorf("linux.seccomp.%v", err)
		}
		s.Seccomp = l.Seccomp
	}
	if p.Capabilities != nil {
		caps := p.Capabilities
		for field, list := range map[string][]string{"bounding": caps.Bounding, "effective": caps.Effective,
			"permitted": caps.Permitted, "inheritable": caps.Inheritable, "ambient": caps.Ambient} {
			if _, err := capBits(list); err != nil {
				return fmt.Errorf("process.capabilities.%s: %v", field, err)
			}
		}
		s.Capabilities = caps.Bounding
		s.CapSets = &CapSets{Effective: caps.Effective, Permitted: caps.Permitted, Inheritable: caps.Inheritable, Ambient: caps.Ambient}
	}
	for i, r := range p.Rlimits {
		t, ok := rlimitTable[r.Type]
		if !ok {
			return fmt.Errorf("process.rlimits[%d].type %q is not a Linux resource limit", i, r.Type)
		}
		s.Rlimits = append(s.Rlimits, Rlimit{Type: t, Soft: r.Soft, Hard: r.Hard})
	}
	if err := checkRlimits(p.Rlimits); err != nil {
		return err
	}
	if l.RootfsPropagation != "" {
		prop, ok := propagationTable[l.RootfsPropagation]
		if !ok {
			return fmt.Errorf("linux.rootfsPropagation %q: use private, slave, shared or unbindable (r-)", l.RootfsPropagation)
		}
		s.Propagation = prop
	}
	return nil
}

// ociNamespaces reads linux.namespaces, and checks what depends on them
// (the hostname, the sysctls, what needs a mount namespace of its own).
func ociNamespaces(c *specs.Spec, _ string, s *Spec) error {
	l := c.Linux
	// Namespaces: new ones, or joined by path (nsjoin.go says how each
	// kind is joined).
	for i, ns := range l.Namespaces {
		kind, ok := map[specs.LinuxNamespaceType]string{specs.PIDNamespace: "pid", specs.NetworkNamespace: "net",
			specs.MountNamespace: "mnt", specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts",
			specs.CgroupNamespace: "cgroup", specs.UserNamespace: "user"}[ns.Type]
		if !ok {
			return fmt.Errorf("linux.namespaces[%d].type %q is not supported (the time namespace is not)", i, ns.Type)
		}
		if slices.Contains(s.Namespaces, kind) || s.JoinNamespaces[kind] != "" {
			return fmt.Errorf("linux.namespaces[%d]: the %s namespace is named twice", i, kind)
		}
		if ns.Path != "" {
			if err := checkNamespaceFile(ns.Path, kind); err != nil {
				return fmt.Errorf("linux.namespaces[%d].path: %v", i, err)
			}
			s.JoinNamespaces[kind] = ns.Path
			continue
		}
		s.Namespaces = append(s.Namespaces, kind)
	}
	for _, m := range l.UIDMappings {
		s.UIDMappings = append(s.UIDMappings, IDMap{ContainerID: m.ContainerID, HostID: m.HostID, Size: m.Size})
	}
	for _, m := range l.GIDMappings {
		s.GIDMappings = append(s.GIDMappings, IDMap{ContainerID: m.ContainerID, HostID: m.HostID, Size: m.Size})
	}
	if p := s.JoinNamespaces["user"]; p != "" && len(s.UIDMappings) == 0 && len(s.GIDMappings) == 0 {
		var err error
		if s.UIDMappings, s.GIDMappings, err = joinedMaps(p); err != nil {
			return fmt.Errorf("linux.namespaces: %v", err)
		}
	}
	if err := checkUsernsMaps(s); err != nil {
		return err
	}
	if len(s.Hostname) > maxHostname {
		return fmt.Errorf("hostname is %d bytes long: give at most %d (the kernel's HOST_NAME_MAX)", len(s.Hostname), maxHostname)
	}
	if s.Hostname != "" && !slices.Contains(s.Namespaces, "uts") && s.JoinNamespaces["uts"] == "" {
		return errors.New("hostname needs a uts namespace in linux.namespaces")
	}
	if err := needsOwnMountNamespace(c, s); err != nil {
		return err
	}
	for k := range s.Sysctl {
		if err := checkSysctl(k, s); err != nil {
			return fmt.Errorf("linux.sysctl: %v", err)
		}
	}
	return nil
}

// needsOwnMountNamespace refuses, naming the field, what would have to be
// mounted without a mount namespace of the container's own: without one,
// a mount lands in the host's namespace (or in the other container's whose
// namespace is joined).
func needsOwnMountNamespace(c *specs.Spec, s *Spec) error {
	mode := s.mountMode()
	if mode == mountsNew {
		return nil
	}
	where := "the host's"
	if mode == mountsJoined {
		where = "the joined one, another's"
	}
	for _, f := range []struct {
		field string
		set   bool
	}{
		{"mounts", len(c.Mounts) > 0}, {"linux.maskedPaths", len(s.MaskedPaths) > 0},
		{"linux.readonlyPaths", len(s.ReadonlyPaths) > 0}, {"root.readonly", s.Readonly},
		{"linux.sysctl", len(s.Sysctl) > 0}, {"linux.rootfsPropagation", c.Linux.RootfsPropagation != ""},
	} {
		if f.set {
			return fmt.Errorf("%s needs a new mount namespace in linux.namespaces: without one it would be mounted in %s; remove it", f.field, where)
		}
	}
	return nil
}

// ociMountsAndDevices reads mounts and linux.devices.
func ociMountsAndDevices(c *specs.Spec, bundle string, s *Spec) error {
	l := c.Linux
	for i, m := range c.Mounts {
		mm, err := ociMount(m, bundle)
		if err != nil {
			return fmt.Errorf("mounts[%d] (%s): %v", i, m.Destination, err)
		}
		s.Mounts = append(s.Mounts, mm)
	}
	for i, d := range l.Devices {
		typ, ok := map[string]uint32{"c": unix.S_IFCHR, "u": unix.S_IFCHR, "b": unix.S_IFBLK, "p": unix.S_IFIFO}[d.Type]
		if !ok || !filepath.IsAbs(d.Path) {
			return fmt.Errorf("linux.devices[%d]: type must be c, b, u or p and path absolute", i)
		}
		dev := Device{Path: d.Path, Type: typ, Major: uint32(d.Major), Minor: uint32(d.Minor), Mode: 0o666}
		if d.FileMode != nil {
			dev.Mode = uint32(d.FileMode.Perm())
		}
		if d.UID != nil {
			dev.UID = int(*d.UID)
		}
		if d.GID != nil {
			dev.GID = int(*d.GID)
		}
		s.Devices = append(s.Devices, dev)
	}
	return nil
}

// ociMount turns one mounts[] entry into a Mount.
func ociMount(m specs.Mount, bundle string) (Mount, error) {
	if !filepath.IsAbs(m.Destination) {
		return Mount{}, errors.New("destination must be an absolute path")
	}
	if len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
		return Mount{}, errors.New("idmapped mounts are not supported")
	}
	out := Mount{Source: m.Source, Target: m.Destination, Type: m.Type}
	var data []string
	for _, o := range m.Options {
		found := false
		for _, t := range mountOptionTable {
			if t.name == o {
				if t.set {
					out.Flags |= t.flag
				} else {
					out.Flags &^= t.flag
				}
				found = true
			}
		}
		if _, ok := propagationTable[o]; ok {
			found = true // the root's propagation covers the mounts under it
		}
		if !found {
			if strings.Contains(o, "=") || o == "newinstance" {
				data = append(data, o)
				continue
			}
			return Mount{}, fmt.Errorf("option %q is not supported", o)
		}
	}
	out.Data = strings.Join(data, ",")
	switch m.Type {
	case "proc", "tmpfs", "devpts", "mqueue", "sysfs", "cgroup", "cgroup2":
	case "bind", "":
		if out.Flags&unix.MS_BIND == 0 {
			return Mount{}, fmt.Errorf("type %q needs the bind or rbind option", m.Type)
		}
		out.Type = ""
		if !filepath.IsAbs(out.Source) {
			out.Source = filepath.Join(bundle, out.Source)
		}
		if _, err := os.Stat(out.Source); err != nil {
			return Mount{}, fmt.Errorf("source %s does not exist", out.Source)
		}
	default:
		return Mount{}, fmt.Errorf("type %q is not supported (proc, tmpfs, devpts, mqueue, sysfs, cgroup, bind are)", m.Type)
	}
	return out, nil
}

// emptyBlockIO: Docker sends a blockIO with weight 0 and no device lists
// for every container; it asks for nothing, so there is nothing to refuse.
func emptyBlockIO(b *specs.LinuxBlockIO) bool {
	return (b.Weight == nil || *b.Weight == 0) && (b.LeafWeight == nil || *b.LeafWeight == 0) &&
		len(b.WeightDevice) == 0 && len(b.ThrottleReadBpsDevice) == 0 && len(b.ThrottleWriteBpsDevice) == 0 &&
		len(b.ThrottleReadIOPSDevice) == 0 && len(b.ThrottleWriteIOPSDevice) == 0
}

// ociResources reads linux.resources and cgroupsPath.
func ociResources(l *specs.Linux) (*runOptions, error) {
	o := &runOptions{cpuQuota: -1, cpuPeriod: 100000, memory: -1, pids: -1}
	if l.CgroupsPath != "" {
		p := strings.Trim(l.CgroupsPath, "/")
		if strings.Contains(p, ":") || strings.Contains(p, "..") || p == "" {
			return nil, fmt.Errorf("linux.cgroupsPath %q: give a path such as /workshop/ID (systemd slice:prefix:name form is not supported)", l.CgroupsPath)
		}
		o.name = p
	}
	r := l.Resources
	if r == nil {
		return o, nil
	}
	refuse := func(field string) error {
		return fmt.Errorf("linux.resources.%s is not supported by this runtime: remove it", field)
	}
	var err error
	if o.limits, err = readOCILimits(r); err != nil {
		return nil, err
	}
	switch {
	case r.Network != nil:
		return nil, refuse("network")
	case len(r.Rdma) > 0:
		return nil, refuse("rdma")
	case len(r.Unified) > 0:
		return nil, refuse("unified")
	}
	if len(r.Devices) > 0 {
		if err := devices.Validate(r.Devices); err != nil {
			return nil, err
		}
		o.devRules = r.Devices // the nodes of linux.devices are allowed after them, as runc does
	}
	if r.Memory != nil {
		if err := ociMemory(r.Memory, o); err != nil {
			return nil, err
		}
	}
	if c := r.CPU; c != nil {
		if c.Period != nil {
			o.cpuPeriod = *c.Period
		}
		if c.Quota != nil && *c.Quota > 0 {
			o.cpuQuota = *c.Quota
			if err := cgroup.ValidateCPU(o.cpuQuota, o.cpuPeriod); err != nil {
				return nil, fmt.Errorf("linux.resources.cpu: %v", err)
			}
		}
	}
	if r.Pids != nil && r.Pids.Limit > 0 {
		if r.Pids.Limit > maxPids {
			return nil, fmt.Errorf("linux.resources.pids.limit %d: give 1 to %d (the kernel's PID_MAX_LIMIT), or 0 for none", r.Pids.Limit, maxPids)
		}
		o.pids = r.Pids.Limit
	}
	return o, nil
}

// ociMemory reads linux.resources.memory: every field Docker sends, with
// its defaults (disableOOMKiller false, swap twice the limit for -m).
func ociMemory(m *specs.LinuxMemory, o *runOptions) error {
	switch {
	case m.Kernel != nil && *m.Kernel != 0, m.KernelTCP != nil && *m.KernelTCP != 0:
		return errors.New("linux.resources.memory.kernel and kernelTCP are not supported (the kernel dropped them): remove them")
	case m.Swappiness != nil && *m.Swappiness > 100:
		return fmt.Errorf("linux.resources.memory.swappiness %d: give 0 to 100", *m.Swappiness)
	}
	ml := cgroup.MemoryLimits{Limit: -1, Swap: -1, Swappiness: m.Swappiness}
	if m.Limit != nil && *m.Limit > 0 {
		ml.Limit, o.memory = *m.Limit, *m.Limit
		ml.Swap = *m.Limit // no swap, unless the caller gives some
	}
	if m.Swap != nil && *m.Swap != 0 {
		switch {
		case ml.Limit < 0:
			return errors.New("linux.resources.memory.swap needs memory.limit too")
		case *m.Swap > 0 && *m.Swap < ml.Limit:
			return fmt.Errorf("linux.resources.memory.swap %d is below memory.limit %d: it counts memory plus swap", *m.Swap, ml.Limit)
		}
		ml.Swap = *m.Swap
	}
	if m.Reservation != nil && *m.Reservation > 0 {
		ml.Reservation = *m.Reservation
	}
	ml.DisableOOMKiller = m.DisableOOMKiller != nil && *m.DisableOOMKiller
	if ml.Limit > 0 || ml.Reservation > 0 || ml.Swappiness != nil || ml.DisableOOMKiller {
		o.memory2 = &ml
	}
	return nil
}

var (
	logFile string
	logJSON bool
)

// writeLog appends a failure to --log, where containerd's shim looks for
// the reason a runtime command failed.
func writeLog(err error) {
	var st stage.ExitStatus
	if !errors.As(err, &st) {
		logLine("error", err.Error())
	}
}

// warnOCI tells of a failure the spec says must not fail the command (a
// poststart or poststop hook's): on stderr, and in --log as a warning.
func warnOCI(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(os.Stderr, "%s: warning: %s\n", name, msg)
	logLine("warning", msg)
}

func logLine(level, msg string) {
	if logFile == "" {
		return
	}
	f, ferr := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	if logJSON {
		b, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": time.Now().UTC().Format(time.RFC3339Nano)})
		fmt.Fprintf(f, "%s\n", b)
		return
	}
	fmt.Fprintf(f, "%s %s: %s\n", time.Now().UTC().Format(time.RFC3339), level, msg)
}

// processSpec reads an OCI process.json (exec --process) into a copy of the
// container's Spec: what to run, as whom, with which capabilities.
func processSpec(base *Spec, path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p specs.Process
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(p.Args) == 0 {
		return nil, errors.New("process.args is empty")
	}
	if p.Scheduler != nil || p.IOPriority != nil {
		return nil, errors.New("process.scheduler and ioPriority are not supported")
	}
	if err := checkLSMFields(p.ApparmorProfile, p.SelinuxLabel, ""); err != nil {
		return nil, err
	}
	s := *base
	s.Args, s.Env, s.Cwd = p.Args, p.Env, p.Cwd
	s.Terminal, s.ConsoleSize = p.Terminal, p.ConsoleSize
	s.UID, s.GID, s.Umask = int(p.User.UID), int(p.User.GID), p.User.Umask
	s.Groups = nil
	for _, g := range p.User.AdditionalGids {
		s.Groups = append(s.Groups, int(g))
	}
	s.NoNewPrivs = p.NoNewPrivileges
	if c := p.Capabilities; c != nil {
		s.Capabilities = c.Bounding
		s.CapSets = &CapSets{Effective: c.Effective, Permitted: c.Permitted, Inheritable: c.Inheritable, Ambient: c.Ambient}
	}
	s.Rlimits = nil
	for i, r := range p.Rlimits {
		t, ok := rlimitTable[r.Type]
		if !ok {
			return nil, fmt.Errorf("process.rlimits[%d].type %q is not a Linux resource limit", i, r.Type)
		}
		s.Rlimits = append(s.Rlimits, Rlimit{Type: t, Soft: r.Soft, Hard: r.Hard})
	}
	if err := checkRlimits(p.Rlimits); err != nil {
		return nil, err
	}
	return &s, nil
}
