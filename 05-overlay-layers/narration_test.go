package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/container-internals/workshop/internal/testkit"
)

// The narration check: the demo under strace -f names every mount-family
// call (and prctl, unshare...) the stage makes, and makes every one it
// names. The narration shows paths relative to the work directory, with
// long IDs cut: strace's paths are read the same way.
func TestNarrationNamesEveryCallStraceSees(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.CheckHost(t)
	for _, extra := range [][]string{nil, {"--layers", "8"}} {
		dir := filepath.Join(t.TempDir(), "work")
		id := regexp.MustCompile(`[0-9a-f]{64}`)
		norm := func(p string) string {
			p = strings.TrimPrefix(p, dir+"/")
			return id.ReplaceAllStringFunc(p, func(s string) string { return s[:12] + "..." })
		}
		args := append([]string{"--workdir", dir}, extra...)
		out, seen := testkit.Strace(t, stageBin(t), []string{"NO_COLOR=1"}, norm, args...)
		named := testkit.NarratedKeys(out, norm)
		if len(seen) < 5 {
			t.Fatalf("strace saw too few calls (%d):\n%s", len(seen), out)
		}
		if missing := testkit.OneSideOnly(seen, named); len(missing) > 0 {
			t.Errorf("%v: made but not narrated:\n  %s", args, strings.Join(missing, "\n  "))
		}
		if extra := testkit.OneSideOnly(named, seen); len(extra) > 0 {
			t.Errorf("%v: narrated but never made:\n  %s\n--- narration:\n%s", args, strings.Join(extra, "\n  "), out)
		}
	}
}
