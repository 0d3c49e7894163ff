package stage

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/container-internals/workshop/internal/narrate"
)

// Link lets a stage and its re-executed child take turns. The child waits
// for the host's go-ahead before each part of the experiment, so that the
// host can look at it from outside (its real PID, its namespaces, the host's
// mount table) while it is alive and in a known state. Each message carries
// the step number, so that narration reads as one numbered story across both
// processes.
//
// Two pipes are passed as file descriptors 3 (host -> child) and 4
// (child -> host).
type Link struct {
	done    bool   // the child said it is done (rather than just vanishing)
	why     string // what the child last paused for
	failure string // why it failed, as it said
	r       *bufio.Reader
	rf      *os.File
	w       *os.File
	close   []*os.File // the child's ends, closed in the host after Start
}

// LinkTo prepares cmd (not started yet) to talk to the stage over a Link.
func LinkTo(cmd *exec.Cmd) (*Link, error) {
	toChildR, toChildW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	toHostR, toHostW, err := os.Pipe()
	if err != nil {
		toChildR.Close()
		toChildW.Close()
		return nil, err
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, toChildR, toHostW) // fds 3 and 4
	return &Link{r: bufio.NewReader(toHostR), rf: toHostR, w: toChildW, close: []*os.File{toChildR, toHostW}}, nil
}

// Started closes the host's copies of the child's ends: once the child
// exits, the host's reads then end instead of waiting forever.
func (l *Link) Started() {
	for _, f := range l.close {
		f.Close()
	}
	l.close = nil
}

// Resume tells the child to go on, handing it the current step number.
func (l *Link) Resume(n *narrate.Narrator) {
	fmt.Fprintf(l.w, "go %d\n", n.StepsSoFar())
}

// Paused waits for the child's next message. It returns true when the child
// paused (and waits for Resume) so that the host can look at it, and false
// when the child is done: it is about to exec the user's command, or exited.
func (l *Link) Paused(n *narrate.Narrator) bool {
	line, err := l.r.ReadString('\n')
	verb, num, _ := strings.Cut(strings.TrimSpace(line), " ")
	num, l.why, _ = strings.Cut(num, " ")
	if k, convErr := strconv.Atoi(num); convErr == nil {
		n.Adopt(k)
	}
	if verb == "done" {
		l.done = true
	}
	if verb == "fail" {
		l.failure, l.why = l.why, ""
	}
	return err == nil && verb == "pause"
}

// Why is what the child paused for, as it told PauseFor ("" for Pause).
func (l *Link) Why() string { return l.why }

// Failure is why the child failed, if it said so (Fail) before it exited.
func (l *Link) Failure() string { return l.failure }

// Fail tells the host why the child is about to exit, in one line.
func (l *Link) Fail(n *narrate.Narrator, why string) {
	if l.w == nil {
		return
	}
	fmt.Fprintf(l.w, "fail %d %s\n", n.StepsSoFar(), strings.ReplaceAll(why, "\n", " "))
}

// Completed reports whether the child said it was done (it reached the exec
// of the user's command), as opposed to exiting before that.
func (l *Link) Completed() bool { return l.done }

// Close ends the conversation from the host's side.
func (l *Link) Close() {
	l.w.Close()
	l.rf.Close()
	l.Started()
}

// ParentLink is the child's end of the Link (file descriptors 3 and 4).
func ParentLink() *Link {
	r := os.NewFile(3, "from-host")
	w := os.NewFile(4, "to-host")
	return &Link{r: bufio.NewReader(r), rf: r, w: w}
}

// WaitGo blocks until the host says go, and continues its step numbering.
// If the host has gone away, the child stops: it has no one to narrate for.
func (l *Link) WaitGo(n *narrate.Narrator) {
	line, err := l.r.ReadString('\n')
	if err != nil {
		os.Exit(1)
	}
	if _, num, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
		if k, err := strconv.Atoi(num); err == nil {
			n.Adopt(k)
		}
	}
}

// Pause hands the turn to the host and waits until it gives it back.
func (l *Link) Pause(n *narrate.Narrator) {
	l.PauseFor(n, "")
}

// PauseFor pauses, telling the host why (one word), so that it knows what
// to do before it resumes the child.
func (l *Link) PauseFor(n *narrate.Narrator, why string) {
	fmt.Fprintf(l.w, "pause %d %s\n", n.StepsSoFar(), why)
	l.WaitGo(n)
}

// Done tells the host how far the story got and closes the link, so that
// the user's command does not inherit its file descriptors.
func (l *Link) Done(n *narrate.Narrator) {
	if l.w == nil {
		return
	}
	fmt.Fprintf(l.w, "done %d\n", n.StepsSoFar())
	l.w.Close()
	l.rf.Close()
	l.w = nil // its descriptor number may be another file's from now on
}
