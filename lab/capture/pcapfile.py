"""Reading and writing capture files.

Scapy reads pcap and pcapng, but stops quietly at a truncated block and
logs warnings for a corrupt one; a fixture checked in CI must not pass
because half of it was never read. So the file's framing is checked first
(every block or record complete, lengths consistent), then Scapy parses it.
Captures are written by lab/live/recorder.py (live runs) and fixtures.py,
both through the section-header writer in pcapng.py.
"""

from __future__ import annotations

import json
import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import BadInput
from lab.tcp.packets import Segment, preload_scapy, segment_of
from lab.capture.pcapng import (
    OPT_COMMENT,
    PCAPNG_INBOUND,
    PCAPNG_MAGIC,
    PCAPNG_OUTBOUND,
    TIMELINE_MARK,
)

PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}


@dataclass(frozen=True)
class CapturedSegment:
    """A TCP segment read from a capture: when, what, and what the capture says of it."""

    index: int  # 1-based frame number, as Wireshark counts
    time: float
    segment: Segment
    comment: str
    outbound: bool | None  # the pcapng direction flag, when recorded
    packet: object = field(default=None, compare=False, repr=False)  # Scapy's dissection


def _walk(data: bytes, offset: int, header: int, length_at) -> str:
    """Step over length-framed blocks from ``offset``; '' when they end exactly where the file ends."""
    while offset < len(data):
        if len(data) - offset < header:
            return f"truncated at byte {offset}"
        length = length_at(offset)
        if length is None or offset + length > len(data):
            return f"truncated or corrupt block at byte {offset}"
        offset += length
    return ""


def _framing_problem(data: bytes) -> str:
    """Why the file is not a complete pcap or pcapng, or '' when its framing is sound."""
    if data[:4] == PCAPNG_MAGIC:
        endian = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}.get(data[8:12])
        if endian is None:
            return "truncated section header, or a bad byte-order magic in it"

        def block_length(offset: int) -> int | None:
            (length,) = struct.unpack_from(endian + "I", data, offset + 4)
            if length < 12 or length % 4 or offset + length > len(data):
                return None
            trailer = struct.unpack_from(endian + "I", data, offset + length - 4)[0]
            return length if trailer == length else None

        return _walk(data, 0, 12, block_length)
    endian = PCAP_MAGICS.get(data[:4])
    if endian is None:
        return "neither pcap nor pcapng (unknown magic number)"
    if len(data) < 24:
        return "truncated file header"
    return _walk(data, 24, 16, lambda offset: 16 + struct.unpack_from(endian + "I", data, offset + 8)[0])


def read_segments(path: str) -> list[CapturedSegment]:
    """Every TCP segment of the capture at ``path``; BadInput (one line) when it cannot be read."""
    from scapy.utils import rdpcap

    preload_scapy()  # the layers must be known before Scapy dissects the file
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise BadInput(f"{path}: cannot read the capture ({error.strerror})") from None
    problem = _framing_problem(data)
    if problem:
        raise BadInput(f"{path}: not a valid capture: {problem}; record it again (tcplab run --pcap, tcpdump -w)")
    scapy_log = logging.getLogger("scapy.runtime")
    level = scapy_log.level
    scapy_log.setLevel(logging.CRITICAL)
    try:
        packets = rdpcap(path)
    except Exception as error:  # Scapy raises many kinds on a damaged file
        raise BadInput(f"{path}: not a valid capture: {error}") from None
    finally:
        scapy_log.setLevel(level)
    segments = []
    for index, packet in enumerate(packets, start=1):
        try:
            segment = segment_of(packet)
        except Exception:  # a frame Scapy cannot dissect: not a TCP segment of ours
            segment = None
        if segment is None:
            continue
        comments = getattr(packet, "comments", None) or []
        direction = getattr(packet, "direction", None)
        segments.append(CapturedSegment(
            index, float(packet.time), segment, " ".join(c.decode("utf-8", "replace") for c in comments),
            None if direction not in (PCAPNG_INBOUND, PCAPNG_OUTBOUND) else direction == PCAPNG_OUTBOUND, packet))
    if not segments:
        raise BadInput(f"{path}: no TCP segment in this capture; record the connection under test")
    return segments


def section_comments(path: str) -> list[str]:
    """The first section header's comment options, in order; none for a pcap file or a damaged header."""
    data = Path(path).read_bytes()
    if data[:4] != PCAPNG_MAGIC or len(data) < 28:
        return []
    endian = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}.get(data[8:12])
    if endian is None:
        return []
    (length,) = struct.unpack_from(endian + "I", data, 4)
    offset, end, comments = 24, min(length - 4, len(data)), []
    while offset + 4 <= end:
        code, size = struct.unpack_from(endian + "HH", data, offset)
        if code == 0:
            break
        if code == OPT_COMMENT:
            comments.append(data[offset + 4:offset + 4 + size].decode("utf-8", "replace"))
        offset += 4 + size + (-size % 4)
    return comments


def read_timeline(path: str) -> dict | None:
    """The timeline a live tcplab run wrote into the section header (zero, anchors), or None.

    Read from the first section header's comment options; a capture from
    another tool has none, and its first segment then sets the clock.
    """
    for value in section_comments(path):
        if value.startswith(TIMELINE_MARK):
            try:
                timeline = json.loads(value[len(TIMELINE_MARK):])
                return {"zero": float(timeline["zero"]),
                        "anchors": {int(line): float(when) for line, when in timeline["anchors"]}}
            except (ValueError, KeyError, TypeError):
                raise BadInput(f"{path}: the tcplab timeline in its section header is damaged; "
                               "record the capture again") from None
    return None
