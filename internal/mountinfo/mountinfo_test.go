package mountinfo

import (
	"strings"
	"testing"
)

const table = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
36 22 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
40 22 0:40 / /mnt/with\040space rw - tmpfs none rw,size=64k
41 40 0:41 / /mnt/with\040space/inner rw master:3 - tmpfs none rw
bad line
`

func TestParseReadsEveryFieldAndUnescapes(t *testing.T) {
	ms, err := Parse(strings.NewReader(table))
	if err != nil || len(ms) != 4 {
		t.Fatalf("Parse: %v, %d mounts", err, len(ms))
	}
	m := ms[1]
	if m.ID != 36 || m.Parent != 22 || m.Device != "0:29" || m.Point != "/sys/fs/cgroup/cpu" || m.FSType != "cgroup" || m.Super != "rw,cpu" || !m.Shared() {
		t.Fatalf("cgroup line read as %+v", m)
	}
	if ms[2].Point != "/mnt/with space" || ms[3].Shared() {
		t.Fatalf("escapes or propagation: %+v %+v", ms[2], ms[3])
	}
}

func TestContainingPicksTheDeepestMount(t *testing.T) {
	ms, _ := Parse(strings.NewReader(table))
	for path, want := range map[string]string{
		"/etc/passwd":                  "/",
		"/mnt/with space/inner/x":      "/mnt/with space/inner",
		"/mnt/with space/innerx":       "/mnt/with space",
		"/sys/fs/cgroup/cpu":           "/sys/fs/cgroup/cpu",
		"/sys/fs/cgroup/cpuacct/tasks": "/",
	} {
		if m, ok := Containing(ms, path); !ok || m.Point != want {
			t.Errorf("Containing(%q) = %q, want %q", path, m.Point, want)
		}
	}
	if m, ok := At(ms, "/mnt/with space"); !ok || m.ID != 40 {
		t.Errorf("At: %+v", m)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`a\040b`: "a b", `tab\011`: "tab\t", `back\134slash`: `back\slash`, `plain`: "plain", `odd\04`: `odd\04`} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
