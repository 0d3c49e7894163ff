package devices

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On cgroup v2, before a process opens or creates (mknod) a device node,
// the kernel runs every BPF_PROG_TYPE_CGROUP_DEVICE program attached to the
// process's cgroup (and its ancestors) with this context:
//
//	struct bpf_cgroup_dev_ctx {
//		u32 access_type; // device type | requested access << 16
//		u32 major;
//		u32 minor;
//	};
//
// A program that returns 1 allows the access, 0 refuses it (EPERM).
//
// Our program decides each requested permission (m, r, w) on its own: for
// each one it walks the rules from the LAST to the first and stops at the
// first rule that names this permission and matches the device; that rule's
// allow/deny is the answer. No rule matching means the leading deny-all.
// The access is allowed only if every requested permission is. (runc first
// reduces the rules with a v1 emulator, then tests "requested access is a
// subset of the rule's"; deciding per permission gives the same answers for
// Docker's rules without the emulator, and a partial deny such as
// "c 1:3 w" after "c 1:3 rwm" still takes w away. One difference: v1, and
// runc's emulator of it, ignore a deny narrower than an earlier allow, such
// as "c 1:5 r" after "c 1:* rwm", where we deny: stricter, never looser.
// Docker sends deny rules only first.)

// insn is struct bpf_insn: 8 bytes, little-endian on the machines we run on.
type insn struct {
	code uint8 // operation class | operation | source (register or immediate)
	regs uint8 // dst register in the low 4 bits, src register in the high 4
	off  int16 // jumps: how many instructions to skip; loads: byte offset
	imm  int32 // the immediate operand
}

// The kernel reads the instructions as an array of 8-byte structs.
var _ [8]struct{} = [unsafe.Sizeof(insn{})]struct{}{}

// The opcodes we use (linux/bpf.h, linux/bpf_common.h).
const (
	ldxW   = unix.BPF_LDX | unix.BPF_MEM | unix.BPF_W // dst = *(u32 *)(src + off)
	andK   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K // dst &= imm (32-bit)
	rshK   = unix.BPF_ALU | unix.BPF_RSH | unix.BPF_K // dst >>= imm (32-bit)
	movK   = unix.BPF_ALU | unix.BPF_MOV | unix.BPF_K // dst = imm
	movX   = unix.BPF_ALU | unix.BPF_MOV | unix.BPF_X // dst = src
	jeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K // if dst == imm goto +off
	jneK   = unix.BPF_JMP | unix.BPF_JNE | unix.BPF_K // if dst != imm goto +off
	ja     = unix.BPF_JMP | unix.BPF_JA               // goto +off
	exitOp = unix.BPF_JMP | unix.BPF_EXIT             // return r0
)

// Registers: r1 holds the context pointer on entry, r0 the return value.
const (
	r0, r1, r2, r3, r4, r5 = 0, 1, 2, 3, 4, 5
)

// assembler collects instructions; jumps name a label, resolved at the end
// into the relative offset the kernel wants (target - (jump + 1)).
type assembler struct {
	insns  []insn
	jumps  map[int]string
	labels map[string]int
}

func (a *assembler) op(code, dst, src uint8, off int16, imm int32) {
	a.insns = append(a.insns, insn{code: code, regs: dst | src<<4, off: off, imm: imm})
}

func (a *assembler) jump(code, dst uint8, imm int32, label string) {
	a.jumps[len(a.insns)] = label
	a.op(code, dst, 0, 0, imm)
}

func (a *assembler) label(name string) { a.labels[name] = len(a.insns) }

func (a *assembler) targets(label string) bool {
	for _, l := range a.jumps {
		if l == label {
			return true
		}
	}
	return false
}

func (a *assembler) resolve() []insn {
	for i, l := range a.jumps {
		a.insns[i].off = int16(a.labels[l] - (i + 1))
	}
	return a.insns
}

