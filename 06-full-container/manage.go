package main

// Managing containers once they exist: ps, logs, stop, rm, inspect, the
// background monitor of a detached container, and the clean-up of what a
// runtime killed with SIGKILL left behind.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/03-cgroups-cpu/cgroup"
	"github.com/container-internals/workshop/05-overlay-layers/layers"
	"github.com/container-internals/workshop/internal/narrate"
	"github.com/container-internals/workshop/internal/stage"
	"github.com/container-internals/workshop/internal/timing"

	"github.com/container-internals/workshop/internal/mountinfo"
)

// allControllers are every controller a container's group may have.
var allControllers = []string{"cpu", "cpuacct", "memory", "pids", "devices", "freezer", "cpuset", "blkio", "io", "hugetlb"}

// openGroup re-opens a container's group from its saved name, with every
// controller this host has of allControllers (a pure v2 host has no devices
// controller, a v1 host may lack others): all of it, to read or remove.
func (rt *Runtime) openGroup(name string) (*cgroup.Group, error) {
	var have []string
	for _, c := range allControllers {
		if _, err := rt.cg.Controller(c); err == nil {
			have = append(have, c)
		}
	}
	return rt.cg.Open(name, have...)
}

// destroy removes what a container made: its processes and cgroups, and
// with removeRoot its layers and state too.
func (rt *Runtime) destroy(ctr *Container, removeRoot bool) {
	unlock, err := rt.dirs.lock()
	if err == nil {
		defer unlock()
	}
	rt.destroyLocked(ctr, removeRoot)
}

func (rt *Runtime) destroyLocked(ctr *Container, removeRoot bool) {
	st := ctr.State
	if ctr.pending != nil {
		ctr.pending.abandon()
		ctr.pending = nil
	}
	rt.n.Step("Clean up: the container's cgroups%s", map[bool]string{true: ", layers and state", false: ""}[removeRoot])
	if removeRoot && (st.Detached || st.Bundle != "") && !st.Removing {
		// Its state outlives any one command: say it is going, so that a
		// removal cut short (this command killed) is finished by the next.
		st.Removing = true
		if _, err := os.Stat(rt.dirs.statePath(st.ID)); err == nil {
			_ = rt.dirs.save(st)
		}
	}
	rt.unplugNetwork(st)
	g := ctr.Group
	if g == nil && st.Cgroup != "" {
		g, _ = rt.openGroup(st.Cgroup)
	}
	// The cgroups and the files are independent: remove them side by side
	// (the files wait on the disk, the cgroups on the kernel).
	var cgErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		if g != nil {
			// PID 1's death took the rest of its PID namespace with it; an
			// exec'd process that outlived it is still in the cgroup: kill it.
			_ = g.Kill()
			cgErr = g.Remove()
			removeEmptyParents(g)
			timing.Mark("cleanup: cgroups removed")
		}
	}()
	if removeRoot {
		removeMadeNodes(rt.dirs.containerDir(st.ID))
		dataGone := make(chan struct{})
		go func() { _ = os.RemoveAll(rt.dirs.dataDir(st.ID)); close(dataGone) }()
		if rt.store.HasRoot(st.ID) {
			if err := rt.store.RemoveRoot(st.ID); err != nil {
				fmt.Fprintf(os.Stderr, "%s: removing the layers of %s: %v\n", name, st.Name, err)
			}
		}
		<-dataGone
	}
	<-done
	rt.cleanProcView(ctr) // its processes are gone: so are the mounts that held the view
	if removeRoot {
		// The state last: until everything else is gone it is what names
		// it, for a next command to finish the job if this one is killed.
		_ = os.RemoveAll(rt.dirs.containerDir(st.ID))
		timing.Mark("cleanup: layers and state removed")
	}
	if g != nil {
		if cgErr != nil {
			rt.n.Warn("%v", cgErr)
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, cgErr)
		} else {
			rt.n.Call("rmdir %s", strings.Join(g.Dirs(), " "))
		}
	}
	if removeRoot {
		rt.n.Say("removed the read-write layer, the init layer and the state of %s", st.Name)
	}
}

// removeEmptyParents removes the shared "workshop" parent group once no
// container uses it, so that nothing of ours stays in the host's tree.
// (Callers hold the state lock, so no other runtime is creating a child.)
func removeEmptyParents(g *cgroup.Group) {
	for _, d := range g.Dirs() {
		parent := filepath.Dir(d)
		if filepath.Base(parent) == "workshop" {
			_ = os.Remove(parent) // fails, as it should, while other containers use it
		}
	}
}

