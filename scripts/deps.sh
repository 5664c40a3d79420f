#!/usr/bin/env bash
# Install everything the build, the VM and the tests need. Idempotent:
# each step checks first and does nothing when already satisfied.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BINDGEN_VERSION=0.73.2
VIRTME_NG_VERSION=1.42

# From bookworm-backports: iproute2 >= 6.2 for `offload packet`; QEMU to
# match the backported qemu-utils that the machine image may already carry.
BPO_PKGS=(iproute2 qemu-system-x86)

# The base kernel: Debian's linux-source-7.3, from trixie-backports. Only
# this one package, at this version, comes from that suite: the suite is
# pinned to -1 (never chosen) and this package alone to 500.
BASE_PKG=linux-source-7.3
BASE_VERSION=7.3.4-1~bpo13+1

DEB_PKGS=(
	build-essential bc bison flex cpio kmod rsync xz-utils zstd
	libelf-dev libssl-dev libncurses-dev dwarves python3 python3-pip
	ccache clang-22 lld-22 llvm-22 libclang-22-dev
	busybox-static
	iputils-ping tcpdump socat ethtool iperf3 procps psmisc
	mmdebstrap
	# NIPA's patch checks on the selftests (scripts/nipa-check.sh)
	shellcheck pylint
	# make deb (bindeb-pkg's build dependencies)
	debhelper libdw-dev
)

# apt_suite FILE SUITE: a deb822 source for a suite of Debian's archive.
apt_suite() {
	cat >"$1" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: $2
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
}

ensure_backports() {
	grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ && return 0
	[ -w /etc/apt/sources.list.d ] || die "need root to add bookworm-backports (iproute2 >= 6.2)"
	apt_suite /etc/apt/sources.list.d/bookworm-backports.sources bookworm-backports
}

# trixie-backports, for the base kernel's source package only.
ensure_base_suite() {
	local f=/etc/apt/sources.list.d/trixie-backports.sources
	local pin=/etc/apt/preferences.d/xfrm-direct-tx-base
	[ -f "$f" ] && [ -f "$pin" ] && return 0
	[ -w /etc/apt/sources.list.d ] || die "need root to add trixie-backports ($BASE_PKG)"
	apt_suite "$f" trixie-backports
	cat >"$pin" <<PIN
Package: *
Pin: release n=trixie-backports
Pin-Priority: -1

Package: $BASE_PKG
Pin: release n=trixie-backports
Pin-Priority: 500
PIN
}

base_ok() {
	[ "$(dpkg-query -W -f='${Status} ${Version}\n' "$BASE_PKG" 2>/dev/null)" = \
		"install ok installed $BASE_VERSION" ]
}

deb_missing() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || echo "$p"
	done
}

iproute2_ok() {
	# `ip xfrm state ... offload packet` arrived in iproute2 6.2.
	local v
	v=$(ip -V 2>/dev/null | grep -o 'iproute2-[0-9.]*' | cut -d- -f2)
	[ -n "$v" ] && [ "$(printf '%s\n6.2\n' "$v" | sort -V | head -n1)" = 6.2 ]
}

main() {
	if command -v apt-get >/dev/null; then
		ensure_backports
		ensure_base_suite
		mapfile -t missing < <(deb_missing "${DEB_PKGS[@]}")
		mapfile -t bpo_missing < <(deb_missing "${BPO_PKGS[@]}")
		iproute2_ok || bpo_missing+=(iproute2)
		if [ "${#missing[@]}" -gt 0 ] || [ "${#bpo_missing[@]}" -gt 0 ] || ! base_ok; then
			log "apt-get update"
			apt-get update -qq
			if [ "${#missing[@]}" -gt 0 ]; then
				log "installing: ${missing[*]}"
				DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
			fi
			if [ "${#bpo_missing[@]}" -gt 0 ]; then
				log "installing from bookworm-backports: ${bpo_missing[*]}"
				DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
					-t bookworm-backports "${BPO_PKGS[@]}" >/dev/null
			fi
			if ! base_ok; then
				log "installing $BASE_PKG=$BASE_VERSION from trixie-backports"
				DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
					"$BASE_PKG=$BASE_VERSION" >/dev/null
			fi
		fi
	else
		die "apt-get not found: install the packages listed in scripts/deps.sh by hand"
	fi
	base_ok || die "$BASE_PKG $BASE_VERSION is not installed (apt: $(apt-cache policy "$BASE_PKG" | sed -n 's/ *Candidate: //p'))"
	iproute2_ok || die "iproute2 >= 6.2 is required for 'offload packet' ($(ip -V))"

	command -v rustup >/dev/null || die "rustup not found: the Rust toolchain is needed (https://rustup.rs)"
	if ! rustup component list --installed | grep -q '^rust-src'; then
		log "rustup component add rust-src"
		rustup component add rust-src
	fi
	for c in rustfmt clippy; do
		rustup component list --installed | grep -q "^$c" || rustup component add "$c"
	done

	if ! bindgen --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
		log "cargo install bindgen-cli $BINDGEN_VERSION (about 4 minutes)"
		cargo install --locked --quiet bindgen-cli --version "$BINDGEN_VERSION"
	fi

	if ! vng --version 2>/dev/null | grep -q "$VIRTME_NG_VERSION"; then
		log "pip install virtme-ng $VIRTME_NG_VERSION"
		pip install --quiet --root-user-action=ignore "virtme-ng==$VIRTME_NG_VERSION"
	fi
	# The docs gate parses the rst page.
	python3 -c "import docutils" 2>/dev/null ||
		pip install --quiet --root-user-action=ignore "docutils==0.21.2"
	log "dependencies ok"
}

main "$@"
