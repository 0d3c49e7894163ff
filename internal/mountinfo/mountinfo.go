// Package mountinfo reads the kernel's mount table, /proc/<pid>/mountinfo
// (proc(5)): one line per mount, as the process that reads it sees them.
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//	(1)(2)(3)   (4)   (5)      (6)       (7)   (8) (9)     (10)        (11)
//
// Every workshop program that looks at mounts reads them through it.
package mountinfo

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Mount is one line of the table.
type Mount struct {
	ID, Parent int
	Device     string   // major:minor
	Root       string   // the mounted directory of its filesystem ("/" for the whole)
	Point      string   // where it is mounted, unescaped
	Options    string   // this mount's options (rw, nosuid, ...)
	Optional   []string // propagation: shared:N, master:N, ...
	FSType     string
	Source     string
	Super      string // the filesystem's (superblock's) options
	Line       string // the line as the kernel wrote it
}

// Self reads the calling process's table.
func Self() ([]Mount, error) { return Read("/proc/self/mountinfo") }

// Read reads a mountinfo file.
func Read(path string) ([]Mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the mount table: %v (is /proc mounted?)", err)
	}
	defer f.Close()
	return Parse(f)
}

// Parse reads a table from r; lines it cannot read are skipped.
func Parse(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if m, ok := ParseLine(sc.Text()); ok {
			out = append(out, m)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the mount table: %v", err)
	}
	return out, nil
}

// ParseLine reads one line.
func ParseLine(line string) (Mount, bool) {
	f := strings.Fields(line)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || len(f) < sep+3 {
		return Mount{}, false
	}
	id, err1 := strconv.Atoi(f[0])
	parent, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return Mount{}, false
	}
	m := Mount{Line: line, ID: id, Parent: parent, Device: f[2], Root: Unescape(f[3]), Point: Unescape(f[4]),
		Options: f[5], Optional: f[6:sep], FSType: f[sep+1], Source: Unescape(f[sep+2])}
	if len(f) > sep+3 {
		m.Super = f[sep+3]
	}
	return m, true
}

// Unescape undoes the kernel's octal escapes (\040 is a space, \011 a tab,
// \012 a newline, \134 a backslash).
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// At returns the mount on top at point (the last one mounted there).
func At(ms []Mount, point string) (Mount, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Point == point {
			return ms[i], true
		}
	}
	return Mount{}, false
}

// Containing returns the mount that holds path: the deepest mount point
// above it (the last one, where several are mounted on the same point).
func Containing(ms []Mount, path string) (Mount, bool) {
	best, found := Mount{}, false
	for _, m := range ms {
		if m.Point == path || m.Point == "/" || strings.HasPrefix(path, strings.TrimSuffix(m.Point, "/")+"/") {
			if !found || len(m.Point) >= len(best.Point) {
				best, found = m, true
			}
		}
	}
	return best, found
}

// Shared reports whether the mount propagates to peers (shared:N).
func (m Mount) Shared() bool { return m.PeerGroup() != "" }

// PeerGroup is N of shared:N ("" for a mount that is not shared).
func (m Mount) PeerGroup() string {
	for _, o := range m.Optional {
		if g, ok := strings.CutPrefix(o, "shared:"); ok {
			return g
		}
	}
	return ""
}
