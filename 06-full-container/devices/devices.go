// Package devices enforces the OCI runtime spec's device cgroup rules
// (config.json's linux.resources.devices) on both cgroup versions:
//
//   - cgroup v1 has a "devices" controller: we write each rule, in order, to
//     the group's devices.deny or devices.allow file (ApplyV1);
//   - cgroup v2 has no devices controller: the kernel asks a small eBPF
//     program attached to the cgroup instead, so we generate that program from
//     the rules, load it and attach it (AttachV2, in bpf.go).
//
// Both start from "deny everything", and a later rule overrides an earlier
// one, the way runc does it. Docker sends, for example:
//
//	{"allow": false, "access": "rwm"}                                    deny all
//	{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"} /dev/null
//	{"allow": true, "type": "c", "access": "m"}                           mknod any char device
//	{"allow": true, "type": "c", "major": 136, "access": "rwm"}           the ptys
package devices

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Rule is one entry of linux.resources.devices. Type "" means "a" (all
// devices), a nil Major or Minor is the wildcard *, Access is some of r
// (read), w (write) and m (mknod); an empty Access is refused, as runc
// refuses it (v1 would take it as a rule about nothing).
//
// A rule of type "a" resets everything, whatever its numbers and letters:
// that is what the v1 kernel does with it ("a" clears every earlier rule and
// switches the group to allow-all or deny-all), and AttachV2 does the same.
type Rule = specs.LinuxDeviceCgroup

// Validate checks every rule and returns a one-line error for the first bad one.
func Validate(rules []Rule) error {
	for i, r := range rules {
		switch r.Type {
		case "", "a", "c", "b":
		default:
			return fmt.Errorf("linux.resources.devices[%d]: type %q must be a, c or b", i, r.Type)
		}
		if r.Access == "" {
			return fmt.Errorf("linux.resources.devices[%d]: access is empty: give some of r, w and m", i)
		}
		for _, l := range r.Access {
			if l != 'r' && l != 'w' && l != 'm' {
				return fmt.Errorf("linux.resources.devices[%d]: access %q may only hold the letters r, w and m", i, r.Access)
			}
		}
		for _, n := range []*int64{r.Major, r.Minor} {
			// MaxInt32: the eBPF program compares with a signed 32-bit
			// immediate; real majors have 12 bits and minors 20.
			if n != nil && (*n < 0 || *n > math.MaxInt32) {
				return fmt.Errorf("linux.resources.devices[%d]: device number %d is out of range (0 to %d, or omitted for *)", i, *n, math.MaxInt32)
			}
		}
	}
	return nil
}

// ApplyV1 writes the rules to the v1 devices group dir (for example
// /sys/fs/cgroup/devices/mycontainer), after a leading deny-all, so the
// group ends up allowing exactly what the rules allow. Write it before any
// process of the container runs in the group: "a" rules are refused once
// the group has child groups.
func ApplyV1(dir string, rules []Rule) error {
	if err := Validate(rules); err != nil {
		return err
	}
	if err := writeV1(dir, "devices.deny", "a *:* rwm"); err != nil {
		return err
	}
	for _, r := range rules {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		if err := writeV1(dir, file, V1Line(r)); err != nil {
			return err
		}
	}
	return nil
}

// V1Line is the rule in the devices.allow / devices.deny syntax:
// "type major:minor access", for example "c 1:3 rwm" or "c *:* m".
func V1Line(r Rule) string {
	num := func(n *int64) string {
		if n == nil {
			return "*"
		}
		return strconv.FormatInt(*n, 10)
	}
	return fmt.Sprintf("%s %s:%s %s", typeOf(r), num(r.Major), num(r.Minor), r.Access)
}

// The kernel takes one rule per write(2), so each rule is its own write.
func writeV1(dir, file, line string) error {
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, []byte(line), 0); err != nil {
		return fmt.Errorf("write %q to %s: %w (is %s a group of the v1 devices hierarchy, without child groups?)", line, p, err, dir)
	}
	return nil
}

func typeOf(r Rule) string {
	if r.Type == "" {
		return "a"
	}
	return r.Type
}
