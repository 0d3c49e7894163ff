package vmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Arch is one guest architecture: how to build for it, which Debian
// packages hold its kernel and busybox, and how QEMU boots it.
type Arch struct {
	GOARCH  string // for the test binaries and stages
	Deb     string // Debian's architecture name
	QEMU    string // the emulator command
	Console string // the kernel's serial console device
	Machine []string
}

// Amd64 is the architecture of the learners' Intel/AMD VMs.
var Amd64 = Arch{
	GOARCH: "amd64", Deb: "amd64", QEMU: "qemu-system-x86_64", Console: "ttyS0",
	Machine: []string{"-cpu", "max"},
}

// Arm64 is that of Apple Silicon learners' VMs. A Cortex-A72 rather than
// "max": max emulates pointer authentication, which makes TCG about a third
// slower, and nothing here depends on it.
var Arm64 = Arch{
	GOARCH: "arm64", Deb: "arm64", QEMU: "qemu-system-aarch64", Console: "ttyAMA0",
	Machine: []string{"-M", "virt", "-cpu", "cortex-a72"},
}

// CacheDir keeps downloaded kernels between runs (root-owned, like apt's).
// WORKSHOP_VM_CACHE overrides it.
func CacheDir() string {
	if d := os.Getenv("WORKSHOP_VM_CACHE"); d != "" {
		return d
	}
	return "/var/cache/workshop-vmtest"
}

// Kernel is a kernel ready to boot, with the modules the guest loads.
type Kernel struct {
	Package string   // linux-image-6.1.0-56-amd64
	Version string   // 6.1.192-2
	Image   string   // path to vmlinuz
	Modules []string // paths of the .ko files, in load order
	// TempDir, if set, holds decompressed modules to remove after the run.
	TempDir string
}

// Modules the guest loads, in order, as paths below lib/modules/RELEASE/.
// overlayfs is a module in Debian's kernel (stages 05 and 06 need it), and
// so is fuse (stage 06's --proc-view); so is
// the driver of the guest's network card (an emulated Intel e1000, a module
// with no dependencies on both architectures), which gives `--net host` an
// interface besides lo to see, as on a learner's VM. Stage 06's default
// network (--net bridge) needs a bridge, veth pairs and nftables NAT: the
// guest has no modprobe, so each module comes after the ones it depends
// on (their `depends=`, read from Debian 12's 6.1 kernel), crc32c first
// because libcrc32c asks the crypto layer for it when it loads.
var guestModules = []string{
	"kernel/fs/overlayfs/overlay.ko",
	"kernel/fs/fuse/fuse.ko", // stage 06's --proc-view serves a FUSE filesystem
	"kernel/drivers/net/ethernet/intel/e1000/e1000.ko",
	"kernel/crypto/crc32c_generic.ko",
	"kernel/lib/libcrc32c.ko",
	"kernel/net/llc/llc.ko",
	"kernel/net/802/stp.ko",
	"kernel/net/bridge/bridge.ko",
	"kernel/drivers/net/veth.ko",
	"kernel/net/netfilter/nfnetlink.ko",
	"kernel/net/netfilter/nf_tables.ko",
	"kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko",
	"kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko",
	"kernel/net/netfilter/nf_conntrack.ko",
	"kernel/net/netfilter/nf_nat.ko",
	"kernel/net/netfilter/nft_chain_nat.ko",
	"kernel/net/netfilter/nft_nat.ko",
	"kernel/net/netfilter/nft_masq.ko",
	"kernel/net/netfilter/nft_fib.ko",
	"kernel/net/ipv4/netfilter/nft_fib_ipv4.ko",
}

