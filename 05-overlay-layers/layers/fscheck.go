package layers

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Filesystems that cannot hold an overlay's upper directory: no trusted.*
// extended attributes (where overlayfs records whiteouts of directories and
// copy-up state) or no file types in directory entries (d_type).
var badUpperFS = map[int64]string{
	0x786f4256: "vboxsf (a VirtualBox synced folder)",
	0x6969:     "NFS (a synced folder?)",
	0x01021997: "9p (a synced folder?)",
	0x65735546: "FUSE (sshfs or another synced folder?)",
	0xff534d42: "CIFS/SMB (a synced folder?)",
	0xfe534d42: "SMB2 (a synced folder?)",
	0x794c7630: "overlayfs itself",
	0xf15f:     "ecryptfs",
}

// CheckUpperFS tells, in one line, whether dir's filesystem can host an
// overlay's upper and work directories, and what to do if not. It asks the
// filesystem's type (statfs) and tries a trusted.* extended attribute, which
// overlayfs needs (as root) on its upper directory.
func CheckUpperFS(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	if name, bad := badUpperFS[int64(st.Type)]; bad {
		return fmt.Errorf("%s is on %s, which cannot hold an overlay's upper directory (it needs trusted.* xattrs and d_type): use a directory on the machine's own disk, such as /var/tmp", dir, name)
	}
	f, err := os.CreateTemp(dir, ".xattr-probe-")
	if err != nil {
		return fmt.Errorf("cannot create a file in %s: %w", dir, err)
	}
	defer os.Remove(f.Name())
	f.Close()
	err = unix.Lsetxattr(f.Name(), "trusted.overlay.workshop-probe", []byte("y"), 0)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("%s's filesystem does not support trusted.* xattrs, which overlayfs needs on its upper directory: use a directory on the machine's own disk, such as /var/tmp", dir)
	}
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("cannot set a trusted.* xattr in %s (only root can): run as root", dir)
	}
	if err != nil {
		return fmt.Errorf("set a trusted.* xattr in %s: %w", dir, err)
	}
	return nil
}
