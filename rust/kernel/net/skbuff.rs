// SPDX-License-Identifier: GPL-2.0

//! Socket buffers.
//!
//! C header: [`include/linux/skbuff.h`](srctree/include/linux/skbuff.h).

use crate::{
    alloc::Flags,
    bindings,
    net::{
        dst::{DstEntry, LocalOutFn},
        Net, NetDevice, Sock,
    },
    prelude::*,
    types::Opaque,
};
use core::{ffi::c_int, mem::ManuallyDrop, ops::Deref, ptr::NonNull};

/// Why an skb is freed, as drop monitors see it.
///
/// A subset of the kernel's [`enum skb_drop_reason`].
///
/// [`enum skb_drop_reason`]: srctree/include/net/dropreason-core.h
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// No reason given (`SKB_DROP_REASON_NOT_SPECIFIED`).
    NotSpecified,
    /// No route for the packet (`SKB_DROP_REASON_IP_OUTNOROUTES`).
    NoRoute,
    /// The device is gone or down (`SKB_DROP_REASON_DEV_READY`).
    DeviceNotReady,
    /// Out of memory (`SKB_DROP_REASON_NOMEM`).
    NoMemory,
}

impl DropReason {
    #[inline]
    fn as_raw(self) -> bindings::skb_drop_reason {
        match self {
            DropReason::NotSpecified => bindings::skb_drop_reason_SKB_DROP_REASON_NOT_SPECIFIED,
            DropReason::NoRoute => bindings::skb_drop_reason_SKB_DROP_REASON_IP_OUTNOROUTES,
            DropReason::DeviceNotReady => bindings::skb_drop_reason_SKB_DROP_REASON_DEV_READY,
            DropReason::NoMemory => bindings::skb_drop_reason_SKB_DROP_REASON_NOMEM,
        }
    }
}

/// A socket buffer, borrowed.
///
/// Wraps the kernel's [`struct sk_buff`]. `&SkBuff` looks at an skb that
/// someone else owns; [`Skb`] owns one and may change, send or free it.
///
/// # Invariants
///
/// A `&SkBuff` points to a live skb that nobody changes while it is
/// borrowed.
///
/// [`struct sk_buff`]: srctree/include/linux/skbuff.h
#[repr(transparent)]
pub struct SkBuff(Opaque<bindings::sk_buff>);

impl SkBuff {
    /// Borrows an skb.
    ///
    /// # Safety
    ///
    /// `ptr` points to an skb that stays alive, and that nobody changes,
    /// for `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::sk_buff) -> &'a Self {
        // CAST: `Self` is `repr(transparent)` over `Opaque<sk_buff>`.
        // SAFETY: by the function's safety requirements.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The raw `struct sk_buff` pointer.
    #[inline]
    pub fn as_raw(&self) -> *mut bindings::sk_buff {
        self.0.get()
    }

    /// Bytes of packet data (`skb->len`).
    #[inline]
    pub fn len(&self) -> u32 {
        // SAFETY: the skb is live and not changed meanwhile (type invariant).
        unsafe { (*self.as_raw()).len }
    }

    /// Whether the skb holds no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room in front of the data (`skb_headroom()`).
    #[inline]
    pub fn headroom(&self) -> u32 {
        // SAFETY: the skb is live (type invariant).
        unsafe { bindings::skb_headroom(self.as_raw()) }
    }

    /// Room after the data in the linear part (`skb_tailroom()`).
    #[inline]
    pub fn tailroom(&self) -> u32 {
        // SAFETY: the skb is live (type invariant).
        unsafe { bindings::skb_tailroom(self.as_raw()) as u32 }
    }

    /// Whether a local socket sent the packet (`skb->sk` is set), as
    /// opposed to a packet this host forwards.
    #[inline]
    pub fn has_socket(&self) -> bool {
        // SAFETY: the skb is live and not changed meanwhile (type invariant).
        !unsafe { (*self.as_raw()).sk }.is_null()
    }

