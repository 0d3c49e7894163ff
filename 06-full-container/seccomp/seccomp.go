// Package seccomp turns the OCI runtime spec's linux.seccomp (a default
// action, and rules naming system calls, with conditions on their
// arguments) into the program the kernel runs on every system call the
// container makes, and installs it.
//
// The program is classic BPF, the packet filters' language: the kernel
// hands it a struct seccomp_data,
//
//	struct seccomp_data {
//		int   nr;                   // offset 0: the call's number
//		__u32 arch;                 // offset 4: AUDIT_ARCH_*, the ABI it came through
//		__u64 instruction_pointer;  // offset 8
//		__u64 args[6];              // offset 16: the arguments, 8 bytes each
//	};
//
// and the program's return value decides: SECCOMP_RET_ALLOW runs the call,
// SECCOMP_RET_ERRNO|e fails it with errno e without running it,
// SECCOMP_RET_KILL_PROCESS kills the process (SIGSYS), and so on. The
// program has one register to compare with and can only jump forward, so
// it cannot loop: the kernel checks that and then trusts it.
//
// What it compiles to, for each ABI the profile names (the arch check
// comes first: see arch.go):
//
//	ld  [4]                       ; arch
//	jeq AUDIT_ARCH_X86_64 ...     ; one per ABI, to its own section
//	ret KILL_PROCESS              ; any other ABI
//	ld  [0]                       ; nr (x86_64: x32's numbers, bit 30, apart)
//	jge 157 ...                   ; a binary search on the call's number,
//	jge 39 ...                    ;   over ranges of numbers that end the same
//	ret ALLOW                     ;   way: ~8 comparisons for any call
//	ld  [16] ...                  ; a call with argument conditions tests them
//
// libseccomp, which runc links, builds the same kind of program; this one
// is written in Go (no cgo), with golang.org/x/net/bpf as the assembler.
package seccomp

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Filter is a profile compiled for this machine.
type Filter struct {
	Program []unix.SockFilter
	Flags   uintptr // SECCOMP_FILTER_FLAG_*
	Rules   int     // entries in the profile's syscalls
	Calls   int     // system calls of the native ABI the rules name
	Unknown []string
	Default uint32 // the default action's SECCOMP_RET_* value
	Arches  []specs.Arch
	notes   []string
	noted   bool
	source  *specs.LinuxSeccomp
	goarch  string
}

// seccomp_data's layout.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// badArch is what a call through an ABI the profile did not name gets.
// libseccomp's default kills the thread; the whole process is cleaner: a
// half-killed multithreaded program is no better than a dead one.
const badArch = unix.SECCOMP_RET_KILL_PROCESS

// maxInsns is BPF_MAXINSNS: the longest program the kernel takes.
const maxInsns = 4096

// tsync is runc's name for SECCOMP_FILTER_FLAG_TSYNC, not in the spec.
const tsync = "SECCOMP_FILTER_FLAG_TSYNC"

// cond is one argument condition; a rule matches when all of its hold.
type cond struct {
	arg  uint
	op   specs.LinuxSeccompOperator
	a, b uint64 // value, valueTwo
}

type rule struct {
	conds  []cond
	action uint32
	index  int // in the profile's syscalls
}

// use is a rule for one call number of one ABI.
type use struct {
	nr   uint32
	name string
	rule *rule
}

// Compile checks a profile and builds its program for this machine.
// Errors name the field (`syscalls[3].action`) relative to linux.seccomp.
// Names that no table here knows are skipped, as runc does: a profile
// written for a newer kernel must still load.
func Compile(c *specs.LinuxSeccomp) (*Filter, error) {
	return compile(c, options{goarch: runtime.GOARCH, kernel: true})
}

// Check checks a profile as Compile does, without building the program:
// what a runtime does when it is given one (OCI create), before the
// container's first process compiles and installs it.
func Check(c *specs.LinuxSeccomp) error {
	_, err := compile(c, options{goarch: runtime.GOARCH, kernel: true, checkOnly: true})
	return err
}

type options struct {
	goarch    string
	kernel    bool // ask the kernel whether it has each action and flag
	notes     bool // say what each instruction is for (Dump)
	checkOnly bool
}