// FetchKernel returns the kernel of Debian's linux-image-ARCH metapackage,
// downloading the package it depends on (without installing it) the first
// time, and keeping only what the guest needs in the cache.
//
// WORKSHOP_VM_KERNEL (a vmlinuz) and WORKSHOP_VM_MODULES (its
// lib/modules/RELEASE directory) boot another kernel instead, such as an
// Ubuntu VM's own: `WORKSHOP_VM_KERNEL=/boot/vmlinuz-$(uname -r)
// WORKSHOP_VM_MODULES=/lib/modules/$(uname -r)`.
func FetchKernel(a Arch) (*Kernel, error) {
	if img := os.Getenv("WORKSHOP_VM_KERNEL"); img != "" {
		return localKernel(img, os.Getenv("WORKSHOP_VM_MODULES"))
	}
	meta := "linux-image-" + a.Deb
	pkg, version, err := resolveKernelPackage(meta)
	if err != nil {
		// No package lists (a fresh machine before apt-get update): use a
		// kernel downloaded earlier, if any.
		if k := newestCached(a); k != nil {
			return k, nil
		}
		return nil, err
	}
	dir := filepath.Join(CacheDir(), a.Deb, pkg+"_"+version)
	if k := cached(dir, pkg, version); k != nil {
		return k, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".download-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	spec := pkg + ":" + a.Deb + "=" + version
	if err := run(tmp, "apt-get", "download", "-q", spec); err != nil {
		// Stale package lists name a version the archive no longer has:
		// an older cached kernel still proves the stages on pure v2.
		if k := newestCached(a); k != nil {
			return k, nil
		}
		return nil, fmt.Errorf("apt-get download %s: %v (run `apt-get update` first)", spec, err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("apt-get download %s left %d .deb files", spec, len(debs))
	}
	// Unpack only the kernel image and the modules the guest loads.
	unpacked := filepath.Join(tmp, "root")
	os.Mkdir(unpacked, 0o755)
	patterns := []string{"./boot/vmlinuz-*"}
	for _, m := range guestModules {
		patterns = append(patterns, "./lib/modules/*/"+m+"*", "./usr/lib/modules/*/"+m+"*")
	}
	if err := extract(debs[0], unpacked, patterns); err != nil {
		return nil, err
	}
	stage := filepath.Join(tmp, "kernel")
	os.Mkdir(stage, 0o755)
	imgs, _ := filepath.Glob(filepath.Join(unpacked, "boot", "vmlinuz-*"))
	if len(imgs) != 1 {
		return nil, fmt.Errorf("%s holds %d boot/vmlinuz-* files", debs[0], len(imgs))
	}
	if err := os.Rename(imgs[0], filepath.Join(stage, "vmlinuz")); err != nil {
		return nil, err
	}
	for _, m := range guestModules {
		found, _ := filepath.Glob(filepath.Join(unpacked, "lib", "modules", "*", m+"*"))
		more, _ := filepath.Glob(filepath.Join(unpacked, "usr", "lib", "modules", "*", m+"*"))
		found = append(found, more...)
		if len(found) != 1 {
			return nil, fmt.Errorf("%s: found %d copies of %s", debs[0], len(found), m)
		}
		ko, err := decompressModule(found[0])
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(stage, filepath.Base(m)), ko, 0o644); err != nil {
			return nil, err
		}
	}
	os.RemoveAll(dir) // an incomplete cache, from before a module was added
	if err := os.Rename(stage, dir); err != nil {
		if k := cached(dir, pkg, version); k != nil { // another run won the race
			return k, nil
		}
		return nil, err
	}
	if k := cached(dir, pkg, version); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("the kernel cache %s is incomplete", dir)
}

// localKernel uses a kernel image and modules directory given by path. A
// module built into that kernel is simply not there: fine, nothing to load.
func localKernel(img, modules string) (*Kernel, error) {
	if _, err := os.Stat(img); err != nil {
		return nil, fmt.Errorf("WORKSHOP_VM_KERNEL: %v", err)
	}
	k := &Kernel{Package: "WORKSHOP_VM_KERNEL", Version: img, Image: img}
	if modules == "" {
		return k, nil
	}
	dir, err := os.MkdirTemp("", "workshop-vm-modules-")
	if err != nil {
		return nil, err
	}
	k.TempDir = dir
	for _, m := range guestModules {
		found, _ := filepath.Glob(filepath.Join(modules, m+"*"))
		if len(found) == 0 {
			continue
		}
		ko, err := decompressModule(found[0])
		if err != nil {
			return nil, err
		}
		p := filepath.Join(dir, filepath.Base(m))
		if err := os.WriteFile(p, ko, 0o644); err != nil {
			return nil, err
		}
		k.Modules = append(k.Modules, p)
	}
	return k, nil
}

// resolveKernelPackage asks apt which versioned kernel package the
// metapackage depends on, and that package's version.
func resolveKernelPackage(meta string) (pkg, version string, err error) {
	out, err := exec.Command("apt-cache", "depends", meta).Output()
	if err != nil {
		return "", "", fmt.Errorf("apt-cache depends %s: %v (run `apt-get update` first%s)", meta, err, archHint(meta))
	}
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "Depends: linux-image-") {
			pkg = strings.TrimPrefix(l, "Depends: ")
			break
		}
	}
	if pkg == "" {
		return "", "", fmt.Errorf("apt-cache depends %s names no linux-image package (run `apt-get update` first%s)", meta, archHint(meta))
	}
	pkg = strings.SplitN(pkg, ":", 2)[0]
	arch := strings.TrimPrefix(meta, "linux-image-")
	out, err = exec.Command("apt-cache", "show", "--no-all-versions", pkg+":"+arch).Output()
	if err != nil {
		return "", "", fmt.Errorf("apt-cache show %s: %v", pkg, err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Version: ") {
			version = strings.TrimSpace(strings.TrimPrefix(l, "Version: "))
			break
		}
	}
	if version == "" {
		return "", "", fmt.Errorf("apt-cache show %s: no Version", pkg)
	}
	return pkg, version, nil
}

