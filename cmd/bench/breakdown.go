package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The breakdown: where the time of `run -- /bin/true` goes. With
// WORKSHOP_TIMING set, the runtime and the container's init each write
// "timing <µs> <what>" to stderr at the end of every phase, on
// CLOCK_MONOTONIC (one clock for every process); the bench adds the moment
// it started the runtime and the moment the runtime exited.

// mark is one "timing" line: when, and what had just finished.
type mark struct {
	us   int64
	what string
}

// parseMarks reads the timing lines out of a run's stderr, in time order.
func parseMarks(stderr []byte) []mark {
	var ms []mark
	sc := bufio.NewScanner(bytes.NewReader(stderr))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 3)
		if len(f) != 3 || f[0] != "timing" {
			continue
		}
		us, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		ms = append(ms, mark{us, f[2]})
	}
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].us < ms[j].us })
	return ms
}

// phases turns one run's marks into the time each phase took: from the
// previous mark (or the start) to its own. Phases that ran side by side
// (the cleanup's cgroups and files) each count from the mark before them.
func phases(startUs, endUs int64, ms []mark) []mark {
	out := make([]mark, 0, len(ms)+1)
	prev := startUs
	for _, m := range ms {
		out = append(out, mark{m.us - prev, m.what})
		prev = m.us
	}
	return append(out, mark{endUs - prev, "runtime: exit"})
}

// phaseTable is the median of each phase over the runs, in the order of
// the first run.
func phaseTable(runs [][]mark) []row {
	var order []string
	all := map[string][]time.Duration{}
	for _, r := range runs {
		for _, p := range r {
			if _, seen := all[p.what]; !seen {
				order = append(order, p.what)
			}
			all[p.what] = append(all[p.what], time.Duration(p.us)*time.Microsecond)
		}
	}
	var rows []row
	var total time.Duration
	for _, what := range order {
		m := median(all[what])
		total += m
		rows = append(rows, row{what: what, median: ms(m), p90: ms(percentile(all[what], 90))})
	}
	return append(rows, row{what: "sum of the medians", median: ms(total), p90: "-"})
}

func monotonicUs() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Sec*1e6 + ts.Nsec/1e3
}

// breakdown times n runs with the marks on.
func (b *bench) breakdown(n int) ([]row, error) {
	var runs [][]mark
	for i := 0; i < n; i++ {
		if interrupted.Load() {
			return nil, errInterrupted
		}
		cmd := exec.Command(b.bin, "--root", b.root, "run", "--net", "none", "--", "/bin/true")
		cmd.Env = append(os.Environ(), "WORKSHOP_TIMING=1", "NO_COLOR=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := monotonicUs()
		err := cmd.Run()
		end := monotonicUs()
		if err != nil {
			return nil, fmt.Errorf("run with WORKSHOP_TIMING: %v: %s", err, stderr.String())
		}
		marks := parseMarks(stderr.Bytes())
		if len(marks) == 0 {
			return nil, fmt.Errorf("run with WORKSHOP_TIMING=1 printed no timing marks: is %s older than the bench?", b.bin)
		}
		runs = append(runs, phases(start, end, marks))
	}
	return phaseTable(runs), nil
}
