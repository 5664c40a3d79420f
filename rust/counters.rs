// SPDX-License-Identifier: GPL-2.0

//! Per-CPU event counters, shown in debugfs.
//!
//! The datapath increments without atomics or shared cache lines; readers
//! add up all CPUs. A reader may see a sum a few events old, never a torn
//! one (each CPU's `u64` is written by one instruction on 64-bit).

use crate::decision::DeclineReason;
use core::ffi::CStr;
use core::{
    ffi::{c_int, c_void},
    mem::{align_of, size_of},
    ptr::NonNull,
};
use kernel::{bindings, prelude::*};

/// What the module counts.
#[derive(Clone, Copy)]
pub(crate) enum Counter {
    /// Handed to the offload device, neighbour resolution skipped.
    Direct,
    /// Left to the stock path: [`DeclineReason::NotPacketOffload`].
    DeclinedNotPacketOffload,
    /// Left to the stock path: [`DeclineReason::Local`].
    DeclinedLocal,
    /// Left to the stock path: [`DeclineReason::Transport`].
    DeclinedTransport,
    /// Left to the stock path: [`DeclineReason::Mode`].
    DeclinedMode,
    /// Left to the stock path: [`DeclineReason::NoNeighbour`].
    DeclinedNoNeighbour,
    /// Taken and sent through the stock path (`stock_path=1`).
    Stock,
    /// Taken by the `LOCAL_OUT` netfilter hook (stolen, queued or dropped).
    LocalOutConsumed,
    /// Dropped: no route under the xfrm bundle.
    DropNoRoute,
    /// Dropped: the state has no offload device any more.
    DropNoDevice,
    /// Dropped: the offload device is down.
    DropDeviceDown,
    /// Dropped: no memory to make room for the link-layer header.
    DropHeadroom,
    /// The device refused the packet (`dev_queue_xmit()` failed).
    XmitError,
}

const COUNT: usize = Counter::XmitError as usize + 1;

/// Names shown to user space, in [`Counter`] order; stable.
const NAMES: [&CStr; COUNT] = [
    c"direct",
    c"declined_not_packet_offload",
    c"declined_local",
    c"declined_transport",
    c"declined_mode",
    c"declined_no_neigh",
    c"stock",
    c"local_out_consumed",
    c"drop_no_route",
    c"drop_no_device",
    c"drop_device_down",
    c"drop_headroom",
    c"xmit_error",
];

impl From<DeclineReason> for Counter {
    fn from(reason: DeclineReason) -> Self {
        match reason {
            DeclineReason::NotPacketOffload => Counter::DeclinedNotPacketOffload,
            DeclineReason::Local => Counter::DeclinedLocal,
            DeclineReason::Transport => Counter::DeclinedTransport,
            DeclineReason::Mode => Counter::DeclinedMode,
            DeclineReason::NoNeighbour => Counter::DeclinedNoNeighbour,
        }
    }
}

/// One `[u64; COUNT]` per possible CPU.
///
/// # Invariants
///
/// `self.0` is a live per-CPU allocation of `[u64; COUNT]`, freed on drop.
pub(crate) struct Counters(NonNull<[u64; COUNT]>);

// SAFETY: each CPU writes only its own slots (`this_cpu_add`); readers only
// read. The allocation is not tied to a thread.
unsafe impl Send for Counters {}
// SAFETY: as above.
unsafe impl Sync for Counters {}

impl Counters {
    /// Allocates zeroed counters.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: plain allocation; per-CPU memory comes zeroed.
        let ptr = unsafe { bindings::__alloc_percpu(size_of::<[u64; COUNT]>(), align_of::<u64>()) };
        // INVARIANT: a non-null result is a live per-CPU allocation.
        NonNull::new(ptr.cast()).map(Self).ok_or(ENOMEM)
    }

    /// Counts one event on the current CPU.
    pub(crate) fn inc(&self, counter: Counter) {
        // SAFETY: `counter` is below `COUNT`, so the slot lies inside the
        // per-CPU allocation (type invariant).
        unsafe {
            bindings::this_cpu_add_u64(self.0.as_ptr().cast::<u64>().add(counter as usize), 1)
        };
    }

    /// The sum over all CPUs.
    fn sum(&self, index: usize) -> u64 {
        let mut total = 0u64;
        // SAFETY: reading a kernel variable that is set during boot.
        let nr_cpus = unsafe { bindings::nr_cpu_ids };
        for cpu in 0..nr_cpus {
            // SAFETY: `cpu` is below `nr_cpu_ids`.
            if !unsafe { bindings::cpu_possible(cpu) } {
                continue;
            }
            // SAFETY: the allocation is live (type invariant) and `cpu` is
            // possible, so `per_cpu_ptr()` gives that CPU's copy.
            let slots = unsafe { bindings::per_cpu_ptr(self.0.as_ptr().cast(), cpu) };
            // SAFETY: `index` is below `COUNT`; the owning CPU may be
            // writing, hence a volatile read of the whole aligned word.
            total = total.wrapping_add(unsafe { slots.cast::<u64>().add(index).read_volatile() });
        }
        total
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        // SAFETY: allocated by `__alloc_percpu()` in `new` (type invariant).
        unsafe { bindings::free_percpu(self.0.as_ptr().cast()) };
    }
}