// reap notices containers whose runtime died (killed with SIGKILL, the
// machine's power cut...) and cleans up after them: the next `ps`, `run` or
// `rm` leaves the host as if they had ended normally, and the runtime's
// root holding only what a container still alive, or stopped and kept
// (run -d), may need. A container's owner is the process that created,
// watches or removes it (its PID and start time); what is left alone is
// what a living owner still works on.
func (rt *Runtime) reap() {
	all, err := rt.dirs.all()
	if err != nil {
		return
	}
	if !slices.ContainsFunc(all, rt.abandoned) && !rt.leftovers(all) {
		return // the usual case: nothing to take the lock for
	}
	unlock, err := rt.dirs.lock()
	if err != nil {
		return
	}
	defer unlock()
	quiet := *rt
	quiet.n = narrate.New(narrate.Options{Quiet: true}, narrate.Host)
	for _, st := range all {
		// Re-read under the lock: another runtime may have just finished it.
		st, err := rt.dirs.load(st.ID)
		if err != nil || !rt.abandoned(st) {
			continue
		}
		_ = st.signal(unix.SIGKILL)
		if st.Detached && !st.Removing && st.Status == Running {
			// Its monitor was killed: it ran, and like any stopped detached
			// container it stays, for logs, commit and rm.
			st.Status, st.ExitCode, st.Finished = Stopped, 137, time.Now().UTC()
			_ = rt.dirs.save(st)
			quiet.destroyLocked(&Container{State: st}, false)
			continue
		}
		quiet.destroyLocked(&Container{State: st}, true)
	}
	// Under the lock no create or removal is half way: whatever has no
	// state now has no owner.
	have := map[string]bool{}
	states, _ := os.ReadDir(rt.dirs.State)
	for _, e := range states {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(rt.dirs.statePath(e.Name())); errors.Is(err, fs.ErrNotExist) {
			_ = os.RemoveAll(rt.dirs.containerDir(e.Name())) // made, never saved; or removed all but this
			continue
		}
		have[e.Name()] = true
	}
	data, _ := os.ReadDir(rt.dirs.Data)
	for _, e := range data {
		if !have[e.Name()] {
			_ = os.RemoveAll(rt.dirs.dataDir(e.Name()))
		}
	}
	roots, _ := rt.store.ContainerRoots()
	for _, id := range roots {
		if !have[id] {
			_ = rt.store.RemoveRoot(id)
		}
	}
	_ = rt.store.RemoveUnfinishedRoots()
}

// abandoned reports whether st's owner died with work half done: a create
// or a removal cut short, or a container whose monitor is gone while it
// was not yet stopped. A stopped detached container is kept on purpose,
// and an OCI container between its verbs has no owner by design: `delete`
// removes it.
func (rt *Runtime) abandoned(st *State) bool {
	switch {
	case alive(st.Monitor, st.MonitorStart) && !st.Removing:
		return false
	case st.Removing:
		return true // whoever was removing it holds the lock while it does
	case st.Bundle != "":
		return false
	case st.Detached && st.Status == Stopped:
		return false
	}
	return true
}

// leftovers reports whether the root holds what no container's state
// names: a state directory without state.json, or the data or the layers
// of a container that has no state.
func (rt *Runtime) leftovers(all []*State) bool {
	have := map[string]bool{}
	for _, st := range all {
		have[st.ID] = true
	}
	ents, _ := os.ReadDir(rt.dirs.State)
	for _, e := range ents {
		if e.IsDir() && !have[e.Name()] {
			return true
		}
	}
	data, _ := os.ReadDir(rt.dirs.Data)
	for _, e := range data {
		if !have[e.Name()] {
			return true
		}
	}
	roots, _ := rt.store.ContainerRoots()
	for _, id := range roots {
		if !have[id] {
			return true
		}
	}
	return false
}

