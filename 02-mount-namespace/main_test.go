package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/container-internals/workshop/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func stage02(t *testing.T, args ...string) testkit.Result {
	t.Helper()
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	return testkit.Run(t, testkit.RunOpts{}, testkit.Stage(t, "02-mount-namespace"), args...)
}

// markerName finds the marker the run created on the host.
func markerName(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`a marker file on the host: (/tmp/hello-from-the-host-\d+\.txt)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no marker line:\n%s", out)
	}
	return m[1]
}

func TestMarkerVisibleBeforeRemountNotAfter(t *testing.T) {
	r := stage02(t)
	if r.Code != 0 || strings.Contains(r.Stdout, "CHECK FAILED") {
		t.Fatalf("default run failed:\n%s", r)
	}
	marker := markerName(t, r.Stdout)
	base := strings.TrimPrefix(marker, "/tmp/")
	// Before the tmpfs, the child's `ls -A /tmp` lists the marker...
	before, after, ok := strings.Cut(r.Stdout, "Step 2:")
	if !ok || !strings.Contains(before, "    "+base+"\n") {
		t.Fatalf("the child did not list the host's marker before the remount:\n%s", r.Stdout)
	}
	// ...after it, /tmp is empty inside.
	if !regexp.MustCompile(`ls -A /tmp   # inside\n[a-z ]+\|\s+\(nothing\)\n`).MatchString(after) {
		t.Fatalf("/tmp was not empty inside after the tmpfs mount:\n%s", after)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("the marker %s was left on the host", marker)
	}
}

func TestTmpIsEmptyAfterTmpfsRemount(t *testing.T) {
	r := stage02(t, "-q", "--", "ls", "-A", "/tmp")
	if r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
		t.Fatalf("`-- ls -A /tmp` should print nothing:\n%s", r)
	}
}

func TestMountInsideIsAbsentOnHost(t *testing.T) {
	// The host looks at its own mount table while the child's tmpfs exists.
	r := stage02(t)
	step3 := r.Stdout[strings.Index(r.Stdout, "Step 3:"):]
	if !regexp.MustCompile(`mountinfo   # on the host\n[a-z ]+\|\s+\(nothing\)`).MatchString(step3) {
		t.Fatalf("the host saw the child's tmpfs:\n%s", step3)
	}
	// And inside, the tmpfs line was there.
	if !regexp.MustCompile(`(?m)^ctr  \|    none on /tmp type tmpfs \(`).MatchString(r.Stdout) {
		t.Fatalf("no tmpfs line for /tmp inside:\n%s", r.Stdout)
	}
}

func TestNoPrivateLeaksToTheHostAndIsCleanedUp(t *testing.T) {
	r := stage02(t, "--no-private")
	if r.Code != 0 || strings.Contains(r.Stdout, "CHECK FAILED") {
		t.Fatalf("--no-private run failed:\n%s", r)
	}
	// The host really saw the leaked mount while the child lived.
	step3 := r.Stdout[strings.Index(r.Stdout, "Step 3:"):]
	if !regexp.MustCompile(`mountinfo   # on the host\n[a-z ]+\|\s+\d+ \d+ \S+ / (\S+) [^\n]* - tmpfs none`).MatchString(step3) {
		t.Fatalf("the leak was not seen on the host:\n%s", step3)
	}
	if !strings.Contains(r.Stdout, "Clean up the leak on the host") {
		t.Fatalf("the leak was not cleaned up:\n%s", r.Stdout)
	}
	// CheckHost (registered by stage02) verifies the host's table is as before.
}

func TestCommandStatusAndNotFound(t *testing.T) {
	if r := stage02(t, "-q", "--", "sh", "-c", "exit 3"); r.Code != 3 {
		t.Fatalf("want exit 3:\n%s", r)
	}
	r := stage02(t, "-q", "--", "no-such-command-here")
	if r.Code != 127 || len(strings.Split(strings.TrimSpace(r.Stderr), "\n")) != 1 || !strings.Contains(r.Stderr, "command not found") {
		t.Fatalf("want exit 127 and one line:\n%s", r)
	}
}

func TestNotRootGetsOneClearLine(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	r := testkit.Run(t, testkit.RunOpts{AsUser: true}, testkit.Stage(t, "02-mount-namespace"))
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	if r.Code == 0 || r.Stdout != "" || len(lines) != 1 || !strings.Contains(lines[0], "needs root") {
		t.Fatalf("as nobody: want one line about root and a non-zero exit:\n%s", r)
	}
}

// The learners' VM runs systemd, which mounts / shared. Reproduce that in a
// throwaway mount namespace (unshare --propagation shared) and run the stage
// there: with the private remount nothing leaks; without it, the tmpfs lands
// on that "host's" real /tmp and the stage removes it again.
func TestOnASharedRootLikeSystemd(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	bin := testkit.Stage(t, "02-mount-namespace")
	// After the stage, the "host" namespace prints its own /tmp mounts.
	script := `"$0" "$@"; rc=$?; echo "tmpfs-on-tmp-after:$(grep -c ' /tmp .* - tmpfs ' /proc/self/mountinfo)"; exit $rc`
	r := testkit.Run(t, testkit.RunOpts{}, "unshare", "--mount", "--propagation", "shared", "sh", "-c", script, bin)
	if r.Code != 0 || strings.Contains(r.Stdout, "CHECK FAILED") || !strings.Contains(r.Stdout, "= / is in a peer group") {
		t.Fatalf("default run on a shared / failed:\n%s", r)
	}
	if !strings.Contains(r.Stdout, "tmpfs-on-tmp-after:0") {
		t.Fatalf("a tmpfs was left on /tmp:\n%s", r.Stdout)
	}
	r = testkit.Run(t, testkit.RunOpts{}, "unshare", "--mount", "--propagation", "shared", "sh", "-c", script, bin, "--no-private")
	if r.Code != 0 || strings.Contains(r.Stdout, "CHECK FAILED") {
		t.Fatalf("--no-private on a shared / failed:\n%s", r)
	}
	// On a shared / the leak happens on /tmp itself, no demo mount needed.
	if strings.Contains(r.Stdout, "workshop-02-shared-") || !regexp.MustCompile(`on the host\n[a-z ]+\|\s+\d+ \d+ \S+ / /tmp [^\n]* - tmpfs none`).MatchString(r.Stdout) {
		t.Fatalf("the leak onto /tmp was not shown:\n%s", r.Stdout)
	}
	if !strings.Contains(r.Stdout, "tmpfs-on-tmp-after:0") {
		t.Fatalf("the leaked tmpfs was not removed from /tmp:\n%s", r.Stdout)
	}
}

// `... --no-private | head -3` closes the pipe while the leaked mount
// exists: the stage must still remove it (and its demo mount).
func TestPipedIntoHeadStillCleansUp(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	cmd := exec.Command(testkit.Stage(t, "02-mount-namespace"), "--no-private")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := out.Read(buf); err != nil {
		t.Fatal(err)
	}
	out.Close()
	_ = cmd.Wait()
}
