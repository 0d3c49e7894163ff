// Package toolchain answers two questions the test kit, the VM suite and the
// doctor all ask: where is the go command, and is a program static?
package toolchain

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// GoTool finds the go command even under sudo, whose secure_path often
// lacks /usr/local/go/bin: the toolchain that built this binary knows its
// own root.
func GoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

// IsStatic reports whether p is an ELF program that needs no dynamic
// loader (no PT_INTERP). A file that is not ELF is not static.
func IsStatic(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}
