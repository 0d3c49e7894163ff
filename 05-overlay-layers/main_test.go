package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-internals/workshop/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func stageBin(t *testing.T) string { return testkit.Stage(t, name) }

// workdirsLeft lists this stage's temp dirs, to prove a run removed its own.
func workdirsLeft(t *testing.T) map[string]bool {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(os.TempDir(), "workshop-05-*"))
	out := map[string]bool{}
	for _, p := range m {
		out[p] = true
	}
	return out
}

func assertNothingNewLeft(t *testing.T, before map[string]bool) {
	t.Helper()
	for p := range workdirsLeft(t) {
		if !before[p] {
			t.Errorf("the run left %s behind", p)
		}
	}
}

func TestDefaultRunShowsTheArticlesStepsAndPassesItsChecks(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	before := workdirsLeft(t)
	r := testkit.Run(t, testkit.RunOpts{}, stageBin(t))
	if r.Code != 0 || strings.Contains(r.Stdout, "CHECK FAILED") || !strings.Contains(r.Stdout, "check passed:") {
		t.Fatalf("default run failed:\n%s", r)
	}
	for _, want := range []string{
		"mount -t aufs -o dirs=./A:./B none ./C",
		"lowerdir=./A:./B,upperdir=./upper,workdir=./work ./C",
		"    a  b  dir  x",
		"    x: in A",
		"c--------- 0 0 0, 0 a",
		`trusted.overlay.opaque="y"`,
		"/etc/hostname          init      (hides layer 1)",
		"/usr/bin/app           layer 3   (hides layer 2)",
		"bin/.wh.sh",
		"var/cache/app/.wh..wh..opq",
		`"RootFS": {`,
		"check passed: nothing left: no mount, no directory",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("the output lacks %q", want)
		}
	}
	// Steps 4 and 5 name layers by digests that must agree with each other:
	// the printed chain IDs are those of the printed RootFS.Layers.
	diffIDs := regexp.MustCompile(`"(sha256:[0-9a-f]{64})"`).FindAllStringSubmatch(r.Stdout, -1)
	if len(diffIDs) != 4 {
		t.Fatalf("found %d RootFS.Layers, want 4", len(diffIDs))
	}
	parent := ""
	for i, m := range diffIDs {
		chain := m[1]
		if i > 0 {
			chain = fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(parent+" "+m[1])))
		}
		if !strings.Contains(r.Stdout, "    "+strings.TrimPrefix(chain, "sha256:")+"  layer ") {
			t.Errorf("the layer store listing lacks chain ID %d, %s", i+1, chain)
		}
		parent = chain
	}
	assertNothingNewLeft(t, before)
}

func TestChainIDSubcommandMatchesSha256OfTheText(t *testing.T) {
	a, b, c := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64), "sha256:"+strings.Repeat("c", 64)
	r := testkit.Run(t, testkit.RunOpts{AsUser: true}, stageBin(t), "chainid", a, b, c)
	c2 := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(a+" "+b)))
	c3 := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(c2+" "+c)))
	if want := a + "\n" + c2 + "\n" + c3 + "\n"; r.Code != 0 || r.Stdout != want {
		t.Errorf("chainid printed:\n%s\nwant:\n%s", r, want)
	}
}

func TestChainIDSubcommandRejectsBadDigests(t *testing.T) {
	for _, args := range [][]string{{"chainid", "sha256:abc"}, {"chainid", "abc"}, {"chainid"}} {
		r := testkit.Run(t, testkit.RunOpts{}, stageBin(t), args...)
		lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
		if r.Code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], name+": ") || r.Stdout != "" {
			t.Errorf("%v: want one error line and a non-zero status, got\n%s", args, r)
		}
	}
}

func TestFiveHundredLayersTopVersionWins(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	before := workdirsLeft(t)
	start := time.Now()
	r := testkit.Run(t, testkit.RunOpts{}, stageBin(t), "--layers", "500")
	if r.Code != 0 || !strings.Contains(r.Stdout, "    version 500\n") || !strings.Contains(r.Stdout, "check passed: the top layer's version wins") {
		t.Fatalf("--layers 500:\n%s", r)
	}
	t.Logf("--layers 500 ran in %v; it says: %s", time.Since(start), regexp.MustCompile(`mounting 500 layers took [0-9.]+ ms`).FindString(r.Stdout))
	assertNothingNewLeft(t, before)
}

func TestMoreLayersThanTheKernelAllowsIsOneClearLine(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	before := workdirsLeft(t)
	for _, n := range []string{"501", "0", "-3"} {
		r := testkit.Run(t, testkit.RunOpts{}, stageBin(t), "--layers", n)
		lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
		if r.Code == 0 || len(lines) != 1 || r.Stdout != "" {
			t.Errorf("--layers %s: want one error line, got\n%s", n, r)
		}
		if n == "501" && !strings.Contains(r.Stderr, "overlayfs stacks at most 500 lower layers; got 501") {
			t.Errorf("--layers 501: %q does not give the limit", r.Stderr)
		}
	}
	assertNothingNewLeft(t, before)
}