    /// The packet's protocol, `ETH_P_*` in host byte order.
    #[inline]
    pub fn protocol(&self) -> u16 {
        // SAFETY: the skb is live and not changed meanwhile (type invariant);
        // `protocol` sits in the `headers` group, an anonymous union member.
        u16::from_be(unsafe {
            (*self.as_raw())
                .__bindgen_anon_4
                .__bindgen_anon_1
                .as_ref()
                .protocol
        })
    }

    /// The skb's route, if it has one (`skb_dst()`).
    ///
    /// The skb holds a reference to it, or, for a route it holds without
    /// one, the caller runs under RCU as `skb_dst()` requires: either way
    /// the route outlives the borrow of the skb.
    #[inline]
    pub fn dst(&self) -> Option<&DstEntry> {
        // SAFETY: the skb is live (type invariant).
        let dst = unsafe { bindings::skb_dst(self.as_raw()) };
        // SAFETY: a non-null route lives as long as the skb holds it (above).
        (!dst.is_null()).then(|| unsafe { DstEntry::from_raw(dst) })
    }
}

/// The `local_out` (the netfilter `LOCAL_OUT` hook) of a packet offload
/// skb's own family, which [`Skb::pop_xfrm_dst`] takes from the bundle.
///
/// The device adds the outer header, so the packet keeps the family of
/// the bundle's xfrm route; the route under it, to the peer, has the outer
/// family, which differs in a cross-family tunnel.
pub struct BundleLocalOut(Option<LocalOutFn>);

/// What [`Skb::local_out`] (the netfilter `LOCAL_OUT` hook) did with an
/// skb.
pub enum LocalOut {
    /// Accepted: the skb is back with the caller, to be sent on.
    Continue(Skb),
    /// Consumed (stolen, queued or dropped by netfilter): the value is the
    /// status to give the caller's caller.
    Consumed(c_int),
}

/// A socket buffer this code owns: it must be sent, handed on or freed.
///
/// Dropping an `Skb` frees it.
///
/// # Examples
///
/// ```
/// # use kernel::prelude::*;
/// use kernel::net::skbuff::Skb;
///
/// let mut skb = Skb::alloc(128, GFP_KERNEL)?;
/// skb.reserve(32)?;
/// skb.put(20)?.fill(0);
/// skb.push(14)?.fill(0xff);
/// assert_eq!((skb.len(), skb.headroom()), (34, 18));
/// // Dropped here: freed.
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `self.0` points to a live skb that nothing else references.
pub struct Skb(NonNull<SkBuff>);

impl Skb {
    /// Allocates an skb with `size` bytes of linear room (`alloc_skb()`).
    #[inline]
    pub fn alloc(size: u32, flags: Flags) -> Result<Self> {
        // SAFETY: plain allocation.
        let skb = unsafe { bindings::alloc_skb(size, flags.as_raw()) };
        // INVARIANT: a new skb belongs to its allocator.
        NonNull::new(skb).map(|p| Self(p.cast())).ok_or(ENOMEM)
    }

    /// Takes ownership of an skb.
    ///
    /// # Safety
    ///
    /// `ptr` points to a live skb whose ownership the caller gives away.
    #[inline]
    pub unsafe fn from_raw(ptr: NonNull<bindings::sk_buff>) -> Self {
        // INVARIANT: by the function's safety requirements.
        Self(ptr.cast())
    }

    /// Gives up ownership, returning the raw pointer.
    #[inline]
    pub fn into_raw(self) -> *mut bindings::sk_buff {
        ManuallyDrop::new(self).0.as_ptr().cast()
    }

    /// Reserves `len` bytes of headroom in an skb that holds no data yet
    /// (`skb_reserve()`).
    #[inline]
    pub fn reserve(&mut self, len: u32) -> Result {
        if !self.is_empty() || len > self.tailroom() {
            return Err(EINVAL);
        }
        // SAFETY: the skb is ours (type invariant), empty and with room.
        unsafe { bindings::skb_reserve(self.as_raw(), len as c_int) };
        Ok(())
    }

