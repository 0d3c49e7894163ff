package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-internals/workshop/internal/testkit"
)

// Hostile images and archives (issue 15): each test feeds the input an
// attacker would, and passes only because it is refused in one line with
// nothing outside the runtime's own files changed.

// ownRoot is a --root of the test's own, for attacks that, if they worked,
// would damage the store (the shared one must survive a failing test), or
// whose result is looked for in the whole store. run runs the stage with it.
func ownRoot(t *testing.T) (root string, run func(args ...string) testkit.Result) {
	t.Helper()
	root = t.TempDir()
	bin := testkit.Stage(t, "06-full-container")
	run = func(args ...string) testkit.Result {
		t.Helper()
		return testkit.Run(t, opts{}, bin, append([]string{"--root", root}, args...)...)
	}
	return root, run
}

// bystander starts a container in root that an attack must not disturb,
// and removes it when the test ends.
func bystander(t *testing.T, run func(args ...string) testkit.Result) {
	t.Helper()
	if r := run("run", "-d", "--name", "bystander", "--", "sleep", "100"); r.Code != 0 {
		t.Fatalf("run -d bystander:\n%s", r)
	}
	t.Cleanup(func() { run("rm", "-f", "bystander") })
}

// storeIntact checks that the store holds what it did (before, a treeHash
// of it) and that the bystander still runs on its layers.
func storeIntact(t *testing.T, root, before string, run func(args ...string) testkit.Result) {
	t.Helper()
	if after := treeHash(t, filepath.Join(root, "images")); after != before {
		t.Errorf("the image store changed")
	}
	if r := run("images"); !strings.Contains(r.Stdout, "workshop-default") {
		t.Errorf("the default image is gone:\n%s", r)
	}
	if r := run("exec", "bystander", "--", "cat", "/etc/motd"); r.Code != 0 || !strings.Contains(r.Stdout, "workshop") {
		t.Errorf("the running container lost its layers:\n%s", r)
	}
	leftovers(t, root)
}

// leftovers fails the test for any unpacking directory left in the store's root.
func leftovers(t *testing.T, root string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(root, "images"))
	for _, e := range ents {
		if e.Name() != "image" && e.Name() != "overlay2" {
			t.Errorf("left in the store's root: %s", e.Name())
		}
	}
}

// ".wh..." is a whiteout of "..". In a `docker save` archive, whose top
// level is unpacked in a directory of the store's root, it once meant
// RemoveAll(<store root>): every image, every layer, and the running
// containers' layers, with only "manifest.json lists no image" printed.
func TestWhiteoutOfDotDotInSaveArchiveLeavesTheStore(t *testing.T) {
	setup(t)
	root, run := ownRoot(t)
	bystander(t, run)
	before := treeHash(t, filepath.Join(root, "images"))
	evil := filepath.Join(t.TempDir(), "evil.tar")
	writeTar(t, evil, []tarEntry{{".wh...", nil, 0o644, ""}, {"manifest.json", []byte("[]"), 0o644, ""}})
	r := run("import", evil, "evil")
	storeIntact(t, root, before, run)
	oneLine(t, r, `".wh..." is a whiteout of ".."`)
}

// cProgram compiles a small static C program for use inside a container
// (mount its directory with -v DIR:/t:ro) and returns its path.
func cProgram(t *testing.T, name, src string) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		testkit.Unavailable(t, "gcc is needed to build the attacking program: apt-get install gcc")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c, bin := filepath.Join(dir, name+".c"), filepath.Join(dir, name)
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("gcc", "-static", "-O2", "-o", bin, c).CombinedOutput(); err != nil {
		testkit.Unavailable(t, "gcc -static (is libc6-dev installed?): %v\n%s", err, out)
	}
	return bin
}

// secretFile writes a random secret into a file of the host's, readable by
// root only: what a leak would carry, and unmistakable wherever it lands.
func secretFile(t *testing.T) (dir, secret string) {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	dir, secret = t.TempDir(), "host-secret-"+hex.EncodeToString(b)
	for _, name := range []string{"secret", "f"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, secret
}

// findInStore returns the store's files (and their layers) holding secret.
func findInStore(t *testing.T, root, secret string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(filepath.Join(root, "images"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secret)) {
				found = append(found, p)
			}
		}
		return nil
	})
	return found
}

// swap.c: /a (a file) trades places with /b (a link to the host's secret
// file), and /d (a directory) with /e (a link to the host's directory), as
// fast as the CPU allows: a runtime that lstat()s a name, then open()s it,
// opens the host's file whenever a swap falls in between.
const swapC = `#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static void decoy(const char *p) {
	int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "decoy\n", 6) != 6) { perror(p); _exit(1); }
	close(fd);
}

static void swap(const char *x, const char *y) {
	if (syscall(SYS_renameat2, AT_FDCWD, x, AT_FDCWD, y, RENAME_EXCHANGE) != 0) { perror("renameat2"); _exit(1); }
}

int main(int argc, char **argv) {
	if (argc != 3) { fprintf(stderr, "usage: swap HOSTFILE HOSTDIR\n"); return 2; }
	decoy("/a");
	mkdir("/d", 0755);
	decoy("/d/f");
	if (symlink(argv[1], "/b") || symlink(argv[2], "/e")) { perror("symlink"); return 1; }
	puts("swapping");
	fflush(stdout);
	for (;;) { swap("/a", "/b"); swap("/d", "/e"); }
}
`

// A running container swaps files with links to the host's files while it
// is committed, again and again for two seconds: no committed layer may
// hold the host's secret (the commit once read /etc/shadow this way).
func TestCommitOfASwappingContainerNeverReadsHostFiles(t *testing.T) {
	setup(t)
	root, run := ownRoot(t)
	swap := cProgram(t, "swap", swapC)
	host, secret := secretFile(t)
	if r := run("run", "-d", "--name", "swapper", "-v", filepath.Dir(swap)+":/t:ro", "--", "/t/swap", filepath.Join(host, "secret"), host); r.Code != 0 {
		t.Fatalf("run -d swapper:\n%s", r)
	}
	t.Cleanup(func() { run("rm", "-f", "swapper") })
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(run("logs", "swapper").Stdout, "swapping"); {
		if time.Now().After(deadline) {
			t.Fatalf("the swapper did not start:\n%s", run("logs", "swapper"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	commits := 0
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		if r := run("commit", "swapper", "swapped"); r.Code == 0 {
			commits++
		}
	}
	if l := run("logs", "swapper"); strings.Contains(l.Stdout+l.Stderr, "renameat2") {
		t.Fatalf("the swapper stopped swapping (the test would prove nothing):\n%s", l)
	}
	// Removed before the store is searched: a search of its live read-write
	// layer would race with the swaps just as a naive commit does.
	if r := run("rm", "-f", "swapper"); r.Code != 0 {
		t.Fatalf("rm -f swapper:\n%s", r)
	}
	if found := findInStore(t, root, secret); len(found) > 0 {
		t.Fatalf("%d commits; the host's secret is in the store: %s", commits, strings.Join(found, ", "))
	}
	if commits < 10 {
		t.Errorf("only %d commits succeeded in 2 s", commits)
	}
}
