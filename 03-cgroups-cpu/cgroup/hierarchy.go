// Package cgroup finds where the kernel's control groups live on this host
// and drives them through their files: create a group, give it CPU, memory
// and pids limits, move processes in, read the kernel's counters back, and
// remove it again.
//
// cgroups come in two versions, and a host may mount both:
//
//   - v1: one filesystem ("hierarchy") per controller, or per group of
//     controllers: /sys/fs/cgroup/cpu, /sys/fs/cgroup/memory, or a
//     co-mounted /sys/fs/cgroup/cpu,cpuacct. A group is a directory of the
//     same name in each hierarchy it uses. The CPU limit is two files,
//     cpu.cfs_period_us and cpu.cfs_quota_us.
//   - v2: one hierarchy for everything (usually /sys/fs/cgroup itself). The
//     controllers it offers are listed in cgroup.controllers, and a parent
//     hands a controller to its children by listing it in its
//     cgroup.subtree_control. The CPU limit is one file, cpu.max.
//   - hybrid: v1 hierarchies for the controllers plus a cgroup2 mount (often
//     /sys/fs/cgroup/unified) holding whatever controllers v1 did not take.
//
// A controller is used from v2 when v2 offers it, from v1 otherwise. Every
// file the package writes can be shown as the equivalent shell command
// through Hierarchy.Trace, so a program can narrate exactly what it does.
package cgroup

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/container-internals/workshop/internal/mountinfo"
	"github.com/container-internals/workshop/internal/trace"
)

// Version is a cgroup version: V1 or V2.
type Version int

const (
	V1 Version = 1
	V2 Version = 2
)

func (v Version) String() string { return "v" + strconv.Itoa(int(v)) }

// v1Controllers are the names a v1 hierarchy's mount options can carry;
// everything else in those options (rw, relatime, name=systemd, ...) is not
// a controller.
var v1Controllers = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "devices": true,
	"freezer": true, "net_cls": true, "net_prio": true, "blkio": true,
	"perf_event": true, "hugetlb": true, "pids": true, "rdma": true, "misc": true,
}

// Mount is one mounted cgroup hierarchy.
type Mount struct {
	// Dir is the directory to read and write: the mount point, under the
	// fake root given to DetectFrom if any.
	Dir string
	// MountPoint is the mount point as the mount table shows it.
	MountPoint string
	Version    Version
	// Controllers are the controllers this hierarchy offers: from the mount
	// options on v1, from cgroup.controllers on v2. Sorted.
	Controllers []string
	// Options are the filesystem's options as mounted, e.g. "rw,cpu,cpuacct".
	Options string
}

// Hierarchy is the set of cgroup hierarchies mounted on a host.
type Hierarchy struct {
	// Trace, when set, is told the shell equivalent of every change the
	// package makes ("mkdir DIR", "echo 20000 > FILE", "rmdir DIR",
	// "kill -KILL PID") just before it makes it (the workshop's one hook).
	Trace trace.Hook

	mounts []Mount
	v2     int // index of the cgroup2 mount in mounts, -1 when none
}

// Controller says where a controller lives.
type Controller struct {
	Name    string
	Version Version
	Mount   string // the hierarchy's root directory, e.g. /sys/fs/cgroup/cpu
}

// Detect reads the running system's mount table (/proc/self/mountinfo) and
// the v2 hierarchy's cgroup.controllers.
func Detect() (*Hierarchy, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cannot read the mount table: %v (is /proc mounted?)", err)
	}
	defer f.Close()
	return DetectFrom(f, "/")
}

