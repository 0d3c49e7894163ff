package vmtest

// What the host and the guest agree on: where the plan lies inside the guest,
// and the markers the guest prints on the serial console around each suite.

// PlanPath is where the host puts the plan in the initramfs.
const PlanPath = "/etc/vmtest/plan.json"

// Guest directories, fixed so that the plan stays short.
const (
	GuestWork     = "/work"           // a copy of the repository: each test runs in its package's directory here
	GuestTests    = "/vmtest/tests"   // the compiled test binaries
	GuestPrebuilt = "/prebuilt"       // the stage binaries, for testkit.Stage (WORKSHOP_PREBUILT)
	GuestModules  = "/vmtest/modules" // kernel modules, loaded in the listed order
)

// Plan tells the guest what to run.
type Plan struct {
	Packages []Package // test binaries, run one at a time in this order
	Stages   []string  // stage binaries in GuestPrebuilt, given a default run each (the tour)
	Modules  []string  // file names in GuestModules, insmod-ed in this order
	// Controllers are enabled in the root's cgroup.subtree_control before
	// the suites run, as systemd does on the learners' VMs.
	Controllers []string
	// QuirkStage is the stage run again with cpu removed from the root's
	// cgroup.subtree_control (the Ubuntu VM quirk); empty skips the phase.
	QuirkStage     string
	PackageTimeout string // a time.Duration, for -test.timeout
	StageTimeout   string // a time.Duration, for one default run
}

// Package is one test binary.
type Package struct {
	ImportPath string // github.com/container-internals/workshop/03-cgroups-cpu/cgroup
	Rel        string // 03-cgroups-cpu/cgroup: the directory below the module root
	Binary     string // its path inside the guest
	// HostOnly names tests left out of the guest run (go test -skip),
	// each with the reason; the host's own run covers them.
	HostOnly []HostOnlyTest `json:",omitempty"`
}

// HostOnlyTest is a test that checks something only the host has.
type HostOnlyTest struct{ Test, Why string }

// Markers, each at the start of its own line on the guest's console.
const (
	// MarkPackage starts a suite: "@@vmtest package REL".
	MarkPackage = "@@vmtest package "
	// MarkEnd ends one: "@@vmtest end REL exit=N seconds=S".
	MarkEnd = "@@vmtest end "
	// MarkNote carries a fact for the results table: "@@vmtest note KEY: TEXT".
	MarkNote = "@@vmtest note "
	// MarkDone is the guest's last word before it powers off.
	MarkDone = "@@vmtest done"
)

// Pseudo packages: what the guest checks itself, reported like tests.
const (
	TourPackage  = "vmtest/tour"  // each stage's default run, judged as `make tour` does
	QuirkPackage = "vmtest/quirk" // stage 03 with cpu missing from the root's subtree_control
	BootPackage  = "vmtest/boot"  // the guest's own setup: mounts, modules, controllers
	LeaksPackage = "vmtest/leaks" // mounts and cgroups after everything, against after boot
)
