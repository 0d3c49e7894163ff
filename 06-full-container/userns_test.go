package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// usernsSetup: the container's root, uid 100000 on the host, must pass
// through the runtime's root to read its spec (userns.go).
func usernsSetup(t *testing.T) {
	t.Helper()
	setup(t)
	if err := os.Chmod(sharedRoot(t), 0o711); err != nil {
		t.Fatal(err)
	}
}

// statusField reads one field of /proc/PID/status ("Uid", "CapEff").
func statusField(t *testing.T, pid int, field string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":\t"); ok {
			return strings.Fields(v)[0]
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return ""
}

// The container's root is root inside and uid 100000 outside: seen from
// both sides, and what it makes on a volume is 100000's; a file only the
// host's root may read stays closed to it, whatever its capabilities.
func TestUsernsRootIsAnUnprivilegedUserOnTheHost(t *testing.T) {
	usernsSetup(t)
	vol := t.TempDir()
	os.Chmod(vol, 0o777)
	os.Chmod(filepath.Dir(vol), 0o711) // t.TempDir's parent is 0700
	secret := filepath.Join(vol, "secret")
	os.WriteFile(secret, []byte("the host's\n"), 0o600)
	st := detached(t, "userns", "--userns", "--net", "none", "-v", vol+":/data", "-v", secret+":/secret:ro", "--",
		"sh", "-c", "id -u; cat /proc/self/uid_map | tr -s ' '; touch /data/by-root; cat /secret 2>&1 | grep -c 'Permission denied'; "+
			"grep CapEff /proc/self/status | tr -s '\\t' ' '; echo done; sleep 100")
	if uid := statusField(t, st.Pid, "Uid"); uid != "100000" {
		t.Fatalf("from the host, the container's PID 1 runs as uid %s, want 100000", uid)
	}
	if m, _ := os.ReadFile("/proc/" + strconv.Itoa(st.Pid) + "/uid_map"); strings.Join(strings.Fields(string(m)), " ") != "0 100000 65536" {
		t.Fatalf("its uid_map, from the host: %q", m)
	}
	var out string
	for i := 0; i < 100 && !strings.Contains(out, "done"); i++ {
		out = ctr(t, opts{}, "logs", "userns").Stdout
		testSleep()
	}
	want := "0\n 0 100000 65536\n1\nCapEff: 00000000a80425fb\ndone\n"
	if out != want {
		t.Fatalf("inside:\n%s\nwant:\n%s", out, want)
	}
	var fi syscall.Stat_t
	if err := syscall.Stat(filepath.Join(vol, "by-root"), &fi); err != nil || fi.Uid != 100000 || fi.Gid != 100000 {
		t.Fatalf("the file the container's root made on the volume is %d:%d on the host (%v), want 100000:100000", fi.Uid, fi.Gid, err)
	}
	oneLine(t, ctr(t, opts{}, "commit", "userns", "userns-image"), "commit of a container with a user namespace is not supported")
	// --init's PID 1 is this program again, exec'd inside the user namespace.
	if r := ctr(t, opts{}, "run", "--userns", "--init", "--net", "none", "--", "sh", "-c", "ps -o pid,user,comm | grep init"); r.Code != 0 || strings.Join(strings.Fields(r.Stdout), " ") != "1 root workshop-init" {
		t.Fatalf("run --userns --init:\n%s", r)
	}
}

func testSleep() { syscall.Nanosleep(&syscall.Timespec{Nsec: 50e6}, nil) }

