#!/usr/bin/env bash
# Prepare an Ubuntu or Debian machine for the container-internals workshop.
#
# The Vagrantfile runs this script, but nothing in it needs Vagrant: run it as
# root on any Ubuntu/Debian machine (a Lima or Multipass VM, a spare laptop):
#
#   sudo scripts/provision.sh                 # everything, then the doctor
#   sudo scripts/provision.sh --no-doctor     # everything but the doctor
#   scripts/provision.sh --self-test          # test the pure parts (no root, no network)
#
# What it does, and why:
#   1. apt packages the stages use (busybox-static for a tiny rootfs, procps
#      for ps, tree, make, gcc ...).
#   2. A pinned Go, from the official tarball for this CPU, checksum verified,
#      unpacked into a clean /usr/local/go (Ubuntu 24.04's packaged Go is 1.22;
#      a Go 1.22 or newer already in /usr/local/go is kept),
#      with `go` linked into /usr/local/bin: sudo's secure_path does not
#      include /usr/local/go/bin, and every stage runs as `sudo go run ...`.
#   3. The cgroup v2 cpu controller, enabled for child cgroups, for good:
#      Ubuntu's multipathd runs real-time threads, and while any real-time
#      thread lives outside the root cgroup the kernel refuses `+cpu` in
#      /sys/fs/cgroup/cgroup.subtree_control. multipathd is useless in a VM.
#   4. Rootless (stage 06's `run` as an ordinary user): the runtime built to
#      /usr/local/bin/workshop, newuidmap/newgidmap (uidmap) and a range of
#      sub-IDs for the user; and, where Ubuntu 24.04's AppArmor restricts
#      unprivileged user namespaces, a profile that allows them for that
#      binary alone (/etc/apparmor.d/workshop), not the global sysctl.
#   5. The doctor (`go run ./cmd/doctor`), which checks all of the above.
#
# It is idempotent: every step first looks whether its work is already done,
# so `vagrant provision` twice, or Lima re-running it at every boot, is fine.
#
# Environment:
#   GO_TARBALL=/path/go1.23.4.linux-amd64.tar.gz  use a tarball you already
#       downloaded (the pinned checksum is still verified)
#   GO_DOWNLOAD_BASE=https://...                   a mirror of the Go downloads
set -euo pipefail

# The pinned Go. The checksums are the ones published with the release; to
# move to another version, change all three lines together.
GO_VERSION="1.23.4"
GO_SHA256_AMD64="6924efde5de86fe277676e929dc9917d466efa02fb934197bc2eba35d5680971"
GO_SHA256_ARM64="16e5017863a7f6071363782b1b8042eb12c6ca4f4cd71528b2123f0a1275b13e"
GO_DOWNLOAD_BASE="${GO_DOWNLOAD_BASE:-https://go.dev/dl}"
# The oldest Go the module builds with (go.mod says `go 1.22`). A Go at least
# this new already in /usr/local/go is kept: on your own machine the script
# does not downgrade a newer Go.
GO_MIN_VERSION="1.22"

# Debian package names of what the stages, their tests and the chapters'
# exercises run (attr: getfattr; strace; jq: the OCI chapter). QEMU, for
# `make test`'s VM suite, is large and left out: `make doctor` says how to
# add it.
# uidmap: newuidmap and newgidmap, for the rootless runtime's ID ranges.
APT_PACKAGES=(busybox-static procps psmisc tree make gcc libc6-dev git curl ca-certificates util-linux mount attr strace jq uidmap)

# Rootless: where the runtime is built, and the AppArmor profile that lets
# that binary alone create user namespaces under Ubuntu 24.04's restriction
# (kernel.apparmor_restrict_unprivileged_userns=1). The shape is Ubuntu's
# own for such programs (see its /etc/apparmor.d/ on 24.04): an unconfined
# profile attached by path whose one rule allows `userns`. Untested here:
# this repository's CI runs on Debian, without AppArmor's restriction.
WORKSHOP_BIN=/usr/local/bin/workshop
APPARMOR_PROFILE_FILE=/etc/apparmor.d/workshop
APPARMOR_PROFILE="# The container-internals workshop's runtime (stage 06), rootless: it may
# create user namespaces. Installed by scripts/provision.sh.
abi <abi/4.0>,
include <tunables/global>

