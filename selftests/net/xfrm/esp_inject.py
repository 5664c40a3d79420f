#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Send again, on IFACE, the first IPv4 ESP frame of a pcap file:
unchanged (a replay) or with a new sequence number (which breaks the
ICV, since the sequence number is authenticated). Or send COUNT malformed
frames made from it, and print where each kind must be dropped, on a
receiver with GRO on:

  nic=N         by the NIC's IPsec receive path (its rx_drop, rx_bad_icv
                or rx_replay counters), after it parsed the outer header
  ip_hdr=N      by the stack's IPv4 input, as a header error (InHdrErrors)
  ip_trunc=N    by the stack's IPv4 input, as truncated (InTruncatedPkts)
  xfrm_hdr=N    by the stack's xfrm input, too short for an SPI
                (XfrmInHdrError)
  sw_esp=N      by the stack's xfrm input, as ESP of a packet offload
                state that the NIC left to the stack (XfrmInStateInvalid):
                reached through ESP GRO, which takes a packet whose outer
                length is wrong, or after reassembly, for the captured
                packet replayed as two fragments (one per pair)
  frag=N        lone fragments, which the stack holds until reassembly
                times out (ReasmTimeout)

usage: esp_inject.py PCAP IFACE replay|badicv
       esp_inject.py PCAP IFACE malformed COUNT SEED
"""
import random
import socket
import struct
import sys

ETH = 14
IP = 20
# SPI, sequence number, IV, pad length and next header, ICV
ESP_MIN = 4 + 4 + 8 + 2 + 16


def first_esp_frame(path):
    """The first IPv4 ESP frame of the pcap file at path, as a bytearray."""
    with open(path, "rb") as pcap:
        data = pcap.read()
    off = 24  # pcap global header
    while off + 16 <= len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(frame) > 34 and frame[12:14] == b"\x08\x00" and frame[23] == 50:
            return bytearray(frame)
    sys.exit("no IPv4 ESP frame in " + path)


def csum(hdr):
    """The Internet checksum of hdr."""
    hdr = bytes(hdr) + b"\0" * (len(hdr) % 2)
    total = sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# The IPv4 header fields ipv4() takes, and their values when not given
# (tot_len None: the length of the header and esp).
IPV4_FIELDS = {"tot_len": None, "ihl": 5, "version": 4, "frag_off": 0, "ident": 0,
               "options": b""}


def ipv4(frame, esp, **fields):
    """A frame with frame's Ethernet header, an IPv4 header of frame's
    addresses with these fields (IPV4_FIELDS; a valid checksum) and esp
    after it."""
    unknown = sorted(set(fields) - set(IPV4_FIELDS))
    if unknown:
        raise TypeError(f"ipv4() got unexpected keyword arguments {unknown}")
    fields = {**IPV4_FIELDS, **fields}
    ihl = fields["ihl"]
    hdr = bytearray(frame[ETH:ETH + IP]) + bytearray(fields["options"])
    tot_len = fields["tot_len"]
    if tot_len is None:
        tot_len = len(hdr) + len(esp)
    hdr[0] = fields["version"] << 4 | ihl
    struct.pack_into("!HHH", hdr, 2, tot_len, fields["ident"], fields["frag_off"])
    struct.pack_into("!H", hdr, 10, 0)
    struct.pack_into("!H", hdr, 10, csum(hdr[:max(ihl, 5) * 4]))
    return bytes(frame[:ETH]) + bytes(hdr) + bytes(esp)


def truncated(frame):
    """The frame cut at every length: a partial IP header, or fewer bytes
    than its total length says; with an SPI, ESP GRO takes it."""
    out = []
    for cut in range(ETH, len(frame)):
        if cut < ETH + IP:
            place = "ip_hdr"
        elif cut < ETH + IP + 8:
            place = "ip_trunc"
        else:
            place = "sw_esp"
        out.append((bytes(frame[:cut]), place))
    return out


def bad_lengths(frame, esp):
    """ESP shorter than SPI and sequence number, or than IV, trailer and
    ICV; IHL below 5, another version, total length below the header's."""
    out = []
    for length in range(ESP_MIN):
        out.append((ipv4(frame, esp[:length]), "xfrm_hdr" if length < 8 else "nic"))
    for ihl in range(5):
        out.append((ipv4(frame, esp, ihl=ihl), "ip_hdr"))
    for version in (0, 6, 15):
        out.append((ipv4(frame, esp, version=version), "ip_hdr"))
    for tot_len in range(IP):
        out.append((ipv4(frame, esp, tot_len=tot_len), "sw_esp"))
    return out


