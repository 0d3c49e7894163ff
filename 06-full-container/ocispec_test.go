package main

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// createAndStart creates and starts a bundle, waits for it, deletes it, and
// returns what its process printed (stdout and stderr, as a shim sees them).
func createAndStart(t *testing.T, dir, id string) string {
	t.Helper()
	out, r := create(t, dir, id)
	if r.Code != 0 {
		t.Fatalf("create %s:\n%s", id, r)
	}
	defer ctr(t, opts{}, "delete", "--force", id)
	if r := ctr(t, opts{}, "start", id); r.Code != 0 {
		t.Fatalf("start %s:\n%s", id, r)
	}
	waitStopped(t, id)
	b, _ := os.ReadFile(out)
	return string(b)
}

// runc 1.1's `runc spec` gives the process three ambient capabilities and
// no inheritable set. The kernel raises an ambient capability only if it
// is permitted and inheritable: runc warns and runs the bundle anyway, and
// so does this runtime. With the inheritable set they are raised.
func TestRuncSpecsAmbientCapabilitiesRun(t *testing.T) {
	setup(t)
	three := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	for _, inheritable := range [][]string{nil, three} {
		dir := bundle(t, func(c *specs.Spec) {
			c.Process.Capabilities = &specs.LinuxCapabilities{Bounding: three, Effective: three, Permitted: three,
				Inheritable: inheritable, Ambient: three}
			c.Process.Args = []string{"sh", "-c", "grep -E '^Cap(Inh|Eff|Amb)' /proc/self/status | tr -s '\\t' ' '"}
		})
		got := createAndStart(t, dir, "ambient")
		want := "CapInh: 0000000000000000\nCapEff: 0000000020000420\nCapAmb: 0000000000000000\n"
		if inheritable != nil {
			want = "CapInh: 0000000020000420\nCapEff: 0000000020000420\nCapAmb: 0000000020000420\n"
		} else {
			warning := "warning: ambient capabilities CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE not raised"
			if !strings.Contains(got, warning) {
				t.Fatalf("no inheritable set: want the warning %q:\n%s", warning, got)
			}
			got = got[strings.Index(got, "\n")+1:]
		}
		if got != want {
			t.Fatalf("inheritable %v: inside:\n%s\nwant:\n%s", inheritable, got, want)
		}
	}
	noContainersLeft(t)
}
