// SPDX-License-Identifier: GPL-2.0

//! IPsec transforms (xfrm): states and the packet offload output hook.
//!
//! C header: [`include/net/xfrm.h`](srctree/include/net/xfrm.h).

use crate::{
    bindings,
    error::to_result,
    net::{skbuff::SkBuff, skbuff::Skb, Net, NetDevice, Sock},
    prelude::*,
    sync::rcu,
    types::{NotThreadSafe, Opaque},
};
use core::{ffi::c_int, marker::PhantomData, ops::Deref, ptr::NonNull};

/// How a state is offloaded (`xso.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffloadType {
    /// Not offloaded: software IPsec.
    None,
    /// Crypto offload: the device encrypts, the stack builds ESP.
    Crypto,
    /// Packet offload: the device builds L2, outer IP and ESP, and
    /// encrypts.
    Packet,
}

/// A state's encapsulation mode (`XFRM_MODE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// ESP between the IP header and the payload.
    Transport,
    /// The whole packet inside a new outer IP header.
    Tunnel,
    /// BEET, IPTFS or anything newer.
    Other,
}

/// Proof that the current CPU is in an RCU read-side critical section, for
/// borrows that last as long as it does: an [`rcu::Guard`] the caller took,
/// or the [`HookRcu`] of the one the output hook runs in.
pub trait RcuReadSide: private::Sealed {}

impl RcuReadSide for rcu::Guard {}

/// The RCU read-side critical section `xfrm_output()` runs the output hook
/// in, handed to [`OutputHook::output`]: the hook need not take one of its
/// own.
///
/// # Invariants
///
/// Exists only while the output hook runs, inside the caller's RCU
/// read-side critical section.
pub struct HookRcu(NotThreadSafe);

impl RcuReadSide for HookRcu {}

mod private {
    pub trait Sealed {}
    impl Sealed for crate::sync::rcu::Guard {}
    impl Sealed for super::HookRcu {}
}

/// An xfrm state (a security association), borrowed.
///
/// Wraps the kernel's [`struct xfrm_state`].
///
/// # Invariants
///
/// A `&State` points to a live state.
///
/// [`struct xfrm_state`]: srctree/include/net/xfrm.h
#[repr(transparent)]
pub struct State(Opaque<bindings::xfrm_state>);

impl State {
    /// Borrows a state.
    ///
    /// # Safety
    ///
    /// `ptr` points to a state that stays alive for `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::xfrm_state) -> &'a Self {
        // CAST: `Self` is `repr(transparent)` over `Opaque<xfrm_state>`.
        // SAFETY: by the function's safety requirements.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The raw `struct xfrm_state` pointer.
    #[inline]
    pub fn as_raw(&self) -> *mut bindings::xfrm_state {
        self.0.get()
    }

    /// How the state is offloaded, now.
    ///
    /// `xfrm_dev_state_free()` clears the offload type and device while
    /// packets may still see the state, so each is read once, as
    /// `READ_ONCE()` does.
    #[inline]
    pub fn offload_type(&self) -> OffloadType {
        let mut xso = bindings::xfrm_dev_offload::default();
        // SAFETY: the state is live (type invariant); a volatile read of the
        // byte holding the type gives its old or new value.
        xso._bitfield_1 =
            unsafe { core::ptr::addr_of!((*self.as_raw()).xso._bitfield_1).read_volatile() };
        match u32::from(xso.type_()) {
            bindings::XFRM_DEV_OFFLOAD_PACKET => OffloadType::Packet,
            bindings::XFRM_DEV_OFFLOAD_CRYPTO => OffloadType::Crypto,
            _ => OffloadType::None,
        }
    }

    /// The state's encapsulation mode.
    #[inline]
    pub fn mode(&self) -> Mode {
        // SAFETY: the state is live; its mode is set before the state is
        // inserted and never changes.
        let mode = unsafe { (*self.as_raw()).props.mode };
        match u32::from(mode) {
            bindings::XFRM_MODE_TUNNEL => Mode::Tunnel,
            bindings::XFRM_MODE_TRANSPORT => Mode::Transport,
            _ => Mode::Other,
        }
    }

    /// The device the state is offloaded to, if it still has one.
    ///
    /// Unregistering the device clears it from the state and frees the
    /// device only after an RCU grace period, so the device is borrowed
    /// from the RCU read-side critical section `_rcu` proves.
    #[inline]
    pub fn offload_dev<'a, R: RcuReadSide>(&self, _rcu: &'a R) -> Option<&'a NetDevice> {
        // SAFETY: the state is live (type invariant); see `offload_type()`.
        let dev = unsafe { core::ptr::addr_of!((*self.as_raw()).xso.dev).read_volatile() };
        // SAFETY: a device read from the state under RCU stays alive until
        // the critical section ends.
        (!dev.is_null()).then(|| unsafe { NetDevice::from_raw(dev) })
    }

    /// The namespace the state belongs to (`xs_net()`).
    #[inline]
    pub fn net(&self) -> &Net {
        // SAFETY: a state holds its namespace for its whole life.
        unsafe { Net::from_raw(bindings::xs_net(self.as_raw())) }
    }
}

/// Counts one output error in the namespace's XFRM MIB (`XfrmOutError` in
/// `/proc/net/xfrm_stat`).
#[inline]
pub fn count_out_error(net: &Net) {
    // SAFETY: the namespace is live; the MIB is per-CPU.
    unsafe { bindings::XFRM_INC_STATS(net.as_raw(), bindings::LINUX_MIB_XFRMOUTERROR as c_int) };
}

