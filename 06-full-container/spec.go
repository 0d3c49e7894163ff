package main

// The container's blueprint: everything its first process needs to build
// its world, written by the runtime to config.json in the container's state
// directory and read by the init process before it changes its root. It is
// a small cousin of the OCI runtime spec's config.json, and says the same
// things: which namespaces, which mounts, which devices, which paths to hide,
// which capabilities to keep.

import (
	"encoding/json"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Spec is the init process's blueprint.
type Spec struct {
	ID       string   `json:"id"`
	Hostname string   `json:"hostname"`
	Args     []string `json:"args"`
	Env      []string `json:"env"`
	Cwd      string   `json:"cwd"`
	UID      int      `json:"uid"`
	GID      int      `json:"gid"`
	Groups   []int    `json:"groups,omitempty"`
	Umask    *uint32  `json:"umask,omitempty"`

	// The root: an overlay of Lowers (bottom first) with Upper on top,
	// mounted at Rootfs. No Upper: a read-only root.
	Rootfs   string   `json:"rootfs"`
	Lowers   []string `json:"lowers"`
	Upper    string   `json:"upper,omitempty"`
	Work     string   `json:"work,omitempty"`
	Readonly bool     `json:"readonly,omitempty"`
	// BindRoot: Rootfs is a directory to use as it is (an OCI bundle's
	// rootfs), bound onto itself instead of an overlay.
	BindRoot bool `json:"bindRoot,omitempty"`
	// Rootless: the runtime itself runs in a user namespace (rootless.go):
	// device nodes are bound, and setgroups may be denied.
	Rootless bool `json:"rootless,omitempty"`

	Namespaces []string `json:"namespaces"` // kinds to create: user, pid, mnt, uts, ipc, net, cgroup
	// With a user namespace: its maps, written from outside (userns.go).
	UIDMappings []IDMap `json:"uidMappings,omitempty"`
	GIDMappings []IDMap `json:"gidMappings,omitempty"`
	// JoinNamespaces are existing namespaces (kind -> /proc/PID/ns/KIND or
	// a bind-mounted one) the container enters with setns instead.
	JoinNamespaces map[string]string `json:"joinNamespaces,omitempty"`
	Propagation    uintptr           `json:"propagation"`
	Mounts         []Mount           `json:"mounts"`
	Devices        []Device          `json:"devices"`
	Symlinks       [][2]string       `json:"symlinks"` // {target, link} inside the root

	MaskedPaths   []string          `json:"maskedPaths"`
	ReadonlyPaths []string          `json:"readonlyPaths"`
	Sysctl        map[string]string `json:"sysctl,omitempty"`
	Capabilities  []string          `json:"capabilities"` // the bounding set: what root keeps at exec
	CapSets       *CapSets          `json:"capSets,omitempty"`
	NoNewPrivs    bool              `json:"noNewPrivileges"`
	Rlimits       []Rlimit          `json:"rlimits,omitempty"`
	OOMScoreAdj   *int              `json:"oomScoreAdj,omitempty"`
	// Seccomp is the system call filter, in the OCI form (nil: none). The
	// first process compiles it and installs it just before execve.
	Seccomp *specs.LinuxSeccomp `json:"seccomp,omitempty"`

	// Hooks are an OCI caller's (hooks.go); HookState is the state they
	// read, less its status and PID, which depend on the moment.
	Hooks     *specs.Hooks `json:"hooks,omitempty"`
	HookState *specs.State `json:"hookState,omitempty"`

	// ProcView is where the runtime mounts the container's /proc view
	// (--proc-view) on the host, for the binds in Mounts; CPUs are the CPUs
	// the view shows, and the command is pinned to them.
	ProcView string `json:"procView,omitempty"`
	CPUs     []int  `json:"cpus,omitempty"`

	// NoProcess: an OCI config without process; the container is set up,
	// and start refuses (there is nothing to run).
	NoProcess bool `json:"noProcess,omitempty"`

	Init bool `json:"init"` // --init: a tiny PID 1 runs Args as its child
	// Terminal: the command's stdin, stdout and stderr are a new pty of
	// the container's own devpts, its controlling terminal; the master is
	// sent over the console socket (tty.go). ConsoleSize: its rows
	// (Height) and columns (Width).
	Terminal    bool       `json:"terminal,omitempty"`
	ConsoleSize *specs.Box `json:"consoleSize,omitempty"`
	// WaitReady: the runtime has a limit to write once the setup is done
	// (pids.max): pause before the exec and let it.
	WaitReady bool `json:"waitReady,omitempty"`
	// WaitStart: set up everything, then wait for `start` (OCI create).
	WaitStart bool   `json:"waitStart,omitempty"`
	StartFifo string `json:"startFifo,omitempty"`
}

// CapSets are the other capability sets of an OCI config (`run` uses the
// bounding set alone, as Docker does for root).
type CapSets struct {
	Effective, Permitted, Inheritable, Ambient []string
}

// Mount is one mount made inside the new root, before pivot_root.
type Mount struct {
	Source string  `json:"source"`
	Target string  `json:"target"` // inside the container
	Type   string  `json:"type"`
	Flags  uintptr `json:"flags"`
	Data   string  `json:"data,omitempty"`
	Why    string  `json:"why,omitempty"` // for --explain
}

// Device is a device node made in the container's /dev.
type Device struct {
	Path  string `json:"path"`
	Type  uint32 `json:"type"` // unix.S_IFCHR or S_IFBLK
	Major uint32 `json:"major"`
	Minor uint32 `json:"minor"`
	Mode  uint32 `json:"mode"`
	UID   int    `json:"uid"`
	GID   int    `json:"gid"`
}

// Rlimit is one resource limit (RLIMIT_NOFILE ...).
type Rlimit struct {
	Type int    `json:"type"`
	Soft uint64 `json:"soft"`
	Hard uint64 `json:"hard"`
}

const (
	dataDev     = "mode=755,size=65536k"
	defaultPATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// defaultMounts are Docker's: a /proc of the container's PID namespace, a
// tmpfs /dev with only the devices below, a private devpts for terminals,
// /dev/shm, /dev/mqueue, and /sys read-only.
func defaultMounts() []Mount {
	const nosuidNoexecNodev = unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV
	return []Mount{
		{Source: "proc", Target: "/proc", Type: "proc", Flags: nosuidNoexecNodev, Why: "a /proc of the container's own PID namespace (stage 01)"},
		{Source: "tmpfs", Target: "/dev", Type: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: dataDev, Why: "an empty /dev: only the devices we create below, never the host's disks"},
		{Source: "devpts", Target: "/dev/pts", Type: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "newinstance,ptmxmode=0666,mode=0620", Why: "terminals of the container's own, not the host's"},
		{Source: "shm", Target: "/dev/shm", Type: "tmpfs", Flags: nosuidNoexecNodev, Data: "mode=1777,size=65536k", Why: "POSIX shared memory, 64 MB as Docker's default"},
		{Source: "mqueue", Target: "/dev/mqueue", Type: "mqueue", Flags: nosuidNoexecNodev, Why: "POSIX message queues of the container's IPC namespace"},
		{Source: "sysfs", Target: "/sys", Type: "sysfs", Flags: nosuidNoexecNodev | unix.MS_RDONLY, Why: "/sys read-only: the kernel's devices and settings are the host's"},
	}
}

// defaultDevices are the character devices every container gets.
func defaultDevices() []Device {
	dev := func(path string, major, minor uint32) Device {
		return Device{Path: path, Type: unix.S_IFCHR, Major: major, Minor: minor, Mode: 0o666}
	}
	return []Device{
		dev("/dev/null", 1, 3), dev("/dev/zero", 1, 5), dev("/dev/full", 1, 7),
		dev("/dev/random", 1, 8), dev("/dev/urandom", 1, 9), dev("/dev/tty", 5, 0),
	}
}

func defaultSymlinks() [][2]string {
	return [][2]string{
		{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
		{"pts/ptmx", "/dev/ptmx"}, {"/proc/kcore", "/dev/core"},
	}
}

// Docker's default masked and read-only paths: files in /proc and /sys that
// tell too much about the host or change it.
var (
	defaultMasked = []string{
		"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	defaultReadonly = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
	// Docker's default capability set: what a root process inside keeps.
	// CAP_SYS_ADMIN (mount, and much more), CAP_NET_ADMIN, CAP_SYS_MODULE,
	// CAP_SYS_TIME, CAP_SYS_PTRACE ... are all dropped.
	defaultCaps = []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
		"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
)

func writeSpec(path string, s *Spec) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func readSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Spec
	return &s, json.Unmarshal(b, &s)
}
