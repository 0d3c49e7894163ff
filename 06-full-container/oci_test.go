package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/container-internals/workshop/internal/testkit"
)

// bundle makes an OCI bundle: a busybox root filesystem and the config.json
// that `spec` writes, changed by edit.
func bundle(t *testing.T, edit func(*specs.Spec)) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testkit.Unavailable(t, "busybox is needed for a bundle's root: apt-get install busybox-static")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "rootfs", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bin, "busybox"), bb, 0o755)
	for _, a := range []string{"sh", "cat", "echo", "id", "ps", "hostname", "sleep", "grep", "touch", "wc", "readlink", "ls", "mount", "true"} {
		os.Symlink("busybox", filepath.Join(bin, a))
	}
	for _, d := range []string{"proc", "dev", "sys", "tmp", "etc"} {
		os.MkdirAll(filepath.Join(dir, "rootfs", d), 0o755)
	}
	r := testkit.Run(t, opts{}, testkit.Stage(t, "06-full-container"), "spec", "--bundle", dir)
	if r.Code != 0 {
		t.Fatalf("spec:\n%s", r)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	var cfg specs.Spec
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("spec wrote an unreadable config.json: %v", err)
	}
	if edit != nil {
		edit(&cfg)
	}
	b, _ = json.Marshal(&cfg)
	os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	return dir
}

// create runs `create` with the container's output going to a file, as a
// shim hands runc its pipes; it returns that file's path.
func create(t *testing.T, dir, id string) (string, testkit.Result) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	f, _ := os.Create(out)
	defer f.Close()
	cmd := exec.Command(testkit.Stage(t, "06-full-container"), "--root", sharedRoot(t), "create", "--bundle", dir, "--pid-file", out+".pid", id)
	cmd.Stdout, cmd.Stderr = f, f
	err := cmd.Run()
	code := 0
	if err != nil {
		code = cmd.ProcessState.ExitCode()
	}
	b, _ := os.ReadFile(out)
	return out, testkit.Result{Stdout: string(b), Code: code}
}

func ociState(t *testing.T, id string) specs.State {
	t.Helper()
	r := ctr(t, opts{}, "state", id)
	var s specs.State
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &s) != nil {
		t.Fatalf("state %s:\n%s", id, r)
	}
	return s
}

