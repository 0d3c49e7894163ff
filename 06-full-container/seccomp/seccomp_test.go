package seccomp

import (
	"encoding/binary"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// These tests run the compiled programs in golang.org/x/net/bpf's
// interpreter, on a seccomp_data built here, and check every answer
// against the rule evaluated in Go. (The real kernel's answers are
// checked by stage 06's tests, in containers.)

// vm runs the program on one call. x/net/bpf's interpreter loads words
// big-endian, so each 32-bit field of seccomp_data is written that way.
func vm(t *testing.T, f *Filter, audit, nr uint32, args [6]uint64) uint32 {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(f.Program))
	for i, in := range f.Program {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("the program does not disassemble")
	}
	v, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("the program is not valid BPF: %v", err)
	}
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[0:], nr)
	binary.BigEndian.PutUint32(data[4:], audit)
	for i, a := range args {
		binary.BigEndian.PutUint32(data[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(data[20+8*i:], uint32(a>>32))
	}
	out, err := v.Run(data)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(out)
}

func compileFor(t *testing.T, c *specs.LinuxSeccomp) *Filter {
	t.Helper()
	f, err := compile(c, options{goarch: "amd64"})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return f
}

func nr(t *testing.T, a specs.Arch, name string) uint32 {
	t.Helper()
	n, ok := Number(a, name)
	if !ok {
		t.Fatalf("%s has no %s", a, name)
	}
	return n
}

var errno42 = uint(42)

// holds is the rule, in Go, on 64-bit values.
func holds(op specs.LinuxSeccompOperator, arg, v, v2 uint64) bool {
	switch op {
	case specs.OpEqualTo:
		return arg == v
	case specs.OpNotEqual:
		return arg != v
	case specs.OpLessThan:
		return arg < v
	case specs.OpLessEqual:
		return arg <= v
	case specs.OpGreaterThan:
		return arg > v
	case specs.OpGreaterEqual:
		return arg >= v
	case specs.OpMaskedEqual:
		return arg&v == v2
	}
	panic(op)
}

func TestEveryOperatorComparesAll64Bits(t *testing.T) {
	values := []uint64{0, 1, 5, 0xffffffff, 0x100000000, 0x100000004, 0x100000005, 0x100000006,
		0x1ffffffff, 0x200000000, 0x200000005, 0xffffffff00000005, 0xffffffffffffffff}
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
		specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual}
	for _, op := range ops {
		for _, v := range []uint64{5, 0x100000005, 0xffffffff} {
			v2 := v & 0x100000004 // for MASKED_EQ
			c := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
				Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: &errno42,
					Args: []specs.LinuxSeccompArg{{Index: 2, Value: v, ValueTwo: v2, Op: op}}}}}
			f := compileFor(t, c)
			for _, arg := range values {
				want := uint32(unix.SECCOMP_RET_ALLOW)
				if holds(op, arg, v, v2) {
					want = unix.SECCOMP_RET_ERRNO | 42
				}
				got := vm(t, f, unix.AUDIT_ARCH_X86_64, nr(t, specs.ArchX86_64, "getppid"), [6]uint64{2: arg})
				if got != want {
					t.Errorf("x86_64: %s %#x, argument %#x: got %s, want %s", op, v, arg, ActionName(got), ActionName(want))
				}
				// i386: arguments are 32-bit, their high half 0.
				arg32 := uint64(uint32(arg))
				want = unix.SECCOMP_RET_ALLOW
				if holds(op, arg32, v, v2) {
					want = unix.SECCOMP_RET_ERRNO | 42
				}
				got = vm(t, f, unix.AUDIT_ARCH_I386, nr(t, specs.ArchX86, "getppid"), [6]uint64{2: arg32})
				if got != want {
					t.Errorf("i386: %s %#x, argument %#x: got %s, want %s", op, v, arg32, ActionName(got), ActionName(want))
				}
			}
		}
	}
}

func TestSeveralConditionsAllMustHoldUnlessTheyTestOneArgument(t *testing.T) {
	c := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"getppid"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{
			{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 1, Value: 2, Op: specs.OpEqualTo}}},
		// runc's rule: two conditions on one argument are either-or.
		{Names: []string{"getpid"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{
			{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 0, Value: 7, Op: specs.OpEqualTo}}},
	}}
	f := compileFor(t, c)
	deny := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
	for _, tc := range []struct {
		call string
		args [6]uint64
		want uint32
	}{{"getppid", [6]uint64{1, 2}, deny}, {"getppid", [6]uint64{1, 3}, unix.SECCOMP_RET_ALLOW}, {"getppid", [6]uint64{0, 2}, unix.SECCOMP_RET_ALLOW},
		{"getpid", [6]uint64{1}, deny}, {"getpid", [6]uint64{7}, deny}, {"getpid", [6]uint64{3}, unix.SECCOMP_RET_ALLOW}} {
		if got := vm(t, f, unix.AUDIT_ARCH_X86_64, nr(t, specs.ArchX86_64, tc.call), tc.args); got != tc.want {
			t.Errorf("%s%v: got %s, want %s", tc.call, tc.args[:2], ActionName(got), ActionName(tc.want))
		}
	}
}

