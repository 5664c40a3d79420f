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
    /// Leave it to the stock xfrm output path.
    Decline(DeclineReason),
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
}

/// Decides the fate of one packet.
///
/// `direct_transport` is the module parameter of the same name.
pub(crate) const fn decide(
    offload: Offload,
    mode: Mode,
    origin: Origin,
    direct_transport: bool,
) -> Verdict {
    if !matches!(offload, Offload::Packet) {
        return Verdict::Decline(DeclineReason::NotPacketOffload);
    }
    if matches!(origin, Origin::Local) {
        return Verdict::Decline(DeclineReason::Local);
    }
    match mode {
        Mode::Tunnel => Verdict::Direct,
        Mode::Transport if direct_transport => Verdict::Direct,
        Mode::Transport => Verdict::Decline(DeclineReason::Transport),
        Mode::Other => Verdict::Decline(DeclineReason::Mode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFLOADS: [Offload; 3] = [Offload::None, Offload::Crypto, Offload::Packet];
    const MODES: [Mode; 3] = [Mode::Transport, Mode::Tunnel, Mode::Other];
    const ORIGINS: [Origin; 2] = [Origin::Forwarded, Origin::Local];

    /// The rule, stated independently of `decide`'s structure.
    fn expected(offload: Offload, mode: Mode, origin: Origin, direct_transport: bool) -> Verdict {
        let direct = offload == Offload::Packet
            && origin == Origin::Forwarded
            && (mode == Mode::Tunnel || (mode == Mode::Transport && direct_transport));
        if direct {
            return Verdict::Direct;
        }
        let reason = if offload != Offload::Packet {
            DeclineReason::NotPacketOffload
        } else if origin == Origin::Local {
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
        let mut direct = 0;
        for offload in OFFLOADS {
            for mode in MODES {
                for origin in ORIGINS {
                    for param in [false, true] {
                        let got = decide(offload, mode, origin, param);
                        assert_eq!(
                            got,
                            expected(offload, mode, origin, param),
                            "{offload:?} {mode:?} {origin:?} direct_transport={param}"
                        );
                        direct += usize::from(got == Verdict::Direct);
                    }
                }
            }
        }
        // Forwarded tunnel (param off and on) + forwarded transport (on).
        assert_eq!(direct, 3);
    }

    #[test]
    fn seed_scenario_is_direct() {
        // The seed: IPSEC-GW forwards 16/8 -> 48/8 over a packet-offload
        // tunnel SA; the module must take it whatever the parameter.
        for param in [false, true] {
            assert_eq!(
                decide(Offload::Packet, Mode::Tunnel, Origin::Forwarded, param),
                Verdict::Direct
            );
        }
    }

    #[test]
    fn local_traffic_keeps_stock_path() {
        for mode in MODES {
            for param in [false, true] {
                assert_eq!(
                    decide(Offload::Packet, mode, Origin::Local, param),
                    Verdict::Decline(DeclineReason::Local)
                );
            }
        }
    }

    #[test]
    fn transport_follows_parameter() {
        assert_eq!(
            decide(Offload::Packet, Mode::Transport, Origin::Forwarded, false),
            Verdict::Decline(DeclineReason::Transport)
        );
        assert_eq!(
            decide(Offload::Packet, Mode::Transport, Origin::Forwarded, true),
            Verdict::Direct
        );
    }

    #[test]
    fn other_offloads_are_never_direct() {
        for offload in [Offload::None, Offload::Crypto] {
            for mode in MODES {
                for origin in ORIGINS {
                    assert_eq!(
                        decide(offload, mode, origin, true),
                        Verdict::Decline(DeclineReason::NotPacketOffload)
                    );
                }
            }
        }
    }
}
