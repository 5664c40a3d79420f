// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers over the networking objects the module touches.
//!
//! C headers: [`include/linux/skbuff.h`](srctree/include/linux/skbuff.h),
//! [`include/linux/netdevice.h`](srctree/include/linux/netdevice.h),
//! [`include/net/dst.h`](srctree/include/net/dst.h),
//! [`include/net/xfrm.h`](srctree/include/net/xfrm.h).

use crate::decision::{Mode, Offload};
use core::{ffi::c_int, mem::ManuallyDrop, ptr::NonNull};
use kernel::{bindings, error::code::*, prelude::*, types::Opaque};

/// A network namespace.
///
/// Wraps the kernel's `struct net`.
#[repr(transparent)]
pub(crate) struct Net(Opaque<bindings::net>);

impl Net {
    fn as_ptr(&self) -> *mut bindings::net {
        self.0.get()
    }

    /// Counts an output error in the namespace's XFRM MIB
    /// (`XfrmOutError` in `/proc/net/xfrm_stat`).
    pub(crate) fn count_xfrm_out_error(&self) {
        // SAFETY: `self` is a live namespace; the counters are per-CPU.
        unsafe {
            bindings::XFRM_INC_STATS(self.as_ptr(), bindings::LINUX_MIB_XFRMOUTERROR as c_int)
        };
    }
}

/// A socket, only ever passed back to the stack.
///
/// Wraps the kernel's `struct sock`.
#[repr(transparent)]
pub(crate) struct Sock(Opaque<bindings::sock>);

impl Sock {
    /// Borrows a socket the caller holds, or `None` for a null pointer.
    ///
    /// # Safety
    ///
    /// `ptr` is null or points to a socket that stays alive for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::sock) -> Option<&'a Self> {
        // CAST: `Self` is `repr(transparent)` over `Opaque<sock>`, itself
        // `repr(transparent)` over `sock`.
        // SAFETY: by the function's safety requirements.
        unsafe { ptr.cast::<Self>().as_ref() }
    }

    fn as_ptr(sk: Option<&Self>) -> *mut bindings::sock {
        sk.map_or(core::ptr::null_mut(), |sk| sk.0.get())
    }
}

/// A network device.
///
/// Wraps the kernel's `struct net_device`.
#[repr(transparent)]
pub(crate) struct NetDevice(Opaque<bindings::net_device>);

impl NetDevice {
    fn as_ptr(&self) -> *mut bindings::net_device {
        self.0.get()
    }

    /// Whether the device is up (`netif_running()`).
    pub(crate) fn is_running(&self) -> bool {
        // SAFETY: `self` is a live device.
        unsafe { bindings::netif_running(self.as_ptr()) }
    }

    /// Length of the link-layer header the device expects in front of
    /// the network header.
    pub(crate) fn hard_header_len(&self) -> u16 {
        // SAFETY: `self` is a live device; the field is set at
        // registration and only read here.
        unsafe { (*self.as_ptr()).hard_header_len }
    }
}

/// An xfrm state (a security association).
///
/// Wraps the kernel's `struct xfrm_state`.
#[repr(transparent)]
pub(crate) struct XfrmState(Opaque<bindings::xfrm_state>);

impl XfrmState {
    /// Borrows a state.
    ///
    /// # Safety
    ///
    /// `ptr` points to a state that stays alive for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::xfrm_state) -> &'a Self {
        // CAST: `Self` is `repr(transparent)` over `Opaque<xfrm_state>`.
        // SAFETY: by the function's safety requirements.
        unsafe { &*ptr.cast::<Self>() }
    }

    fn as_ptr(&self) -> *mut bindings::xfrm_state {
        self.0.get()
    }

    /// How the state is offloaded.
    pub(crate) fn offload(&self) -> Offload {
        // SAFETY: `self` is a live state; the offload type is set when the
        // state is added and does not change afterwards.
        let kind = unsafe { (*self.as_ptr()).xso.type_() };
        match u32::from(kind) {
            bindings::XFRM_DEV_OFFLOAD_PACKET => Offload::Packet,
            bindings::XFRM_DEV_OFFLOAD_CRYPTO => Offload::Crypto,
            _ => Offload::None,
        }
    }

    /// The state's encapsulation mode.
    pub(crate) fn mode(&self) -> Mode {
        // SAFETY: `self` is a live state; its mode never changes.
        let mode = unsafe { (*self.as_ptr()).props.mode };
        match u32::from(mode) {
            bindings::XFRM_MODE_TUNNEL => Mode::Tunnel,
            bindings::XFRM_MODE_TRANSPORT => Mode::Transport,
            _ => Mode::Other,
        }
    }

    /// The device the state is offloaded to, if it still has one.
    ///
    /// The device is freed only after an RCU grace period, and the hook
    /// runs inside an RCU read-side critical section, so the reference
    /// is good for the hook call even if the state loses its device
    /// concurrently.
    pub(crate) fn offload_dev(&self) -> Option<&NetDevice> {
        // SAFETY: `self` is a live state. The pointer may be cleared
        // concurrently (device unregistration), hence a single volatile
        // read, as `READ_ONCE()` would do.
        let dev = unsafe { core::ptr::addr_of!((*self.as_ptr()).xso.dev).read_volatile() };
        // CAST: `NetDevice` is `repr(transparent)` over `net_device`.
        // SAFETY: non-null devices stay alive for the RCU read-side
        // critical section the caller is in (see above).
        unsafe { dev.cast::<NetDevice>().as_ref() }
    }

    /// The namespace the state belongs to.
    pub(crate) fn net(&self) -> &Net {
        // SAFETY: a state holds its namespace for its whole life.
        unsafe { &*bindings::xs_net(self.as_ptr()).cast::<Net>() }
    }
}

