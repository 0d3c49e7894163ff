// Package rootfs builds a container's root directory out of the host's own
// binaries (the article's `ldd` + `cp` recipe, done robustly) and moves a
// process into it: with chroot, the article's way, or with pivot_root, the
// way runc does it.
//
// A root filesystem is only files: a binary, the shared libraries it was
// linked against, the dynamic loader that links them at run time, and the
// few directories and files every program expects (/proc, /dev, /tmp,
// /etc/passwd). No kernel: the container shares the host's.
//
// Stage 06 imports this package to build its default image when there is no
// busybox, and to pivot into the container's root.
package rootfs

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
)

// Libraries returns, in the order the loader maps them, the absolute host
// paths of every file binary needs at run time: its shared libraries and the
// dynamic loader itself (the ELF interpreter, /lib64/ld-linux-x86-64.so.2 on
// x86-64, /lib/ld-linux-aarch64.so.1 on arm64). A statically linked binary
// needs nothing: the result is empty. The kernel's vdso is not a file and is
// left out. A library that cannot be found is an error naming it.
//
// Why ask ldd rather than read DT_NEEDED with debug/elf and search for each
// name ourselves: the loader alone decides where a library comes from (its
// cache /etc/ld.so.cache, the glibc-hwcaps subdirectories chosen for this CPU,
// RUNPATH and $ORIGIN, the distribution's multiarch directories), and ldd is
// that loader answering the question for real (it runs it with
// LD_TRACE_LOADED_OBJECTS=1). A reimplementation would agree with it most of
// the time and copy the wrong file the rest. It is also the article's tool,
// so what the stage prints is what the code uses. debug/elf still answers
// the cheap questions first: is this an ELF file at all, and does it have an
// interpreter (no interpreter = statically linked: nothing to ask ldd).
// The price: ldd runs the binary's loader, so never point it at a binary you
// do not trust, and it cannot answer for another architecture's binaries.
func Libraries(binary string) ([]string, error) {
	if err := requireELF(binary); err != nil {
		return nil, err
	}
	f, err := elf.Open(binary)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", binary, err)
	}
	interp, err := interpreter(f)
	machine := f.Machine
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("cannot read the interpreter of %s: %v", binary, err)
	}
	if interp == "" {
		return nil, nil // statically linked: everything is inside the binary
	}
	if want, known := hostMachines[runtime.GOARCH]; known && machine != want {
		return nil, fmt.Errorf("%s is built for %s, this host runs %s: its libraries cannot be resolved here", binary, machine, want)
	}
	out, err := ldd(binary, interp)
	if err != nil {
		return nil, err
	}
	libs, err := ParseLdd(out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", binary, err)
	}
	for _, l := range libs {
		if l == interp {
			return libs, nil
		}
	}
	// ldd always lists the loader; keep it even if some ldd did not.
	return append(libs, interp), nil
}

// requireELF checks the four bytes every ELF file starts with.
func requireELF(binary string) error {
	f, err := os.Open(binary)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: no such file", binary)
		}
		return err
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil || string(magic) != elf.ELFMAG {
		return fmt.Errorf("%s is not an ELF binary (a script? copy its interpreter too)", binary)
	}
	return nil
}

// hostMachines maps Go's architecture names to the ELF machine of binaries
// the host can resolve.
var hostMachines = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"riscv64": elf.EM_RISCV,
	"ppc64le": elf.EM_PPC64,
	"s390x":   elf.EM_S390,
}

// interpreter returns the path in the PT_INTERP program header: the loader
// the kernel starts before the program. Empty for a static binary.
func interpreter(f *elf.File) (string, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			return "", err
		}
		return string(bytes.TrimRight(b, "\x00")), nil
	}
	return "", nil
}

// ldd runs `ldd binary` in the C locale (glibc translates some of its
// messages). Where there is no ldd (it is a bash script shipped with glibc),
// the loader answers the same question itself with --list.
func ldd(binary, interp string) (string, error) {
	cmd := exec.Command("ldd", binary)
	if _, err := exec.LookPath("ldd"); err != nil {
		cmd = exec.Command(interp, "--list", binary)
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String() + " " + stdout.String())
		return "", fmt.Errorf("%s failed on %s: %v %s", cmd.Args[0], binary, err, firstLine(msg))
	}
	return stdout.String(), nil
}