    /// Appends `len` bytes to the linear data and returns them
    /// (`skb_put()`), or fails when the tailroom is too small.
    #[inline]
    pub fn put(&mut self, len: u32) -> Result<&mut [u8]> {
        if len > self.tailroom() {
            return Err(EINVAL);
        }
        // SAFETY: the skb is ours (type invariant) and has the room.
        let data = unsafe { bindings::skb_put(self.as_raw(), len) };
        // SAFETY: `skb_put()` returned `len` bytes of the skb's buffer,
        // which `&mut self` borrows.
        Ok(unsafe { core::slice::from_raw_parts_mut(data.cast::<u8>(), len as usize) })
    }

    /// Makes sure of `len` bytes of writable headroom, reallocating the
    /// header when it is too small or shared (`skb_cow_head()`).
    #[inline]
    pub fn ensure_headroom(&mut self, len: u32) -> Result {
        // SAFETY: the skb is ours (type invariant).
        if unsafe { bindings::skb_cow_head(self.as_raw(), len) } != 0 {
            // The only failure: the header could not be reallocated.
            return Err(ENOMEM);
        }
        Ok(())
    }

    /// Prepends `len` bytes to the data and returns them (`__skb_push()`),
    /// or fails when the headroom is too small.
    #[inline]
    pub fn push(&mut self, len: u32) -> Result<&mut [u8]> {
        if len > self.headroom() {
            return Err(EINVAL);
        }
        // SAFETY: the skb is ours (type invariant) and has the headroom.
        let data = unsafe { bindings::__skb_push(self.as_raw(), len) };
        // SAFETY: `__skb_push()` returned `len` bytes of the skb's buffer,
        // which `&mut self` borrows.
        Ok(unsafe { core::slice::from_raw_parts_mut(data.cast::<u8>(), len as usize) })
    }

    /// Points the skb at the device it is to be queued to (`skb->dev`).
    ///
    /// The skb holds no reference to the device: the caller queues it to
    /// `dev` while the device is known to stay (under RCU, or with a
    /// reference of its own), as every transmit path does.
    #[inline]
    pub fn set_dev(&mut self, dev: &NetDevice) {
        // SAFETY: the skb is ours (type invariant). `dev` sits in an
        // anonymous union of `struct sk_buff` with a field of the same
        // type that only the receive path uses.
        unsafe {
            (*self.as_raw())
                .__bindgen_anon_1
                .__bindgen_anon_1
                .__bindgen_anon_1
                .dev = dev.as_raw()
        };
    }

    /// Forgets the skb's conntrack entry (`nf_reset_ct()`).
    #[inline]
    pub fn reset_ct(&mut self) {
        // SAFETY: the skb is ours (type invariant).
        unsafe { bindings::nf_reset_ct(self.as_raw()) };
    }

    /// Takes the skb off its xfrm bundle and puts it on the route under
    /// the bundle's first transform, the one the packet follows once it
    /// is transformed (`skb_dst_pop()` in `net/xfrm/`). Returns the
    /// bundle's `local_out`, for [`Skb::local_out`].
    ///
    /// Fails, leaving the skb without a route, when there is none.
    #[inline]
    pub fn pop_xfrm_dst(&mut self) -> Result<BundleLocalOut> {
        let local_out = BundleLocalOut(self.dst().and_then(|dst| dst.local_out_fn()));
        let skb = self.as_raw();
        // SAFETY: the skb is ours (type invariant). `dst_clone()` takes a
        // reference to the child (null passes through) before the skb
        // drops its bundle, which holds the child.
        let child = unsafe {
            let child = bindings::dst_clone(bindings::xfrm_dst_child(bindings::skb_dst(skb)));
            bindings::skb_dst_drop(skb);
            child
        };
        if child.is_null() {
            return Err(EHOSTUNREACH);
        }
        // SAFETY: the skb takes over the reference `dst_clone()` took.
        unsafe { bindings::skb_dst_set(skb, child) };
        Ok(local_out)
    }