/// Why the module freed an skb, for drop monitors (`enum skb_drop_reason`).
#[derive(Clone, Copy)]
pub(crate) enum DropReason {
    /// The bundle had no route under the xfrm dst.
    NoRoute,
    /// The offload device is gone or down.
    DeviceNotReady,
    /// No memory for the link-layer header.
    NoMemory,
}

impl DropReason {
    fn raw(self) -> bindings::skb_drop_reason {
        match self {
            DropReason::NoRoute => bindings::skb_drop_reason_SKB_DROP_REASON_IP_OUTNOROUTES,
            DropReason::DeviceNotReady => bindings::skb_drop_reason_SKB_DROP_REASON_DEV_READY,
            DropReason::NoMemory => bindings::skb_drop_reason_SKB_DROP_REASON_NOMEM,
        }
    }
}

/// A socket buffer.
///
/// Wraps the kernel's `struct sk_buff`. Borrowed as `&SkBuff` to look at
/// it; owned through [`Skb`] to change, send or free it.
#[repr(transparent)]
pub(crate) struct SkBuff(Opaque<bindings::sk_buff>);

impl SkBuff {
    /// Borrows an skb.
    ///
    /// # Safety
    ///
    /// `ptr` points to an skb that stays alive, and is not changed by
    /// anyone else, for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::sk_buff) -> &'a Self {
        // CAST: `Self` is `repr(transparent)` over `Opaque<sk_buff>`.
        // SAFETY: by the function's safety requirements.
        unsafe { &*ptr.cast::<Self>() }
    }

    fn as_ptr(&self) -> *mut bindings::sk_buff {
        self.0.get()
    }

    /// Whether a local socket sent the packet (`skb->sk` is set).
    pub(crate) fn is_local(&self) -> bool {
        // SAFETY: `self` is a live skb that nobody else changes.
        !unsafe { (*self.as_ptr()).sk }.is_null()
    }
}

/// What the dst's `local_out` did with an skb.
pub(crate) enum LocalOut {
    /// Accepted: the skb is back with the caller, to be sent on.
    Continue(Skb),
    /// Consumed (stolen, queued or dropped by netfilter): the value is the
    /// status to return to the caller.
    Consumed(c_int),
}

/// An skb this code owns: it must be sent, handed on or freed.
///
/// Dropping an `Skb` frees it.
///
/// # Invariants
///
/// `self.0` points to a live skb that no one else references.
pub(crate) struct Skb(NonNull<SkBuff>);

impl Skb {
    /// Takes ownership of an skb.
    ///
    /// # Safety
    ///
    /// `ptr` points to a live skb whose ownership the caller gives away.
    pub(crate) unsafe fn from_raw(ptr: NonNull<bindings::sk_buff>) -> Self {
        // INVARIANT: by the function's safety requirements.
        Self(ptr.cast())
    }

    /// Gives up ownership, returning the raw pointer.
    fn into_raw(self) -> *mut bindings::sk_buff {
        ManuallyDrop::new(self).0.as_ptr().cast()
    }

    fn as_ptr(&self) -> *mut bindings::sk_buff {
        self.0.as_ptr().cast()
    }

