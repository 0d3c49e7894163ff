package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// logHook is a hook that appends "KIND STATUS PID ID VAR LEAK" to log: what
// it read on stdin (the state), and its environment, which is the hook's
// own (nothing of the runtime's: the test sets WORKSHOP_HOOK_LEAK for it).
func logHook(kind, log string) specs.Hook {
	script := `s=$(cat); status=${s#*\"status\":\"}; id=${s#*\"id\":\"}; ` +
		`case $s in *'"pid":'*) pid=${s#*\"pid\":}; pid=${pid%%,*} ;; *) pid=none ;; esac; ` +
		`echo "` + kind + ` ${status%%\"*} $pid ${id%%\"*} $HOOKVAR ${WORKSHOP_HOOK_LEAK:-clean}" >> ` + log
	return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", script}, Env: []string{"HOOKVAR=" + kind + "-env"}}
}

// The six kinds run at their moments, in the spec's order, each with the
// state of that moment on stdin and its own environment; each failure
// rule holds.
func TestOCIHooksRunInOrderWithTheState(t *testing.T) {
	setup(t)
	t.Setenv("WORKSHOP_HOOK_LEAK", "leaked")
	log := filepath.Join(t.TempDir(), "hooks.log")
	dir := bundle(t, func(c *specs.Spec) {
		c.Process.Args = []string{"sh", "-c", "cat /dev/shm/started; echo command ran"}
		c.Hooks = &specs.Hooks{
			Prestart:        []specs.Hook{logHook("prestart", log)},
			CreateRuntime:   []specs.Hook{logHook("createRuntime", log)},
			CreateContainer: []specs.Hook{logHook("createContainer", log)},
			// Inside the container, after pivot_root: the bundle's sh.
			StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", `s=$(cat); s=${s#*\"status\":\"}; echo "startContainer $(id -u) ${s%%\"*}" > /dev/shm/started`}}},
			Poststart:      []specs.Hook{logHook("poststart", log)},
			Poststop:       []specs.Hook{logHook("poststop", log)},
		}
	})
	out, r := create(t, dir, "hooked")
	if r.Code != 0 {
		t.Fatalf("create:\n%s", r)
	}
	pid := strconv.Itoa(ociState(t, "hooked").Pid)
	if r := ctr(t, opts{}, "start", "hooked"); r.Code != 0 {
		t.Fatalf("start:\n%s", r)
	}
	waitStopped(t, "hooked")
	if r := ctr(t, opts{}, "delete", "hooked"); r.Code != 0 {
		t.Fatalf("delete:\n%s", r)
	}
	b, _ := os.ReadFile(log)
	want := "prestart creating " + pid + " hooked prestart-env clean\n" +
		"createRuntime creating " + pid + " hooked createRuntime-env clean\n" +
		"createContainer creating 1 hooked createContainer-env clean\n" +
		"poststart running " + pid + " hooked poststart-env clean\n" +
		"poststop stopped none hooked poststop-env clean\n"
	if string(b) != want {
		t.Errorf("the hooks' log:\n%s\nwant:\n%s", b, want)
	}
	if b, _ := os.ReadFile(out); string(b) != "startContainer 0 created\ncommand ran\n" {
		t.Errorf("the startContainer hook (inside, before the command): %q", b)
	}
	noContainersLeft(t)
}

func TestOCIHookFailures(t *testing.T) {
	setup(t)
	fail := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "echo no network for you >&2; exit 3"}}
	one := 1
	slow := specs.Hook{Path: "/bin/sleep", Args: []string{"sleep", "30"}, Timeout: &one}
	for _, c := range []struct {
		name  string
		hooks specs.Hooks
		want  string
	}{
		{"prestart", specs.Hooks{Prestart: []specs.Hook{fail}}, "prestart hook 0 (/bin/sh): exit status 3: no network for you"},
		{"createRuntime timeout", specs.Hooks{CreateRuntime: []specs.Hook{slow}}, "createRuntime hook 0 (/bin/sleep): timed out after 1 s"},
		{"createContainer", specs.Hooks{CreateContainer: []specs.Hook{fail}}, "createContainer hook 0 (/bin/sh): exit status 3"},
	} {
		dir := bundle(t, func(s *specs.Spec) { h := c.hooks; s.Hooks = &h })
		start := time.Now()
		_, r := create(t, dir, "hookfail")
		if r.Code == 0 || !strings.Contains(r.Stdout, c.want) {
			t.Errorf("%s: want create to fail naming the hook (%s):\n%s", c.name, c.want, r)
			ctr(t, opts{}, "delete", "--force", "hookfail")
		}
		if time.Since(start) > 10*time.Second {
			t.Errorf("%s: create took %v", c.name, time.Since(start))
		}
		noContainersLeft(t)
	}

	// A failing startContainer hook stops the container before its command.
	dir := bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"echo", "command ran"}
		s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{fail}}
	})
	out, r := create(t, dir, "hookfail")
	if r.Code != 0 {
		t.Fatalf("create:\n%s", r)
	}
	ctr(t, opts{}, "start", "hookfail")
	waitStopped(t, "hookfail")
	if b, _ := os.ReadFile(out); strings.Contains(string(b), "command ran") || !strings.Contains(string(b), "startContainer hook 0") {
		t.Errorf("the command ran after a failed startContainer hook: %q", b)
	}
	ctr(t, opts{}, "delete", "hookfail")

	// poststart and poststop failures are warnings: start and delete succeed.
	dir = bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"true"}
		s.Hooks = &specs.Hooks{Poststart: []specs.Hook{fail}, Poststop: []specs.Hook{fail}}
	})
	if _, r := create(t, dir, "hookwarn"); r.Code != 0 {
		t.Fatalf("create:\n%s", r)
	}
	if r := ctr(t, opts{}, "start", "hookwarn"); r.Code != 0 || !strings.Contains(r.Stderr, "warning: poststart hook 0") {
		t.Errorf("start with a failing poststart hook: want success and a warning:\n%s", r)
	}
	waitStopped(t, "hookwarn")
	if r := ctr(t, opts{}, "delete", "hookwarn"); r.Code != 0 || !strings.Contains(r.Stderr, "warning: poststop hook 0") {
		t.Errorf("delete with a failing poststop hook: want success and a warning:\n%s", r)
	}
	noContainersLeft(t)

	// A relative path can never run: refused at create, by field.
	dir = bundle(t, func(s *specs.Spec) { s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "sh"}}} })
	if _, r := create(t, dir, "hookfail"); r.Code == 0 || !strings.Contains(r.Stdout, "hooks.prestart[0].path") {
		t.Errorf("a relative hook path: %s", r)
	}
	noContainersLeft(t)
}