func TestOtherABIsAreKilledOrJudgedByTheirOwnNumbers(t *testing.T) {
	deny := []specs.LinuxSyscall{{Names: []string{"keyctl"}, Action: specs.ActErrno}}
	only64 := compileFor(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64}, Syscalls: deny})
	all := compileFor(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}, Syscalls: deny})
	kill, eperm, allow := uint32(unix.SECCOMP_RET_KILL_PROCESS), uint32(unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM)), uint32(unix.SECCOMP_RET_ALLOW)
	for _, tc := range []struct {
		what        string
		f           *Filter
		audit, nr   uint32
		want        uint32
		description string
	}{
		{"x86_64 keyctl", only64, unix.AUDIT_ARCH_X86_64, 250, eperm, ""},
		{"i386 keyctl (int $0x80), i386 not named", only64, unix.AUDIT_ARCH_I386, 288, kill, ""},
		{"x32 keyctl, x32 not named", only64, unix.AUDIT_ARCH_X86_64, 250 | x32Bit, kill, ""},
		{"aarch64, not named", only64, unix.AUDIT_ARCH_AARCH64, 219, kill, ""},
		{"i386 keyctl (288: accept4's number on x86_64)", all, unix.AUDIT_ARCH_I386, 288, eperm, ""},
		{"x86_64 accept4 (288)", all, unix.AUDIT_ARCH_X86_64, 288, allow, ""},
		{"x32 keyctl", all, unix.AUDIT_ARCH_X86_64, 250 | x32Bit, eperm, ""},
		{"x32 getpid", all, unix.AUDIT_ARCH_X86_64, 39 | x32Bit, allow, ""},
	} {
		if got := vm(t, tc.f, tc.audit, tc.nr, [6]uint64{}); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.what, ActionName(got), ActionName(tc.want))
		}
	}
}

func TestDockersDefaultProfileDecidesAsDocker(t *testing.T) {
	p, err := render(DockerDefault(), []string{"CAP_CHOWN", "CAP_SYS_CHROOT"}, "amd64", [2]int{6, 1})
	if err != nil {
		t.Fatal(err)
	}
	f := compileFor(t, p)
	if len(f.Program) > 1000 {
		t.Errorf("the program is %d instructions: the binary search should keep it short", len(f.Program))
	}
	x := func(name string) uint32 { return nr(t, specs.ArchX86_64, name) }
	allow, eperm := uint32(unix.SECCOMP_RET_ALLOW), uint32(unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM))
	enosys := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))
	for _, tc := range []struct {
		what string
		nr   uint32
		args [6]uint64
		want uint32
	}{
		{"getppid", x("getppid"), [6]uint64{}, allow},
		{"chroot (CAP_SYS_CHROOT held)", x("chroot"), [6]uint64{}, allow},
		{"ptrace (kernel >= 4.8)", x("ptrace"), [6]uint64{}, allow},
		{"keyctl", x("keyctl"), [6]uint64{}, eperm},
		{"add_key", x("add_key"), [6]uint64{}, eperm},
		{"unshare", x("unshare"), [6]uint64{unix.CLONE_NEWUSER}, eperm},
		{"mount", x("mount"), [6]uint64{}, eperm},
		{"kexec_load", x("kexec_load"), [6]uint64{}, eperm},
		{"open_by_handle_at", x("open_by_handle_at"), [6]uint64{}, eperm},
		{"bpf", x("bpf"), [6]uint64{}, eperm},
		{"clone a thread", x("clone"), [6]uint64{unix.CLONE_VM | unix.CLONE_THREAD | unix.CLONE_SIGHAND}, allow},
		{"clone a user namespace", x("clone"), [6]uint64{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}, eperm},
		{"clone3", x("clone3"), [6]uint64{}, enosys},
		{"personality(PER_LINUX32)", x("personality"), [6]uint64{8}, allow},
		{"personality(ADDR_NO_RANDOMIZE)", x("personality"), [6]uint64{0x0040000}, eperm},
		{"a call newer than the profile", 470, [6]uint64{}, enosys},
	} {
		if got := vm(t, f, unix.AUDIT_ARCH_X86_64, tc.nr, tc.args); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.what, ActionName(got), ActionName(tc.want))
		}
	}
	// With CAP_SYS_ADMIN the capability's calls are Docker's to allow.
	p, _ = render(DockerDefault(), []string{"CAP_SYS_ADMIN"}, "amd64", [2]int{6, 1})
	f = compileFor(t, p)
	for _, name := range []string{"mount", "unshare", "clone3", "bpf"} {
		if got := vm(t, f, unix.AUDIT_ARCH_X86_64, x(name), [6]uint64{}); got != allow {
			t.Errorf("%s with CAP_SYS_ADMIN: got %s", name, ActionName(got))
		}
	}
	if got := vm(t, f, unix.AUDIT_ARCH_X86_64, x("chroot"), [6]uint64{}); got != eperm {
		t.Errorf("chroot without CAP_SYS_CHROOT: got %s", ActionName(got))
	}
}

