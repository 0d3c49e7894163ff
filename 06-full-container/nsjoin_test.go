package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// nsLinks reads /proc/PID/ns/KIND for each kind: what the kernel says a
// process's namespaces are, from the host.
func nsLinks(t *testing.T, pid int, kinds ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range kinds {
		l, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "ns", k))
		if err != nil {
			t.Fatalf("readlink /proc/%d/ns/%s: %v", pid, k, err)
		}
		out[k] = l
	}
	return out
}

// A bundle that joins every namespace of a running container, the mount
// namespace included, runs inside that container: same namespaces seen
// from the host, that container's files and processes seen from inside.
func TestOCIJoinsAnotherContainersNamespaces(t *testing.T) {
	setup(t)
	owner := detached(t, "nsowner", "--net", "none", "--hostname", "owner", "--",
		"sh", "-c", "echo only-in-the-owner > /tmp/owner-file; exec sleep 100")
	kinds := []string{"ipc", "uts", "net", "pid", "cgroup", "mnt"}
	want := nsLinks(t, owner.Pid, kinds...)
	dir := bundle(t, func(c *specs.Spec) {
		c.Linux.Namespaces = nil
		for _, k := range []specs.LinuxNamespaceType{specs.IPCNamespace, specs.UTSNamespace, specs.NetworkNamespace,
			specs.PIDNamespace, specs.CgroupNamespace, specs.MountNamespace} {
			kind := map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "net", specs.MountNamespace: "mnt"}[k]
			if kind == "" {
				kind = string(k)
			}
			c.Linux.Namespaces = append(c.Linux.Namespaces, specs.LinuxNamespace{Type: k, Path: "/proc/" + strconv.Itoa(owner.Pid) + "/ns/" + kind})
		}
		// A joined mount namespace is the owner's: nothing is mounted in it.
		c.Mounts, c.Linux.MaskedPaths, c.Linux.ReadonlyPaths, c.Root.Readonly = nil, nil, nil, false
		c.Hostname = ""
		c.Process.Args = []string{"sh", "-c", "cat /tmp/owner-file; hostname; ps -o comm | grep -c sleep; " +
			"for k in " + strings.Join(kinds, " ") + "; do readlink /proc/self/ns/$k; done"}
	})
	out, r := create(t, dir, "joiner")
	if r.Code != 0 {
		t.Fatalf("create:\n%s", r)
	}
	defer ctr(t, opts{}, "delete", "--force", "joiner")
	// From the host: the waiting process is in the owner's namespaces.
	st := ociState(t, "joiner")
	if got := nsLinks(t, st.Pid, kinds...); !mapsEqual(got, want) {
		t.Fatalf("from the host, the joiner's namespaces are %v, want the owner's %v", got, want)
	}
	// In the owner's PID namespace it has a PID there too (NSpid: host, inside).
	status, _ := os.ReadFile("/proc/" + strconv.Itoa(st.Pid) + "/status")
	if !strings.Contains(string(status), "NSpid:\t"+strconv.Itoa(st.Pid)+"\t") {
		t.Fatalf("the joiner has no PID of its own in the owner's PID namespace:\n%s", status)
	}
	if r := ctr(t, opts{}, "start", "joiner"); r.Code != 0 {
		t.Fatalf("start:\n%s", r)
	}
	waitStopped(t, "joiner")
	got, _ := os.ReadFile(out)
	wantOut := []string{"only-in-the-owner", "owner", "1"}
	for _, k := range kinds {
		wantOut = append(wantOut, want[k])
	}
	if strings.TrimSpace(string(got)) != strings.Join(wantOut, "\n") {
		t.Fatalf("inside the joiner:\n%s\nwant:\n%s", got, strings.Join(wantOut, "\n"))
	}
	// Joining left the runtime's own PID namespace as it was: a container
	// created next is PID 1 of a namespace of its own.
	if r := ctr(t, opts{}, "run", "--net", "none", "--", "sh", "-c", "echo $$"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "1" {
		t.Fatalf("a container after the joiner:\n%s", r)
	}
}