func waitStopped(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ociState(t, id).Status == specs.StateStopped {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not stop", id)
}

func TestOCILifecycle(t *testing.T) {
	setup(t)
	dir := bundle(t, func(c *specs.Spec) {
		c.Process.Args = []string{"sh", "-c", "echo ran as PID $$ on $(hostname)"}
		c.Annotations = map[string]string{"org.example.course": "workshop"}
	})
	out, r := create(t, dir, "life")
	if r.Code != 0 {
		t.Fatalf("create:\n%s", r)
	}
	st := ociState(t, "life")
	if st.Status != specs.StateCreated || st.Pid <= 1 || st.Bundle != dir || st.Annotations["org.example.course"] != "workshop" {
		t.Fatalf("after create, want created with a pid, the bundle and the annotations: %+v", st)
	}
	// OCI IDs can be short: ps and the name check must cope (they sliced
	// every ID to 12 characters once).
	if r := ctr(t, opts{}, "ps", "-a"); r.Code != 0 || !strings.Contains(r.Stdout, "life") {
		t.Fatalf("ps -a with a 4-character ID:\n%s", r)
	}
	oneLine(t, ctr(t, opts{}, "run", "--name", "life", "--", "true"), `the name "life" is in use by container life`)
	pidFile, _ := os.ReadFile(out + ".pid")
	if string(pidFile) != strconv.Itoa(st.Pid) {
		t.Fatalf("--pid-file says %q, state says %d", pidFile, st.Pid)
	}
	time.Sleep(200 * time.Millisecond)
	if b, _ := os.ReadFile(out); len(b) != 0 {
		t.Fatalf("the program ran before start: %q", b)
	}
	oneLine(t, ctr(t, opts{}, "delete", "life"), "delete needs a stopped container")
	if r := ctr(t, opts{}, "start", "life"); r.Code != 0 {
		t.Fatalf("start:\n%s", r)
	}
	waitStopped(t, "life")
	if b, _ := os.ReadFile(out); string(b) != "ran as PID 1 on workshop\n" {
		t.Fatalf("the program's output did not arrive on create's stdout: %q", b)
	}
	oneLine(t, ctr(t, opts{}, "start", "life"), "start needs a created container")
	oneLine(t, ctr(t, opts{}, "kill", "life", "TERM"), "no process to signal")
	if r := ctr(t, opts{}, "delete", "life"); r.Code != 0 {
		t.Fatalf("delete:\n%s", r)
	}
	oneLine(t, ctr(t, opts{}, "state", "life"), "does not exist")
	noContainersLeft(t)
}

func TestOCIKillAndForcedDelete(t *testing.T) {
	setup(t)
	dir := bundle(t, func(c *specs.Spec) {
		c.Process.Args = []string{"sh", "-c", "trap 'echo got TERM; exit 0' TERM; while :; do sleep 0.1; done"}
	})
	out, r := create(t, dir, "sleeper")
	if r.Code != 0 {
		t.Fatalf("create:\n%s", r)
	}
	_, dup := create(t, dir, "sleeper")
	if dup.Code == 0 || !strings.Contains(dup.Stdout, "exists already") {
		t.Fatalf("a second create with the same ID must fail:\n%s", dup)
	}
	ctr(t, opts{}, "start", "sleeper")
	if s := ociState(t, "sleeper"); s.Status != specs.StateRunning {
		t.Fatalf("want running after start: %+v", s)
	}
	oneLine(t, ctr(t, opts{}, "delete", "sleeper"), "running")
	oneLine(t, ctr(t, opts{}, "kill", "sleeper", "NOSUCHSIG"), "invalid signal")
	time.Sleep(200 * time.Millisecond)
	if r := ctr(t, opts{}, "kill", "sleeper", "TERM"); r.Code != 0 {
		t.Fatalf("kill TERM:\n%s", r)
	}
	waitStopped(t, "sleeper")
	if b, _ := os.ReadFile(out); !strings.Contains(string(b), "got TERM") {
		t.Fatalf("TERM did not reach the program: %q", b)
	}
	ctr(t, opts{}, "delete", "sleeper")
	// delete --force on a running one.
	create(t, dir, "forced")
	ctr(t, opts{}, "start", "forced")
	if r := ctr(t, opts{}, "delete", "--force", "forced"); r.Code != 0 {
		t.Fatalf("delete --force:\n%s", r)
	}
	oneLine(t, ctr(t, opts{}, "start", "no-such-id"), "does not exist")
	_, missing := create(t, filepath.Join(t.TempDir(), "nothing"), "nobundle")
	if missing.Code == 0 || !strings.Contains(missing.Stdout, "no bundle") {
		t.Fatalf("create without a bundle must fail:\n%s", missing)
	}
	noContainersLeft(t)
}

func TestOCIConfigFieldsAreHonoured(t *testing.T) {
	setup(t)
	// A detached container whose network namespace the bundle will join.
	owner := detached(t, "netowner", "--", "sleep", "100")
	wantNet, _ := os.Readlink("/proc/" + strconv.Itoa(owner.Pid) + "/ns/net")

	data := t.TempDir()
	os.WriteFile(filepath.Join(data, "f"), []byte("from the host\n"), 0o644)
	os.Chmod(data, 0o777)
	mem, pids, quota, period := int64(64<<20), int64(20), int64(20000), uint64(100000)
	dir := bundle(t, func(c *specs.Spec) {
		c.Hostname = "ocibox"
		c.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{2000}}
		c.Process.Capabilities = &specs.LinuxCapabilities{
			Bounding: []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"}, Permitted: []string{"CAP_NET_BIND_SERVICE"},
			Effective: []string{"CAP_NET_BIND_SERVICE"}, Inheritable: []string{"CAP_NET_BIND_SERVICE"}, Ambient: []string{"CAP_NET_BIND_SERVICE"}}
		c.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 64, Soft: 64}}
		c.Mounts = append(c.Mounts,
			specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "size=1m"}},
			specs.Mount{Destination: "/data", Type: "bind", Source: data, Options: []string{"rbind", "ro"}},
			specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "nodev", "noexec"}})
		c.Linux.Sysctl = map[string]string{"net.ipv4.ip_unprivileged_port_start": "99"}
		for i, ns := range c.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				c.Linux.Namespaces[i].Path = "/proc/" + strconv.Itoa(owner.Pid) + "/ns/net"
			}
		}
		one, three := int64(1), int64(3)
		c.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &mem},
			Pids: &specs.LinuxPids{Limit: pids}, CPU: &specs.LinuxCPU{Quota: &quota, Period: &period},
			// Docker's shape: deny everything, then allow /dev/null (the
			// runtime adds its own nodes after these, as runc does).
			Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Major: &one, Minor: &three, Access: "rwm"}}}
		c.Process.Args = []string{"sh", "-c", strings.Join([]string{
			"hostname", "id -u", "id -G", "ulimit -n",
			"grep -E '^Cap(Bnd|Eff|Amb)' /proc/self/status | tr -s '\\t' ' '",
			"grep ' /scratch ' /proc/self/mountinfo | grep -c tmpfs",
			"cat /data/f", "touch /data/new 2>/dev/null && echo DATA-WRITABLE",
			"touch /rootfile 2>/dev/null && echo ROOT-WRITABLE",
			"cat /proc/kcore 2>/dev/null | wc -c",
			"echo 1 2>/dev/null > /proc/sys/kernel/domainname && echo PROCSYS-WRITABLE",
			"cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
			"readlink /proc/self/ns/net",
			// v1: a memory hierarchy; v2: the container's own group is the
			// root, and a non-root group has memory.max (the real root has not).
			"ls /sys/fs/cgroup | grep -c -E '^memory(\\.max)?$'",
		}, "; ")}
	})
	out, r := create(t, dir, "fields")
	if r.Code != 0 {
		t.Fatalf("create:\n%s", r)
	}
	defer ctr(t, opts{}, "delete", "--force", "fields")
	// The cgroup limits are in place before the program runs.
	var st State
	b, _ := os.ReadFile(filepath.Join(sharedRoot(t), "containers", "fields", "state.json"))
	json.Unmarshal(b, &st)
	// The files of cgroup v1 where they exist, else v2's.
	limits := map[string]string{filepath.Join(st.CgroupPaths["pids"], "pids.max"): "20"}
	if v1 := filepath.Join(st.CgroupPaths["memory"], "memory.limit_in_bytes"); fileExists(v1) {
		limits[v1] = "67108864"
		limits[filepath.Join(st.CgroupPaths["cpu"], "cpu.cfs_quota_us")] = "20000"
	} else {
		limits[filepath.Join(st.CgroupPaths["memory"], "memory.max")] = "67108864"
		limits[filepath.Join(st.CgroupPaths["cpu"], "cpu.max")] = "20000 100000"
	}
	for file, want := range limits {
		if got, err := os.ReadFile(file); err != nil || strings.TrimSpace(string(got)) != want {
			t.Errorf("%s = %q, want %s (%v)", file, got, want, err)
		}
	}
	ctr(t, opts{}, "start", "fields")
	waitStopped(t, "fields")
	got, _ := os.ReadFile(out)
	want := []string{"ocibox", "1000", "1000 2000", "64",
		"CapEff: 0000000000000400", "CapBnd: 0000000000000420", "CapAmb: 0000000000000400",
		"1", "from the host", "0", "99", wantNet, "1"}
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("inside the container:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestOCIUnsupportedFieldsAreRefused(t *testing.T) {
	setup(t)
	cases := map[string]func(*specs.Spec){
		"linux.seccomp.listenerPath": func(c *specs.Spec) {
			c.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/agent.sock"}
		},
		"linux.seccomp.syscalls[0].action": func(c *specs.Spec) {
			c.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActNotify}}}
		},
		"linux.seccomp.architectures[0]": func(c *specs.Spec) {
			c.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchS390X}}
		},
		"linux.seccomp.syscalls[0].args[0].op": func(c *specs.Spec) {
			c.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"},
				Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Op: "SCMP_CMP_ABOUT"}}}}}
		},
		"linux.uidMappings": func(c *specs.Spec) { c.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}} },
		"linux.resources.blockIO.weightDevice": func(c *specs.Spec) {
			c.Linux.Resources = &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{{}}}}
		},
		"linux.namespaces[0].path: /etc/hostname is not a namespace file": func(c *specs.Spec) { c.Linux.Namespaces[0].Path = "/etc/hostname" },
		"linux.namespaces[0].path: /proc/self/ns/net is a namespace of another kind": func(c *specs.Spec) {
			c.Linux.Namespaces[0].Path = "/proc/self/ns/net"
		},
		"process.capabilities.bounding": func(c *specs.Spec) { c.Process.Capabilities.Bounding = []string{"CAP_FLY"} },
		"process.rlimits[0].type":       func(c *specs.Spec) { c.Process.Rlimits[0].Type = "RLIMIT_WISHES" },
		"option \"nosuchopt\"":          func(c *specs.Spec) { c.Mounts[0].Options = append(c.Mounts[0].Options, "nosuchopt") },
		"linux.resources.cpu.burst": func(c *specs.Spec) {
			b := uint64(1000)
			c.Linux.Resources = &specs.LinuxResources{CPU: &specs.LinuxCPU{Burst: &b}}
		},
		"root.path":                          func(c *specs.Spec) { c.Root.Path = "no-such-rootfs" },
		"mounts needs a new mount namespace": func(c *specs.Spec) { withoutNamespace(c, specs.MountNamespace) },
	}
	for field, edit := range cases {
		dir := bundle(t, edit)
		_, r := create(t, dir, "refused")
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if r.Code == 0 || len(lines) != 1 || !strings.Contains(lines[0], field) {
			t.Errorf("%s: want create to fail with one line naming it:\n%s", field, r)
			ctr(t, opts{}, "delete", "--force", "refused")
		}
	}
	noContainersLeft(t)
	if ents, _ := filepath.Glob("/sys/fs/cgroup/*/workshop/refused"); len(ents) > 0 {
		t.Fatalf("a refused create left cgroups: %v", ents)
	}
}