func archHint(meta string) string {
	if strings.HasSuffix(meta, "-amd64") {
		return ""
	}
	arch := strings.TrimPrefix(meta, "linux-image-")
	return fmt.Sprintf("; for %s: `dpkg --add-architecture %s && apt-get update`", arch, arch)
}

func cached(dir, pkg, version string) *Kernel {
	k := &Kernel{Package: pkg, Version: version, Image: filepath.Join(dir, "vmlinuz")}
	if _, err := os.Stat(k.Image); err != nil {
		return nil
	}
	for _, m := range guestModules {
		p := filepath.Join(dir, filepath.Base(m))
		if _, err := os.Stat(p); err != nil {
			return nil
		}
		k.Modules = append(k.Modules, p)
	}
	return k
}

func newestCached(a Arch) *Kernel {
	dirs, _ := filepath.Glob(filepath.Join(CacheDir(), a.Deb, "linux-image-*_*"))
	for i := len(dirs) - 1; i >= 0; i-- {
		pkg, version, _ := strings.Cut(filepath.Base(dirs[i]), "_")
		if k := cached(dirs[i], pkg, version); k != nil {
			return k
		}
	}
	return nil
}

// extract unpacks the members of a .deb that match the patterns.
func extract(deb, dir string, patterns []string) error {
	args := append([]string{"-c", `dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards -f - "${@:3}"`, "extract", deb, dir}, patterns...)
	cmd := exec.Command("bash", args...)
	out, err := cmd.CombinedOutput()
	// tar complains about patterns that matched nothing (the /usr/lib
	// alternative); what matters is that the files are there, checked above.
	if err != nil && !strings.Contains(string(out), "Not found in archive") {
		return fmt.Errorf("unpacking %s: %v\n%s", deb, err, out)
	}
	return nil
}

// decompressModule returns a module's bytes, uncompressing .ko.xz and
// .ko.zst (newer Debian kernels compress their modules; busybox's insmod
// wants them plain).
func decompressModule(p string) ([]byte, error) {
	var tool string
	switch {
	case strings.HasSuffix(p, ".ko"):
		return os.ReadFile(p)
	case strings.HasSuffix(p, ".ko.xz"):
		tool = "xz"
	case strings.HasSuffix(p, ".ko.zst"):
		tool = "zstd"
	case strings.HasSuffix(p, ".ko.gz"):
		tool = "gzip"
	default:
		return nil, fmt.Errorf("%s: unknown module compression", p)
	}
	out, err := exec.Command(tool, "-dc", p).Output()
	if err != nil {
		return nil, fmt.Errorf("%s -dc %s: %v", tool, p, err)
	}
	return out, nil
}

func run(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	return nil
}
