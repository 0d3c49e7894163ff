package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The articles' claim that a seccomp filter "一定会拖累容器的性能" (must slow
// the container down), measured: this program, mounted into a container,
// makes one system call in a loop and says how long each took, with the
// filter of Docker's default profile and without (seccomp=unconfined).
// Two calls: getppid, which the profile allows outright, so that since
// Linux 5.11 the kernel's seccomp cache answers it without running the
// filter; and personality(0xffffffff) (only asks), which the profile
// allows under a condition on its argument, so the filter runs in full
// every time.

// syscallLoopArg marks the copy of this program that runs the loop.
const syscallLoopArg = "__syscalls__"

// syscallLoop makes each call n times and prints "call ns-per-call".
func syscallLoop(n int) {
	for _, c := range []struct {
		name string
		nr   uintptr
		arg  uintptr
	}{{"getppid", unix.SYS_GETPPID, 0}, {"personality(0xffffffff)", unix.SYS_PERSONALITY, 0xffffffff}} {
		best := time.Duration(1 << 62)
		for round := 0; round < 5; round++ {
			start := time.Now()
			for i := 0; i < n; i++ {
				syscall.RawSyscall(c.nr, c.arg, 0, 0)
			}
			if d := time.Since(start); d < best {
				best = d
			}
		}
		fmt.Printf("%s %.1f\n", c.name, float64(best.Nanoseconds())/float64(n))
	}
}

// syscallRows runs the loop in containers, with Docker's filter and
// without, and returns the table's rows.
func (b *bench) syscallRows() ([]row, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(b.tmp, "syscalls")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	prog := filepath.Join(dir, "bench")
	data, err := os.ReadFile(self)
	if err == nil {
		err = os.WriteFile(prog, data, 0o755)
	}
	if err != nil {
		return nil, err
	}
	const n = 200000
	results := map[string]map[string][]float64{} // call -> with/without -> ns per call
	for k := 0; k < 5; k++ {
		for _, mode := range []string{"filter", "unconfined"} {
			args := []string{"run", "--net", "none", "-v", dir + ":/b:ro"}
			if mode == "unconfined" {
				args = append(args, "--security-opt", "seccomp=unconfined")
			}
			out, err := b.rt(append(args, "--", "/b/bench", syscallLoopArg, strconv.Itoa(n))...)
			if err != nil {
				return nil, err
			}
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				i := strings.LastIndexByte(l, ' ')
				v, err := strconv.ParseFloat(l[i+1:], 64)
				if i < 0 || err != nil {
					return nil, fmt.Errorf("the syscall loop printed %q", l)
				}
				if results[l[:i]] == nil {
					results[l[:i]] = map[string][]float64{}
				}
				results[l[:i]][mode] = append(results[l[:i]][mode], v)
			}
		}
	}
	var rows []row
	for _, call := range []string{"getppid", "personality(0xffffffff)"} {
		for _, mode := range []string{"unconfined", "filter"} {
			v := results[call][mode]
			what := fmt.Sprintf("%s, no filter", call)
			if mode == "filter" {
				what = fmt.Sprintf("%s, Docker's filter", call)
			}
			rows = append(rows, row{what: what, median: fmt.Sprintf("%.0f ns", medianFloat(v)), p90: "-"})
		}
	}
	return rows, nil
}

func medianFloat(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