func compile(c *specs.LinuxSeccomp, o options) (*Filter, error) {
	goarch, checkKernel := o.goarch, o.kernel
	def, err := Action(c.DefaultAction, c.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("defaultAction: %v", err)
	}
	if c.DefaultErrnoRet != nil && c.DefaultAction != specs.ActErrno && c.DefaultAction != specs.ActTrace {
		return nil, fmt.Errorf("defaultErrnoRet is only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not %s", c.DefaultAction)
	}
	if c.ListenerPath != "" || c.ListenerMetadata != "" {
		return nil, fmt.Errorf("listenerPath: a seccomp agent (SCMP_ACT_NOTIFY) is not supported by this runtime: remove it")
	}
	f := &Filter{Rules: len(c.Syscalls), Default: def}
	for i, fl := range c.Flags {
		bit, err := flag(fl)
		if err != nil {
			return nil, fmt.Errorf("flags[%d]: %v", i, err)
		}
		if checkKernel && bit != 0 && !flagAvailable(bit) {
			return nil, fmt.Errorf("flags[%d]: this kernel does not know %s", i, fl)
		}
		f.Flags |= bit
	}

	// The ABIs: those named, and the native one always (a filter that
	// does not know the native ABI would kill every call).
	can := runnable(goarch)
	if len(can) == 0 {
		return nil, fmt.Errorf("seccomp filters are not supported on %s", goarch)
	}
	f.Arches = []specs.Arch{can[0]}
	for i, a := range c.Architectures {
		if _, known := arches[a]; !known && !strings.HasPrefix(string(a), "SCMP_ARCH_") {
			return nil, fmt.Errorf("architectures[%d] %q is not an architecture (SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64 ...)", i, a)
		}
		if !hasArch(can, a) {
			return nil, fmt.Errorf("architectures[%d] %s: no process on this %s machine can call the kernel that way (it can: %s)", i, a, goarch, archList(can))
		}
		if !hasArch(f.Arches, a) {
			f.Arches = append(f.Arches, a)
		}
	}

	// The rules, checked, and each name looked up in each ABI's table.
	uses := map[specs.Arch][]use{}
	for i, s := range c.Syscalls {
		act, rules, err := checkRule(s)
		if err != nil {
			return nil, fmt.Errorf("syscalls[%d].%v", i, err)
		}
		if checkKernel && !actionAvailable(act) {
			return nil, fmt.Errorf("syscalls[%d].action %s: this kernel does not have it", i, s.Action)
		}
		if o.checkOnly {
			continue
		}
		for _, name := range s.Names {
			known := false
			for _, a := range f.Arches {
				nr, ok := arches[a].table.lookup(name)
				if !ok {
					continue
				}
				known = true
				for k := range rules {
					rules[k].index = i
					uses[a] = append(uses[a], use{nr: nr, name: name, rule: &rules[k]})
				}
			}
			if !known && !hasString(f.Unknown, name) {
				f.Unknown = append(f.Unknown, name)
			}
		}
	}
	if checkKernel && !actionAvailable(def) {
		return nil, fmt.Errorf("defaultAction %s: this kernel does not have it", c.DefaultAction)
	}
	if o.checkOnly {
		return f, nil
	}
	for _, a := range f.Arches {
		// By number, in the profile's order for each number.
		u := uses[a]
		keys := make([]uint64, len(u))
		for i := range u {
			keys[i] = uint64(u[i].nr)<<32 | uint64(i)
		}
		slices.Sort(keys)
		sorted := make([]use, len(u))
		for i, k := range keys {
			sorted[i] = u[uint32(k)]
		}
		uses[a] = sorted
	}
	for i, u := range uses[f.Arches[0]] {
		if i == 0 || u.nr != uses[f.Arches[0]][i-1].nr {
			f.Calls++
		}
	}

	// Calls numbered above every call the profile names are newer than
	// the profile: they fail with ENOSYS, which a C library takes as "this
	// kernel is too old" and falls back from (runc does the same), rather
	// than with the default action's EPERM, which it takes as a refusal.
	enosys := uint32(0)
	if !allowLike(def) {
		enosys = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	}

	a := newAsm()
	a.notes = o.notes
	a.load(offArch, "A = the ABI the call came through (seccomp_data.arch)")
	type section struct {
		audit    uint32
		l        label
		abi, x32 *archInfo
	}
	var sections []*section
	for _, name := range f.Arches {
		info := arches[name]
		var s *section
		for _, o := range sections {
			if o.audit == info.audit {
				s = o
			}
		}
		if s == nil {
			s = &section{audit: info.audit, l: a.label()}
			sections = append(sections, s)
			a.jump(bpf.JumpEqual, info.audit, s.l, next, auditName(info.audit))
		}
		if info.x32 {
			s.x32 = info
		} else {
			s.abi = info
		}
	}
	a.ret(badArch, a.say("any other ABI: KILL_PROCESS"))
	tree := func(info *archInfo) {
		u := uses[info.name]
		if len(u) == 0 {
			a.tree(info, u, def, 0, 0) // no call of this ABI named: no stub (as runc)
			return
		}
		a.tree(info, u, def, u[len(u)-1].nr, enosys)
	}
	for _, s := range sections {
		a.mark(s.l)
		a.load(offNr, "A = the call's number (seccomp_data.nr)")
		if s.audit != unix.AUDIT_ARCH_X86_64 {
			tree(s.abi)
			continue
		}
		// x86_64 and x32 share an audit value: x32's numbers have bit 30.
		other, bad := a.label(), a.label()
		switch {
		case s.abi != nil && s.x32 != nil:
			a.jump(bpf.JumpGreaterOrEqual, x32Bit, other, next, "bit 30 set: an x32 call")
			tree(s.abi)
			a.mark(other)
			tree(s.x32)
		case s.abi != nil:
			a.jump(bpf.JumpGreaterOrEqual, x32Bit, bad, next, "bit 30 set: an x32 call, not allowed")
			tree(s.abi)
			a.mark(bad)
			a.ret(badArch, a.say("x32: KILL_PROCESS"))
		default:
			a.jump(bpf.JumpGreaterOrEqual, x32Bit, next, bad, "bit 30 clear: an x86_64 call, not allowed")
			tree(s.x32)
			a.mark(bad)
			a.ret(badArch, a.say("x86_64: KILL_PROCESS"))
		}
	}
	raw, said, err := a.resolve()
	if err != nil {
		return nil, err
	}
	if len(raw) > maxInsns {
		return nil, fmt.Errorf("syscalls: the program would be %d instructions long, and the kernel takes at most %d: fewer rules", len(raw), maxInsns)
	}
	f.Program = make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		f.Program[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	f.notes, f.noted, f.source, f.goarch = said, o.notes, c, goarch
	return f, nil
}

// segment is a range of call numbers that end the same way: a return, or
// (one number) the argument tests of its rules.
type segment struct {
	lo, hi uint32
	ret    uint32
	rules  []rule // conditional: test these first
	name   string
}

// tree writes one ABI's part: a binary search on the call's number. uses
// is sorted by number, in the profile's order for each number.
func (a *asm) tree(info *archInfo, uses []use, def, highest, enosys uint32) {
	a.abi = info
	var segs []segment
	add := func(s segment) {
		if n := len(segs); n > 0 && s.rules == nil && segs[n-1].rules == nil && segs[n-1].ret == s.ret && segs[n-1].hi+1 == s.lo {
			segs[n-1].hi = s.hi
			segs[n-1].name = ""
			return
		}
		segs = append(segs, s)
	}
	lo := uint32(0)
	if info.x32 {
		lo = x32Bit
	}
	for i := 0; i < len(uses); {
		nr := uses[i].nr
		if nr > lo {
			add(segment{lo: lo, hi: nr - 1, ret: def})
		}
		s := segment{lo: nr, hi: nr, name: uses[i].name, ret: def}
		for ; i < len(uses) && uses[i].nr == nr; i++ {
			r := *uses[i].rule
			switch {
			case r.action == def:
				// says what the default says (runc skips these too)
			case len(r.conds) > 0:
				s.rules = append(s.rules, r)
			case s.ret == def:
				s.ret = r.action // the first unconditional rule decides
			}
		}
		add(s)
		lo = nr + 1
	}
	const top = uint32(0xffffffff)
	switch {
	case enosys != 0 && highest < top:
		if lo <= highest {
			add(segment{lo: lo, hi: highest, ret: def})
		}
		add(segment{lo: highest + 1, hi: top, ret: enosys, name: "newer than the profile"})
	case lo != 0 || len(segs) == 0:
		add(segment{lo: lo, hi: top, ret: def})
	}
	a.search(segs)
}

func (a *asm) search(segs []segment) {
	if len(segs) == 1 {
		a.outcome(segs[0])
		return
	}
	mid := len(segs) / 2
	right := a.label()
	note := ""
	if a.notes {
		note = fmt.Sprintf("nr >= %d", segs[mid].lo&^x32Bit)
		if segs[mid].name != "" {
			note += " (" + segs[mid].name + ")"
		}
	}
	a.jump(bpf.JumpGreaterOrEqual, segs[mid].lo, right, next, note)
	a.search(segs[:mid])
	a.mark(right)
	a.search(segs[mid:])
}

func (a *asm) outcome(s segment) {
	info := a.abi
	what := s.name
	if a.notes {
		switch {
		case s.lo == s.hi && s.name == "":
			what = fmt.Sprint(s.lo &^ x32Bit)
		case s.hi == 0xffffffff:
			what = fmt.Sprintf("%d and up", s.lo&^x32Bit)
		case s.lo != s.hi:
			what = fmt.Sprintf("%d-%d", s.lo&^x32Bit, s.hi&^x32Bit)
		}
		if s.lo != s.hi && s.name != "" {
			what += ", " + s.name
		}
	}
	for _, r := range s.rules {
		fail := a.label()
		if !a.conditions(info, r.conds, fail, s.name) {
			continue // can never match here (a 32-bit ABI's high half is 0)
		}
		note := ""
		if a.notes {
			note = fmt.Sprintf("%s: %s (syscalls[%d])", s.name, ActionName(r.action), r.index)
		}
		a.ret(r.action, note)
		a.mark(fail)
	}
	note := ""
	if a.notes {
		note = what + ": " + ActionName(s.ret)
	}
	a.ret(s.ret, note)
}

// conditions writes the tests of one rule: they fall through when all
// hold and jump to fail at the first that does not. The arguments are 64
// bits and the register 32, so each test looks at the two halves (the
// machines here are little-endian: the low half comes first). false: the
// rule can never match.
func (a *asm) conditions(info *archInfo, conds []cond, fail label, name string) bool {
	for _, c := range conds {
		if !possible(c, info.bits32) {
			return false
		}
	}
	for _, c := range conds {
		pass := a.label()
		lo, hi := offArgs+8*uint32(c.arg), offArgs+8*uint32(c.arg)+4
		vh, vl := uint32(c.a>>32), uint32(c.a)
		ldLo := func() { a.load(lo, a.say("%s: A = args[%d], low half", name, c.arg)) }
		ldHi := func() { a.load(hi, a.say("%s: A = args[%d], high half", name, c.arg)) }
		if info.bits32 {
			// The high half is 0: only the low half is tested (the rules
			// whose high half could never match were dropped above; those
			// that always match it, like NE with a high value, test
			// nothing).
			switch {
			case c.op == specs.OpNotEqual && vh != 0, (c.op == specs.OpLessThan || c.op == specs.OpLessEqual) && vh != 0:
				continue
			}
		}
		switch c.op {
		case specs.OpEqualTo:
			if !info.bits32 {
				ldHi()
				a.jump(bpf.JumpEqual, vh, next, fail, "")
			}
			ldLo()
			a.jump(bpf.JumpEqual, vl, pass, fail, a.say("args[%d] == %#x", c.arg, c.a))
		case specs.OpNotEqual:
			if !info.bits32 {
				ldHi()
				a.jump(bpf.JumpEqual, vh, next, pass, "")
			}
			ldLo()
			a.jump(bpf.JumpEqual, vl, fail, pass, a.say("args[%d] != %#x", c.arg, c.a))
		case specs.OpGreaterThan, specs.OpGreaterEqual:
			test := bpf.JumpGreaterThan
			if c.op == specs.OpGreaterEqual {
				test = bpf.JumpGreaterOrEqual
			}
			if !info.bits32 {
				ldHi()
				a.jump(bpf.JumpGreaterThan, vh, pass, next, "")
				a.jump(bpf.JumpEqual, vh, next, fail, "")
			}
			ldLo()
			a.jump(test, vl, pass, fail, a.say("args[%d] %s %#x", c.arg, opSign[c.op], c.a))
		case specs.OpLessThan, specs.OpLessEqual:
			// a < v is not (a >= v); a <= v is not (a > v).
			test := bpf.JumpGreaterOrEqual
			if c.op == specs.OpLessEqual {
				test = bpf.JumpGreaterThan
			}
			if !info.bits32 {
				ldHi()
				a.jump(bpf.JumpGreaterThan, vh, fail, next, "")
				a.jump(bpf.JumpEqual, vh, next, pass, "")
			}
			ldLo()
			a.jump(test, vl, fail, pass, a.say("args[%d] %s %#x", c.arg, opSign[c.op], c.a))
		case specs.OpMaskedEqual:
			mh, ml := uint32(c.a>>32), uint32(c.a)
			bh, bl := uint32(c.b>>32), uint32(c.b)
			if !info.bits32 && mh != 0 {
				ldHi()
				a.op(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mh}, "")
				a.jump(bpf.JumpEqual, bh, next, fail, "")
			}
			ldLo()
			a.op(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: ml}, "")
			a.jump(bpf.JumpEqual, bl, pass, fail, a.say("args[%d] & %#x == %#x", c.arg, c.a, c.b))
		}
		a.mark(pass)
	}
	return true
}