// startDetached starts the container under a background monitor process
// and returns once it runs (or failed to start), as `docker run -d` does.
func (rt *Runtime) startDetached(ctr *Container) error {
	r, w, err := os.Pipe()
	if err != nil {
		rt.destroy(ctr, true)
		return err
	}
	root := ""
	if rt.dirs != defaultDirs("") {
		root = filepath.Dir(rt.dirs.State)
	}
	cmd := exec.Command("/proc/self/exe", monitorArg, root, ctr.State.ID)
	cmd.Args[0] = "workshop-monitor"
	cmd.ExtraFiles = []*os.File{w}
	cmd.Env = append(os.Environ(), rt.n.Env())
	// Its own session: the monitor outlives this command and the terminal.
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		rt.destroy(ctr, true)
		return stage.Fail("starting the monitor: %v", err)
	}
	w.Close()
	b, _ := io.ReadAll(r)
	r.Close()
	_ = cmd.Process.Release()
	msg := strings.TrimSpace(string(b))
	if msg == "ok" {
		fmt.Println(ctr.State.ID)
		return nil
	}
	var code int
	if _, err := fmt.Sscanf(msg, "exit %d", &code); err == nil {
		if logs, err := os.ReadFile(rt.dirs.logPath(ctr.State.ID)); err == nil {
			os.Stderr.Write(logs)
		}
		return stage.ExitStatus(code)
	}
	if msg == "" {
		msg = "the monitor died before the container started"
	}
	return stage.Fail("%s", msg)
}

// monitor is the background process of a detached container: it starts
// the container with its output going to the log, reports, waits, records
// the exit status, and removes the cgroups (the layers stay for logs,
// commit and rm).
func monitor(root, id string) int {
	report := os.NewFile(3, "report")
	rt, err := backgroundRuntime(root)
	if err != nil {
		fmt.Fprintln(report, err)
		return 1
	}
	// The container is this process's from now on: `run -d` may be killed
	// while it waits, and the next command must then see a living owner
	// (or, if it came first and removed the container, nothing to start).
	unlock, err := rt.dirs.lock()
	if err != nil {
		fmt.Fprintln(report, err)
		return 1
	}
	st, err := rt.dirs.load(id)
	if err == nil {
		st.Monitor, st.MonitorStart = os.Getpid(), startTime(os.Getpid())
		err = rt.dirs.save(st)
	}
	unlock()
	if err != nil {
		fmt.Fprintln(report, err)
		return 1
	}
	ctr := &Container{State: st}
	ctr.Spec, _ = readSpec(rt.dirs.configPath(id))
	ctr.Group, _ = rt.openGroup(st.Cgroup)
	log, err := openCappedLog(rt.dirs.logPath(id), st.LogMaxSize)
	if err != nil {
		fmt.Fprintln(report, err)
		return 1
	}
	// The container writes into a pipe, and this process into the log:
	// a file handed to the container could grow without end.
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(report, err)
		return 1
	}
	logged := make(chan struct{})
	go func() { log.copyFrom(r); close(logged) }()
	// Its output is all in the log once every process holding the pipe is
	// gone (all of them die with PID 1's namespace); not waiting forever.
	flushed := func() {
		select {
		case <-logged:
		case <-time.After(2 * time.Second):
		}
	}
	devnull, _ := os.Open(os.DevNull)
	cmd, link, err := rt.start(ctr, []*os.File{devnull, w, w}, true)
	w.Close()
	if err != nil {
		flushed()
		fmt.Fprintln(report, err)
		rt.destroy(ctr, true)
		return 1
	}
	_ = rt.serve(ctr, link) // `run -d` has no hooks
	reported := false
	if link.Completed() {
		fmt.Fprintln(report, "ok")
		report.Close()
		reported = true
	}
	status, _ := rt.wait(ctr, cmd, link)
	flushed()
	if !reported {
		// It ended before it ever ran the command: the setup failed.
		fmt.Fprintf(report, "exit %d\n", status)
		report.Close()
		rt.destroy(ctr, true)
		return status
	}
	rt.destroy(ctr, false)
	return status
}

// cappedLog is a detached container's log, kept under max bytes as
// Docker's json-file driver keeps it with max-size and max-file 2: once
// container.log is full it becomes container.log.1 (the older one goes)
// and a new container.log starts. A container printing without end (`yes`)
// costs at most twice max of disk.
type cappedLog struct {
	path string
	max  int64
	f    *os.File
	size int64
}

