"""The recorder: every frame of a run, both directions, to a pcapng file.

Each packet that matched a script line carries that line as its packet
comment, and its direction (inbound/outbound as seen from the lab's port), so
Wireshark shows which line of the script each segment answers.
"""

from __future__ import annotations

import time

from lab.wire import Frame

LINKTYPE_ETHERNET = 1
PCAPNG_INBOUND = 1
PCAPNG_OUTBOUND = 2


def write_pcapng(path: str, frames: list[Frame], comments: dict[int, str]) -> None:
    """Write ``frames`` to ``path``; ``comments`` maps id(frame) to its script line."""
    from scapy.layers.l2 import Ether
    from scapy.utils import PcapNgWriter

    wall_offset = time.time() - time.monotonic()
    with PcapNgWriter(path) as writer:
        writer.linktype = LINKTYPE_ETHERNET  # a valid file even when no frame crossed
        for frame in frames:
            packet = Ether(frame.data)
            packet.time = frame.time + wall_offset
            packet.direction = PCAPNG_OUTBOUND if frame.outgoing else PCAPNG_INBOUND
            comment = comments.get(id(frame))
            if comment:
                packet.comments = [comment.encode()]
            writer.write(packet)
