// Command tour runs every stage of the workshop in order, non-interactively,
// and ends with one line per stage: did what it set out to show really
// happen on this kernel?
//
// Each stage checks its own claims as it runs (PID 1 inside, an empty /tmp,
// the loop held near 20%, ...) and prints `check passed:` or `CHECK FAILED:`
// for each. A stage passes when it exits 0, passed at least one check and
// failed none.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/container-internals/workshop/internal/narrate"
	"github.com/container-internals/workshop/internal/preflight"
	"github.com/container-internals/workshop/internal/stage"
)

type result struct {
	stage          string
	ok             bool
	passed, failed int
	code           int
	took           time.Duration
	why            string
}

func main() {
	app := stage.App("tour",
		"run every stage in order and report pass/fail per stage",
		"Runs each stage's default experiment with no input, shows its narration, and ends\n"+
			"with a summary table. Exits non-zero if any stage failed.",
		[]cli.Flag{
			&cli.StringFlag{Name: "bin", Value: "bin", Usage: "directory holding the built stages (`make build`)"},
			&cli.DurationFlag{Name: "timeout", Value: 3 * time.Minute, Usage: "longest time one stage may take"},
		},
		tour)
	app.UsageText = "sudo bin/tour [--bin DIR] STAGE..."
	stage.Main(app)
}

func tour(c *cli.Context) error {
	if err := preflight.RequireRoot("cmd/tour"); err != nil {
		return stage.Fail("needs root: run `make tour` (it uses sudo)")
	}
	stages := c.Args().Slice()
	if len(stages) == 0 {
		matches, _ := filepath.Glob(filepath.Join(c.String("bin"), "[0-9][0-9]-*"))
		for _, m := range matches {
			stages = append(stages, filepath.Base(m))
		}
	}
	if len(stages) == 0 {
		return stage.Fail("no stages found in %s: run `make build` first", c.String("bin"))
	}
	n := stage.Narrator(c)
	var results []result
	for _, s := range stages {
		results = append(results, runStage(c, n, s))
	}

	fmt.Println()
	fmt.Println("Tour summary")
	fmt.Printf("  %-24s %-6s %8s  %s\n", "stage", "result", "time", "checks")
	failed := 0
	for _, r := range results {
		verdict := "PASS"
		if !r.ok {
			verdict = "FAIL"
			failed++
		}
		detail := fmt.Sprintf("%d passed, %d failed", r.passed, r.failed)
		if r.why != "" {
			detail += " (" + r.why + ")"
		}
		fmt.Printf("  %-24s %-6s %7.2fs  %s\n", r.stage, verdict, r.took.Seconds(), detail)
	}
	fmt.Printf("%d passed, %d failed\n", len(results)-failed, failed)
	if failed > 0 {
		return stage.ExitStatus(1)
	}
	return nil
}

func runStage(c *cli.Context, n *narrate.Narrator, name string) result {
	name = strings.TrimSuffix(filepath.Base(name), "/")
	res := result{stage: name}
	bin := filepath.Join(c.String("bin"), name)
	if _, err := os.Stat(bin); err != nil {
		res.why = "not built: run `make build`"
		return res
	}
	fmt.Printf("\n================ %s ================\n", name)
	ctx, cancel := context.WithTimeout(context.Background(), c.Duration("timeout"))
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	if c.Bool("no-color") {
		cmd.Args = append(cmd.Args, "--no-color")
	}
	// No input: a stage must never wait for a learner during the tour.
	cmd.Stdin = nil
	var buf bytes.Buffer
	out := io.Writer(os.Stdout)
	if n.Quiet() {
		out = io.Discard
	}
	cmd.Stdout = io.MultiWriter(out, &buf)
	cmd.Stderr = io.MultiWriter(os.Stderr, &buf)
	start := time.Now()
	err := cmd.Run()
	res.took = time.Since(start)
	res.code, _ = stage.StatusOf(err)
	text := buf.String()
	res.passed = strings.Count(text, "check passed:")
	res.failed = strings.Count(text, "CHECK FAILED:")
	switch {
	case ctx.Err() != nil:
		res.why = "timed out"
	case err != nil && res.code == 0:
		res.why = err.Error()
	case res.code != 0:
		res.why = fmt.Sprintf("exit status %d", res.code)
	case res.passed == 0:
		res.why = "no check ran"
	}
	res.ok = res.why == "" && res.failed == 0
	return res
}
