"""ICMP errors the lab injects about the kernel's own segments (packetdrill's ``< icmp ...`` lines).

``< icmp unreachable frag_needed mtu 1200 [1:1461(1460)]`` tells the kernel
that a segment it sent (its numbers, relative to its ISN) could not pass: the
ICMP message quotes that segment's IP header and the first 8 bytes of its TCP
header, as a router would. Type and code names are packetdrill's, one table
per family (RFC 792, RFC 4443).
"""

from __future__ import annotations

from lab.packets import Segment, _scapy

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
    """An Ethernet frame carrying an ICMP error from ``source`` to ``destination`` about ``quoted``."""
    Ether, IP, IPv6, TCP = _scapy()
    tcp = bytes(TCP(sport=quoted.sport, dport=quoted.dport, seq=quoted.seq, ack=quoted.ack, flags=quoted.flags,
                    window=quoted.window))[:QUOTED_TCP_BYTES]
    length = 20 + len(quoted.payload)  # the quoted packet's length as it was sent, header included
    if family == 6:
        from scapy.layers.inet6 import ICMPv6Unknown

        inner = bytes(IPv6(src=quoted.src, dst=quoted.dst, nh=6, plen=length))
        body = (mtu or 0).to_bytes(4, "big") + inner + tcp
        icmp = ICMPv6Unknown(type=kind[0], code=kind[1], msgbody=body)
        return bytes(Ether(src=src_mac, dst=dst_mac) / IPv6(src=source, dst=destination) / icmp)
    from scapy.layers.inet import ICMP

    inner = bytes(IP(src=quoted.src, dst=quoted.dst, proto=6, len=20 + length))
    icmp = ICMP(type=kind[0], code=kind[1], nexthopmtu=mtu or 0) / (inner + tcp)
    return bytes(Ether(src=src_mac, dst=dst_mac) / IP(src=source, dst=destination) / icmp)