func TestOCISpecRefusesToOverwrite(t *testing.T) {
	setup(t)
	dir := t.TempDir()
	bin := testkit.Stage(t, "06-full-container")
	if r := testkit.Run(t, opts{}, bin, "spec", "--bundle", dir); r.Code != 0 {
		t.Fatalf("spec:\n%s", r)
	}
	oneLine(t, testkit.Run(t, opts{}, bin, "spec", "--bundle", dir), "exists already")
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if !regexp.MustCompile(`"ociVersion": "1\.`).Match(b) {
		t.Fatalf("config.json lacks ociVersion:\n%s", b)
	}
}

// What containerd's shim does with an OCI runtime besides the five verbs:
// --log (JSON) for errors, `ps --format json ID` for `docker top`, and
// `exec --process FILE --detach --pid-file F ID` for `docker exec -d`.
func TestOCICallersExtras(t *testing.T) {
	setup(t)
	dir := bundle(t, func(c *specs.Spec) { c.Process.Args = []string{"sleep", "100"} })
	if _, r := create(t, dir, "shimmed"); r.Code != 0 {
		t.Fatalf("create:\n%s", r)
	}
	defer ctr(t, opts{}, "delete", "--force", "shimmed")
	ctr(t, opts{}, "start", "shimmed")
	st := ociState(t, "shimmed")

	logPath := filepath.Join(t.TempDir(), "log.json")
	_, dup := create(t, dir, "shimmed") // fails: the ID is taken
	r := ctr(t, opts{}, "--log", logPath, "--log-format", "json", "start", "shimmed")
	if dup.Code == 0 || r.Code == 0 {
		t.Fatalf("a second create and a second start must fail:\n%s\n%s", dup, r)
	}
	var entry map[string]string
	b, _ := os.ReadFile(logPath)
	if json.Unmarshal(b, &entry) != nil || entry["level"] != "error" || !strings.Contains(entry["msg"], "start needs a created container") {
		t.Fatalf("--log --log-format json should hold the error as JSON: %q", b)
	}
	oneLine(t, ctr(t, opts{}, "--systemd-cgroup", "state", "shimmed"), "cgroupfs")

	r = ctr(t, opts{}, "ps", "--format", "json", "shimmed")
	var pids []int
	if json.Unmarshal([]byte(r.Stdout), &pids) != nil || len(pids) != 1 || pids[0] != st.Pid {
		t.Fatalf("ps --format json should list the container's one process (%d):\n%s", st.Pid, r)
	}

	proc := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(proc, []byte(`{"user":{"uid":0,"gid":0},"args":["sh","-c","echo exec PID $$ on $(hostname)"],"env":["PATH=/bin"],"cwd":"/"}`), 0o644)
	r = ctr(t, opts{}, "exec", "--process", proc, "shimmed")
	if r.Code != 0 || !regexp.MustCompile(`^exec PID \d+ on workshop\n$`).MatchString(r.Stdout) {
		t.Fatalf("exec --process:\n%s", r)
	}
	os.WriteFile(proc, []byte(`{"user":{"uid":0,"gid":0},"args":["sleep","50"],"env":["PATH=/bin"],"cwd":"/"}`), 0o644)
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	// (Not through ctr: the detached process keeps its stdio, and a pipe
	// would make the caller wait for it.)
	detached := exec.Command(testkit.Stage(t, "06-full-container"), "--root", sharedRoot(t), "exec", "--process", proc, "--detach", "--pid-file", pidFile, "shimmed")
	start := time.Now()
	if err := detached.Run(); err != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("exec --detach should return at once: %v after %v", err, time.Since(start))
	}
	b, _ = os.ReadFile(pidFile)
	if r = ctr(t, opts{}, "ps", "--format", "json", "shimmed"); !strings.Contains(r.Stdout, string(b)) || len(b) == 0 {
		t.Fatalf("the detached exec's PID %q should be one of the container's: %s", b, r.Stdout)
	}
}

