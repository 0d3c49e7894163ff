package vmtest

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// Initramfs collects the guest's files and writes them as the kernel reads
// an initramfs: a cpio archive in the "newc" format, gzip-compressed
// (Documentation/driver-api/early-userspace/buffer-format.rst). Writing it
// here, rather than with the cpio command, keeps the harness's one job
// testable without QEMU and spares CI a package.
type Initramfs struct {
	entries map[string]*entry // by path, without a leading slash
}

type entry struct {
	mode uint32 // type bits and permissions, as in stat(2)
	data []byte // a file's contents or a symlink's target
	host string // or: a host file read at write time
	size int64
}

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeLink = 0o120000
)

// NewInitramfs returns an empty archive.
func NewInitramfs() *Initramfs { return &Initramfs{entries: map[string]*entry{}} }

func clean(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

// add records an entry and makes its missing parent directories (0755).
func (a *Initramfs) add(p string, e *entry) error {
	p = clean(p)
	if p == "" {
		return fmt.Errorf("initramfs: cannot add the root itself")
	}
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if pe, ok := a.entries[d]; ok {
			if pe.mode&0o170000 != modeDir {
				return fmt.Errorf("initramfs: %s: parent %s is not a directory", p, d)
			}
			continue
		}
		a.entries[d] = &entry{mode: modeDir | 0o755}
	}
	if old, ok := a.entries[p]; ok && old.mode&0o170000 == modeDir && e.mode&0o170000 == modeDir {
		old.mode = e.mode // a directory added twice keeps its latest permissions
		return nil
	}
	a.entries[p] = e
	return nil
}

// Dir adds a directory.
func (a *Initramfs) Dir(p string, perm os.FileMode) error {
	return a.add(p, &entry{mode: modeDir | uint32(perm.Perm())})
}

// File adds a file with the given contents.
func (a *Initramfs) File(p string, perm os.FileMode, data []byte) error {
	return a.add(p, &entry{mode: modeFile | uint32(perm.Perm()), data: data, size: int64(len(data))})
}

// Symlink adds a symbolic link p pointing to target.
func (a *Initramfs) Symlink(p, target string) error {
	return a.add(p, &entry{mode: modeLink | 0o777, data: []byte(target), size: int64(len(target))})
}

// HostFile adds a copy of a host file (its permissions kept); it is read
// only when the archive is written.
func (a *Initramfs) HostFile(p, hostPath string) error {
	fi, err := os.Stat(hostPath)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("initramfs: %s is not a regular file", hostPath)
	}
	return a.add(p, &entry{mode: modeFile | uint32(fi.Mode().Perm()), host: hostPath, size: fi.Size()})
}

// Has reports whether the archive holds p.
func (a *Initramfs) Has(p string) bool { _, ok := a.entries[clean(p)]; return ok }

// Size is the sum of the archive's file sizes, before compression.
func (a *Initramfs) Size() int64 {
	var n int64
	for _, e := range a.entries {
		n += e.size
	}
	return n
}

// WriteCpio writes the uncompressed newc archive. Entries come sorted, so
// that a directory always precedes what it holds.
func (a *Initramfs) WriteCpio(w io.Writer) error {
	names := make([]string, 0, len(a.entries))
	for p := range a.entries {
		names = append(names, p)
	}
	sort.Strings(names)
	bw := bufio.NewWriterSize(w, 1<<20)
	var off int64
	write := func(b []byte) error {
		n, err := bw.Write(b)
		off += int64(n)
		return err
	}
	pad := func() error {
		if r := off % 4; r != 0 {
			return write(make([]byte, 4-r))
		}
		return nil
	}
	header := func(ino int, name string, mode uint32, nlink int, size int64) error {
		h := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
		if err := write([]byte(h + name + "\x00")); err != nil {
			return err
		}
		return pad()
	}
	for i, p := range names {
		e := a.entries[p]
		nlink := 1
		if e.mode&0o170000 == modeDir {
			nlink = 2
		}
		if err := header(i+1, p, e.mode, nlink, e.size); err != nil {
			return err
		}
		if e.host != "" {
			f, err := os.Open(e.host)
			if err != nil {
				return err
			}
			n, err := io.Copy(bw, f)
			f.Close()
			off += n
			if err != nil {
				return err
			}
			if n != e.size {
				return fmt.Errorf("initramfs: %s changed size while being packed", e.host)
			}
		} else if err := write(e.data); err != nil {
			return err
		}
		if err := pad(); err != nil {
			return err
		}
	}
	if err := header(len(names)+1, "TRAILER!!!", 0, 1, 0); err != nil {
		return err
	}
	return bw.Flush()
}

// WriteFile writes the gzip-compressed archive to file. Fast compression:
// the kernel unpacks it in a second either way, and the host packs it anew
// at every run.
func (a *Initramfs) WriteFile(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err := a.WriteCpio(zw); err != nil {
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
