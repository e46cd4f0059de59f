"""``link lose`` / ``link delay`` lines in a run: rules on the link while it runs, then the kernel's word on them.

A run holds one :class:`RunLosses`. ``install`` turns a line into an
nf_tables rule in the namespace of the endpoint that would receive the
segment (netns/loss.py). ``settle``, once the run is over, reads what the
rules did: the packets they dropped (nfnetlink_log copies, tagged with the
line) and the ones they held back (from the NFQUEUE, with how long), and
finds each among the captured frames. A dropped frame's packet comment says
so and names the line, and its ladder step is an arrow that does not
arrive; a held frame's comment and label say how long the link held it; a
line that matched nothing gets a note. Nothing here decides what the link
did to a segment: the kernel reports it.
"""

from __future__ import annotations

import os

from lab.tcp.packets import text_to_flags
from lab.capture.pcapng import DROPPED
from lab.script.events import SERVER_PORT, LossEvent, Script

ETHERNET_HEADER = 14  # veth and lo frames alike, as the packet socket reads them
TCP_CHECKSUM = slice(16, 18)  # within the TCP header


class RunLosses:
    """The link lines of one run; ``settle`` ends it (also on failure), removing the rules."""

    def __init__(self, script: Script):
        self.path = script.path
        self.link = None
        if any(isinstance(event, LossEvent) for event in script.events):
            # Made before the timeline: loading it (pyroute2's nf_tables) takes ~0.1 s, which the first link
            # line would otherwise spend late. A script without link lines does not load it at all.
            from netns.loss import LinkLoss

            self.link = LinkLoss()
        self.lines: dict[int, LossEvent] = {}  # rule tag (the line number) -> its line

    def install(self, event: LossEvent, receiver_ns: str) -> None:
        """From now on, lose or hold back what ``event`` describes, in ``receiver_ns`` (the sender's peer's)."""
        from netns.loss import LossRule

        ports = {"sport": SERVER_PORT} if event.sender == "server" else {"dport": SERVER_PORT}
        self.lines[event.line] = event
        self.link.add(receiver_ns, LossRule(event.line, text_to_flags(event.flags), nth=event.nth,
                                            every=event.every, delay=event.delay, **ports))

    def where(self, event: LossEvent) -> str:
        return f"{os.path.basename(self.path)}:{event.line} {event.text}"

    def settle(self, frames: list, comments: dict[int, str], frame_steps: dict[int, object]) -> list[str]:
        """Mark the frames the link dropped or held (comments, ladder steps); return notes; remove the rules."""
        if self.link is None:
            return []
        try:
            done = ([(drop.tag, drop.packet, None, True) for drop in self.link.drops()]
                    + [(held.mark, held.packet, held.seconds, held.released) for held in self.link.held()]
                    if self.lines else [])
        finally:
            self.link.close()
        notes = []
        marked: set[int] = set()
        for tag, packet, seconds, released in done:
            event = self.lines.get(tag)
            if event is None:
                continue
            frame = next((f for f in frames if id(f) not in marked and _same_segment(f.data, packet)), None)
            if frame is None:
                notes.append(f"the link {'dropped' if seconds is None else 'held back'} a segment the capture "
                             f"did not keep ({self.where(event)})")
                continue
            marked.add(id(frame))
            what = (DROPPED if seconds is None else f"held back by the link for {seconds:.3f} s"
                    + ("" if released else ", still held when the run ended"))
            mark = f"{what} ({self.where(event)})"
            comments[id(frame)] = f"{comments[id(frame)]} | {mark}" if id(frame) in comments else mark
            step = frame_steps.get(id(frame))
            if step is None:
                continue
            if seconds is None:
                step.lost = True
            else:
                step.held_s = seconds
        acted = {tag for tag, *_ in done}
        for tag, event in self.lines.items():
            if tag not in acted:
                verb = "lost" if event.delay is None else "held back"
                notes.append(f"{os.path.basename(self.path)}:{event.line}: the link {verb} nothing: no "
                             f"{event.sender} segment with flags {event.flags} came by")
        return notes


def _without_tcp_checksum(packet: bytes) -> bytes:
    tcp = (packet[0] & 0x0F) * 4 if packet[0] >> 4 == 4 else 40  # the lab's IPv6 has no extension headers
    return packet[:tcp + TCP_CHECKSUM.start] + packet[tcp + TCP_CHECKSUM.stop:]


def _same_segment(frame: bytes, packet: bytes) -> bool:
    """A captured frame carries ``packet``. The TCP checksum is left out: on loopback the capture keeps
    the sender's partial checksum, while the NFQUEUE copy has it completed."""
    ip = frame[ETHERNET_HEADER:ETHERNET_HEADER + len(packet)]
    return len(ip) == len(packet) and _without_tcp_checksum(ip) == _without_tcp_checksum(packet)
