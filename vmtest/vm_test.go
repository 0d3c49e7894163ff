package vmtest

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/container-internals/workshop/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

//go:embed guestinit/init.sh
var initScript []byte

// TestPureCgroupV2VM runs every package's tests, every stage's default run
// and the missing-cpu-controller quirk on Debian's amd64 kernel booted with
// cgroup v1 off, / shared: the learners' kind of host.
//
// With WORKSHOP_VM_ARM64=1 it does the same under emulated arm64 (Apple
// Silicon learners run arm64 VMs; stage 04's loader and library paths differ
// there). Emulating another architecture is slow (about 6 minutes), so it
// runs only when asked, as a second subtest, never as a skipped test.
func TestPureCgroupV2VM(t *testing.T) {
	if os.Getenv("WORKSHOP_VM_ARM64") != "1" {
		t.Log("arm64 guest not requested: set WORKSHOP_VM_ARM64=1 to run it too (it needs qemu-system-arm and `dpkg --add-architecture arm64`)")
		runGuest(t, Amd64, durationEnv("WORKSHOP_VM_TIMEOUT", 15*time.Minute))
		return
	}
	t.Run("amd64", func(t *testing.T) { runGuest(t, Amd64, durationEnv("WORKSHOP_VM_TIMEOUT", 15*time.Minute)) })
	t.Run("arm64", func(t *testing.T) { runGuest(t, Arm64, durationEnv("WORKSHOP_VM_TIMEOUT_ARM64", 20*time.Minute)) })
}