def with_options(frame, esp):
    """IP options (NOPs) in front of a valid ESP packet whose sequence
    number is new: the ICV fails, or, unchanged, a replay."""
    seq = struct.unpack_from("!I", esp, 4)[0]
    out = []
    for words in range(1, 11):
        body = bytearray(esp)
        if words % 2:
            struct.pack_into("!I", body, 4, (seq + 1000 + words) & 0xFFFFFFFF)
        out.append((ipv4(frame, body, ihl=5 + words, options=b"\x01" * 4 * words), "nic"))
    return out


def fragments(frame, esp):
    """Lone first (more fragments) and last (an offset) fragments; then the
    captured packet again, as two fragments: a replay the NIC does not
    see. The second frame of a pair carries its place."""
    out = []
    for i in range(20):
        frag_off = 0x2000 if i % 2 else 0x0010
        out.append((ipv4(frame, esp, frag_off=frag_off, ident=0x4000 + i), "frag"))
    for i in range(10):
        ident = 0x5000 + i
        out.append((ipv4(frame, esp[:64], frag_off=0x2000, ident=ident), None))
        out.append((ipv4(frame, esp[64:], frag_off=64 // 8, ident=ident), "sw_esp"))
    return out


def malformed(frame, count, seed):
    """COUNT frames (and the drop places they are meant for) made from the
    valid IPv4 ESP frame: every truncation, every short ESP length, bad
    header lengths, options, lone fragments, then random bytes after the
    SPI until COUNT."""
    rnd = random.Random(seed)
    assert (frame[ETH] & 0xF) == 5, "the captured frame has IP options"
    esp = bytes(frame[ETH + IP:ETH + struct.unpack_from("!H", frame, ETH + 2)[0]])
    out = truncated(frame) + bad_lengths(frame, esp) + with_options(frame, esp) + \
        fragments(frame, esp)
    # Random bytes after the SPI, random lengths: a sequence number in or
    # out of the window, never a valid ICV.
    assert len(esp) > 64, "the captured ESP packet is too short to fragment"
    while len(out) < count:
        length = rnd.randrange(ESP_MIN, 200)
        body = esp[:4] + bytes(rnd.getrandbits(8) for _ in range(length - 4))
        out.append((ipv4(frame, body), "nic"))
    return out


def main(argv):
    """Send what the command line argv asks (see the module's docstring)."""
    path, iface, kind = argv[1:4]
    frame = first_esp_frame(path)
    if kind == "malformed":
        frames = malformed(frame, int(argv[4]), int(argv[5]))
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        sock.bind((iface, 0))
        where = {}
        for data, place in frames:
            sock.send(data)
            if place:
                where[place] = where.get(place, 0) + 1
        print(" ".join(f"{k}={where.get(k, 0)}"
                       for k in ("nic", "ip_hdr", "ip_trunc", "xfrm_hdr", "sw_esp", "frag")))
        return
    if kind == "badicv":
        esp = 14 + (frame[14] & 0xF) * 4
        seq = struct.unpack_from(">I", frame, esp + 4)[0]
        struct.pack_into(">I", frame, esp + 4, (seq + 1000) & 0xFFFFFFFF)
    elif kind != "replay":
        sys.exit("unknown kind " + kind)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((iface, 0))
    sock.send(bytes(frame))


if __name__ == "__main__":
    main(sys.argv)