func openCappedLog(path string, max int64) (*cappedLog, error) {
	if max <= 0 {
		max = defaultLogMaxSize
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &cappedLog{path: path, max: max, f: f, size: fi.Size()}, nil
}

func (l *cappedLog) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if l.size >= l.max {
			if err := l.rotate(); err != nil {
				return written, err
			}
		}
		chunk := p
		if room := l.max - l.size; int64(len(chunk)) > room {
			chunk = chunk[:room]
		}
		n, err := l.f.Write(chunk)
		written, l.size, p = written+n, l.size+int64(n), p[n:]
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// rotate renames without a gap: a reader (logs, tail -F) always finds
// container.log. The full file gets a second name, which replaces .1; then
// a new empty file replaces container.log.
func (l *cappedLog) rotate() error {
	f, err := os.OpenFile(l.path+".new", os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	os.Remove(l.path + ".old")
	err = os.Link(l.path, l.path+".old")
	if err == nil {
		err = os.Rename(l.path+".old", l.path+".1")
	}
	if err == nil {
		err = os.Rename(l.path+".new", l.path)
	}
	if err != nil {
		f.Close()
		return err
	}
	l.f.Close()
	l.f, l.size = f, 0
	return nil
}

// copyFrom writes everything read from r into the log, until r ends. What
// cannot be written (the disk is full) is dropped, never left in the pipe:
// a full pipe would stop the container at its next write.
func (l *cappedLog) copyFrom(r *os.File) {
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			_, _ = l.Write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	r.Close()
	l.f.Close()
}

// saveFinal records how a detached container ended, unless `rm` has begun
// (or finished) removing it: a save then would bring back what rm removes.
func (rt *Runtime) saveFinal(st *State) {
	unlock, err := rt.dirs.lock()
	if err != nil {
		return
	}
	defer unlock()
	if cur, err := rt.dirs.load(st.ID); err == nil && !cur.Removing {
		_ = rt.dirs.save(st)
	}
}

func backgroundRuntime(root string) (*Runtime, error) {
	dirs := defaultDirs(root)
	store, err := layers.OpenStore(dirs.Images)
	if err != nil {
		return nil, err
	}
	cg, err := cgroup.Detect()
	if err != nil {
		return nil, err
	}
	return &Runtime{dirs: dirs, store: store, cg: cg, n: narrate.New(narrate.Options{Quiet: true}, narrate.Host)}, nil
}

func runtimeFor(c *cli.Context) (*Runtime, error) {
	return openRuntime(c, false)
}

func psCmd(c *cli.Context) error {
	rt, err := runtimeFor(c)
	if err != nil {
		return err
	}
	if c.Args().Len() == 1 {
		// `ps ID`: the host PIDs of the container's processes, from its
		// cgroup (what `docker top` asks an OCI runtime for).
		st, err := rt.dirs.find(c.Args().First())
		if err != nil {
			return stage.Fail("%v", err)
		}
		pids := []int{}
		if g, err := rt.openGroup(st.Cgroup); err == nil {
			if p, err := g.Procs(); err == nil {
				pids = append(pids, p...)
			}
		}
		if c.String("format") == "json" {
			b, _ := json.Marshal(pids)
			fmt.Println(string(b))
			return nil
		}
		for _, p := range pids {
			fmt.Println(p)
		}
		return nil
	}
	all, err := rt.dirs.all()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(w, "CONTAINER ID\tNAME\tPID\tSTATUS\tCREATED\tCOMMAND\tPORTS")
	for _, st := range all {
		running := alive(st.Pid, st.PidStart)
		if !running && !c.Bool("all") {
			continue
		}
		status := fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, ago(st.Finished))
		if st.Status != Stopped || st.Finished.IsZero() {
			// Its end was never recorded (the disk was full, say): what it
			// exited with, and when, is unknown; not 0, long ago.
			status = "Exited (unknown)"
		}
		pid := "-"
		switch {
		case running && st.Status == Created:
			status, pid = "Created", fmt.Sprint(st.Pid)
		case running:
			status, pid = "Up "+ago(st.Created), fmt.Sprint(st.Pid)
		case st.Status == Creating || st.Status == Created:
			status = "Created"
		}
		ports := ""
		if running {
			ports = psPorts(st)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s ago\t%q\t%s\n", short(st.ID), st.Name, pid, status, ago(st.Created), strings.Join(st.Command, " "), ports)
	}
	return w.Flush()
}

func ago(t time.Time) string {
	d := time.Since(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d seconds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	}
	return fmt.Sprintf("%d hours", int(d.Hours()))
}

func oneContainer(c *cli.Context) (*Runtime, *State, error) {
	if c.Args().Len() != 1 {
		return nil, nil, stage.Fail("give one container NAME (see `ps -a`)")
	}
	rt, err := runtimeFor(c)
	if err != nil {
		return nil, nil, err
	}
	st, err := rt.dirs.find(c.Args().First())
	if err != nil {
		return nil, nil, stage.Fail("%v", err)
	}
	return rt, st, nil
}

func logsCmd(c *cli.Context) error {
	rt, st, err := oneContainer(c)
	if err != nil {
		return err
	}
	// The older file first, if the log was ever full (see cappedLog).
	path := rt.dirs.logPath(st.ID)
	var files []*os.File
	for _, p := range []string{path + ".1", path} {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		defer f.Close()
		files = append(files, f)
	}
	if len(files) == 0 {
		return stage.Fail("%s has no log: only detached containers (run -d) write one; a foreground run prints to your terminal", st.Name)
	}
	for _, f := range files {
		if _, err := io.Copy(os.Stdout, f); err != nil {
			return err
		}
	}
	return nil
}

func stopCmd(c *cli.Context) error {
	rt, st, err := oneContainer(c)
	if err != nil {
		return err
	}
	if !alive(st.Pid, st.PidStart) {
		return stage.Fail("container %s is not running", st.Name)
	}
	// PID 1 only receives the signals it has a handler for: a shell or a
	// sleep as PID 1 ignores SIGTERM, hence the SIGKILL after the timeout.
	_ = st.signal(unix.SIGTERM)
	if !waitGone(st, time.Duration(c.Int("time"))*time.Second) {
		_ = st.signal(unix.SIGKILL)
		waitGone(st, 5*time.Second)
	}
	// Let the monitor record the exit and remove the cgroups.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if s, err := rt.dirs.load(st.ID); err != nil || s.Status == Stopped {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println(st.Name)
	return nil
}

func waitGone(st *State, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !alive(st.Pid, st.PidStart) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return !alive(st.Pid, st.PidStart)
}

func rmCmd(c *cli.Context) error {
	if c.Args().Len() == 0 {
		return stage.Fail("give the container NAME to remove (see `ps -a`)")
	}
	rt, err := runtimeFor(c)
	if err != nil {
		return err
	}
	for _, ref := range c.Args().Slice() {
		st, err := rt.dirs.find(ref)
		if err != nil {
			return stage.Fail("%v", err)
		}
		if alive(st.Pid, st.PidStart) {
			if !c.Bool("force") {
				return stage.Fail("container %s is running: `stop` it first, or `rm -f`", st.Name)
			}
			_ = st.signal(unix.SIGKILL)
			waitGone(st, 5*time.Second)
		}
		rt.destroy(&Container{State: st}, true)
		fmt.Println(st.Name)
	}
	return nil
}

// Inspection is what `docker inspect` shows, for this runtime.
type Inspection struct {
	*State
	Running    bool              `json:"running"`
	Namespaces map[string]string `json:"namespaces,omitempty"`
	Limits     map[string]string `json:"limits,omitempty"`
	Layers     []string          `json:"layers"` // bottom first, chain IDs
	LayerDirs  []string          `json:"layerDirs"`
	InitLayer  string            `json:"initLayer,omitempty"`
	UpperLayer string            `json:"upperLayer,omitempty"`
	Mounts     []string          `json:"mounts,omitempty"`
}

func inspectCmd(c *cli.Context) error {
	rt, st, err := oneContainer(c)
	if err != nil {
		return err
	}
	in := Inspection{State: st, Running: alive(st.Pid, st.PidStart)}
	if in.Running {
		in.Namespaces = map[string]string{}
		for _, k := range []string{"pid", "mnt", "uts", "ipc", "net", "cgroup"} {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", st.Pid, k)); err == nil {
				in.Namespaces[k] = l
			}
		}
		if ms, err := mountinfo.Read(fmt.Sprintf("/proc/%d/mountinfo", st.Pid)); err == nil {
			for _, m := range ms {
				in.Mounts = append(in.Mounts, m.Point+" ("+m.FSType+")")
			}
		}
	}
	if g, err := rt.openGroup(st.Cgroup); err == nil {
		in.Limits = map[string]string{}
		if q, p, err := g.CPU(); err == nil {
			in.Limits["cpu"] = fmt.Sprintf("quota %d µs per %d µs", q, p)
		}
		if m, err := g.Memory(); err == nil {
			in.Limits["memory"] = fmt.Sprintf("limit %d, usage %d", m.Limit, m.Usage)
		}
		if p, err := g.Pids(); err == nil {
			in.Limits["pids"] = fmt.Sprintf("max %d, current %d", p.Max, p.Current)
		}
	}
	if spec, err := readSpec(rt.dirs.configPath(st.ID)); err == nil {
		in.LayerDirs = spec.Lowers
		in.UpperLayer = spec.Upper
	}
	if root, err := rt.store.ContainerRoot(st.ID); err == nil {
		in.InitLayer = root.Init
		if stack, err := rt.store.Stack(root.Parent); err == nil {
			for _, l := range stack {
				in.Layers = append(in.Layers, l.ChainID)
			}
		}
	}
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}
