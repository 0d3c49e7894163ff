package main

// Docker's default seccomp profile is a fact about Docker: the workshop's
// copy (seccomp.DockerDefault) is checked against what the installed
// Docker (Debian 12's docker.io, 20.10.24) really sends a runtime. A
// private dockerd, in a mount namespace of its own with a read-only
// /proc/sys (so that neither it nor its containerd can change a host-wide
// kernel parameter) and its own tmpfs on /run and /etc/docker, no bridge
// and no iptables, is given a fake runtime that keeps the config.json of
// the container it is asked to create and fails. Everything it made goes
// with its mount namespace and the test's temporary directory.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/container-internals/workshop/06-full-container/seccomp"
	"github.com/container-internals/workshop/internal/testkit"
)

// Debian's docker.io puts the daemon in /usr/sbin and the client in
// /usr/bin (another docker client may come first on PATH).
const (
	dockerd      = "/usr/sbin/dockerd"
	dockerClient = "/usr/bin/docker"
)

// fakeRuntime keeps the bundle's config.json of a create, and fails it.
const fakeRuntime = `#!/bin/sh
verb=""; bundle=""; log=/dev/null
while [ $# -gt 0 ]; do
	case "$1" in
	--bundle|-b) bundle="$2"; shift ;;
	--log) log="$2"; shift ;;
	create|delete|kill|start|state) [ -z "$verb" ] && verb="$1" ;;
	esac
	shift
done
if [ "$verb" = create ]; then
	n=$(ls CAPTURED | wc -l)
	cp "$bundle/config.json" CAPTURED/config-$n.json
	echo '{"level":"error","msg":"workshop: config.json captured, refusing to create"}' >> "$log"
	exit 1
fi
exit 0
`

type privateDockerd struct {
	t      *testing.T
	dir    string
	sock   string
	cmd    *exec.Cmd
	client *http.Client
}

// dockerdOptions: what a test's private dockerd has besides the fake
// runtime.
type dockerdOptions struct {
	// network: Docker's default bridge network, NAT and published ports,
	// in a network namespace of the daemon's own (its docker0, veths and
	// iptables rules live and die there; the host's are never touched).
	network  bool
	runtimes map[string]string // name -> path
	// cgroupParent: where its containers' cgroups go (cgroupfs driver).
	cgroupParent string
	// config: more of daemon.json (a chapter's own, say), merged in.
	config map[string]any
	// etc: files written into a copy of the host's /etc, bound over /etc
	// in the daemon's mount namespace only (a user and its /etc/subuid
	// range for userns-remap: the host's /etc is never written).
	etc map[string]string
}