// What Docker writes into every config.json even when it asks for nothing:
// an empty hooks object, AppArmor "unconfined" (with --security-opt
// apparmor=unconfined), a blockIO of weight 0, cpu shares 0, and its device
// cgroup rules. All accepted, and the device rules enforced.
func TestOCIDockerDefaultsAreAccepted(t *testing.T) {
	setup(t)
	zero16, zero64, one, three := uint16(0), uint64(0), int64(1), int64(3)
	dir := bundle(t, func(c *specs.Spec) {
		c.Hooks = &specs.Hooks{}
		c.Process.ApparmorProfile = "unconfined"
		c.Process.Args = []string{"sh", "-c", "echo x > /dev/null && echo null-ok; mknod /dev/kmsg c 1 11; (echo workshop-device-cgroup-probe > /dev/kmsg) 2>&1 | grep -c 'not permitted'"}
		c.Linux.Resources = &specs.LinuxResources{
			BlockIO: &specs.LinuxBlockIO{Weight: &zero16},
			CPU:     &specs.LinuxCPU{Shares: &zero64},
			Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"},
				{Allow: true, Type: "c", Access: "m"}, {Allow: true, Type: "c", Major: &one, Minor: &three, Access: "rwm"}},
		}
		c.Process.Capabilities.Bounding = append(c.Process.Capabilities.Bounding, "CAP_MKNOD")
	})
	got, _ := runBundle(t, testkit.Stage(t, "06-full-container"), sharedRoot(t), dir, "dockerish")
	if got != "null-ok\n1\n" {
		t.Fatalf("want /dev/null usable and a made c 1:11 refused: %q", got)
	}
}

