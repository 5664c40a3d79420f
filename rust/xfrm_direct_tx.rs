// SPDX-License-Identifier: GPL-2.0

//! Direct transmit for xfrm packet offload.
//!
//! In packet offload mode the NIC writes the L2, outer IP and ESP headers.
//! The kernel sends forwarded tunnel mode packets straight to the offload
//! device for that reason (`xfrm_dev_direct_output()`); this module takes
//! that decision through the packet offload output hook, and adds what the
//! C path does not do:
//!
//! - a device that is down is refused, and the headroom for the link-layer
//!   header is made sure of before it is pushed;
//! - every packet it takes, declines or drops is counted per reason in
//!   `/sys/kernel/debug/xfrm_direct_tx/counters`, and drops carry a drop
//!   reason and count as `XfrmOutError`;
//! - `direct_transport=1` sends forwarded transport mode packets directly
//!   too. In transport mode the hardware keeps the frame's own L2 header
//!   (mlx5 does), so the module writes it: the destination is the
//!   neighbour of the route's next hop towards the SA peer. While that
//!   neighbour is not resolved the packet is declined, and the stock path
//!   resolves it.
//!
//! `stock_path=1` reproduces what kernels before 6.14 did: every packet
//! offload packet is taken and sent through the stock xfrm output path,
//! which resolves a neighbour for the inner destination of tunnel mode
//! packets, so that forwarding to a routed network fails (the neighbour
//! shows `FAILED`). It exists to show the bug, never to run a gateway.
//!
//! The parameters are read at load time; reload the module to change them.

use core::ffi::c_int;
use kernel::{
    bindings,
    net::{
        skbuff::{DropReason, LocalOut, Skb},
        xfrm::{self, Declined, HookRcu, Offer, OutputHook, State},
        NetDevice, Sock,
    },
    prelude::*,
};

mod counters;
mod decision;

use counters::{Counter, Counters, CountersFile};
use decision::{decide, DeclineReason, Mode, Offload, Origin, Params, Verdict};

module! {
    type: DirectTx,
    name: "xfrm_direct_tx",
    authors: ["xfrm-direct-tx developers"],
    description: "Direct transmit for xfrm packet offload",
    license: "GPL",
    params: {
        direct_transport: bool {
            default: false,
            description: "Send forwarded transport mode packets directly too",
        },
        stock_path: bool {
            default: false,
            description: "Every packet through the stock path, as before 6.14 (the bug)",
        },
    },
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
    fn accounting(self) -> (Counter, DropReason, Error) {
        match self {
            Failure::NoRoute => (Counter::DropNoRoute, DropReason::NoRoute, EHOSTUNREACH),
            Failure::NoDevice => (Counter::DropNoDevice, DropReason::DeviceNotReady, ENODEV),
            Failure::DeviceDown => (
                Counter::DropDeviceDown,
                DropReason::DeviceNotReady,
                ENETDOWN,
            ),
            Failure::Headroom => (Counter::DropHeadroom, DropReason::NoMemory, ENOMEM),
        }
    }
}

/// The link-layer header a direct packet gets.
enum L2 {
    /// Tunnel mode: room only; the hardware writes the header from the SA.
    Room,
    /// Transport mode: the frame's own header, to this address.
    To(kernel::net::dst::HwAddr),
}

/// The hook's state: parameters read at load time, and the counters.
struct Hook {
    params: Params,
    counters: Counters,
}

impl From<kernel::net::xfrm::OffloadType> for Offload {
    fn from(t: kernel::net::xfrm::OffloadType) -> Self {
        use kernel::net::xfrm::OffloadType;
        match t {
            OffloadType::Packet => Offload::Packet,
            OffloadType::Crypto => Offload::Crypto,
            OffloadType::None => Offload::None,
        }
    }
}

impl From<xfrm::Mode> for Mode {
    fn from(m: xfrm::Mode) -> Self {
        match m {
            xfrm::Mode::Tunnel => Mode::Tunnel,
            xfrm::Mode::Transport => Mode::Transport,
            xfrm::Mode::Other => Mode::Other,
        }
    }
}

impl Hook {
    /// The address of the next hop of a transport mode packet, when it is
    /// known. `None` leaves the packet to the stock path, which resolves it.
    fn transport_next_hop(skb: &Offer<'_>) -> Option<kernel::net::dst::HwAddr> {
        let route = skb.dst()?.xfrm_child()?;
        let n = route.neighbour(skb)?;
        n.is_valid().then(|| n.hw_addr())
    }

