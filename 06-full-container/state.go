package main

// What the runtime remembers about each container, between commands: one
// directory per container under the state root (/run/workshop by default,
// a tmpfs that a reboot empties, as runc's /run/runc), holding state.json
// and the config the container's init reads. A detached container's log
// is on disk instead, with its layers (/var/lib/workshop/containers/ID, as
// Docker's /var/lib/docker/containers/ID): a container that prints without
// end must not fill the small tmpfs every container's state needs.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/container-internals/workshop/internal/stage"
	"golang.org/x/sys/unix"
)

// Status values, named as the OCI runtime spec names them.
const (
	Creating = "creating"
	Created  = "created"
	Running  = "running"
	Stopped  = "stopped"
)

// State is one container's record.
type State struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Image    string    `json:"image"`               // as given on the command line
	ImageID  string    `json:"imageId,omitempty"`   // "" for --rootfs
	RootDir  string    `json:"rootfsDir,omitempty"` // --rootfs DIR
	Command  []string  `json:"command"`
	Hostname string    `json:"hostname"`
	Created  time.Time `json:"created"`
	Status   string    `json:"status"`
	Finished time.Time `json:"finished,omitempty"`
	ExitCode int       `json:"exitCode"`
	Detached bool      `json:"detached"`
	Bundle   string    `json:"bundle,omitempty"`
	// LogMaxSize caps a detached container's log (see cappedLog).
	LogMaxSize int64 `json:"logMaxSize,omitempty"`
	// Removing: rm or delete has begun to remove it; if that command is
	// killed, the next one finishes the removal (see reap).
	Removing bool `json:"removing,omitempty"`

	// Pid is the container's PID 1 as the host sees it; PidStart its start
	// time, so that a recycled PID is never mistaken for the container.
	Pid      int    `json:"pid"`
	PidStart uint64 `json:"pidStart"`
	// Monitor is the runtime process that waits for the container (the
	// `run` command itself, or a detached run's background monitor).
	Monitor      int    `json:"monitor"`
	MonitorStart uint64 `json:"monitorStart"`

	Cgroup      string            `json:"cgroup"`
	PidsLimit   int64             `json:"pidsLimit,omitempty"` // written once the setup is done`
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`

	Annotations map[string]string `json:"annotations,omitempty"`

	Network *NetState `json:"network,omitempty"` // --net bridge (network.go)
}

// Dirs says where the runtime keeps things.
type Dirs struct {
	Images string // the image and layer store (and containers' layers)
	State  string // one directory per container
	Data   string // one directory per detached container, on disk: its log
}

func defaultDirs(root string) Dirs {
	d := Dirs{Images: "/var/lib/workshop", State: "/run/workshop"}
	if rootless.On && rootless.Images != "" {
		d = Dirs{Images: rootless.Images, State: rootless.State} // an ordinary user's (rootless.go)
	}
	if root != "" {
		d = Dirs{Images: filepath.Join(root, "images"), State: filepath.Join(root, "containers")}
	}
	d.Data = filepath.Join(d.Images, "containers")
	return d
}

func (d Dirs) containerDir(id string) string { return filepath.Join(d.State, id) }
func (d Dirs) statePath(id string) string    { return filepath.Join(d.State, id, "state.json") }
func (d Dirs) configPath(id string) string   { return filepath.Join(d.State, id, "config.json") }
func (d Dirs) dataDir(id string) string      { return filepath.Join(d.Data, id) }
func (d Dirs) logPath(id string) string      { return filepath.Join(d.Data, id, "container.log") }

// lock serialises what must not race between runtimes started at once:
// choosing a unique name, building the default image, creating and
// removing the shared parent cgroup.
func (d Dirs) lock() (func(), error) {
	if err := os.MkdirAll(d.State, 0o711); err != nil {
		return nil, err
	}
	return stage.LockFile(filepath.Join(d.State, ".lock"))
}

func (d Dirs) save(s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	// A new file beside it, synced, then renamed over it: a reader, a crash
	// or a full disk finds the old state or the new one, never half of
	// one. Its own name: the monitor and `rm` may save at once.
	f, err := os.CreateTemp(d.containerDir(s.ID), "state.json.tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), d.statePath(s.ID))
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func (d Dirs) load(id string) (*State, error) {
	b, err := os.ReadFile(d.statePath(id))
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %v", d.statePath(id), err)
	}
	return &s, nil
}

// all lists every container, oldest first.
func (d Dirs) all() ([]*State, error) {
	ents, err := os.ReadDir(d.State)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*State
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if s, err := d.load(e.Name()); err == nil {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// find looks a container up by name, full ID or a unique ID prefix.
func (d Dirs) find(ref string) (*State, error) {
	all, err := d.all()
	if err != nil {
		return nil, err
	}
	var match []*State
	for _, s := range all {
		if s.Name == ref || s.ID == ref {
			return s, nil
		}
		if len(ref) >= 4 && strings.HasPrefix(s.ID, ref) {
			match = append(match, s)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return nil, fmt.Errorf("no such container: %s (see `ps -a`)", ref)
	}
	return nil, fmt.Errorf("%s matches %d containers: give more of the ID, or the name", ref, len(match))
}

// claim checks that a new container's ID, name and cgroup are its own. A
// name or ID that another container answers to (its ID, the short ID that
// ps shows, its name) would let `rm NAME`, an OCI verb or a failed
// create's cleanup act on that other container; so would a cgroup shared
// with it, or nested in or around its own: the cleanup kills what is in the
// cgroup and removes it.
func claim(others []*State, id, name, cgroup string) error {
	for _, s := range others {
		refs := []string{s.ID, short(s.ID), s.Name}
		switch {
		case slices.Contains(refs, id):
			return fmt.Errorf("the ID %s is in use by container %s (as its ID, short ID or name)", id, s.Name)
		case slices.Contains(refs, name):
			return fmt.Errorf("the name %q is in use by container %s (as its ID, short ID or name)", name, short(s.ID))
		case s.Cgroup != "" && (s.Cgroup == cgroup || strings.HasPrefix(cgroup, s.Cgroup+"/") || strings.HasPrefix(s.Cgroup, cgroup+"/")):
			return fmt.Errorf("the cgroup %s overlaps %s, the cgroup of container %s", cgroup, s.Cgroup, s.Name)
		}
	}
	return nil
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startTime reads a process's start time (field 22 of /proc/PID/stat, in
// clock ticks since boot): with the PID, it names one process for good.
func startTime(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

// alive reports whether the process pid, started at start, still runs (a
// zombie has finished running and counts as gone).
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st := startTime(pid)
	if st == 0 || st != start {
		return false
	}
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return false
}

// signal sends sig to the container's PID 1, if it is still that process.
// Every signal the runtime sends a container goes through here: a record
// without a PID (0, as a create killed before it saved one leaves) must
// never reach kill(2), where 0 means the caller's whole process group and
// -1 every process it may signal.
func (s *State) signal(sig syscall.Signal) error {
	if !alive(s.Pid, s.PidStart) {
		return fmt.Errorf("container %s is not running", s.Name)
	}
	return unix.Kill(s.Pid, sig)
}
