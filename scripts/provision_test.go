// Package scripts holds no Go code, only the tests of the provisioning script
// and of the Vagrantfile that calls it: what can be proven without a VM and
// without a network.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/container-internals/workshop/internal/testkit"
)

const script = "provision.sh"

// tool finds a checker on PATH; without it the test cannot prove anything,
// so it is unavailable (a failure in strict mode, as in CI).
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testkit.Unavailable(t, "%s not found: `sudo apt-get install -y %s`", name, pkg)
	}
	return p
}

func TestProvisionScriptPassesShellcheck(t *testing.T) {
	sc := tool(t, "shellcheck", "shellcheck")
	out, err := exec.Command(sc, "--shell=bash", script).CombinedOutput()
	if err != nil {
		t.Fatalf("shellcheck %s: %v\n%s", script, err, out)
	}
}

func TestProvisionSelfTestPasses(t *testing.T) {
	out, err := exec.Command("bash", script, "--self-test").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --self-test: %v\n%s", script, err, out)
	}
	if !regexp.MustCompile(`self-test: \d+ checks passed, 0 failed`).Match(out) {
		t.Fatalf("no verdict line in the self-test's output:\n%s", out)
	}
}

// source runs a snippet of bash with the script's functions defined (the
// script does nothing else when sourced) and returns its output and status.
func source(t *testing.T, snippet string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "-c", "set -euo pipefail; source ./"+script+"; "+snippet)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestSourcingTheScriptChangesNothing(t *testing.T) {
	out, err := source(t, "echo sourced")
	if err != nil || out != "sourced" {
		t.Fatalf("sourcing must only define functions; got %q (%v)", out, err)
	}
}

func TestGoDownloadNameForEachArchitecture(t *testing.T) {
	version, err := source(t, `echo "$GO_VERSION"`)
	if err != nil {
		t.Fatal(err)
	}
	for machine, want := range map[string]string{
		"x86_64":  "go" + version + ".linux-amd64.tar.gz", // uname -m on Intel/AMD
		"amd64":   "go" + version + ".linux-amd64.tar.gz", // dpkg --print-architecture
		"aarch64": "go" + version + ".linux-arm64.tar.gz", // uname -m on Apple Silicon guests
		"arm64":   "go" + version + ".linux-arm64.tar.gz",
	} {
		got, err := source(t, `go_tarball "$GO_VERSION" "$(go_arch `+machine+`)"`)
		if err != nil || got != want {
			t.Errorf("%s: got %q (%v), want %q", machine, got, err, want)
		}
	}
	for _, machine := range []string{"armv7l", "i686", "riscv64", ""} {
		if out, err := source(t, `go_arch "`+machine+`"`); err == nil {
			t.Errorf("go_arch %q = %q, want a failure: there is no pinned Go for it", machine, out)
		}
	}
}

func TestChecksumIsVerifiedBeforeAnythingIsReplaced(t *testing.T) {
	dir := t.TempDir()
	bogus := filepath.Join(dir, "go.tar.gz")
	if err := os.WriteFile(bogus, []byte("not go"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "prefix", "go", "bin")
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := source(t, `install_go_tarball `+bogus+` "$GO_SHA256_AMD64" `+dir+`/prefix `+dir+`/bin`)
	if err == nil {
		t.Fatalf("a tarball with the wrong checksum was accepted:\n%s", out)
	}
	if !strings.Contains(out, "checksum mismatch") {
		t.Errorf("the failure must say why; got %q", out)
	}
	if _, err := os.Stat(old); err != nil {
		t.Errorf("the existing Go was removed before the checksum was verified: %v", err)
	}
}

func TestSecondRunChangesNothing(t *testing.T) {
	dir := t.TempDir()
	unit := filepath.Join(dir, "unit.service")
	first, err1 := source(t, `write_if_changed `+unit+` "$CPU_UNIT" && echo wrote`)
	second, _ := source(t, `write_if_changed `+unit+` "$CPU_UNIT" && echo wrote || echo unchanged`)
	if err1 != nil || first != "wrote" || second != "unchanged" {
		t.Fatalf("write_if_changed: first run %q (%v), second run %q; want wrote, unchanged", first, err1, second)
	}
	b, _ := os.ReadFile(unit)
	if !strings.Contains(string(b), "+cpu > /sys/fs/cgroup/cgroup.subtree_control") {
		t.Errorf("the boot unit must enable +cpu at the root cgroup:\n%s", b)
	}
}

func TestCPUControllerEnabledOnlyWhenMissing(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The Ubuntu VM before provisioning: cpu exists but is not handed to
	// child cgroups.
	write("cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc")
	write("cgroup.subtree_control", "memory pids")
	if out, err := source(t, `enable_controller `+dir+` cpu`); err != nil {
		t.Fatalf("enable_controller: %v %s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control")); string(b) != "+cpu\n" {
		t.Errorf("subtree_control got %q, want the write %q", b, "+cpu\n")
	}
	write("cgroup.subtree_control", "cpu memory pids")
	if _, err := source(t, `enable_controller `+dir+` cpu`); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control")); string(b) != "cpu memory pids\n" {
		t.Errorf("an enabled controller must be left alone; file became %q", b)
	}
}

func TestVagrantfileParsesAndProvisionsWithTheScript(t *testing.T) {
	ruby := tool(t, "ruby", "ruby")
	vf := filepath.Join("..", "Vagrantfile")
	if out, err := exec.Command(ruby, "-c", vf).CombinedOutput(); err != nil {
		t.Fatalf("ruby -c Vagrantfile: %v\n%s", err, out)
	}
	// Evaluate it with a stand-in for Vagrant that records every setting.
	// Without the WORKSHOP_* overrides, to see the defaults a learner gets.
	cmd := exec.Command(ruby, filepath.Join("testdata", "vagrant_stub.rb"), vf)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WORKSHOP_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("evaluating the Vagrantfile: %v\n%s", err, out)
	}
	settings := string(out)
	for _, want := range []string{
		`require_version = ">= 2.4.0"`, // box_architecture appeared in 2.4.0
		`config.vm.box = "bento/ubuntu-24.04"`,
		`config.vm.box_architecture = :auto`,
		`config.vm.provider(virtualbox).cpus = 2`,
		`config.vm.provider(virtualbox).memory = 2048`,
		`config.vm.provider(vmware_desktop).vmx[numvcpus] = "2"`,
		`config.vm.provider(vmware_desktop).vmx[memsize] = "2048"`,
		`config.vm.provider(parallels).cpus = 2`,
		`config.vm.provider(parallels).memory = 2048`,
		`config.vm.provider(libvirt).cpus = 2`,
		`config.vm.provider(libvirt).memory = 2048`,
		`config.vm.synced_folder(.,/home/vagrant/workshop)`,
		`config.vm.provision(shell) {:path=>"scripts/provision.sh", :args=>["--repo", "/home/vagrant/workshop", "--user", "vagrant"]}`,
	} {
		if !strings.Contains(settings, want+"\n") && !strings.Contains(settings, want+" ") {
			t.Errorf("the Vagrantfile does not set %s; it sets:\n%s", want, settings)
		}
	}
	if !regexp.MustCompile(`(?m)^config\.vm\.box_version = "\d{6}\.\d+\.\d+"$`).MatchString(settings) {
		t.Errorf("the box version must be pinned (YYYYMM.DD.N):\n%s", settings)
	}
	if _, err := os.Stat(script); err != nil {
		t.Errorf("the Vagrantfile provisions with scripts/%s: %v", script, err)
	}
}