profile workshop $WORKSHOP_BIN flags=(unconfined) {
  userns,

  include if exists <local/workshop>
}"
# A range for the learner if useradd gave none (Ubuntu's useradd gives the
# first user 100000-165535: stage 06's --userns uses that range as root).
SUBID_RANGE=200000-265535

log() { printf 'provision: %s\n' "$*"; }
die() {
	printf 'provision: %s\n' "$*" >&2
	exit 1
}

# --- pure parts: no root, no network; covered by --self-test ---------------

# go_arch MACHINE: the Go download name of a CPU, given as `uname -m` or
# `dpkg --print-architecture` prints it. Fails for CPUs the workshop does not
# support.
go_arch() {
	case "$1" in
	x86_64 | amd64) echo amd64 ;;
	aarch64 | arm64) echo arm64 ;;
	*) return 1 ;;
	esac
}

# go_tarball VERSION ARCH: the official archive's file name.
go_tarball() {
	echo "go$1.linux-$2.tar.gz"
}

# go_sha256 ARCH: the pinned checksum of this Go version's archive for ARCH.
go_sha256() {
	case "$1" in
	amd64) echo "$GO_SHA256_AMD64" ;;
	arm64) echo "$GO_SHA256_ARM64" ;;
	*) return 1 ;;
	esac
}

# is_sha256 TEXT: true if TEXT looks like a SHA-256 (64 lowercase hex digits).
is_sha256() {
	[[ $1 =~ ^[0-9a-f]{64}$ ]]
}

# sha256_ok FILE SHA256: true if FILE's SHA-256 is exactly SHA256.
sha256_ok() {
	local file="$1" want="$2" got
	[ -f "$file" ] || return 1
	got="$(sha256sum "$file" | cut -d' ' -f1)"
	is_sha256 "$want" && [ "$got" = "$want" ]
}

# go_installed_version GOROOT: the version of the Go unpacked in GOROOT
# ("1.23.4"), read from its VERSION file; nothing if there is none.
go_installed_version() {
	local first
	[ -f "$1/VERSION" ] || return 0
	first="$(head -n1 "$1/VERSION")"
	echo "${first#go}"
}

