package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/container-internals/workshop/internal/testkit"
)

// underRoot shows a path inside the container's root as the container
// sees it: the narration says /proc where strace sees .../merged/proc.
// (With --userns the root is mounted at the container's state directory's
// rootfs, userns.go says why.)
var underRoot = regexp.MustCompile(`^.*/(merged|containers/[0-9a-f]{64}/rootfs)`)

func containerPath(p string) string {
	if !underRoot.MatchString(p) {
		return p
	}
	if p = underRoot.ReplaceAllString(p, ""); p == "" {
		return "/"
	}
	return p
}

// The narration check: `run --explain` under strace -f names every mount-
// family call, pivot_root, unshare, setns, sethostname, capset and prctl
// that the runtime's processes make, and makes every one it names.
func TestExplainNamesEveryCallStraceSees(t *testing.T) {
	setup(t)
	bin := testkit.Stage(t, "06-full-container")
	detached(t, "narrated-exec", "--", "sleep", "100")
	os.Chmod(sharedRoot(t), 0o711) // --userns: the container's root reads its spec under it
	detached(t, "narrated-userns-exec", "--userns", "--net", "none", "--", "sleep", "100")
	for _, args := range [][]string{
		{"run", "--explain", "--", "true"},
		{"run", "--explain", "--init", "--net", "host", "--hostname", "named", "--", "true"},
		{"run", "--explain", "--proc-view", "--memory", "64m", "--cpus", "0.5", "--", "true"},
		{"exec", "--explain", "narrated-exec", "--", "true"},
		{"run", "--explain", "-t", "--net", "none", "--", "true"},
		{"exec", "--explain", "-t", "narrated-exec", "--", "true"},
		{"run", "--explain", "--userns", "--", "true"},
		{"exec", "--explain", "narrated-userns-exec", "--", "true"},
		{"exec", "--explain", "-t", "narrated-userns-exec", "--", "true"},
	} {
		out, seen := testkit.Strace(t, bin, []string{"NO_COLOR=1"}, containerPath,
			append([]string{"--root", sharedRoot(t)}, args...)...)
		named := testkit.NarratedKeys(out, containerPath)
		if len(seen) < 10 {
			t.Fatalf("strace saw too few calls (%d): is it tracing the runtime?\n%s", len(seen), out)
		}
		if missing := testkit.OneSideOnly(seen, named); len(missing) > 0 {
			t.Errorf("%s: made but not narrated:\n  %s", strings.Join(args, " "), strings.Join(missing, "\n  "))
		}
		if extra := testkit.OneSideOnly(named, seen); len(extra) > 0 {
			t.Errorf("%s: narrated but never made:\n  %s\n--- narration:\n%s", strings.Join(args, " "), strings.Join(extra, "\n  "), out)
		}
	}
}

// The same check for an ordinary user's run (nobody, the single-ID map):
// the runtime outside, and its copy in the user namespace that builds the
// container as root of it.
func TestRootlessExplainNamesEveryCallStraceSees(t *testing.T) {
	setup(t)
	bin := testkit.Stage(t, "06-full-container")
	env := testkit.NobodyDirs(t)
	for _, args := range [][]string{
		{"run", "--explain", "--", "true"},
		{"run", "--explain", "--net", "host", "--init", "--", "true"},
	} {
		out, seen := testkit.StraceAs(t, "nobody", bin, append(env, "NO_COLOR=1"), containerPath, args...)
		named := testkit.NarratedKeys(out, containerPath)
		if !strings.Contains(out, "Rootless: this runtime runs as uid 65534") || len(seen) < 10 {
			t.Fatalf("not a rootless run, or strace saw too few calls (%d):\n%s", len(seen), out)
		}
		if missing := testkit.OneSideOnly(seen, named); len(missing) > 0 {
			t.Errorf("%s: made but not narrated:\n  %s", strings.Join(args, " "), strings.Join(missing, "\n  "))
		}
		if extra := testkit.OneSideOnly(named, seen); len(extra) > 0 {
			t.Errorf("%s: narrated but never made:\n  %s\n--- narration:\n%s", strings.Join(args, " "), strings.Join(extra, "\n  "), out)
		}
	}
}
