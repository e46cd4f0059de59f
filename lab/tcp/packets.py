"""TCP segments: the flags, options and numbers of one segment, and the frames that carry them.

Plain TCP over IPv4/IPv6 is built and parsed with struct, fast enough for a
``+0`` answer to a kernel segment; Scapy decodes what struct does not (unknown
options, damaged headers) and is the reference a unit test holds struct to.
Scapy is imported on first use only, so commands that never touch a packet,
``tcplab --help`` first, stay fast.
"""

from __future__ import annotations

import array
import functools
import socket
import struct
import sys
from dataclasses import dataclass, field

# TCP header flag bits and their packetdrill letters, in packetdrill's print order.
FLAG_LETTERS = (("F", 0x01), ("S", 0x02), ("R", 0x04), ("P", 0x08), (".", 0x10), ("U", 0x20), ("E", 0x40), ("W", 0x80),
                ("A", 0x100))  # A: the AE (formerly NS) bit AccECN uses


def flags_to_text(bits: int) -> str:
    """Header flag bits as packetdrill writes them: SYN-ACK is ``S.``."""
    return "".join(letter for letter, bit in FLAG_LETTERS if bits & bit)


def is_syn(flags: str) -> bool:
    """A connection's first segment: SYN without ACK (``flags`` as scripts write them: "S", "S.", "F.")."""
    return "S" in flags and "." not in flags


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


ETHERTYPE_IPV4, ETHERTYPE_IPV6 = 0x0800, 0x86DD
IPPROTO_TCP = 6
ETHERNET_LENGTH = 14
IPV6_LENGTH = 40
TCP_HEADER = struct.Struct("!HHIIHH")  # ports, seq, ack, data offset and flags, window (then checksum, urgent pointer)
TCP_FIXED = 20  # bytes before the options
# TCP option kinds -> Scapy's names and how Scapy gives their values (its TCPOptions table).
_OPTION_KINDS = {2: ("MSS", "!H"), 3: ("WScale", "!B"), 4: ("SAckOK", None), 5: ("SAck", "sack"),
                 8: ("Timestamp", "!II")}
_KIND_OF = {"EOL": 0, "NOP": 1, **{name: kind for kind, (name, _) in _OPTION_KINDS.items()}}
FAST_OPTIONS = frozenset(_KIND_OF)  # option names the lab builds and decodes without Scapy


def _options(raw: bytes) -> tuple | None:
    """TCP options in Scapy's form, or None when they are not well formed (Scapy then decides)."""
    options, offset = [], 0
    while offset < len(raw):
        kind = raw[offset]
        if kind in (0, 1):
            options.append(("EOL" if kind == 0 else "NOP", None))
            offset += 1
            if kind == 0:
                break
            continue
        if offset + 1 >= len(raw) or raw[offset + 1] < 2 or offset + raw[offset + 1] > len(raw):
            return None
        value = raw[offset + 2:offset + raw[offset + 1]]
        name, layout = _OPTION_KINDS.get(kind, (None, None))
        if name is None or (layout == "sack" and len(value) % 8) or (
                layout not in (None, "sack") and len(value) != struct.calcsize(layout)):
            return None
        if layout is None:
            options.append((name, b""))
        elif layout == "sack":
            options.append((name, struct.unpack(f"!{len(value) // 4}I", value)))
        else:
            decoded = struct.unpack(layout, value)
            options.append((name, decoded[0] if len(decoded) == 1 else decoded))
        offset += raw[offset + 1]
    return tuple(options)


def parse_frame(data: bytes) -> Segment | None:
    """The TCP segment inside an Ethernet frame, or None for anything else.

    The live wire's hot path: a kernel segment must be read in microseconds
    when the lab answers it at ``+0``, faster than Scapy decodes a frame, so
    plain TCP over IPv4/IPv6 is decoded with struct; anything unusual (TCP
    options it does not know, a damaged header) is handed to Scapy. A unit
    test holds both to the same result.
    """
    ethertype = int.from_bytes(data[12:14], "big") if len(data) >= ETHERNET_LENGTH else 0
    if ethertype == ETHERTYPE_IPV4 and len(data) >= ETHERNET_LENGTH + 20 and data[ETHERNET_LENGTH + 9] == IPPROTO_TCP:
        tcp = ETHERNET_LENGTH + (data[ETHERNET_LENGTH] & 0x0F) * 4
        tos = data[ETHERNET_LENGTH + 1]
        ttl, flowlabel = data[ETHERNET_LENGTH + 8], 0
        end = ETHERNET_LENGTH + int.from_bytes(data[16:18], "big")
        src = socket.inet_ntop(socket.AF_INET, data[26:30])
        dst = socket.inet_ntop(socket.AF_INET, data[30:34])
    elif ethertype == ETHERTYPE_IPV6 and len(data) >= ETHERNET_LENGTH + IPV6_LENGTH and data[20] == IPPROTO_TCP:
        tcp = ETHERNET_LENGTH + IPV6_LENGTH
        tos = (data[ETHERNET_LENGTH] & 0x0F) << 4 | data[ETHERNET_LENGTH + 1] >> 4  # the traffic class
        ttl = data[ETHERNET_LENGTH + 7]  # the hop limit
        flowlabel = int.from_bytes(data[ETHERNET_LENGTH + 1:ETHERNET_LENGTH + 4], "big") & 0xFFFFF
        end = tcp + int.from_bytes(data[18:20], "big")
        src = socket.inet_ntop(socket.AF_INET6, data[22:38])
        dst = socket.inet_ntop(socket.AF_INET6, data[38:54])
    else:
        return None  # not TCP (the lab's segments never carry IPv6 extension headers)
    if end > len(data) or tcp + TCP_HEADER.size > end:
        return _scapy_segment(data)
    sport, dport, seq, ack, offset_flags, window = TCP_HEADER.unpack_from(data, tcp)
    header = (offset_flags >> 12) * 4
    options = _options(data[tcp + TCP_FIXED:tcp + header]) if header >= TCP_FIXED else None
    if options is None or tcp + header > end:
        return _scapy_segment(data)
    urgent = int.from_bytes(data[tcp + 18:tcp + 20], "big")
    return Segment(src, dst, sport, dport, offset_flags & 0x1FF, seq, ack, window, bytes(data[tcp + header:end]),
                   options, tos, urgent, ttl, flowlabel)


