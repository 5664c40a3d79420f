#!/usr/bin/env bash
# The guest's own root filesystem: a pinned Debian trixie userspace, built
# once with mmdebstrap into the cache folder; prints its path.
#
# Bookworm's strongSwan (5.9.8) predates packet offload (5.9.10), and the
# host's userspace is whatever the host has. VM_ROOT=$(scripts/guest-root.sh)
# boots the guest on this root instead (scripts/vm.sh).
#
# The root is used only when it is complete: it is built under a temporary
# name and renamed when mmdebstrap succeeded, and its stamp records the
# package set it was built from. A root without the stamp, with another
# package set, with a half-installed package or without one of the tools
# the tests run is removed and built again.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SUITE=trixie
MIRROR=${GUEST_ROOT_MIRROR:-http://deb.debian.org/debian}
STRONGSWAN_VERSION=6.0.1-6+deb13u7
PINNED=(strongswan-charon strongswan-swanctl strongswan-libcharon libstrongswan)
# virtme-ng sets the root up with systemd-tmpfiles at boot (a failure is
# a "WARNING:" on the console). No udev, as on the host: its coldplug takes
# 50 s of a TCG boot.
PACKAGES=(iproute2 iputils-ping tcpdump socat python3 kmod procps psmisc iperf3 bc make ethtool nftables
	systemd-standalone-tmpfiles)
# What the selftests and the demo run, relative to the root.
REQUIRED=(usr/lib/ipsec/charon usr/sbin/swanctl usr/bin/ip usr/bin/ss usr/bin/ping
	usr/bin/tcpdump usr/bin/socat usr/bin/python3 usr/sbin/modprobe usr/bin/make usr/bin/bc
	usr/bin/timeout usr/bin/unshare usr/sbin/nft usr/sbin/tc)

include=$(printf '%s,' "${PINNED[@]/%/=$STRONGSWAN_VERSION}" "${PACKAGES[@]}")
include=${include%,}
spec="$SUITE $include"
id=$(sha256sum <<<"$spec" | cut -c1-12)
root=$CACHE_DIR/guest-root/$SUITE-$id
stamp=etc/xfrm-direct-tx-guest-root

# root_ok DIR: the root is complete and is the one this spec describes.
root_ok() {
	local dir=$1 f
	[ "$(head -n1 "$dir/$stamp" 2>/dev/null)" = "$spec" ] || return 1
	for f in "${REQUIRED[@]}"; do
		[ -x "$dir/$f" ] || { log "guest root $dir: no $f"; return 1; }
	done
	# Half-installed or unconfigured packages.
	[ -z "$(dpkg --root="$dir" --audit 2>&1)" ] || { log "guest root $dir: dpkg --audit complains"; return 1; }
}

build() { # MIRROR-LINE...
	local tmp=$root.tmp.$$
	rm -rf "$tmp"
	# tcpdump's and charon's own users are made by their maintainer
	# scripts; minbase keeps the root small (about 200 MB).
	if ! mmdebstrap --variant=minbase --include="$include" \
		--customize-hook='mkdir -p "$1/usr/lib/modules"' \
		"$SUITE" "$tmp" "$@" >"$root.log" 2>&1; then
		rm -rf "$tmp"
		return 1
	fi
	{
		echo "$spec"
		dpkg-query --admindir="$tmp/var/lib/dpkg" -W -f '${Package} ${Version}\n'
	} >"$tmp/$stamp"
	root_ok "$tmp" || { rm -rf "$tmp"; return 1; }
	mv "$tmp" "$root"
}

command -v mmdebstrap >/dev/null || die "'mmdebstrap' not found: run 'make deps'"
[ "$(id -u)" = 0 ] || die "building the guest root needs root (mmdebstrap's root mode)"
if ! root_ok "$root"; then
	if [ -e "$root" ]; then
		log "guest root $root is incomplete or stale: building it again"
		rm -rf "$root"
	fi
	mkdir -p "$CACHE_DIR/guest-root"
	# What an interrupted build left.
	rm -rf "$root".tmp.*
	log "building the guest root: Debian $SUITE, strongSwan $STRONGSWAN_VERSION (about a minute)"
	t0=$SECONDS
	if ! build "deb $MIRROR $SUITE main"; then
		tail -n 20 "$root.log" >&2
		# A point release replaces the pinned version: say so.
		if grep -q "Version '$STRONGSWAN_VERSION' for '[a-z-]*' was not found" "$root.log"; then
			die "strongSwan $STRONGSWAN_VERSION is no longer in $SUITE: set STRONGSWAN_VERSION in $0 to the one 'apt-cache madison' or packages.debian.org gives"
		fi
		die "building the guest root from $MIRROR failed (log: $root.log)"
	fi
	log "guest root built in $((SECONDS - t0)) s, $(du -sh "$root" | cut -f1)"
fi
echo "$root"
