package stage

import (
	"errors"
	"os/exec"
	"testing"
)

func TestErrorsBecomeOneLineAndAStatus(t *testing.T) {
	if got := report("x", nil); got != 0 {
		t.Fatalf("nil error: status %d", got)
	}
	if got := report("x", ExitStatus(3)); got != 3 {
		t.Fatalf("ExitStatus(3): status %d", got)
	}
	if got := report("x", Fail("bad\nsecond line")); got != 1 {
		t.Fatalf("Fail: status %d", got)
	}
	if got := report("x", errors.New("plain")); got != 1 {
		t.Fatalf("plain error: status %d", got)
	}
}

func TestStatusOfASignalledChildIs128PlusSignal(t *testing.T) {
	err := exec.Command("sh", "-c", "kill -KILL $$").Run()
	if st, ok := StatusOf(err); !ok || st != 137 {
		t.Fatalf("SIGKILL: got %d %v, want 137", st, ok)
	}
	err = exec.Command("sh", "-c", "exit 3").Run()
	if st, ok := StatusOf(err); !ok || st != 3 {
		t.Fatalf("exit 3: got %d %v", st, ok)
	}
}

func TestLookPathFindsExecutablesOnly(t *testing.T) {
	if _, err := LookPath("sh"); err != nil {
		t.Fatalf("sh not found: %v", err)
	}
	if _, err := LookPath("no-such-command-anywhere"); err == nil {
		t.Fatal("found a command that does not exist")
	}
	if _, err := LookPath("/etc/passwd"); err == nil {
		t.Fatal("/etc/passwd is not executable")
	}
}
