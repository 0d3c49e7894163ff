package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/container-internals/workshop/internal/mountinfo"
)

// fsInfo is what holds the benchmark's files: the runtimes' state, the
// containers' layers, runc's bundle.
type fsInfo struct {
	Type    string // as in /proc/self/mountinfo: ext4, tmpfs, xfs...
	Device  string // the block device's name (vda1, loop0), if any
	Journal bool   // ext4 only: has a journal
}

// filesystemOf finds dir's filesystem in the mount table by device number.
func filesystemOf(dir string) (fsInfo, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return fsInfo{}, err
	}
	devNum := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	ms, err := mountinfo.Self()
	if err != nil {
		return fsInfo{}, err
	}
	var info fsInfo
	for _, m := range ms {
		if m.Device == devNum {
			info.Type = m.FSType
			break
		}
	}
	if info.Type == "" {
		return fsInfo{}, fmt.Errorf("%s: device %s is not in /proc/self/mountinfo", dir, devNum)
	}
	// A block device names itself in sysfs; jbd2 lists the journals by it.
	if ue, err := os.ReadFile(filepath.Join("/sys/dev/block", devNum, "uevent")); err == nil {
		for _, l := range strings.Split(string(ue), "\n") {
			if name, ok := strings.CutPrefix(l, "DEVNAME="); ok {
				info.Device = name
			}
		}
	}
	if info.Type == "ext4" && info.Device != "" {
		journals, _ := filepath.Glob("/proc/fs/jbd2/" + info.Device + "-*")
		info.Journal = len(journals) > 0
	}
	return info, nil
}

// String describes it in a few words.
func (f fsInfo) String() string {
	switch {
	case f.Type == "ext4" && !f.Journal:
		return fmt.Sprintf("ext4 without a journal (%s)", f.Device)
	case f.Type == "ext4":
		return fmt.Sprintf("ext4 with a journal (%s)", f.Device)
	case f.Device != "":
		return fmt.Sprintf("%s (%s)", f.Type, f.Device)
	default:
		return f.Type
	}
}

// Warning is what a reader of the figures must know about this filesystem,
// and what to do about it; empty when there is nothing to say.
func (f fsInfo) Warning() string {
	if f.Type != "ext4" || f.Journal {
		return ""
	}
	return "note: without a journal, ext4 steps over every recently freed inode to make a new\n" +
		"one, so the lines that make and remove files grow as the benchmark goes. Give\n" +
		"TMPDIR=DIR on a journalled filesystem to measure as on the learners' VM.\n"
}
