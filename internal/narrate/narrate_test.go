package narrate

import (
	"bytes"
	"strings"
	"testing"
)

func TestLinesSayWhichSideSpokeWithoutColour(t *testing.T) {
	var b bytes.Buffer
	h := NewTo(&b, Options{NoColor: true}, Host)
	h.Step("make a namespace")
	h.Call(`clone(CLONE_NEWPID)`)
	c := NewTo(&b, Options{NoColor: true}, Container)
	c.Say("my PID is %d", 1)
	c.Check(true, "PID 1")
	c.Check(false, "empty /tmp")
	want := "host | Step 1: make a namespace\n" +
		"host |  $ clone(CLONE_NEWPID)\n" +
		"ctr  |  my PID is 1\n" +
		"ctr  |  check passed: PID 1\n" +
		"ctr  |  CHECK FAILED: empty /tmp\n"
	if b.String() != want {
		t.Fatalf("got:\n%q\nwant:\n%q", b.String(), want)
	}
	if strings.Contains(b.String(), "\x1b[") {
		t.Fatal("colour codes with NoColor")
	}
}

func TestQuietPrintsNothing(t *testing.T) {
	var b bytes.Buffer
	n := NewTo(&b, Options{Quiet: true, NoColor: true}, Host)
	n.Step("x")
	n.Say("y")
	n.Check(false, "z")
	n.Output("out")
	if b.Len() != 0 {
		t.Fatalf("quiet narrator printed %q", b.String())
	}
}

func TestChildContinuesTheParentsNumbering(t *testing.T) {
	var b bytes.Buffer
	p := NewTo(&b, Options{NoColor: true}, Host)
	p.Step("one")
	p.Step("two")
	env := p.Env()
	t.Setenv(EnvVar, strings.TrimPrefix(env, EnvVar+"="))
	c := FromEnv(Container)
	c.out = &b
	c.Step("three")
	if !strings.Contains(b.String(), "ctr  | Step 3: three") {
		t.Fatalf("child did not continue at step 3:\n%s", b.String())
	}
	p.Adopt(c.StepsSoFar())
	p.Step("four")
	if !strings.Contains(b.String(), "host | Step 4: four") {
		t.Fatalf("parent did not adopt the child's count:\n%s", b.String())
	}
}

func TestNoColorEnvironmentVariableWins(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	var b bytes.Buffer
	n := NewTo(&b, Options{}, Host)
	n.Check(true, "ok")
	if strings.Contains(b.String(), "\x1b[") || !strings.HasPrefix(b.String(), "host |") {
		t.Fatalf("NO_COLOR ignored: %q", b.String())
	}
}
