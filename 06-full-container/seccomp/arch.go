package seccomp

import (
	"runtime"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

//go:generate go run mktables.go

// An architecture, as the kernel tells the filter about it: every system
// call arrives with the ABI it was made through (seccomp_data.arch, an
// AUDIT_ARCH_* value) and its number in THAT ABI's table. On amd64 a
// program can enter the kernel three ways: the 64-bit `syscall`
// instruction, the 32-bit `int $0x80` (with i386's numbers: 288 is keyctl
// there, and accept4 on x86_64), and x32 (x86_64's audit value, numbers
// with bit 30 set). A filter that looks only at the number is walked
// around by calling through another ABI: it must check the ABI first.
type archInfo struct {
	name   specs.Arch
	audit  uint32
	x32    bool // x86_64's audit value, numbers with __X32_SYSCALL_BIT
	bits32 bool // its arguments are 32-bit: the high half is always 0
	table  syscallTable
}

// x32Bit is __X32_SYSCALL_BIT: every x32 call's number has it.
const x32Bit = 0x40000000

// syscallTable maps names to numbers, sorted by name (ztables.go, made by
// mktables.go: static data, nothing to build when the program starts).
type syscallTable []struct {
	name string
	nr   uint32
}

func (t syscallTable) lookup(name string) (uint32, bool) {
	i := sort.Search(len(t), func(i int) bool { return t[i].name >= name })
	if i < len(t) && t[i].name == name {
		return t[i].nr, true
	}
	return 0, false
}

var arches = map[specs.Arch]*archInfo{
	specs.ArchX86_64:  {name: specs.ArchX86_64, audit: unix.AUDIT_ARCH_X86_64, table: tableX86_64},
	specs.ArchX32:     {name: specs.ArchX32, audit: unix.AUDIT_ARCH_X86_64, x32: true, table: tableX32},
	specs.ArchX86:     {name: specs.ArchX86, audit: unix.AUDIT_ARCH_I386, bits32: true, table: tableI386},
	specs.ArchAARCH64: {name: specs.ArchAARCH64, audit: unix.AUDIT_ARCH_AARCH64, table: tableAArch64},
	specs.ArchARM:     {name: specs.ArchARM, audit: unix.AUDIT_ARCH_ARM, bits32: true, table: tableARM},
}

// Runnable lists the ABIs a process on this machine can call the kernel
// through, the native one first: the only ones a filter here can meet.
func Runnable() []specs.Arch { return runnable(runtime.GOARCH) }

func runnable(goarch string) []specs.Arch {
	switch goarch {
	case "amd64":
		return []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	case "arm64":
		return []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	case "386":
		return []specs.Arch{specs.ArchX86}
	case "arm":
		return []specs.Arch{specs.ArchARM}
	}
	return nil
}

// Number is name's number in arch's table (false if that ABI has no such
// call, or the table does not know the name).
func Number(a specs.Arch, name string) (uint32, bool) {
	if info, ok := arches[a]; ok {
		return info.table.lookup(name)
	}
	return 0, false
}

// auditName names an AUDIT_ARCH_* value, for the dump.
func auditName(v uint32) string {
	switch v {
	case unix.AUDIT_ARCH_X86_64:
		return "AUDIT_ARCH_X86_64"
	case unix.AUDIT_ARCH_I386:
		return "AUDIT_ARCH_I386"
	case unix.AUDIT_ARCH_AARCH64:
		return "AUDIT_ARCH_AARCH64"
	case unix.AUDIT_ARCH_ARM:
		return "AUDIT_ARCH_ARM"
	}
	return "?"
}
