// SPDX-License-Identifier: GPL-2.0

//! Host build of the module's kernel-independent parts, for `cargo test`.

#![no_std]

#[cfg(test)]
extern crate std;

// The module's items are `pub(crate)`, as in the kernel crate; outside
// the tests nothing here uses them, and some only the kernel module
// constructs (`DeclineReason::NoNeighbour`).
#[allow(dead_code)]
#[path = "../decision.rs"]
mod decision;