    /// Sends a packet the decision marked direct. Returns the status for
    /// `xfrm_output()`; the skb is always consumed.
    fn direct_output(
        &self,
        rcu: &HookRcu,
        sk: Option<&Sock>,
        x: &State,
        mut skb: Skb,
        l2: L2,
    ) -> c_int {
        let Ok(family) = skb.pop_xfrm_dst() else {
            return self.drop(skb, x, Failure::NoRoute);
        };
        skb.reset_ct();
        let mut skb = match skb.local_out(x.net(), sk, family) {
            LocalOut::Continue(skb) => skb,
            LocalOut::Consumed(ret) => {
                self.counters.inc(Counter::LocalOutConsumed);
                return ret;
            }
        };

        // The device is borrowed from the RCU read-side critical section
        // the hook runs in.
        let Some(dev) = x.offload_dev(rcu) else {
            return self.drop(skb, x, Failure::NoDevice);
        };
        if !dev.is_running() {
            return self.drop(skb, x, Failure::DeviceDown);
        }
        if Self::add_l2(&mut skb, dev, l2).is_err() {
            return self.drop(skb, x, Failure::Headroom);
        }
        skb.set_dev(dev);

        self.counters.inc(Counter::Direct);
        let ret = skb.queue_xmit();
        // Like net_xmit_eval(): congestion notification is not an error.
        if ret != 0 && ret != bindings::NET_XMIT_CN as c_int {
            self.counters.inc(Counter::XmitError);
        }
        ret
    }

    fn add_l2(skb: &mut Skb, dev: &NetDevice, l2: L2) -> Result {
        let len = dev.hard_header_len();
        skb.ensure_headroom(len.into())?;
        match l2 {
            L2::Room => skb.push(len.into()).map(|_| ()),
            L2::To(addr) => {
                let protocol = skb.protocol();
                dev.hard_header(skb, protocol, addr.as_bytes())
            }
        }
    }

    /// Frees a packet that cannot be sent, counting it in the module's
    /// counters and the XFRM MIB.
    fn drop(&self, skb: Skb, x: &State, failure: Failure) -> c_int {
        let (counter, reason, errno) = failure.accounting();
        self.counters.inc(counter);
        xfrm::count_out_error(x.net());
        skb.drop_reason(reason);
        errno.to_errno()
    }

    fn decline(&self, skb: Offer<'_>, reason: DeclineReason) -> Declined {
        self.counters.inc(reason.into());
        skb.decline()
    }
}

impl OutputHook for Hook {
    fn output(
        &self,
        rcu: &HookRcu,
        sk: Option<&Sock>,
        x: &State,
        skb: Offer<'_>,
    ) -> Result<c_int, Declined> {
        let origin = if skb.has_socket() {
            Origin::Local
        } else {
            Origin::Forwarded
        };
        let mode = x.mode().into();
        match decide(x.offload_type().into(), mode, origin, self.params) {
            Verdict::Decline(reason) => Err(self.decline(skb, reason)),
            Verdict::Stock => {
                self.counters.inc(Counter::Stock);
                Ok(xfrm::output_resume(sk, skb.take()))
            }
            Verdict::Direct => {
                let l2 = if mode == Mode::Transport {
                    match Self::transport_next_hop(&skb) {
                        Some(addr) => L2::To(addr),
                        None => return Err(self.decline(skb, DeclineReason::NoNeighbour)),
                    }
                } else {
                    L2::Room
                };
                Ok(self.direct_output(rcu, sk, x, skb.take(), l2))
            }
        }
    }
}

struct DirectTx {
    // Fields drop in order: the file refers to the counters, which the
    // registration owns, so it goes first.
    _counters_file: CountersFile,
    _registration: Pin<KBox<xfrm::Registration<Hook>>>,
}

impl kernel::Module for DirectTx {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let params = Params {
            direct_transport: *module_parameters::direct_transport.value_ref(),
            stock_path: *module_parameters::stock_path.value_ref(),
        };
        let hook = Hook {
            params,
            counters: Counters::new()?,
        };
        let registration =
            KBox::pin_init(xfrm::Registration::new(hook), GFP_KERNEL).inspect_err(|e| {
                if *e == EBUSY {
                    pr_err!("the xfrm packet offload output hook is taken by another module\n");
                }
            })?;
        // SAFETY: the registration, and with it the counters, is dropped
        // after the file (field order above).
        let counters_file =
            unsafe { CountersFile::new(c"xfrm_direct_tx", &registration.hook().counters) };
        pr_info!(
            "packet offload output hook registered (direct_transport={}, stock_path={})\n",
            params.direct_transport,
            params.stock_path
        );
        Ok(Self {
            _counters_file: counters_file,
            _registration: registration,
        })
    }
}