// program generates the device filter for rules (already validated). For
// a deny-all then "c 1:3 rw" (/dev/null) it is these 30 instructions:
//
//	 0-5   r2 = type, r3 = access, r4 = major, r5 = minor
//	 6     r1 = r3
//	 7     r1 &= 1 (m)
//	 8     if r1 == 0 goto 10     m not requested
//	 9     goto 28                only the deny-all says anything about m
//	10-12  the same for r (2)     ... if not requested goto 18
//	13     if r2 != 2 goto 17     "c 1:3 rw", the last rule with r: char?
//	14     if r4 != 1 goto 17     major 1?
//	15     if r5 != 3 goto 17     minor 3?
//	16     goto 18                it matches: r granted, on to w
//	17     goto 28                the deny-all
//	18-25  the same for w (4)
//	26-27  r0 = 1; exit           every requested permission granted
//	28-29  r0 = 0; exit           denied
//
// (bpf(2)'s jump offsets count from the next instruction: 8's "goto 10" is
// stored as off=1.)
func program(rules []Rule) []insn {
	a := &assembler{jumps: map[int]string{}, labels: map[string]int{}}

	// r2 = device type, r3 = requested access bits, r4 = major, r5 = minor.
	a.op(ldxW, r2, r1, 0, 0)
	a.op(andK, r2, 0, 0, 0xffff)
	a.op(ldxW, r3, r1, 0, 0)
	a.op(rshK, r3, 0, 0, 16)
	a.op(ldxW, r4, r1, 4, 0)
	a.op(ldxW, r5, r1, 8, 0)

	perms := []struct {
		letter rune
		bit    int32
	}{{'m', unix.BPF_DEVCG_ACC_MKNOD}, {'r', unix.BPF_DEVCG_ACC_READ}, {'w', unix.BPF_DEVCG_ACC_WRITE}}
	for _, p := range perms {
		granted := fmt.Sprintf("%c-granted", p.letter)
		// Permission not requested: nothing to decide. (r1, the context
		// pointer, is no longer needed, so it serves as scratch.)
		a.op(movX, r1, r3, 0, 0)
		a.op(andK, r1, 0, 0, p.bit)
		a.jump(jeqK, r1, 0, granted)

		decided := false // an "a" rule matches everything: earlier rules are unreachable
		for i := len(rules) - 1; i >= 0; i-- {
			r := rules[i]
			verdict := "deny"
			if r.Allow {
				verdict = granted
			}
			if typeOf(r) == "a" {
				a.jump(ja, 0, 0, verdict)
				decided = true
				break
			}
			if !strings.ContainsRune(r.Access, p.letter) {
				continue // this rule says nothing about this permission
			}
			next := fmt.Sprintf("%c-rule-%d", p.letter, i)
			devType := int32(unix.BPF_DEVCG_DEV_CHAR)
			if r.Type == "b" {
				devType = unix.BPF_DEVCG_DEV_BLOCK
			}
			a.jump(jneK, r2, devType, next)
			if r.Major != nil {
				a.jump(jneK, r4, int32(*r.Major), next)
			}
			if r.Minor != nil {
				a.jump(jneK, r5, int32(*r.Minor), next)
			}
			a.jump(ja, 0, 0, verdict) // this rule matches: it decides
			a.label(next)
		}
		if !decided {
			a.jump(ja, 0, 0, "deny") // no rule matched: the leading deny-all
		}
		a.label(granted)
	}
	// Every requested permission was granted.
	a.op(movK, r0, 0, 0, 1)
	a.op(exitOp, 0, 0, 0, 0)
	// The verifier refuses unreachable instructions: when every rule allows
	// (say, a single "a" allow rule), nothing jumps here and we leave it out.
	if a.targets("deny") {
		a.label("deny")
		a.op(movK, r0, 0, 0, 0)
		a.op(exitOp, 0, 0, 0, 0)
	}
	return a.resolve()
}

// bpf(2) takes one union bpf_attr; each command reads its own struct at
// the start of it. These are the parts we fill in, with the kernel's field
// offsets (the kernel takes every field past the size we pass as zero).

type progLoadAttr struct {
	progType    uint32   // 0
	insnCnt     uint32   // 4
	insns       uint64   // 8: pointer to []insn
	license     uint64   // 16: pointer to a NUL-terminated string
	logLevel    uint32   // 24
	logSize     uint32   // 28
	logBuf      uint64   // 32: pointer to the verifier's log buffer
	kernVersion uint32   // 40
	progFlags   uint32   // 44
	progName    [16]byte // 48: shown by `bpftool prog`
}

type progAttachAttr struct {
	targetFd    uint32 // 0: the cgroup directory
	attachBpfFd uint32 // 4: the program
	attachType  uint32 // 8
	attachFlags uint32 // 12
}

type objInfoAttr struct {
	bpfFd   uint32 // 0
	infoLen uint32 // 4
	info    uint64 // 8: pointer to struct bpf_prog_info
}

