// Command doctor checks that this machine can run every stage of the
// workshop: root, the kernel, the seven namespaces, the cgroup layout and
// where each controller lives, the propagation of /, overlayfs on the disks
// the stages use, Go (also under sudo), and the helper programs. It prints
// one row per check, a fix under every failure, and exits 1 if anything
// failed.
//
//	make doctor                 # as root, through sudo if needed
//	sudo bin/doctor --proc /tmp/fakeproc   # the same checks on other files
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fatih/color"
	"github.com/urfave/cli/v2"

	"github.com/container-internals/workshop/internal/narrate"
)

func main() {
	app := &cli.App{
		Name:  "doctor",
		Usage: "can this machine run every stage of the workshop?",
		Description: "Checks root, the kernel, namespaces, cgroups (v1, v2 or hybrid, and where cpu,\n" +
			"memory and pids live), the propagation of /, overlayfs on /var/lib and /tmp (by\n" +
			"mounting a tiny one), Go and the helper programs. Exit status 1 if a check failed.",
		UsageText: "make doctor   (or: sudo bin/doctor [flags])",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "proc", Value: "/proc", EnvVars: []string{"WORKSHOP_DOCTOR_PROC"},
				Usage: "read `DIR`/self/mountinfo, self/ns, filesystems and sys/kernel from this procfs"},
			&cli.StringFlag{Name: "cgroup-root", Value: "/sys/fs/cgroup", EnvVars: []string{"WORKSHOP_DOCTOR_CGROUP_ROOT"},
				Usage: "where cgroups are mounted"},
			&cli.StringSliceFlag{Name: "overlay-dir", Value: cli.NewStringSlice("/var/lib", "/tmp"), EnvVars: []string{"WORKSHOP_DOCTOR_OVERLAY_DIRS"},
				Usage: "try an overlay with its upper dir on each `DIR`"},
			&cli.StringFlag{Name: "apparmor-dir", Value: "/etc/apparmor.d", EnvVars: []string{"WORKSHOP_DOCTOR_APPARMOR_DIR"},
				Usage: "look for the workshop's AppArmor profile (rootless user namespaces) in `DIR`"},
			&cli.BoolFlag{Name: "no-color", Usage: "no colours (the NO_COLOR environment variable does the same)"},
		},
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			h := defaultHost()
			h.proc = c.String("proc")
			h.cgroupRoot = strings.TrimRight(c.String("cgroup-root"), "/")
			h.overlayDirs = c.StringSlice("overlay-dir")
			h.apparmorDir = c.String("apparmor-dir")
			results := checkAll(h)
			failed := report(os.Stdout, results, useColor(c.Bool("no-color")))
			if failed > 0 {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
	if err := app.Run(os.Args); err != nil {
		code := 1
		if ec, ok := err.(cli.ExitCoder); ok {
			code = ec.ExitCode()
		}
		if msg := strings.TrimSpace(err.Error()); msg != "" {
			fmt.Fprintf(os.Stderr, "doctor: %s\n", msg)
		}
		os.Exit(code)
	}
}

func useColor(noColor bool) bool {
	if _, set := os.LookupEnv("NO_COLOR"); set || noColor {
		return false
	}
	return narrate.IsTerminal(os.Stdout)
}

// report prints the table and a verdict, and returns the number of failures.
func report(w io.Writer, results []result, colored bool) int {
	paint := map[status]*color.Color{
		pass: color.New(color.FgGreen),
		warn: color.New(color.FgYellow, color.Bold),
		fail: color.New(color.FgRed, color.Bold),
	}
	for _, c := range paint {
		if colored {
			c.EnableColor()
		} else {
			c.DisableColor()
		}
	}
	width := len("CHECK")
	for _, r := range results {
		if len(r.name) > width {
			width = len(r.name)
		}
	}
	fmt.Fprintln(w, "container-internals workshop: can this machine run every stage?")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-*s  %-4s  %s\n", width, "CHECK", "", "WHAT WAS FOUND")
	counts := map[status]int{}
	for _, r := range results {
		counts[r.status]++
		fmt.Fprintf(w, "%-*s  %s  %s\n", width, r.name, paint[r.status].Sprint(r.status.String()), r.detail)
		if r.status != pass && r.fix != "" {
			fmt.Fprintf(w, "%-*s        fix: %s\n", width, "", r.fix)
		}
	}
	fmt.Fprintln(w)
	verdict := "every stage can run here"
	switch {
	case counts[fail] > 0:
		verdict = "fix the FAIL rows (each has its fix), then run `make doctor` again"
	case counts[warn] > 0:
		verdict = "every stage can run here; the WARN rows are worth reading"
	}
	fmt.Fprintf(w, "doctor: %d pass, %d warn, %d FAIL: %s\n", counts[pass], counts[warn], counts[fail], verdict)
	return counts[fail]
}
