package vmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/container-internals/workshop/internal/toolchain"
)

// GoPackage is what the harness needs from `go list`.
type GoPackage struct {
	ImportPath   string
	Dir          string
	Name         string
	TestGoFiles  []string
	XTestGoFiles []string
}

// HasTests reports whether the package has test files.
func (p GoPackage) HasTests() bool { return len(p.TestGoFiles)+len(p.XTestGoFiles) > 0 }

// ListPackages lists every package of the module rooted at root.
func ListPackages(root string) ([]GoPackage, error) {
	cmd := exec.Command(toolchain.GoTool(), "list", "-e", "-json", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list ./...: %v\n%s", err, stderr.String())
	}
	var pkgs []GoPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p GoPackage
		if err := dec.Decode(&p); err != nil {
			return nil, err
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// Selection is what goes into the guest.
type Selection struct {
	Tests  []GoPackage // packages with tests, in go list's (path) order
	Stages []GoPackage // main packages named NN-*, and the tools under cmd/
}

// Select picks, from a module's packages, the test packages and the
// programs to build. The harness's own packages (vmtest/...) stay out: the
// guest runs the stages' tests, not the harness's.
func Select(root string, pkgs []GoPackage) Selection {
	var s Selection
	for _, p := range pkgs {
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil || rel == "vmtest" || strings.HasPrefix(rel, "vmtest"+string(filepath.Separator)) {
			continue
		}
		if p.HasTests() {
			s.Tests = append(s.Tests, p)
		}
		if p.Name == "main" && (isStageDir(rel) || strings.HasPrefix(rel, "cmd"+string(filepath.Separator))) {
			s.Stages = append(s.Stages, p)
		}
	}
	return s
}

// isStageDir matches the stage directories: two digits, a dash, a name.
func isStageDir(rel string) bool {
	return !strings.Contains(rel, string(filepath.Separator)) && len(rel) > 3 &&
		rel[0] >= '0' && rel[0] <= '9' && rel[1] >= '0' && rel[1] <= '9' && rel[2] == '-'
}

// GoBuild runs `go ARGS...` in root for the guest: static (no cgo, so no
// host libc is needed inside) and for the guest's architecture.
func GoBuild(root, goarch string, args ...string) error {
	cmd := exec.Command(toolchain.GoTool(), args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// TestBinaryName is the file name of a package's test binary in the guest:
// its directory with slashes turned into dots (two packages may share a
// last element, "cgroup" say).
func TestBinaryName(rel string) string {
	return strings.ReplaceAll(filepath.ToSlash(rel), "/", ".") + ".test"
}

// AddRepository copies the module's files (sources, docs, testdata) into
// the archive under GuestWork, so that each test runs in a directory that
// mirrors its package's and finds what it reads relative to it. Version
// control, build output and hidden directories stay out.
func AddRepository(a *Initramfs, root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		name := d.Name()
		if d.IsDir() {
			if strings.HasPrefix(name, ".") || rel == "bin" || rel == "vmtest" || name == "node_modules" {
				return filepath.SkipDir
			}
			return a.Dir(filepath.Join(GuestWork, rel), 0o755)
		}
		if !d.Type().IsRegular() || strings.HasSuffix(name, ".test") {
			return nil
		}
		fi, err := d.Info()
		if err != nil || fi.Size() > 8<<20 { // no large build leftovers
			return nil
		}
		return a.HostFile(filepath.Join(GuestWork, rel), p)
	})
}

// AddHostTools copies host programs and the shared libraries `ldd` lists
// for them, each at its own path (the guest mirrors the host's merged /usr).
// Stage 04 copies binaries with their libraries into a new root, the
// article's ldd recipe: the guest must have real dynamic binaries for that,
// not only busybox's static one. Only for a guest of the host's architecture.
func AddHostTools(a *Initramfs, tools []string) ([]string, error) {
	var added []string
	for _, t := range tools {
		p, err := exec.LookPath(t)
		if err != nil {
			continue // not on this host: the tests that need it will say so
		}
		// The program lands in /usr/bin whatever directory of PATH it came
		// from; its libraries keep their own paths.
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, err
		}
		if err := addHostPath(a, "/usr/bin/"+t, real); err != nil {
			return nil, err
		}
		out, err := exec.Command("ldd", p).Output()
		if err == nil {
			for _, l := range strings.Split(string(out), "\n") {
				for _, f := range strings.Fields(l) {
					if !strings.HasPrefix(f, "/") {
						continue
					}
					real, err := filepath.EvalSymlinks(f)
					if err != nil {
						return nil, err
					}
					if err := addHostPath(a, f, real); err != nil {
						return nil, err
					}
				}
			}
		}
		added = append(added, "/usr/bin/"+t)
	}
	sort.Strings(added)
	return added, nil
}

// addHostPath adds file p (whose real file is real) keeping p's name: a
// symlink stays a symlink, pointing to the same place.
func addHostPath(a *Initramfs, p, real string) error {
	p = canonicalUsr(p)
	real = canonicalUsr(real)
	if a.Has(p) {
		return nil
	}
	if p != real {
		if !a.Has(real) {
			if err := a.HostFile(real, real); err != nil {
				return err
			}
		}
		return a.Symlink(p, real)
	}
	return a.HostFile(p, real)
}

// canonicalUsr maps /bin, /sbin, /lib* to their /usr twins: the guest's
// top-level ones are symlinks, as on merged-/usr Debian and Ubuntu.
func canonicalUsr(p string) string {
	for _, d := range MergedUsr {
		if strings.HasPrefix(p, "/"+d+"/") {
			return "/usr" + p
		}
	}
	return p
}

// MergedUsr are the top-level directories that are symlinks into /usr.
var MergedUsr = []string{"bin", "sbin", "lib", "lib64"}
