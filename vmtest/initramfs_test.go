package vmtest

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readNewc decodes a newc archive: name -> (mode, contents).
func readNewc(t *testing.T, b []byte) (names []string, modes map[string]uint32, data map[string]string) {
	t.Helper()
	modes, data = map[string]uint32{}, map[string]string{}
	align := func(n int) int { return (n + 3) &^ 3 }
	off := 0
	for {
		h := string(b[off : off+110])
		if h[:6] != "070701" {
			t.Fatalf("bad magic at %d: %q", off, h[:6])
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(h[6+8*i:14+8*i], 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		mode, size, namesize := field(1), field(6), field(11)
		name := string(b[off+110 : off+110+namesize-1])
		off = align(off + 110 + namesize)
		if name == "TRAILER!!!" {
			return names, modes, data
		}
		names = append(names, name)
		modes[name] = uint32(mode)
		data[name] = string(b[off : off+size])
		off = align(off + size)
	}
}

func TestInitramfsIsNewcWithParentsFirst(t *testing.T) {
	a := NewInitramfs()
	host := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(host, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		a.File("etc/vmtest/plan.json", 0o644, []byte(`{"x":1}`)),
		a.HostFile("/usr/sbin/prog", host),
		a.Symlink("bin", "usr/bin"),
		a.Dir("tmp", 0o1777),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := a.WriteCpio(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", buf.Len())
	}
	names, modes, data := readNewc(t, buf.Bytes())
	want := "bin etc etc/vmtest etc/vmtest/plan.json tmp usr usr/sbin usr/sbin/prog"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("entries %q, want %q", got, want)
	}
	checks := []struct {
		name string
		mode uint32
		data string
	}{
		{"bin", 0o120777, "usr/bin"},
		{"etc/vmtest", 0o040755, ""},
		{"etc/vmtest/plan.json", 0o100644, `{"x":1}`},
		{"usr/sbin/prog", 0o100755, "#!/bin/sh\necho hi\n"},
		{"tmp", 0o041777 &^ 0o1000, ""}, // perm bits only: sticky is not a permission bit in os.FileMode
	}
	for _, c := range checks {
		if modes[c.name] != c.mode || data[c.name] != c.data {
			t.Errorf("%s: mode %o data %q, want %o %q", c.name, modes[c.name], data[c.name], c.mode, c.data)
		}
	}
}

func TestInitramfsRefusesAFileUnderAFile(t *testing.T) {
	a := NewInitramfs()
	if err := a.File("lib", 0o644, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.File("lib/x", 0o644, nil); err == nil {
		t.Error("a file under a file was accepted")
	}
}

// The system's cpio reads what we write, file contents included.
func TestInitramfsUnpacksWithCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio is not installed (it is only this cross-check's)")
	}
	a := NewInitramfs()
	a.File("a/b/c.txt", 0o600, []byte("hello\n"))
	a.Symlink("a/link", "b/c.txt")
	f := filepath.Join(t.TempDir(), "initrd.gz")
	if err := a.WriteFile(f); err != nil {
		t.Fatal(err)
	}
	gz, _ := os.Open(f)
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-id", "--quiet")
	cmd.Dir, cmd.Stdin = dir, bytes.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a/link")); err != nil || string(b) != "hello\n" {
		t.Errorf("a/link -> %q, %v", b, err)
	}
}
