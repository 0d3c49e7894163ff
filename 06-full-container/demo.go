package main

// The demonstration `make tour` runs: a few containers, each checking one
// thing a container is, then a check that nothing was left on the host.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/container-internals/workshop/internal/preflight"
	"github.com/container-internals/workshop/internal/stage"
)

func runDemo(c *cli.Context) error {
	if err := preflight.RequireRoot(name); err != nil {
		return err
	}
	n := stage.Narrator(c)
	before, _ := os.ReadFile("/proc/self/mountinfo")
	failed := false
	command := func(args ...string) (string, int) {
		full := []string{}
		if r := c.String("root"); r != "" {
			full = append(full, "--root", r)
		}
		full = append(full, args...)
		n.Call("%s %s", name, strings.Join(quoteAll(full), " "))
		cmd := exec.Command("/proc/self/exe", full...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		status, _ := stage.StatusOf(err)
		n.Output(out.String())
		return strings.TrimSpace(out.String()), status
	}
	run := func(args ...string) (string, int) { return command(append([]string{"run"}, args...)...) }
	check := func(ok bool, format string, args ...any) {
		n.Check(ok, format, args...)
		failed = failed || !ok
	}

	n.Step("The command is PID 1 of its container (stage 01)")
	out, status := run("--", "sh", "-c", "echo $$")
	check(status == 0 && out == "1", "sh -c 'echo $$' printed 1")

	n.Step("It sees only its own processes, its own hostname, its own network (stages 01, 06)")
	out, _ = run("--", "ps", "-o", "pid,comm")
	rows := strings.Split(out, "\n")
	check(len(rows) == 2 && strings.Fields(rows[1])[0] == "1", "ps, as PID 1, lists one process: itself (the host runs %d)", hostProcesses())
	out, _ = run("--hostname", "demo", "--", "sh", "-c", "hostname; ls /sys/class/net")
	lines := strings.Fields(out)
	check(len(lines) == 3 && lines[0] == "demo", "hostname is demo inside")
	check(len(lines) == 3 && lines[1] == "eth0" && lines[2] == "lo", "the network namespace has lo and eth0, its end of a veth pair")

	n.Step("Containers on the bridge reach each other by name, and the host reaches a published port (06-network)")
	port := freePort()
	_, status = run("-d", "--name", "demo-web", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "--",
		"sh", "-c", "mkdir /www; echo hello from demo-web > /www/index.html; exec httpd -f -p 80 -h /www")
	if status == 0 {
		out, _ = run("--", "sh", "-c", "ping -c1 -W2 demo-web >/dev/null && echo ping-ok; wget -qO- http://demo-web/")
		check(out == "ping-ok\nhello from demo-web", "a second container pings demo-web by name and fetches its page")
		n.Call("GET http://127.0.0.1:%d/   # from the host: DNAT in the output chain", port)
		page := httpGet(fmt.Sprintf("127.0.0.1:%d", port), "/")
		n.Output(page)
		check(page == "hello from demo-web\n", "the host reaches the published port 127.0.0.1:%d -> 80", port)
		command("rm", "-f", "demo-web")
	} else {
		check(false, "run -d --name demo-web -p 127.0.0.1:%d:80 started", port)
	}

	n.Step("It stands on its own root, and cannot mount (stages 04, 05, 06)")
	out, status = run("--", "sh", "-c", "ls / | tr '\\n' ' '; mkdir -p /mnt; mount -t tmpfs none /mnt 2>/dev/null && echo MOUNTED; true")
	check(status == 0 && strings.Contains(out, "bin") && !strings.Contains(out, "MOUNTED"), "ls / shows the image's root, and mount fails without CAP_SYS_ADMIN")

	n.Step("Its exit status is run's, and a memory limit kills a hog (stage 03)")
	_, status = run("--", "sh", "-c", "exit 3")
	check(status == 3, "exit 3 inside = exit 3 of run")
	// tail -c 300m keeps the last 300 MB it reads: it grows until stopped.
	_, status = run("--memory", "16m", "--", "tail", "-c", "300m", "/dev/zero")
	check(status == 137, "a process over --memory 16m was OOM-killed: status %d (137 = 128 + SIGKILL)", status)

	n.Step("Nothing is left on the host")
	bridge := "workshop0"
	if ls, _ := command("network", "ls"); len(strings.Split(ls, "\n")) == 2 {
		bridge = strings.Fields(strings.Split(ls, "\n")[1])[0]
	}
	_, status = command("network", "prune")
	_, err := net.InterfaceByName(bridge)
	check(status == 0 && err != nil, "network prune removed the bridge %s and its rules", bridge)
	after, _ := os.ReadFile("/proc/self/mountinfo")
	check(bytes.Equal(before, after), "the host's mount table is exactly as before")
	if failed {
		return stage.ExitStatus(1)
	}
	return nil
}

// freePort asks the kernel for a port nothing listens on.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 18080
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpGet fetches a page from addr (host:port), trying for a moment while
// the server starts. HTTP/1.0 by hand, over one TCP connection: net/http
// would put an HTTP and TLS stack into the runtime's binary for this one
// demonstration (twice its size, and a slower start for every container).
func httpGet(addr, path string) string {
	for i := 0; i < 20; i++ {
		if conn, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
			_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
			fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr)
			b, _ := io.ReadAll(conn)
			conn.Close()
			if _, body, ok := strings.Cut(string(b), "\r\n\r\n"); ok && strings.HasPrefix(string(b), "HTTP/1.") {
				return body
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ""
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " '$;|&<>\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return out
}

func hostProcesses() int {
	ents, _ := os.ReadDir("/proc")
	count := 0
	for _, e := range ents {
		if e.Name()[0] >= '0' && e.Name()[0] <= '9' {
			count++
		}
	}
	return count
}