// A bundle whose rootfs holds a symlink pointing at a host path must not
// make the runtime write there: mount targets resolve inside the root.
func TestOCIMountTargetSymlinkStaysInsideTheRoot(t *testing.T) {
	setup(t)
	escape := filepath.Join(os.TempDir(), "workshop-escape-proof-"+strconv.Itoa(os.Getpid()))
	os.Remove(escape)
	data := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(data, []byte("127.0.0.1 bound\n"), 0o644)
	dir := bundle(t, func(c *specs.Spec) {
		c.Mounts = append(c.Mounts, specs.Mount{Destination: "/etc/hosts", Type: "bind", Source: data, Options: []string{"bind", "ro"}})
		c.Process.Args = []string{"cat", "/etc/hosts"}
	})
	if err := os.Symlink(escape, filepath.Join(dir, "rootfs", "etc", "hosts")); err != nil {
		t.Fatal(err)
	}
	got, _ := runBundle(t, testkit.Stage(t, "06-full-container"), sharedRoot(t), dir, "symlinked")
	if _, err := os.Lstat(escape); err == nil {
		os.Remove(escape)
		t.Fatalf("the runtime created %s on the host through the image's symlink", escape)
	}
	if got != "127.0.0.1 bound\n" {
		t.Fatalf("inside, /etc/hosts should lead to the bound file: %q", got)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
