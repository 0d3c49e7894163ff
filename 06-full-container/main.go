// Stage 06: the whole container.
// Chapter: docs/06-full-container.md and docs/06-oci-runtime.md (the idea, real output, the calls, exercises).
//
// `docker run -it --cpu-period=100000 --cpu-quota=20000 ubuntu /bin/bash` is
// the earlier stages put together: namespaces (01, 02), cgroup files (03), a
// root filesystem (04) made of image layers (05), pivot_root (04), then exec
// of the user's command. This program is a small runtime built from exactly
// those pieces: it imports stage 03's cgroup package, stage 04's rootfs
// package and stage 05's layers package, and adds what a real runtime needs
// around them: state, exec into a running container, logs, images.
//
// The files, in the order a container lives:
//
//	main.go    the command line, and `run` from the host's side, step by step
//	spec.go    the container's blueprint, and Docker's defaults
//	init.go    the container's side: mounts, pivot_root, hardening, exec
//	harden.go  capabilities, masked and read-only paths, the device cgroup, loopback
//	exec.go    `exec`: joining a running container's namespaces with setns
//	tty.go     -t and --console-socket: a pty in the container's devpts, relayed in raw mode
//	manage.go  ps, logs, stop, rm, inspect, and cleaning up after crashes
//	state.go   what the runtime remembers about each container between commands
//	images.go  the default image, images, commit, import
//	oci.go     the OCI runtime verbs (create, start, state, kill, delete, spec)
//	demo.go    the short self-checking demonstration `make tour` runs
//	devices/   device cgroup rules: v1's devices controller, v2's eBPF program
//	seccomp/   the system call filter: Docker's default profile, compiled to BPF
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/03-cgroups-cpu/cgroup"
	"github.com/container-internals/workshop/05-overlay-layers/layers"
	"github.com/container-internals/workshop/06-full-container/devices"
	"github.com/container-internals/workshop/06-full-container/network"
	"github.com/container-internals/workshop/06-full-container/procview"
	"github.com/container-internals/workshop/internal/narrate"
	"github.com/container-internals/workshop/internal/preflight"
	"github.com/container-internals/workshop/internal/stage"
	"github.com/container-internals/workshop/internal/timing"
)

const name = "06-full-container"

// Arguments that mark a re-executed copy of this program (see stage 01 for
// why a Go runtime starts itself again rather than calling clone()).
const (
	initArg    = "__init__"     // the container's first process
	monitorArg = "__monitor__"  // waits for a detached container
	execArg    = "__exec__"     // joins a running container for `exec`
	tinyArg    = "__tinyinit__" // --init's PID 1, exec'd by the container's first process
)

func main() {
	if len(os.Args) > 2 {
		switch os.Args[1] {
		case initArg:
			containerInit(os.Args[2], os.Args[3:])
			return
		case monitorArg:
			os.Exit(monitor(os.Args[2], os.Args[3]))
		case execArg:
			os.Exit(execInside(os.Args[2:]))
		case tinyArg:
			os.Exit(tinyInit(os.Args[2], os.Args[3:]))
		case usernsArg:
			holdUsernsMain()
			return
		case rootlessArg:
			rootlessWait(os.Args[2:])
		}
	}
	rootlessInside()
	timing.Mark("runtime: Go runtime started")
	app := stage.App(name,
		"a small container runtime, built from stages 01-05",
		"run, exec, ps, logs, stop, rm, inspect, images, commit, import: namespaces +\n"+
			"cgroups + a layered root + pivot_root + exec, as docker run does. Without a\n"+
			"command, it runs a short demonstration that checks what a container is.",
		[]cli.Flag{
			&cli.StringFlag{Name: "root", Usage: "keep images and container state under `DIR` (default /var/lib/workshop and /run/workshop)"},
			// What containerd's shim passes to every OCI runtime.
			&cli.StringFlag{Name: "log", Usage: "also write errors to `FILE` (OCI callers read it)"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json, for --log"},
			&cli.BoolFlag{Name: "systemd-cgroup", Usage: "not supported: configure the caller for the cgroupfs driver"},
		},
		demo)
	app.Before = func(c *cli.Context) error {
		logFile, logJSON = c.String("log"), c.String("log-format") == "json"
		if c.IsSet("root") && c.String("root") == "" {
			// Not the defaults: whoever wrote --root meant some other place.
			return stage.Fail("--root is empty: give a directory, or leave --root out for /var/lib/workshop and /run/workshop")
		}
		if c.Bool("systemd-cgroup") {
			return stage.Fail("--systemd-cgroup is not supported: use the cgroupfs driver (Docker: \"exec-opts\": [\"native.cgroupdriver=cgroupfs\"])")
		}
		return nil
	}
	app.UsageText = "sudo go run ./06-full-container [--root DIR] COMMAND [flags] [args]"
	app.Commands = append(append(append(commands(), networkCommand()), ociCommands()...), ociVerbCommands()...)
	for _, cmd := range app.Commands {
		cmd.OnUsageError = stage.UsageError
	}
	stage.MainWith(app, writeLog)
}

func commands() []*cli.Command {
	return []*cli.Command{
		{
			Name:      "run",
			Usage:     "run a command in a new container",
			ArgsUsage: "[IMAGE] -- CMD ARGS...",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "name", Usage: "the container's name (default: its short ID)"},
				&cli.StringFlag{Name: "hostname", Usage: "its hostname (default: its short ID)"},
				&cli.StringFlag{Name: "rootfs", Usage: "use `DIR` (never modified) as the read-only bottom layer instead of an image"},
				&cli.Float64Flag{Name: "cpus", Usage: "CPUs it may use, e.g. 0.2 (= --cpu-quota 20000 --cpu-period 100000)"},
				&cli.Int64Flag{Name: "cpu-quota", Usage: "CPU time in `µs` per period"},
				&cli.Uint64Flag{Name: "cpu-period", Value: cgroup.DefaultPeriodUs, Usage: "the CFS period in `µs`"},
				&cli.StringFlag{Name: "memory", Aliases: []string{"m"}, Usage: "memory limit, e.g. 64m, 1g"},
				&cli.Int64Flag{Name: "pids-limit", Usage: "most processes at once"},
				&cli.StringSliceFlag{Name: "volume", Aliases: []string{"v"}, Usage: "bind mount `HOSTDIR:CTRDIR[:ro]`"},
				&cli.StringFlag{Name: "net", Value: "bridge", Usage: "bridge (an address on the workshop bridge, as Docker's default), none (a new network namespace with only lo) or host"},
				&cli.StringSliceFlag{Name: "publish", Aliases: []string{"p"}, Usage: "publish a port: `[IP:]HOSTPORT:CTRPORT[/tcp|udp]` (--net bridge)"},
				&cli.BoolFlag{Name: "init", Usage: "run a tiny PID 1 that forwards signals and reaps zombies"},
				&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "run in the background; output goes to a log (see logs)"},
				&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "attach standard input (without it, the command's stdin is /dev/null, as Docker's)"},
				&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "give the command a terminal of its own (a pty in the container's devpts); -it for a shell"},
				&cli.StringFlag{Name: "log-max-size", Value: "10m", Usage: "with -d: keep the log under `SIZE`, and one older file as big (Docker's json-file max-size)"},
				&cli.BoolFlag{Name: "explain", Usage: "narrate every step, naming the stage that taught it"},
				&cli.BoolFlag{Name: "proc-view", Usage: "show the container its own memory, CPUs and uptime in /proc (lxcfs-style, FUSE) and its cgroup at /sys/fs/cgroup"},
				&cli.StringSliceFlag{Name: "security-opt", Usage: "`seccomp=unconfined` (no system call filter) or seccomp=FILE (a profile in Docker's format; default: Docker's own)"},
				usernsFlag, usernsRemapFlag,
			},
			Action: runCmd,
		},
		{Name: "exec", Usage: "run a command inside a running container (setns)", ArgsUsage: "NAME -- CMD ARGS...",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "attach standard input"},
				&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "give the command a terminal of its own (a pty in the container's devpts); -it for a shell"},
				&cli.StringFlag{Name: "console-socket", Usage: "OCI: send the pty's master to the unix socket at `PATH` (process.terminal)"},
				// The OCI callers' form: `exec --process process.json --detach --pid-file F ID`.
				&cli.StringFlag{Name: "process", Usage: "OCI: run the process described in `FILE` (JSON) instead of CMD"},
				&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "return once the process runs"},
				&cli.StringFlag{Name: "pid-file", Usage: "write the process's host PID to `FILE`"},
				&cli.BoolFlag{Name: "explain", Usage: "narrate each system call the helper makes to join the container"},
			}, Action: execCmd},
		{Name: "ps", Usage: "list containers; with an ID, the host PIDs of its processes", ArgsUsage: "[ID]", Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "stopped ones too"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json (json: as `runc ps` prints for `docker top`)"}}, Action: psCmd},
		{Name: "logs", Usage: "print a detached container's output", ArgsUsage: "NAME", Action: logsCmd},
		{Name: "stop", Usage: "SIGTERM, then SIGKILL after a timeout", ArgsUsage: "NAME",
			Flags: []cli.Flag{&cli.IntFlag{Name: "time", Aliases: []string{"t"}, Value: 10, Usage: "`seconds` to wait before SIGKILL"}}, Action: stopCmd},
		{Name: "rm", Usage: "remove a stopped container", ArgsUsage: "NAME...",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill it first if it runs"}}, Action: rmCmd},
		{Name: "inspect", Usage: "print a container's details as JSON", ArgsUsage: "NAME", Action: inspectCmd},
		{Name: "images", Usage: "list images", Action: imagesCmd},
		{Name: "rmi", Usage: "remove images, and the layers no other image or container uses", ArgsUsage: "IMAGE...",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "remove an image with several names by its ID"}}, Action: rmiCmd},
		{Name: "commit", Usage: "save a container's changes as a new image", ArgsUsage: "NAME IMAGE",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "pause", Value: true, Usage: "freeze a running container while its layer is read (as docker commit)"}}, Action: commitCmd},
		{Name: "import", Usage: "import a `docker export` tar or a `docker save` archive", ArgsUsage: "TAR IMAGE",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "repoint names that already name another image"}}, Action: importCmd},
	}
}

