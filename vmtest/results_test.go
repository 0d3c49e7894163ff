package vmtest

import (
	"strings"
	"testing"
)

// A console as the guest prints it: kernel lines, carriage returns, a
// marker glued to the end of an interrupted line, nested subtests.
const console = "[    0.000000] Linux version 6.1.0\r\n" +
	"@@vmtest package vmtest/boot\r\n" +
	"=== RUN   TestMounts\r\n" +
	"--- PASS: TestMounts (0.02s)\r\n" +
	"@@vmtest end vmtest/boot exit=0 seconds=0.05\r\n" +
	"@@vmtest note kernel: 6.1.0-56-amd64 x86_64\r\n" +
	"@@vmtest package 03-cgroups-cpu\r\n" +
	"=== RUN   TestBusyLoopHeldNearTwentyPercent\r\n" +
	"    main_test.go:10: measured 20.3%\r\n" +
	"--- PASS: TestBusyLoopHeldNearTwentyPercent (10.50s)\r\n" +
	"=== RUN   TestValues\r\n" +
	"=== RUN   TestValues/zero\r\n" +
	"    main_test.go:20: quota 0 accepted\r\n" +
	"=== RUN   TestValues/max\r\n" +
	"--- FAIL: TestValues (0.01s)\r\n" +
	"    --- FAIL: TestValues/zero (0.00s)\r\n" +
	"    --- PASS: TestValues/max (0.00s)\r\n" +
	"=== RUN   TestNeedsSomething\r\n" +
	"    main_test.go:30: no such thing\r\n" +
	"--- SKIP: TestNeedsSomething (0.00s)\r\n" +
	"FAIL\r\n" +
	"partial line from a test@@vmtest end 03-cgroups-cpu exit=1 seconds=11.20\r\n" +
	"@@vmtest done\r\n" +
	"[   99.000000] reboot: Power down\r\n"

func TestParseReadsEachSuiteAndItsResults(t *testing.T) {
	rep := Parse(strings.NewReader(console))
	if !rep.Done || rep.Panic != "" {
		t.Fatalf("Done=%v Panic=%q, want done and no panic", rep.Done, rep.Panic)
	}
	if len(rep.Suites) != 2 {
		t.Fatalf("%d suites, want 2", len(rep.Suites))
	}
	s := rep.Suites[1]
	if s.Rel != "03-cgroups-cpu" || !s.Complete || s.Exit != 1 || s.Seconds != 11.2 {
		t.Errorf("suite = %q complete=%v exit=%d seconds=%v", s.Rel, s.Complete, s.Exit, s.Seconds)
	}
	var got []string
	for _, r := range s.Tests {
		got = append(got, r.Verdict+" "+r.Name)
	}
	want := "PASS TestBusyLoopHeldNearTwentyPercent|FAIL TestValues|FAIL TestValues/zero|PASS TestValues/max|SKIP TestNeedsSomething"
	if strings.Join(got, "|") != want {
		t.Errorf("results:\n got %s\nwant %s", strings.Join(got, "|"), want)
	}
	if s.Tests[0].Seconds != 10.5 {
		t.Errorf("time %v, want 10.5", s.Tests[0].Seconds)
	}
	// A failed subtest's output: from its own RUN line to its result line.
	zero := strings.Join(s.Tests[2].Output, "\n")
	if !strings.Contains(zero, "quota 0 accepted") || strings.Contains(zero, "TestBusyLoop") {
		t.Errorf("TestValues/zero's output:\n%s", zero)
	}
	if len(rep.Notes) != 1 || rep.Notes[0] != "kernel: 6.1.0-56-amd64 x86_64" {
		t.Errorf("notes = %q", rep.Notes)
	}
	if p := rep.Problems(); len(p) != 0 {
		t.Errorf("problems = %q, want none (the failures are tests' own)", p)
	}
}

func TestParseNoticesAPanicAndAGuestThatNeverFinished(t *testing.T) {
	rep := Parse(strings.NewReader("@@vmtest package 05-overlay-layers\n=== RUN   TestX\n" +
		"[   12.3] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009\n"))
	p := strings.Join(rep.Problems(), "\n")
	for _, want := range []string{"panicked: [   12.3] Kernel panic", "05-overlay-layers: the guest died", "did not finish"} {
		if !strings.Contains(p, want) {
			t.Errorf("problems lack %q:\n%s", want, p)
		}
	}
}

func TestParseBlamesASuiteThatExitedWithoutAFailingTest(t *testing.T) {
	rep := Parse(strings.NewReader("@@vmtest package a\n--- PASS: TestA (0.01s)\npanic: test timed out after 4m0s\n" +
		"@@vmtest end a exit=2 seconds=240\n@@vmtest package b\n@@vmtest end b exit=0 seconds=0\n@@vmtest done\n"))
	p := strings.Join(rep.Problems(), "\n")
	if !strings.Contains(p, "a: exited with status 2 without a failing test") || !strings.Contains(p, "b: ran no test") {
		t.Errorf("problems:\n%s", p)
	}
}

func TestSummaryCountsEachSuite(t *testing.T) {
	sum := Parse(strings.NewReader(console)).Summary()
	if !strings.Contains(sum, "03-cgroups-cpu      2     2     1     11.2s") {
		t.Errorf("summary:\n%s", sum)
	}
}

func TestTableListsEveryTestAndCountsSkipsApart(t *testing.T) {
	table := Parse(strings.NewReader(console)).Table()
	for _, want := range []string{
		"03-cgroups-cpu TestBusyLoopHeldNearTwentyPercent",
		"PASS      10.50s",
		"3 passed, 2 failed, 1 skipped",
		"note: kernel: 6.1.0-56-amd64",
		"measured: 03-cgroups-cpu TestBusyLoopHeldNearTwentyPercent: measured 20.3%",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
