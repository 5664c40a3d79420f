# xfrm packet-offload direct TX: build, boot and test entry points.
# `make help` lists the targets. Build trees and ccache live in
# $(CACHE_DIR) (default ~/.cache/xfrm-direct-tx), outside the repository.

SHELL := /bin/bash
S := scripts
export KDIR FLAVOUR CACHE_DIR IKE SELFTESTS SIGNOFF

.PHONY: help deps guest-root kernel module vm unit rustfmtcheck checkpatch lint check demo \
	patches dev-tree patches-check deb bench check-long check-debug clean
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

## deps          install build and test dependencies (idempotent)
deps:
	@$(S)/deps.sh

## guest-root    the guest's pinned Debian trixie userspace (strongSwan 6), in the cache folder
guest-root: deps
	@$(S)/guest-root.sh

## kernel        patched kernel in the cache folder (KDIR=/path/to/linux to use your tree)
kernel: deps
	@$(S)/kernel.sh

## module        the Rust module (and the C reference) against that kernel; CLIPPY=1 W=1 honoured
module: kernel
	@$(S)/module.sh

## vm CMD=...    boot the kernel and run CMD in it (VM_TIMEOUT=s, VM_ACCEL=kvm|tcg)
vm: module
	@$(S)/vm.sh -- "$(CMD)"

## unit          host-side unit tests of the module's decision logic (cargo test)
unit:
	@$(S)/check.sh unit

## rustfmtcheck  rustfmt --check on the module's sources
rustfmtcheck:
	@$(S)/check.sh rustfmt

## checkpatch    scripts/checkpatch.pl --strict on every patch in patches/
checkpatch: kernel
	@$(S)/check.sh checkpatch

## check         the test command: unit tests, quality gates, build, boot, kselftests;
##               SELFTESTS="a.sh b.sh" runs only those scripts of net/xfrm (any check-* too)
check:
	@$(S)/check.sh all

## check-long    `make check` with the selftests' long sizes (XFRM_LONG=1: 10,000 pings,
##               100 MB of TCP, 100 module reloads; about an hour)
check-long:
	@XFRM_LONG=1 $(S)/check.sh all

## check-debug   `make check` on a second kernel with KASAN, lockdep, kmemleak,
##               DEBUG_NET and refcount trackers (own build folder; slow)
check-debug:
	@FLAVOUR=debug $(S)/check.sh all

## demo          the main job: build, boot, the report's scenario three ways (stock path, no module, Rust);
##               IKE=1: strongSwan with the report's swanctl.conf brings the tunnel up
demo: module
	@$(S)/demo.sh

## patches       the series and security reports into out/ (SIGNOFF=1: signed off by you,
##               from your git identity; without it, no Signed-off-by)
patches: kernel
	@$(S)/patches.sh

## dev-tree      a kernel tree with the series as branches, to edit the kernel C in
dev-tree: kernel
	@$(S)/dev-tree.sh

## patches-check every prefix of the series builds, the in-tree module enabled
##               once it exists; series 0+1 (no hook) boot and pass their selftests
##               (own build folder; first run ~35 min)
patches-check: kernel
	@$(S)/patches-check.sh

## deb           Debian kernel packages for the gateways (defconfig + scripts/kconfig/gateway.config,
##               the series applied; long: not part of check) into $(CACHE_DIR)/deb
deb: kernel
	@$(S)/deb.sh

## bench         benchmark: instructions per call (-icount) and TCG timings (not part of check)
bench: module
	@bench/run.sh

## clean         remove build outputs from the repository (the cache folder stays)
clean:
	@git clean -fdXq -- rust bench Kbuild