    /// Takes the skb off its xfrm bundle dst and puts it on the route under
    /// it, the one the packet follows once the hardware has encapsulated
    /// it; forgets its conntrack entry (the packet leaves the stack here)
    /// and runs the route's `local_out` (the netfilter `LOCAL_OUT` hook).
    ///
    /// Gives the skb back, without a dst, when the bundle has no route
    /// under it.
    pub(crate) fn leave_bundle(self, net: &Net, sk: Option<&Sock>) -> Result<LocalOut, Skb> {
        let skb = self.as_ptr();
        // SAFETY: `self` owns the skb (type invariant), whose dst is an
        // xfrm bundle entry; `dst_clone()` takes a reference to its child
        // (or passes null through) before the skb drops the bundle.
        let route = unsafe {
            let route = bindings::dst_clone(bindings::xfrm_dst_child(bindings::skb_dst(skb)));
            bindings::skb_dst_drop(skb);
            route
        };
        if route.is_null() {
            return Err(self);
        }
        // SAFETY: the skb takes over the reference `dst_clone()` took.
        unsafe {
            bindings::skb_dst_set(skb, route);
            bindings::nf_reset_ct(skb);
        }
        // SAFETY: `route` is the skb's live dst, whose `ops` is set at
        // allocation and never null.
        let Some(local_out) = (unsafe { (*(*route).ops).local_out }) else {
            // IPv4 and IPv6 both have one; anything else is not ours.
            return Ok(LocalOut::Continue(self));
        };
        let raw = self.into_raw();
        // SAFETY: `local_out` takes the skb and consumes it unless it
        // returns 1; `net` and `sk` are live for the call.
        let ret = unsafe { local_out(net.as_ptr(), Sock::as_ptr(sk), raw) };
        Ok(if ret == 1 {
            // SAFETY: 1 means the skb was handed back to us.
            LocalOut::Continue(unsafe { Self::from_raw(NonNull::new_unchecked(raw)) })
        } else {
            LocalOut::Consumed(ret)
        })
    }

    /// Points the skb at `dev` and reserves room for its link-layer
    /// header, which the hardware writes. Fails when the headroom cannot
    /// be made.
    pub(crate) fn push_hard_header(&mut self, dev: &NetDevice) -> Result {
        let len = dev.hard_header_len();
        // SAFETY: `self` owns the skb.
        if unsafe { bindings::skb_cow_head(self.as_ptr(), len.into()) } != 0 {
            return Err(ENOMEM);
        }
        // SAFETY: `self` owns the skb; the headroom was just ensured.
        // `dev` is the device the skb is queued to next, which holds no
        // reference of its own (as in every transmit path).
        unsafe {
            // `skb->dev`, inside the anonymous unions of `struct sk_buff`.
            (*self.as_ptr())
                .__bindgen_anon_1
                .__bindgen_anon_1
                .__bindgen_anon_1
                .dev = dev.as_ptr();
            bindings::__skb_push(self.as_ptr(), len.into());
        }
        Ok(())
    }

    /// Queues the skb on its device: `dev_queue_xmit()`, which is an
    /// inline call of `__dev_queue_xmit()` with no subordinate device.
    pub(crate) fn queue_xmit(self) -> c_int {
        // SAFETY: ownership passes to the device layer.
        unsafe { bindings::__dev_queue_xmit(self.into_raw(), core::ptr::null_mut()) }
    }

    /// Frees the skb, telling drop monitors why.
    pub(crate) fn drop_with(self, reason: DropReason) {
        // SAFETY: `into_raw()` gives up the skb this `Skb` owned.
        unsafe { Self::free(self.into_raw(), reason.raw()) };
    }

    /// `kfree_skb_reason()`, which is `sk_skb_reason_drop()` with no socket.
    ///
    /// # Safety
    ///
    /// `skb` is a live skb the caller owns and never uses again.
    unsafe fn free(skb: *mut bindings::sk_buff, reason: bindings::skb_drop_reason) {
        // SAFETY: by the function's safety requirements.
        unsafe { bindings::sk_skb_reason_drop(core::ptr::null_mut(), skb, reason) };
    }
}

impl core::ops::Deref for Skb {
    type Target = SkBuff;

    fn deref(&self) -> &SkBuff {
        // SAFETY: `self.0` is live and ours (type invariant).
        unsafe { self.0.as_ref() }
    }
}

impl Drop for Skb {
    fn drop(&mut self) {
        // SAFETY: the skb is ours (type invariant) and this is its end.
        unsafe {
            Self::free(
                self.as_ptr(),
                bindings::skb_drop_reason_SKB_DROP_REASON_NOT_SPECIFIED,
            )
        };
    }
}