func startPrivateDockerd(t *testing.T, o dockerdOptions) *privateDockerd {
	t.Helper()
	for _, p := range []string{dockerd, dockerClient, "/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2"} {
		if _, err := os.Stat(p); err != nil {
			testkit.Unavailable(t, "Debian's docker.io is needed to compare the default profile with Docker's: apt-get install docker.io ("+p+" is missing)")
		}
	}
	if out, _ := exec.Command(dockerd, "--version").Output(); !strings.Contains(string(out), "20.10.24") {
		t.Fatalf("the default profile is Docker 20.10.24's; %s is %s: compare the profile with this Docker's and update seccomp.DockerDefault and this check together", dockerd, strings.TrimSpace(string(out)))
	}
	// Short: a unix socket's path has at most 107 bytes.
	dir, err := os.MkdirTemp("", "wsdk-")
	if err != nil {
		t.Fatal(err)
	}
	d := &privateDockerd{t: t, dir: dir, sock: filepath.Join(dir, "docker.sock")}
	t.Cleanup(d.stop)
	captured := filepath.Join(dir, "captured")
	os.MkdirAll(captured, 0o755)
	fake := filepath.Join(dir, "fake-runtime")
	os.WriteFile(fake, []byte(strings.ReplaceAll(fakeRuntime, "CAPTURED", captured)), 0o755)
	runtimes := map[string]any{"fake": map[string]string{"path": fake}}
	for name, path := range o.runtimes {
		runtimes[name] = map[string]string{"path": path}
	}
	cfg := map[string]any{}
	for k, v := range o.config {
		cfg[k] = v
	}
	if rt, ok := cfg["runtimes"].(map[string]any); ok {
		for name, v := range rt {
			runtimes[name] = v
		}
	}
	cfg["runtimes"] = runtimes
	if o.cgroupParent != "" {
		cfg["exec-opts"], cfg["cgroup-parent"] = []string{"native.cgroupdriver=cgroupfs"}, o.cgroupParent
	}
	b, _ := json.Marshal(cfg)
	os.WriteFile(filepath.Join(dir, "daemon.json"), b, 0o644)

	// In a mount namespace of its own: /proc/sys read-only (dockerd would
	// raise kernel.keys.root_maxkeys, and the bridge driver turn on
	// ip_forward), and tmpfs on /run (containerd's shim sockets) and
	// /etc/docker (dockerd's key.json).
	//
	// With the network, in a network namespace of its own too: there
	// /proc/sys/net is the namespace's own (ip_forward included), and is
	// left writable.
	netArgs, unshare, netSys := "--bridge=none --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false", []string{"--mount"}, ""
	if o.network {
		netArgs, unshare = "--ip6tables=false --userland-proxy=true", []string{"--mount", "--net"}
		netSys = "mount --bind /proc/sys/net /proc/sys/net\nip link set lo up\n"
	}
	if _, remap := o.config["userns-remap"]; remap {
		os.Chmod(dir, 0o711) // the remapped root passes through to its layers
		// A user namespace may mount a proc only where one is fully
		// visible already: the read-only /proc/sys bound below hides
		// part of /proc, so a second, untouched, is mounted beside it.
		netSys += fmt.Sprintf("mkdir -p %[1]s/proc && mount -t proc proc %[1]s/proc\n", dir)
	}
	if len(o.etc) > 0 {
		etc := filepath.Join(dir, "etc")
		if out, err := exec.Command("cp", "-a", "/etc", etc).CombinedOutput(); err != nil {
			t.Fatalf("copying /etc: %v: %s", err, out)
		}
		for name, content := range o.etc {
			os.WriteFile(filepath.Join(etc, name), []byte(content), 0o644)
		}
		netSys += fmt.Sprintf("mount --bind %s /etc\n", etc)
	}
	script := fmt.Sprintf(`set -e
mount --make-rprivate /
mount --bind /proc/sys /proc/sys
%smount -o remount,bind,ro /proc/sys
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /etc/docker
exec %s --config-file %s/daemon.json --data-root %s/data --exec-root %s/exec --pidfile %s/docker.pid -H unix://%s \
	%s --storage-driver=vfs --log-level=warn`,
		netSys, dockerd, dir, dir, dir, dir, d.sock, netArgs)
	d.cmd = exec.Command("unshare", append(unshare, "--propagation", "private", "sh", "-c", script)...)
	log, _ := os.Create(filepath.Join(dir, "dockerd.log"))
	d.cmd.Stdout, d.cmd.Stderr = log, log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Docker loads its AppArmor profile into the kernel when AppArmor is
	// on, unless it believes it runs in a container.
	d.cmd.Env = append(os.Environ(), "container=workshop-test")
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting dockerd: %v", err)
	}
	d.client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
	}}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := d.client.Get("http://docker/_ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return d
			}
		}
		if time.Now().After(deadline) || d.cmd.ProcessState != nil {
			b, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("the private dockerd did not answer on %s:\n%s", d.sock, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// docker runs Debian's docker client against the private daemon.
func (d *privateDockerd) docker(stdin string, args ...string) (string, error) {
	cmd := exec.Command(dockerClient, append([]string{"-H", "unix://" + d.sock}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(d.dir, "client"))
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			return "", err
		}
		defer f.Close()
		cmd.Stdin = f
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// stop ends dockerd (which ends its containerd) and removes its files;
// whatever of theirs still runs is killed by PID.
func (d *privateDockerd) stop() {
	if d.cmd != nil && d.cmd.Process != nil && d.cmd.ProcessState == nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = d.cmd.Process.Kill()
			<-done
		}
	}
	for _, pid := range processesUnder(d.dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for i := 0; i < 50 && len(processesUnder(d.dir)) > 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if left := processesUnder(d.dir); len(left) > 0 {
		d.t.Errorf("processes of the private dockerd still run: %v", left)
	}
	_ = os.RemoveAll(d.dir)
}

// processesUnder lists the processes whose command line names dir
// (dockerd, its containerd and shims all do).
func processesUnder(dir string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.Contains(string(b), dir) {
			out = append(out, pid)
		}
	}
	return out
}

func TestDockerSendsTheWorkshopsDefaultProfile(t *testing.T) {
	setup(t)
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testkit.Unavailable(t, "busybox is needed for an image: apt-get install busybox-static")
	}
	d := startPrivateDockerd(t, dockerdOptions{})
	// An image made offline: busybox alone, imported from a tar.
	tarPath := filepath.Join(d.dir, "busybox.tar")
	root := filepath.Join(d.dir, "image")
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.WriteFile(filepath.Join(root, "bin", "busybox"), bb, 0o755)
	os.Symlink("busybox", filepath.Join(root, "bin", "true"))
	if out, err := exec.Command("tar", "-C", root, "-cf", tarPath, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	if out, err := d.docker(tarPath, "import", "-", "workshop-seccomp:test"); err != nil {
		t.Fatalf("docker import: %v: %s", err, out)
	}
	runs := [][]string{nil, {"--cap-add", "SYS_ADMIN", "--cap-add", "SYS_PTRACE", "--cap-add", "SYS_TIME", "--cap-add", "DAC_READ_SEARCH", "--cap-drop", "SYS_CHROOT"}}
	for i, extra := range runs {
		args := append(append([]string{"run", "--rm", "--runtime=fake", "--network", "none"}, extra...), "workshop-seccomp:test", "/bin/true")
		out, err := d.docker("", args...)
		if err == nil || !strings.Contains(out, "config.json captured") {
			t.Fatalf("docker %s: want the fake runtime's refusal, got %v:\n%s", strings.Join(args, " "), err, out)
		}
		b, err := os.ReadFile(filepath.Join(d.dir, "captured", fmt.Sprintf("config-%d.json", i)))
		if err != nil {
			t.Fatalf("the fake runtime kept no config.json: %v", err)
		}
		var cfg specs.Spec
		if err := json.Unmarshal(b, &cfg); err != nil || cfg.Linux == nil || cfg.Linux.Seccomp == nil || cfg.Process.Capabilities == nil {
			t.Fatalf("Docker's config.json has no linux.seccomp (%v):\n%.2000s", err, b)
		}
		ours, err := seccomp.Render(seccomp.DockerDefault(), cfg.Process.Capabilities.Bounding)
		if err != nil {
			t.Fatal(err)
		}
		// Both through JSON, as a runtime reads them.
		var want, got specs.LinuxSeccomp
		mustRoundTrip(t, ours, &want)
		mustRoundTrip(t, cfg.Linux.Seccomp, &got)
		if !reflect.DeepEqual(want, got) {
			t.Errorf("with capabilities %v, Docker sends a profile that is not seccomp.DockerDefault's:\n%s",
				cfg.Process.Capabilities.Bounding, profileDiff(&want, &got))
		}
		if len(got.Syscalls) < 10 || len(got.Syscalls[0].Names) < 300 {
			t.Errorf("Docker's profile looks too small to be its default: %d rules", len(got.Syscalls))
		}
	}
}

func mustRoundTrip(t *testing.T, in any, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err == nil {
		err = json.Unmarshal(b, out)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// profileDiff says where two profiles part.
func profileDiff(want, got *specs.LinuxSeccomp) string {
	var s strings.Builder
	if want.DefaultAction != got.DefaultAction || !reflect.DeepEqual(want.Architectures, got.Architectures) {
		fmt.Fprintf(&s, "default %s %v, Docker's %s %v\n", want.DefaultAction, want.Architectures, got.DefaultAction, got.Architectures)
	}
	n := len(want.Syscalls)
	if len(got.Syscalls) > n {
		n = len(got.Syscalls)
	}
	for i := 0; i < n; i++ {
		var w, g any = "(none)", "(none)"
		if i < len(want.Syscalls) {
			w = want.Syscalls[i]
		}
		if i < len(got.Syscalls) {
			g = got.Syscalls[i]
		}
		if !reflect.DeepEqual(w, g) {
			wb, _ := json.Marshal(w)
			gb, _ := json.Marshal(g)
			fmt.Fprintf(&s, "rule %d:\n  ours:     %.600s\n  Docker's: %.600s\n", i, wb, gb)
		}
	}
	return s.String()
}