/// Sends an skb on through the kernel's xfrm output path
/// (`xfrm_output_resume()`), as `xfrm_output()` does for packet offload
/// states when no hook takes them. Returns its status.
#[inline]
pub fn output_resume(sk: Option<&Sock>, skb: Skb) -> c_int {
    // SAFETY: ownership of the skb passes to the output path; `sk` is
    // live for the call.
    unsafe { bindings::xfrm_output_resume(Sock::as_raw_opt(sk), skb.into_raw(), 0) }
}

/// An skb offered to an [`OutputHook`]: the hook looks at it, then either
/// takes it or declines it untouched.
pub struct Offer<'a> {
    skb: NonNull<bindings::sk_buff>,
    _owner: PhantomData<&'a mut SkBuff>,
}

impl Offer<'_> {
    /// Takes the skb: the hook now owns it, and the kernel returns what
    /// the hook returns.
    #[inline]
    pub fn take(self) -> Skb {
        // SAFETY: the offer stands for ownership the caller of the hook
        // gives away when the hook returns `Ok`, which `Declined` rules
        // out once the skb is taken.
        unsafe { Skb::from_raw(self.skb) }
    }

    /// Leaves the skb to the kernel's own packet offload output.
    #[inline]
    pub fn decline(self) -> Declined {
        Declined(())
    }
}

impl Deref for Offer<'_> {
    type Target = SkBuff;

    #[inline]
    fn deref(&self) -> &SkBuff {
        // SAFETY: the offered skb is live and unchanged while offered.
        unsafe { SkBuff::from_raw(self.skb.as_ptr()) }
    }
}

/// Proof that an [`Offer`] was declined without taking its skb.
pub struct Declined(());

/// The packet offload output hook: offered every skb `xfrm_output()`
/// sends through a packet offload state, before the kernel's own handling
/// (forwarded tunnel mode straight to the device, the rest through
/// `xfrm_output_resume()`).
pub trait OutputHook: Send + Sync {
    /// Takes the skb and returns the status for `xfrm_output()`, or
    /// declines it. Runs in the RCU read-side critical section `rcu`
    /// stands for, in any context the output path runs in.
    fn output(
        &self,
        rcu: &HookRcu,
        sk: Option<&Sock>,
        x: &State,
        skb: Offer<'_>,
    ) -> Result<c_int, Declined>;
}

/// An [`OutputHook`] registered with xfrm, until dropped.
///
/// Only one hook can be registered at a time.
///
/// # Invariants
///
/// `raw` is registered with `xfrm_dev_output_hook_register()` and its
/// callback finds `hook` next to it.
#[pin_data(PinnedDrop)]
pub struct Registration<T: OutputHook> {
    hook: T,
    #[pin]
    raw: Opaque<bindings::xfrm_dev_output_hook>,
}

// SAFETY: `&Registration` gives access to the `T: Sync` hook only; the C
// side reads `raw` under RCU and writes nothing.
unsafe impl<T: OutputHook> Sync for Registration<T> {}
// SAFETY: the registration may be dropped, that is unregistered, on any
// thread; `T` is `Send`.
unsafe impl<T: OutputHook> Send for Registration<T> {}

impl<T: OutputHook> Registration<T> {
    /// Registers `hook`; fails with `EBUSY` when another hook is registered.
    pub fn new(hook: T) -> impl PinInit<Self, Error> {
        // `hook` comes first: registration publishes `raw`, and the callback
        // may run at once.
        try_pin_init!(Self {
            hook,
            raw <- Opaque::try_ffi_init(|raw: *mut bindings::xfrm_dev_output_hook| {
                // SAFETY: `raw` is valid for writes; `Self` is pinned, so it
                // stays put until `drop` unregisters it.
                unsafe {
                    raw.write(bindings::xfrm_dev_output_hook {
                        output: Some(Self::output_callback),
                    });
                    to_result(bindings::xfrm_dev_output_hook_register(raw))
                }
            }),
        })
    }

    /// The registered hook.
    #[inline]
    pub fn hook(&self) -> &T {
        &self.hook
    }

    /// # Safety
    ///
    /// Called by `xfrm_output()` only, with the registered `raw`, a live
    /// packet offload state, an skb it owns, a null or live socket and a
    /// writable `err`, in an RCU read-side critical section.
    unsafe extern "C" fn output_callback(
        raw: *const bindings::xfrm_dev_output_hook,
        sk: *mut bindings::sock,
        x: *mut bindings::xfrm_state,
        skb: *mut bindings::sk_buff,
        err: *mut c_int,
    ) -> bool {
        // SAFETY: the only hook registered with this callback is the `raw`
        // field of a live `Registration<T>` (type invariant).
        let this = unsafe { &*crate::container_of!(Opaque::cast_from(raw).cast_mut(), Self, raw) };
        // SAFETY: by the function's safety requirements.
        let (sk, x) = unsafe { (Sock::from_raw(sk), State::from_raw(x)) };
        let Some(skb) = NonNull::new(skb) else {
            return false;
        };
        let offer = Offer {
            skb,
            _owner: PhantomData,
        };
        // INVARIANT: the caller runs the hook under RCU, and `rcu` does not
        // outlive this call.
        let rcu = HookRcu(NotThreadSafe);
        match this.hook.output(&rcu, sk, x, offer) {
            Ok(ret) => {
                // SAFETY: the caller gave a writable `err`.
                unsafe { err.write(ret) };
                true
            }
            Err(Declined(())) => false,
        }
    }
}

#[pinned_drop]
impl<T: OutputHook> PinnedDrop for Registration<T> {
    #[inline]
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: registered in `new` (type invariant); on return no CPU
        // runs the callback any more.
        unsafe { bindings::xfrm_dev_output_hook_unregister(self.raw.get()) };
    }
}