// runOptions are `run`'s flags, checked.
type runOptions struct {
	name, hostname, image, rootfsDir string
	args                             []string
	cpuQuota                         int64
	cpuPeriod                        uint64
	memory                           int64
	memory2                          *cgroup.MemoryLimits // an OCI caller's swap, reservation, swappiness, OOM killer
	pids                             int64
	logMaxSize                       int64 // bytes in container.log before it moves to container.log.1
	volumes                          []Mount
	netNone, init, detach, explain   bool
	interactive, tty                 bool           // -i, -t (tty.go)
	consoleSize                      *specs.Box     // -t: the user's terminal's size
	procView                         bool           // --proc-view (procview.go)
	imageGuessed                     bool           // IMAGE came first, with no `--` anywhere
	bridge                           bool           // --net bridge (network.go)
	ports                            []network.Port // -p
	devRules                         []devices.Rule // the device cgroup: which device nodes may be used
	seccomp                          *specs.LinuxSeccomp
	limits                           *ociLimits // OCI: the other cgroup limits (resources.go)
	uidMap, gidMap                   []IDMap    // --userns: the user namespace's maps (userns.go)
}

func runCmd(c *cli.Context) error {
	// Ctrl-C must never kill the runtime half way through: from here on
	// SIGINT, SIGTERM and SIGHUP are caught. Before the container runs they
	// abort (cleaning up); once it runs they are passed on to it.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	defer signal.Stop(sigs)
	o, err := parseRun(c)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return runRootless(c, o, sigs) // rootless.go
	}
	rt, err := openRuntime(c, o.explain)
	if err != nil {
		return err
	}
	timing.Mark("runtime: flags, store and cgroup hierarchy read")
	rt.sigs = sigs
	ctr, err := rt.create(o)
	if err != nil {
		return err
	}
	if len(rt.sigs) > 0 {
		rt.destroy(ctr, true)
		return stage.ExitStatus(130)
	}
	if o.detach {
		return rt.startDetached(ctr)
	}
	stdio, term, err := rt.runStdio(ctr, o)
	if err != nil {
		rt.destroy(ctr, true)
		return err
	}
	defer term.finish() // the user's terminal as it was, on every way out
	status, err := rt.startAndWait(ctr, stdio)
	term.finish()
	rt.destroy(ctr, true)
	timing.Mark("runtime: cleaned up")
	if err != nil {
		return err
	}
	if status != 0 {
		return stage.ExitStatus(status)
	}
	return nil
}

// Runtime is what every command works with: where things are kept, the
// image store (stage 05) and the cgroup hierarchy (stage 03).
type Runtime struct {
	dirs  Dirs
	store *layers.Store
	cg    *cgroup.Hierarchy
	n     *narrate.Narrator
	sigs  chan os.Signal // caught signals, for the container once it runs
}

