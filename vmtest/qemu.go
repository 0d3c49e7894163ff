package vmtest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// VM is one boot of the guest.
type VM struct {
	Arch    Arch
	Kernel  string // vmlinuz
	Initrd  string
	Memory  int // MiB
	CPUs    int
	Accel   string // "tcg" or "kvm"
	Timeout time.Duration
	Console io.Writer // receives the serial console as it comes
}

// CmdLine is the kernel's command line: the serial console, cgroup v1 off
// (a pure v2 host, like the learners'), a panic that ends the VM at once
// instead of waiting for the timeout, and only emergencies from printk so
// the kernel's chatter (an OOM kill's report, say) cannot tear go test's lines.
func (vm VM) CmdLine() string {
	return "console=" + vm.Arch.Console + " quiet loglevel=1 cgroup_no_v1=all panic=-1 rdinit=/init"
}

// Args are QEMU's arguments.
func (vm VM) Args() []string {
	args := []string{
		"-accel", vm.Accel,
		"-m", strconv.Itoa(vm.Memory),
		"-smp", strconv.Itoa(vm.CPUs),
		"-nodefaults", "-display", "none", "-serial", "stdio", "-monitor", "none",
		// A network card, as a learner's VM has, on QEMU's user-mode network
		// restricted to the guest itself: nothing reaches out.
		"-netdev", "user,id=net0,restrict=on", "-device", "e1000,netdev=net0",
		"-no-reboot",
		"-kernel", vm.Kernel,
		"-initrd", vm.Initrd,
		"-append", vm.CmdLine(),
	}
	machine := vm.Arch.Machine
	if vm.Accel == "kvm" {
		machine = replaceCPU(machine, "host")
	}
	return append(machine, args...)
}

func replaceCPU(m []string, cpu string) []string {
	out := append([]string(nil), m...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == "-cpu" {
			out[i+1] = cpu
		}
	}
	return out
}

// Run boots the VM and waits until the guest powers off, the kernel
// panics (panic=-1 with -no-reboot ends QEMU) or the timeout kills it.
func (vm VM) Run(ctx context.Context) (timedOut bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, vm.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, vm.Arch.QEMU, vm.Args()...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = vm.Console, vm.Console
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return true, fmt.Errorf("the guest did not finish within %s: QEMU killed", vm.Timeout)
	}
	if err != nil {
		return false, fmt.Errorf("%s: %v", vm.Arch.QEMU, err)
	}
	return false, nil
}

// ChooseAccel picks QEMU's accelerator: WORKSHOP_VM_ACCEL=kvm or tcg
// decides; otherwise KVM when /dev/kvm is usable and a probe boot on it
// works, else TCG (QEMU's own CPU emulation: slower, available everywhere).
// The probe matters: nested KVM is often there but broken (on this
// project's CI machine a guest on /dev/kvm hangs at boot), and a hang would
// cost the whole timeout. Its verdict is cached per host kernel and QEMU.
func ChooseAccel(a Arch, kernel, busybox string) (accel, why string) {
	switch v := os.Getenv("WORKSHOP_VM_ACCEL"); v {
	case "kvm", "tcg":
		return v, "WORKSHOP_VM_ACCEL=" + v
	case "", "auto":
	default:
		return "tcg", fmt.Sprintf("WORKSHOP_VM_ACCEL=%q is not kvm or tcg", v)
	}
	if a.GOARCH != runtime.GOARCH {
		return "tcg", "another architecture is always emulated"
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "tcg", "no usable /dev/kvm"
	}
	f.Close()
	var uts unix.Utsname
	unix.Uname(&uts)
	qemu, _ := exec.LookPath(a.QEMU)
	fi, _ := os.Stat(qemu)
	key := fmt.Sprintf("%s %s %d %d %s", unix.ByteSliceToString(uts.Release[:]), qemu, fiSize(fi), fiTime(fi), kernel)
	sum := sha256.Sum256([]byte(key))
	verdictFile := filepath.Join(CacheDir(), fmt.Sprintf("kvm-probe-%x", sum[:8]))
	if b, err := os.ReadFile(verdictFile); err == nil {
		v := strings.TrimSpace(string(b))
		if v == "ok" {
			return "kvm", "/dev/kvm works (probed earlier)"
		}
		return "tcg", "/dev/kvm exists but a probe boot failed earlier: " + v + " (WORKSHOP_VM_ACCEL=kvm forces it)"
	}
	verdict := probeKVM(a, kernel, busybox)
	os.MkdirAll(CacheDir(), 0o755)
	os.WriteFile(verdictFile, []byte(verdict+"\n"), 0o644)
	if verdict == "ok" {
		return "kvm", "/dev/kvm works (probe boot)"
	}
	return "tcg", "/dev/kvm exists but a probe boot failed: " + verdict + " (WORKSHOP_VM_ACCEL=kvm forces it)"
}

func fiSize(fi os.FileInfo) int64 {
	if fi == nil {
		return 0
	}
	return fi.Size()
}

func fiTime(fi os.FileInfo) int64 {
	if fi == nil {
		return 0
	}
	return fi.ModTime().Unix()
}

// probeKVM boots the kernel on KVM with an initramfs that only says hello
// and powers off; "ok" or what went wrong.
func probeKVM(a Arch, kernel, busybox string) string {
	dir, err := os.MkdirTemp("", "workshop-kvm-probe-")
	if err != nil {
		return err.Error()
	}
	defer os.RemoveAll(dir)
	ramfs := NewInitramfs()
	ramfs.HostFile("bin/busybox", busybox)
	ramfs.File("init", 0o755, []byte("#!/bin/busybox sh\n/bin/busybox echo vmtest-kvm-ok\n/bin/busybox poweroff -f\n"))
	initrd := filepath.Join(dir, "probe.gz")
	if err := ramfs.WriteFile(initrd); err != nil {
		return err.Error()
	}
	var out strings.Builder
	vm := VM{Arch: a, Kernel: kernel, Initrd: initrd, Memory: 256, CPUs: 1, Accel: "kvm", Timeout: 20 * time.Second, Console: &out}
	timedOut, err := vm.Run(context.Background())
	switch {
	case strings.Contains(out.String(), "vmtest-kvm-ok"):
		return "ok"
	case timedOut:
		return "the guest hung for 20 s"
	case err != nil:
		msg := strings.TrimSpace(out.String())
		if i := strings.LastIndex(msg, "\n"); i >= 0 {
			msg = msg[i+1:]
		}
		return fmt.Sprintf("%v: %s", err, msg)
	}
	return "the guest never said hello"
}
