// Package narrate prints what a stage is doing while it does it: a numbered
// step, the kernel call being made, then what that call changed.
//
// Every line says which side of the container boundary printed it, twice:
// by colour and by a prefix ("host |" or "ctr  |"), so that the output still
// reads in a black-and-white screenshot, with NO_COLOR=1, or through a pipe.
//
// A stage often re-executes itself to become the container process. The
// child inherits the parent's settings (quiet, step mode, colour, the next
// step number) through one environment variable, so that narration reads as
// one story across both processes.
package narrate

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/fatih/color"
	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/trace"
)

// Side says who is speaking: the host, or a process inside the container.
type Side int

const (
	Host Side = iota
	Container
)

// EnvVar carries the narration settings from a stage to its re-executed child.
const EnvVar = "WORKSHOP_NARRATION"

// Options are the settings every stage exposes as common flags.
type Options struct {
	Quiet   bool // no narration at all: only the command's own output
	Step    bool // wait for Enter before each step (instructors); needs a terminal
	NoColor bool // no ANSI colours (also: NO_COLOR in the environment)
}

// Narrator writes narration lines. It is safe for concurrent use.
type Narrator struct {
	opts Options
	side Side
	out  io.Writer
	in   *bufio.Reader
	mu   sync.Mutex
	step int

	prefix  *color.Color
	heading *color.Color
	call    *color.Color
	good    *color.Color
	bad     *color.Color
	dim     *color.Color
}

// New returns a narrator writing to standard output.
func New(opts Options, side Side) *Narrator {
	return NewTo(os.Stdout, opts, side)
}

// NewTo returns a narrator writing to w.
func NewTo(w io.Writer, opts Options, side Side) *Narrator {
	if _, set := os.LookupEnv("NO_COLOR"); set {
		opts.NoColor = true
	}
	if opts.Step && !isTerminal(os.Stdin) {
		// Nobody can press Enter: step mode would hang a script or a test.
		opts.Step = false
	}
	n := &Narrator{opts: opts, side: side, out: w, in: bufio.NewReader(os.Stdin)}
	sideColor := color.FgCyan
	if side == Container {
		sideColor = color.FgYellow
	}
	n.prefix = n.color(sideColor, color.Bold)
	n.heading = n.color(color.Bold)
	n.call = n.color(color.FgMagenta)
	n.good = n.color(color.FgGreen, color.Bold)
	n.bad = n.color(color.FgRed, color.Bold)
	n.dim = n.color(color.Faint)
	return n
}

func (n *Narrator) color(attrs ...color.Attribute) *color.Color {
	c := color.New(attrs...)
	if n.opts.NoColor {
		c.DisableColor()
	} else {
		// fatih/color turns itself off when stdout is not a terminal; the
		// learner asked for colour (no --no-color, no NO_COLOR), so keep it
		// only when the output really is a terminal.
		if isTerminal(os.Stdout) {
			c.EnableColor()
		} else {
			c.DisableColor()
		}
	}
	return c
}

// FromEnv rebuilds the parent's narrator inside a re-executed child.
func FromEnv(side Side) *Narrator {
	opts, next := parseEnv(os.Getenv(EnvVar))
	n := New(opts, side)
	n.step = next
	return n
}

// Env returns the KEY=VALUE that hands these settings, and the current step
// number, to a child process.
func (n *Narrator) Env() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("%s=quiet=%s,step=%s,nocolor=%s,next=%d", EnvVar,
		b2s(n.opts.Quiet), b2s(n.opts.Step), b2s(n.opts.NoColor), n.step)
}

// Adopt continues step numbering after a child that narrated steps of its
// own (the child reports how far it got with StepsSoFar).
func (n *Narrator) Adopt(step int) {
	n.mu.Lock()
	if step > n.step {
		n.step = step
	}
	n.mu.Unlock()
}

// StepsSoFar is the number of the last step printed.
func (n *Narrator) StepsSoFar() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.step
}

// Quiet reports whether narration is switched off.
func (n *Narrator) Quiet() bool { return n.opts.Quiet }

// Options returns the settings this narrator was made with.
func (n *Narrator) Options() Options { return n.opts }

// Step starts a new numbered step. In step mode it first waits for Enter.
func (n *Narrator) Step(format string, args ...any) {
	if n.opts.Quiet {
		return
	}
	n.mu.Lock()
	n.step++
	num := n.step
	n.mu.Unlock()
	if n.opts.Step {
		fmt.Fprint(n.out, n.dim.Sprint("\n   [press Enter for the next step]"))
		_, _ = n.in.ReadString('\n')
	}
	title := fmt.Sprintf(format, args...)
	gap := "\n"
	if num == 1 {
		gap = ""
	}
	n.printf("%s%s %s\n", gap, n.prefixText(), n.heading.Sprintf("Step %d: %s", num, title))
}

// Call shows the kernel call (or the file write, or the command) about to be made.
func (n *Narrator) Call(format string, args ...any) {
	n.line("  $ " + n.call.Sprintf(format, args...))
}

// Trace is the hook through which packages report their kernel calls
// (see package trace): each call is printed as Call, its reason as Note
// (a report with no call is a note alone).
func (n *Narrator) Trace() trace.Hook {
	return func(call, why string) {
		if call != "" {
			n.Call("%s", call)
		}
		if why != "" {
			n.Note("%s", why)
		}
	}
}

// Say prints an ordinary narration line.
func (n *Narrator) Say(format string, args ...any) {
	n.line("  " + fmt.Sprintf(format, args...))
}

// Output prints lines produced by a command (ls, ps, cat ...), indented.
func (n *Narrator) Output(text string) {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		n.line("    " + n.dim.Sprint("(nothing)"))
		return
	}
	for _, l := range strings.Split(text, "\n") {
		n.line("    " + l)
	}
}

// Note prints an explanation: why this step matters.
func (n *Narrator) Note(format string, args ...any) {
	n.line("  " + n.dim.Sprint("# "+fmt.Sprintf(format, args...)))
}

// Check prints the verdict of one claim the stage set out to show.
func (n *Narrator) Check(ok bool, format string, args ...any) {
	mark := n.good.Sprint("check passed:")
	if !ok {
		mark = n.bad.Sprint("CHECK FAILED:")
	}
	n.line("  " + mark + " " + fmt.Sprintf(format, args...))
}

// Warn prints something the learner should notice but that is not fatal.
func (n *Narrator) Warn(format string, args ...any) {
	n.line("  " + n.bad.Sprint("warning: ") + fmt.Sprintf(format, args...))
}

func (n *Narrator) line(s string) {
	if n.opts.Quiet {
		return
	}
	n.printf("%s%s\n", n.prefixText(), s)
}

func (n *Narrator) printf(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.out, format, args...)
}

func (n *Narrator) prefixText() string {
	if n.side == Container {
		return n.prefix.Sprint("ctr  |")
	}
	return n.prefix.Sprint("host |")
}

func parseEnv(s string) (Options, int) {
	var o Options
	next := 0
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "quiet":
			o.Quiet = v == "1"
		case "step":
			o.Step = v == "1"
		case "nocolor":
			o.NoColor = v == "1"
		case "next":
			next, _ = strconv.Atoi(v)
		}
	}
	return o, next
}

func b2s(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// isTerminal asks the kernel whether f is a terminal (the TCGETS ioctl only
// succeeds on one).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return isTerminal(f) }