func openRuntime(c *cli.Context, explain bool) (*Runtime, error) {
	if err := preflight.RequireRootToRun(name, os.Args[1:]); err != nil {
		return nil, err
	}
	if err := preflight.RequireNamespaces("pid", "mnt", "uts", "ipc", "net"); err != nil {
		return nil, err
	}
	n := narrate.New(narrate.Options{Quiet: !explain, Step: c.Bool("step"), NoColor: c.Bool("no-color")}, narrate.Host)
	if rootless.On {
		n = narrate.FromEnv(narrate.Host) // the steps go on from the outer runtime's
	}
	dirs := defaultDirs(c.String("root"))
	sealed.emptyDir = filepath.Join(dirs.Images, exeLowerDir)
	store, err := layers.OpenStore(dirs.Images)
	if err != nil {
		return nil, stage.Fail("cannot open the image store in %s: %v", dirs.Images, err)
	}
	cg, err := cgroup.Detect()
	if err != nil {
		return nil, stage.Fail("%v", err)
	}
	store.Trace = n.Trace()
	rt := &Runtime{dirs: dirs, store: store, cg: cg, n: n}
	rt.reap()
	return rt, nil
}

// The kernel's bounds for run's options: outside them, a setting is
// refused in one line before anything is made.
const (
	maxHostname = 64      // HOST_NAME_MAX: sethostname(2) refuses more
	maxPids     = 4194304 // PID_MAX_LIMIT on 64-bit: pids.max refuses more

	defaultLogMaxSize = 10 << 20 // Docker's json-file drivers are often set to this
)