var opSign = map[specs.LinuxSeccompOperator]string{specs.OpGreaterThan: ">", specs.OpGreaterEqual: ">=",
	specs.OpLessThan: "<", specs.OpLessEqual: "<="}

// possible says whether a condition can ever hold: on a 32-bit ABI, whose
// arguments' high half is 0, and for a mask whose high half is 0.
func possible(c cond, bits32 bool) bool {
	if c.op == specs.OpMaskedEqual && (bits32 || c.a>>32 == 0) {
		return c.b>>32 == 0
	}
	if bits32 {
		switch c.op {
		case specs.OpEqualTo, specs.OpGreaterThan, specs.OpGreaterEqual:
			return c.a>>32 == 0
		}
	}
	return true
}

// checkRule checks one entry of syscalls and returns its action and its
// conditions as rules: one, or (runc's rule) one per condition when two
// conditions test the same argument.
func checkRule(s specs.LinuxSyscall) (uint32, []rule, error) {
	if len(s.Names) == 0 {
		return 0, nil, fmt.Errorf("names is empty: name the system calls")
	}
	for j, n := range s.Names {
		if n == "" {
			return 0, nil, fmt.Errorf("names[%d] is empty", j)
		}
	}
	act, err := Action(s.Action, s.ErrnoRet)
	if err != nil {
		return 0, nil, fmt.Errorf("action: %v", err)
	}
	if s.ErrnoRet != nil && s.Action != specs.ActErrno && s.Action != specs.ActTrace {
		return 0, nil, fmt.Errorf("errnoRet is only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not %s", s.Action)
	}
	var conds []cond
	seen := map[uint]bool{}
	repeated := false
	for j, arg := range s.Args {
		if arg.Index > 5 {
			return 0, nil, fmt.Errorf("args[%d].index %d: a system call has arguments 0 to 5", j, arg.Index)
		}
		switch arg.Op {
		case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
			specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual:
		default:
			return 0, nil, fmt.Errorf("args[%d].op %q: use SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT or _MASKED_EQ", j, arg.Op)
		}
		repeated = repeated || seen[arg.Index]
		seen[arg.Index] = true
		conds = append(conds, cond{arg: arg.Index, op: arg.Op, a: arg.Value, b: arg.ValueTwo})
	}
	if repeated {
		rules := make([]rule, len(conds))
		for j, c := range conds {
			rules[j] = rule{conds: []cond{c}, action: act}
		}
		return act, rules, nil
	}
	return act, []rule{{conds: conds, action: act}}, nil
}

