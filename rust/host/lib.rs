// SPDX-License-Identifier: GPL-2.0

//! Host build of the module's kernel-independent parts, for `cargo test`.

#![no_std]

#[cfg(test)]
extern crate std;

#[path = "../decision.rs"]
pub mod decision;
