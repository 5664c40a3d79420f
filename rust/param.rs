// SPDX-License-Identifier: GPL-2.0

//! The module's boolean parameter, `direct_transport`.
//!
//! Rust's `module!` has no parameters in this kernel, so this emits what
//! C's `module_param(direct_transport, bool, 0644)` does: a
//! `struct kernel_param` in the `__param` section and its `.modinfo` lines.
//! It appears as `/sys/module/xfrm_direct_tx/parameters/direct_transport`
//! and as `xfrm_direct_tx.direct_transport=` on the command line when
//! built in.

use core::sync::atomic::{AtomicBool, Ordering};
use kernel::bindings;

/// Also send forwarded transport mode packets directly. Off by default:
/// netfilter rules that match after xfrm would not see them.
static DIRECT_TRANSPORT: AtomicBool = AtomicBool::new(false);

/// Current value of `direct_transport`.
pub(crate) fn direct_transport() -> bool {
    // A value a few packets stale is fine; no ordering needed.
    DIRECT_TRANSPORT.load(Ordering::Relaxed)
}

#[repr(transparent)]
struct KernelParam(bindings::kernel_param);

// SAFETY: the kernel reads the entry and, under `kernel_param_lock()`,
// writes only through `arg`, which points at an atomic.
unsafe impl Sync for KernelParam {}

#[cfg(MODULE)]
const NAME: &core::ffi::CStr = c"direct_transport";
#[cfg(not(MODULE))]
const NAME: &core::ffi::CStr = c"xfrm_direct_tx.direct_transport";

#[link_section = "__param"]
#[used]
static DIRECT_TRANSPORT_PARAM: KernelParam = KernelParam(bindings::kernel_param {
    name: NAME.as_ptr().cast(),
    // The module's own `struct module`, which the loader fills in.
    #[cfg(MODULE)]
    mod_: (&raw const bindings::__this_module).cast_mut(),
    #[cfg(not(MODULE))]
    mod_: core::ptr::null_mut(),
    // The kernel's bool operations store a C `bool` through `arg`:
    // `AtomicBool` has the same layout.
    ops: &raw const bindings::param_ops_bool,
    perm: 0o644,
    level: -1,
    flags: 0,
    __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 {
        arg: DIRECT_TRANSPORT.as_ptr().cast(),
    },
});

/// A `.modinfo` line, as C's `MODULE_PARM_DESC()` and `module_param()` emit.
macro_rules! modinfo {
    ($name:ident, $line:literal) => {
        #[cfg(MODULE)]
        #[link_section = ".modinfo"]
        #[used]
        static $name: [u8; $line.len()] = *$line;
    };
}

modinfo!(PARMTYPE, b"parmtype=direct_transport:bool\0");
modinfo!(
    PARM,
    b"parm=direct_transport:Send forwarded transport mode packets directly (default: N)\0"
);
