package vmtest

import (
	"path/filepath"
	"strings"
	"testing"
)

// Every package with tests goes into the guest, internal ones included, the
// harness's own never; every stage and cmd/ program is built.
func TestSelectPicksTestPackagesAndProgramsButNotTheHarness(t *testing.T) {
	root := "/repo"
	pkg := func(rel, name string, tests bool) GoPackage {
		p := GoPackage{ImportPath: "m/" + rel, Dir: filepath.Join(root, rel), Name: name}
		if tests {
			p.TestGoFiles = []string{"x_test.go"}
		}
		return p
	}
	sel := Select(root, []GoPackage{
		pkg("01-pid-namespace", "main", true),
		pkg("03-cgroups-cpu/cgroup", "cgroup", true),
		pkg("07-next-stage", "main", false),
		pkg("cmd/tour", "main", false),
		pkg("docs", "docs", true),
		pkg("internal/narrate", "narrate", true),
		pkg("internal/preflight", "preflight", false),
		pkg("scripts/helper", "main", true),
		pkg("vmtest", "vmtest", true),
		pkg("vmtest/guestinit", "main", true),
	})
	var tests, progs []string
	for _, p := range sel.Tests {
		tests = append(tests, strings.TrimPrefix(p.ImportPath, "m/"))
	}
	for _, p := range sel.Stages {
		progs = append(progs, strings.TrimPrefix(p.ImportPath, "m/"))
	}
	if got, want := strings.Join(tests, " "), "01-pid-namespace 03-cgroups-cpu/cgroup docs internal/narrate scripts/helper"; got != want {
		t.Errorf("test packages %q, want %q", got, want)
	}
	if got, want := strings.Join(progs, " "), "01-pid-namespace 07-next-stage cmd/tour"; got != want {
		t.Errorf("programs %q, want %q", got, want)
	}
}

func TestTestBinaryNamesNeverCollide(t *testing.T) {
	a, b := TestBinaryName("03-cgroups-cpu/cgroup"), TestBinaryName("06-full-container/cgroup")
	if a == b || a != "03-cgroups-cpu.cgroup.test" {
		t.Errorf("%q and %q", a, b)
	}
}

func TestMergedUsrTwins(t *testing.T) {
	for in, want := range map[string]string{
		"/bin/sh":                     "/usr/bin/sh",
		"/lib64/ld-linux-x86-64.so.2": "/usr/lib64/ld-linux-x86-64.so.2",
		"/usr/lib/x/libc.so.6":        "/usr/lib/x/libc.so.6",
		"/etc/passwd":                 "/etc/passwd",
	} {
		if got := canonicalUsr(in); got != want {
			t.Errorf("canonicalUsr(%q) = %q, want %q", in, got, want)
		}
	}
	if got := twin("/usr/bin/ls"); got != "/bin/ls" {
		t.Errorf("twin(/usr/bin/ls) = %q", got)
	}
}
