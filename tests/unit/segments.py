"""Synthetic segments for unit tests: what a capture of a drive run would hold, made by hand."""

from __future__ import annotations

from lab.capture.pcapfile import CapturedSegment
from lab.tcp.packets import Segment, text_to_flags

LAB_ADDRESS, KERNEL_ADDRESS = "198.18.0.2", "198.18.0.1"
LAB_PORT, KERNEL_PORT = 45000, 8080
LAB_ISN, KERNEL_ISN = 1000, 500000


def from_lab(flags: str, seq: int, ack: int = 0, length: int = 0, window: int = 257, options=()) -> Segment:
    """A segment of the lab, numbers relative to both ISNs."""
    return Segment(LAB_ADDRESS, KERNEL_ADDRESS, LAB_PORT, KERNEL_PORT, text_to_flags(flags), LAB_ISN + seq,
                   KERNEL_ISN + ack if "." in flags else 0, window, b"\0" * length, tuple(options))


def from_kernel(flags: str, seq: int, ack: int = 0, length: int = 0, window: int = 1000, options=()) -> Segment:
    return Segment(KERNEL_ADDRESS, LAB_ADDRESS, KERNEL_PORT, LAB_PORT, text_to_flags(flags), KERNEL_ISN + seq,
                   LAB_ISN + ack if "." in flags else 0, window, b"\0" * length, tuple(options))


def capture(*timed: tuple[float, Segment]) -> list[CapturedSegment]:
    """A capture's segments: (time, segment) pairs, framed as read from a file."""
    return [CapturedSegment(index, time, segment, "", None) for index, (time, segment) in enumerate(timed, start=1)]
