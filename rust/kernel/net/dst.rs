// SPDX-License-Identifier: GPL-2.0

//! Routes (destination cache entries) and neighbours.
//!
//! C headers: [`include/net/dst.h`](srctree/include/net/dst.h),
//! [`include/net/neighbour.h`](srctree/include/net/neighbour.h).

use crate::{
    bindings,
    net::{skbuff::SkBuff, NetDevice},
    sync::aref::{ARef, AlwaysRefCounted},
    types::Opaque,
};
use core::ptr::NonNull;

/// The `local_out` operation of a route.
pub(crate) type LocalOutFn = unsafe extern "C" fn(
    *mut bindings::net,
    *mut bindings::sock,
    *mut bindings::sk_buff,
) -> core::ffi::c_int;

/// A route, borrowed from whoever holds it.
///
/// Wraps the kernel's [`struct dst_entry`].
///
/// # Invariants
///
/// A `&DstEntry` points to a live route.
///
/// [`struct dst_entry`]: srctree/include/net/dst.h
#[repr(transparent)]
pub struct DstEntry(Opaque<bindings::dst_entry>);

impl DstEntry {
    /// Borrows a route.
    ///
    /// # Safety
    ///
    /// `ptr` points to a route that stays alive for `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::dst_entry) -> &'a Self {
        // CAST: `Self` is `repr(transparent)` over `Opaque<dst_entry>`.
        // SAFETY: by the function's safety requirements.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The raw `struct dst_entry` pointer.
    #[inline]
    pub fn as_raw(&self) -> *mut bindings::dst_entry {
        self.0.get()
    }

    /// For an xfrm bundle, the route under its first transform
    /// (`xfrm_dst_child()`); `None` for any other route.
    ///
    /// The bundle holds a reference to it for as long as it lives.
    #[inline]
    pub fn xfrm_child(&self) -> Option<&DstEntry> {
        // SAFETY: the route is live (type invariant).
        let child = unsafe { bindings::xfrm_dst_child(self.as_raw()) };
        // SAFETY: the bundle holds its child (above).
        (!child.is_null()).then(|| unsafe { Self::from_raw(child) })
    }

    /// The neighbour `skb` goes to next on this route, created
    /// unresolved when there is none yet (`dst_neigh_lookup_skb()`).
    #[inline]
    pub fn neighbour(&self, skb: &SkBuff) -> Option<ARef<Neighbour>> {
        // SAFETY: the route and the skb are live; the lookup only reads
        // the skb's addresses.
        let n = unsafe { bindings::dst_neigh_lookup_skb(self.as_raw(), skb.as_raw()) };
        // SAFETY: the lookup returns a reference, which `ARef` takes over.
        NonNull::new(n).map(|n| unsafe { ARef::from_raw(n.cast()) })
    }

    #[inline]
    pub(crate) fn local_out_fn(&self) -> Option<LocalOutFn> {
        // SAFETY: the route is live; `ops` is set at allocation, never null
        // and never changed.
        unsafe { (*(*self.as_raw()).ops).local_out }
    }
}

/// A link-layer address, as long as its device's addresses.
#[derive(Clone, Copy)]
pub struct HwAddr {
    bytes: [u8; bindings::MAX_ADDR_LEN as usize],
    len: usize,
}

impl HwAddr {
    /// The address bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        // `len` is at most `MAX_ADDR_LEN` (`Neighbour::hw_addr()`).
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

/// A neighbour: the link-layer address of an on-link host.
///
/// Wraps the kernel's [`struct neighbour`]; held by [`ARef`].
///
/// # Invariants
///
/// A `&Neighbour` points to a live neighbour with a reference held.
///
/// [`struct neighbour`]: srctree/include/net/neighbour.h
#[repr(transparent)]
pub struct Neighbour(Opaque<bindings::neighbour>);

impl Neighbour {
    #[inline]
    fn as_raw(&self) -> *mut bindings::neighbour {
        self.0.get()
    }

    /// Whether the address is known: resolved, or being confirmed
    /// (`NUD_VALID`).
    #[inline]
    pub fn is_valid(&self) -> bool {
        // SAFETY: the neighbour is live (type invariant); the state
        // changes under the neighbour's lock, hence one volatile read, as
        // `READ_ONCE()` does.
        let state = unsafe { core::ptr::addr_of!((*self.as_raw()).nud_state).read_volatile() };
        u32::from(state) & bindings::NUD_VALID != 0
    }

    /// The device the neighbour is on.
    #[inline]
    pub fn dev(&self) -> &NetDevice {
        // SAFETY: a neighbour holds its device for its whole life.
        unsafe { NetDevice::from_raw((*self.as_raw()).dev) }
    }

    /// A consistent copy of the link-layer address
    /// (`neigh_ha_snapshot()`).
    #[inline]
    pub fn hw_addr(&self) -> HwAddr {
        let dev = self.dev();
        let mut addr = HwAddr {
            bytes: [0; bindings::MAX_ADDR_LEN as usize],
            len: usize::from(dev.addr_len()).min(bindings::MAX_ADDR_LEN as usize),
        };
        // SAFETY: the buffer has `MAX_ADDR_LEN` bytes, at least the
        // device's `addr_len` that the snapshot copies.
        unsafe {
            bindings::neigh_ha_snapshot(addr.bytes.as_mut_ptr().cast(), self.as_raw(), dev.as_raw())
        };
        addr
    }
}

// SAFETY: `neigh_hold()` and `neigh_release()` keep the neighbour alive
// while a reference is held, from any thread.
unsafe impl AlwaysRefCounted for Neighbour {
    #[inline]
    fn inc_ref(&self) {
        // SAFETY: the neighbour is live (type invariant).
        unsafe { bindings::neigh_hold(self.as_raw()) };
    }

    #[inline]
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller gives up a reference it holds.
        unsafe { bindings::neigh_release(obj.cast().as_ptr()) };
    }
}

// SAFETY: neighbours are reference counted and locked internally; a
// reference may be used and released on any thread.
unsafe impl Send for Neighbour {}
// SAFETY: as above; `&Neighbour` only reads under the neighbour's locks.
unsafe impl Sync for Neighbour {}