// The image's files belong to the container's root, by idmapped mounts or,
// forced, by chowned copies kept per mapping; the image's own files stay
// the host root's.
func TestUsernsLayersBelongToTheContainersRoot(t *testing.T) {
	usernsSetup(t)
	script := "stat -c %u:%g /bin /etc/hosts; echo changed > /etc/motd && echo wrote"
	for _, c := range []struct {
		env      []string
		narrated string
	}{
		// Idmapped where the kernel and the store's filesystem allow it
		// (tmpfs only since 6.3), else the copy, with the kernel's reason.
		{nil, "idmapped mounts"},
		{[]string{"WORKSHOP_USERNS_COPY=1"}, "chowned copies of the layers"},
		{[]string{"WORKSHOP_USERNS_COPY=1"}, "a chowned copy made earlier for this mapping"},
	} {
		r := ctr(t, opts{Env: c.env}, "run", "--explain", "--userns", "--net", "none", "--", "sh", "-c", script)
		if r.Code != 0 || !strings.Contains(r.Stdout, "0:0\n0:0\nwrote\n") || !strings.Contains(r.Stdout, c.narrated) {
			t.Fatalf("%v: want the layers owned by root inside, written to, and the narration to say %q:\n%s", c.env, c.narrated, r)
		}
	}
	copies, _ := filepath.Glob(filepath.Join(sharedRoot(t), "images", "userns", "0_100000_65536-0_100000_65536", "*", "bin"))
	if len(copies) == 0 {
		t.Fatal("no chowned copy of a layer in the image store")
	}
	var fi syscall.Stat_t
	if err := syscall.Lstat(copies[0], &fi); err != nil || fi.Uid != 100000 {
		t.Fatalf("the copy's /bin is owned by %d (%v), want 100000", fi.Uid, err)
	}
	layers, _ := filepath.Glob(filepath.Join(sharedRoot(t), "images", "overlay2", "*", "diff", "bin"))
	for _, l := range layers {
		if err := syscall.Lstat(l, &fi); err != nil || fi.Uid != 0 {
			t.Fatalf("an image layer's %s changed owner: %d (%v)", l, fi.Uid, err)
		}
	}
	noContainersLeft(t)
}

// An OCI bundle with linux.uidMappings and a user namespace: its process
// is uid 100000 to the host before start, and root inside; the mounts of
// runc's default config (/proc, /dev, devpts, mqueue, /sys, masked and
// read-only paths) all work in it, and exec enters it.
func TestOCIBundleWithAUserNamespace(t *testing.T) {
	usernsSetup(t)
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	dir := bundle(t, func(c *specs.Spec) {
		c.Linux.Namespaces = append(c.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		c.Linux.UIDMappings, c.Linux.GIDMappings = maps, maps
		c.Process.Args = []string{"sh", "-c", "id -u; cat /proc/self/gid_map | tr -s ' '; ls /dev/null /sys/kernel >/dev/null && echo mounted; (echo h > /proc/sysrq-trigger) 2>/dev/null || echo read-only"}
	})
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o711)
	out, r := create(t, dir, "ocius")
	if r.Code != 0 {
		t.Fatalf("create:\n%s", r)
	}
	defer ctr(t, opts{}, "delete", "--force", "ocius")
	st := ociState(t, "ocius")
	if uid := statusField(t, st.Pid, "Uid"); uid != "100000" {
		t.Fatalf("before start, from the host, its process is uid %s, want 100000", uid)
	}
	// exec into it before start (as runc allows): the bundle's user
	// namespace, entered by exec's child (usernsexec.go).
	if r := ctr(t, opts{}, "exec", "ocius", "--", "sh", "-c", "id -u; cat /proc/self/uid_map | tr -s ' '"); r.Code != 0 || r.Stdout != "0\n 0 100000 65536\n" {
		t.Errorf("exec into the bundle's user namespace:\n%s", r)
	}
	ctr(t, opts{}, "start", "ocius")
	waitStopped(t, "ocius")
	if got, _ := os.ReadFile(out); string(got) != "0\n 0 100000 65536\nmounted\nread-only\n" {
		t.Fatalf("inside: %q", got)
	}
	for want, edit := range map[string]func(*specs.Spec){
		"cannot be read: give linux.uidMappings and gidMappings": func(c *specs.Spec) {
			c.Linux.Namespaces = append(c.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/self/ns/user"})
		},
		"need a new user namespace": func(c *specs.Spec) { c.Linux.UIDMappings, c.Linux.GIDMappings = maps, maps },
	} {
		if _, r := create(t, bundle(t, edit), "ocius2"); r.Code == 0 || !strings.Contains(r.Stdout, want) {
			ctr(t, opts{}, "delete", "--force", "ocius2")
			t.Errorf("want create to fail saying %q:\n%s", want, r)
		}
	}
}