// Action is an action's SECCOMP_RET_* value. Without errnoRet, ERRNO
// fails with EPERM (as runc does); KILL kills the thread.
func Action(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := uint32(unix.EPERM)
	if errnoRet != nil {
		if *errnoRet > 4095 {
			return 0, fmt.Errorf("errnoRet %d: an errno is at most 4095", *errnoRet)
		}
		data = uint32(*errnoRet)
	}
	switch a {
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data, nil
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | data, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("%s hands the call to a seccomp agent (listenerPath), which this runtime does not support", a)
	}
	return 0, fmt.Errorf("%q is not an action: use SCMP_ACT_ALLOW, _ERRNO, _KILL, _KILL_THREAD, _KILL_PROCESS, _TRAP, _TRACE or _LOG", a)
}

// ActionName says what a SECCOMP_RET_* value does: ALLOW, ERRNO(EPERM) ...
func ActionName(v uint32) string {
	data := v & unix.SECCOMP_RET_DATA
	switch v & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW:
		return "ALLOW"
	case unix.SECCOMP_RET_ERRNO:
		if n := unix.ErrnoName(unix.Errno(data)); n != "" {
			return "ERRNO(" + n + ")"
		}
		return fmt.Sprintf("ERRNO(%d)", data)
	case unix.SECCOMP_RET_KILL_THREAD:
		return "KILL_THREAD"
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "KILL_PROCESS"
	case unix.SECCOMP_RET_TRAP:
		return "TRAP"
	case unix.SECCOMP_RET_TRACE:
		return fmt.Sprintf("TRACE(%d)", data)
	case unix.SECCOMP_RET_LOG:
		return "LOG"
	}
	return fmt.Sprintf("%#x", v)
}

