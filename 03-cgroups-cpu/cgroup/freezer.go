package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Freezing stops every process of a group where it stands, without a signal
// it could see or catch (`docker pause`): v1 has a controller for it,
// freezer (freezer.state: FROZEN, THAWED, and FREEZING while the kernel
// works); v2 has it in every group, cgroup.freeze (1 or 0), and says in
// cgroup.events when the group is really frozen.

// FreezeTimeout is how long Freeze waits for every process to stop.
const FreezeTimeout = 5 * time.Second

// Freeze stops every process of the group, and waits until they all are.
func (g *Group) Freeze() error { return g.setFrozen(true) }

// Thaw lets them go on.
func (g *Group) Thaw() error { return g.setFrozen(false) }

// Frozen says whether the group is frozen (or being frozen).
func (g *Group) Frozen() (bool, error) {
	if dir := g.paths["freezer"]; dir != "" {
		s, err := readString(filepath.Join(dir, "freezer.state"))
		return s != "THAWED", err
	}
	if g.unified == "" {
		return false, fmt.Errorf("cgroup %s: no freezer (no v1 freezer controller, no v2 directory)", g.name)
	}
	s, err := readString(filepath.Join(g.unified, "cgroup.freeze"))
	return s == "1", err
}

func (g *Group) setFrozen(frozen bool) error {
	deadline := time.Now().Add(FreezeTimeout)
	if dir := g.paths["freezer"]; dir != "" {
		want := map[bool]string{true: "FROZEN", false: "THAWED"}[frozen]
		for {
			if err := g.write(dir, "freezer.state", want); err != nil {
				return err
			}
			s, err := readString(filepath.Join(dir, "freezer.state"))
			if err != nil || s == want {
				return err
			}
			if time.Now().After(deadline) {
				_ = g.write(dir, "freezer.state", "THAWED")
				return fmt.Errorf("cgroup %s: still %s after %v", g.name, s, FreezeTimeout)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if g.unified == "" {
		return fmt.Errorf("cgroup %s: no freezer (no v1 freezer controller, no v2 directory)", g.name)
	}
	want := map[bool]string{true: "1", false: "0"}[frozen]
	if err := g.write(g.unified, "cgroup.freeze", want); err != nil {
		return err
	}
	for {
		b, err := os.ReadFile(filepath.Join(g.unified, "cgroup.events"))
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "frozen "+want) {
			return nil
		}
		if time.Now().After(deadline) {
			_ = g.write(g.unified, "cgroup.freeze", "0")
			return fmt.Errorf("cgroup %s: not frozen after %v", g.name, FreezeTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}