func durationEnv(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

// hostOnly are the tests the guest leaves out, by package, and why: a
// host-side tool's verdict on a file (nothing the kernel decides), or code
// for cgroup v1, which a pure v2 guest cannot have. The host's own `make
// test` runs them. Keep this list short: everything that can run in the
// guest must.
var hostOnly = map[string][]HostOnlyTest{
	"scripts": {
		{"TestProvisionScriptPassesShellcheck", "lints scripts/provision.sh with shellcheck, a host tool"},
		{"TestVagrantfileParsesAndProvisionsWithTheScript", "parses the Vagrantfile with ruby, a host tool"},
	},
	"06-full-container": {
		{"TestDockerSendsTheWorkshopsDefaultProfile", "starts Debian's dockerd, which the guest does not have"},
		{"TestDockerRunsItsContainersOnTheWorkshopRuntime", "starts Debian's dockerd, which the guest does not have"},
		{"TestDockerRecipeFromTheChapter", "starts Debian's dockerd, which the guest does not have"},
		{"TestDockerUsernsRemapRunsOnTheWorkshopRuntime", "starts Debian's dockerd, which the guest does not have"},
		{"TestDefaultProfileRefusesWhatDockerRefuses", "builds its test program with gcc, a host tool"},
		{"TestExecGetsTheContainersFilter", "builds its test program with gcc, a host tool"},
		{"TestEveryActionAndOperatorDoesWhatItSays", "builds its test program with gcc, a host tool"},
		{"TestPersonalityMaskedEqualAllowsOnlyWhatItNames", "builds its test program with gcc, a host tool"},
		{"TestOtherABIsCannotWalkAroundTheFilter", "builds its test program with gcc, a host tool"},
		{"TestExecChildMemoryIsOutOfTheContainersReach", "builds its attack program with gcc, a host tool"},
		{"TestUsernsExecChildMemoryIsOutOfTheContainersReach", "builds its attack program with gcc, a host tool"},
		{"TestRuntimeBinaryCannotBeRewrittenFromInside", "builds its attack program with gcc, a host tool"},
		{"TestKeyringIsTheContainersOwn", "builds its test programs with gcc, a host tool"},
		{"TestCommitOfASwappingContainerNeverReadsHostFiles", "builds its attack program with gcc, a host tool"},
		{"TestExplainNamesEveryCallStraceSees", "runs the runtime under strace, a host tool"},
		{"TestRootlessExplainNamesEveryCallStraceSees", "runs the runtime under strace, a host tool"},
		{"TestContainerCannotReachTheHostsLocalhost", "builds its forging program with gcc, a host tool"},
		{"TestTIOCSTIFromInsideCannotTypeIntoTheUsersShell", "builds its attack program with gcc, a host tool"},
		{"TestRootlessRunIsRootInsideAndTheUserOutside", "maps the user's ranges with newuidmap/newgidmap (Debian's uidmap, setuid root), which the guest does not have; its single-ID twin runs"},
	},
	"05-overlay-layers": {
		{"TestNarrationNamesEveryCallStraceSees", "runs the stage under strace, a host tool"},
	},
	"06-full-container/devices": {
		{"TestV1DenyAllButDevNull", "cgroup v1's devices controller: the pure v2 guest has none (its v2 twin runs)"},
		{"TestV1DockerDefaultRules", "cgroup v1's devices controller: the pure v2 guest has none (its v2 twin runs)"},
	},
	"cmd/bench": {
		{"TestFilesystemOfTellsAJournalledExt4FromOneWithout", "makes ext4 images with mkfs.ext4, a host tool, and mounts them through loop devices"},
	},
	"cmd/doctor": {
		{"TestDoctorFailsWhenBusyboxIsMissing", "needs a Go toolchain on PATH; the guest has none (its tests use prebuilt binaries)"},
		{"TestDoctorFailsWithTheMultipathdFixWhenCPUControllerIsNotDelegated", "reads a fake cgroup tree, and counts every FAIL row: the guest's missing Go toolchain is a second one"},
	},
}

// hostTools are the dynamic programs the guest gets besides busybox, with
// their libraries: stage 04 copies binaries and their libraries with ldd.
// procps's free and coreutils's nproc: stage 06's --proc-view tests read
// the view with them (busybox's free asks sysinfo(2), not /proc). Not
// procps's top: stage 03 reads busybox's, and procps's printed no line for
// its loop in the guest.
var hostTools = []string{"sh", "bash", "ls", "cat", "ldd", "ps", "nsenter", "unshare", "lsns", "tree", "make", "nft",
	"free", "nproc"}

func runGuest(t *testing.T, arch Arch, timeout time.Duration) {
	start := time.Now()
	qemu, err := exec.LookPath(arch.QEMU)
	if err != nil {
		pkg := "qemu-system-x86"
		if arch.GOARCH == "arm64" {
			pkg = "qemu-system-arm"
		}
		testkit.Unavailable(t, "%s is not installed, so the pure cgroup v2 VM suite did not run: `apt-get install %s`", arch.QEMU, pkg)
	}
	kernel, err := FetchKernel(arch)
	if err != nil {
		testkit.Unavailable(t, "no %s kernel for the VM suite, so it did not run: %v", arch.Deb, err)
	}
	if kernel.TempDir != "" {
		defer os.RemoveAll(kernel.TempDir)
	}
	busybox, err := FetchBusybox(arch)
	if err != nil {
		testkit.Unavailable(t, "no static %s busybox for the VM suite, so it did not run: %v", arch.Deb, err)
	}
	t.Logf("kernel %s %s, %s, busybox %s", kernel.Package, kernel.Version, qemu, busybox)

	root := testkit.ModuleRoot(t)
	work := t.TempDir()
	ramfs, plan, buildErrors := buildGuest(t, arch, root, work, busybox, kernel)
	for _, b := range buildErrors {
		b := b
		t.Run("build/"+b.rel, func(t *testing.T) { t.Errorf("does not build for the guest (%s):\n%v", arch.GOARCH, b.err) })
	}
	initrd := filepath.Join(work, "initrd.gz")
	if err := ramfs.WriteFile(initrd); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(initrd)
	built := time.Since(start)
	t.Logf("built %d test binaries and %d programs, initramfs %d MiB (%d MiB unpacked) in %s",
		len(plan.Packages), len(plan.Stages), fi.Size()>>20, ramfs.Size()>>20, built.Round(time.Second))

	accel, why := ChooseAccel(arch, kernel.Image, busybox)
	var console bytes.Buffer
	logPath := filepath.Join(os.TempDir(), "workshop-vmtest-"+arch.Deb+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	out := io.MultiWriter(&console, logFile)
	if os.Getenv("WORKSHOP_VM_VERBOSE") == "1" {
		out = io.MultiWriter(out, os.Stdout)
	}
	vm := VM{Arch: arch, Kernel: kernel.Image, Initrd: initrd, Memory: 2048, CPUs: 2, Accel: accel, Timeout: timeout, Console: out}
	t.Logf("booting: %s %s (accel %s: %s); console log: %s", arch.QEMU, strings.Join(vm.Args(), " "), accel, why, logPath)
	bootStart := time.Now()
	_, runErr := vm.Run(context.Background())
	guest := time.Since(bootStart)

	rep := Parse(bytes.NewReader(console.Bytes()))
	report(t, rep)
	table := rep.Summary() + "\n" + rep.Table()
	table += fmt.Sprintf("timing: build+pack %s, guest %s (%s, %s), total %s\n",
		built.Round(time.Second), guest.Round(time.Second), arch.Deb, accel, time.Since(start).Round(time.Second))
	tablePath := filepath.Join(os.TempDir(), "workshop-vmtest-"+arch.Deb+".results")
	os.WriteFile(tablePath, []byte(table), 0o644)
	t.Logf("results from the pure cgroup v2 guest (also in %s):\n%s", tablePath, table)
	problems := rep.Problems()
	if runErr != nil {
		problems = append(problems, runErr.Error())
	}
	for _, p := range problems {
		t.Error(p)
	}
	if len(problems) > 0 { // a failed guest test shows its own output above
		t.Logf("the guest's whole console is in %s; its last lines:\n%s", logPath, tail(console.String(), 40))
	}
}

// buildGuest compiles everything for the guest and lays out its files.
func buildGuest(t *testing.T, arch Arch, root, work, busybox string, kernel *Kernel) (a *Initramfs, plan Plan, buildErrors []buildError) {
	pkgs, err := ListPackages(root)
	if err != nil {
		t.Fatal(err)
	}
	sel := Select(root, pkgs)
	a = NewInitramfs()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// A merged /usr, as on the learners' Ubuntu, whose /tmp is a plain
	// directory too (no tmpfs).
	for _, d := range MergedUsr {
		must(a.Dir("usr/"+d, 0o755))
		must(a.Symlink(d, "usr/"+d))
	}
	must(a.File("init", 0o755, initScript))
	must(a.HostFile("usr/bin/busybox", busybox))
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "root", "etc", "var/tmp", "var/lib", "var/cache", "mnt", "srv", "opt", "home"} {
		must(a.Dir(d, 0o755))
	}
	must(a.File("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")))
	must(a.File("etc/group", 0o644, []byte("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")))
	must(a.File("etc/hostname", 0o644, []byte("vmtest\n")))
	must(a.File("etc/hosts", 0o644, []byte("127.0.0.1 localhost\n127.0.1.1 vmtest\n")))
	if arch.GOARCH == runtime.GOARCH {
		tools, err := AddHostTools(a, hostTools)
		must(err)
		t.Logf("host programs in the guest: %s", strings.Join(tools, " "))
	} else {
		tools, err := AddDebianUserland(a, arch)
		if err != nil {
			testkit.Unavailable(t, "Debian's %s programs for the guest: %v", arch.Deb, err)
		}
		t.Logf("Debian %s programs in the guest: %s", arch.Deb, strings.Join(tools, " "))
	}

	guestinit := filepath.Join(work, "guestinit")
	must(GoBuild(root, arch.GOARCH, "build", "-ldflags=-s -w", "-o", guestinit, "./vmtest/guestinit"))
	must(a.HostFile("usr/sbin/guestinit", guestinit))

	plan = Plan{
		Controllers:    []string{"cpu", "memory", "pids", "io"},
		PackageTimeout: "8m",
		StageTimeout:   "2m",
	}
	for _, m := range kernel.Modules {
		must(a.HostFile(filepath.Join(GuestModules, filepath.Base(m)), m))
		plan.Modules = append(plan.Modules, filepath.Base(m))
	}

	// One build per program and per test package: one that does not
	// compile (a stage being written) fails its own subtest, not the run.
	for _, p := range sel.Stages {
		rel, _ := filepath.Rel(root, p.Dir)
		name := filepath.Base(rel)
		out := filepath.Join(work, "prebuilt", name)
		if err := GoBuild(root, arch.GOARCH, "build", "-ldflags=-s -w", "-o", out, "./"+rel); err != nil {
			buildErrors = append(buildErrors, buildError{rel, err})
			continue
		}
		must(a.HostFile(filepath.Join(GuestPrebuilt, name), out))
		if isStageDir(rel) {
			plan.Stages = append(plan.Stages, name)
			if strings.HasPrefix(name, "03-") {
				plan.QuirkStage = name
			}
		}
	}
	sort.Strings(plan.Stages)
	for _, p := range sel.Tests {
		rel, _ := filepath.Rel(root, p.Dir)
		name := TestBinaryName(rel)
		out := filepath.Join(work, "tests", name)
		if err := GoBuild(root, arch.GOARCH, "test", "-c", "-ldflags=-s -w", "-o", out, "./"+rel); err != nil {
			buildErrors = append(buildErrors, buildError{rel, err})
			continue
		}
		must(a.HostFile(filepath.Join(GuestTests, name), out))
		plan.Packages = append(plan.Packages, Package{ImportPath: p.ImportPath, Rel: filepath.ToSlash(rel),
			Binary: filepath.Join(GuestTests, name), HostOnly: hostOnly[filepath.ToSlash(rel)]})
	}
	must(AddRepository(a, root))
	js, err := json.MarshalIndent(plan, "", "  ")
	must(err)
	must(a.File(PlanPath, 0o644, js))
	return a, plan, buildErrors
}

