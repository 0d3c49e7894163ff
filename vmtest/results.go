package vmtest

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Report is what the host learns from the guest's console.
type Report struct {
	Suites []*Suite
	Notes  []string // "@@vmtest note" lines, in order
	Done   bool     // the guest printed MarkDone: every suite ran
	Panic  string   // the first line of a kernel panic or oops, if any
}

// Suite is one package's run (or one of the guest's pseudo packages).
type Suite struct {
	Rel      string
	Tests    []Result
	Output   []string // every line between the suite's markers
	Ended    bool     // its end marker came
	Exit     int      // the test binary's exit status
	Seconds  float64
	Complete bool // false if the guest died inside this suite
}

// Result is one `--- PASS/FAIL/SKIP: Name (1.23s)` line.
type Result struct {
	Name    string // TestX or TestX/sub
	Verdict string // PASS, FAIL or SKIP
	Seconds float64
	Output  []string // the lines go test printed for this test (its logs)
}

var (
	resultLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(([0-9.]+)s\)`)
	runLine    = regexp.MustCompile(`^=== (RUN|CONT|PAUSE|NAME)\s+(\S+)`)
	endLine    = regexp.MustCompile(`^exit=(-?\d+) seconds=([0-9.]+)$`)
	// The kernel's words for "this boot is broken", whatever the log level.
	panicLine = regexp.MustCompile(`Kernel panic|BUG: |Oops: |general protection fault|Unable to handle kernel`)
)

// Parse reads a guest's console output. It never fails: what is missing
// (no end marker, no MarkDone) is recorded for Problems to report.
func Parse(r io.Reader) *Report {
	rep := &Report{}
	var cur *Suite
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		// A marker may follow leftovers of a line the kernel interrupted.
		if i := strings.Index(line, "@@vmtest "); i > 0 {
			line = line[i:]
		}
		if rep.Panic == "" && panicLine.MatchString(line) {
			rep.Panic = strings.TrimSpace(line)
		}
		switch {
		case strings.HasPrefix(line, MarkPackage):
			cur = &Suite{Rel: strings.TrimSpace(strings.TrimPrefix(line, MarkPackage))}
			rep.Suites = append(rep.Suites, cur)
		case strings.HasPrefix(line, MarkEnd):
			rest := strings.TrimPrefix(line, MarkEnd)
			rel, tail, _ := strings.Cut(rest, " ")
			if cur == nil || cur.Rel != rel {
				continue
			}
			if m := endLine.FindStringSubmatch(strings.TrimSpace(tail)); m != nil {
				cur.Exit, _ = strconv.Atoi(m[1])
				cur.Seconds, _ = strconv.ParseFloat(m[2], 64)
			}
			cur.Ended, cur.Complete = true, true
			cur = nil
		case strings.HasPrefix(line, MarkNote):
			rep.Notes = append(rep.Notes, strings.TrimPrefix(line, MarkNote))
		case line == MarkDone:
			rep.Done = true
		case cur != nil:
			cur.Output = append(cur.Output, line)
			if m := resultLine.FindStringSubmatch(line); m != nil {
				secs, _ := strconv.ParseFloat(m[3], 64)
				cur.Tests = append(cur.Tests, Result{Name: m[2], Verdict: m[1], Seconds: secs, Output: testOutput(cur.Output, m[2])})
			}
		}
	}
	return rep
}

// testOutput picks the lines go test -v printed for one test: from its
// `=== RUN` (or last `=== CONT`/`=== NAME`) to its result line.
func testOutput(lines []string, name string) []string {
	start := 0
	for i := len(lines) - 2; i >= 0; i-- {
		if m := runLine.FindStringSubmatch(lines[i]); m != nil && m[2] == name && m[1] != "PAUSE" {
			start = i
			break
		}
	}
	out := make([]string, 0, len(lines)-start)
	return append(out, lines[start:]...)
}

// Problems lists what makes the guest run a failure beyond failed tests:
// a panic, a guest that never finished, a suite that died or exited
// non-zero without a failing test to show for it, a suite that ran no test.
func (r *Report) Problems() []string {
	var out []string
	if r.Panic != "" {
		out = append(out, "the guest kernel panicked: "+r.Panic)
	}
	for _, s := range r.Suites {
		failed := false
		for _, t := range s.Tests {
			failed = failed || t.Verdict == "FAIL"
		}
		switch {
		case !s.Complete:
			out = append(out, fmt.Sprintf("%s: the guest died or timed out while it ran (no end marker)", s.Rel))
		case s.Exit != 0 && !failed:
			out = append(out, fmt.Sprintf("%s: exited with status %d without a failing test (a panic, a timeout or a crash: see its output)", s.Rel, s.Exit))
		case len(s.Tests) == 0:
			out = append(out, fmt.Sprintf("%s: ran no test", s.Rel))
		}
	}
	if !r.Done {
		out = append(out, "the guest did not finish (no "+MarkDone+" line): it timed out, crashed or powered off early")
	}
	return out
}

// Summary formats one line per suite: how many tests passed, failed,
// skipped, and the suite's time in the guest.
func (r *Report) Summary() string {
	var b strings.Builder
	w := len("package")
	for _, s := range r.Suites {
		if len(s.Rel) > w {
			w = len(s.Rel)
		}
	}
	fmt.Fprintf(&b, "%-*s  %5s %5s %5s %9s\n", w, "package", "pass", "fail", "skip", "time")
	for _, s := range r.Suites {
		n := map[string]int{}
		for _, t := range s.Tests {
			n[t.Verdict]++
		}
		verdict := fmt.Sprintf("%8.1fs", s.Seconds)
		if !s.Complete {
			verdict = "  did not finish"
		}
		fmt.Fprintf(&b, "%-*s  %5d %5d %5d %s\n", w, s.Rel, n["PASS"], n["FAIL"], n["SKIP"], verdict)
	}
	return b.String()
}

// Table formats every test's result, one per line, for the host's log.
func (r *Report) Table() string {
	var b strings.Builder
	w := 0
	for _, s := range r.Suites {
		for _, t := range s.Tests {
			if n := len(s.Rel) + 1 + len(t.Name); n > w {
				w = n
			}
		}
	}
	if w < 40 {
		w = 40
	}
	fmt.Fprintf(&b, "%-*s  %-6s %9s\n", w, "package / test", "result", "time")
	pass, fail, skip := 0, 0, 0
	for _, s := range r.Suites {
		for _, t := range s.Tests {
			fmt.Fprintf(&b, "%-*s  %-6s %8.2fs\n", w, s.Rel+" "+t.Name, t.Verdict, t.Seconds)
			switch t.Verdict {
			case "PASS":
				pass++
			case "FAIL":
				fail++
			default:
				skip++
			}
		}
		if !s.Complete {
			fmt.Fprintf(&b, "%-*s  %-6s\n", w, s.Rel+" (did not finish)", "FAIL")
		}
	}
	fmt.Fprintf(&b, "%d passed, %d failed, %d skipped (a skip counts as a failure here)\n", pass, fail, skip)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	for _, m := range r.Measurements() {
		fmt.Fprintf(&b, "measured: %s\n", m)
	}
	return b.String()
}

var (
	percentage = regexp.MustCompile(`\d+(\.\d+)?%`)
	measuring  = regexp.MustCompile(`(?i)measured|capped|share|counter`)
	logPrefix  = regexp.MustCompile(`^\s*\S+_test\.go:\d+: `)
)

// Measurements are the shares the guest's tests logged (t.Logf lines with
// a percentage: "--cpus 0.2: measured 20.1% of one CPU"), so the table
// shows what the kernel actually did, not only that it passed.
func (r *Report) Measurements() []string {
	var out []string
	for _, s := range r.Suites {
		name := ""
		for _, l := range s.Output {
			if m := runLine.FindStringSubmatch(l); m != nil {
				name = m[2]
				continue
			}
			if !logPrefix.MatchString(l) || !percentage.MatchString(l) || !measuring.MatchString(l) {
				continue
			}
			out = append(out, fmt.Sprintf("%s %s: %s", s.Rel, name, strings.TrimSpace(logPrefix.ReplaceAllString(l, ""))))
		}
	}
	return out
}
