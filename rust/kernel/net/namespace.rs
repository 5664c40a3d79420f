// SPDX-License-Identifier: GPL-2.0

//! Network namespaces and sockets, as the networking abstractions pass
//! them around.
//!
//! C headers: [`include/net/net_namespace.h`](srctree/include/net/net_namespace.h),
//! [`include/net/sock.h`](srctree/include/net/sock.h).

use crate::{bindings, types::Opaque};

/// A network namespace, borrowed.
///
/// Wraps the kernel's [`struct net`].
///
/// # Invariants
///
/// A `&Net` points to a live namespace.
///
/// [`struct net`]: srctree/include/net/net_namespace.h
#[repr(transparent)]
pub struct Net(Opaque<bindings::net>);

impl Net {
    /// Borrows a namespace.
    ///
    /// # Safety
    ///
    /// `ptr` points to a namespace that stays alive for `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::net) -> &'a Self {
        // CAST: `Self` is `repr(transparent)` over `Opaque<net>`.
        // SAFETY: by the function's safety requirements.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The raw `struct net` pointer.
    #[inline]
    pub fn as_raw(&self) -> *mut bindings::net {
        self.0.get()
    }
}

/// A socket, borrowed, only ever handed back to the stack.
///
/// Wraps the kernel's [`struct sock`].
///
/// # Invariants
///
/// A `&Sock` points to a live socket.
///
/// [`struct sock`]: srctree/include/net/sock.h
#[repr(transparent)]
pub struct Sock(Opaque<bindings::sock>);

impl Sock {
    /// Borrows a socket, or gives `None` for a null pointer.
    ///
    /// # Safety
    ///
    /// `ptr` is null or points to a socket that stays alive for `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::sock) -> Option<&'a Self> {
        // CAST: `Self` is `repr(transparent)` over `Opaque<sock>`.
        // SAFETY: by the function's safety requirements.
        unsafe { ptr.cast::<Self>().as_ref() }
    }

    /// The raw pointer of an optional socket: null for `None`.
    #[inline]
    pub fn as_raw_opt(sk: Option<&Self>) -> *mut bindings::sock {
        sk.map_or(core::ptr::null_mut(), |sk| sk.0.get())
    }
}