def _scapy_segment(data: bytes) -> Segment | None:
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


def _encode_options(options: tuple) -> bytes:
    """Scapy-form TCP options as header bytes, padded with EOL to a multiple of four (as Scapy pads)."""
    out = b""
    for name, value in options:
        kind = _KIND_OF[name]
        if kind in (0, 1):
            out += bytes([kind])
            continue
        layout = _OPTION_KINDS[kind][1]
        if layout is None:
            body = b""
        elif layout == "sack":
            body = struct.pack(f"!{len(value)}I", *value)
        else:
            body = struct.pack(layout, *(value if isinstance(value, tuple) else (value,)))
        out += bytes([kind, len(body) + 2]) + body
    return out + b"\0" * (-len(out) % 4)


def checksum(data: bytes) -> int:
    """RFC 1071 one's-complement sum, as a header field holds it."""
    if len(data) % 2:
        data += b"\0"
    words = array.array("H", data)
    if sys.byteorder == "little":
        words.byteswap()
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def build_frame(src_mac: str, dst_mac: str, segment: Segment) -> bytes:
    """An Ethernet frame carrying ``segment``, checksums filled in.

    Built with struct rather than Scapy: importing Scapy's layers costs
    ~0.3 s per process, a third of a short batch's wall time, and no run
    needs it before it writes a capture. The frame is byte for byte what
    Scapy builds (IPv4 ID 1, TTL/hop limit 64, options padded with EOL):
    a unit test holds the two to it. Options outside the lab's own table
    (Fast Open, MD5, experimental kinds) are left to Scapy.
    """
    if any(name not in FAST_OPTIONS for name, _ in segment.options):
        return _scapy_frame(src_mac, dst_mac, segment)
    options = _encode_options(segment.options)
    header = TCP_FIXED + len(options)
    tcp = bytearray(struct.pack("!HHIIBBHHH", segment.sport, segment.dport, segment.seq, segment.ack,
                                (header // 4) << 4 | (segment.flags >> 8 & 1), segment.flags & 0xFF,
                                segment.window, 0, segment.urgent) + options + segment.payload)
    struct.pack_into("!H", tcp, 16, checksum(pseudo_header(segment.family, segment.src, segment.dst, IPPROTO_TCP,
                                                           len(tcp)) + bytes(tcp)))
    return (ethernet_header(src_mac, dst_mac, segment.family)
            + ip_header(segment.family, segment.src, segment.dst, IPPROTO_TCP, len(tcp), segment.tos, segment.ttl,
                        segment.flowlabel) + bytes(tcp))


def ethernet_header(src_mac: str, dst_mac: str, family: int) -> bytes:
    return (bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", ""))
            + struct.pack("!H", ETHERTYPE_IPV6 if family == 6 else ETHERTYPE_IPV4))


def ip_header(family: int, src: str, dst: str, protocol: int, payload_length: int, tos: int = 0, ttl: int = 64,
              flowlabel: int = 0) -> bytes:
    """An IPv4 (ID 1, checksum filled in) or IPv6 header, as Scapy builds them by default."""
    if family == 6:
        return (struct.pack("!IHBB", 6 << 28 | tos << 20 | flowlabel, payload_length, protocol, ttl)
                + socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst))
    header = bytearray(struct.pack("!BBHHHBBH", 0x45, tos, 20 + payload_length, 1, 0, ttl, protocol, 0)
                       + socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst))
    struct.pack_into("!H", header, 10, checksum(bytes(header)))
    return bytes(header)


def pseudo_header(family: int, src: str, dst: str, protocol: int, length: int) -> bytes:
    """What a TCP or ICMPv6 checksum covers before the segment itself (RFC 793, RFC 8200)."""
    kind = socket.AF_INET6 if family == 6 else socket.AF_INET
    addresses = socket.inet_pton(kind, src) + socket.inet_pton(kind, dst)
    return addresses + (struct.pack("!I3xB", length, protocol) if family == 6 else struct.pack("!xBH", protocol, length))


def _scapy_frame(src_mac: str, dst_mac: str, segment: Segment) -> bytes:
    """``build_frame`` by Scapy, for options the lab's own encoder does not know."""
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
