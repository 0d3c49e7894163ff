// Package vmtest is the workshop's proving ground: it boots a real pure
// cgroup v2 kernel under QEMU and runs every stage's tests inside it.
//
// The machine we develop on is a cgroup v1/v2 hybrid; the learners' VMs are
// pure v2 with systemd's shared mounts. So the test in this package builds
// every stage and every test binary statically, packs them with busybox into
// an initramfs, boots Debian's own kernel with cgroup_no_v1=all, and lets the
// guest's init (./guestinit) run the suites with WORKSHOP_STRICT=1. The
// guest prints go test's own -test.v lines between markers on the serial
// console; the host parses them back into subtests of its own run.
//
// See docs/testing.md for how to run it and what it proves.
package vmtest
