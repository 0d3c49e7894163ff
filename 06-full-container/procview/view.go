// Package procview fixes "the /proc problem" the way lxcfs does: a small
// FUSE filesystem whose files (meminfo, cpuinfo, stat, uptime, loadavg,
// swaps, diskstats) are computed, at each read, from the container's
// cgroup, and which the container's first process binds over its own
// /proc/meminfo, /proc/cpuinfo ... before pivot_root. `free`, `top` and
// `uptime` inside then read the container's figures, not the host's.
//
// How FUSE works: the kernel's fuse filesystem turns each system call on a
// FUSE mount (lookup, getattr, open, read) into a request it queues on
// /dev/fuse; a server process reads the request from its open /dev/fuse,
// writes the answer back, and the kernel hands that to the caller. The
// server here is a few goroutines of the runtime's own process, through
// github.com/hanwen/go-fuse (the protocol's encoding, not ours to write
// again).
//
// Where the server runs, and why: in the runtime process that waits for the
// container (the `run` command in the foreground, the monitor of `run -d`),
// one server for each container. That process lives exactly as long as the
// container, on the host's side: not in the container's PID namespace or
// cgroup, with nothing the container can signal, trace or open. If it is
// killed, the kernel closes its /dev/fuse and aborts the connection: reads
// of the view then fail at once (ENOTCONN), they never hang, and the
// container dies with it anyway (PR_SET_PDEATHSIG). lxcfs is one server for
// the whole host: cheaper with hundreds of containers, but one crash or
// upgrade takes every container's /proc with it, and one container's reads
// are served beside another's.
//
// Why nothing of it stays on the host: the FUSE mount is made on the host
// (in the container's state directory), the container's first process is
// cloned with a copy of the host's mounts, binds the files from its copy,
// and as soon as it reports its setup done the runtime detaches the host's
// mount (umount2 MNT_DETACH). From then on the filesystem is reachable only
// through the container's own binds, in its own mount namespace: no host
// command (ls, df, findmnt) ever waits on it, and when the container's last
// process exits its mount namespace goes, the mounts with it, and the
// server's loop ends.
package procview

import (
	"context"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/03-cgroups-cpu/cgroup"
	"github.com/container-internals/workshop/internal/mountinfo"
	"github.com/container-internals/workshop/internal/trace"
)

// fsType is the filesystem's name in the mount table (fuse.procview).
const fsType = "fuse.procview"

// View is one container's view of /proc, served while the container lives.
type View struct {
	Dir    string // where it is mounted on the host, until Detach
	g      *cgroup.Group
	cpus   []int         // the CPUs it shows (the container is pinned to them)
	start  atomic.Uint64 // the container's first process's start, in USER_HZ ticks since boot
	server *fuse.Server
	done   chan struct{} // closed when the server's loop has ended
	load   loadAvg
}

// Mount mounts the view of group g on dir, showing cpus, and serves it.
// The caller clones the container afterwards, then calls Started with its
// first process's start time and Detach once the container has bound the
// files.
func Mount(dir string, g *cgroup.Group, cpus []int, hook trace.Hook) (*View, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	v := &View{Dir: dir, g: g, cpus: cpus, done: make(chan struct{})}
	// Close-on-exec: the container's first process is cloned from this
	// one, and whoever holds this descriptor answers the container's reads.
	hook.Call("the kernel's end of the FUSE connection: whoever reads it answers the container's reads",
		`open("/dev/fuse", O_RDWR | O_CLOEXEC)`)
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /dev/fuse: %v (is the fuse module loaded? `modprobe fuse`)", err)
	}
	// Read-only, no devices, no set-uid, no exec: the binds made of it
	// inherit these flags. allow_other: every user of the container may
	// read it, not only the mounter (root); default_permissions: the
	// kernel checks the files' modes (0444) itself.
	const flags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	data := fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions", fd)
	hook.Call("the container's /proc files, served by this process (FUSE)",
		`mount("procview", %q, %q, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, %q)`, dir, fsType, data)
	if err := unix.Mount("procview", dir, fsType, flags, data); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("mounting the /proc view on %s: %v", dir, err)
	}
	long := time.Hour // the files never come or go: the kernel may remember them
	opts := &fs.Options{
		EntryTimeout: &long,
		MountOptions: fuse.MountOptions{Name: "procview", FsName: "procview", DisableXAttrs: true,
			Logger: log.New(io.Discard, "", 0)},
		Logger: log.New(io.Discard, "", 0),
	}
	// "/dev/fd/N": go-fuse serves a connection mounted by its caller.
	v.server, err = fuse.NewServer(fs.NewNodeFS(&dirNode{v: v}, opts), fmt.Sprintf("/dev/fd/%d", fd), &opts.MountOptions)
	if err != nil {
		_ = unix.Unmount(dir, unix.MNT_DETACH)
		unix.Close(fd)
		return nil, fmt.Errorf("serving the /proc view: %v", err)
	}
	go func() {
		v.server.Serve()
		close(v.done)
	}()
	go v.load.sample(g, v.done)
	return v, nil
}

// Started tells the view when the container's first process started (in
// ticks since boot, field 22 of /proc/PID/stat): its uptime counts from
// there.
func (v *View) Started(ticks uint64) { v.start.Store(ticks) }

// Detach unmounts the view from the host, lazily (MNT_DETACH): the
// container's binds keep the filesystem, the host keeps nothing of it.
// Not MNT_FORCE: that would abort the connection, binds and all.
func (v *View) Detach(hook trace.Hook) {
	unmount(v.Dir, unix.MNT_DETACH, "MNT_DETACH", "the host lets go of the view: the container's binds keep it", hook)
}

