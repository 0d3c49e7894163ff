package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// pause, resume, update, events and features, on a running container, as
// containerd's shim calls them.
func TestOCIPauseUpdateEventsFeatures(t *testing.T) {
	setup(t)
	dir := bundle(t, func(c *specs.Spec) {
		// A counter the test can watch: it stops while the container is frozen.
		c.Process.Args = []string{"sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /dev/shm/n; done"}
		limit := int64(64 << 20)
		c.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	})
	if _, r := create(t, dir, "verbs"); r.Code != 0 {
		t.Fatalf("create:\n%s", r)
	}
	defer ctr(t, opts{}, "delete", "--force", "verbs")
	if r := ctr(t, opts{}, "start", "verbs"); r.Code != 0 {
		t.Fatalf("start:\n%s", r)
	}
	pid := ociState(t, "verbs").Pid
	counter := func() string {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/root/dev/shm/n", pid))
		return strings.TrimSpace(string(b))
	}
	eventually(t, "the counter", func() bool { return counter() != "" })

	if r := ctr(t, opts{}, "pause", "verbs"); r.Code != 0 {
		t.Fatalf("pause:\n%s", r)
	}
	if s := ociState(t, "verbs").Status; s != "paused" {
		t.Errorf("after pause, state says %s", s)
	}
	a := counter()
	time.Sleep(300 * time.Millisecond)
	if b := counter(); a != b {
		t.Errorf("the counter went on while paused: %s then %s", a, b)
	}
	oneLine(t, ctr(t, opts{}, "start", "verbs"), "start needs a created container")
	if r := ctr(t, opts{}, "resume", "verbs"); r.Code != 0 {
		t.Fatalf("resume:\n%s", r)
	}
	eventually(t, "the counter going on after resume", func() bool { return counter() != a })
	if s := ociState(t, "verbs").Status; s != "running" {
		t.Errorf("after resume, state says %s", s)
	}
	oneLine(t, ctr(t, opts{}, "resume", "verbs"), "is not paused")

	res := filepath.Join(t.TempDir(), "resources.json")
	os.WriteFile(res, []byte(`{"memory": {"limit": 33554432, "swap": 33554432}, "pids": {"limit": 50}}`), 0o644)
	if r := ctr(t, opts{}, "update", "--resources", res, "verbs"); r.Code != 0 {
		t.Fatalf("update:\n%s", r)
	}
	r := ctr(t, opts{}, "events", "--stats", "verbs")
	var ev statsEvent
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &ev) != nil || ev.Type != "stats" || ev.ID != "verbs" || ev.Data == nil {
		t.Fatalf("events --stats: want one stats event as JSON:\n%s", r)
	}
	if ev.Data.Memory.Usage.Limit != 32<<20 || ev.Data.Pids.Limit != 50 || ev.Data.Pids.Current < 1 || ev.Data.CPU.Usage.Total == 0 {
		t.Errorf("events after update: memory limit %d (want 32 MiB), pids %d/%d (want 50 and some), cpu %d ns",
			ev.Data.Memory.Usage.Limit, ev.Data.Pids.Current, ev.Data.Pids.Limit, ev.Data.CPU.Usage.Total)
	}
	os.WriteFile(res, []byte(`{"devices": [{"allow": true, "access": "rwm"}]}`), 0o644)
	oneLine(t, ctr(t, opts{}, "update", "--resources", res, "verbs"), "devices cannot change")

	// A paused container still dies of kill KILL (it is thawed for it).
	ctr(t, opts{}, "pause", "verbs")
	if r := ctr(t, opts{}, "kill", "verbs", "KILL"); r.Code != 0 {
		t.Fatalf("kill of a paused container:\n%s", r)
	}
	waitStopped(t, "verbs")

	r = ctr(t, opts{}, "features")
	var f features.Features
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &f) != nil || len(f.Hooks) != 6 || f.Linux == nil || f.Linux.Seccomp == nil ||
		!strings.Contains(strings.Join(f.MountOptions, " "), "nosuid") {
		t.Errorf("features: want runc's JSON, with the six hooks, seccomp and the mount options:\n%s", r)
	}
}

// process is optional at create and required at start (the runtime spec):
// the container is set up and waits; start refuses in one line; delete
// removes it.
func TestOCICreateWithoutProcessCannotStart(t *testing.T) {
	setup(t)
	dir := bundle(t, func(c *specs.Spec) { c.Process = nil })
	if _, r := create(t, dir, "noprocess"); r.Code != 0 {
		t.Fatalf("create without process:\n%s", r)
	}
	defer ctr(t, opts{}, "delete", "--force", "noprocess") // also when a check below fails
	st := ociState(t, "noprocess")
	if st.Status != specs.StateCreated || st.Pid <= 1 {
		t.Fatalf("after create: %+v", st)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/ns/pid", st.Pid)); err != nil {
		t.Fatalf("the container's first process is not there: %v", err)
	}
	oneLine(t, ctr(t, opts{}, "start", "noprocess"), "created without a process")
	if s := ociState(t, "noprocess").Status; s != specs.StateCreated {
		t.Errorf("a refused start changed the state to %s", s)
	}
	if r := ctr(t, opts{}, "delete", "--force", "noprocess"); r.Code != 0 {
		t.Fatalf("delete:\n%s", r)
	}
	noContainersLeft(t)
}
