"""ICMP errors the lab injects about the kernel's own segments (packetdrill's ``< icmp ...`` lines).

``< icmp unreachable frag_needed mtu 1200 [1:1461(1460)]`` tells the kernel
that a segment it sent (its numbers, relative to its ISN) could not pass: the
ICMP message quotes that segment's IP header and the first 8 bytes of its TCP
header, as a router would. Type and code names are packetdrill's, one table
per family (RFC 792, RFC 4443).
"""

from __future__ import annotations

import struct

from lab.tcp.packets import (IPPROTO_TCP, TCP_FIXED, TCP_HEADER, Segment, checksum, ethernet_header, ip_header,
                         pseudo_header)

V4_UNREACHABLE = ("net_unreachable", "host_unreachable", "protocol_unreachable", "port_unreachable",
                  "frag_needed", "source_route_failed", "net_unknown", "host_unknown", "source_host_isolated",
                  "net_prohibited", "host_prohibited", "net_unreachable_for_tos", "host_unreachable_for_tos",
                  "packet_filtered", "precedence_violation", "precedence_cutoff")
V6_UNREACHABLE = ("net_unreachable", "no_route", "admin_prohibited", "not_neighbour", "address_unreachable",
                  "port_unreachable")
# family -> type name -> (type byte, code names in code order)
TYPES = {
    4: {"echo_reply": (0, ()), "unreachable": (3, V4_UNREACHABLE), "source_quench": (4, ()), "redirect": (5, ()),
        "echo_request": (8, ()), "time_exceeded": (11, ()), "parameter_problem": (12, ()),
        "timestamp_request": (13, ()), "timestamp_reply": (14, ()), "information_request": (15, ()),
        "information_reply": (16, ()), "address_mask_request": (17, ()), "address_mask_reply": (18, ())},
    6: {"unreachable": (1, V6_UNREACHABLE), "packet_too_big": (2, ()),
        "time_exceeded": (3, ("exceeded_hop_limit", "exceeded_frag_time")),
        "parameter_problem": (4, ("header_field", "unknown_next_header", "unknown_option")),
        "echo_request": (128, ()), "echo_reply": (129, ())},
}
QUOTED_TCP_BYTES = 8  # what an ICMP error quotes of the transport header (RFC 792)
V4_UNREACHABLE_TYPE = TYPES[4]["unreachable"][0]  # its rest of header carries the next-hop MTU (RFC 1191)
IPPROTO_ICMP, IPPROTO_ICMPV6 = 1, 58


def known(name: str, code: str | None) -> bool:
    """Whether ``name`` (and ``code``) is an ICMP type (and code) of either family."""
    return any(name in types and (code is None or code in types[name][1]) for types in TYPES.values())


def type_and_code(family: int, name: str, code: str | None) -> tuple[int, int]:
    """The type and code bytes; ValueError when the family has no such type or code."""
    if name not in TYPES[family]:
        raise ValueError(f"ICMPv{'6' if family == 6 else '4'} has no type {name!r} "
                         f"(one of: {', '.join(TYPES[family])})")
    number, codes = TYPES[family][name]
    if code is None:
        return number, 0
    if code not in codes:
        raise ValueError(f"ICMP type {name} has no code {code!r}" + (f" (one of: {', '.join(codes)})" if codes else ""))
    return number, codes.index(code)


def build_icmp_frame(src_mac: str, dst_mac: str, family: int, source: str, destination: str, kind: tuple[int, int],
                     mtu: int | None, quoted: Segment) -> bytes:
    """An Ethernet frame carrying an ICMP error from ``source`` to ``destination`` about ``quoted``.

    Built with struct at the line's moment (its numbers are the kernel's, learnt at run time), as Scapy
    builds it (IPv4 ID 1, TTL and hop limit 64; a unit test holds the two to it): building it with Scapy
    takes too long for a ``+0 < icmp`` right after a kernel segment.
    """
    length = TCP_FIXED + len(quoted.payload)  # the quoted packet's length as it was sent, header included
    tcp = TCP_HEADER.pack(quoted.sport, quoted.dport, quoted.seq, quoted.ack, 0, 0)[:QUOTED_TCP_BYTES]
    if family == 6:
        inner = ip_header(6, quoted.src, quoted.dst, IPPROTO_TCP, length)
        icmp = bytearray(struct.pack("!BBHI", kind[0], kind[1], 0, mtu or 0) + inner + tcp)
        pseudo = pseudo_header(6, source, destination, IPPROTO_ICMPV6, len(icmp))
        struct.pack_into("!H", icmp, 2, checksum(pseudo + bytes(icmp)))
        protocol = IPPROTO_ICMPV6
    else:
        inner = ip_header(4, quoted.src, quoted.dst, IPPROTO_TCP, length)
        rest = struct.pack("!HH", 0, mtu or 0) if kind[0] == V4_UNREACHABLE_TYPE else bytes(4)
        icmp = bytearray(struct.pack("!BBH", kind[0], kind[1], 0) + rest + inner + tcp)
        struct.pack_into("!H", icmp, 2, checksum(bytes(icmp)))
        protocol = IPPROTO_ICMP
    return (ethernet_header(src_mac, dst_mac, family) + ip_header(family, source, destination, protocol, len(icmp))
            + bytes(icmp))
