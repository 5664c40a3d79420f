// SPDX-License-Identifier: GPL-2.0

//! Which packet-offload packets may bypass neighbour resolution.
//!
//! Plain Rust over plain values, so the kernel module and `cargo test` on
//! the host share the exact same code.

/// How an xfrm state is offloaded (`enum xfrm_dev_offload_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offload {
    /// Software IPsec.
    None,
    /// The NIC encrypts; the stack builds the ESP packet.
    Crypto,
    /// The NIC builds L2, outer IP and ESP, and encrypts.
    Packet,
}

/// The state's encapsulation mode (`XFRM_MODE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// ESP between the IP header and the payload.
    Transport,
    /// The whole packet inside a new outer IP header.
    Tunnel,
    /// BEET, IPTFS or anything newer: never sent directly.
    Other,
}

/// Where the packet comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Routed through this host (`skb->sk == NULL`).
    Forwarded,
    /// Sent by a local socket.
    Local,
}

/// What the module does with a packet offered by the hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Queue it on the state's offload device, skipping neighbour
    /// resolution: the hardware writes the L2 and outer headers.
    Direct,
    /// Take it and send it through the stock xfrm output path, which
    /// resolves a neighbour for whatever the packet's destination is: what
    /// kernels before 6.14 did for every packet offload packet
    /// (`stock_path`, to reproduce the routed-network bug).
    Stock,
    /// Leave it to the kernel's own packet offload output.
    Decline(DeclineReason),
}

/// The module's parameters, as the decision sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Params {
    /// `direct_transport`: forwarded transport mode goes direct too.
    pub(crate) direct_transport: bool,
    /// `stock_path`: every packet goes through the stock path.
    pub(crate) stock_path: bool,
}

/// Why a packet was left to the stock path. Each has its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeclineReason {
    /// Not a packet-offload state; the hook is only offered those, so
    /// this counts a caller bug rather than traffic.
    NotPacketOffload,
    /// Locally generated: the hardware matches on the L2 header that only
    /// the stock path writes (upstream 59630e2ccd72).
    Local,
    /// Transport mode while `direct_transport` is off: netfilter rules may
    /// match on the packet after xfrm, which direct output would bypass.
    Transport,
    /// A mode the hardware path is not defined for.
    Mode,
    /// Direct transport mode, but the next hop's link-layer address is not
    /// known yet: the stock path resolves it (decided by the caller, which
    /// looks the neighbour up).
    NoNeighbour,
}

/// Decides the fate of one packet.
pub(crate) const fn decide(
    offload: Offload,
    mode: Mode,
    origin: Origin,
    params: Params,
) -> Verdict {
    if !matches!(offload, Offload::Packet) {
        return Verdict::Decline(DeclineReason::NotPacketOffload);
    }
    if params.stock_path {
        return Verdict::Stock;
    }
    if matches!(origin, Origin::Local) {
        return Verdict::Decline(DeclineReason::Local);
    }
    match mode {
        Mode::Tunnel => Verdict::Direct,
        Mode::Transport if params.direct_transport => Verdict::Direct,
        Mode::Transport => Verdict::Decline(DeclineReason::Transport),
        Mode::Other => Verdict::Decline(DeclineReason::Mode),
    }
}

// On the host with `cargo test`, in the kernel as a KUnit suite that runs
// when the module loads.
#[cfg(any(test, CONFIG_KUNIT))]
#[cfg_attr(CONFIG_KUNIT, kernel::prelude::kunit_tests(xfrm_direct_tx_decision))]
mod tests {
    use super::*;

    const OFFLOADS: [Offload; 3] = [Offload::None, Offload::Crypto, Offload::Packet];
    const MODES: [Mode; 3] = [Mode::Transport, Mode::Tunnel, Mode::Other];
    const ORIGINS: [Origin; 2] = [Origin::Forwarded, Origin::Local];

    fn params(direct_transport: bool, stock_path: bool) -> Params {
        Params {
            direct_transport,
            stock_path,
        }
    }

    /// The rule, stated independently of `decide`'s structure.
    fn expected(offload: Offload, mode: Mode, origin: Origin, p: Params) -> Verdict {
        if offload != Offload::Packet {
            return Verdict::Decline(DeclineReason::NotPacketOffload);
        }
        if p.stock_path {
            return Verdict::Stock;
        }
        let direct = origin == Origin::Forwarded
            && (mode == Mode::Tunnel || (mode == Mode::Transport && p.direct_transport));
        if direct {
            return Verdict::Direct;
        }
        let reason = if origin == Origin::Local {
            DeclineReason::Local
        } else if mode == Mode::Transport {
            DeclineReason::Transport
        } else {
            DeclineReason::Mode
        };
        Verdict::Decline(reason)
    }

    #[test]
    fn every_combination() {
        let (mut direct, mut stock, mut all) = (0, 0, 0);
        for offload in OFFLOADS {
            for mode in MODES {
                for origin in ORIGINS {
                    for p in [
                        params(false, false),
                        params(true, false),
                        params(false, true),
                        params(true, true),
                    ] {
                        let got = decide(offload, mode, origin, p);
                        assert_eq!(got, expected(offload, mode, origin, p));
                        direct += usize::from(got == Verdict::Direct);
                        stock += usize::from(got == Verdict::Stock);
                        all += 1;
                    }
                }
            }
        }
        // Forwarded tunnel (direct_transport off and on) + forwarded
        // transport (on); stock: every packet offload combination with
        // stock_path set.
        assert_eq!((direct, stock, all), (3, 3 * 2 * 2, 3 * 3 * 2 * 4));
    }

    #[test]
    fn seed_scenario_is_direct() {
        // The seed: IPSEC-GW forwards 16/8 -> 48/8 over a packet-offload
        // tunnel SA; the module must take it whatever direct_transport is.
        for direct_transport in [false, true] {
            let p = params(direct_transport, false);
            assert_eq!(
                decide(Offload::Packet, Mode::Tunnel, Origin::Forwarded, p),
                Verdict::Direct
            );
        }
    }

    #[test]
    fn stock_path_takes_every_packet_offload_packet() {
        for mode in MODES {
            for origin in ORIGINS {
                let p = params(true, true);
                assert_eq!(decide(Offload::Packet, mode, origin, p), Verdict::Stock);
                assert_eq!(
                    decide(Offload::Crypto, mode, origin, p),
                    Verdict::Decline(DeclineReason::NotPacketOffload)
                );
            }
        }
    }

    #[test]
    fn local_traffic_keeps_stock_path() {
        for mode in MODES {
            for direct_transport in [false, true] {
                let p = params(direct_transport, false);
                assert_eq!(
                    decide(Offload::Packet, mode, Origin::Local, p),
                    Verdict::Decline(DeclineReason::Local)
                );
            }
        }
    }

    #[test]
    fn transport_follows_parameter() {
        let off = params(false, false);
        let on = params(true, false);
        assert_eq!(
            decide(Offload::Packet, Mode::Transport, Origin::Forwarded, off),
            Verdict::Decline(DeclineReason::Transport)
        );
        assert_eq!(
            decide(Offload::Packet, Mode::Transport, Origin::Forwarded, on),
            Verdict::Direct
        );
    }
}