func TestKeepLeavesMountsAndSaysHowToCleanUp(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	dir := filepath.Join(t.TempDir(), "explore")
	r := testkit.Run(t, testkit.RunOpts{}, stageBin(t), "--workdir", dir, "--keep")
	m := regexp.MustCompile(`to clean up: sudo umount (.+) && sudo rm -rf (.+)\n`).FindStringSubmatch(r.Stdout)
	mounts := []string{}
	if m != nil {
		mounts = strings.Fields(m[1])
	}
	// Undo it the way the output says, whatever happens below.
	t.Cleanup(func() {
		for _, p := range mounts {
			testkit.Run(t, testkit.RunOpts{}, "/bin/umount", p)
		}
	})
	if r.Code != 0 || m == nil || m[2] != dir {
		t.Fatalf("--keep run:\n%s", r)
	}
	if len(mounts) != 2 || mounts[0] != filepath.Join(dir, "C") {
		t.Errorf("--keep lists mounts %v, want C and the container's root", mounts)
	}
	info, _ := os.ReadFile("/proc/self/mountinfo")
	for _, p := range mounts {
		if !strings.Contains(string(info), " "+p+" ") {
			t.Errorf("%s is not mounted after --keep", p)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "C/x")); err != nil || string(b) != "x: in A\n" {
		t.Errorf("C/x after --keep: %q, %v", b, err)
	}
}

func TestWorkdirMustBeEmpty(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "precious"), []byte("mine"), 0o644)
	r := testkit.Run(t, testkit.RunOpts{}, stageBin(t), "--workdir", dir)
	if r.Code == 0 || !strings.Contains(r.Stderr, "is not empty") || strings.Count(r.Stderr, "\n") != 1 {
		t.Errorf("non-empty --workdir:\n%s", r)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the workdir was changed: %v", entries)
	}
	// An existing empty workdir is used, emptied again, and kept.
	empty := t.TempDir()
	if r := testkit.Run(t, testkit.RunOpts{}, stageBin(t), "--workdir", empty, "--layers", "3"); r.Code != 0 {
		t.Fatalf("empty --workdir:\n%s", r)
	}
	if entries, err := os.ReadDir(empty); err != nil || len(entries) != 0 {
		t.Errorf("the empty workdir holds %v afterwards (%v)", entries, err)
	}
}

func TestWorkdirOnAFilesystemWithoutXattrsIsRefused(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	// /proc cannot hold files at all: the check must say so in one line
	// before anything is mounted.
	r := testkit.Run(t, testkit.RunOpts{}, stageBin(t), "--workdir", "/proc/workshop-05")
	if r.Code == 0 || strings.Count(r.Stderr, "\n") != 1 {
		t.Errorf("--workdir on /proc:\n%s", r)
	}
}

func TestNotRootIsOneClearLine(t *testing.T) {
	r := testkit.Run(t, testkit.RunOpts{AsUser: true}, stageBin(t))
	if r.Code == 0 || !strings.Contains(r.Stderr, "needs root") || strings.Count(r.Stderr, "\n") != 1 {
		t.Errorf("as nobody:\n%s", r)
	}
}

// Ctrl-C at any moment: the run stops, unmounts and removes what it made.
// The moment is not deterministic, so several delays are tried; at least
// one must land inside the run.
func TestCtrlCCleansUp(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	bin := stageBin(t)
	before := workdirsLeft(t)
	caught := 0
	// Fixed delays, from early to late: on a slow machine (an emulated VM)
	// the early ones land before the stage is listening and the later ones
	// inside the run; stop once two have landed inside.
	for _, delay := range []time.Duration{20, 40, 60, 80, 120, 240, 480, 960, 1920} {
		if caught >= 2 {
			break
		}
		cmd := exec.Command(bin, "--layers", "500")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay * time.Millisecond)
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		code := cmd.ProcessState.ExitCode()
		if strings.Contains(out.String(), "interrupted (interrupt): cleaning up") {
			caught++
			if code != 130 {
				t.Errorf("after Ctrl-C at %v: exit %d, want 130\n%s", delay*time.Millisecond, code, out.String())
			}
		}
		assertNothingNewLeft(t, before)
	}
	if caught == 0 {
		t.Errorf("no SIGINT landed inside a run: the test proved nothing")
	}
}

// Without Docker, step 4 shows `docker info`'s storage-driver lines from the
// kernel's own facts: the backing filesystem's name as Docker prints it, and
// whether directory entries carry their file type (overlay2 needs d_type).
func TestStorageDriverFactsComeFromTheKernel(t *testing.T) {
	if !supportsDType(t.TempDir()) {
		t.Errorf("supportsDType(%s) = false: the test's own directory has no d_type?", os.TempDir())
	}
	if supportsDType(filepath.Join(t.TempDir(), "missing")) {
		t.Error("supportsDType of a missing directory = true")
	}
	for magic, want := range map[int64]string{0xef53: "extfs", 0x58465342: "xfs", 0x01021994: "tmpfs", 0x1234: "unknown"} {
		if got := dockerFSName(magic); got != want {
			t.Errorf("dockerFSName(0x%x) = %q, want %q", magic, got, want)
		}
	}
}