// buildError is a program or test package that did not compile for the guest.
type buildError struct {
	rel string
	err error
}

// report turns the guest's results into subtests of this test: one per
// package, one per guest test inside it. A guest skip is a failure: the
// guest runs in strict mode, where nothing may skip.
func report(t *testing.T, rep *Report) {
	for _, s := range rep.Suites {
		s := s
		t.Run(s.Rel, func(t *testing.T) {
			reportTests(t, s.Tests, "")
			if !s.Complete {
				t.Errorf("the guest died or timed out inside this suite; its last lines:\n%s", strings.Join(lastLines(s.Output, 40), "\n"))
			} else if s.Exit != 0 && !anyFailed(s.Tests) {
				t.Errorf("exit status %d without a failing test:\n%s", s.Exit, strings.Join(lastLines(s.Output, 40), "\n"))
			}
		})
	}
}

// reportTests reports the tests named prefix+X (X without a slash) and,
// inside each, its own subtests.
func reportTests(t *testing.T, tests []Result, prefix string) {
	for _, r := range tests {
		name := strings.TrimPrefix(r.Name, prefix)
		if !strings.HasPrefix(r.Name, prefix) || strings.Contains(name, "/") {
			continue
		}
		r := r
		t.Run(name, func(t *testing.T) {
			reportTests(t, tests, r.Name+"/")
			switch r.Verdict {
			case "FAIL":
				t.Errorf("failed in the guest (%.2fs):\n%s", r.Seconds, strings.Join(lastLines(r.Output, 60), "\n"))
			case "SKIP":
				t.Errorf("skipped in the guest, where everything must run (strict mode):\n%s", strings.Join(lastLines(r.Output, 20), "\n"))
			}
		})
	}
}

func anyFailed(tests []Result) bool {
	for _, r := range tests {
		if r.Verdict == "FAIL" {
			return true
		}
	}
	return false
}

func lastLines(lines []string, n int) []string {
	if len(lines) > n {
		return append([]string{"[... " + strconv.Itoa(len(lines)-n) + " lines before]"}, lines[len(lines)-n:]...)
	}
	return lines
}

func tail(s string, n int) string {
	return strings.Join(lastLines(strings.Split(strings.TrimRight(s, "\n"), "\n"), n), "\n")
}
