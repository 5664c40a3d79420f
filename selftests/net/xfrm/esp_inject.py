#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Send again, on IFACE, the first IPv4 ESP frame of a pcap file:
unchanged (a replay) or with a new sequence number (which breaks the
ICV, since the sequence number is authenticated).

usage: esp_inject.py PCAP IFACE replay|badicv
"""
import socket
import struct
import sys


def first_esp_frame(path):
    data = open(path, "rb").read()
    off = 24  # pcap global header
    while off + 16 <= len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(frame) > 34 and frame[12:14] == b"\x08\x00" and frame[23] == 50:
            return bytearray(frame)
    sys.exit("no IPv4 ESP frame in " + path)


def main():
    path, iface, kind = sys.argv[1:4]
    frame = first_esp_frame(path)
    if kind == "badicv":
        esp = 14 + (frame[14] & 0xF) * 4
        seq = struct.unpack_from(">I", frame, esp + 4)[0]
        struct.pack_into(">I", frame, esp + 4, (seq + 1000) & 0xFFFFFFFF)
    elif kind != "replay":
        sys.exit("unknown kind " + kind)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    s.send(bytes(frame))


if __name__ == "__main__":
    main()
