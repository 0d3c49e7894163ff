package main

// The pure parts of the benchmark: statistics over timings, and the table
// with its verdicts. Kept apart from the measuring so that a test can check
// them in milliseconds, without root.

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// median of d (the mean of the two middle values for an even count).
func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := sorted(d)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile p (0-100) of d, nearest-rank: the smallest value that at least
// p% of the runs did not exceed.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := sorted(d)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(s) {
		rank = len(s)
	}
	return s[rank-1]
}

func sorted(d []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

// ms formats a duration in milliseconds with one decimal: "41.3 ms".
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// mb formats a size in kB (as /proc prints VmRSS) in MB with one decimal.
func mb(kB int64) string {
	return fmt.Sprintf("%.1f MB", float64(kB)/1024)
}

// row is one line of the results: a measurement, or a line saying why it
// was skipped.
type row struct {
	what    string
	median  string
	p90     string
	skipped string // why there is no figure
}

// timingRow summarises one series of timings.
func timingRow(what string, d []time.Duration) row {
	return row{what: what, median: ms(median(d)), p90: ms(percentile(d, 90))}
}

// verdict is one target, met or not, or a figure given as information.
type verdict struct {
	target string
	got    string
	pass   bool
	skip   string // why it could not be judged
	info   bool   // not a target: a ratio worth knowing
}

// info: how many times as long a takes as b, judged against nothing.
func info(what string, a, b time.Duration) verdict {
	return verdict{target: what, info: true, got: fmt.Sprintf("%s = %.1fx %s", ms(a), float64(a)/float64(b), ms(b))}
}

// fasterBy: a must be at least k times faster than b.
func fasterBy(target string, a, b time.Duration, k float64) verdict {
	ratio := float64(b) / float64(a)
	v := verdict{target: target, pass: ratio >= k}
	v.got = fmt.Sprintf("%s vs %s: %.1fx faster", ms(a), ms(b), ratio)
	if !v.pass {
		v.got += fmt.Sprintf(" (%.1fx short of %.0fx)", k/ratio, k)
	}
	return v
}

// below: a size in kB must stay under limit kB.
func below(target string, kB, limitKB int64) verdict {
	v := verdict{target: target, pass: kB < limitKB, got: mb(kB)}
	if !v.pass {
		v.got += fmt.Sprintf(" (%.1fx the limit)", float64(kB)/float64(limitKB))
	}
	return v
}

// table renders the results and the verdicts as aligned plain text.
func table(rows []row, verdicts []verdict) string {
	var b strings.Builder
	w := len("measurement")
	for _, r := range rows {
		if len(r.what) > w {
			w = len(r.what)
		}
	}
	fmt.Fprintf(&b, "%-*s  %10s  %10s\n", w, "measurement", "median", "p90")
	for _, r := range rows {
		if r.skipped != "" {
			fmt.Fprintf(&b, "%-*s  %s\n", w, r.what, r.skipped)
			continue
		}
		fmt.Fprintf(&b, "%-*s  %10s  %10s\n", w, r.what, r.median, r.p90)
	}
	if len(verdicts) == 0 {
		return b.String()
	}
	tw := len("target")
	for _, v := range verdicts {
		if len(v.target) > tw {
			tw = len(v.target)
		}
	}
	fmt.Fprintf(&b, "\n%-*s  %-7s %s\n", tw, "target", "verdict", "measured")
	for _, v := range verdicts {
		switch {
		case v.skip != "":
			fmt.Fprintf(&b, "%-*s  %-7s %s\n", tw, v.target, "SKIP", v.skip)
		case v.info:
			fmt.Fprintf(&b, "%-*s  %-7s %s\n", tw, v.target, "-", v.got)
		case v.pass:
			fmt.Fprintf(&b, "%-*s  %-7s %s\n", tw, v.target, "PASS", v.got)
		default:
			fmt.Fprintf(&b, "%-*s  %-7s %s\n", tw, v.target, "MISS", v.got)
		}
	}
	return b.String()
}

// missed counts the targets not met (skipped ones are not counted).
func missed(verdicts []verdict) int {
	k := 0
	for _, v := range verdicts {
		if v.skip == "" && !v.info && !v.pass {
			k++
		}
	}
	return k
}
