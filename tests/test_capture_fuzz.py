"""Damaged captures: one clear BadInput line (exit 2), never a traceback.

A truncated file is always refused, unless the cut falls exactly between
two blocks (then it is a shorter valid capture); corrupted bytes either
give BadInput or a verdict, never another exception.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import tcplab
from lab.capture.check import check_capture
from lab.capture.pcapfile import read_segments
from lab.course.catalogue import find
from lab.script.settings import Settings
from lab.errors import BadInput

FIXTURE = Path(__file__).resolve().parent.parent / "captures" / "close-3-segments.pcapng"
DATA = FIXTURE.read_bytes()
SCRIPT = find("close-3-segments").runnable()


def block_boundaries(data: bytes) -> set[int]:
    offsets, offset = {0}, 0
    while offset < len(data):
        offset += struct.unpack_from("<I", data, offset + 4)[0]
        offsets.add(offset)
    return offsets


BOUNDARIES = block_boundaries(DATA)
PACKET_BLOCK = 6  # pcapng's Enhanced Packet Block


def packets_before(cut: int) -> int:
    """How many packet blocks a cut at a block boundary keeps, read by hand from the block headers."""
    return sum(1 for offset in BOUNDARIES if offset < cut and struct.unpack_from("<I", DATA, offset)[0] == PACKET_BLOCK)


def at_a_boundary(cut: int) -> str:
    """A cut between blocks is a shorter valid capture: without a packet it holds no TCP segment (bad input);
    with some it fails the script, every segment of the fixture being one a script line matched."""
    return "fail" if packets_before(cut) else "bad input"


def verdict(path: Path) -> str:
    """'bad input' or 'pass'/'fail'; any other exception fails the test."""
    try:
        segments = read_segments(str(path))
    except BadInput as error:
        assert "\n" not in str(error) and str(error).startswith(str(path))
        return "bad input"
    return "pass" if check_capture(SCRIPT, segments, str(path), Settings()).passed else "fail"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(1, len(DATA) - 1))
def test_truncated_capture_is_refused(tmp_path, cut):
    path = tmp_path / "cut.pcapng"
    path.write_bytes(DATA[:cut])
    assert verdict(path) == (at_a_boundary(cut) if cut in BOUNDARIES else "bad input")


@pytest.mark.parametrize("cut", sorted(BOUNDARIES - {0, len(DATA)}))
def test_a_cut_between_blocks_is_a_shorter_capture(tmp_path, cut):
    path = tmp_path / "cut.pcapng"
    path.write_bytes(DATA[:cut])
    assert verdict(path) == at_a_boundary(cut)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, len(DATA) - 1), st.integers(0, 255)), min_size=1, max_size=6))
def test_corrupted_capture_never_crashes(tmp_path, flips):
    data = bytearray(DATA)
    for position, value in flips:
        data[position] = value
    path = tmp_path / "flipped.pcapng"
    path.write_bytes(bytes(data))
    verdict(path)


def syn_with_raw_options(options: bytes, flags: int = 0x12):
    """An Ethernet frame whose TCP header carries ``options`` as raw bytes (padded to 32 bits)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    options += b"\0" * (-len(options) % 4)
    header = bytearray(bytes(TCP(sport=8080, dport=40000, flags=flags, seq=5, ack=2)))
    header[12] = (5 + len(options) // 4) << 4
    ip = IP(src="198.18.0.1", dst="198.18.0.2", proto=6) / (bytes(header) + options)
    return Ether(bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / ip))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(options=st.binary(max_size=40))
def test_malformed_tcp_options_never_crash_verify_or_diff(tmp_path, options):
    from scapy.utils import wrpcap

    from lab.capture.diff import segment_lines

    path = tmp_path / "options.pcap"
    wrpcap(str(path), [syn_with_raw_options(b"\x02\x04\x05\xb4", 0x02), syn_with_raw_options(options)])
    assert verdict(path) == "fail"  # a SYN and a SYN-ACK: never the script's handshake and close
    lines = segment_lines(read_segments(str(path)))
    assert len(lines) == 2 and lines[0] == "client > S 0:0(0) win 8192 <mss 1460>", lines
    assert lines[1].startswith("client > S. 0:0(0) ack "), lines


def test_a_capture_without_tcp_is_refused(tmp_path):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    path = tmp_path / "udp.pcap"
    wrpcap(str(path), [Ether() / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=1, dport=2)])
    with pytest.raises(BadInput, match="no TCP segment"):
        read_segments(str(path))


@pytest.mark.parametrize("content", [DATA[:len(DATA) // 2], b"", b"not a capture\n"], ids=["truncated", "empty", "text"])
def test_verify_exits_2_with_one_line(tmp_path, content):
    path = tmp_path / "bad.pcapng"
    path.write_bytes(content)
    result = tcplab("verify", str(path), "--against", "close-3-segments")
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert str(path) in result.stderr


def test_verify_unknown_exercise_exits_2():
    result = tcplab("verify", str(FIXTURE), "--against", "no-such-exercise")
    assert result.returncode == 2 and "tcplab list" in result.stderr
