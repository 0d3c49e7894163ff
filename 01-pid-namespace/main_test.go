package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/container-internals/workshop/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func stage01(t *testing.T, args ...string) testkit.Result {
	t.Helper()
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	return testkit.Run(t, testkit.RunOpts{}, testkit.Stage(t, "01-pid-namespace"), args...)
}

func TestCommandIsPIDOneInside(t *testing.T) {
	r := stage01(t, "-q", "--", "sh", "-c", "echo $$")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "1" {
		t.Fatalf("want `echo $$` to print 1 and exit 0:\n%s", r)
	}
}

func TestPsShowsOnlyTheShellAndItself(t *testing.T) {
	r := stage01(t)
	if r.Code != 0 {
		t.Fatalf("default run failed:\n%s", r)
	}
	// ps's own output: a header and exactly two processes, sh as PID 1.
	i := strings.Index(r.Stdout, "PID USER")
	if i < 0 {
		t.Fatalf("no ps output:\n%s", r)
	}
	rows := strings.Split(strings.TrimSpace(r.Stdout[i:]), "\n")[1:]
	if len(rows) != 2 {
		t.Fatalf("ps inside should list exactly 2 processes, got %d:\n%s", len(rows), r.Stdout[i:])
	}
	first, second := strings.Fields(rows[0]), strings.Fields(rows[1])
	if first[0] != "1" || first[2] != "sh" || second[2] != "ps" {
		t.Fatalf("want `1 root sh` then ps, got:\n%s", r.Stdout[i:])
	}
	if strings.Contains(r.Stdout, "CHECK FAILED") {
		t.Fatalf("a check failed:\n%s", r)
	}
}

func TestHostSeesRealPIDAndNSpidListsBoth(t *testing.T) {
	r := stage01(t)
	m := regexp.MustCompile(`/proc/(\d+)/status says  NSpid: (\d+) (\d+)\n`).FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("no NSpid line with two numbers:\n%s", r)
	}
	if m[1] == "1" || m[2] != m[1] || m[3] != "1" {
		t.Fatalf("want NSpid `<host pid> 1` with host pid != 1, got %q", m[0])
	}
}

func TestPIDNamespaceInodesDiffer(t *testing.T) {
	r := stage01(t)
	links := regexp.MustCompile(`ns/pid \(.*\)\s+-> (pid:\[\d+\])`).FindAllStringSubmatch(r.Stdout, -1)
	if len(links) != 2 {
		t.Fatalf("want the host's and the child's pid namespace links:\n%s", r)
	}
	if links[0][1] == links[1][1] {
		t.Fatalf("host and child share %s: no new PID namespace", links[0][1])
	}
}

func TestNestedThreeShowsFourNSpidEntries(t *testing.T) {
	r := stage01(t, "--nested", "3", "--", "sh", "-c", "echo inner=$$")
	if r.Code != 0 {
		t.Fatalf("--nested 3 failed:\n%s", r)
	}
	m := regexp.MustCompile(`level 3: getpid\(\) = 1, NSpid \(seen from the host's /proc\): ([\d ]+)\n`).FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("no level 3 line:\n%s", r)
	}
	if f := strings.Fields(m[1]); len(f) != 4 || f[3] != "1" {
		t.Fatalf("level 3 NSpid should hold 4 numbers ending in 1, got %q", m[1])
	}
	if !strings.Contains(r.Stdout, "inner=1\n") {
		t.Fatalf("the innermost command is not PID 1:\n%s", r)
	}
}

func TestSiblingsAreBothPIDOneAndBlindToEachOther(t *testing.T) {
	r := stage01(t, "--siblings")
	if r.Code != 0 {
		t.Fatalf("--siblings failed:\n%s", r)
	}
	ns := regexp.MustCompile(`sibling [AB]: host PID \d+, NSpid: \d+ 1, namespace (pid:\[\d+\])`).FindAllStringSubmatch(r.Stdout, -1)
	if len(ns) != 2 || ns[0][1] == ns[1][1] {
		t.Fatalf("want two siblings in two namespaces:\n%s", r)
	}
	// Each sibling's ps (its PID 1) lists exactly one process: itself.
	tables := regexp.MustCompile(`PID USER\s+COMMAND\n((?:\s+\d+ .*\n)+)`).FindAllStringSubmatch(r.Stdout, -1)
	if len(tables) != 2 {
		t.Fatalf("want two ps tables:\n%s", r)
	}
	for _, tb := range tables {
		rows := strings.Split(strings.TrimSpace(tb[1]), "\n")
		if len(rows) != 1 || strings.Fields(rows[0])[0] != "1" {
			t.Fatalf("a sibling saw more than itself:\n%s", tb[0])
		}
	}
}

func TestExitStatusPropagates(t *testing.T) {
	r := stage01(t, "-q", "--", "sh", "-c", "exit 3")
	if r.Code != 3 {
		t.Fatalf("want exit 3, got:\n%s", r)
	}
	r = stage01(t, "-q", "--", "sh", "-c", "kill -TERM $$")
	// PID 1 ignores signals it has no handler for, even from itself: sh survives and exits 0.
	if r.Code != 0 {
		t.Fatalf("PID 1 should be immune to its own SIGTERM, got:\n%s", r)
	}
}

func TestQuietPrintsOnlyTheCommandsOutput(t *testing.T) {
	r := stage01(t, "-q", "--", "echo", "hello")
	if r.Stdout != "hello\n" || r.Stderr != "" {
		t.Fatalf("--quiet should print only the command's output:\n%s", r)
	}
}

func TestCommandNotFoundIs127WithOneLine(t *testing.T) {
	r := stage01(t, "-q", "--", "no-such-command-here")
	if r.Code != 127 {
		t.Fatalf("want exit 127:\n%s", r)
	}
	if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "command not found") {
		t.Fatalf("want one line saying command not found:\n%s", r)
	}
}

func TestNotRootGetsOneClearLine(t *testing.T) {
	testkit.RequireRoot(t) // to switch to nobody we must start as root
	testkit.CheckHost(t)
	r := testkit.Run(t, testkit.RunOpts{AsUser: true}, testkit.Stage(t, "01-pid-namespace"))
	if r.Code == 0 || r.Stdout != "" {
		t.Fatalf("as nobody it must fail before doing anything:\n%s", r)
	}
	if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "needs root") || !strings.Contains(lines[0], "sudo") {
		t.Fatalf("want one line naming root and sudo:\n%s", r)
	}
}

func TestBadFlagsAreRefused(t *testing.T) {
	for _, args := range [][]string{{"--nested", "40"}, {"--siblings", "--nested", "2"}} {
		r := stage01(t, args...)
		if r.Code == 0 || len(strings.Split(strings.TrimSpace(r.Stderr), "\n")) != 1 {
			t.Fatalf("%v should fail with one line:\n%s", args, r)
		}
	}
}
