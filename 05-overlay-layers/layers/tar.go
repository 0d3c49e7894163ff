package layers

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Whiteouts, three spellings of "this name was deleted in this layer":
//   - aufs and OCI layer tars: an empty file named .wh.<name>; a directory
//     whose lower contents are all hidden holds .wh..wh..opq;
//   - overlayfs: a character device numbered 0/0 named <name>; an opaque
//     directory carries the extended attribute trusted.overlay.opaque=y.
const (
	WhiteoutPrefix = ".wh."
	OpaqueMarker   = ".wh..wh..opq"
	OpaqueXattr    = "trusted.overlay.opaque"
)

// ErrUnsafeEntry is wrapped by the error for a tar entry that would write
// outside the target directory.
var ErrUnsafeEntry = errors.New("unsafe layer tar entry")

// IsWhiteout reports whether p is an overlayfs whiteout: a 0/0 character device.
func IsWhiteout(p string) bool {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// IsOpaque reports whether the directory p is an overlayfs opaque directory.
func IsOpaque(p string) bool {
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(p, OpaqueXattr, buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// WriteLayerTar writes the directory dir (typically an overlay's upper
// directory: one layer's changes) to w as a layer tar: overlay whiteouts
// become OCI .wh.<name> entries and opaque directories get a .wh..wh..opq
// entry, right after the directory's own. Entries are in lexical order with
// numeric owners and whole-second times, so the same tree gives the same
// bytes, hence the same diffID. Extended attributes are not carried.
//
// dir may be a running container's upper directory, changing while it is
// read: every entry is found relative to its directory's descriptor without
// following a symbolic link, and described by what was found (see open.go).
// A container swapping a file with a link to /etc/shadow gets a symbolic
// link in its layer, never the host's file.
func WriteLayerTar(w io.Writer, dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("tar %s: %w", dir, err)
	}
	lw := layerWriter{tw: tar.NewWriter(w), seen: map[[2]uint64]string{}}
	if err := lw.dir(fd, ""); err != nil {
		return fmt.Errorf("tar %s: %w", dir, err)
	}
	return lw.tw.Close()
}

type layerWriter struct {
	tw   *tar.Writer
	seen map[[2]uint64]string // hardlinks: (dev, inode) -> first name
}

// dir writes the entries of the open directory fd (named rel in the tar,
// "" for the top), sorted by name, and closes fd.
func (lw *layerWriter) dir(fd int, rel string) error {
	f := os.NewFile(uintptr(fd), rel)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		if err := lw.entry(fd, path.Join(rel, n), n); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// entry writes the entry base of the directory dirfd, named name in the tar.
func (lw *layerWriter) entry(dirfd int, name, base string) error {
	fd, err := unix.Openat(dirfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil // removed since the directory was listed
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
		Format:  tar.FormatPAX,
	}
	tw := lw.tw
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		// "." from the O_PATH descriptor: the directory found, no name
		// looked up again.
		d, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		if err := tw.WriteHeader(hdr); err != nil {
			unix.Close(d)
			return err
		}
		buf := make([]byte, 8)
		if n, err := unix.Fgetxattr(d, OpaqueXattr, buf); err == nil && n == 1 && buf[0] == 'y' {
			if err := tw.WriteHeader(&tar.Header{Name: name + "/" + OpaqueMarker, Typeflag: tar.TypeReg,
				Mode: 0o600, Uid: hdr.Uid, Gid: hdr.Gid, ModTime: hdr.ModTime, Format: tar.FormatPAX}); err != nil {
				unix.Close(d)
				return err
			}
		}
		return lw.dir(d, name)
	case unix.S_IFCHR:
		if st.Rdev == 0 { // an overlay whiteout
			hdr.Name = path.Join(path.Dir(name), WhiteoutPrefix+path.Base(name))
			hdr.Typeflag, hdr.Mode = tar.TypeReg, 0o600
			return tw.WriteHeader(hdr)
		}
		hdr.Typeflag = tar.TypeChar
	case unix.S_IFBLK:
		hdr.Typeflag = tar.TypeBlock
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(fd, "", buf) // "": the link fd itself
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(buf[:n])
		return tw.WriteHeader(hdr)
	case unix.S_IFREG:
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if first, ok := lw.seen[key]; ok && st.Nlink > 1 {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			return tw.WriteHeader(hdr)
		}
		lw.seen[key] = name
		f, _, err := reopenRegular(fd, name)
		if err != nil {
			return err
		}
		defer f.Close()
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.CopyN(tw, f, st.Size); err != nil {
			return fmt.Errorf("%s shrank while it was read (stop the container first): %w", name, err)
		}
		return nil
	default: // sockets have no tar form; the kernel recreates them
		return nil
	}
	hdr.Devmajor = int64(unix.Major(st.Rdev))
	hdr.Devminor = int64(unix.Minor(st.Rdev))
	return tw.WriteHeader(hdr)
}

// ApplyLayerTar unpacks a layer tar into dir so that dir can serve as one
// overlay lower layer: OCI whiteouts become overlay whiteouts (a 0/0
// character device) and .wh..wh..opq makes its directory opaque
// (trusted.overlay.opaque=y). Entries that would land outside dir (absolute
// names, "..", a path through a symbolic link, a hard link to a name outside)
// are refused with an error wrapping ErrUnsafeEntry before anything is
// written for them.
func ApplyLayerTar(r io.Reader, dir string) error {
	return apply(r, dir, false)
}

// FlattenLayerTar applies a layer tar ON TOP of the files already in dir,
// the way a layer changes the view below it, without overlayfs: a whiteout
// deletes the name, an opaque marker empties its directory of everything
// earlier layers put there. Applying an image's layers bottom first into an
// empty directory gives the image's merged root as one plain tree.
func FlattenLayerTar(r io.Reader, dir string) error {
	return apply(r, dir, true)
}

func apply(r io.Reader, dir string, flatten bool) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	written := map[string]bool{} // names this layer created (for opaque dirs when flattening)
	type dirTime struct {
		p string
		t time.Time
	}
	var dirTimes []dirTime
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read layer tar: %w", err)
		}
		name, err := safeName(dir, hdr.Name)
		if err != nil {
			return err
		}
		if name == "" { // "./": the layer's root, which is dir
			continue
		}
		parent, base := path.Dir(name), path.Base(name)
		pdir := filepath.Join(dir, filepath.FromSlash(parent))

		// Whiteouts first: they name something to hide, not something to write.
		switch {
		case base == OpaqueMarker:
			if flatten {
				if err := emptyExcept(pdir, parent, written); err != nil {
					return err
				}
				continue
			}
			if err := os.MkdirAll(pdir, 0o755); err != nil {
				return err
			}
			if err := unix.Lsetxattr(pdir, OpaqueXattr, []byte("y"), 0); err != nil {
				return fmt.Errorf("mark %s opaque: %w", pdir, err)
			}
			continue
		case strings.HasPrefix(base, WhiteoutPrefix+WhiteoutPrefix):
			continue // other aufs bookkeeping (.wh..wh.plnk ...): nothing to apply
		case strings.HasPrefix(base, WhiteoutPrefix):
			// The hidden name must be one name in its directory: ".wh..."
			// would hide "..", and RemoveAll of the directory above the
			// layer once wiped the whole image store (a two-entry `docker
			// save` archive: its top level is unpacked in the store's root).
			hidden := base[len(WhiteoutPrefix):]
			victim := filepath.Join(pdir, hidden)
			if hidden == "" || hidden == "." || hidden == ".." || !beneath(dir, victim) {
				return fmt.Errorf("%w: %q is a whiteout of %q, not of a name in its directory", ErrUnsafeEntry, hdr.Name, hidden)
			}
			if err := os.RemoveAll(victim); err != nil {
				return err
			}
			if flatten {
				continue
			}
			if err := os.MkdirAll(pdir, 0o755); err != nil {
				return err
			}
			if err := unix.Mknod(victim, unix.S_IFCHR, 0); err != nil {
				return fmt.Errorf("whiteout %s: %w", victim, err)
			}
			if err := os.Lchown(victim, hdr.Uid, hdr.Gid); err != nil {
				return err
			}
			continue
		}

		target := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			return err
		}
		// Replace what is there, unless a directory stays a directory.
		if fi, err := os.Lstat(target); err == nil && !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
			if err := os.RemoveAll(target); err != nil {
				return err
			}
		}
		mode := uint32(hdr.Mode & 0o7777)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.Mkdir(target, 0o700); err != nil && !os.IsExist(err) {
				return err
			}
		case tar.TypeReg, tar.TypeRegA:
			f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("write %s: %w", target, err)
			}
		case tar.TypeSymlink:
			// A symlink may point anywhere (/bin -> usr/bin is common): it is
			// only dangerous when followed while unpacking, which safeName
			// refuses for every later entry.
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			old, err := safeName(dir, hdr.Linkname)
			if err != nil || old == "" {
				return fmt.Errorf("%w: %q is a hard link to %q, outside the layer", ErrUnsafeEntry, hdr.Name, hdr.Linkname)
			}
			// link(2) does not follow a symlink given as the old name.
			if err := os.Link(filepath.Join(dir, filepath.FromSlash(old)), target); err != nil {
				return err
			}
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
			dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
			if err := unix.Mknod(target, kind|mode, int(dev)); err != nil {
				return fmt.Errorf("mknod %s: %w", target, err)
			}
		default:
			continue // global headers and the like: nothing on disk
		}
		if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeSymlink && hdr.Typeflag != tar.TypeLink {
			// After chown, which clears set-user-ID bits.
			if err := unix.Chmod(target, mode); err != nil {
				return err
			}
		}
		for p := name; p != "."; p = path.Dir(p) {
			written[p] = true
		}
		if hdr.Typeflag == tar.TypeDir {
			dirTimes = append(dirTimes, dirTime{target, hdr.ModTime})
		} else if hdr.Typeflag != tar.TypeLink {
			if err := setTime(target, hdr.ModTime); err != nil {
				return err
			}
		}
	}
	// Directories last, deepest first: writing their entries changed their times.
	sort.Slice(dirTimes, func(i, j int) bool { return dirTimes[i].p > dirTimes[j].p })
	for _, d := range dirTimes {
		if err := setTime(d.p, d.t); err != nil {
			return err
		}
	}
	return nil
}