// A bundle may join a container's user namespace too (as a pod's
// containers join their sandbox's): its first process is started by raw
// system calls that join it before the clone (joinuserns.go). Joined with
// every other kind, it runs inside that container; joined alone (with its
// network), its new namespaces are that user namespace's, and it is uid
// 100000 on the host, root inside, PID 1 of its own.
func TestOCIJoinsAUserNamespaceContainersNamespaces(t *testing.T) {
	usernsSetup(t)
	owner := detached(t, "usowner", "--userns", "--net", "none", "--hostname", "owner", "--",
		"sh", "-c", "echo only-in-the-owner > /tmp/owner-file; exec sleep 100")
	path := func(kind string) string { return "/proc/" + strconv.Itoa(owner.Pid) + "/ns/" + kind }
	all := []string{"user", "ipc", "uts", "net", "pid", "cgroup", "mnt"}
	want := nsLinks(t, owner.Pid, all...)
	for _, c := range []struct {
		name   string
		joined []string
		script string
		inside func(out string) bool
	}{
		{"every kind", all, "cat /tmp/owner-file; hostname; id -u",
			func(out string) bool { return out == "only-in-the-owner\nowner\n0\n" }},
		{"user and net only", []string{"user", "net"}, "id -u; cat /proc/self/uid_map | tr -s ' '; echo $$; hostname; cat /tmp/owner-file 2>&1 | grep -c 'No such file'",
			func(out string) bool { return out == "0\n 0 100000 65536\n1\njoiner\n1\n" }},
	} {
		dir := bundle(t, func(s *specs.Spec) {
			var ns []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if kind := map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "net", specs.MountNamespace: "mnt"}[n.Type]; !slices.Contains(c.joined, kind) && !slices.Contains(c.joined, string(n.Type)) {
					ns = append(ns, n)
				}
			}
			for _, kind := range c.joined {
				typ := map[string]specs.LinuxNamespaceType{"net": specs.NetworkNamespace, "mnt": specs.MountNamespace}[kind]
				if typ == "" {
					typ = specs.LinuxNamespaceType(kind)
				}
				ns = append(ns, specs.LinuxNamespace{Type: typ, Path: path(kind)})
			}
			s.Linux.Namespaces = ns
			if slices.Contains(c.joined, "mnt") { // the owner's: nothing is mounted in it
				s.Mounts, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths, s.Root.Readonly = nil, nil, nil, false
			}
			s.Hostname = "joiner"
			if slices.Contains(c.joined, "uts") {
				s.Hostname = ""
			}
			s.Process.Args = []string{"sh", "-c", c.script}
		})
		os.Chmod(dir, 0o755)
		os.Chmod(filepath.Dir(dir), 0o711)
		out, r := create(t, dir, "usjoiner")
		if r.Code != 0 {
			t.Fatalf("%s: create:\n%s", c.name, r)
		}
		st := ociState(t, "usjoiner")
		got := nsLinks(t, st.Pid, all...)
		for _, kind := range all {
			if (got[kind] == want[kind]) != slices.Contains(c.joined, kind) {
				t.Errorf("%s: from the host, the joiner's %s namespace is %s, the owner's %s", c.name, kind, got[kind], want[kind])
			}
		}
		if uid := statusField(t, st.Pid, "Uid"); uid != "100000" {
			t.Errorf("%s: from the host, the joiner is uid %s, want 100000", c.name, uid)
		}
		// exec enters it as it enters any user namespace (usernsexec.go).
		if r := ctr(t, opts{}, "exec", "usjoiner", "--", "sh", "-c", "id -u; readlink /proc/self/ns/user"); r.Code != 0 || r.Stdout != "0\n"+want["user"]+"\n" {
			t.Errorf("%s: exec into the joiner:\n%s", c.name, r)
		}
		if r := ctr(t, opts{}, "start", "usjoiner"); r.Code != 0 {
			t.Fatalf("%s: start:\n%s", c.name, r)
		}
		waitStopped(t, "usjoiner")
		ctr(t, opts{}, "delete", "--force", "usjoiner")
		if b, _ := os.ReadFile(out); !c.inside(string(b)) {
			t.Errorf("%s: inside the joiner: %q", c.name, b)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Docker's `--pid host` leaves the PID namespace out of the config: the
// container's process is in the host's, under its chroot-free root.
func TestOCIWithoutAPIDNamespaceIsInTheHosts(t *testing.T) {
	setup(t)
	dir := bundle(t, func(c *specs.Spec) {
		c.Linux.Namespaces = c.Linux.Namespaces[1:] // spec writes pid first
		c.Process.Args = []string{"sh", "-c", "readlink /proc/self/ns/pid"}
	})
	if b, _ := os.ReadFile(filepath.Join(dir, "config.json")); strings.Contains(string(b), `"type":"pid"`) {
		t.Fatalf("the bundle still has a PID namespace:\n%s", b)
	}
	out, r := create(t, dir, "hostpid")
	if r.Code != 0 {
		t.Fatalf("create:\n%s", r)
	}
	defer ctr(t, opts{}, "delete", "--force", "hostpid")
	ctr(t, opts{}, "start", "hostpid")
	waitStopped(t, "hostpid")
	host, _ := os.Readlink("/proc/self/ns/pid")
	if got, _ := os.ReadFile(out); strings.TrimSpace(string(got)) != host {
		t.Fatalf("inside: %q, want the host's %s", got, host)
	}
}

// Without a mount namespace in the config, nothing is mounted anywhere:
// the process is chrooted into the bundle's root, in the host's mount
// namespace (runc's behaviour), and what needs mounting is refused.
func TestOCIWithoutAMountNamespace(t *testing.T) {
	setup(t)
	dir := bundle(t, func(c *specs.Spec) {
		withoutNamespace(c, specs.MountNamespace)
		c.Mounts, c.Linux.MaskedPaths, c.Linux.ReadonlyPaths, c.Root.Readonly = nil, nil, nil, false
		c.Process.Args = []string{"sh", "-c", "cat /bundle-marker; echo $$; ls /dev/null && sleep 100"}
	})
	os.WriteFile(filepath.Join(dir, "rootfs", "bundle-marker"), []byte("the bundle's root\n"), 0o644)
	before, _ := os.ReadFile("/proc/self/mountinfo")
	out, r := create(t, dir, "nomnt")
	if r.Code != 0 {
		t.Fatalf("create:\n%s", r)
	}
	defer ctr(t, opts{}, "delete", "--force", "nomnt")
	st := ociState(t, "nomnt")
	if st.Status != specs.StateCreated {
		b, _ := os.ReadFile(out)
		t.Fatalf("after create: %+v\n%s", st, b)
	}
	host, _ := os.Readlink("/proc/self/ns/mnt")
	if got := nsLinks(t, st.Pid, "mnt")["mnt"]; got != host {
		t.Fatalf("its mount namespace is %s, want the host's %s", got, host)
	}
	if root, _ := os.Readlink("/proc/" + strconv.Itoa(st.Pid) + "/root"); root != filepath.Join(dir, "rootfs") {
		t.Fatalf("its root is %s, want the bundle's rootfs", root)
	}
	ctr(t, opts{}, "start", "nomnt")
	// exec goes under the same chroot.
	if r := ctr(t, opts{}, "exec", "nomnt", "--", "cat", "/bundle-marker"); r.Code != 0 || r.Stdout != "the bundle's root\n" {
		t.Fatalf("exec into it:\n%s", r)
	}
	ctr(t, opts{}, "kill", "nomnt", "KILL")
	waitStopped(t, "nomnt")
	if got, _ := os.ReadFile(out); !strings.HasPrefix(string(got), "the bundle's root\n1\n/dev/null\n") {
		t.Fatalf("inside: %q", got)
	}
	if after, _ := os.ReadFile("/proc/self/mountinfo"); string(after) != string(before) {
		t.Fatalf("the host's mounts changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if r := ctr(t, opts{}, "delete", "nomnt"); r.Code != 0 {
		t.Fatalf("delete:\n%s", r)
	}
	if fileExists(filepath.Join(dir, "rootfs", "dev", "null")) {
		t.Fatal("delete left the device node it made in the bundle's rootfs/dev")
	}
	// What needs mounting is refused, naming the field.
	refused := bundle(t, func(c *specs.Spec) { withoutNamespace(c, specs.MountNamespace) })
	if _, r := create(t, refused, "nomnt2"); r.Code == 0 || !strings.Contains(r.Stdout, "mounts needs a new mount namespace") {
		ctr(t, opts{}, "delete", "--force", "nomnt2")
		t.Fatalf("mounts without a mount namespace:\n%s", r)
	}
	noContainersLeft(t)
}

// withoutNamespace removes a kind of namespace from a config.
func withoutNamespace(c *specs.Spec, kind specs.LinuxNamespaceType) {
	var kept []specs.LinuxNamespace
	for _, ns := range c.Linux.Namespaces {
		if ns.Type != kind {
			kept = append(kept, ns)
		}
	}
	c.Linux.Namespaces = kept
}
