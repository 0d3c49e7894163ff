// Package trace is the one hook through which the workshop's packages
// (cgroup, rootfs, layers, and stage 06's own) report each kernel call they
// make, at the moment they make it, with the real arguments. A stage's
// narrator prints what the hook receives, so the narration cannot drift
// from the code: nothing prints by hand a call that a package makes.
package trace

import "fmt"

// Hook is told each kernel call just before it is made, written as a
// learner would read it (`mount("proc", "/proc", "proc", MS_NOSUID, "")`,
// or the shell equivalent of a file write: `echo 20000 > cpu.max`), and why
// it is needed ("" when the call says it all). A nil Hook ignores them.
type Hook func(call, why string)

// Call reports one call.
func (h Hook) Call(why, format string, args ...any) {
	if h != nil {
		h(fmt.Sprintf(format, args...), why)
	}
}
