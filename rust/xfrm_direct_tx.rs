// SPDX-License-Identifier: GPL-2.0

//! Direct transmit for xfrm packet offload.
//!
//! In packet offload mode the NIC writes the L2, outer IP and ESP headers.
//! The stock output path does not know that, and for tunnel mode resolves
//! a neighbour for the *inner* destination on the offload device; when the
//! inner network is routed, resolution fails and the packet is dropped.
//! This module registers the xfrm packet offload output hook and sends
//! forwarded tunnel mode packets (and, when `direct_transport` is set,
//! forwarded transport mode packets) straight to the state's offload
//! device. Everything else it leaves to the stock path.
//!
//! Counters: `/sys/kernel/debug/xfrm_direct_tx/counters`.

use core::{ffi::c_int, ptr::NonNull};
use kernel::{bindings, c_str, error::code::*, prelude::*};

mod counters;
mod decision;
mod net;
mod param;

use counters::{Counter, Counters, CountersFile};
use decision::{decide, Origin, Verdict};
use net::{DropReason, LocalOut, SkBuff, Skb, Sock, XfrmState};

module! {
    type: DirectTx,
    name: "xfrm_direct_tx",
    author: "xfrm-direct-tx developers",
    description: "Direct transmit for xfrm packet offload tunnel mode",
    license: "GPL",
}

/// Why a packet bound for direct output was dropped.
#[derive(Clone, Copy)]
enum Failure {
    /// No route under the xfrm bundle dst.
    NoRoute,
    /// The state lost its offload device.
    NoDevice,
    /// The offload device is down.
    DeviceDown,
    /// No memory for the link-layer header's room.
    Headroom,
}

impl Failure {
    /// The module counter, the drop reason and the errno returned to the
    /// caller of `xfrm_output()`.
    fn accounting(self) -> (Counter, DropReason, u32) {
        match self {
            Failure::NoRoute => (
                Counter::DropNoRoute,
                DropReason::NoRoute,
                bindings::EHOSTUNREACH,
            ),
            Failure::NoDevice => (
                Counter::DropNoDevice,
                DropReason::DeviceNotReady,
                bindings::ENODEV,
            ),
            Failure::DeviceDown => (
                Counter::DropDeviceDown,
                DropReason::DeviceNotReady,
                bindings::ENETDOWN,
            ),
            Failure::Headroom => (
                Counter::DropHeadroom,
                DropReason::NoMemory,
                bindings::ENOMEM,
            ),
        }
    }
}

/// The registered hook and the counters it updates.
///
/// `raw` is what C holds; the callback gets back to the rest with
/// `container_of!`.
#[repr(C)]
struct Hook {
    raw: bindings::xfrm_dev_output_hook,
    counters: Counters,
}

impl Hook {
    /// Sends a packet the decision marked direct. Returns the status for
    /// `xfrm_output()`; the skb is always consumed.
    fn direct_output(&self, sk: Option<&Sock>, x: &XfrmState, skb: Skb) -> c_int {
        let mut skb = match skb.leave_bundle(x.net(), sk) {
            Ok(LocalOut::Continue(skb)) => skb,
            Ok(LocalOut::Consumed(ret)) => {
                self.counters.inc(Counter::LocalOutConsumed);
                return ret;
            }
            Err(skb) => return self.drop(skb, x, Failure::NoRoute),
        };

        // The hardware writes L2 and the outer headers from the state, so
        // there is no neighbour to resolve: queue to the offload device.
        let Some(dev) = x.offload_dev() else {
            return self.drop(skb, x, Failure::NoDevice);
        };
        if !dev.is_running() {
            return self.drop(skb, x, Failure::DeviceDown);
        }
        if skb.push_hard_header(dev).is_err() {
            return self.drop(skb, x, Failure::Headroom);
        }

        self.counters.inc(Counter::Direct);
        let ret = skb.queue_xmit();
        // Like net_xmit_eval(): congestion notification is not an error.
        if ret != 0 && ret != bindings::NET_XMIT_CN as c_int {
            self.counters.inc(Counter::XmitError);
        }
        ret
    }

