package rootfs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Outputs of `LC_ALL=C ldd`, recorded on real systems (testdata/README.md
// says where each one comes from).
func TestParseLddOnRecordedOutputs(t *testing.T) {
	cases := []struct {
		file    string
		want    []string
		wantErr string
	}{
		{file: "ldd-glibc-x86_64-bash.txt", want: []string{
			"/lib/x86_64-linux-gnu/libtinfo.so.6",
			"/lib/x86_64-linux-gnu/libc.so.6",
			"/lib64/ld-linux-x86-64.so.2",
		}},
		{file: "ldd-glibc-x86_64-ls.txt", want: []string{
			"/lib/x86_64-linux-gnu/libselinux.so.1",
			"/lib/x86_64-linux-gnu/libc.so.6",
			"/lib/x86_64-linux-gnu/libpcre2-8.so.0",
			"/lib64/ld-linux-x86-64.so.2",
		}},
		{file: "ldd-glibc-arm64-ls.txt", want: []string{
			"/lib/aarch64-linux-gnu/libselinux.so.1",
			"/lib/aarch64-linux-gnu/libc.so.6",
			"/lib/ld-linux-aarch64.so.1",
			"/lib/aarch64-linux-gnu/libpcre2-8.so.0",
		}},
		{file: "ldd-old-glibc-vdso-arrow.txt", want: []string{
			"/lib64/libtinfo.so.5",
			"/lib64/libdl.so.2",
			"/lib64/libc.so.6",
			"/lib64/ld-linux-x86-64.so.2",
		}},
		{file: "ldd-static.txt", want: nil},
		{file: "ldd-static-pie.txt", want: nil},
		{file: "ldd-not-found.txt", wantErr: "ldd cannot find libworkshopmissing.so.1"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseLdd(string(b))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("ParseLdd: error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLdd: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("ParseLdd:\n got %q\nwant %q", got, c.want)
			}
			for _, p := range got {
				if strings.Contains(p, "vdso") {
					t.Errorf("the vdso is in the kernel, not a file, yet %q was listed", p)
				}
			}
		})
	}
}

func TestParseLddRejectsLinesItDoesNotUnderstand(t *testing.T) {
	if _, err := ParseLdd("\tsomething odd\n"); err == nil {
		t.Fatal("ParseLdd accepted a line that is no ldd output")
	}
}

// fakeTree creates files and symlinks under dir: "a/b" -> content, or
// "a/l" -> "@target" for a symlink.
func fakeTree(t *testing.T, dir string, entries map[string]string) {
	t.Helper()
	for name, content := range entries {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(content, "@") {
			if err := os.Symlink(content[1:], p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// readInside reads p as a process chrooted into root would: the kernel
// resolves every symlink with root as "/" (openat2 RESOLVE_IN_ROOT).
func readInside(t *testing.T, root, p string) (string, error) {
	t.Helper()
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dir)
	fd, err := unix.Openat2(dir, p, &unix.OpenHow{Flags: unix.O_RDONLY, Resolve: unix.RESOLVE_IN_ROOT})
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	b := make([]byte, 4096)
	n, _ := f.Read(b)
	return string(b[:n]), nil
}

// An Ubuntu arm64 host: /lib -> usr/lib (merged /usr), and the loader the
// kernel is asked for, /lib/ld-linux-aarch64.so.1, is itself a link into
// the multiarch directory. The copy must resolve the same way inside.
func TestCopyRecreatesArm64MergedUsrLinks(t *testing.T) {
	host, root := t.TempDir(), t.TempDir()
	fakeTree(t, host, map[string]string{
		"lib":                           "@usr/lib",
		"usr/lib/ld-linux-aarch64.so.1": "@aarch64-linux-gnu/ld-linux-aarch64.so.1",
		"usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1": "arm64 loader",
		"usr/lib/aarch64-linux-gnu/libc.so.6":             "arm64 libc",
	})
	for _, p := range []string{"/lib/ld-linux-aarch64.so.1", "/lib/aarch64-linux-gnu/libc.so.6"} {
		if _, err := copyInto(host, root, p); err != nil {
			t.Fatalf("copyInto(%s): %v", p, err)
		}
	}
	if got, err := readInside(t, root, "/lib/ld-linux-aarch64.so.1"); err != nil || got != "arm64 loader" {
		t.Fatalf("inside the root, /lib/ld-linux-aarch64.so.1 reads %q, %v; want the loader", got, err)
	}
	if got, err := readInside(t, root, "/lib/aarch64-linux-gnu/libc.so.6"); err != nil || got != "arm64 libc" {
		t.Fatalf("inside the root, libc reads %q, %v", got, err)
	}
	if target, err := os.Readlink(filepath.Join(root, "lib")); err != nil || target != "usr/lib" {
		t.Fatalf("root/lib should be the symlink usr/lib as on the host, got %q, %v", target, err)
	}
}

// The x86-64 shape, with an absolute link as some distributions make it:
// /lib64 -> /usr/lib64, and the loader a relative link out of lib64.
func TestCopyRecreatesX86MergedUsrLinksWithAbsoluteTargets(t *testing.T) {
	host, root := t.TempDir(), t.TempDir()
	fakeTree(t, host, map[string]string{
		"lib64":                          "@/usr/lib64",
		"usr/lib64/ld-linux-x86-64.so.2": "@../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
		"usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "x86 loader",
	})
	made, err := copyInto(host, root, "/lib64/ld-linux-x86-64.so.2")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/lib64", "/usr/lib64/ld-linux-x86-64.so.2", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"}
	if !reflect.DeepEqual(made, want) {
		t.Fatalf("copyInto returned %q, want %q", made, want)
	}
	if got, err := readInside(t, root, "/lib64/ld-linux-x86-64.so.2"); err != nil || got != "x86 loader" {
		t.Fatalf("inside the root, the loader reads %q, %v", got, err)
	}
}

// A root that already holds an absolute symlink where the host has a
// directory: following it from outside would write into the host.
func TestCopyNeverWritesThroughALinkInTheRoot(t *testing.T) {
	host, root, victim := t.TempDir(), t.TempDir(), t.TempDir()
	fakeTree(t, host, map[string]string{"usr/bin/tool": "tool"})
	if err := os.Symlink(victim, filepath.Join(root, "usr")); err != nil {
		t.Fatal(err)
	}
	if _, err := copyInto(host, root, "/usr/bin/tool"); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("copyInto through root/usr -> %s: error %v, want a refusal", victim, err)
	}
	if entries, _ := os.ReadDir(victim); len(entries) != 0 {
		t.Fatalf("copyInto wrote through the link into %s: %v", victim, entries)
	}
}
