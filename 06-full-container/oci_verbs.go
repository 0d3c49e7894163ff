package main

// The OCI verbs a caller uses on a container that runs, beyond the five of
// the spec: pause and resume (the freezer, `docker pause`), update (new
// limits, `docker update`), events (its counters, `docker stats` through
// containerd), features (what this runtime can do). Their names, flags and
// output are runc's, which containerd's shim calls.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/urfave/cli/v2"

	"github.com/container-internals/workshop/03-cgroups-cpu/cgroup"
	"github.com/container-internals/workshop/06-full-container/seccomp"
	"github.com/container-internals/workshop/internal/stage"
)

// Paused is the OCI status of a frozen container (runc's word for it).
const Paused = "paused"

func ociVerbCommands() []*cli.Command {
	return []*cli.Command{
		{Name: "pause", Usage: "OCI: freeze every process of a container (the cgroup freezer)", ArgsUsage: "ID", Action: pauseCmd},
		{Name: "resume", Usage: "OCI: thaw a paused container", ArgsUsage: "ID", Action: resumeCmd},
		{Name: "update", Usage: "OCI: change a running container's limits", ArgsUsage: "ID",
			Flags:  []cli.Flag{&cli.StringFlag{Name: "resources", Aliases: []string{"r"}, Usage: "`FILE` (- for stdin): linux.resources as JSON"}},
			Action: updateCmd},
		{Name: "events", Usage: "OCI: a container's counters as JSON, every --interval (--stats: once)", ArgsUsage: "ID",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "stats", Usage: "print them once, and exit"},
				&cli.DurationFlag{Name: "interval", Value: 5 * time.Second, Usage: "how often"}},
			Action: eventsCmd},
		{Name: "features", Usage: "OCI: what this runtime supports, as JSON", Action: featuresCmd},
	}
}

// runningGroup opens the cgroup of a container that has processes.
func runningGroup(c *cli.Context) (*Runtime, *State, *cgroup.Group, error) {
	rt, st, err := ociContainer(c)
	if err != nil {
		return nil, nil, nil, err
	}
	if s := ociStatus(st); s != Created && s != Running && s != Paused {
		return nil, nil, nil, stage.Fail("container %s is %s: it has no processes", st.ID, s)
	}
	g, err := rt.openGroup(st.Cgroup)
	if err != nil {
		return nil, nil, nil, stage.Fail("container %s: its cgroup: %v", st.ID, err)
	}
	return rt, st, g, nil
}

func pauseCmd(c *cli.Context) error {
	_, st, g, err := runningGroup(c)
	if err != nil {
		return err
	}
	if err := g.Freeze(); err != nil {
		return stage.Fail("pause %s: %v", st.ID, err)
	}
	return nil
}

func resumeCmd(c *cli.Context) error {
	_, st, g, err := runningGroup(c)
	if err != nil {
		return err
	}
	if frozen, _ := g.Frozen(); !frozen {
		return stage.Fail("container %s is not paused", st.ID)
	}
	if err := g.Thaw(); err != nil {
		return stage.Fail("resume %s: %v", st.ID, err)
	}
	return nil
}

// updateCmd writes new limits, read as linux.resources: what containerd's
// shim sends for `docker update`.
func updateCmd(c *cli.Context) error {
	file := c.String("resources")
	if file == "" {
		return stage.Fail("usage: update --resources FILE|- ID (linux.resources as JSON)")
	}
	in := io.Reader(os.Stdin)
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return stage.Fail("--resources: %v", err)
		}
		defer f.Close()
		in = f
	}
	var r specs.LinuxResources
	if err := json.NewDecoder(in).Decode(&r); err != nil {
		return stage.Fail("--resources: %v", err)
	}
	_, st, g, err := runningGroup(c)
	if err != nil {
		return err
	}
	if len(r.Devices) > 0 {
		return stage.Fail("update: devices cannot change once the container runs")
	}
	o, err := ociResources(&specs.Linux{Resources: &r})
	if err != nil {
		return stage.Fail("update: %v", err)
	}
	if o.memory2 != nil {
		if err := g.SetMemoryLimits(*o.memory2); err != nil {
			return stage.Fail("update %s: memory: %v", st.ID, err)
		}
	}
	if err := updateCPU(g, r.CPU); err != nil {
		return stage.Fail("update %s: cpu: %v", st.ID, err)
	}
	if r.Pids != nil {
		limit := r.Pids.Limit
		if limit <= 0 {
			limit = -1
		}
		if err := g.SetPids(limit); err != nil {
			return stage.Fail("update %s: pids: %v", st.ID, err)
		}
	}
	return nil
}

