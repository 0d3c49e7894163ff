package main

// The demonstration `make tour` runs: a few containers, each checking one
// thing a container is, then a check that nothing was left on the host.

import (
	"bytes"
	"os"
	"os/exec"
	"strings"

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
	run := func(args ...string) (string, int) {
		full := []string{}
		if r := c.String("root"); r != "" {
			full = append(full, "--root", r)
		}
		full = append(full, "run")
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
	check := func(ok bool, format string, args ...any) {
		n.Check(ok, format, args...)
		failed = failed || !ok
	}

	n.Step("The command is PID 1 of its container (stage 01)")
	out, status := run("--", "sh", "-c", "echo $$")
	check(status == 0 && out == "1", "sh -c 'echo $$' printed 1")

	n.Step("It sees only its own processes, its own hostname, only lo (stages 01, 06)")
	out, _ = run("--", "ps", "-o", "pid,comm")
	rows := strings.Split(out, "\n")
	check(len(rows) == 2 && strings.Fields(rows[1])[0] == "1", "ps, as PID 1, lists one process: itself (the host runs %d)", hostProcesses())
	out, _ = run("--hostname", "demo", "--", "sh", "-c", "hostname; ls /sys/class/net")
	lines := strings.Fields(out)
	check(len(lines) == 2 && lines[0] == "demo", "hostname is demo inside")
	check(len(lines) == 2 && lines[1] == "lo", "the network namespace has only lo")

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
	after, _ := os.ReadFile("/proc/self/mountinfo")
	check(bytes.Equal(before, after), "the host's mount table is exactly as before")
	if failed {
		return stage.ExitStatus(1)
	}
	return nil
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
