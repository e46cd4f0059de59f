"""The recorder: every frame of a run, both directions, to a pcapng file.

Each packet that matched a script line carries that line as its packet
comment, and its direction (inbound/outbound as seen from the lab's port), so
Wireshark shows which line of the script each segment answers. The section
header's comment records the run's timeline — when script time 0 was and when
each of the lab's actions that move the clock (syscalls, commands) really
happened — so an offline check anchors its clock exactly as the live run did.
"""

from __future__ import annotations

import json

from lab.capture.pcapng import PCAPNG_INBOUND, PCAPNG_OUTBOUND, TIMELINE_MARK, pcapng_writer
from lab.live.wire import Frame

LINKTYPE_ETHERNET = 1


def write_pcapng(path: str, frames: list[Frame], comments: dict[int, str], wall_offset: float,
                 zero: float | None = None, anchors: list[tuple[int, float]] = ()) -> None:
    """Write ``frames`` to ``path``; ``comments`` maps id(frame) to its script lines; ``zero`` and
    ``anchors`` (line, moment), on the monotonic clock, are the run's timeline. ``wall_offset`` (the
    wire's realtime_offset) turns those moments back into the realtime stamps the kernel gave."""
    from scapy.layers.l2 import Ether

    from lab import __version__

    timeline = "" if zero is None else TIMELINE_MARK + json.dumps(
        {"zero": zero + wall_offset, "anchors": [[line, when + wall_offset] for line, when in anchors]})
    with pcapng_writer(path, timeline, f"tcplab {__version__}") as writer:
        writer.linktype = LINKTYPE_ETHERNET  # a valid file even when no frame crossed
        for frame in frames:
            packet = Ether(frame.data)
            packet.time = frame.time + wall_offset
            packet.direction = PCAPNG_OUTBOUND if frame.outgoing else PCAPNG_INBOUND
            comment = comments.get(id(frame))
            if comment:
                packet.comments = [comment.encode()]
            writer.write(packet)