func setTime(p string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// safeName cleans a tar entry's name and refuses one that would escape dir:
// absolute, climbing with "..", or passing through a symbolic link already
// unpacked (a link to /etc, then etc-link/passwd). "" means dir itself.
func safeName(dir, name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: %q is an absolute path", ErrUnsafeEntry, name)
	}
	c := path.Clean(name)
	if c == "." {
		return "", nil
	}
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%w: %q climbs out of the layer with \"..\"", ErrUnsafeEntry, name)
	}
	p := dir
	parts := strings.Split(c, "/")
	for _, part := range parts[:len(parts)-1] {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if os.IsNotExist(err) {
			break // created as a plain directory
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return "", fmt.Errorf("%w: %q goes through the symbolic link %s", ErrUnsafeEntry, name, strings.TrimPrefix(p, dir+"/"))
		}
	}
	return c, nil
}

// beneath reports whether p is a path strictly inside dir (both clean and
// absolute): the last check before anything is removed.
func beneath(dir, p string) bool {
	return strings.HasPrefix(p, dir+"/")
}

// emptyExcept removes from directory p (the layer-relative rel) every entry
// this layer did not write: what an opaque directory hides.
func emptyExcept(p, rel string, written map[string]bool) error {
	entries, err := os.ReadDir(p)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !written[path.Join(rel, e.Name())] {
			if err := os.RemoveAll(filepath.Join(p, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