type progGetFdAttr struct {
	progID uint32 // 0
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// load loads a device program and returns its fd. The first try is without
// the verifier's log (a log too small for a long, accepted program fails
// the load on new kernels); if the verifier refuses, the second try keeps
// the log, so the error says why.
func load(insns []insn) (int, error) {
	license := []byte("Apache\x00")
	attr := progLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(insns)),
		insns:    uint64(uintptr(unsafe.Pointer(&insns[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	copy(attr.progName[:], "oci_devices")
	fd, err := progLoad(&attr)
	if err != nil {
		log := make([]byte, 64*1024)
		attr.logLevel, attr.logSize = 1, uint32(len(log))
		attr.logBuf = uint64(uintptr(unsafe.Pointer(&log[0])))
		if _, err2 := progLoad(&attr); err2 != nil {
			err = fmt.Errorf("%w: verifier: %s", err2, lastLines(log, 3))
		}
		runtime.KeepAlive(log)
	}
	runtime.KeepAlive(insns)
	runtime.KeepAlive(license)
	if err != nil {
		return -1, fmt.Errorf("bpf(BPF_PROG_LOAD) of the device program: %w", err)
	}
	return fd, nil
}

// progLoad is BPF_PROG_LOAD, tried again when a signal interrupted it: the
// verifier gives up with EAGAIN when its thread has a signal pending, and a
// Go program's threads get signals all the time (the scheduler preempts
// goroutines with SIGURG).
func progLoad(attr *progLoadAttr) (int, error) {
	for try := 1; ; try++ {
		fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(attr), unsafe.Sizeof(*attr))
		if err != unix.EAGAIN || try == 20 {
			return fd, err
		}
	}
}

// lastLines keeps a one-line error: the verifier's final lines say why.
func lastLines(log []byte, n int) string {
	if i := bytes.IndexByte(log, 0); i >= 0 {
		log = log[:i]
	}
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

// AttachV2 generates the device program for rules, loads it and attaches it
// to the cgroup v2 directory dir (for example /sys/fs/cgroup/mycontainer).
// The kernel keeps the program while it is attached, after our fds close;
// removing the cgroup detaches and frees it. detach removes it earlier (it
// returns nil if the program or the group is already gone).
func AttachV2(dir string, rules []Rule) (detach func() error, err error) {
	id, err := attachV2(dir, rules)
	if err != nil {
		return nil, err
	}
	return func() error { return detachV2(dir, id) }, nil
}

const maxRules = 1000

// attachV2 returns the program's kernel ID, which outlives our fds.
func attachV2(dir string, rules []Rule) (uint32, error) {
	if err := Validate(rules); err != nil {
		return 0, err
	}
	// Up to 12 instructions per rule: 1000 rules stay far below the
	// verifier's limit and the 16-bit jump offsets.
	if len(rules) > maxRules {
		return 0, fmt.Errorf("linux.resources.devices: %d rules, at most %d on cgroup v2", len(rules), maxRules)
	}
	// The load is the slow half: the kernel's verifier walks every path of
	// the program (about a millisecond for Docker's rules).
	prog, err := load(program(rules))
	if err != nil {
		return 0, err
	}
	defer unix.Close(prog)
	cg, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	defer unix.Close(cg)

	// BPF_F_ALLOW_MULTI: a parent's programs (systemd attaches its own) keep
	// running too; the access must pass all of them.
	attach := progAttachAttr{targetFd: uint32(cg), attachBpfFd: uint32(prog),
		attachType: unix.BPF_CGROUP_DEVICE, attachFlags: unix.BPF_F_ALLOW_MULTI}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attach), unsafe.Sizeof(attach)); err != nil {
		return 0, fmt.Errorf("bpf(BPF_PROG_ATTACH) of the device program to %s: %w (is it a cgroup v2 directory?)", dir, err)
	}

	// struct bpf_prog_info starts with u32 type, u32 id.
	var info struct{ typ, id uint32 }
	get := objInfoAttr{bpfFd: uint32(prog), infoLen: uint32(unsafe.Sizeof(info)), info: uint64(uintptr(unsafe.Pointer(&info)))}
	_, err = bpf(unix.BPF_OBJ_GET_INFO_BY_FD, unsafe.Pointer(&get), unsafe.Sizeof(get))
	runtime.KeepAlive(&info)
	if err != nil {
		return 0, fmt.Errorf("bpf(BPF_OBJ_GET_INFO_BY_FD): %w", err)
	}
	return info.id, nil
}

// detachV2 detaches the program with this ID from dir. BPF_PROG_DETACH of
// one of several (ALLOW_MULTI) programs needs the program's fd: we get a new
// one from its ID.
func detachV2(dir string, id uint32) error {
	get := progGetFdAttr{progID: id}
	prog, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&get), unsafe.Sizeof(get))
	if errors.Is(err, unix.ENOENT) {
		return nil // the cgroup was removed, and the program with it
	}
	if err != nil {
		return fmt.Errorf("bpf(BPF_PROG_GET_FD_BY_ID %d): %w", id, err)
	}
	defer unix.Close(prog)
	cg, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	defer unix.Close(cg)
	detach := progAttachAttr{targetFd: uint32(cg), attachBpfFd: uint32(prog), attachType: unix.BPF_CGROUP_DEVICE}
	if _, err := bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&detach), unsafe.Sizeof(detach)); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("bpf(BPF_PROG_DETACH) of the device program from %s: %w", dir, err)
	}
	return nil
}
