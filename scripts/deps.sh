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

DEB_PKGS=(
	build-essential bc bison flex cpio kmod rsync xz-utils zstd
	libelf-dev libssl-dev libncurses-dev dwarves python3 python3-pip
	ccache clang-19 lld-19 llvm-19 libclang-19-dev
	busybox-static
	iputils-ping tcpdump socat ethtool iperf3 procps psmisc
	linux-source-6.12
)

ensure_backports() {
	local f=/etc/apt/sources.list.d/bookworm-backports.sources
	grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ && return 0
	[ -w /etc/apt/sources.list.d ] || die "need root to add bookworm-backports (iproute2 >= 6.2)"
	cat >"$f" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
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
		mapfile -t missing < <(deb_missing "${DEB_PKGS[@]}")
		mapfile -t bpo_missing < <(deb_missing "${BPO_PKGS[@]}")
		iproute2_ok || bpo_missing+=(iproute2)
		if [ "${#missing[@]}" -gt 0 ] || [ "${#bpo_missing[@]}" -gt 0 ]; then
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
		fi
	else
		die "apt-get not found: install the packages listed in scripts/deps.sh by hand"
	fi
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