// Wait waits (at most d) for the server to end: its filesystem is gone
// once the container's mounts are.
func (v *View) Wait(d time.Duration) bool {
	select {
	case <-v.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Unmount removes a view still mounted at dir once its container is gone:
// after a runtime killed between its mount and its Detach, or stopped
// there. MNT_FORCE aborts the FUSE connection (no request waits for a
// server that will not answer) and MNT_DETACH waits for nobody; the mount
// table is read, never dir itself: the cleanup cannot hang.
func Unmount(dir string, hook trace.Hook) {
	unmount(dir, unix.MNT_FORCE|unix.MNT_DETACH, "MNT_FORCE | MNT_DETACH", "a view left mounted: abort its connection and detach it", hook)
}

func unmount(dir string, flags int, names, why string, hook trace.Hook) {
	for {
		ms, err := mountinfo.Self()
		if err != nil {
			return
		}
		if m, ok := mountinfo.At(ms, dir); !ok || m.FSType != fsType {
			return
		}
		hook.Call(why, `umount2(%q, %s)`, dir, names)
		if unix.Unmount(dir, flags) != nil {
			return
		}
	}
}

// render computes one file, now.
func (v *View) render(name string) string {
	host := func(f string) string {
		b, _ := os.ReadFile("/proc/" + f)
		return string(b)
	}
	switch name {
	case "meminfo":
		m, ok := readMemory(v.g)
		if !ok {
			return host("meminfo")
		}
		return Meminfo(host("meminfo"), m)
	case "cpuinfo":
		return Cpuinfo(host("cpuinfo"), v.cpus)
	case "stat":
		running, blocked, _ := runnable(v.g)
		return Stat(host("stat"), len(v.cpus), readCPUTimes(v.g), v.uptime(), running, blocked)
	case "uptime":
		return Uptime(v.uptime(), len(v.cpus), readCPUTimes(v.g))
	case "loadavg":
		running, _, total := runnable(v.g)
		return Loadavg(v.load.get(), running, total)
	case "swaps":
		m, ok := readMemory(v.g)
		if !ok {
			return host("swaps")
		}
		return Swaps(m, host("meminfo"))
	case "diskstats":
		return Diskstats(readIO(v.g))
	}
	return ""
}

// uptime is the seconds since the container's first process started.
func (v *View) uptime() float64 {
	b, _ := os.ReadFile("/proc/uptime")
	var host float64
	fmt.Sscan(string(b), &host)
	start := float64(v.start.Load()) / userHZ
	if start == 0 || start > host {
		return 0
	}
	return host - start
}

// loadAvg is the container's load average: every 5 seconds, as the
// kernel does for the host, the number of its threads running or waiting
// (R and D) goes into three decaying averages, over 1, 5 and 15 minutes.
type loadAvg struct {
	mu  sync.Mutex
	avg [3]float64
}

func (l *loadAvg) sample(g *cgroup.Group, done <-chan struct{}) {
	const every = 5 * time.Second
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		running, blocked, _ := runnable(g)
		n := float64(running + blocked)
		l.mu.Lock()
		for i, minutes := range []float64{1, 5, 15} {
			e := math.Exp(-every.Seconds() / (minutes * 60))
			l.avg[i] = l.avg[i]*e + n*(1-e)
		}
		l.mu.Unlock()
	}
}

func (l *loadAvg) get() [3]float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.avg
}

// dirNode is the view's root directory, holding Files.
type dirNode struct {
	fs.Inode
	v *View
}

var _ = (fs.NodeOnAdder)((*dirNode)(nil))

func (d *dirNode) OnAdd(ctx context.Context) {
	for _, name := range Files {
		ch := d.NewPersistentInode(ctx, &fileNode{v: d.v, name: name}, fs.StableAttr{Mode: syscall.S_IFREG})
		d.AddChild(name, ch, false)
	}
}

// fileNode is one file of the view. Like /proc's own files it has size 0
// and is read with direct I/O: every read asks the server, never a cache.
type fileNode struct {
	fs.Inode
	v    *View
	name string
}

var (
	_ = (fs.NodeGetattrer)((*fileNode)(nil))
	_ = (fs.NodeOpener)((*fileNode)(nil))
	_ = (fs.NodeReader)((*fileNode)(nil))
)

// Getattr gives a size, unlike /proc's files (0): sendfile(2), which
// busybox's cat uses, stops at the size, and a FUSE file of size 0 reads
// as empty that way. The text's length now, with room for its numbers to
// grow: read(2) stops at the text's real end anyway.
func (f *fileNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = 0o444
	out.Size = uint64(len(f.v.render(f.name))) + 4096
	out.SetTimeout(0)
	return 0
}

// Open computes the file once per open, as the kernel's /proc does for a
// seq_file: several reads of one open see one consistent text.
func (f *fileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EROFS
	}
	return &snapshot{text: f.v.render(f.name)}, fuse.FOPEN_DIRECT_IO, 0
}

func (f *fileNode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	s, ok := fh.(*snapshot)
	if !ok {
		return nil, syscall.EBADF
	}
	if off >= int64(len(s.text)) {
		return fuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), int64(len(s.text)))
	return fuse.ReadResultData([]byte(s.text[off:end])), 0
}

// snapshot is an open file's text.
type snapshot struct{ text string }
