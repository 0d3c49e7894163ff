package main

import (
	"strings"
	"testing"
	"time"
)

func msList(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestMedianOfOddAndEvenCounts(t *testing.T) {
	if got := median(msList(5, 1, 3)); got != 3*time.Millisecond {
		t.Errorf("median(5,1,3) = %v, want 3ms", got)
	}
	if got := median(msList(4, 1, 3, 2)); got != 2500*time.Microsecond {
		t.Errorf("median(4,1,3,2) = %v, want 2.5ms", got)
	}
	if got := median(nil); got != 0 {
		t.Errorf("median() = %v, want 0", got)
	}
}

func TestMedianLeavesItsInputAlone(t *testing.T) {
	d := msList(3, 1, 2)
	median(d)
	if d[0] != 3*time.Millisecond {
		t.Errorf("median sorted its caller's slice: %v", d)
	}
}

func TestP90IsNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 10; i >= 1; i-- { // 10 ms ... 1 ms
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if got := percentile(d, 90); got != 9*time.Millisecond {
		t.Errorf("p90 of 1..10 ms = %v, want 9ms", got)
	}
	if got := percentile(d, 100); got != 10*time.Millisecond {
		t.Errorf("p100 = %v, want the largest", got)
	}
	if got := percentile(msList(7), 90); got != 7*time.Millisecond {
		t.Errorf("p90 of one run = %v, want it", got)
	}
}

func TestVerdictsSayByHowMuchATargetIsMissed(t *testing.T) {
	v := info("run / unshare", 40*time.Millisecond, 5*time.Millisecond)
	if !v.info || !strings.Contains(v.got, "8.0x") {
		t.Errorf("40 ms vs 5 ms, as information: %+v", v)
	}
	v = fasterBy("2x faster than runc", 40*time.Millisecond, 100*time.Millisecond, 2)
	if !v.pass || !strings.Contains(v.got, "2.5x faster") {
		t.Errorf("40 ms vs runc 100 ms: %+v", v)
	}
	v = fasterBy("2x faster than runc", 60*time.Millisecond, 100*time.Millisecond, 2)
	if v.pass || !strings.Contains(v.got, "1.7x faster") || !strings.Contains(v.got, "short of 2x") {
		t.Errorf("60 ms vs runc 100 ms: %+v", v)
	}
	if v := below("rss", 9<<10, 10<<10); !v.pass || v.got != "9.0 MB" {
		t.Errorf("9 MB under 10 MB: %+v", v)
	}
	if v := below("rss", 12<<10, 10<<10); v.pass || !strings.Contains(v.got, "1.2x the limit") {
		t.Errorf("12 MB under 10 MB: %+v", v)
	}
}

func TestTableAlignsRowsAndMarksEachTarget(t *testing.T) {
	rows := []row{
		timingRow("run /bin/true: 06-full-container", msList(40, 41, 42)),
		{what: "run /bin/true: runc", skipped: "skipped: runc is not installed"},
	}
	verdicts := []verdict{
		fasterBy("run >= 2x faster than runc", 41*time.Millisecond, 60*time.Millisecond, 2),
		{target: "create+start+delete >= 2x", skip: "runc is not installed"},
		info("run / unshare", 41*time.Millisecond, 5*time.Millisecond),
		below("monitor < 10 MB", 7<<10, 10<<10),
	}
	got := table(rows, verdicts)
	want := `measurement                           median         p90
run /bin/true: 06-full-container     41.0 ms     42.0 ms
run /bin/true: runc               skipped: runc is not installed

target                      verdict measured
run >= 2x faster than runc  MISS    41.0 ms vs 60.0 ms: 1.5x faster (1.4x short of 2x)
create+start+delete >= 2x   SKIP    runc is not installed
run / unshare               -       41.0 ms = 8.2x 5.0 ms
monitor < 10 MB             PASS    7.0 MB
`
	if got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	if k := missed(verdicts); k != 1 {
		t.Errorf("missed = %d, want 1 (a skip or a figure for information is not a miss)", k)
	}
}

func TestPhasesComeFromTheMarksInTimeOrder(t *testing.T) {
	// Two processes write marks; the runtime's and the init's interleave.
	stderr := []byte("timing 1300 runtime: flags read\n" +
		"some other line\n" +
		"timing 1100 runtime: Go runtime started\n" +
		"timing 2000 init: Go runtime started\n" +
		"timing 2500 runtime: container exited\n")
	marks := parseMarks(stderr)
	got := phases(1000, 2600, marks)
	want := []mark{{100, "runtime: Go runtime started"}, {200, "runtime: flags read"},
		{700, "init: Go runtime started"}, {500, "runtime: container exited"}, {100, "runtime: exit"}}
	if len(got) != len(want) {
		t.Fatalf("phases = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("phase %d = %v, want %v", i, got[i], want[i])
		}
	}
	rows := phaseTable([][]mark{got, got, {{300, "runtime: Go runtime started"}}})
	if rows[0].what != "runtime: Go runtime started" || rows[0].median != ms(100*time.Microsecond) {
		t.Errorf("first row = %+v, want the median 0.1 ms of the first phase", rows[0])
	}
	if last := rows[len(rows)-1]; last.what != "sum of the medians" {
		t.Errorf("last row = %+v, want the sum", last)
	}
}
