"""TCP segments: built into frames and parsed from frames with Scapy.

Scapy is imported on first use only (importing its layers costs ~0.3 s), so
commands that never touch a packet, ``tcplab --help`` first, stay fast.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

# TCP header flag bits and their packetdrill letters, in packetdrill's print order.
FLAG_LETTERS = (("F", 0x01), ("S", 0x02), ("R", 0x04), ("P", 0x08), (".", 0x10), ("U", 0x20), ("E", 0x40), ("W", 0x80),
                ("A", 0x100))  # A: the AE (formerly NS) bit AccECN uses


def flags_to_text(bits: int) -> str:
    """Header flag bits as packetdrill writes them: SYN-ACK is ``S.``."""
    return "".join(letter for letter, bit in FLAG_LETTERS if bits & bit)


def text_to_flags(text: str) -> int:
    """packetdrill flag letters (``S.``, ``F.``, ``R``) to header bits."""
    letters = dict(FLAG_LETTERS)
    return sum(letters[letter] for letter in text)


@functools.cache
def _scapy():
    """The few Scapy layers the lab uses, imported once, on first need."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    return Ether, IP, IPv6, TCP


def preload_scapy() -> None:
    """Import Scapy now, outside any timed section."""
    _scapy()


@dataclass(frozen=True)
class Segment:
    """A TCP segment with the fields the lab checks."""

    src: str
    dst: str
    sport: int
    dport: int
    flags: int
    seq: int
    ack: int
    window: int
    payload: bytes = b""
    options: tuple = field(default_factory=tuple)  # Scapy's [(name, value), ...]
    tos: int = 0  # IPv4 TOS or IPv6 traffic class: its two low bits are the ECN field
    urgent: int = 0  # the urgent pointer
    ttl: int = 64  # IPv4 TTL or IPv6 hop limit
    flowlabel: int = 0  # IPv6 only

    @property
    def length(self) -> int:
        return len(self.payload)

    @property
    def flag_text(self) -> str:
        return flags_to_text(self.flags)

    @property
    def family(self) -> int:
        return 6 if ":" in self.src else 4

    def option(self, name: str):
        """The value of TCP option ``name`` (Scapy's names: MSS, Timestamp, WScale, SAckOK)."""
        for key, value in self.options:
            if key == name:
                return value
        return None


def parse_frame(data: bytes) -> Segment | None:
    """The TCP segment inside an Ethernet frame, or None for anything else."""
    Ether, _, _, _ = _scapy()
    return segment_of(Ether(data))


def segment_of(packet) -> Segment | None:
    """The TCP segment inside a dissected Scapy packet (any link type), or None."""
    _, IP, IPv6, TCP = _scapy()
    tcp = packet.getlayer(TCP)
    ip = packet.getlayer(IP) or packet.getlayer(IPv6)
    if tcp is None or ip is None:
        return None
    return Segment(
        src=ip.src,
        dst=ip.dst,
        sport=tcp.sport,
        dport=tcp.dport,
        flags=int(tcp.flags),
        seq=tcp.seq,
        ack=tcp.ack,
        window=tcp.window,
        payload=bytes(tcp.payload),
        options=tuple(tcp.options),
        tos=ip.tc if ip.version == 6 else ip.tos,
        urgent=tcp.urgptr,
        ttl=ip.hlim if ip.version == 6 else ip.ttl,
        flowlabel=ip.fl if ip.version == 6 else 0,
    )


def build_frame(src_mac: str, dst_mac: str, segment: Segment) -> bytes:
    """An Ethernet frame carrying ``segment``, checksums filled in by Scapy."""
    Ether, IP, IPv6, TCP = _scapy()
    network = (IPv6(src=segment.src, dst=segment.dst, tc=segment.tos, hlim=segment.ttl, fl=segment.flowlabel)
               if segment.family == 6 else IP(src=segment.src, dst=segment.dst, tos=segment.tos, ttl=segment.ttl))
    tcp = TCP(
        sport=segment.sport,
        dport=segment.dport,
        flags=segment.flags,
        seq=segment.seq,
        ack=segment.ack,
        window=segment.window,
        options=list(segment.options),
        urgptr=segment.urgent,
    )
    return bytes(Ether(src=src_mac, dst=dst_mac) / network / tcp / segment.payload)
