// Package stage holds what every stage program shares and is not itself a
// lesson: the common flags, turning errors into one line and an exit status,
// and running the user's command as the container's process.
package stage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/narrate"
)

// Common flags, on every stage.
var commonFlags = []cli.Flag{
	&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no narration; with -- CMD, print nothing but the command's own output"},
	&cli.BoolFlag{Name: "step", Usage: "wait for Enter before each step (for instructors; ignored without a terminal)"},
	&cli.BoolFlag{Name: "no-color", Usage: "no colours (the NO_COLOR environment variable does the same)"},
}

// CommonFlags returns the flags every stage accepts.
func CommonFlags() []cli.Flag { return commonFlags }

// Narrator builds the host-side narrator from the common flags.
func Narrator(c *cli.Context) *narrate.Narrator {
	return narrate.New(narrate.Options{
		Quiet:   c.Bool("quiet"),
		Step:    c.Bool("step"),
		NoColor: c.Bool("no-color"),
	}, narrate.Host)
}

// App builds a stage's command line: its own flags plus the common ones.
func App(name, usage, description string, flags []cli.Flag, action cli.ActionFunc) *cli.App {
	return &cli.App{
		Name:                   name,
		Usage:                  usage,
		Description:            description,
		UsageText:              fmt.Sprintf("sudo go run ./%s [flags] [-- CMD ARGS...]", name),
		Flags:                  append(append([]cli.Flag{}, flags...), commonFlags...),
		Action:                 action,
		HideHelpCommand:        true,
		UseShortOptionHandling: true,
		// Errors are printed once, by Main, as one line.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   UsageError,
	}
}

// UsageError turns a flag parsing error into one line instead of the
// whole help text.
func UsageError(c *cli.Context, err error, _ bool) error {
	return Fail("%v (see --help)", err)
}

// ExitStatus is returned by a stage whose container command ended with a
// non-zero status: the stage exits with the same status and prints nothing,
// as `docker run` does.
type ExitStatus int

func (e ExitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// Main runs the app and exits. An error becomes one line on stderr, prefixed
// by the stage's name, and exit status 1 (or the status it carries).
func Main(app *cli.App) {
	MainWith(app, nil)
}

// MainWith is Main with a hook that sees the error before it is reported
// (stage 06 also writes it to the log file its OCI callers read).
func MainWith(app *cli.App, onError func(error)) {
	// A learner piping a stage into `head` closes the pipe early. Without
	// this, the next write would kill the stage with SIGPIPE before it
	// cleans up (mounts, cgroups); handled, the write just fails. (Notify,
	// not Ignore: an ignored SIGPIPE would be inherited by the commands the
	// stages exec.)
	signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE)
	err := app.Run(os.Args)
	if err != nil && onError != nil {
		onError(err)
	}
	os.Exit(report(app.Name, err))
}

func report(name string, err error) int {
	if err == nil {
		return 0
	}
	var st ExitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	// `stage ps -a | head`: head has read all it wants and closed the pipe.
	// Not a failure to report: end quietly, with the status a program that
	// SIGPIPE killed has (see MainWith for why the signal itself is caught).
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == os.Stdout.Name() && errors.Is(pe.Err, syscall.EPIPE) {
		return 128 + int(syscall.SIGPIPE)
	}
	code := 1
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	msg := strings.TrimSpace(err.Error())
	if msg != "" {
		fmt.Fprintf(os.Stderr, "%s: %s\n", name, firstLine(msg))
	}
	return code
}

// Fail is the error for bad input or an unusable host: one line, what failed,
// and what to do.
func Fail(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...), 1)
}

// StatusOf turns the error of a finished child process into the status a
// shell would report: its exit code, or 128+signal if a signal killed it.
func StatusOf(err error) (int, bool) {
	if err == nil {
		return 0, true
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 0, false
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
		if ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ws.ExitStatus(), true
	}
	return ee.ExitCode(), true
}

// Propagate turns a finished child's Wait error into what a stage returns:
// nil for success, its status for a failure, so that the stage ends the way
// its container's command did (as `docker run` does).
func Propagate(err error) error {
	status, ok := StatusOf(err)
	if !ok {
		return err
	}
	if status != 0 {
		return ExitStatus(status)
	}
	return nil
}

// Exec replaces the current process with argv, looking argv[0] up in PATH
// the way a shell does. It only returns on failure: a command that does not
// exist ends the process with status 127 and one line, as a shell does.
func Exec(stageName string, argv []string) error {
	path, err := LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %s: command not found (it must exist inside the container's root and PATH)\n", stageName, argv[0])
		os.Exit(127)
	}
	if err := unix.Exec(path, argv, os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot run %s: %v\n", stageName, argv[0], err)
		os.Exit(126)
	}
	return nil
}

// LookPath finds a command in PATH (or takes it as a path if it has a
// slash), and checks that it is an executable regular file.
func LookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, isExecutable(name)
	}
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if isExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH", name)
}

func isExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// ForwardSignals relays SIGINT, SIGTERM and SIGHUP to the child process while
// it runs: the child is the container, and a Ctrl-C should end it (and let
// the stage clean up) rather than kill the stage and leave the child orphaned.
// The returned function stops forwarding.
func ForwardSignals(p *os.Process) func() {
	return ForwardSignalsTo(func(s os.Signal) { _ = p.Signal(s) })
}

// ForwardSignalsTo is ForwardSignals with the sending given: to a process
// group, say.
func ForwardSignalsTo(send func(os.Signal)) func() {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				send(s)
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// ListDir returns the names in dir, sorted (none if it cannot be read).
func ListDir(dir string) []string {
	ents, _ := os.ReadDir(dir)
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// LockFile takes an exclusive flock on path (made if need be) and returns
// its release: the runtime's state and network roots serialise their
// changes across processes with it.
func LockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}
