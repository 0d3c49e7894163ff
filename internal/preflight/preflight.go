// Package preflight checks, before a stage touches the kernel, that it can
// work here: root, the namespaces and filesystems it needs. Each failure is
// one line that says what to do next, never a stack trace.
package preflight

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Error is a preflight failure: one line, ending with the fix.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

// RequireRoot fails unless the process runs as root. stageDir is the stage's
// directory ("01-pid-namespace"), used to print the exact command to run.
func RequireRoot(stageDir string) error {
	if os.Geteuid() == 0 {
		return nil
	}
	return &Error{fmt.Sprintf("needs root (namespaces, mounts and cgroups are root-only here): run `sudo go run ./%s` (or `make demo STAGE=%s`)", stageDir, stageDir[:2])}
}

// RequireRootToRun is RequireRoot for a program with subcommands: the hint
// repeats the learner's own command line (args: os.Args[1:]), so that
// `06-full-container run -- sh` is told `sudo go run ./06-full-container
// run -- sh`, not a bare `sudo go run ./06-full-container`, which runs
// something else (the demonstration).
func RequireRootToRun(stageDir string, args []string) error {
	if os.Geteuid() == 0 {
		return nil
	}
	cmd := "sudo go run ./" + stageDir
	for _, a := range args {
		cmd += " " + shellQuote(a)
	}
	return &Error{fmt.Sprintf("needs root (namespaces, mounts and cgroups are root-only here): run `%s`", cmd)}
}

// shellQuote quotes a word for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=+./:,@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Namespace kinds as they appear under /proc/self/ns.
var nsConfig = map[string]string{
	"pid":    "CONFIG_PID_NS",
	"mnt":    "CONFIG_NAMESPACES",
	"uts":    "CONFIG_UTS_NS",
	"ipc":    "CONFIG_IPC_NS",
	"net":    "CONFIG_NET_NS",
	"user":   "CONFIG_USER_NS",
	"cgroup": "CONFIG_CGROUPS",
}

// RequireNamespaces fails unless the kernel offers every namespace kind named
// ("pid", "mnt", "uts", "ipc", "net", "cgroup", "user"). The kernel shows one
// link per kind it supports under /proc/self/ns.
func RequireNamespaces(kinds ...string) error {
	for _, k := range kinds {
		if _, err := os.Lstat("/proc/self/ns/" + k); err != nil {
			return &Error{fmt.Sprintf("this kernel has no %s namespace (/proc/self/ns/%s is missing): use a kernel built with %s, such as the workshop VM's", k, k, nsConfig[k])}
		}
	}
	return nil
}

// HasFilesystem reports whether the running kernel knows a filesystem type,
// as listed in /proc/filesystems.
func HasFilesystem(name string) (bool, error) {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[len(fields)-1] == name {
			return true, nil
		}
	}
	return false, sc.Err()
}

// RequireFilesystem fails unless the kernel knows the filesystem type. A
// filesystem built as a module only appears once loaded, so the fix names
// modprobe.
func RequireFilesystem(name string) error {
	ok, err := HasFilesystem(name)
	if err != nil {
		return &Error{fmt.Sprintf("cannot read /proc/filesystems (%v): is /proc mounted?", err)}
	}
	if !ok {
		return &Error{fmt.Sprintf("the kernel does not offer the %s filesystem: run `sudo modprobe %s`, then try again", name, name)}
	}
	return nil
}