# version_ge A B: true if version A is B or newer (1.23.4 >= 1.22).
version_ge() {
	[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

# need_go MIN GOROOT: true unless GOROOT holds a Go of version MIN or newer.
need_go() {
	local have
	have="$(go_installed_version "$2")"
	[ -n "$have" ] && [ -x "$2/bin/go" ] && version_ge "$have" "$1" && return 1
	return 0
}

# install_go_tarball TARBALL SHA256 PREFIX BINDIR: verify TARBALL, unpack it
# into a clean PREFIX/go (a tarball over an old tree leaves stale files that
# break the toolchain), and link go and gofmt into BINDIR.
install_go_tarball() {
	local tarball="$1" sha="$2" prefix="$3" bindir="$4"
	if ! sha256_ok "$tarball" "$sha"; then
		die "checksum mismatch for $tarball (want sha256 $sha): delete it and run again"
	fi
	rm -rf "$prefix/go"
	mkdir -p "$prefix" "$bindir"
	tar -C "$prefix" -xzf "$tarball"
	link_go "$prefix/go" "$bindir"
}

# link_go GOROOT BINDIR: put go and gofmt where sudo's secure_path finds them.
link_go() {
	local b
	for b in go gofmt; do
		if [ "$(readlink "$2/$b" 2>/dev/null || true)" != "$1/bin/$b" ]; then
			ln -sfn "$1/bin/$b" "$2/$b"
		fi
	done
}

# write_if_changed FILE CONTENT: write FILE only if its content differs.
# Returns 0 when it wrote, 1 when FILE already had CONTENT, so that callers
# reload a service only when something changed.
write_if_changed() {
	local file="$1" content="$2"
	if [ -f "$file" ] && [ "$(cat "$file")" = "$content" ]; then
		return 1
	fi
	mkdir -p "$(dirname "$file")"
	printf '%s\n' "$content" >"$file"
	return 0
}

# has_word FILE WORD: true if WORD is one of the space-separated words in FILE
# (the format of cgroup.controllers and cgroup.subtree_control).
has_word() {
	[ -f "$1" ] && tr ' ' '\n' <"$1" | grep -qx "$2"
}

# enable_controller CGROUP_DIR NAME: enable controller NAME for the children
# of CGROUP_DIR, unless it already is. Fails if the kernel refuses.
enable_controller() {
	local dir="$1" name="$2"
	has_word "$dir/cgroup.subtree_control" "$name" && return 0
	has_word "$dir/cgroup.controllers" "$name" || return 1
	echo "+$name" >"$dir/cgroup.subtree_control" 2>/dev/null || return 1
}

# The unit that enables the cpu controller at every boot. Masking multipathd
# is what makes it possible; the drop-in tells systemd we want CPU accounting,
# so that systemd keeps the controller enabled instead of pruning it.
CPU_UNIT_NAME="workshop-cgroup-cpu.service"
CPU_UNIT="[Unit]
Description=Enable the cgroup v2 cpu controller for the container-internals workshop
After=local-fs.target
ConditionPathExists=/sys/fs/cgroup/cgroup.subtree_control

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control || echo +cpu > /sys/fs/cgroup/cgroup.subtree_control'

[Install]
WantedBy=multi-user.target"
CPU_DROPIN="[Manager]
DefaultCPUAccounting=yes"

# --- steps that change the machine ------------------------------------------

install_packages() {
	local missing=() p
	for p in "${APT_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		log "packages: all present"
		return
	fi
	log "packages: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_go() {
	local arch tarball sha tmp
	arch="$(go_arch "$(dpkg --print-architecture 2>/dev/null || uname -m)")" ||
		die "no Go download for this CPU ($(uname -m)): the workshop supports amd64 and arm64"
	if ! need_go "$GO_MIN_VERSION" /usr/local/go; then
		link_go /usr/local/go /usr/local/bin
		log "go: $(go_installed_version /usr/local/go) already in /usr/local/go ($GO_MIN_VERSION or newer needed)"
		return
	fi
	sha="$(go_sha256 "$arch")"
	tarball="${GO_TARBALL:-}"
	if [ -z "$tarball" ]; then
		tmp="$(mktemp -d)"
		# shellcheck disable=SC2064 # expand $tmp now: it is local to this function
		trap "rm -rf '$tmp'" EXIT
		tarball="$tmp/$(go_tarball "$GO_VERSION" "$arch")"
		log "go: downloading $(basename "$tarball")"
		curl -fsSL --retry 3 -o "$tarball" "$GO_DOWNLOAD_BASE/$(basename "$tarball")" ||
			die "cannot download Go from $GO_DOWNLOAD_BASE: check the network, or set GO_TARBALL to a copy you downloaded"
	fi
	install_go_tarball "$tarball" "$sha" /usr/local /usr/local/bin
	log "go: installed $GO_VERSION into /usr/local/go, linked into /usr/local/bin"
}

# systemd is PID 1 here (not inside a container or a chroot).
have_systemd() { [ -d /run/systemd/system ]; }

# build_workshop REPO BIN: the runtime, built where the AppArmor profile
# names it (rebuilt at every provisioning: the repository may have moved on).
build_workshop() {
	local repo="$1" bin="$2"
	if [ -z "$repo" ] || [ ! -d "$repo/06-full-container" ]; then
		log "rootless: no 06-full-container in the repository, no $bin"
		return 0
	fi
	(cd "$repo" && CGO_ENABLED=0 /usr/local/bin/go build -tags urfave_cli_no_docs -o "$bin" ./06-full-container)
	log "rootless: stage 06's runtime built to $bin (an ordinary user runs \`workshop run -- sh\`)"
}

# add_subids USER [ETC]: a range in ETC/subuid and ETC/subgid unless USER
# has one already (by name or by uid, as newuidmap reads them).
add_subids() {
	local user="$1" etc="${2:-/etc}" uid
	[ -n "$user" ] && [ "$user" != root ] || return 0
	uid="$(id -u "$user" 2>/dev/null)" || return 0
	if grep -qE "^($user|$uid):" "$etc/subuid" 2>/dev/null && grep -qE "^($user|$uid):" "$etc/subgid" 2>/dev/null; then
		return 0
	fi
	if [ "$etc" = /etc ]; then
		usermod --add-subuids "$SUBID_RANGE" --add-subgids "$SUBID_RANGE" "$user"
	else
		printf '%s:%s:%s\n' "$user" "${SUBID_RANGE%-*}" 65536 | tee -a "$etc/subuid" >>"$etc/subgid"
	fi
	log "rootless: $user's sub-IDs $SUBID_RANGE (for newuidmap/newgidmap)"
}

# userns_restricted [PROC]: Ubuntu 24.04's AppArmor restriction is on.
userns_restricted() {
	[ "$(cat "${1:-/proc}/sys/kernel/apparmor_restrict_unprivileged_userns" 2>/dev/null)" = 1 ]
}

# allow_rootless_userns: the profile, loaded, where the restriction is on.
allow_rootless_userns() {
	if ! userns_restricted /proc; then
		log "rootless: unprivileged user namespaces are not restricted here: no AppArmor profile needed"
		return 0
	fi
	if write_if_changed "$APPARMOR_PROFILE_FILE" "$APPARMOR_PROFILE" || ! grep -qs '^workshop ' /sys/kernel/security/apparmor/profiles; then
		apparmor_parser -r "$APPARMOR_PROFILE_FILE"
		log "rootless: $APPARMOR_PROFILE_FILE loaded: $WORKSHOP_BIN (and only it) may create user namespaces"
	fi
}

disable_multipathd() {
	have_systemd || return 0
	systemctl list-unit-files multipathd.service >/dev/null 2>&1 || return 0
	systemctl cat multipathd.service >/dev/null 2>&1 || return 0
	if [ "$(systemctl is-enabled multipathd.service 2>/dev/null || true)" = masked ]; then
		log "multipathd: already masked"
		return
	fi
	log "multipathd: stopping and masking it (its real-time threads block the cpu controller)"
	systemctl disable --now multipathd.service multipathd.socket >/dev/null 2>&1 || true
	systemctl mask multipathd.service multipathd.socket >/dev/null
}

enable_cpu_controller() {
	local root=/sys/fs/cgroup
	if [ ! -f "$root/cgroup.subtree_control" ]; then
		log "cgroups: not cgroup v2 at $root (v1 or hybrid): nothing to enable"
		return
	fi
	if have_systemd; then
		local changed=0
		write_if_changed "/etc/systemd/system/$CPU_UNIT_NAME" "$CPU_UNIT" && changed=1
		write_if_changed /etc/systemd/system.conf.d/workshop-cpu.conf "$CPU_DROPIN" && changed=1
		if [ "$changed" = 1 ]; then
			systemctl daemon-reload
			systemctl enable "$CPU_UNIT_NAME" >/dev/null 2>&1
		fi
	fi
	if enable_controller "$root" cpu; then
		log "cgroups: cpu controller enabled in $root/cgroup.subtree_control"
		return
	fi
	log "cgroups: the kernel refused +cpu in $root/cgroup.subtree_control."
	log "  Real-time threads outside the root cgroup block it; these are the candidates:"
	ps -eLo pid,cls,rtprio,comm | awk 'NR == 1 || $2 == "FF" || $2 == "RR"' | sed 's/^/    /'
	log "  Stop the service that owns them, then run this script again (or reboot)."
	return 1
}

# The repository: --repo, or the directory above this script.
find_repo() {
	local dir
	dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
	[ -f "$dir/go.mod" ] && echo "$dir"
}

land_in_repo() {
	local user="$1" repo="$2" home rc line
	[ -n "$user" ] && [ -n "$repo" ] && [ "$user" != root ] || return 0
	home="$(getent passwd "$user" | cut -d: -f6)"
	[ -n "$home" ] && [ -d "$home" ] || return 0
	rc="$home/.bashrc"
	line="cd $repo  # container-internals workshop"
	grep -qxF "$line" "$rc" 2>/dev/null && return 0
	printf '%s\n' "$line" >>"$rc"
	chown "$user:" "$rc"
	log "login: $user's shell starts in $repo"
}

run_doctor() {
	local repo="$1"
	if [ -z "$repo" ] || [ ! -d "$repo/cmd/doctor" ]; then
		log "doctor: no cmd/doctor in the repository, skipped"
		return 0
	fi
	log "doctor: checking everything the stages need"
	(cd "$repo" && /usr/local/bin/go run ./cmd/doctor)
}

# --- self-test ---------------------------------------------------------------

self_test() {
	local passed=0 failed=0 tmp
	tmp="$(mktemp -d)"
	# shellcheck disable=SC2064 # expand $tmp now
	trap "rm -rf '$tmp'" EXIT
	t() { # t NAME COMMAND...: one check
		local name="$1"
		shift
		if "$@"; then passed=$((passed + 1)); else
			failed=$((failed + 1))
			echo "self-test FAILED: $name"
		fi
	}
	eq() { [ "$1" = "$2" ] || {
		echo "  got '$1', want '$2'"
		return 1
	}; }

	t "x86_64 is amd64" eq "$(go_arch x86_64)" amd64
	t "aarch64 is arm64" eq "$(go_arch aarch64)" arm64
	t "dpkg's arm64 is arm64" eq "$(go_arch arm64)" arm64
	t "armv7l is unsupported" eval '! go_arch armv7l >/dev/null'
	t "tarball name" eq "$(go_tarball "$GO_VERSION" arm64)" "go$GO_VERSION.linux-arm64.tar.gz"
	t "amd64 checksum is pinned" is_sha256 "$(go_sha256 amd64)"
	t "arm64 checksum is pinned" is_sha256 "$(go_sha256 arm64)"
	t "no checksum for other CPUs" eval '! go_sha256 386 >/dev/null'
	printf 'hello\n' >"$tmp/f"
	t "sha256 match" sha256_ok "$tmp/f" 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03
	t "sha256 mismatch" eval "! sha256_ok '$tmp/f' $GO_SHA256_AMD64"
	t "sha256 of a missing file" eval "! sha256_ok '$tmp/missing' $GO_SHA256_AMD64"
	t "no Go installed: need one" need_go "$GO_VERSION" "$tmp/nogo"
	mkdir -p "$tmp/go/bin" && printf 'go%s\ntime x\n' "$GO_VERSION" >"$tmp/go/VERSION"
	printf '#!/bin/sh\n' >"$tmp/go/bin/go" && chmod +x "$tmp/go/bin/go"
	t "installed version read" eq "$(go_installed_version "$tmp/go")" "$GO_VERSION"
	t "same Go installed: nothing to do" eval "! need_go '$GO_VERSION' '$tmp/go'"
	t "newer Go installed: kept" eval "! need_go '$GO_MIN_VERSION' '$tmp/go'"
	t "older Go installed: replace it" need_go 9.9.9 "$tmp/go"
	t "1.23.4 >= 1.22" version_ge 1.23.4 1.22
	t "1.22 >= 1.22" version_ge 1.22 1.22
	t "1.9 < 1.22" eval "! version_ge 1.9 1.22"
	t "1.21.13 < 1.22" eval "! version_ge 1.21.13 1.22"
	t "first write writes" write_if_changed "$tmp/etc/unit" "$CPU_UNIT"
	t "second write does nothing" eval "! write_if_changed '$tmp/etc/unit' \"\$CPU_UNIT\""
	mkdir -p "$tmp/cg"
	echo "cpuset cpu io memory pids" >"$tmp/cg/cgroup.controllers"
	echo "memory pids" >"$tmp/cg/cgroup.subtree_control"
	t "cpu missing from subtree_control" eval "! has_word '$tmp/cg/cgroup.subtree_control' cpu"
	t "cpu enabled" enable_controller "$tmp/cg" cpu
	t "+cpu written" eq "$(cat "$tmp/cg/cgroup.subtree_control")" "+cpu"
	echo "cpu memory pids" >"$tmp/cg/cgroup.subtree_control"
	t "cpu already enabled: untouched" enable_controller "$tmp/cg" cpu
	t "  ... file unchanged" eq "$(cat "$tmp/cg/cgroup.subtree_control")" "cpu memory pids"
	t "absent controller is refused" eval "! enable_controller '$tmp/cg' rdma"
	mkdir -p "$tmp/bin"
	link_go "$tmp/go" "$tmp/bin"
	t "go linked" eq "$(readlink "$tmp/bin/go")" "$tmp/go/bin/go"
	link_go "$tmp/go" "$tmp/bin"
	t "linking twice is fine" eq "$(readlink "$tmp/bin/gofmt")" "$tmp/go/bin/gofmt"

	# A whole install, from a fake Go tarball into a scratch prefix.
	mkdir -p "$tmp/src/go/bin" "$tmp/prefix/go/stale"
	printf 'go%s\n' "$GO_VERSION" >"$tmp/src/go/VERSION"
	printf '#!/bin/sh\necho fake go\n' >"$tmp/src/go/bin/go"
	cp "$tmp/src/go/bin/go" "$tmp/src/go/bin/gofmt"
	chmod +x "$tmp/src/go/bin/"*
	tar -C "$tmp/src" -czf "$tmp/fake.tar.gz" go
	local fake_sha
	fake_sha="$(sha256sum "$tmp/fake.tar.gz" | cut -d' ' -f1)"
	t "bad checksum: refused" eval "! (install_go_tarball '$tmp/fake.tar.gz' $GO_SHA256_AMD64 '$tmp/prefix' '$tmp/pbin') 2>/dev/null"
	t "  ... old tree untouched" test -d "$tmp/prefix/go/stale"
	t "good checksum: installed" install_go_tarball "$tmp/fake.tar.gz" "$fake_sha" "$tmp/prefix" "$tmp/pbin"
	t "  ... into a clean tree" test ! -e "$tmp/prefix/go/stale"
	t "  ... go runs through the link" eq "$("$tmp/pbin/go")" "fake go"
	t "  ... and is not needed again" eval "! need_go '$GO_VERSION' '$tmp/prefix/go'"

	t "the profile names the workshop binary" eval "printf '%s' \"\$APPARMOR_PROFILE\" | grep -qxF 'profile workshop $WORKSHOP_BIN flags=(unconfined) {'"
	t "  ... and allows userns, nothing else" eq "$(printf '%s\n' "$APPARMOR_PROFILE" | grep -cE '^  [a-z]+,$')" 1
	mkdir -p "$tmp/proc/sys/kernel" "$tmp/etc"
	echo 1 >"$tmp/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
	t "restriction read" userns_restricted "$tmp/proc"
	echo 0 >"$tmp/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
	t "no restriction read" eval "! userns_restricted '$tmp/proc'"
	t "no restriction file: not restricted" eval "! userns_restricted '$tmp/nothing'"
	add_subids "$(id -un 2>/dev/null || echo nobody)" "$tmp/etc" >/dev/null
	if [ "$(id -u)" != 0 ]; then
		t "sub-IDs added" eq "$(cat "$tmp/etc/subuid")" "$(id -un):200000:65536"
		add_subids "$(id -un)" "$tmp/etc" >/dev/null
		t "  ... once" eq "$(wc -l <"$tmp/etc/subgid")" 1
	fi

	echo "self-test: $passed checks passed, $failed failed"
	[ "$failed" -eq 0 ]
}

# --- main --------------------------------------------------------------------

main() {
	local doctor=1 repo="" user="${SUDO_USER:-}"
	while [ $# -gt 0 ]; do
		case "$1" in
		--self-test)
			self_test
			return
			;;
		--no-doctor) doctor=0 ;;
		--repo)
			repo="${2:?--repo needs a directory}"
			shift
			;;
		--user)
			user="${2:?--user needs a name}"
			shift
			;;
		-h | --help)
			sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
			return
			;;
		*) die "unknown argument $1 (try --help)" ;;
		esac
		shift
	done
	[ "$(id -u)" = 0 ] || die "needs root: run \`sudo $0\`"
	[ -n "$repo" ] || repo="$(find_repo || true)"

	install_packages
	install_go
	disable_multipathd
	enable_cpu_controller || die "the cpu controller is not available (see above)"
	build_workshop "$repo" "$WORKSHOP_BIN"
	add_subids "$user"
	allow_rootless_userns
	land_in_repo "$user" "$repo"
	if [ "$doctor" = 1 ]; then
		run_doctor "$repo"
	fi
	log "done"
}

# Sourced (by the tests), define the functions and stop; run, do the work.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	main "$@"
fi