// ParseLdd reads the output of ldd and returns the host paths to copy: each
// library where the loader found it, and the loader itself, in order, each
// once. It understands every line shape ldd prints:
//
//	linux-vdso.so.1 (0x00007ffd...)                 the vdso: in the kernel, not a file (skipped)
//	linux-vdso.so.1 =>  (0x00007ffd...)             the same, from older glibc (skipped)
//	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)   a library and where it was found
//	/lib64/ld-linux-x86-64.so.2 (0x...)             the loader (/lib/ld-linux-aarch64.so.1 on arm64)
//	libfoo.so.1 => not found                        an error, naming every missing library
//	statically linked / not a dynamic executable    nothing to copy
func ParseLdd(output string) ([]string, error) {
	var paths, missing []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(output))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line == "statically linked" || line == "not a dynamic executable" {
			continue
		}
		name, where, arrow := strings.Cut(line, "=>")
		name, where = strings.TrimSpace(name), strings.TrimSpace(where)
		if !arrow {
			where = name // the loader's line, or the vdso's
		}
		// Drop the load address: "(0x00007f51debff000)".
		if i := strings.Index(where, "("); i >= 0 {
			where = strings.TrimSpace(where[:i])
		}
		switch {
		case where == "not found":
			missing = append(missing, name)
		case strings.HasPrefix(where, "/"):
			if !seen[where] {
				seen[where] = true
				paths = append(paths, where)
			}
		case strings.Contains(line, "(0x") && !strings.Contains(name, "/"):
			// linux-vdso.so.1, linux-gate.so.1: the kernel maps this
			// library into every process; there is no file to copy.
		default:
			return nil, fmt.Errorf("unexpected line in ldd's output: %q", line)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("ldd cannot find %s (\"not found\"): install the package that provides it, or point LD_LIBRARY_PATH at it", strings.Join(missing, ", "))
	}
	return paths, nil
}

// CopyWithLibraries copies binary (a path, or a name looked up in PATH) into
// root at the same path, with every library and the loader it needs, each at
// the path the loader will ask for. Symbolic links met on the way are
// recreated inside root, so that on a merged-/usr host `/lib64 ->
// usr/lib64` exists in root too and `/lib64/ld-linux-x86-64.so.2` resolves
// there exactly as on the host. A script brings its interpreter (the `#!`
// line) along. It returns the paths inside root (absolute, as seen from
// inside) of every file, directory and symlink the binary needs, whether
// just copied or already there. Files already present with the same size
// and modification time are not copied again.
func CopyWithLibraries(root, binary string) ([]string, error) {
	return copyWithLibraries(root, binary, 0)
}

func copyWithLibraries(root, binary string, depth int) ([]string, error) {
	p, err := findBinary(binary)
	if err != nil {
		return nil, err
	}
	need := []string{p}
	interp, err := scriptInterpreter(p)
	if err != nil {
		return nil, err
	}
	var fromInterp []string
	if interp != "" {
		if depth > 4 {
			return nil, fmt.Errorf("%s: too many nested #! interpreters", p)
		}
		if fromInterp, err = copyWithLibraries(root, interp, depth+1); err != nil {
			return nil, fmt.Errorf("%s needs its interpreter: %w", p, err)
		}
	} else {
		libs, err := Libraries(p)
		if err != nil {
			return nil, err
		}
		need = append(need, libs...)
	}
	var inside []string
	for _, n := range need {
		made, err := copyInto("/", root, n)
		if err != nil {
			return nil, err
		}
		inside = append(inside, made...)
	}
	return dedupe(append(inside, fromInterp...)), nil
}

// findBinary turns a command name or path into an absolute path to an
// existing file.
func findBinary(binary string) (string, error) {
	if !strings.Contains(binary, "/") {
		p, err := exec.LookPath(binary)
		if err != nil {
			return "", fmt.Errorf("%s: no such command in PATH (give its full path)", binary)
		}
		binary = p
	}
	p, err := filepath.Abs(binary)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("%s: no such file", binary)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", binary)
	}
	return p, nil
}

// scriptInterpreter returns the interpreter named on a script's `#!` line,
// or "" if p is not a script.
func scriptInterpreter(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, _ := bufio.NewReader(io.LimitReader(f, 256)).ReadString('\n')
	if !strings.HasPrefix(line, "#!") {
		return "", nil
	}
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if len(fields) == 0 || !strings.HasPrefix(fields[0], "/") {
		return "", fmt.Errorf("%s: cannot read its #! line", p)
	}
	return fields[0], nil
}