// Compiled on first use, not at start: every process this program starts
// (the container's init, exec's helper) would pay for them, and a bounded
// repeat like {0,62} compiles to a long program.
var (
	nameRE     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`) })
	hostnameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`) })
	sizeRE     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+)([bkmgBKMG]?)$`) })
)

func parseRun(c *cli.Context) (*runOptions, error) {
	o := &runOptions{name: c.String("name"), hostname: c.String("hostname"), rootfsDir: c.String("rootfs"),
		init: c.Bool("init"), detach: c.Bool("detach"), explain: c.Bool("explain"),
		interactive: c.Bool("interactive"), tty: c.Bool("tty"), procView: c.Bool("proc-view")}
	if err := parseTerminal(o); err != nil {
		return nil, err
	}
	image, args := splitCommand(c)
	o.image, o.args = image, args
	// `run sh` means the image sh, as docker reads it; a learner usually
	// meant the command sh in the default image.
	o.imageGuessed = image != "" && !slices.Contains(os.Args, "--")
	if o.rootfsDir != "" && o.image != "" {
		return nil, stage.Fail("give an IMAGE or --rootfs DIR, not both")
	}
	if o.rootfsDir != "" {
		fi, err := os.Stat(o.rootfsDir)
		if err != nil || !fi.IsDir() {
			return nil, stage.Fail("--rootfs %s: not a directory: make one with `debootstrap` or stage 04 (`--rootfs DIR --keep`)", o.rootfsDir)
		}
		o.rootfsDir, _ = filepath.Abs(o.rootfsDir)
	}
	if o.name != "" && !nameRE().MatchString(o.name) {
		return nil, stage.Fail("invalid --name %q: use letters, digits, '_', '.' and '-'", o.name)
	}
	// Checked here, not by sethostname(2) half way through the setup; the
	// name is also written into the container's /etc/hosts, where a
	// newline would add a line of the caller's choosing.
	if len(o.hostname) > maxHostname {
		return nil, stage.Fail("--hostname is %d bytes long: give at most %d (the kernel's HOST_NAME_MAX)", len(o.hostname), maxHostname)
	}
	if o.hostname != "" && !hostnameRE().MatchString(o.hostname) {
		return nil, stage.Fail("invalid --hostname %q: use letters, digits, '_', '.' and '-'", o.hostname)
	}
	if err := parseLimits(c, o); err != nil {
		return nil, err
	}
	var err error
	for _, v := range c.StringSlice("volume") {
		m, err := parseVolume(v)
		if err != nil {
			return nil, err
		}
		o.volumes = append(o.volumes, m)
	}
	if err := parseNet(c, o); err != nil {
		return nil, err
	}
	if err := parseUserns(c, o); err != nil {
		return nil, err
	}
	if rootless.On {
		if err := refuseRootless(c, o); err != nil {
			return nil, err
		}
	}
	if o.seccomp, err = seccompOption(c.StringSlice("security-opt"), defaultCaps); err != nil {
		return nil, err
	}
	return o, nil
}

// parseLimits reads the resource flags: the cgroup limits and the log's cap.
func parseLimits(c *cli.Context, o *runOptions) (err error) {
	o.cpuQuota, o.cpuPeriod = -1, c.Uint64("cpu-period")
	if p := c.Uint64("cpu-period"); c.IsSet("cpu-period") && (p < cgroup.MinPeriodUs || p > cgroup.MaxPeriodUs) {
		return stage.Fail("--cpu-period %d: give %d to %d µs (the kernel's range); %d is the usual period", p, cgroup.MinPeriodUs, cgroup.MaxPeriodUs, cgroup.DefaultPeriodUs)
	}
	if cpus, n := c.Float64("cpus"), runtime.NumCPU(); c.IsSet("cpus") && !(cpus >= 0.01 && cpus <= float64(n)) {
		// Docker's bounds and words: more CPUs than the host has would be
		// a quota that never binds.
		return stage.Fail("--cpus %v: the range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", cpus, n, n)
	}
	if c.IsSet("cpus") || c.IsSet("cpu-quota") {
		quota, period, err := cgroup.ResolveCPU(c.Int64("cpu-quota"), c.IsSet("cpu-quota"), c.Uint64("cpu-period"), c.Float64("cpus"), c.IsSet("cpus"))
		if err != nil {
			return stage.Fail("%v", err)
		}
		o.cpuQuota, o.cpuPeriod = quota, period
	}
	o.memory = -1
	if m := c.String("memory"); m != "" {
		if o.memory, err = parseSize(m); err != nil {
			return err
		}
	}
	o.pids = -1
	if c.IsSet("pids-limit") {
		// pids.max refuses more than the kernel's PID_MAX_LIMIT; found only
		// once the container runs, that would kill it (137).
		if o.pids = c.Int64("pids-limit"); o.pids < 1 || o.pids > maxPids {
			return stage.Fail("--pids-limit %d: give 1 to %d (the kernel's PID_MAX_LIMIT)", o.pids, maxPids)
		}
	}
	o.logMaxSize = defaultLogMaxSize
	if c.IsSet("log-max-size") {
		if !o.detach {
			return stage.Fail("--log-max-size is for a detached container (-d): a foreground run prints to your terminal")
		}
		if o.logMaxSize, err = parseBytes("--log-max-size", "log", c.String("log-max-size"), "4k"); err != nil {
			return err
		}
		if o.logMaxSize < 4<<10 {
			return stage.Fail("--log-max-size %s is too small: give at least 4k", c.String("log-max-size"))
		}
	}
	return nil
}

// splitCommand separates `[IMAGE] -- CMD ARGS...`. The flag parser swallows
// a "--" that comes right after the flags, so count what followed it.
func splitCommand(c *cli.Context) (string, []string) {
	args := c.Args().Slice()
	raw := os.Args
	for i, a := range raw {
		if a == "--" {
			if len(raw)-i-1 == len(args) {
				return "", args // everything after the flags is the command
			}
			break
		}
	}
	for i, a := range args {
		if a == "--" {
			if i == 0 {
				return "", args[1:]
			}
			return args[0], args[i+1:]
		}
	}
	if len(args) == 0 {
		return "", nil
	}
	return args[0], args[1:] // docker's way: IMAGE CMD ARGS...
}

func parseSize(s string) (int64, error) {
	v, err := parseBytes("--memory", "memory", s, "6m")
	if err == nil && v < 6<<20 {
		return 0, stage.Fail("--memory %s is too small: the container's own setup needs about 6m; give at least 6m", s)
	}
	return v, err
}

// parseBytes reads a size such as 64m or 1g for flag (a size of what),
// whose smallest value is least (for the message).
func parseBytes(flag, what, s, least string) (int64, error) {
	m := sizeRE().FindStringSubmatch(s)
	if m == nil {
		return 0, stage.Fail("invalid %s size %q: use a number with an optional unit b, k, m or g, such as 64m or 1g", what, s)
	}
	shift := map[string]uint{"": 0, "b": 0, "k": 10, "m": 20, "g": 30}[strings.ToLower(m[2])]
	// A number that does not fit in 63 bits, before or after the unit,
	// would wrap around to a small or negative one.
	v, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || v > math.MaxInt64>>shift {
		return 0, stage.Fail("%s %s is too large: give %s to %dg", flag, s, least, int64(math.MaxInt64>>30))
	}
	return v << shift, nil
}

func parseVolume(v string) (Mount, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !strings.HasPrefix(parts[1], "/") || (len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw") {
		return Mount{}, stage.Fail("invalid -v %q: use HOSTDIR:CTRDIR or HOSTDIR:CTRDIR:ro, with CTRDIR absolute", v)
	}
	host, err := filepath.Abs(parts[0])
	if err != nil {
		return Mount{}, stage.Fail("-v %s: %v", v, err)
	}
	if _, err := os.Stat(host); err != nil {
		return Mount{}, stage.Fail("-v %s: %s does not exist on the host: create it first", v, host)
	}
	m := Mount{Source: host, Target: filepath.Clean(parts[1]), Type: "", Flags: unix.MS_BIND | unix.MS_REC,
		Why: "a volume: the host's " + host + " seen inside"}
	if len(parts) == 3 && parts[2] == "ro" {
		m.Flags |= unix.MS_RDONLY
	}
	return m, nil
}

// Container is what create made, and destroy removes.
type Container struct {
	State *State
	Spec  *Spec
	Group *cgroup.Group
	root  layers.ContainerRoot
	// pending is its first process when an OCI create cloned it: it waits
	// for start's go-ahead.
	pending *spawned
	// console is the socket its first process sends its terminal's master
	// on (fd 5 there; -t, or OCI --console-socket), until it is cloned.
	console *os.File
	view    *procview.View // --proc-view, served by this process
}

// spawned is a container's first process, cloned and not yet told to go.
type spawned struct {
	cmd      *exec.Cmd
	link     *stage.Link
	attached bool
}

// create prepares everything for a container, without starting it: its
// state, its layers, its cgroups, its blueprint. On failure it removes what
// it made.
func (rt *Runtime) create(o *runOptions) (_ *Container, err error) {
	unlock, err := rt.dirs.lock()
	if err != nil {
		return nil, stage.Fail("cannot lock %s: %v", rt.dirs.State, err)
	}
	defer unlock()
	c, err := rt.newContainer(o)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && c.ctr != nil { // whatever was made so far goes
			rt.destroyLocked(c.ctr, true)
		}
	}()
	// One order, narrated or not: the steps as `--explain` tells them. The
	// first process is cloned afterwards, by start (for -d, in the monitor).
	for _, step := range []struct {
		done string
		do   func() error
	}{
		{"image chosen", c.chooseImage},
		{"state saved", c.saveState},
		{"network address reserved", c.reserveNetwork},
		{"init and read-write layers made", c.makeLayers},
		{"user namespace prepared", c.prepareUserns},
		{"cgroups created", c.makeCgroups},
		{"device rules applied", c.fenceDevices},
		{"spec written", c.writeSpec},
	} {
		if err = step.do(); err != nil {
			return nil, err
		}
		timing.Mark("runtime: " + step.done)
	}
	return c.ctr, nil
}

// creation is a container on its way: what create's steps share.
type creation struct {
	rt     *Runtime
	o      *runOptions
	st     *State
	ctr    *Container // once its state directory exists
	img    layers.Image
	lowers []string // --rootfs: the bottom layer
	args   []string
}

// newContainer names the container and checks that its ID, name and
// cgroup are its own.
func (rt *Runtime) newContainer(o *runOptions) (*creation, error) {
	id := newID()
	st := &State{ID: id, Name: o.name, Image: o.image, RootDir: o.rootfsDir, Hostname: o.hostname,
		Created: time.Now().UTC(), Status: Creating, Detached: o.detach, Cgroup: "workshop/" + id[:12]}
	if o.detach {
		st.LogMaxSize = o.logMaxSize
	}
	if st.Name == "" {
		st.Name = id[:12]
	}
	if st.Hostname == "" {
		st.Hostname = id[:12]
	}
	st.Monitor, st.MonitorStart = os.Getpid(), startTime(os.Getpid())
	others, _ := rt.dirs.all()
	if err := claim(others, id, st.Name, st.Cgroup); err != nil {
		return nil, stage.Fail("%v: choose another --name, or `rm` it", err)
	}
	return &creation{rt: rt, o: o, st: st}, nil
}

// chooseImage (stage 05): the image's stack of read-only layers, and the
// command to run.
func (c *creation) chooseImage() (err error) {
	rt, o, st, n := c.rt, c.o, c.st, c.rt.n
	n.Step("Choose the image (stage 05): a stack of read-only layers")
	if o.rootfsDir != "" {
		n.Say("--rootfs %s: the bottom layer, read-only, never modified", o.rootfsDir)
		c.lowers = []string{o.rootfsDir}
		st.Image = o.rootfsDir
	} else {
		if c.img, err = rt.image(o.image); err != nil {
			if o.imageGuessed {
				return stage.Fail("%v; to run a command in the default image, put it after --: run -- %s", err, strings.Join(append([]string{o.image}, o.args...), " "))
			}
			return err
		}
		st.ImageID = c.img.ID
		if st.Image == "" {
			st.Image = defaultImage
		}
		stack, err := rt.store.Stack(c.img.TopChainID())
		if err != nil {
			return stage.Fail("image %s: %v", st.Image, err)
		}
		for _, l := range stack {
			n.Say("layer %s  (chain ID; diffID %s)", short(l.ChainID), short(l.DiffID))
		}
	}
	c.args = o.args
	if len(c.args) == 0 {
		c.args = c.img.Config.Cmd
	}
	if len(c.args) == 0 {
		return stage.Fail("no command: give one after `--`, e.g. `run -- sh`")
	}
	// The image's default command is usually a shell, which reads its
	// commands from stdin: from /dev/null or a closed stdin it reads nothing
	// and exits 0, and the learner sees nothing happen at all.
	if shells[filepath.Base(c.args[0])] && len(c.args) == 1 && len(o.args) == 0 && !o.detach && !o.tty {
		what := "not attached (no -i)"
		if o.interactive {
			what = emptyStdin()
		}
		if what != "" {
			return stage.Fail("no command, and stdin is %s: the image's default command %q would read nothing and exit at once; give a command after `--`, e.g. `run -- sh -c 'echo hello'`, or type `run -it` in a terminal", what, c.args[0])
		}
	}
	st.Command = c.args
	return nil
}

// saveState makes the container's state directory and its first record:
// from now on a failure, or a kill, leaves something the cleanup finds.
func (c *creation) saveState() error {
	rt, st := c.rt, c.st
	if err := os.MkdirAll(rt.dirs.containerDir(st.ID), 0o700); err != nil {
		return stage.Fail("cannot create %s: %v", rt.dirs.containerDir(st.ID), err)
	}
	c.ctr = &Container{State: st, Spec: c.spec()}
	if err := rt.dirs.save(st); err != nil {
		return err
	}
	if c.o.detach { // for its log
		if err := os.MkdirAll(rt.dirs.dataDir(st.ID), 0o700); err != nil {
			return stage.Fail("cannot create %s: %v", rt.dirs.dataDir(st.ID), err)
		}
	}
	return nil
}

// spec is what the first process will build: Docker's defaults.
func (c *creation) spec() *Spec {
	st := c.st
	env := []string{defaultPATH, "HOSTNAME=" + st.Hostname, "HOME=/root"}
	if t := os.Getenv("TERM"); t != "" {
		env = append(env, "TERM="+t)
	}
	env = append(env, c.img.Config.Env...)
	namespaces := []string{"pid", "mnt", "uts", "ipc"}
	if c.o.netNone || c.o.bridge {
		namespaces = append(namespaces, "net")
	}
	if _, err := os.Stat("/proc/self/ns/cgroup"); err == nil {
		namespaces = append(namespaces, "cgroup")
	}
	spec := &Spec{
		ID: st.ID, Hostname: st.Hostname, Args: c.args, Env: env, Cwd: c.img.Config.WorkingDir,
		Namespaces: namespaces, Propagation: unix.MS_SLAVE,
		Mounts: append(defaultMounts(), c.o.volumes...), Devices: defaultDevices(), Symlinks: defaultSymlinks(),
		MaskedPaths: defaultMasked, ReadonlyPaths: defaultReadonly, Capabilities: defaultCaps,
		NoNewPrivs: true, Init: c.o.init, Seccomp: c.o.seccomp, Terminal: c.o.tty, ConsoleSize: c.o.consoleSize,
		Rootless: rootless.On,
	}
	if c.o.procView {
		c.rt.withProcView(spec, st, c.o)
	}
	return spec
}

// reserveNetwork: with --net bridge, an address on the bridge (network.go).
func (c *creation) reserveNetwork() error {
	if !c.o.bridge {
		return nil
	}
	return c.rt.reserveNetwork(c.ctr, c.o.ports)
}

// makeLayers (stage 05): an init layer and a read-write layer on the image.
func (c *creation) makeLayers() error {
	n, ctr := c.rt.n, c.ctr
	n.Step("Prepare the container's own layers (stage 05): an init layer and a read-write layer")
	root, err := c.rt.store.CreateRoot(c.st.ID, c.img, c.st.Hostname, nil)
	if err != nil {
		return stage.Fail("preparing the container's layers: %v", err)
	}
	ctr.root = root
	c.rt.writeNetworkFiles(ctr)
	n.Say("init layer (/etc/hosts, /etc/hostname, /etc/resolv.conf): %s", root.Init)
	n.Say("read-write layer: %s", root.Upper)
	ctr.Spec.Rootfs, ctr.Spec.Upper, ctr.Spec.Work = root.Merged, root.Upper, root.Work
	ctr.Spec.Lowers = append(c.lowers, root.Lowers...)
	return nil
}

// makeCgroups (stage 03): the container's group and its limits.
func (c *creation) makeCgroups() (err error) {
	st, ctr := c.st, c.ctr
	if rootless.On {
		own, _, _ := ownCgroup()
		c.rt.n.Note("rootless: no cgroup of the container's own (the host's cgroup files are root's): it stays in yours, %q on cgroup v2, with no limits and no device rules; a device it opens is still checked against your own permissions", own)
		st.Cgroup = ""
		return nil
	}
	c.rt.n.Step("Create the container's cgroups (stage 03) and write its limits")
	c.o.devRules = defaultDeviceRules(defaultDevices())
	if ctr.Group, err = c.rt.createCgroup(st.Cgroup, c.o); err != nil {
		// Nothing of ours exists: a group of that name is someone else's,
		// and the cleanup must leave it alone.
		st.Cgroup = ""
		return err
	}
	st.CgroupPaths = ctr.Group.Paths()
	if c.o.pids > 0 {
		st.PidsLimit = c.o.pids
	}
	ctr.Spec.WaitReady = st.PidsLimit > 0
	return nil
}

// fenceDevices: Docker's device rules for the group (see harden.go).
func (c *creation) fenceDevices() error {
	if c.ctr.Group == nil {
		return nil // rootless: no cgroup (makeCgroups)
	}
	if err := c.rt.applyDeviceRules(c.ctr.Group, c.o.devRules); err != nil {
		return stage.Fail("%v", err)
	}
	return nil
}

// writeSpec hands the first process its spec; a detached container is saved
// as created (a foreground run is saved again, running, a moment later).
func (c *creation) writeSpec() error {
	if err := writeSpec(c.rt.dirs.configPath(c.st.ID), c.ctr.Spec); err != nil {
		return err
	}
	if err := c.ctr.Spec.giveToContainerRoot(c.rt.dirs.configPath(c.st.ID)); err != nil {
		return stage.Fail("%v", err)
	}
	c.st.Status = Created
	if c.o.detach {
		return c.rt.dirs.save(c.st)
	}
	return nil
}

// createCgroup makes the container's group with every controller it can
// have here, and writes the limits asked for. A controller that is missing
// is an error only if a limit needs it.
func (rt *Runtime) createCgroup(path string, o *runOptions) (*cgroup.Group, error) {
	want := map[string]bool{"cpu": o.cpuQuota > 0, "memory": o.memory > 0 || o.memory2 != nil, "pids": o.pids > 0}
	var controllers []string
	kinds := []string{"cpu", "cpuacct", "memory", "pids", "freezer"} // freezer: v1's, for pause (v2 has cgroup.freeze in every group)
	if len(o.devRules) > 0 {
		if c, err := rt.cg.Controller("devices"); err == nil && c.Version == cgroup.V1 {
			kinds = append(kinds, "devices") // v1 has a controller for it; v2 takes an eBPF program
		}
	}
	for c, field := range o.limits.controllers(rt.cg) {
		if err := rt.cg.Usable(c); err != nil {
			return nil, stage.Fail("linux.resources.%s: %v", field, err)
		}
		if !slices.Contains(kinds, c) {
			kinds = append(kinds, c)
		}
		want[c] = true
	}
	for _, c := range kinds {
		if _, err := rt.cg.Controller(c); err != nil {
			if want[c] {
				return nil, stage.Fail("%v", err)
			}
			continue
		}
		controllers = append(controllers, c)
	}
	if rt.n != nil && !rt.n.Quiet() {
		rt.cg.Trace = rt.n.Trace()
		defer func() { rt.cg.Trace = nil }()
	}
	g, err := rt.cg.Create(path, controllers...)
	if errors.Is(err, fs.ErrExist) {
		return nil, stage.Fail("the cgroup %s exists already, and a container only uses a cgroup it made: choose another (if it is a leftover, remove it with `rmdir` in each hierarchy)", path)
	}
	limited := false
	for _, w := range want {
		limited = limited || w
	}
	if err != nil && limited {
		return nil, stage.Fail("%v", err)
	}
	if err != nil {
		// No limit was asked for: run without the controller that failed
		// (the learners' VM may lack cpu in the root's subtree_control).
		var kept []string
		for _, c := range controllers {
			if c != "cpu" && c != "cpuacct" {
				kept = append(kept, c)
			}
		}
		if g, err = rt.cg.Create(path, kept...); err != nil {
			return nil, stage.Fail("%v", err)
		}
	}
	set := func(err error) error {
		if err != nil {
			_ = g.Remove()
			return stage.Fail("%v", err)
		}
		return nil
	}
	if o.cpuQuota > 0 {
		if err := set(g.SetCPU(o.cpuQuota, o.cpuPeriod)); err != nil {
			return nil, err
		}
	}
	if o.memory2 != nil {
		if err := set(g.SetMemoryLimits(*o.memory2)); err != nil {
			return nil, err
		}
	} else if o.memory > 0 {
		if err := set(g.SetMemory(o.memory)); err != nil {
			return nil, err
		}
	}
	if err := set(o.limits.apply(g)); err != nil {
		return nil, err
	}
	// The device rules are applied by the caller, with applyDeviceRules;
	// pids.max is written later, by ready(): see there.
	return g, nil
}

// startAndWait starts the container's first process and waits for it. With
// ready, it reports (once) that the container runs, or why it could not.
func (rt *Runtime) startAndWait(ctr *Container, stdio []*os.File) (int, error) {
	cmd, link, err := rt.start(ctr, stdio, true)
	if err != nil {
		return 0, err
	}
	return rt.wait(ctr, cmd, link)
}

// start lets the container's first process go on, cloning it first unless
// create did. attached: the caller will wait for it (run, the monitor),
// and it must die with the caller; an OCI `create` returns while it lives
// on.
func (rt *Runtime) start(ctr *Container, stdio []*os.File, attached bool) (*exec.Cmd, *stage.Link, error) {
	p := ctr.pending
	if p == nil {
		var err error
		if p, err = rt.spawn(ctr, stdio, attached); err != nil {
			return nil, nil, err
		}
	}
	ctr.pending = nil
	st := ctr.State
	// Let it go on first: it need not wait while its PID is written down.
	p.link.Resume(rt.n)
	if attached {
		st.Status = Running
	}
	if err := rt.dirs.save(st); err != nil {
		_ = p.cmd.Process.Kill()
	}
	return p.cmd, p.link, nil
}

// spawn clones the container's first process into its new namespaces. It
// waits, on the link, for start's go-ahead.
func (rt *Runtime) spawn(ctr *Container, stdio []*os.File, attached bool) (_ *spawned, err error) {
	n := rt.n
	// --proc-view: mounted before the clone copies the host's mounts.
	if err := rt.mountProcView(ctr); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			rt.detachProcView(ctr)
		}
	}()
	// With a user namespace, the root is mounted first, in a mount
	// namespace of this thread's own, which the clone below copies
	// (userns.go); the thread goes home right after the clone.
	restoreMnt, err := rt.buildRootForUserns(ctr)
	if err != nil {
		return nil, err
	}
	defer restoreMnt() // on a failure before the clone
	n.Step("Clone the container's first process into new namespaces (stages 01 and 02)")
	cmd, err := rt.initCommand(ctr, stdio)
	if err != nil {
		return nil, err
	}
	if attached {
		// Pdeathsig: if the runtime dies, so does the container. It is tied
		// to the thread that forks, so that thread stays ours until the wait.
		runtime.LockOSThread()
		cmd.SysProcAttr.Pdeathsig = unix.SIGKILL
		n.Call("prctl(PR_SET_PDEATHSIG, SIGKILL)   # in the child, before its exec: if the runtime dies, so does the container")
	}
	unlock := func() {
		if attached {
			runtime.UnlockOSThread()
		}
	}
	intoCgroup, closeCgroup := bornInCgroup(cmd, ctr.Group)
	defer closeCgroup()
	joinedUser := ctr.Spec.JoinNamespaces["user"]
	if joinedUser != "" && intoCgroup { // started by raw system calls (joinuserns.go): no clone3 into the cgroup
		cmd.SysProcAttr.UseCgroupFD, intoCgroup = false, false
	}
	// In a user namespace the first process is uid 100000 to the host's
	// kernel, and the host root's cgroup files are not its to write: the
	// runtime moves it, below.
	addFromOutside := ctr.Spec.hasUserns() && !intoCgroup && ctr.Group != nil
	if addFromOutside {
		cmd.Args[3] = ""
	}
	link, err := stage.LinkTo(cmd)
	if err != nil {
		unlock()
		return nil, err
	}
	if ctr.console != nil {
		if err := passConsole(cmd, ctr); err != nil {
			unlock()
			link.Close()
			return nil, err
		}
		defer func() { ctr.console.Close(); ctr.console = nil }() // the child has its own copy
	}
	if ctr.Spec.hasUserns() {
		if err := rt.passStateDir(cmd, ctr); err != nil {
			unlock()
			link.Close()
			return nil, err
		}
	}
	// An existing PID namespace is joined here, by the cloning thread
	// (nsjoin.go says why).
	pidns := ctr.Spec.JoinNamespaces["pid"]
	if joinedUser != "" {
		pidns = "" // joined by the raw copy that clones (joinuserns.go)
	}
	restorePid, err := pidNamespaceForChildren(pidns, n.Trace())
	if err != nil {
		unlock()
		link.Close()
		return nil, stage.Fail("%v", err)
	}
	if joinedUser != "" {
		err = startInUserns(n, cmd, joinedUser, ctr.Spec.JoinNamespaces["pid"])
	} else {
		err = cmd.Start()
	}
	if err != nil && intoCgroup {
		// A kernel before 5.7 has no CLONE_INTO_CGROUP: it joins itself.
		cmd.SysProcAttr.UseCgroupFD, intoCgroup = false, false
		cmd.Args[3] = strings.Join(ctr.Group.Dirs(), ",")
		err = cmd.Start()
	}
	if rerr := errors.Join(restoreMnt(), restorePid()); rerr != nil {
		if err == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		err = rerr
	}
	if err != nil {
		unlock()
		link.Close()
		return nil, stage.Fail("cannot start the container: %v", err)
	}
	link.Started()
	timing.Mark("runtime: init cloned into new namespaces")
	p := &spawned{cmd: cmd, link: link, attached: attached}
	if err := rt.afterClone(ctr, p, intoCgroup, addFromOutside); err != nil {
		p.abandon()
		return nil, err
	}
	return p, nil
}

// initCommand is the container's first process, not started yet: this
// program again, from a sealed handle on it rather than /proc/self/exe, the
// host's file (selfexe.go says why, CVE-2019-5736), cloned into the new
// namespaces, with the user namespace's maps if it has one.
func (rt *Runtime) initCommand(ctr *Container, stdio []*os.File) (*exec.Cmd, error) {
	n := rt.n
	flags, names := cloneFlags(ctr.Spec.Namespaces)
	self, how, err := sealedExe(n.Trace())
	if err != nil {
		return nil, stage.Fail("%v", err)
	}
	n.Call("clone(%s)   # re-exec of this program, from a sealed %s copy", names, how)
	cmd := exec.Command(self, initArg, rt.dirs.configPath(ctr.State.ID), "")
	cmd.Args[0] = "workshop-init"
	if stdio == nil {
		stdio = []*os.File{os.Stdin, os.Stdout, os.Stderr}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio[0], stdio[1], stdio[2]
	cmd.Env = append(os.Environ(), n.Env())
	cmd.SysProcAttr = &unix.SysProcAttr{Cloneflags: flags}
	setIDMaps(n, cmd, ctr.Spec)
	return cmd, nil
}

// passConsole gives the first process the console socket (-t, or OCI
// --console-socket), as its descriptor consoleFd (tty.go).
func passConsole(cmd *exec.Cmd, ctr *Container) error {
	if len(cmd.ExtraFiles) != consoleFd-3 {
		return stage.Fail("the console socket would not be fd %d in the container's first process", consoleFd)
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, ctr.console)
	return nil
}

// stateDirFd is the container's state directory in a first process with a
// user namespace: it reads its spec (and opens the start FIFO) through
// /proc/self/fd/6/, a link whose lookup jumps straight to the directory.
// The container's root, an ordinary uid to the host, then needs to pass
// through that directory only (0711), not through the caller's --root:
// Docker's is 0700, and runc's first process, which gets its config over
// a pipe, never looks there either.
const stateDirFd = 6

// passStateDir gives the first process its state directory as stateDirFd
// (after the link's 3 and 4 and the console's 5, closed if none), and
// points its spec argument there. Like every descriptor past stderr, it
// is closed at the command's exec.
func (rt *Runtime) passStateDir(cmd *exec.Cmd, ctr *Container) error {
	dir, err := os.OpenFile(rt.dirs.containerDir(ctr.State.ID), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return stage.Fail("%v", err)
	}
	for len(cmd.ExtraFiles) < stateDirFd-3 {
		cmd.ExtraFiles = append(cmd.ExtraFiles, nil)
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, dir)
	cmd.Args[2] = stateDirPath("config.json")
	return nil
}

// stateDirPath is name in the state directory, as the first process of a
// user namespace reaches it.
func stateDirPath(name string) string { return fmt.Sprintf("/proc/self/fd/%d/%s", stateDirFd, name) }

// afterClone records the first process, and does what needs it to exist
// before it goes on: the /proc view's clock, its cgroups when it could not
// join them itself (a user namespace's), its network.
func (rt *Runtime) afterClone(ctr *Container, p *spawned, intoCgroup, addFromOutside bool) error {
	n, st := rt.n, ctr.State
	st.Pid, st.PidStart = p.cmd.Process.Pid, startTime(p.cmd.Process.Pid)
	if ctr.view != nil {
		ctr.view.Started(st.PidStart) // its uptime counts from here
	}
	if addFromOutside {
		if err := rt.addToCgroup(ctr.Group, st.Pid); err != nil {
			return stage.Fail("moving the container into its cgroups: %v", err)
		}
	}
	if p.attached {
		st.Monitor, st.MonitorStart = os.Getpid(), startTime(os.Getpid())
	}
	n.Say("the container's PID 1 is PID %d on the host", st.Pid)
	if intoCgroup {
		n.Call("clone3(..., CLONE_INTO_CGROUP, %s)   # born inside its cgroup", ctr.Group.Dirs()[0])
	}
	if st.Network != nil {
		// Its network namespace exists now: plug it in before it goes on.
		return rt.plugNetwork(ctr)
	}
	return nil
}

// cloneFlags are the clone flags of the container's new namespaces, and
// their names.
func cloneFlags(namespaces []string) (uintptr, string) {
	var flags uintptr
	var names []string
	for _, k := range []struct {
		kind, name string
		flag       uintptr
	}{{"user", "CLONE_NEWUSER", unix.CLONE_NEWUSER}, {"pid", "CLONE_NEWPID", unix.CLONE_NEWPID}, {"mnt", "CLONE_NEWNS", unix.CLONE_NEWNS},
		{"uts", "CLONE_NEWUTS", unix.CLONE_NEWUTS}, {"ipc", "CLONE_NEWIPC", unix.CLONE_NEWIPC},
		{"net", "CLONE_NEWNET", unix.CLONE_NEWNET}} {
		if slices.Contains(namespaces, k.kind) {
			flags |= k.flag
			names = append(names, k.name)
		}
	}
	return flags, strings.Join(names, " | ")
}

// bornInCgroup: on a pure cgroup v2 host clone3(CLONE_INTO_CGROUP) starts
// the process inside its cgroup: no window outside it, and no write to
// cgroup.procs (which waits for the kernel's RCU grace period:
// milliseconds). Elsewhere the container's first process joins its cgroups
// itself, before it does anything else (see containerInit): it is told
// their directories.
func bornInCgroup(cmd *exec.Cmd, g *cgroup.Group) (bool, func()) {
	if g == nil {
		return false, func() {}
	}
	cmd.Args[3] = strings.Join(g.Dirs(), ",")
	if dirs := g.Dirs(); len(dirs) == 1 && isCgroup2(dirs[0]) {
		if fd, err := unix.Open(dirs[0], unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
			cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
			cmd.Args[3] = ""
			return true, func() { unix.Close(fd) }
		}
	}
	return false, func() {}
}

// abandon kills a first process that never got its go-ahead (create failed
// after cloning it, or Ctrl-C came first).
func (p *spawned) abandon() {
	p.link.Close() // its wait for go ends: it exits
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	if p.attached {
		runtime.UnlockOSThread()
	}
}

func (rt *Runtime) wait(ctr *Container, cmd *exec.Cmd, link *stage.Link) (int, error) {
	defer runtime.UnlockOSThread()
	running := make(chan struct{})
	stop := forwardSignals(cmd.Process, rt.sigs, running)
	if err := rt.serve(ctr, link); err != nil {
		_ = cmd.Process.Kill()
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	}
	rt.detachProcView(ctr) // its binds are made: the host's mount goes
	close(running)         // it execs the user's command, or has exited
	err := cmd.Wait()
	timing.Mark("runtime: container exited")
	stop()
	link.Close()
	status, ok := stage.StatusOf(err)
	if !ok {
		return 0, err
	}
	ctr.State.Status, ctr.State.ExitCode, ctr.State.Finished = Stopped, status, time.Now().UTC()
	if ctr.State.Detached { // a foreground run's state goes at once
		rt.saveFinal(ctr.State)
	}
	if ctr.Group != nil && status == 137 {
		if m, err := ctr.Group.Memory(); err == nil && m.OOMKills > 0 {
			rt.n.Warn("the container was killed by the OOM killer: it hit its memory limit")
		}
	}
	return status, nil
}

// serve does what the container's first process pauses for during its
// setup, until it is done (about to exec the command) or gone: an OCI
// caller's hooks that run in the runtime, and ready (below).
func (rt *Runtime) serve(ctr *Container, link *stage.Link) error {
	for link.Paused(rt.n) {
		if link.Why() == "hooks" {
			if err := rt.createRuntimeHooks(ctr); err != nil {
				return err
			}
		} else {
			rt.ready(ctr)
		}
		link.Resume(rt.n)
	}
	return nil
}

// createRuntimeHooks: the container's namespaces exist, its root is not
// changed yet (hooks.go).
func (rt *Runtime) createRuntimeHooks(ctr *Container) error {
	h := ctr.Spec.Hooks
	st := *ctr.Spec.HookState
	st.Status, st.Pid = specs.StateCreating, ctr.State.Pid
	say := func(call string) { rt.n.Call("%s", call) }
	if err := runHooks("prestart", h.Prestart, st, say); err != nil {
		return err
	}
	return runHooks("createRuntime", h.CreateRuntime, st, say)
}

// ready is called when the container's setup is done, just before it runs
// the user's command: the moment to write pids.max. Earlier, the limit
// would count the runtime's own setup threads (a Go program runs several)
// and could stop the setup itself; from now on the command, and everything
// it forks, is held to it.
func (rt *Runtime) ready(ctr *Container) {
	if ctr.State.PidsLimit > 0 && ctr.Group != nil {
		if rt.n != nil {
			rt.cg.Trace = rt.n.Trace()
			defer func() { rt.cg.Trace = nil }()
		}
		if err := ctr.Group.SetPids(ctr.State.PidsLimit); err != nil {
			fmt.Fprintf(os.Stderr, "%s: setting the pids limit: %v\n", name, err)
			_ = ctr.State.signal(unix.SIGKILL)
		}
	}
}

// forwardSignals passes SIGINT, SIGTERM and SIGHUP to the container's PID 1.
// PID 1 ignores signals it has no handler for, so a second Ctrl-C (or the
// first, when nobody types into it) ends it with SIGKILL: Ctrl-C always
// gets the learner their terminal back, and the cleanup runs.
//
// It holds them until running is closed: until then PID 1 is this
// program's init, and in the first instants of a Go program (before it
// asks for them) a SIGINT would end it with Go's own exit status 2, not
// the container's.
func forwardSignals(p *os.Process, ch chan os.Signal, running <-chan struct{}) func() {
	owned := ch == nil
	if owned {
		ch = make(chan os.Signal, 4)
		signal.Notify(ch, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	}
	done := make(chan struct{})
	interactive := narrate.IsTerminal(os.Stdin)
	go func() {
		select {
		case <-running:
		case <-done:
			return
		}
		count := 0
		for {
			select {
			case s := <-ch:
				count++
				_ = p.Signal(s)
				if count > 1 || !interactive {
					go func() {
						time.Sleep(2 * time.Second)
						_ = p.Signal(unix.SIGKILL)
					}()
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		if owned {
			signal.Stop(ch) // else the caller keeps catching them, through its cleanup
		}
		close(done)
	}
}

var shells = map[string]bool{"sh": true, "ash": true, "bash": true, "dash": true, "zsh": true}

// emptyStdin says what stdin is when it can give a shell no command at all
// ("closed", "/dev/null", "an empty pipe whose writer is gone"), and ""
// otherwise: a terminal, a file, a pipe with data or a writer still there.
func emptyStdin() string {
	var st unix.Stat_t
	if err := unix.Fstat(0, &st); err != nil {
		return "closed"
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		if unix.Major(st.Rdev) == 1 && unix.Minor(st.Rdev) == 3 {
			return "/dev/null"
		}
	case unix.S_IFIFO:
		// POLLHUP with nothing to read: the writer closed its end, and
		// a read would return end-of-file at once. A writer that is
		// still there (`cat | run`) is given the benefit of the doubt.
		// (TIOCINQ is FIONREAD: the bytes waiting in the pipe.)
		fds := []unix.PollFd{{Fd: 0, Events: unix.POLLIN}}
		if n, _ := unix.Poll(fds, 100); n == 1 && fds[0].Revents&unix.POLLHUP != 0 {
			if avail, err := unix.IoctlGetInt(0, unix.TIOCINQ); err == nil && avail == 0 {
				return "an empty pipe whose writer is gone"
			}
		}
	}
	return ""
}

// isCgroup2 tells a cgroup v2 directory by its filesystem's magic number.
func isCgroup2(dir string) bool {
	var fs unix.Statfs_t
	return unix.Statfs(dir, &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC
}

func short(digest string) string {
	d := strings.TrimPrefix(digest, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}

// demo is what the program does without a command, for `make tour`: run a
// few containers and check what a container is.
func demo(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return stage.Fail("unknown command %q: see --help", c.Args().First())
	}
	return runDemo(c)
}
