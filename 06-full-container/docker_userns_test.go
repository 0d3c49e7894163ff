package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/container-internals/workshop/03-cgroups-cpu/cgroup"
	"github.com/container-internals/workshop/internal/testkit"
)

// dockerd --userns-remap: Docker's own user namespaces, on this runtime.
// The daemon chowns its image layers to the remapped root and sends
// linux.uidMappings/gidMappings with a new user namespace; the container's
// root must be the remapped user to the host, and see what it sees under
// runc. The user (wsremap) and its range exist only in the daemon's mount
// namespace: a copy of /etc is bound there.
func TestDockerUsernsRemapRunsOnTheWorkshopRuntime(t *testing.T) {
	setup(t)
	workshop := testkit.Stage(t, "06-full-container")
	parent := fmt.Sprintf("/wsdkus-%d", os.Getpid())
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeEmptyParent(t, h, parent) })
	etc := map[string]string{}
	for name, line := range map[string]string{
		"passwd": "wsremap:x:4567:4567::/nonexistent:/usr/sbin/nologin",
		"group":  "wsremap:x:4567:",
		"subuid": "wsremap:200000:65536",
		"subgid": "wsremap:300000:65536",
	} {
		b, _ := os.ReadFile("/etc/" + name)
		etc[name] = string(b) + line + "\n"
	}
	d := startPrivateDockerd(t, dockerdOptions{runtimes: map[string]string{"workshop": workshop}, cgroupParent: parent,
		config: map[string]any{"userns-remap": "wsremap"}, etc: etc})
	busyboxImage(t, d, "wsbb:test")
	dk := func(args ...string) (string, error) { return d.docker("", args...) }

	// The same view from inside under both runtimes.
	probe := `id; cat /proc/self/uid_map /proc/self/gid_map | tr -s ' '; grep -E '^Cap(Eff|Bnd):' /proc/self/status; ` +
		`stat -c '%u:%g %n' / /bin/busybox /etc/passwd; touch /made && stat -c '%u:%g made' /made; ` +
		`mknod /tmp/disk b 8 0 2>&1 | sed 's/.*: //'; ls /dev | tr '\n' ' '`
	var got [2]string
	for i, rt := range []string{"runc", "workshop"} {
		out, err := dk("run", "--rm", "--runtime="+rt, "--network", "none", "wsbb:test", "sh", "-c", probe)
		if err != nil {
			t.Fatalf("%s: %v\n%s", rt, err, out)
		}
		got[i] = out
	}
	t.Logf("the remapped container, seen from inside:\n%s", got[1])
	if got[0] != got[1] {
		t.Errorf("the remapped container differs from runc's:\nrunc:\n%s\nworkshop:\n%s", got[0], got[1])
	}
	if !strings.Contains(got[1], "uid=0(root) gid=0(root)") || !strings.Contains(got[1], " 0 200000 65536\n") ||
		!strings.Contains(got[1], "0:0 /bin/busybox") || !strings.Contains(got[1], "Operation not permitted") {
		t.Errorf("want root inside, mapped onto 200000, the layers its own, mknod refused:\n%s", got[1])
	}

	// From the host: its processes are uid 200000 and gid 300000.
	if out, err := dk("run", "-d", "--name", "remapped", "--runtime=workshop", "--network", "none", "wsbb:test", "sleep", "100"); err != nil {
		t.Fatalf("run -d: %v\n%s", err, out)
	}
	defer dk("rm", "-f", "remapped")
	out, err := dk("inspect", "-f", "{{.State.Pid}}", "remapped")
	if err != nil {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(out))
	if uid := statusField(t, pid, "Uid"); uid != "200000" {
		t.Errorf("the container's PID 1 is uid %s on the host, want 200000", uid)
	}
	if gid := statusField(t, pid, "Gid"); gid != "300000" {
		t.Errorf("the container's PID 1 is gid %s on the host, want 300000", gid)
	}
	// docker exec: the runtime's exec --process, whose child enters the
	// container's user namespace (usernsexec.go).
	if out, err := dk("exec", "remapped", "sh", "-c", "id; cat /proc/self/uid_map | tr -s ' '"); err != nil ||
		!strings.HasPrefix(out, "uid=0(root) gid=0(root)") || !strings.Contains(out, " 0 200000 65536\n") {
		t.Errorf("docker exec into the remapped container: %v\n%s", err, out)
	}
}
