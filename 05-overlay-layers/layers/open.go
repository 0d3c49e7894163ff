package layers

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Opening files that someone else made. A committed container's upper
// directory is written by the container while the runtime reads it, and an
// imported archive chooses every name, type and link in it. Two rules:
//
//   - find a name with O_PATH, relative to a directory already open, and
//     look at what was found (fstat of that descriptor), not at what a
//     name meant a moment earlier: lstat then open is a race a container
//     wins by swapping a file with a symbolic link to /etc/shadow;
//   - open for reading only a regular file. O_PATH calls no driver and
//     waits for no writer, so a device node or a FIFO found in place of a
//     file is refused without ever being opened: reading /dev/zero never
//     ends, a FIFO blocks forever, and opening some devices acts (a
//     watchdog starts counting down).

// reopenRegular opens for reading the file that the O_PATH descriptor fd
// found, if it is a regular file, and returns its fstat. The reopen goes
// through /proc/self/fd, which names that very inode, not a path.
func reopenRegular(fd int, name string) (*os.File, unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, st, fmt.Errorf("%s: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, st, fmt.Errorf("%w: %s is %s, not a regular file", ErrUnsafeEntry, name, fileKind(st.Mode))
	}
	f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(fd), os.O_RDONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, st, fmt.Errorf("open %s: %w", name, err)
	}
	return f, st, nil
}

// openBeneath opens name, a path relative to the directory dir that may
// follow symbolic links but only to places beneath dir (openat2's
// RESOLVE_BENEATH: an absolute link or one climbing out with ".." is
// refused by the kernel), and only if it is a regular file.
func openBeneath(dir *os.File, name string) (*os.File, error) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(int(dir.Fd()), name, &how)
	if errors.Is(err, unix.EXDEV) {
		return nil, fmt.Errorf("%w: %s leads outside the archive", ErrUnsafeEntry, name)
	}
	if errors.Is(err, unix.ENOSYS) {
		return nil, fmt.Errorf("open %s: openat2 needs Linux 5.6 or newer", name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s in the archive: %w", name, err)
	}
	defer unix.Close(fd)
	f, _, err := reopenRegular(fd, name)
	return f, err
}

func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symbolic link"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	}
	return "not a regular file"
}
