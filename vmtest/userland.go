package vmtest

import (
	"crypto/sha256"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// userlandPackages are Debian packages whose programs a guest of another
// architecture gets (the host's own would not run there), by package.
// Together with their libraries they mirror hostTools.
var userlandPackages = map[string][]string{
	"dash":       {"dash"},
	"bash":       {"bash"},
	"coreutils":  {"ls", "cat", "nproc"},
	"procps":     {"ps", "free"},
	"util-linux": {"nsenter", "unshare", "lsns"},
	"tree":       {"tree"},
	"make":       {"make"},
	"libc-bin":   {"ldd"},
	"nftables":   {"nft"}, // stage 06's test reads its rules back with nft
}

// AddDebianUserland adds Debian's programs above for architecture a, with
// the shared libraries their ELF headers name (found by reading the files,
// since a foreign ldd cannot run here), and /usr/bin/sh -> dash. The
// unpacked packages are cached, keyed by their versions.
func AddDebianUserland(a *Initramfs, arch Arch) ([]string, error) {
	root, err := fetchUserland(arch)
	if err != nil {
		return nil, err
	}
	var progs []string
	for _, list := range userlandPackages {
		progs = append(progs, list...)
	}
	sort.Strings(progs)
	u := &unpacked{root: root, a: a, done: map[string]bool{}}
	var added []string
	for _, p := range progs {
		found := ""
		for _, d := range []string{"/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"} {
			if _, err := u.resolve(d + p); err == nil {
				found = d + p
				break
			}
		}
		if found == "" {
			return nil, fmt.Errorf("%s: no %s in Debian's %s packages", root, p, arch.Deb)
		}
		if err := u.add(found); err != nil {
			return nil, err
		}
		added = append(added, canonicalUsr(found))
	}
	if !a.Has("usr/bin/sh") {
		if err := a.Symlink("usr/bin/sh", "dash"); err != nil {
			return nil, err
		}
	}
	return added, nil
}

// fetchUserland downloads and unpacks the packages (and their library
// packages, recursively) once, into the cache.
func fetchUserland(arch Arch) (string, error) {
	pkgs := map[string]bool{}
	var queue []string
	for p := range userlandPackages {
		queue = append(queue, p)
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if pkgs[p] {
			continue
		}
		pkgs[p] = true
		out, err := exec.Command("apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts",
			"--no-breaks", "--no-replaces", "--no-enhances", p+":"+arch.Deb).Output()
		if err != nil {
			return "", fmt.Errorf("apt-cache depends %s:%s: %v (run `dpkg --add-architecture %s && apt-get update`)", p, arch.Deb, err, arch.Deb)
		}
		for _, l := range strings.Split(string(out), "\n") {
			l = strings.TrimSpace(l)
			kind, dep, ok := strings.Cut(l, ": ")
			if !ok || (kind != "Depends" && kind != "PreDepends") || strings.HasPrefix(dep, "<") {
				continue
			}
			dep = strings.SplitN(dep, ":", 2)[0]
			// Libraries only: the programs' other dependencies (base-files,
			// debconf, ...) matter to dpkg, not to running the program.
			if strings.HasPrefix(dep, "lib") && !pkgs[dep] {
				queue = append(queue, dep)
			}
		}
	}
	var specs []string
	for p := range pkgs {
		specs = append(specs, p+":"+arch.Deb)
	}
	sort.Strings(specs)
	out, err := exec.Command("apt-cache", append([]string{"show", "--no-all-versions"}, specs...)...).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache show: %v", err)
	}
	var versions []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Package: ") || strings.HasPrefix(l, "Version: ") {
			versions = append(versions, l)
		}
	}
	key := fmt.Sprintf("%x", sha256.Sum256([]byte(strings.Join(versions, "\n"))))[:12]
	dir := filepath.Join(CacheDir(), arch.Deb, "userland-"+key)
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".download-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := run(tmp, "apt-get", append([]string{"download", "-q"}, specs...)...); err != nil {
		return "", fmt.Errorf("apt-get download %s: %v", strings.Join(specs, " "), err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	root := filepath.Join(tmp, "root")
	for _, d := range debs {
		if err := run(tmp, "dpkg-deb", "-x", d, root); err != nil {
			return "", fmt.Errorf("dpkg-deb -x %s: %v", d, err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	os.RemoveAll(dir)
	if err := os.Rename(root, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// unpacked is a tree of unpacked packages, read as if it were a root.
type unpacked struct {
	root string
	a    *Initramfs
	done map[string]bool
}

// twin is a path's other spelling under a merged /usr (/bin/x, /usr/bin/x).
func twin(p string) string {
	if c := canonicalUsr(p); c != p {
		return c
	}
	for _, d := range MergedUsr {
		if strings.HasPrefix(p, "/usr/"+d+"/") {
			return strings.TrimPrefix(p, "/usr")
		}
	}
	return p
}

// resolve follows symlinks inside the tree and returns the final path
// (as seen from inside), trying each path's merged-/usr twin too.
func (u *unpacked) resolve(p string) (string, error) {
	for hops := 0; hops < 40; hops++ {
		var fi os.FileInfo
		var err error
		for _, c := range []string{p, twin(p)} {
			if fi, err = os.Lstat(filepath.Join(u.root, c)); err == nil {
				p = c
				break
			}
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			return p, nil
		}
		t, err := os.Readlink(filepath.Join(u.root, p))
		if err != nil {
			return "", err
		}
		if !path.IsAbs(t) {
			t = path.Join(path.Dir(p), t)
		}
		p = path.Clean(t)
	}
	return "", fmt.Errorf("%s: too many symlinks", p)
}

// add puts p (a link to its real file, if it is one) into the archive, then
// the ELF interpreter and libraries the real file needs.
func (u *unpacked) add(p string) error {
	real, err := u.resolve(p)
	if err != nil {
		return err
	}
	if u.done[real] {
		if g := canonicalUsr(p); g != canonicalUsr(real) && !u.a.Has(g) {
			return u.a.Symlink(g, canonicalUsr(real))
		}
		return nil
	}
	u.done[real] = true
	if err := u.a.HostFile(canonicalUsr(real), filepath.Join(u.root, real)); err != nil {
		return err
	}
	if g := canonicalUsr(p); g != canonicalUsr(real) && !u.a.Has(g) {
		if err := u.a.Symlink(g, canonicalUsr(real)); err != nil {
			return err
		}
	}
	f, err := elf.Open(filepath.Join(u.root, real))
	if err != nil {
		return nil // a script (ldd): its interpreter is one of the programs
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			b := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(b, 0); err == nil {
				if err := u.add(strings.TrimRight(string(b), "\x00")); err != nil {
					return err
				}
			}
		}
	}
	libs, _ := f.ImportedLibraries()
	for _, lib := range libs {
		found := false
		for _, d := range []string{"/usr/lib/" + multiarch(f), "/lib/" + multiarch(f), "/usr/lib", "/lib"} {
			if _, err := u.resolve(d + "/" + lib); err == nil {
				if err := u.add(d + "/" + lib); err != nil {
					return err
				}
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%s needs %s, which no unpacked package holds", real, lib)
		}
	}
	return nil
}

// multiarch is Debian's library directory name for an ELF file's machine.
func multiarch(f *elf.File) string {
	switch f.Machine {
	case elf.EM_AARCH64:
		return "aarch64-linux-gnu"
	case elf.EM_X86_64:
		return "x86_64-linux-gnu"
	}
	return ""
}
