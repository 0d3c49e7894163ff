package layers

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultNameservers are what Docker writes when the host offers only a
// loopback resolver (systemd-resolved's 127.0.0.53), unreachable from a
// container with its own network namespace.
var DefaultNameservers = []string{"8.8.8.8", "8.8.4.4"}

// WriteInitLayer fills dir with what Docker's "<id>-init" layer holds: the
// files that make one container of an image different from another, written
// when it starts and never committed: /etc/hostname, /etc/hosts,
// /etc/resolv.conf (nameservers: nil means the host's non-loopback ones),
// plus empty mount points (/proc, /sys, /dev, /dev/pts, /dev/shm) and the
// /etc/mtab link, so that any image can be started even if it lacks them.
func WriteInitLayer(dir, hostname string, nameservers []string) error {
	if hostname == "" || strings.ContainsAny(hostname, " \t\n/") {
		return fmt.Errorf("invalid hostname %q", hostname)
	}
	if nameservers == nil {
		nameservers = HostNameservers()
	}
	for _, d := range []string{"etc", "proc", "sys", "dev/pts", "dev/shm"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	hosts := "127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\n" +
		"ff00::0\tip6-mcastprefix\n" +
		"ff02::1\tip6-allnodes\n" +
		"ff02::2\tip6-allrouters\n" +
		"127.0.1.1\t" + hostname + "\n"
	var resolv strings.Builder
	for _, ns := range nameservers {
		fmt.Fprintf(&resolv, "nameserver %s\n", ns)
	}
	files := map[string]string{
		"etc/hostname":    hostname + "\n",
		"etc/hosts":       hosts,
		"etc/resolv.conf": resolv.String(),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	mtab := filepath.Join(dir, "etc/mtab")
	os.Remove(mtab)
	return os.Symlink("/proc/mounts", mtab)
}

// HostNameservers returns the host's nameservers a container can reach:
// systemd-resolved's upstream list if there is one, else /etc/resolv.conf's,
// without loopback addresses; DefaultNameservers if none is left.
func HostNameservers() []string {
	for _, f := range []string{"/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"} {
		var out []string
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) >= 2 && fields[0] == "nameserver" &&
				!strings.HasPrefix(fields[1], "127.") && fields[1] != "::1" {
				out = append(out, fields[1])
			}
		}
		fh.Close()
		if len(out) > 0 {
			return out
		}
	}
	return DefaultNameservers
}
