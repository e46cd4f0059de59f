"""Frames built before their moment: the lab's segments, ready to send in microseconds.

A ``+0 <`` line right after a kernel segment leaves no time to build a frame,
least of all with Scapy (which builds the options the lab's own codec does not
know). So every TCP segment a drive script injects is built before the
timeline starts (DrivePort.prepare), and at its moment only the numbers learnt
during the run are written in (ports, seq, ack, TS ecr, SACK edges) and the
TCP checksum is recomputed.
"""

from __future__ import annotations

import struct

from lab.tcp.packets import ETHERNET_LENGTH as ETHERNET
from lab.tcp.packets import IPPROTO_TCP, Segment, build_frame, checksum

OPTION_TS, OPTION_SACK, OPTION_NOP, OPTION_EOL = 8, 5, 1, 0


class PreparedFrame:
    """One segment's frame with its run-time numbers left to fill in."""

    def __init__(self, src_mac: str, dst_mac: str, segment: Segment):
        self.data = bytearray(build_frame(src_mac, dst_mac, segment))
        self.family = segment.family
        self.tcp = ETHERNET + (40 if self.family == 6 else (self.data[ETHERNET] & 0x0F) * 4)
        header_length = (self.data[self.tcp + 12] >> 4) * 4
        self.ts_ecr, self.sack = self._option_offsets(self.tcp + 20, self.tcp + header_length)
        if self.family == 6:
            addresses = bytes(self.data[ETHERNET + 8:ETHERNET + 40])
            self.pseudo = addresses + struct.pack("!I3xB", len(self.data) - self.tcp, IPPROTO_TCP)
        else:
            addresses = bytes(self.data[ETHERNET + 12:ETHERNET + 20])
            self.pseudo = addresses + struct.pack("!xBH", IPPROTO_TCP, len(self.data) - self.tcp)

    def _option_offsets(self, start: int, end: int) -> tuple[int | None, list[int]]:
        """Where the TS ecr and the SACK edges sit in the frame."""
        ts_ecr, sack, offset = None, [], start
        while offset < end:
            kind = self.data[offset]
            if kind == OPTION_EOL:
                break
            if kind == OPTION_NOP:
                offset += 1
                continue
            length = self.data[offset + 1]
            if kind == OPTION_TS:
                ts_ecr = offset + 6
            elif kind == OPTION_SACK:
                sack = list(range(offset + 2, offset + length, 4))
            offset += max(length, 2)
        return ts_ecr, sack

    def fill(self, sport: int, dport: int, seq: int, ack: int, ts_ecr: int | None = None,
             sack_edges: tuple[int, ...] = ()) -> bytes:
        """The frame with these numbers and a fresh TCP checksum."""
        data, tcp = self.data, self.tcp
        struct.pack_into("!HHII", data, tcp, sport, dport, seq, ack)
        if self.ts_ecr is not None and ts_ecr is not None:
            struct.pack_into("!I", data, self.ts_ecr, ts_ecr)
        for offset, edge in zip(self.sack, sack_edges, strict=False):
            struct.pack_into("!I", data, offset, edge)
        struct.pack_into("!H", data, tcp + 16, 0)
        struct.pack_into("!H", data, tcp + 16, checksum(self.pseudo + bytes(data[tcp:])))
        return bytes(data)