// allowLike: actions that run the call (a tracer may run it too).
func allowLike(v uint32) bool {
	switch v & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_LOG, unix.SECCOMP_RET_TRACE:
		return true
	}
	return false
}

func flag(f specs.LinuxSeccompFlag) (uintptr, error) {
	switch f {
	case tsync:
		// The filter goes to the one thread that execs the command, and
		// execve leaves only that thread: nothing to synchronise (runc
		// ignores it too).
		return 0, nil
	case specs.LinuxSeccompFlagLog:
		return unix.SECCOMP_FILTER_FLAG_LOG, nil
	case specs.LinuxSeccompFlagSpecAllow:
		return unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW, nil
	case specs.LinuxSeccompFlagWaitKillableRecv:
		return 0, fmt.Errorf("%s is for a seccomp agent (SCMP_ACT_NOTIFY), which this runtime does not support", f)
	}
	return 0, fmt.Errorf("%q is not a flag this runtime knows (SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW)", f)
}

// flagAvailable asks the kernel: seccomp() checks the flags before it
// reads the program, so a NULL program gives EFAULT for a flag it knows
// and EINVAL for one it does not (libseccomp asks the same way).
func flagAvailable(bit uintptr) bool {
	_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, bit, 0)
	return e == unix.EFAULT
}