    /// Frees a packet that cannot be sent, counting it in the module's
    /// counters and the XFRM MIB.
    fn drop(&self, skb: Skb, x: &XfrmState, failure: Failure) -> c_int {
        let (counter, reason, errno) = failure.accounting();
        self.counters.inc(counter);
        x.net().count_xfrm_out_error();
        skb.drop_with(reason);
        -(errno as c_int)
    }

    /// The `output` callback of `struct xfrm_dev_output_hook`.
    ///
    /// # Safety
    ///
    /// Called by `xfrm_output()` only: `hook` is the registered hook, `x`
    /// a live packet offload state, `skb` an skb the caller owns, `sk`
    /// null or a live socket, `err` writable; inside an RCU read-side
    /// critical section.
    unsafe extern "C" fn output(
        hook: *const bindings::xfrm_dev_output_hook,
        sk: *mut bindings::sock,
        x: *mut bindings::xfrm_state,
        skb: *mut bindings::sk_buff,
        err: *mut c_int,
    ) -> bool {
        // SAFETY: the only hook this module registers is the `raw` field
        // of a `Hook`, which outlives its registration.
        let hook = unsafe { &*kernel::container_of!(hook, Hook, raw) };
        // SAFETY: `xfrm_output()` passes a state held by the skb's dst.
        let x = unsafe { XfrmState::from_raw(x) };
        // SAFETY: the caller owns the skb and does not touch it during
        // the call.
        let origin = if unsafe { SkBuff::from_raw(skb) }.is_local() {
            Origin::Local
        } else {
            Origin::Forwarded
        };

        match decide(x.offload(), x.mode(), origin, param::direct_transport()) {
            Verdict::Decline(reason) => {
                hook.counters.inc(reason.into());
                false
            }
            Verdict::Direct => {
                let Some(skb) = NonNull::new(skb) else {
                    return false;
                };
                // SAFETY: returning true below tells the caller that the
                // skb is ours.
                let skb = unsafe { Skb::from_raw(skb) };
                // SAFETY: by the function's safety requirements.
                let sk = unsafe { Sock::from_raw(sk) };
                let ret = hook.direct_output(sk, x, skb);
                // SAFETY: the caller gave a writable `err`.
                unsafe { err.write(ret) };
                true
            }
        }
    }
}

/// The hook, registered with xfrm until dropped.
struct Registration {
    hook: Pin<KBox<Hook>>,
}

impl Registration {
    fn new(counters: Counters) -> Result<Self> {
        let hook = KBox::pin(
            Hook {
                raw: bindings::xfrm_dev_output_hook {
                    output: Some(Hook::output),
                },
                counters,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: the hook is pinned and stays allocated until `drop`,
        // which unregisters it first.
        let ret = unsafe { bindings::xfrm_dev_output_hook_register(&hook.raw) };
        if ret == EBUSY.to_errno() {
            pr_err!("the xfrm packet offload output hook is taken by another module\n");
        }
        kernel::error::to_result(ret)?;
        Ok(Self { hook })
    }

    fn counters(&self) -> &Counters {
        &self.hook.counters
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: registered in `new`; on return no CPU runs the hook any
        // more, so the allocation can go.
        unsafe { bindings::xfrm_dev_output_hook_unregister(&self.hook.raw) };
    }
}

struct DirectTx {
    // Fields drop in order: the file refers to the counters, which the
    // registration owns, so it goes first.
    _counters_file: CountersFile,
    _registration: Registration,
}

impl kernel::Module for DirectTx {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let registration = Registration::new(Counters::new()?)?;
        // SAFETY: the registration, and with it the counters, is dropped
        // after the file (field order above).
        let counters_file =
            unsafe { CountersFile::new(c_str!("xfrm_direct_tx"), registration.counters()) };
        pr_info!(
            "direct output for packet offload enabled (direct_transport={})\n",
            param::direct_transport()
        );
        Ok(Self {
            _counters_file: counters_file,
            _registration: registration,
        })
    }
}
