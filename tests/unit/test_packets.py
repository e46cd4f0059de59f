"""The lab's own frame builder and decoder agree with Scapy, byte for byte.

The lab builds and decodes live frames with struct (Scapy's import costs
~0.3 s a process and its dissection 0.3-0.6 ms a frame) and fills prepared
frames' numbers in by hand; Scapy stays the reference for all three.
"""

from __future__ import annotations

import random

import pytest

from lab.live.frames import PreparedFrame
from lab.tcp.icmp import build_icmp_frame, type_and_code
from lab.tcp.packets import Segment, _scapy_segment, build_frame, parse_frame

MACS = ("02:00:00:00:00:01", "02:00:00:00:00:02")
OPTION_SETS = [
    (),
    (("MSS", 1460), ("NOP", None), ("WScale", 7)),
    (("MSS", 1000), ("SAckOK", b""), ("Timestamp", (4242, 17)), ("NOP", None), ("WScale", 8)),
    (("NOP", None), ("NOP", None), ("SAck", (100, 200, 300, 400))),
    (("NOP", None), ("NOP", None), ("Timestamp", (1, 2)), ("EOL", None)),
]


def segment(family: int, options: tuple, payload: bytes = b"", flags: int = 0x18) -> Segment:
    src, dst = ("2001:db8::2", "2001:db8::1") if family == 6 else ("198.18.0.2", "198.18.0.1")
    return Segment(src, dst, 45000, 8080, flags, 123456, 654321, 502, payload, options)


def scapy_frame(segment: Segment) -> bytes:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    network = IPv6(src=segment.src, dst=segment.dst) if segment.family == 6 else IP(src=segment.src, dst=segment.dst)
    tcp = TCP(sport=segment.sport, dport=segment.dport, flags=segment.flags, seq=segment.seq, ack=segment.ack,
              window=segment.window, options=list(segment.options))
    return bytes(Ether(src=MACS[0], dst=MACS[1]) / network / tcp / segment.payload)


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("options", OPTION_SETS)
@pytest.mark.parametrize("flags", [0x02, 0x12, 0x18, 0x11, 0x04, 0x1C2])
def test_frames_are_built_as_scapy_builds_them(family, options, flags):
    wanted = segment(family, options, b"y" * 13, flags)
    assert build_frame(*MACS, wanted) == scapy_frame(wanted)


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("options", OPTION_SETS)
def test_fast_decoder_matches_scapy(family, options):
    frame = build_frame(*MACS, segment(family, options, b"x" * 37))
    assert parse_frame(frame) == _scapy_segment(frame)
    assert parse_frame(frame).options == options


def test_fast_decoder_hands_odd_options_to_scapy():
    rng = random.Random(7)
    for _ in range(200):
        frame = bytearray(build_frame(*MACS, segment(4, (("MSS", 1460), ("NOP", None), ("WScale", 7)))))
        tcp = 14 + 20
        for offset in range(tcp + 20, tcp + 28):
            frame[offset] = rng.randrange(256)
        assert parse_frame(bytes(frame)) == _scapy_segment(bytes(frame))


def test_non_tcp_frames_are_not_segments():
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    assert parse_frame(bytes(Ether(src=MACS[0], dst=MACS[1]) / IP(src="198.18.0.2", dst="198.18.0.1") / UDP())) is None
    assert parse_frame(b"\x00" * 10) is None


@pytest.mark.parametrize("family", [4, 6])
def test_a_prepared_frame_filled_in_is_the_frame_scapy_builds(family):
    options = (("MSS", 1000), ("Timestamp", (10, 0)), ("NOP", None), ("NOP", None), ("SAck", (0, 0)))
    prepared = PreparedFrame(*MACS, Segment(*segment(family, options).__dict__.values()))
    filled = prepared.fill(45001, 8081, 111, 222, 333, (444, 555))
    wanted = segment(family, (("MSS", 1000), ("Timestamp", (10, 333)), ("NOP", None), ("NOP", None),
                              ("SAck", (444, 555))))
    wanted = Segment(wanted.src, wanted.dst, 45001, 8081, wanted.flags, 111, 222, wanted.window, b"", wanted.options)
    assert filled == build_frame(*MACS, wanted)
    wrong = Segment(wanted.src, wanted.dst, 45001, 8081, wanted.flags, 112, 222, wanted.window, b"", wanted.options)
    assert filled != build_frame(*MACS, wrong)


def scapy_icmp_frame(family: int, source: str, destination: str, kind: tuple[int, int], mtu: int | None,
                     quoted: Segment) -> bytes:
    """An ICMP error about ``quoted`` as Scapy builds it: the reference the lab's struct builder is held to."""
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.layers.inet6 import ICMPv6Unknown, IPv6
    from scapy.layers.l2 import Ether

    tcp = bytes(TCP(sport=quoted.sport, dport=quoted.dport, seq=quoted.seq, ack=quoted.ack, flags=quoted.flags,
                    window=quoted.window))[:8]
    length = 20 + len(quoted.payload)
    if family == 6:
        body = (mtu or 0).to_bytes(4, "big") + bytes(IPv6(src=quoted.src, dst=quoted.dst, nh=6, plen=length)) + tcp
        icmp = ICMPv6Unknown(type=kind[0], code=kind[1], msgbody=body)
        return bytes(Ether(src=MACS[0], dst=MACS[1]) / IPv6(src=source, dst=destination) / icmp)
    inner = bytes(IP(src=quoted.src, dst=quoted.dst, proto=6, len=20 + length))
    icmp = ICMP(type=kind[0], code=kind[1], nexthopmtu=mtu or 0) / (inner + tcp)
    return bytes(Ether(src=MACS[0], dst=MACS[1]) / IP(src=source, dst=destination) / icmp)


@pytest.mark.parametrize("family, name, code, mtu", [
    (4, "unreachable", "frag_needed", 1200), (4, "unreachable", "port_unreachable", None),
    (4, "time_exceeded", None, None), (6, "packet_too_big", None, 1280), (6, "unreachable", "no_route", None),
    (6, "time_exceeded", "exceeded_hop_limit", None)])
def test_icmp_errors_are_built_as_scapy_builds_them(family, name, code, mtu):
    kind = type_and_code(family, name, code)
    quoted = segment(family, (), b"\0" * 1460, 0x10)
    lab, kernel = quoted.dst, quoted.src  # the error goes from the lab's address to the kernel's
    assert build_icmp_frame(*MACS, family, lab, kernel, kind, mtu, quoted) == \
        scapy_icmp_frame(family, lab, kernel, kind, mtu, quoted)
