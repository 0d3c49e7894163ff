package main

// OCI hooks: programs the caller names in config.json, run at six points of
// a container's life, each given the container's state (JSON) on its
// standard input. Docker's own network is the first real user: its
// prestart hook (`libnetwork-setkey`, dockerd itself) reads the PID from
// that state and moves the container's end of a veth pair into
// /proc/PID/ns/net, before the container's process goes on.
//
//	kind             run by                         where its path is found   if it fails
//	createRuntime    the runtime, after the clone   the runtime's namespaces  create fails
//	prestart         (the same; the older name)     the runtime's namespaces  create fails
//	createContainer  the container's first process  the container's mounts,   create fails
//	                 before pivot_root                before pivot_root
//	startContainer   the container's first process  the container's root      the start fails
//	                 at start, before the exec
//	poststart        `start`, after the exec        the runtime's namespaces  a warning
//	poststop         `delete`, once it is gone      the runtime's namespaces  a warning
//
// The order, the state's status at each point, and the failure rules are
// the runtime spec's (config.md, "POSIX-platform Hooks"), as runc does them.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hookState is the state each hook reads on stdin.
func hookState(id, bundle string, annotations map[string]string, status specs.ContainerState, pid int) specs.State {
	return specs.State{Version: specs.Version, ID: id, Status: status, Pid: pid, Bundle: bundle, Annotations: annotations}
}

// runHooks runs the hooks of one kind in their order, and stops at the first
// that fails: its exit status, or its timeout, and what it wrote.
func runHooks(kind string, hooks []specs.Hook, state specs.State, say func(call string)) error {
	in, err := json.Marshal(state)
	if err != nil {
		return err
	}
	for i, h := range hooks {
		if say != nil {
			say(fmt.Sprintf("fork, execve(%q)   # %s hook %d, the state (%s) on its stdin", h.Path, kind, i, state.Status))
		}
		if err := runHook(h, in); err != nil {
			return fmt.Errorf("%s hook %d (%s): %v", kind, i, h.Path, err)
		}
	}
	return nil
}

func runHook(h specs.Hook, state []byte) error {
	ctx := context.Background()
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("timeout %d: give a number of seconds above 0", *h.Timeout)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	// The hook's own argv and environment, exactly: nothing of ours.
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Args = h.Args
	if len(cmd.Args) == 0 {
		cmd.Args = []string{h.Path}
	}
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(state)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second // a grandchild holding its output must not hold us
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %d s (killed)", *h.Timeout)
	}
	if err != nil {
		if msg := strings.TrimSpace(out.String()); msg != "" {
			return fmt.Errorf("%v: %s", err, msg)
		}
		return err
	}
	return nil
}

// hasHooks says whether the config names any hook of these kinds.
func hasHooks(lists ...[]specs.Hook) bool {
	for _, l := range lists {
		if len(l) > 0 {
			return true
		}
	}
	return false
}

// checkHooks refuses, at create, a hook that could never run.
func checkHooks(h *specs.Hooks) error {
	if h == nil {
		return nil
	}
	for kind, list := range map[string][]specs.Hook{"prestart": h.Prestart, "createRuntime": h.CreateRuntime,
		"createContainer": h.CreateContainer, "startContainer": h.StartContainer, "poststart": h.Poststart, "poststop": h.Poststop} {
		for i, hk := range list {
			switch {
			case !strings.HasPrefix(hk.Path, "/"):
				return fmt.Errorf("hooks.%s[%d].path %q: give an absolute path", kind, i, hk.Path)
			case hk.Timeout != nil && *hk.Timeout <= 0:
				return fmt.Errorf("hooks.%s[%d].timeout %d: give a number of seconds above 0", kind, i, *hk.Timeout)
			}
		}
	}
	return nil
}
