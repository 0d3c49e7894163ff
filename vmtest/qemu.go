package vmtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
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

// ChooseAccel picks KVM when WORKSHOP_VM_ACCEL=kvm, else TCG (QEMU's own
// CPU emulation, slower but available everywhere). KVM is not the default
// even where /dev/kvm exists: nested KVM is often there but broken (this
// project's CI machine has a /dev/kvm on which guests hang at boot), and a
// guest that hangs costs the whole timeout.
func ChooseAccel(a Arch) (accel, why string) {
	switch v := os.Getenv("WORKSHOP_VM_ACCEL"); v {
	case "kvm", "tcg":
		return v, "WORKSHOP_VM_ACCEL=" + v
	case "", "auto":
	default:
		return "tcg", fmt.Sprintf("WORKSHOP_VM_ACCEL=%q is not kvm or tcg", v)
	}
	if a.GOARCH != hostGOARCH() {
		return "tcg", "a foreign architecture is always emulated"
	}
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return "tcg", "no /dev/kvm"
	}
	return "tcg", "/dev/kvm exists but KVM is opt-in (WORKSHOP_VM_ACCEL=kvm): nested KVM often hangs"
}

func hostGOARCH() string {
	out, err := exec.Command("uname", "-m").Output()
	if err != nil {
		return ""
	}
	switch strings.TrimSpace(string(out)) {
	case "x86_64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return ""
}