func TestFarJumpsStillLandRight(t *testing.T) {
	// Hundreds of conditional rules: the binary search's jumps span more
	// than 255 instructions.
	c := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
	for _, e := range tableX86_64[:300] {
		c.Syscalls = append(c.Syscalls, specs.LinuxSyscall{Names: []string{e.name}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: uint64(e.nr), Op: specs.OpEqualTo}}})
	}
	f := compileFor(t, c)
	if len(f.Program) < 1000 {
		t.Fatalf("want a long program, got %d instructions", len(f.Program))
	}
	for _, e := range tableX86_64[:300] {
		if got := vm(t, f, unix.AUDIT_ARCH_X86_64, e.nr, [6]uint64{uint64(e.nr)}); got != unix.SECCOMP_RET_ALLOW {
			t.Errorf("%s(%d): got %s", e.name, e.nr, ActionName(got))
		}
		if got := vm(t, f, unix.AUDIT_ARCH_X86_64, e.nr, [6]uint64{uint64(e.nr) + 1}); got&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_ERRNO {
			t.Errorf("%s(%d+1): got %s", e.name, e.nr, ActionName(got))
		}
	}
}

func TestUnknownNamesAreSkipped(t *testing.T) {
	f := compileFor(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"no_such_call_2099", "getppid"}, Action: specs.ActErrno}}})
	if len(f.Unknown) != 1 || f.Unknown[0] != "no_such_call_2099" {
		t.Fatalf("unknown names: %v", f.Unknown)
	}
	if got := vm(t, f, unix.AUDIT_ARCH_X86_64, nr(t, specs.ArchX86_64, "getppid"), [6]uint64{}); got&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_ERRNO {
		t.Fatalf("getppid beside an unknown name: %s", ActionName(got))
	}
}

func TestMalformedProfilesNameTheField(t *testing.T) {
	big := uint(5000)
	for want, c := range map[string]*specs.LinuxSeccomp{
		"defaultAction":                       {DefaultAction: "SCMP_ACT_MAYBE"},
		"syscalls[0].action":                  {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: "ALLOW"}}},
		"syscalls[0].names is empty":          {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Action: specs.ActErrno}}},
		"syscalls[0].args[0].op":              {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Op: "SCMP_CMP_SOMETIMES"}}}}},
		"syscalls[0].args[0].index 6":         {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}},
		"syscalls[0].action: errnoRet":        {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, ErrnoRet: &big}}},
		"syscalls[0].errnoRet is only":        {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActKill, ErrnoRet: &errno42}}},
		"syscalls[0].action: SCMP_ACT_NOTIFY": {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActNotify}}},
		"listenerPath":                        {DefaultAction: specs.ActAllow, ListenerPath: "/run/agent.sock"},
		"architectures[0] SCMP_ARCH_S390X":    {DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchS390X}},
		"flags[0]":                            {DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FAST"}},
	} {
		_, err := compile(c, options{goarch: "amd64"})
		if err == nil || !strings.HasPrefix(err.Error(), strings.Fields(want)[0]) || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error naming %q, got %v", want, err)
		}
	}
}

func TestDockerProfilesAreReadAndRendered(t *testing.T) {
	p, err := ParseProfile([]byte(`{"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
		"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
			{"name": "mount", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
			{"names": ["keyctl"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.1"}},
			{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := render(p, nil, "amd64", [2]int{6, 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Syscalls) != 1 || out.Syscalls[0].Names[0] != "read" || len(out.Architectures) != 2 {
		t.Fatalf("rendered: %+v", out)
	}
	if _, err := ParseProfile([]byte(`{"defaultAction": "SCMP_ACT_ERRNO", "sycalls": []}`)); err == nil || !strings.Contains(err.Error(), `"sycalls"`) {
		t.Fatalf("a misspelt field: %v", err)
	}
	p, _ = ParseProfile([]byte(`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["x"], "action": "SCMP_ACT_FLY"}]}`))
	if _, err := render(p, nil, "amd64", [2]int{6, 1}); err == nil || !strings.HasPrefix(err.Error(), "syscalls[1].action") {
		t.Fatalf("a bad action: %v", err)
	}
}

func TestTheDumpSaysWhatEachInstructionIsFor(t *testing.T) {
	p, _ := render(DockerDefault(), nil, "amd64", [2]int{6, 1})
	f := compileFor(t, p)
	d := strings.Join(f.Dump(8), "\n")
	for _, want := range []string{"ld   [4]", "AUDIT_ARCH_X86_64", "AUDIT_ARCH_I386", "KILL_PROCESS", "bit 30"} {
		if !strings.Contains(d, want) {
			t.Errorf("the dump lacks %q:\n%s", want, d)
		}
	}
}
