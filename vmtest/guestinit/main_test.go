package main

import (
	"strings"
	"testing"
)

// The three ways a stage can meet a root cgroup.subtree_control without cpu.
func TestQuirkVerdictAcceptsEnablingOrOneLineSayingHow(t *testing.T) {
	for _, c := range []struct {
		name        string
		code        int
		out, after  string
		note, fails string
	}{
		{"enabled it and passed", 0, "check passed: capped at 20%\n", "cpu io memory pids", "enabled cpu", ""},
		{"enabled it but a check failed", 0, "check passed: x\nCHECK FAILED: y\n", "cpu memory", "", "its run failed"},
		{"told the learner how", 1, "03-cgroups-cpu: the cpu controller is not enabled: run `echo +cpu | sudo tee /sys/fs/cgroup/cgroup.subtree_control`\n", "memory pids", "told the learner", ""},
		{"failed without saying how", 1, "03-cgroups-cpu: write cpu.max: no such file\n", "memory pids", "", "without a line naming cgroup.subtree_control"},
		{"did neither", 0, "check passed: something\n", "memory pids", "", "neither enabled it nor said how"},
	} {
		note, why := quirkVerdict("03-cgroups-cpu", c.code, c.out, c.after)
		if c.note != "" && !strings.Contains(note, c.note) || c.note == "" && note != "" {
			t.Errorf("%s: note %q, want one containing %q", c.name, note, c.note)
		}
		if c.fails != "" && !strings.Contains(why, c.fails) || c.fails == "" && why != "" {
			t.Errorf("%s: failure %q, want one containing %q", c.name, why, c.fails)
		}
	}
}

func TestShareLinesPickTheMeasuredPercentages(t *testing.T) {
	out := "host | Step 5: Hold it at 20%\nhost |  check passed: capped, the loop used 20.2% of a CPU\nhost |      1s   20.0% |####|\n"
	got := shareLines(out)
	if len(got) != 1 || !strings.Contains(got[0], "20.2%") {
		t.Errorf("shareLines = %q, want the one check line", got)
	}
}