// copyInto copies the file at absolute path p of the tree srcRoot ("/" for
// the host) to the same path under root. It walks p one component at a
// time, resolving symbolic links itself: each link it meets is recreated in
// root with the same target, then the walk continues at the target. So the
// root ends up with the link and the real file, and the path the loader asks
// for resolves inside root the way it does on the host. Nothing is ever
// written through a link inside root (an absolute link there would point
// back at the host): every directory written into has been checked to be a
// real directory. It returns the paths inside root that p needed.
func copyInto(srcRoot, root, p string) ([]string, error) {
	var made []string
	rest := components(p)
	cur := "/"
	links := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		next := path.Join(cur, name)
		src := filepath.Join(srcRoot, next)
		dst := filepath.Join(root, next)
		fi, err := os.Lstat(src)
		if err != nil {
			return nil, fmt.Errorf("cannot copy %s: %v", p, err)
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if links++; links > 40 {
				return nil, fmt.Errorf("cannot copy %s: too many levels of symbolic links", p)
			}
			target, err := os.Readlink(src)
			if err != nil {
				return nil, err
			}
			if err := ensureSymlink(dst, target); err != nil {
				return nil, err
			}
			made = append(made, next)
			if !path.IsAbs(target) {
				target = path.Join(cur, target)
			}
			rest = append(components(target), rest...)
			cur = "/"
		case fi.IsDir():
			if err := ensureDir(dst, fi.Mode().Perm()); err != nil {
				return nil, err
			}
			cur = next
			if len(rest) == 0 {
				made = append(made, next)
			}
		case fi.Mode().IsRegular():
			if len(rest) > 0 {
				return nil, fmt.Errorf("cannot copy %s: %s is not a directory", p, next)
			}
			if err := copyFile(src, dst, fi); err != nil {
				return nil, err
			}
			made = append(made, next)
		default:
			return nil, fmt.Errorf("cannot copy %s: %s is not a file, directory or symlink", p, next)
		}
	}
	return made, nil
}

func components(p string) []string {
	var out []string
	for _, c := range strings.Split(path.Clean("/"+p), "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// ensureDir makes dst a directory unless it is one already; anything else
// there (a file, a symlink) is an error, never followed.
func ensureDir(dst string, perm fs.FileMode) error {
	fi, err := os.Lstat(dst)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("%s exists and is not a directory: remove it or use a fresh root", dst)
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(dst, perm); err != nil {
			return err
		}
		return os.Chmod(dst, perm) // not filtered by the umask
	default:
		return err
	}
}

// ensureSymlink makes dst a symlink to target unless it is one already.
func ensureSymlink(dst, target string) error {
	fi, err := os.Lstat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return os.Symlink(target, dst)
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if old, err := os.Readlink(dst); err == nil && old == target {
			return nil
		}
	}
	return fmt.Errorf("%s exists but is not a symlink to %s as on the host: remove it or use a fresh root", dst, target)
}

// copyFile copies a regular file with its permission bits and modification
// time. It writes a temporary file and renames it into place, so replacing a
// binary that some process is running works (no "text file busy").
func copyFile(src, dst string, fi fs.FileInfo) error {
	if old, err := os.Lstat(dst); err == nil {
		if !old.Mode().IsRegular() {
			return fmt.Errorf("%s exists and is not a regular file: remove it or use a fresh root", dst)
		}
		if old.Size() == fi.Size() && old.ModTime().Equal(fi.ModTime()) {
			return nil
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return err
	}
	tmp := out.Name()
	mode := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Chmod(mode)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(tmp, fi.ModTime(), fi.ModTime())
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot copy %s to %s: %v", src, dst, err)
	}
	return nil
}

// Skeleton creates what nearly every program expects to find in a root:
// /proc and /dev (empty: mount points for the runtime), /tmp (writable by
// all, sticky), /root, and /etc with a minimal passwd and group so that
// tools print `root` rather than `0`. Existing files are left alone.
func Skeleton(root string) error {
	if err := ensureDir(root, 0o755); err != nil {
		return err
	}
	// The root is "/" inside: everyone must be able to enter it (a
	// directory from os.MkdirTemp is 0700).
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		perm fs.FileMode
	}{
		{"proc", 0o555},
		{"dev", 0o755},
		{"tmp", 0o777 | fs.ModeSticky},
		{"root", 0o700},
		{"etc", 0o755},
	} {
		dst := filepath.Join(root, d.name)
		if err := ensureDir(dst, d.perm); err != nil {
			return err
		}
		if err := os.Chmod(dst, d.perm); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		f, err := os.OpenFile(filepath.Join(root, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		_, err = f.WriteString(content)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Build makes root a minimal root filesystem: the Skeleton plus each binary
// with its libraries and loader. It returns the paths inside root that the
// binaries needed, sorted.
func Build(root string, binaries ...string) ([]string, error) {
	if err := Skeleton(root); err != nil {
		return nil, err
	}
	var all []string
	for _, b := range binaries {
		made, err := CopyWithLibraries(root, b)
		if err != nil {
			return nil, err
		}
		all = append(all, made...)
	}
	all = dedupe(all)
	sort.Strings(all)
	return all, nil
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
