"""``link lose`` lines in a run: rules on the link while it runs, then the kernel's word on what they dropped.

A run holds one :class:`RunLosses`. ``install`` turns a line into an
nf_tables rule in the namespace of the endpoint that would receive the
segment (netns/loss.py). ``settle``, once the run is over, reads what the
rules dropped (nfnetlink_log copies of the packets, tagged with the line)
and finds each among the captured frames: the frame's packet comment says
it was dropped by the link and which line did it, its ladder step is drawn
as an arrow that does not arrive, and a line that dropped nothing gets a
note. Nothing here decides what was lost: the kernel says so.
"""

from __future__ import annotations

import os

from lab.packets import text_to_flags
from lab.script.events import LossEvent
from netns.addresses import SERVER_PORT
from netns.loss import LinkLoss, LossRule

ETHERNET_HEADER = 14  # veth and lo frames alike, as the packet socket reads them
DROPPED = "dropped by the link"  # in a frame's packet comment: offline checks read it back
LOST_MARK = f"  ({DROPPED})"


class RunLosses:
    """The loss lines of one run; ``settle`` ends it (also on failure), removing the rules."""

    def __init__(self, path: str):
        self.path = path
        self.link = LinkLoss()
        self.lines: dict[str, LossEvent] = {}  # rule tag (the line number) -> its line

    def install(self, event: LossEvent, receiver_ns: str) -> None:
        """From now on, lose what ``event`` describes, in ``receiver_ns`` (where the sender's peer lives)."""
        tag = str(event.line)
        ports = {"sport": SERVER_PORT} if event.sender == "server" else {"dport": SERVER_PORT}
        self.lines[tag] = event
        self.link.add(receiver_ns, LossRule(tag, text_to_flags(event.flags), nth=event.nth, every=event.every,
                                            **ports))

    def where(self, event: LossEvent) -> str:
        return f"{os.path.basename(self.path)}:{event.line}"

    def settle(self, frames: list, comments: dict[int, str], frame_steps: dict[int, object]) -> list[str]:
        """Mark the frames the link dropped (comment, ladder step); return notes; remove the rules."""
        try:
            drops = self.link.drops() if self.lines else []
        finally:
            self.link.close()
        notes = []
        marked: set[int] = set()
        dropped_by: dict[str, int] = {}
        for drop in drops:
            event = self.lines.get(drop.tag)
            if event is None:
                continue
            dropped_by[drop.tag] = dropped_by.get(drop.tag, 0) + 1
            frame = next((f for f in frames if id(f) not in marked
                          and f.data[ETHERNET_HEADER:ETHERNET_HEADER + len(drop.packet)] == drop.packet), None)
            if frame is None:
                notes.append(f"the link dropped a segment the capture did not keep ({self.where(event)})")
                continue
            marked.add(id(frame))
            mark = f"{DROPPED} ({self.where(event)} {event.text})"
            comments[id(frame)] = f"{comments[id(frame)]} | {mark}" if id(frame) in comments else mark
            step = frame_steps.get(id(frame))
            if step is not None:
                step.lost = True
                step.text += LOST_MARK
        for tag, event in self.lines.items():
            if tag not in dropped_by:
                notes.append(f"{self.where(event)}: the link lost nothing: no {event.sender} segment "
                             f"with flags {event.flags} came by")
        return notes