// actionAvailable asks the kernel (SECCOMP_GET_ACTION_AVAIL).
func actionAvailable(v uint32) bool {
	act := v & unix.SECCOMP_RET_ACTION_FULL
	_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&act)))
	return e == 0
}

// Install loads the filter for the calling thread, and so for what it
// execs and every process that descends from it: filters are inherited
// across fork and execve, and can never be removed. The kernel takes it
// only from a thread with no_new_privs set, or holding CAP_SYS_ADMIN (a
// filter could otherwise trick a setuid program into misbehaving).
func (f *Filter) Install() error {
	prog := unix.SockFprog{Len: uint16(len(f.Program)), Filter: &f.Program[0]}
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, f.Flags, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(f)
	switch e {
	case 0:
		return nil
	case unix.EACCES:
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %v: the thread has neither no_new_privs nor CAP_SYS_ADMIN", e)
	}
	return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %v", e)
}

// Dump disassembles the first n instructions (all if n <= 0), one line
// each, with what each is for.
func (f *Filter) Dump(n int) []string {
	if !f.noted {
		// Compiled without its notes (they cost time): again, with them.
		if g, err := compile(f.source, options{goarch: f.goarch, notes: true}); err == nil {
			f = g
		}
	}
	if n <= 0 || n > len(f.Program) {
		n = len(f.Program)
	}
	out := make([]string, 0, n)
	for i, in := range f.Program[:n] {
		var s string
		k := in.K
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			s = fmt.Sprintf("ld   [%d]", k)
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			s = fmt.Sprintf("and  %#x", k)
		case unix.BPF_RET | unix.BPF_K:
			s = "ret  " + ActionName(k)
		case unix.BPF_JMP | unix.BPF_JA:
			s = fmt.Sprintf("ja   %d", i+1+int(k))
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K:
			name := map[uint16]string{unix.BPF_JEQ: "jeq", unix.BPF_JGE: "jge", unix.BPF_JGT: "jgt"}[in.Code&0xf0]
			v := fmt.Sprint(k)
			if k >= 0x10000 {
				v = fmt.Sprintf("%#x", k)
			}
			s = fmt.Sprintf("%s  %s ? %d : %d", name, v, i+1+int(in.Jt), i+1+int(in.Jf))
		default:
			s = fmt.Sprintf("op %#x k %#x", in.Code, k)
		}
		line := fmt.Sprintf("%4d  %-30s", i, s)
		if i < len(f.notes) && f.notes[i] != "" {
			line += " # " + f.notes[i]
		}
		out = append(out, strings.TrimRight(line, " "))
	}
	return out
}

func hasArch(list []specs.Arch, a specs.Arch) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func archList(list []specs.Arch) string {
	s := make([]string, len(list))
	for i, a := range list {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}
