package seccomp

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// A classic BPF program jumps only forward, and a conditional jump says
// how many instructions to skip in one byte: at most 255. The compiler
// writes jumps to labels; resolve turns them into those counts, and where
// a target is further than 255 instructions it puts an unconditional jump
// (`ja`, 32 bits of distance) right after the conditional one as a
// stepping stone. golang.org/x/net/bpf (the Go team's BPF assembler) then
// encodes every instruction.

// label names an instruction that has not been written yet.
type label int

// next is the label of the instruction that follows.
const next label = -1

type insn struct {
	op bpf.Instruction // a load, an ALU operation or a return; nil for a jump
	// A jump: conditional when cond is set (to jt when true, jf when
	// false), else to jt.
	jump   bool
	isCond bool
	cond   bpf.JumpTest
	val    uint32
	jt, jf label
	note   string // what this instruction is for, in the dump

	// Filled by resolve.
	pos            int
	jtInsn, jfInsn *insn
}

type asm struct {
	code    []*insn
	pending []label   // labels waiting for the next instruction
	at      []*insn   // where each label points
	abi     *archInfo // the ABI being written
	notes   bool      // say what each instruction is for (Dump)
	slab    []insn
}

func newAsm() *asm { return &asm{at: make([]*insn, 1, 256)} }

func (a *asm) label() label {
	a.at = append(a.at, nil)
	return label(len(a.at) - 1)
}

// mark makes l point at the next instruction written.
func (a *asm) mark(l label) { a.pending = append(a.pending, l) }

// add appends an instruction (allocated from a slab: a program has
// hundreds).
func (a *asm) add(v insn) {
	if len(a.slab) == cap(a.slab) {
		a.slab = make([]insn, 0, 256)
	}
	a.slab = append(a.slab, v)
	i := &a.slab[len(a.slab)-1]
	for _, l := range a.pending {
		a.at[l] = i
	}
	a.pending = a.pending[:0]
	a.code = append(a.code, i)
}

// say formats a note, when notes are wanted.
func (a *asm) say(format string, args ...any) string {
	if !a.notes {
		return ""
	}
	return fmt.Sprintf(format, args...)
}

func (a *asm) op(op bpf.Instruction, note string) { a.add(insn{op: op, note: note}) }

func (a *asm) load(off uint32, note string) {
	a.op(bpf.LoadAbsolute{Off: off, Size: 4}, note)
}

func (a *asm) ret(v uint32, note string) { a.op(bpf.RetConstant{Val: v}, note) }

// jump goes to jt if A <cond> val, else to jf.
func (a *asm) jump(cond bpf.JumpTest, val uint32, jt, jf label, note string) {
	a.add(insn{jump: true, isCond: true, cond: cond, val: val, jt: jt, jf: jf, note: note})
}

// ja always goes to l.
func (a *asm) ja(l label, note string) { a.add(insn{jump: true, jt: l, note: note}) }

// resolve binds every jump to its target and inserts the stepping stones
// that far targets need, then assembles the program.
func (a *asm) resolve() ([]bpf.RawInstruction, []string, error) {
	if len(a.pending) > 0 {
		return nil, nil, fmt.Errorf("seccomp: label at the end of the program")
	}
	target := func(i int, l label) (*insn, error) {
		if l == next {
			if i+1 >= len(a.code) {
				return nil, fmt.Errorf("seccomp: jump past the end of the program")
			}
			return a.code[i+1], nil
		}
		t := a.at[l]
		if t == nil {
			return nil, fmt.Errorf("seccomp: jump to an unmarked label")
		}
		return t, nil
	}
	for i, in := range a.code {
		if !in.jump {
			continue
		}
		var err error
		if in.jtInsn, err = target(i, in.jt); err != nil {
			return nil, nil, err
		}
		if in.isCond {
			if in.jfInsn, err = target(i, in.jf); err != nil {
				return nil, nil, err
			}
		}
	}
	for {
		for i, in := range a.code {
			in.pos = i
		}
		far := -1
		for i, in := range a.code {
			if in.jump && in.isCond && (in.jtInsn.pos-i-1 > 255 || in.jfInsn.pos-i-1 > 255) {
				far = i
				break
			}
		}
		if far < 0 {
			break
		}
		// A stepping stone per far target, right after the jump.
		in := a.code[far]
		var stones []*insn
		if in.jtInsn.pos-far-1 > 255 {
			s := &insn{jump: true, jtInsn: in.jtInsn, note: "(a far jump)"}
			in.jtInsn = s
			stones = append(stones, s)
		}
		if in.jfInsn.pos-far-1 > 255 {
			s := &insn{jump: true, jtInsn: in.jfInsn, note: "(a far jump)"}
			in.jfInsn = s
			stones = append(stones, s)
		}
		rest := append(stones, a.code[far+1:]...)
		a.code = append(a.code[:far+1], rest...)
	}
	prog := make([]bpf.Instruction, len(a.code))
	notes := make([]string, len(a.code))
	for i, in := range a.code {
		notes[i] = in.note
		if !in.jump {
			prog[i] = in.op
			continue
		}
		t := in.jtInsn.pos - i - 1
		if t < 0 {
			return nil, nil, fmt.Errorf("seccomp: a backward jump at %d", i)
		}
		if !in.isCond {
			prog[i] = bpf.Jump{Skip: uint32(t)}
			continue
		}
		f := in.jfInsn.pos - i - 1
		if f < 0 {
			return nil, nil, fmt.Errorf("seccomp: a backward jump at %d", i)
		}
		prog[i] = bpf.JumpIf{Cond: in.cond, Val: in.val, SkipTrue: uint8(t), SkipFalse: uint8(f)}
	}
	raw, err := bpf.Assemble(prog)
	return raw, notes, err
}
