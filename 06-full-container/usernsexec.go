package main

// `exec` into a container with a user namespace.
//
// The helper joins the container's other namespaces as for any container:
// the host's root holds every capability over the namespaces owned by a
// user namespace below its own. The user namespace itself is another
// matter, for two reasons the kernel gives (setns(2), user_namespaces(7)):
//
//   - setns(CLONE_NEWUSER) is refused (EINVAL) to a process with more than
//     one thread, or whose filesystem context (root, cwd) is shared, and
//     every Go program has several threads from its start. runc joins in
//     C, before its Go runtime starts. Here the command's own child joins:
//     fork.go's raw child is a copy of one thread, single-threaded by
//     construction, and a fork copies the filesystem context.
//   - on success the caller holds every capability in the namespace it
//     joined (effective, permitted and bounding full; inheritable and
//     ambient cleared), and its IDs are what the host's map to there (the
//     host's root is unmapped: 65534). Whatever the helper dropped before
//     would be back. So every drop comes after the setns, in the child.
//
// For a user namespace the helper therefore keeps its privileges and its
// thread unfiltered (it stays out of the container's reach as it is: its
// own PID is in the host's PID namespace, so no container process sees
// it, and it is not dumpable), prepares every value here (a forked copy
// of a Go thread may only make raw system calls until its execve), and
// the child does, in fork.go's rawEnterUserns: setns(CLONE_NEWUSER), the seccomp
// filter, the bounding set, the IDs, the capabilities, the ambient ones,
// no_new_privs. The seccomp filter goes on at the same point as in
// dropPrivileges (runc's order): without no_new_privs right after the
// setns, because the kernel takes a filter from a thread without
// no_new_privs only while it holds CAP_SYS_ADMIN in its user namespace,
// which the child does from the setns until its capset (and before the
// setns the filter would refuse the setns itself: Docker's profile allows
// setns only to CAP_SYS_ADMIN); with no_new_privs last, so that the
// change of credentials is not filtered.

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// openUserns opens the container's user namespace, and reads its maps,
// if its first process is in another user namespace than the helper's
// (run --userns, an OCI bundle's new or joined one). It leaves h.userns
// at -1 if not.
func (h *execHelper) openUserns() error {
	fd, err := unix.Open("/proc/"+h.ctrPid+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	var theirs, ours unix.Stat_t
	if err := unix.Fstat(fd, &theirs); err != nil {
		unix.Close(fd)
		return err
	}
	if err := unix.Stat("/proc/thread-self/ns/user", &ours); err != nil {
		unix.Close(fd)
		return err
	}
	if theirs.Ino == ours.Ino && theirs.Dev == ours.Dev {
		unix.Close(fd)
		return nil
	}
	h.userns = fd
	if h.uidMap, err = readIDMap("/proc/" + h.ctrPid + "/uid_map"); err == nil {
		h.gidMap, err = readIDMap("/proc/" + h.ctrPid + "/gid_map")
	}
	return err
}

// prepareUsernsEntry is exec's helper's step for a user namespace, in
// place of dropPrivileges: the child's credentials, ready for it.
func (h *execHelper) prepareUsernsEntry() error {
	spec := h.spec
	if err := h.checkMapped(); err != nil {
		return err
	}
	eff, perm, inh, amb := processCaps(spec, h.keep)
	if spec.CapSets == nil && spec.UID != 0 {
		// Outside a user namespace the kernel clears them when uid 0
		// leaves; here it would not (the child's uid before is the host's
		// 0, not its namespace's root): the capset clears them.
		eff, perm, inh = 0, 0, 0
	}
	warnAmbient(capList(amb &^ (perm & inh)))
	u := &usernsEntry{userns: h.userns, noNewPrivs: spec.NoNewPrivs, lastCap: lastCap(), bounding: h.keep,
		uid: uintptr(spec.UID), gid: uintptr(spec.GID), ambient: amb & perm & inh,
		capHeader: unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}}
	u.caps[0] = unix.CapUserData{Effective: uint32(eff), Permitted: uint32(perm), Inheritable: uint32(inh)}
	u.caps[1] = unix.CapUserData{Effective: uint32(eff >> 32), Permitted: uint32(perm >> 32), Inheritable: uint32(inh >> 32)}
	if len(spec.Groups) > 0 {
		groups := make([]uint32, len(spec.Groups))
		for i, g := range spec.Groups {
			groups[i] = uint32(g)
		}
		u.groups, u.nGroups = &groups[0], uintptr(len(groups))
	}
	if f := h.filter; f != nil {
		u.filter = &unix.SockFprog{Len: uint16(len(f.Program)), Filter: &f.Program[0]}
		u.filterFlags = f.Flags
	}
	h.into = u
	return nil
}

