package vmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/container-internals/workshop/internal/toolchain"
)

// FetchBusybox returns a static busybox for the guest: the host's own when
// it is static and of the guest's architecture (Debian's busybox-static),
// otherwise Debian's busybox-static package for that architecture,
// downloaded once into the cache.
func FetchBusybox(a Arch) (string, error) {
	if a.GOARCH == runtime.GOARCH {
		for _, p := range []string{"/usr/bin/busybox", "/bin/busybox"} {
			if toolchain.IsStatic(p) {
				return p, nil
			}
		}
	}
	dir := filepath.Join(CacheDir(), a.Deb)
	p := filepath.Join(dir, "busybox")
	if toolchain.IsStatic(p) {
		return p, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, ".download-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	spec := "busybox-static:" + a.Deb
	if err := run(tmp, "apt-get", "download", "-q", spec); err != nil {
		hint := "apt-get update"
		if a.GOARCH != runtime.GOARCH {
			hint = fmt.Sprintf("dpkg --add-architecture %s && apt-get update", a.Deb)
		}
		return "", fmt.Errorf("apt-get download %s: %v(run `%s` first)", spec, strings.TrimSpace(err.Error()), hint)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download %s left %d .deb files", spec, len(debs))
	}
	if err := extract(debs[0], tmp, []string{"./bin/busybox", "./usr/bin/busybox"}); err != nil {
		return "", err
	}
	for _, c := range []string{"usr/bin/busybox", "bin/busybox"} {
		src := filepath.Join(tmp, c)
		if toolchain.IsStatic(src) {
			if err := os.Rename(src, p); err != nil {
				return "", err
			}
			return p, nil
		}
	}
	out, _ := exec.Command("dpkg-deb", "-c", debs[0]).Output()
	return "", fmt.Errorf("%s holds no static busybox:\n%s", debs[0], out)
}