    /// Runs the `local_out` of the skb's family, the netfilter `LOCAL_OUT`
    /// hook, on the route the skb is on now.
    #[inline]
    pub fn local_out(self, net: &Net, sk: Option<&Sock>, family: BundleLocalOut) -> LocalOut {
        let Some(local_out) = family.0 else {
            // IPv4 and IPv6 routes have one; others have no hook to run.
            return LocalOut::Continue(self);
        };
        let raw = self.into_raw();
        // SAFETY: `local_out` takes the skb and consumes it unless it
        // returns 1; `net` and `sk` are live for the call.
        let ret = unsafe { local_out(net.as_raw(), Sock::as_raw_opt(sk), raw) };
        if ret == 1 {
            // SAFETY: 1 means the skb was handed back to us; it is not null.
            LocalOut::Continue(unsafe { Self::from_raw(NonNull::new_unchecked(raw)) })
        } else {
            LocalOut::Consumed(ret)
        }
    }

    /// Queues the skb on its device (`dev_queue_xmit()`).
    ///
    /// Returns the status `dev_queue_xmit()` returns: `NET_XMIT_*` or an
    /// error.
    #[inline]
    pub fn queue_xmit(self) -> c_int {
        // `dev_queue_xmit()` is an inline call of `__dev_queue_xmit()`
        // with no subordinate device.
        // SAFETY: ownership passes to the device layer.
        unsafe { bindings::__dev_queue_xmit(self.into_raw(), core::ptr::null_mut()) }
    }

    /// Frees the skb, telling drop monitors why (`kfree_skb_reason()`).
    #[inline]
    pub fn drop_reason(self, reason: DropReason) {
        // SAFETY: `into_raw()` gives up the skb this `Skb` owned.
        unsafe { free(self.into_raw(), reason) };
    }
}

/// Frees `skb` (`kfree_skb_reason()`, `sk_skb_reason_drop()` without a
/// socket).
///
/// # Safety
///
/// `skb` is a live skb the caller owns and never uses again.
#[inline]
unsafe fn free(skb: *mut bindings::sk_buff, reason: DropReason) {
    // SAFETY: by the function's safety requirements.
    unsafe { bindings::sk_skb_reason_drop(core::ptr::null_mut(), skb, reason.as_raw()) };
}

impl Deref for Skb {
    type Target = SkBuff;

    #[inline]
    fn deref(&self) -> &SkBuff {
        // SAFETY: the skb is live and ours (type invariant).
        unsafe { self.0.as_ref() }
    }
}

impl Drop for Skb {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the skb is ours (type invariant) and this is its end.
        unsafe { free(self.as_raw(), DropReason::NotSpecified) };
    }
}

#[macros::kunit_tests(rust_net_skbuff)]
mod tests {
    use super::*;

    #[test]
    fn reserve_put_push() -> Result {
        let mut skb = Skb::alloc(128, GFP_KERNEL)?;
        skb.reserve(32)?;
        assert_eq!(skb.headroom(), 32);
        assert_eq!(skb.put(20)?.len(), 20);
        assert!(skb.reserve(8).is_err());
        assert_eq!(skb.push(14)?.len(), 14);
        assert_eq!((skb.len(), skb.headroom()), (34, 18));
        Ok(())
    }

    #[test]
    fn push_needs_headroom() -> Result {
        let mut skb = Skb::alloc(64, GFP_KERNEL)?;
        skb.put(10)?;
        assert!(skb.push(1).is_err());
        assert!(skb.put(skb.tailroom() + 1).is_err());
        skb.ensure_headroom(64)?;
        assert!(skb.headroom() >= 64);
        assert_eq!(skb.push(64)?.len(), 64);
        assert_eq!(skb.len(), 74);
        Ok(())
    }

    #[test]
    fn new_skb_has_no_socket_or_route() -> Result {
        let skb = Skb::alloc(32, GFP_KERNEL)?;
        assert!(!skb.has_socket());
        assert!(skb.dst().is_none());
        assert!(skb.is_empty());
        skb.drop_reason(DropReason::NotSpecified);
        Ok(())
    }
}
