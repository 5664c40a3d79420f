// SPDX-License-Identifier: GPL-2.0

//! Network devices.
//!
//! C header: [`include/linux/netdevice.h`](srctree/include/linux/netdevice.h).

use crate::{bindings, net::skbuff::Skb, prelude::*, types::Opaque};

/// A network device, borrowed.
///
/// Wraps the kernel's [`struct net_device`].
///
/// # Invariants
///
/// A `&NetDevice` points to a live, registered device.
///
/// [`struct net_device`]: srctree/include/linux/netdevice.h
#[repr(transparent)]
pub struct NetDevice(Opaque<bindings::net_device>);

impl NetDevice {
    /// Borrows a device.
    ///
    /// # Safety
    ///
    /// `ptr` points to a device that stays alive for `'a`: the caller holds
    /// a reference, or runs under RCU with a pointer read under it.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::net_device) -> &'a Self {
        // CAST: `Self` is `repr(transparent)` over `Opaque<net_device>`.
        // SAFETY: by the function's safety requirements.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The raw `struct net_device` pointer.
    #[inline]
    pub fn as_raw(&self) -> *mut bindings::net_device {
        self.0.get()
    }

    /// Whether the device is up (`netif_running()`).
    #[inline]
    pub fn is_running(&self) -> bool {
        // SAFETY: the device is live (type invariant).
        unsafe { bindings::netif_running(self.as_raw()) }
    }

    /// Length of the link-layer header the device expects in front of
    /// the network header.
    #[inline]
    pub fn hard_header_len(&self) -> u16 {
        // SAFETY: the device is live; the field is set before registration
        // and read without locks everywhere.
        unsafe { (*self.as_raw()).hard_header_len }
    }

    /// Length of the device's link-layer addresses.
    #[inline]
    pub fn addr_len(&self) -> u8 {
        // SAFETY: as for `hard_header_len()`.
        unsafe { (*self.as_raw()).addr_len }
    }

    /// Writes the link-layer header for a packet of `protocol` (`ETH_P_*`,
    /// host byte order) to `daddr`, from the device's own address, in
    /// front of the skb's data (`dev_hard_header()`).
    ///
    /// Fails when the headroom is smaller than the device's header or
    /// `daddr` shorter than its addresses.
    #[inline]
    pub fn hard_header(&self, skb: &mut Skb, protocol: u16, daddr: &[u8]) -> Result {
        if skb.headroom() < u32::from(self.hard_header_len())
            || daddr.len() < usize::from(self.addr_len())
        {
            return Err(EINVAL);
        }
        let len = skb.len();
        // SAFETY: the skb is ours and has the headroom the device's
        // `header_ops->create` pushes; `daddr` holds `addr_len` bytes; a
        // null source is the device's own address.
        let ret = unsafe {
            bindings::dev_hard_header(
                skb.as_raw(),
                self.as_raw(),
                protocol,
                daddr.as_ptr().cast(),
                core::ptr::null(),
                len,
            )
        };
        if ret < 0 {
            return Err(EINVAL);
        }
        Ok(())
    }
}

// SAFETY: a device is used from any CPU; everything `NetDevice` gives
// access to is read-only or synchronised by the device itself.
unsafe impl Sync for NetDevice {}
