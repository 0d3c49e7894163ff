package main

// The real clients: Debian's Docker (20.10) and containerd (1.6) run their
// ordinary containers on this runtime, with their defaults and only
// `--runtime=workshop` added. The daemon is a private one
// (docker_seccomp_test.go), in network and mount namespaces of its own:
// its docker0 bridge, veths, iptables rules and published ports live and
// die there, and traffic never leaves this machine.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-internals/workshop/03-cgroups-cpu/cgroup"
	"github.com/container-internals/workshop/internal/testkit"
)

// busyboxImage makes a root with busybox and a link per applet, imports
// it as image, and returns the root.
func busyboxImage(t *testing.T, d *privateDockerd, image string) string {
	t.Helper()
	bb := "/bin/busybox"
	if _, err := os.Stat(bb); err != nil {
		testkit.Unavailable(t, "busybox is needed for an image: apt-get install busybox-static")
	}
	root := filepath.Join(d.dir, "bbroot")
	for _, dir := range []string{"bin", "etc", "tmp", "proc", "sys", "dev"} {
		os.MkdirAll(filepath.Join(root, dir), 0o755)
	}
	os.Chmod(filepath.Join(root, "tmp"), 0o1777)
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755)
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" {
			os.Symlink("busybox", filepath.Join(root, "bin", applet))
		}
	}
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "group"), []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "motd"), []byte("served by busybox httpd\n"), 0o644)
	tarPath := filepath.Join(d.dir, "bbroot.tar")
	if out, err := exec.Command("tar", "-C", root, "-cf", tarPath, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	if out, err := d.docker(tarPath, "import", "-", image); err != nil {
		t.Fatalf("docker import: %v: %s", err, out)
	}
	return root
}

