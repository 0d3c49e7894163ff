package main

// --proc-view: the fix for the /proc problem (docs/06-full-container.md).
// The runtime serves a FUSE filesystem computed from the container's
// cgroup (procview/), the container's first process binds its files over
// /proc/meminfo, /proc/cpuinfo ... and mounts its own cgroup, read-only,
// at /sys/fs/cgroup, as Docker does; the runtime lets go of its own mount
// once the container holds its binds.

import (
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/06-full-container/procview"
	"github.com/container-internals/workshop/internal/narrate"
	"github.com/container-internals/workshop/internal/stage"
)

// procViewDir is where the view is mounted on the host while the
// container's first process binds its files: in its state directory.
func (d Dirs) procViewDir(id string) string { return filepath.Join(d.State, id, "procview") }

// withProcView adds the view to a container's spec: the binds over /proc,
// the container's cgroup at /sys/fs/cgroup, and the CPUs it is shown and
// pinned to.
func (rt *Runtime) withProcView(spec *Spec, st *State, o *runOptions) {
	spec.ProcView = rt.dirs.procViewDir(st.ID)
	var allowed unix.CPUSet
	if unix.SchedGetaffinity(0, &allowed) == nil {
		var cpus []int
		for c := 0; c < len(allowed)*64; c++ {
			if allowed.IsSet(c) {
				cpus = append(cpus, c)
			}
		}
		spec.CPUs = procview.ChooseCPUs(cpus, o.cpuQuota, o.cpuPeriod)
	}
	why := "--proc-view: these files of /proc tell the container's figures, computed from its cgroup by the runtime (FUSE)"
	for _, f := range procview.Files {
		spec.Mounts = append(spec.Mounts, Mount{Source: filepath.Join(spec.ProcView, f), Target: "/proc/" + f, Flags: unix.MS_BIND, Why: why})
		why = ""
	}
	if slices.Contains(spec.Namespaces, "cgroup") { // without one, the mount would show the host's whole tree
		spec.Mounts = append(spec.Mounts, Mount{Source: "cgroup", Target: "/sys/fs/cgroup", Type: "cgroup",
			Flags: unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC,
			Why:   "its own cgroup, read-only, seen through its cgroup namespace: programs can read their limits"})
	}
}

// mountProcView starts serving the container's view, before its first
// process is cloned with a copy of the host's mounts.
func (rt *Runtime) mountProcView(ctr *Container) error {
	if ctr.Spec == nil || ctr.Spec.ProcView == "" || ctr.Group == nil {
		return nil
	}
	rt.n.Step("Serve the container's /proc view (FUSE), computed from its cgroup (stage 03)")
	v, err := procview.Mount(ctr.Spec.ProcView, ctr.Group, ctr.Spec.CPUs, rt.n.Trace())
	if err != nil {
		return stage.Fail("--proc-view: %v", err)
	}
	ctr.view = v
	return nil
}

// detachProcView: the container has bound the view's files (or has
// exited); the host's mount goes.
func (rt *Runtime) detachProcView(ctr *Container) {
	if ctr.view != nil {
		ctr.view.Detach(rt.n.Trace())
	}
}

// cleanProcView is part of every clean-up: the host's mount, if a runtime
// was killed before it let go of it, and the server, which ends once the
// container's mounts are gone.
func (rt *Runtime) cleanProcView(ctr *Container) {
	procview.Unmount(rt.dirs.procViewDir(ctr.State.ID), rt.n.Trace())
	if ctr.view != nil && !ctr.view.Wait(2*time.Second) {
		rt.n.Warn("the /proc view's server has not ended: a process still holds the container's mounts")
	}
}

// pinCPUs (in the container's first process, before the exec) runs the
// command on the CPUs its view shows: `nproc`, Go's runtime.NumCPU and
// anything else that asks the scheduler (sched_getaffinity), not /proc,
// count them. Not a limit (a process may widen its own set again): the
// quota is.
func pinCPUs(n *narrate.Narrator, cpus []int) {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	n.Call("sched_setaffinity(0, %v)   # --proc-view: run on the CPUs the view shows", cpus)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		initFail("sched_setaffinity %v: %v", cpus, err)
	}
}