// DetectFrom is Detect for a recorded mount table. root is prefixed to every
// mount point before a file is read or written: "/" for the real system, a
// temporary directory laid out like cgroupfs in tests.
func DetectFrom(r io.Reader, root string) (*Hierarchy, error) {
	h := &Hierarchy{v2: -1}
	taken := map[string]bool{} // a controller bind-mounted twice counts once
	table, err := mountinfo.Parse(r)
	if err != nil {
		return nil, err
	}
	for _, e := range table {
		// 32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
		fstype, mp, opts := e.FSType, e.Point, e.Super
		m := Mount{MountPoint: mp, Dir: filepath.Join(root, mp), Options: opts}
		switch fstype {
		case "cgroup":
			m.Version = V1
			dup := false
			for _, o := range strings.Split(opts, ",") {
				if v1Controllers[o] {
					dup = dup || taken[o]
					m.Controllers = append(m.Controllers, o)
				}
			}
			if dup {
				continue
			}
			for _, c := range m.Controllers {
				taken[c] = true
			}
		case "cgroup2":
			if h.v2 >= 0 {
				continue
			}
			m.Version = V2
			b, err := os.ReadFile(filepath.Join(m.Dir, "cgroup.controllers"))
			if err != nil && !os.IsNotExist(err) {
				return nil, fmt.Errorf("cannot read %s: %v", filepath.Join(m.Dir, "cgroup.controllers"), err)
			}
			m.Controllers = strings.Fields(string(b))
			h.v2 = len(h.mounts)
		default:
			continue
		}
		sort.Strings(m.Controllers)
		h.mounts = append(h.mounts, m)
	}
	if len(h.mounts) == 0 {
		return nil, fmt.Errorf("no cgroup filesystem is mounted: mount one with `sudo mount -t cgroup2 none /sys/fs/cgroup` (or boot with systemd)")
	}
	return h, nil
}

// Mounts returns every mounted cgroup hierarchy, in mount table order (the
// equivalent of `mount -t cgroup; mount -t cgroup2`).
func (h *Hierarchy) Mounts() []Mount { return append([]Mount(nil), h.mounts...) }

// Unified returns the cgroup2 mount, if there is one.
func (h *Hierarchy) Unified() (Mount, bool) {
	if h.v2 < 0 {
		return Mount{}, false
	}
	return h.mounts[h.v2], true
}

// Mode is "v1" (only v1 hierarchies), "v2" (only the unified one) or
// "hybrid" (v1 hierarchies with controllers plus a cgroup2 mount).
func (h *Hierarchy) Mode() string {
	v1 := false
	for _, m := range h.mounts {
		if m.Version == V1 && len(m.Controllers) > 0 {
			v1 = true
		}
	}
	switch {
	case v1 && h.v2 >= 0:
		return "hybrid"
	case v1:
		return "v1"
	default:
		return "v2"
	}
}

// Controller says where the named controller lives: on v2 when the unified
// hierarchy's cgroup.controllers lists it, on v1 otherwise. v2 has no
// cpuacct controller: its counters are in cpu.stat, which every v2 group
// has, so "cpuacct" resolves to v2 on a host whose cpu is on v2.
func (h *Hierarchy) Controller(name string) (Controller, error) {
	if u, ok := h.Unified(); ok {
		if slices.Contains(u.Controllers, name) {
			return Controller{name, V2, u.Dir}, nil
		}
	}
	for _, m := range h.mounts {
		if m.Version == V1 && slices.Contains(m.Controllers, name) {
			return Controller{name, V1, m.Dir}, nil
		}
	}
	if u, ok := h.Unified(); ok && name == "cpuacct" {
		if c, err := h.Controller("cpu"); err == nil && c.Version == V2 {
			return Controller{name, V2, u.Dir}, nil
		}
	}
	where := "no v1 hierarchy is mounted with it"
	if u, ok := h.Unified(); ok {
		where = fmt.Sprintf("%s/cgroup.controllers does not list it and %s", u.Dir, where)
	}
	return Controller{}, fmt.Errorf("the %s controller is not available here (%s): use a kernel with it enabled, such as the workshop VM's", name, where)
}

func (h *Hierarchy) trace(format string, args ...any) {
	h.Trace.Call("", format, args...)
}