// exitCode is the docker client's exit status (it passes on the
// container's).
func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestDockerRunsItsContainersOnTheWorkshopRuntime(t *testing.T) {
	setup(t)
	workshop := testkit.Stage(t, "06-full-container")
	parent := fmt.Sprintf("/wsdk-%d", os.Getpid())
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs last: after the daemon has stopped,
	// its containers' parent cgroup must be empty, and goes.
	t.Cleanup(func() { removeEmptyParent(t, h, parent) })
	d := startPrivateDockerd(t, dockerdOptions{network: true, runtimes: map[string]string{"workshop": workshop}, cgroupParent: parent})
	root := busyboxImage(t, d, "wsbb:test")
	dk := func(args ...string) (string, error) { return d.docker("", args...) }
	must := func(args ...string) string {
		t.Helper()
		out, err := dk(args...)
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	t.Run("default run: its bridge network (a prestart hook), its seccomp profile, the exit status", func(t *testing.T) {
		out, err := dk("run", "--rm", "--runtime=workshop", "wsbb:test", "sh", "-c",
			`echo hello; ip -4 -o addr show eth0; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; exit 7`)
		if exitCode(err) != 7 || !strings.Contains(out, "hello\n") || !strings.Contains(out, "inet 172.17.") ||
			!strings.Contains(out, "Seccomp:\t2") {
			t.Fatalf("want hello, an address on docker0 (172.17/16), the filter on, exit 7; got %v:\n%s", err, out)
		}
	})

	t.Run("the same container as runc gives", func(t *testing.T) {
		probe := `grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|Seccomp|NoNewPrivs):' /proc/self/status; id; cat /proc/self/oom_score_adj; ` +
			`ls /dev | tr '\n' ' '; echo; ls /dev/pts /dev/shm /dev/mqueue | tr '\n' ' '; echo; ` +
			`hostname | wc -c; cat /etc/hostname | wc -c; grep -c . /etc/hosts; ulimit -n; ` +
			`(touch /proc/sysrq-trigger; echo x > /sys/kernel/profiling) 2>&1; cat /proc/kcore 2>&1 | head -c 20 | wc -c`
		var got [2]string
		for i, runtime := range []string{"runc", "workshop"} {
			out, err := dk("run", "--rm", "--runtime="+runtime, "wsbb:test", "sh", "-c", probe)
			if err != nil {
				t.Fatalf("%s: %v\n%s", runtime, err, out)
			}
			got[i] = out
		}
		if got[0] != got[1] {
			t.Errorf("the container differs from runc's:\nrunc:\n%s\nworkshop:\n%s", got[0], got[1])
		}
	})

	t.Run("Docker's flags: the same container as runc makes", func(t *testing.T) {
		vol := filepath.Join(d.dir, "vol")
		os.MkdirAll(vol, 0o755)
		os.WriteFile(filepath.Join(vol, "f"), []byte("from the host\n"), 0o644)
		for _, c := range []struct{ flags, probe string }{
			{"--network none", "ip -o link | cut -d: -f2"},
			{"--network host", "ip -o link show docker0 | wc -l"},
			{"--user 65534:65534 --group-add 10", "id"},
			{"--read-only", "touch /x 2>&1; touch /tmp/x 2>&1"},
			{"--cap-drop ALL --cap-add NET_ADMIN --cap-add SYS_TIME", "grep ^Cap /proc/self/status"},
			{"-v " + vol + ":/vol:ro", "cat /vol/f; touch /vol/g 2>&1"},
			{"--tmpfs /scratch:size=1m", "df -k /scratch | tail -1 | tr -s ' ' | cut -d' ' -f2; grep -c ' /scratch tmpfs rw,nosuid,nodev,noexec' /proc/mounts"},
			{"--sysctl net.ipv4.ip_forward=1 --sysctl kernel.msgmax=4096", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax"},
			{"--hostname hal --add-host friend:10.9.8.7", "hostname; cat /etc/hostname; grep friend /etc/hosts"},
			{"--init", "ps -o args"},
			{"--shm-size 8m", "df -k /dev/shm | tail -1 | tr -s ' ' | cut -d' ' -f2"},
			{"--pid host", "cat /proc/1/comm"},
			{"--ipc host", "readlink /proc/self/ns/ipc"},
			{"-e GREETING=hi -w /tmp", "echo $GREETING; pwd"},
			{"--security-opt seccomp=unconfined --security-opt no-new-privileges", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"},
			{"--ulimit nofile=100:200", "ulimit -n; ulimit -Hn"},
			{"--oom-score-adj 500", "cat /proc/self/oom_score_adj"},
			// The container reads its own limits at /sys/fs/cgroup (v1 paths, then v2's).
			{"-m 32m --cpu-shares 512 --cpuset-cpus 0 --pids-limit 9", "cd /sys/fs/cgroup; " +
				"cat memory/memory.limit_in_bytes cpu/cpu.shares cpuset/cpuset.cpus pids/pids.max 2>/dev/null || cat memory.max cpu.weight cpuset.cpus pids.max"},
		} {
			var got [2]string
			for i, runtime := range []string{"runc", "workshop"} {
				args := append(append([]string{"run", "--rm", "--runtime=" + runtime}, strings.Fields(c.flags)...), "wsbb:test", "sh", "-c", c.probe)
				out, err := dk(args...)
				got[i] = fmt.Sprintf("%s(exit %d)", out, exitCode(err))
			}
			if got[0] != got[1] {
				t.Errorf("docker run %s: runc gives\n%s\nthe workshop\n%s", c.flags, got[0], got[1])
			}
		}
	})

	t.Run("docker run -it and docker exec -it: a terminal through the console socket", func(t *testing.T) {
		u := newUserTTY(t, 30, 100)
		u.env = []string{"DOCKER_CONFIG=" + filepath.Join(d.dir, "client")}
		u.startProgram(dockerClient, "-H", "unix://"+d.sock, "run", "-it", "--name", "shell", "--runtime=workshop", "wsbb:test", "sh")
		defer dk("rm", "-f", "shell")
		u.expect(u.typ("tty\r"), `/dev/pts/0\r\n`)
		// Docker sends no consoleSize: its client sets the size once the
		// container runs, and again on each SIGWINCH.
		size := func(want string) {
			eventually(t, "the window size "+want+" inside", func() bool {
				mark := u.typ("stty size\r")
				time.Sleep(200 * time.Millisecond)
				return strings.Contains(u.output()[mark:], want)
			})
		}
		size("30 100")
		u.resize(40, 120)
		size("40 120")
		mark := u.typ("sleep 100; echo interrupted\r")
		waitForCommand(t, "sleep\x00100")
		u.typ("\x03") // Ctrl-C, to the container's foreground job
		u.expect(mark, `interrupted`)

		// docker exec -it: a second terminal, the next pty of the container's devpts.
		x := newUserTTY(t, 24, 80)
		x.env = u.env
		x.startProgram(dockerClient, "-H", "unix://"+d.sock, "exec", "-it", "shell", "sh")
		x.expect(x.typ("tty; echo $$ is not 1\r"), `/dev/pts/1\r\n[0-9]+ is not 1`)
		x.typ("exit 4\r")
		if code := x.wait(); code != 4 {
			t.Errorf("docker exec -it: exit status %d, want 4", code)
		}
		u.typ("exit 3\r")
		if code := u.wait(); code != 3 {
			t.Errorf("docker run -it: exit status %d, want 3; the terminal shows:\n%q", code, u.output())
		}
	})

	t.Run("docker attach: to a detached container's stdin and output", func(t *testing.T) {
		// It answers the line it reads, again and again: Docker's attach
		// may subscribe to the output a moment after it has passed the
		// input on, and a single answer can come before that.
		must("run", "-d", "-i", "--name", "att", "--runtime=workshop", "wsbb:test", "sh", "-c",
			"read line; while :; do echo got $line; sleep 0.2; done")
		defer dk("rm", "-f", "att")
		cmd := exec.Command(dockerClient, "-H", "unix://"+d.sock, "attach", "--sig-proxy=false", "att")
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(d.dir, "client"))
		in, _ := cmd.StdinPipe()
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		fmt.Fprintln(in, "hello through attach")
		eventually(t, "the container's answer through docker attach", func() bool {
			return strings.Contains(out.String(), "got hello through attach\n")
		})
	})

	t.Run("out of memory under -m 32m: killed, 137, and Docker knows why", func(t *testing.T) {
		out, err := dk("run", "--name", "oom", "--runtime=workshop", "-m", "32m", "wsbb:test", "sh", "-c", `x=$(head -c 100m /dev/zero | tr '\0' a); echo survived`)
		defer dk("rm", "-f", "oom")
		if exitCode(err) != 137 || strings.Contains(out, "survived") {
			t.Fatalf("want 137, got %v:\n%s", err, out)
		}
		if v := strings.TrimSpace(must("inspect", "-f", "{{.State.OOMKilled}}", "oom")); v != "true" {
			t.Errorf("docker inspect says OOMKilled=%s: containerd's shim did not see the OOM event", v)
		}
	})

	t.Run("a detached server: logs, published port, exec, top, pause, update, stats, other containers, stop, restart", func(t *testing.T) {
		must("run", "-d", "--name", "web", "--runtime=workshop", "-p", "127.0.0.1:18080:80", "-m", "48m",
			"wsbb:test", "sh", "-c", "echo started; exec httpd -f -p 80 -h /etc")
		defer dk("rm", "-f", "web")
		eventually(t, "the server's log", func() bool { out, _ := dk("logs", "web"); return out == "started\n" })
		daemonNet := fmt.Sprintf("--net=/proc/%d/ns/net", daemonPid(t, d))
		eventually(t, "the published port, from the daemon's own 127.0.0.1", func() bool {
			out, _ := exec.Command("nsenter", daemonNet, "bash", "-c",
				`exec 3<>/dev/tcp/127.0.0.1/18080; printf 'GET /motd HTTP/1.0\r\n\r\n' >&3; cat <&3`).CombinedOutput()
			return strings.HasSuffix(string(out), "\r\n\r\nserved by busybox httpd\n")
		})
		if out := must("exec", "-u", "65534", "-w", "/tmp", "-e", "WHO=exec", "web", "sh", "-c", `id -u; pwd; echo $WHO`); out != "65534\n/tmp\nexec\n" {
			t.Errorf("docker exec -u -w -e: %q", out)
		}
		if out := must("top", "web"); !strings.Contains(out, "httpd -f -p 80") {
			t.Errorf("docker top does not show the server:\n%s", out)
		}
		ip := strings.TrimSpace(must("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"))
		// (nc: Debian's static busybox wget crashes.)
		if out, err := dk("run", "--rm", "--runtime=workshop", "wsbb:test", "sh", "-c", `printf 'GET /motd HTTP/1.0\r\n\r\n' | nc -w 2 `+ip+` 80`); err != nil || !strings.HasSuffix(out, "\r\n\r\nserved by busybox httpd\n") {
			t.Errorf("another container does not reach %s over docker0: %v\n%s", ip, err, out)
		}

		pid, _ := strconv.Atoi(strings.TrimSpace(must("inspect", "-f", "{{.State.Pid}}", "web")))
		g := groupOf(t, h, pid)
		must("pause", "web")
		if s := strings.TrimSpace(must("inspect", "-f", "{{.State.Status}}", "web")); s != "paused" {
			t.Errorf("after docker pause: %s", s)
		}
		if frozen, err := g.Frozen(); err != nil || !frozen {
			t.Errorf("after docker pause the cgroup is not frozen (%v)", err)
		}
		if state := procState(pid); state != "S" && state != "D" {
			t.Errorf("a frozen process sleeps in the kernel; its state is %q", state)
		}
		must("unpause", "web")
		if frozen, _ := g.Frozen(); frozen {
			t.Errorf("after docker unpause the cgroup is still frozen")
		}

		must("update", "--memory", "64m", "--memory-swap", "96m", "--pids-limit", "20", "--cpus", "0.5", "web")
		m, _ := g.Memory()
		p, _ := g.Pids()
		q, period, _ := g.CPU()
		if m.Limit != 64<<20 || p.Max != 20 || q != 50000 || period != 100000 {
			t.Errorf("after docker update: memory %d, pids %d, cpu %d/%d; want 64 MiB, 20, 50000/100000", m.Limit, p.Max, q, period)
		}
		if out := must("stats", "--no-stream", "--format", "{{.MemUsage}} {{.PIDs}}", "web"); !strings.Contains(out, "/ 64MiB 1") {
			t.Errorf("docker stats: %q, want the 64 MiB limit and 1 process", out)
		}

		must("stop", "-t", "1", "web")
		if s := must("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "web"); s != "exited 137\n" {
			t.Errorf("after docker stop (PID 1 ignores SIGTERM, so SIGKILL after 1 s): %s", s)
		}
		must("restart", "-t", "1", "web")
		eventually(t, "the restarted server's log", func() bool { out, _ := dk("logs", "web"); return out == "started\nstarted\n" })
		must("kill", "web")
		if s := strings.TrimSpace(must("inspect", "-f", "{{.State.Status}}", "web")); s != "exited" {
			t.Errorf("after docker kill: %s", s)
		}
	})

	t.Run("resource flags land in the cgroup files", func(t *testing.T) {
		args := []string{"run", "-d", "--name", "res", "--runtime=workshop", "-m", "64m", "--memory-reservation", "16m",
			"--pids-limit", "30", "--cpus", "0.25"}
		v1 := false
		if c, err := h.Controller("memory"); err == nil && c.Version == cgroup.V1 {
			v1 = true
			args = append(args, "--oom-kill-disable", "--memory-swappiness", "10")
		}
		must(append(args, "wsbb:test", "sleep", "100")...)
		defer dk("rm", "-f", "res")
		pid, _ := strconv.Atoi(strings.TrimSpace(must("inspect", "-f", "{{.State.Pid}}", "res")))
		g := groupOf(t, h, pid)
		m, _ := g.Memory()
		p, _ := g.Pids()
		q, _, _ := g.CPU()
		if m.Limit != 64<<20 || p.Max != 30 || q != 25000 {
			t.Errorf("memory %d, pids %d, quota %d; want 64 MiB, 30, 25000", m.Limit, p.Max, q)
		}
		dir := g.Path("memory")
		files := map[string]string{"memory.low": "16777216", "memory.swap.max": "67108864"} // Docker's swap: twice -m
		if v1 {
			files = map[string]string{"memory.soft_limit_in_bytes": "16777216", "memory.memsw.limit_in_bytes": "134217728",
				"memory.swappiness": "10", "memory.oom_control": "oom_kill_disable 1"}
		}
		for f, want := range files {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil || !strings.HasPrefix(strings.TrimSpace(string(b)), want) {
				t.Errorf("%s: %q (%v), want %s", f, b, err, want)
			}
		}
	})

	t.Run("containerd's own client: ctr run with the runtime as the runc binary of the runc shim", func(t *testing.T) {
		sock := filepath.Join(d.dir, "exec", "containerd", "containerd.sock")
		// In the daemon's mount namespace: ctr makes the container's stdio
		// FIFOs under /run, which is the daemon's own tmpfs there.
		out, err := exec.Command("nsenter", fmt.Sprintf("--mount=/proc/%d/ns/mnt", daemonPid(t, d)), "ctr", "--address", sock, "--namespace", "workshop-test", "run", "--rm",
			"--runtime", "io.containerd.runc.v2", "--runc-binary", workshop,
			"--cgroup", parent+"/ctr-hello", // under the parent the test removes (ctr's default, /NAMESPACE/ID, would stay, as runc leaves it)
			"--rootfs", root,
			"ctr-hello", "/bin/sh", "-c", "echo hello from ctr; cat /proc/1/cmdline | tr '\\0' ' '").CombinedOutput()
		if err != nil || string(out) != "hello from ctr\n/bin/sh -c echo hello from ctr; cat /proc/1/cmdline | tr '\\0' ' ' " {
			t.Fatalf("ctr run: %v\n%q", err, out)
		}
	})

	// Everything goes with the containers: no state left in the runtime's
	// root (Docker gives it one under its exec-root).
	for _, c := range []string{"web", "res", "oom"} {
		dk("rm", "-f", c)
	}
	ents, _ := os.ReadDir(filepath.Join(d.dir, "exec", "runtime-runc", "moby", "containers"))
	var left []string
	for _, e := range ents {
		if e.IsDir() && e.Name() != exeLowerDir {
			left = append(left, e.Name())
		}
	}
	if len(left) > 0 {
		t.Errorf("containers left in the runtime's state after docker rm: %v", left)
	}
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !ok(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not there after 15 s", what)
		}
	}
}

func daemonPid(t *testing.T, d *privateDockerd) int {
	b, err := os.ReadFile(filepath.Join(d.dir, "docker.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid == 0 {
		t.Fatalf("the private dockerd's pid file: %v", err)
	}
	return pid
}

// groupOf opens the cgroup a process is in (the memory controller's path
// names it on v1; v2 has one).
func groupOf(t *testing.T, h *cgroup.Hierarchy, pid int) *cgroup.Group {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	name := ""
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && (parts[0] == "0" && name == "" || strings.Contains(","+parts[1]+",", ",memory,")) {
			name = parts[2]
		}
	}
	var ctrls []string
	for _, c := range allControllers {
		if _, err := h.Controller(c); err == nil {
			ctrls = append(ctrls, c)
		}
	}
	g, err := h.Open(strings.TrimPrefix(name, "/"), ctrls...)
	if err != nil {
		t.Fatalf("the cgroup of %d (%s): %v", pid, name, err)
	}
	return g
}

func procState(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i > 0 && len(s) > i+2 {
		return s[i+2 : i+3]
	}
	return ""
}

// removeEmptyParent removes the daemon's cgroup parent, which must hold no
// container's group any more.
func removeEmptyParent(t *testing.T, h *cgroup.Hierarchy, parent string) {
	for _, m := range h.Mounts() {
		dir := filepath.Join(m.Dir, parent)
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.IsDir() {
				t.Errorf("a container's cgroup is left in %s: %s", dir, e.Name())
			}
		}
		if err := os.Remove(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	}
}

// syncBuffer is a bytes.Buffer that a process's output and the test may
// use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