/// The counters file's operations.
///
/// `owner` pins the module while the file is open: debugfs waits for
/// running operations when the file is removed, but `release` of a file
/// still open comes later, from the VFS, and calls into these operations.
#[repr(transparent)]
struct FileOps(bindings::file_operations);

// SAFETY: the table is never written after it is built; the kernel only
// reads it.
unsafe impl Sync for FileOps {}

static COUNTERS_FOPS: FileOps = FileOps(bindings::file_operations {
    // The kernel's Rust debugfs files (7.3) set no owner, hence this table.
    #[cfg(MODULE)]
    owner: (&raw const bindings::__this_module).cast_mut(),
    open: Some(CountersFile::open),
    read: Some(bindings::seq_read),
    llseek: Some(bindings::seq_lseek),
    release: Some(bindings::single_release),
    // SAFETY: every other field is an optional callback, a pointer or
    // flags, for which zero means "none".
    ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
});

/// A debugfs folder holding a `counters` file that lists every counter
/// as `name value` lines. Removed on drop.
///
/// # Invariants
///
/// `dir` is what `debugfs_create_dir()` returned (possibly an error
/// pointer, which debugfs accepts everywhere), and the file in it refers
/// to counters that outlive `self`.
pub(crate) struct CountersFile {
    dir: *mut bindings::dentry,
}

// SAFETY: the dentry is only handed back to debugfs, from any thread.
unsafe impl Send for CountersFile {}
// SAFETY: as above; `&CountersFile` gives no access at all.
unsafe impl Sync for CountersFile {}

impl CountersFile {
    /// Creates `/sys/kernel/debug/<name>/counters`.
    ///
    /// # Safety
    ///
    /// `counters` outlives the returned value.
    pub(crate) unsafe fn new(name: &CStr, counters: &Counters) -> Self {
        // debugfs failures are not errors: the datapath works without it.
        // SAFETY: `name` is a valid string; a null parent is the root.
        let dir =
            unsafe { bindings::debugfs_create_dir(name.as_char_ptr(), core::ptr::null_mut()) };
        // SAFETY: `counters` outlives the file, which is removed in `drop`
        // (function safety requirement); the operations are static.
        unsafe {
            bindings::debugfs_create_file_full(
                c"counters".as_char_ptr(),
                0o444,
                dir,
                core::ptr::from_ref(counters).cast_mut().cast::<c_void>(),
                core::ptr::null(),
                &COUNTERS_FOPS.0,
            )
        };
        // INVARIANT: `dir` is debugfs' answer; the file refers to `counters`.
        Self { dir }
    }

    /// `open` of the counters file.
    ///
    /// # Safety
    ///
    /// Called by debugfs only, with the file's inode and `file`.
    unsafe extern "C" fn open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: debugfs passes the inode of our file, whose private data
        // is the `Counters` given to `new`.
        unsafe { bindings::single_open(file, Some(Self::show), (*inode).i_private) }
    }

    /// `show` of the counters file's `seq_file`.
    ///
    /// # Safety
    ///
    /// Called by `seq_read()` only, on a file opened by [`Self::open`].
    unsafe extern "C" fn show(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
        // SAFETY: `single_open()` stored the `Counters` pointer, which is
        // live while the file exists (type invariant); debugfs refuses
        // reads once the file is removed.
        let counters = unsafe { &*(*m).private.cast::<Counters>() };
        for (index, name) in NAMES.iter().enumerate() {
            // SAFETY: `m` is the seq_file being shown; the format takes a
            // string and a `u64`.
            unsafe {
                bindings::seq_printf(
                    m,
                    c"%s %llu\n".as_char_ptr(),
                    name.as_char_ptr(),
                    counters.sum(index),
                )
            };
        }
        0
    }
}

impl Drop for CountersFile {
    fn drop(&mut self) {
        // SAFETY: `self.dir` came from `debugfs_create_dir()`; removal
        // waits for running operations on the file.
        unsafe { bindings::debugfs_remove(self.dir) };
    }
}
