"""The live wire as a source of segments for the matcher.

Frames are read from the lab's packet socket, parsed, and kept when the
mode's port says which endpoint sent them; the first SYN of an endpoint
teaches the run its port and address (a connect() gets an ephemeral port,
and an address the kernel's routes chose).
"""

from __future__ import annotations

import time
from collections import deque

from lab.tcp.packets import parse_frame
from lab.live.wire import Wire

from lab.judge.matcher import ANY_TIME_WAIT, Seen
from lab.live.ports import Endpoint, Port


class LiveSource:
    """Segments of the connection under test, as the wire delivers them."""

    def __init__(self, wire: Wire, port: Port, ends: dict[str, Endpoint]):
        self.wire, self.port, self.ends = wire, port, ends
        self.pending: deque[Seen] = deque()

    def _take(self, timeout: float) -> bool:
        frame = self.wire.receive(timeout)
        if frame is None:
            return False
        segment = parse_frame(frame.data)
        sender = self.port.sender_of(frame, segment) if segment is not None else None
        if sender is not None:
            self._learn_port(sender, segment)
            self.port.on_segment(sender, segment)
            self.pending.append(Seen(frame.time, segment, sender, frame))
        return True

    def _learn_port(self, sender: str, segment) -> None:
        """A SYN names its sender's port: a listener's is known, a connect()'s is chosen by the kernel; and
        its address, which the kernel chose by its routes (a client whose connect() leaves by another device
        than its peer's, as on loopback towards --server=unreachable). State lines look the socket up by both."""
        end = self.ends[sender]
        flags = segment.flag_text
        if "S" in flags and ("." not in flags or not end.port):
            end.port, end.address = segment.sport, segment.src

    def next(self, until: float | None) -> Seen | None:
        deadline = time.monotonic() + ANY_TIME_WAIT if until is None else until
        while not self.pending:
            if not self._take(deadline - time.monotonic()):
                return None
        return self.pending.popleft()

    def silent(self) -> bool:
        """Whether no segment of the run waits to be judged (frames waiting on the link are read first;
        other frames, such as IPv6 multicast reports, do not count)."""
        while self._take(0.0):
            pass
        return not self.pending

    def push_back(self, seen: Seen) -> None:
        self.pending.appendleft(seen)

    def rest(self) -> list[Seen]:
        while self._take(0.0):
            pass
        rest = list(self.pending)
        self.pending.clear()
        return rest
