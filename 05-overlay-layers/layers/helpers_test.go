package layers

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// write creates files (name -> content) under dir, with parent directories.
func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mountOverlay mounts and registers the unmount, so that a failing test
// still leaves no mount behind (testkit.CheckHost then proves it).
func mountOverlay(t *testing.T, target string, lowers []string, upper, work string) {
	t.Helper()
	if err := Mount(target, lowers, upper, work, nil); err != nil {
		t.Fatalf("Mount: %v", err)
	}
	t.Cleanup(func() {
		if err := Unmount(target, nil); err != nil && !strings.Contains(err.Error(), "not a mount point") {
			t.Errorf("Unmount: %v", err)
		}
	})
}

// tree describes every entry under dir, one line each: type, permissions,
// owner, and the content or link target; what "the same view" means.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		what := ""
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			what = "dir"
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			what = fmt.Sprintf("file %q mtime=%d", b, st.Mtim.Sec)
		case unix.S_IFLNK:
			l, _ := os.Readlink(p)
			what = "symlink -> " + l
		case unix.S_IFCHR:
			what = fmt.Sprintf("chardev %d/%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		default:
			what = fmt.Sprintf("mode %o", st.Mode)
		}
		lines = append(lines, fmt.Sprintf("%s %o %d:%d %s", rel, st.Mode&0o7777, st.Uid, st.Gid, what))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func tarOf(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteLayerTar(&buf, dir); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