// updateCPU changes what the caller gives: Docker sends 0 for a quota or
// period it leaves as it is, -1 for no quota.
func updateCPU(g *cgroup.Group, c *specs.LinuxCPU) error {
	if c == nil || ((c.Quota == nil || *c.Quota == 0) && (c.Period == nil || *c.Period == 0)) {
		return nil
	}
	quota, period, err := g.CPU()
	if err != nil {
		return err
	}
	if c.Quota != nil && *c.Quota != 0 {
		quota = *c.Quota
	}
	if c.Period != nil && *c.Period != 0 {
		period = *c.Period
	}
	if quota > 0 {
		if err := cgroup.ValidateCPU(quota, period); err != nil {
			return err
		}
	}
	return g.SetCPU(quota, period)
}

// statsEvent is runc's `events` JSON, as containerd reads it.
type statsEvent struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data *stats `json:"data,omitempty"`
}

type stats struct {
	CPU struct {
		Usage struct {
			Total uint64 `json:"total"`
		} `json:"usage"`
		Throttling struct {
			Periods          uint64 `json:"periods,omitempty"`
			ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
			ThrottledTime    uint64 `json:"throttledTime,omitempty"`
		} `json:"throttling"`
	} `json:"cpu"`
	Memory struct {
		Usage struct {
			Limit uint64 `json:"limit"`
			Usage uint64 `json:"usage"`
			Max   uint64 `json:"max,omitempty"`
		} `json:"usage"`
	} `json:"memory"`
	Pids struct {
		Current uint64 `json:"current"`
		Limit   uint64 `json:"limit,omitempty"`
	} `json:"pids"`
}

func eventsCmd(c *cli.Context) error {
	_, st, g, err := runningGroup(c)
	if err != nil {
		return err
	}
	for {
		ev := statsEvent{Type: "stats", ID: st.ID, Data: readStats(g)}
		b, _ := json.Marshal(ev)
		fmt.Println(string(b))
		if c.Bool("stats") {
			return nil
		}
		time.Sleep(c.Duration("interval"))
		if !alive(st.Pid, st.PidStart) {
			return nil
		}
	}
}

func readStats(g *cgroup.Group) *stats {
	var s stats
	if cs, err := g.CPUStat(); err == nil {
		s.CPU.Usage.Total = uint64(cs.Usage.Nanoseconds())
		s.CPU.Throttling.Periods, s.CPU.Throttling.ThrottledPeriods = cs.Periods, cs.Throttled
		s.CPU.Throttling.ThrottledTime = uint64(cs.ThrottledTime.Nanoseconds())
	}
	if m, err := g.Memory(); err == nil {
		s.Memory.Usage.Usage, s.Memory.Usage.Max = m.Usage, m.Peak
		if m.Limit > 0 {
			s.Memory.Usage.Limit = uint64(m.Limit)
		}
	}
	if p, err := g.Pids(); err == nil {
		s.Pids.Current = p.Current
		if p.Max > 0 {
			s.Pids.Limit = uint64(p.Max)
		}
	}
	return &s
}

// featuresCmd prints what `runc features` prints, for this runtime.
func featuresCmd(c *cli.Context) error {
	yes := true
	f := features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  mountOptionNames(),
		Linux: &features.Linux{
			Namespaces:   []string{"pid", "mount", "uts", "ipc", "network", "cgroup"},
			Capabilities: capabilityNames(),
			Cgroup:       &features.Cgroup{V1: &yes, V2: &yes},
			Seccomp: &features.Seccomp{Enabled: &yes,
				Actions: []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD",
					"SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_LOG"},
				Operators: []string{"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
					"SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"},
				Archs: archNames(seccomp.Runnable())},
		},
	}
	b, _ := json.MarshalIndent(f, "", "    ")
	fmt.Println(string(b))
	return nil
}

func archNames(archs []specs.Arch) []string {
	var out []string
	for _, a := range archs {
		out = append(out, string(a))
	}
	return out
}

func mountOptionNames() []string {
	var out []string
	for _, o := range mountOptionTable {
		out = append(out, o.name)
	}
	for name := range propagationTable {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func capabilityNames() []string {
	var out []string
	for name := range capNames {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