// checkMapped: the process's IDs must be the container's (mapped in its
// namespace), or the child's setresuid would fail with a bare EINVAL.
func (h *execHelper) checkMapped() error {
	if hostID(h.uidMap, uint32(h.spec.UID)) < 0 {
		return execFailure("uid %d is not mapped in the container's user namespace (uid_map %q): give one of its IDs", h.spec.UID, joinMaps(h.uidMap))
	}
	for _, g := range append([]int{h.spec.GID}, h.spec.Groups...) {
		if hostID(h.gidMap, uint32(g)) < 0 {
			return execFailure("gid %d is not mapped in the container's user namespace (gid_map %q): give one of its IDs", g, joinMaps(h.gidMap))
		}
	}
	return nil
}

// narrateUsernsEntry names the child's calls of rawEnterUserns, in order.
func (h *execHelper) narrateUsernsEntry() {
	u, n, spec := h.into, h.n, h.spec
	n.Call("setns(%d, CLONE_NEWUSER)   # in the child, single-threaded as a fork is: every capability now, in the container's user namespace only", u.userns)
	if h.filter != nil && !u.noNewPrivs {
		narrateSeccomp(n, h.filter, "in the child, while it holds CAP_SYS_ADMIN in its user namespace")
	}
	n.Call("prctl(PR_CAPBSET_DROP) x %d   # in the child: the setns gave it all; the container's %d stay", int(u.lastCap)+1-len(spec.Capabilities), len(spec.Capabilities))
	n.Call("prctl(PR_SET_KEEPCAPS, 1)   # its permitted capabilities outlive the change of IDs")
	n.Call("setgroups(%d, %v), setresgid(%d, %d, %d), setresuid(%d, %d, %d)   # the container's IDs, mapped through its namespace: uid %d, gid %d on the host",
		len(spec.Groups), spec.Groups, spec.GID, spec.GID, spec.GID, spec.UID, spec.UID, spec.UID, hostID(h.uidMap, uint32(spec.UID)), hostID(h.gidMap, uint32(spec.GID)))
	n.Call("capset({effective %#x, permitted %#x, inheritable %#x})", capsOf(u, 0), capsOf(u, 1), capsOf(u, 2))
	if u.ambient != 0 {
		n.Call("prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, %s)", strings.Join(capList(u.ambient), " | "))
	}
	if u.noNewPrivs {
		n.Call("prctl(PR_SET_NO_NEW_PRIVS, 1)")
		if h.filter != nil {
			narrateSeccomp(n, h.filter, "in the child, with no_new_privs")
		}
	}
}

// givePty: outside a user namespace the helper makes the pty with the
// process's credentials, and it is the process's own; here the helper is
// still the host's root (unmapped inside: the pty would be nobody's), so
// it gives it to the process's IDs.
func (h *execHelper) givePty() error {
	if h.slave < 0 || h.into == nil {
		return nil
	}
	uid, gid := hostID(h.uidMap, uint32(h.spec.UID)), hostID(h.gidMap, uint32(h.spec.GID))
	h.n.Call("fchown(slave, %d, %d)   # the pty is the process's, as if it had made it", uid, gid)
	if err := unix.Fchown(h.slave, uid, gid); err != nil {
		return execFailure("giving the pty to uid %d: %v", uid, err)
	}
	return nil
}

// capsOf is one of the child's capability sets (0 effective, 1
// permitted, 2 inheritable) as a 64-bit mask.
func capsOf(u *usernsEntry, set int) uint64 {
	pick := func(d unix.CapUserData) uint32 { return [3]uint32{d.Effective, d.Permitted, d.Inheritable}[set] }
	return uint64(pick(u.caps[0])) | uint64(pick(u.caps[1]))<<32
}

// capList names the capabilities of a mask.
func capList(bits uint64) []string {
	var out []string
	for c := uintptr(0); c < 64; c++ {
		if bits&(1<<c) != 0 {
			out = append(out, capName(c))
		}
	}
	return out
}

// readIDMap reads a /proc/<pid>/uid_map or gid_map.
func readIDMap(path string) ([]IDMap, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []IDMap
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		var v [3]uint64
		for i := range f {
			if v[i], err = strconv.ParseUint(f[i], 10, 32); err != nil {
				return nil, err
			}
		}
		out = append(out, IDMap{ContainerID: uint32(v[0]), HostID: uint32(v[1]), Size: uint32(v[2])})
	}
	return out, nil
}
