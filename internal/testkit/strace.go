package testkit

// The narration check: a stage run under strace -f, and what it narrated,
// must name the same kernel calls. Each call is reduced to a key (the call's
// name and the argument that tells two such calls apart: a mount's target,
// an fsconfig key, a prctl option, unshare's and setns's namespace), so a
// call the code makes without saying so, or a call the narration names that
// the code never makes, shows up as a key on one side only.

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// NarratedSyscalls are the calls the narration check compares.
var NarratedSyscalls = []string{"mount", "umount2", "fsopen", "fsconfig", "fsmount", "move_mount",
	"pivot_root", "unshare", "setns", "sethostname", "capset", "prctl"}

// Strace runs bin with args under strace -f and returns what the program
// printed and the keys of the calls made by the program's own processes
// (a process stops counting once it execs another program). Paths are
// passed through norm.
func Strace(t testing.TB, bin string, env []string, norm func(string) string, args ...string) (string, map[string]bool) {
	t.Helper()
	return StraceAs(t, "", bin, env, norm, args...)
}

// StraceAs is Strace with the program run as user (strace -u: a name in
// /etc/passwd), "" for root: stage 06's rootless run. Its copy in a user
// namespace re-executes itself as /proc/self/exe, and still counts.
func StraceAs(t testing.TB, user, bin string, env []string, norm func(string) string, args ...string) (string, map[string]bool) {
	t.Helper()
	if _, err := exec.LookPath("strace"); err != nil {
		Unavailable(t, "strace is needed for the narration check: apt-get install strace")
	}
	log := filepath.Join(t.TempDir(), "strace.log")
	full := []string{"-f", "-qq", "-s", "4096", "-o", log, "-e", "signal=none",
		"-e", "trace=execve," + strings.Join(NarratedSyscalls, ",")}
	if user != "" {
		full = append(full, "-u", user)
	}
	full = append(append(full, bin), args...)
	cmd := exec.Command("strace", full...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("strace %s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]bool{}
	other := map[string]bool{} // PIDs that exec'd another program
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		pid, rest, ok := strings.Cut(sc.Text(), " ")
		if !ok || other[pid] {
			continue
		}
		rest = strings.TrimSpace(rest)
		if strings.HasPrefix(rest, "<...") {
			continue // the end of a call reported when it began
		}
		if m := straceExec.FindStringSubmatch(rest); m != nil {
			if !strings.Contains(m[1], "06-full-container") && !strings.Contains(m[1], "05-overlay-layers") &&
				!strings.HasPrefix(m[1], "/proc/self/fd/") && m[1] != "/proc/self/exe" && m[1] != bin {
				other[pid] = true
			}
			continue
		}
		if strings.Contains(rest, "<unfinished ...>") && !strings.HasPrefix(rest, "execve(") {
			rest = strings.Replace(rest, "<unfinished ...>", ") = ?", 1)
		}
		for _, k := range CallKeys(rest, norm) {
			keys[k] = true
		}
	}
	return string(out), keys
}

var straceExec = regexp.MustCompile(`^execve\("([^"]*)"`)

// NarratedKeys extracts the keys of the calls named on the narration's
// call lines (those with "$ ").
func NarratedKeys(narration string, norm func(string) string) map[string]bool {
	keys := map[string]bool{}
	for _, l := range strings.Split(narration, "\n") {
		_, call, ok := strings.Cut(l, "$ ")
		if !ok {
			continue
		}
		call, _, _ = strings.Cut(call, "   # ") // what follows is a comment

		for _, k := range CallKeys(call, norm) {
			keys[k] = true
		}
	}
	return keys
}

var callStart = regexp.MustCompile(`\b(` + "mount|umount2|fsopen|fsconfig|fsmount|move_mount|pivot_root|unshare|setns|sethostname|capset|prctl" + `)\(`)

// CallKeys reduces each narrated syscall in s to its key.
func CallKeys(s string, norm func(string) string) []string {
	var keys []string
	for _, loc := range callStart.FindAllStringSubmatchIndex(s, -1) {
		name := s[loc[2]:loc[3]]
		args := splitArgs(s[loc[1]:])
		arg := func(i int) string {
			if i < len(args) {
				return args[i]
			}
			return ""
		}
		key := name
		switch name {
		case "mount":
			key += " " + norm(unquote(arg(1)))
		case "umount2", "move_mount":
			i := 0
			if name == "move_mount" {
				i = 3
			}
			key += " " + norm(unquote(arg(i)))
		case "fsopen":
			key += " " + unquote(arg(0))
		case "fsconfig":
			if strings.Contains(arg(1), "CMD_CREATE") {
				key += " create"
			} else {
				key += " " + unquote(arg(2))
			}
		case "prctl", "unshare":
			key += " " + strings.Fields(strings.ReplaceAll(arg(0), "|", " "))[0]
		case "setns":
			key += " " + strings.TrimSpace(arg(1))
		}
		keys = append(keys, key)
	}
	return keys
}

// splitArgs splits the argument list that starts s (after the "(") at its
// top-level commas, up to the closing parenthesis.
func splitArgs(s string) []string {
	var args []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '(' || c == '[' || c == '{':
			depth++
		case (c == ')' || c == ']' || c == '}') && depth > 0:
			depth--
		case c == ')':
			return append(args, strings.TrimSpace(s[start:i]))
		case c == ',' && depth == 0:
			args = append(args, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(args, strings.TrimSpace(s[start:]))
}

func unquote(s string) string { return strings.Trim(s, `"`) }

// OneSideOnly lists the keys in a and not in b, sorted.
func OneSideOnly(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
