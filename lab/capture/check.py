"""Check a recorded capture against a script, offline: no privileges, no namespaces.

The capture stands in for the wire: a source of segments for the same
matcher the live run uses (lab/judge/matcher.py), so the lab's own segments
and the kernel's are judged by the same rules as live. Both sides' ISNs and
TS clocks are learnt from the capture. A capture written by tcplab carries
its run's timeline (script time 0, and when each syscall or command really
began), so the clock is anchored exactly as it was live; a capture from
another tool has none, and its first segment sets the clock. Lines about the
endpoints' insides (syscalls, states, tcp_info, commands) cannot be seen in
a capture: they are counted as not checked.
"""

from __future__ import annotations

import time
from collections import deque

from lab.judge.matcher import LAB, Clock, Matcher, Seen
from lab.tcp.numbering import Side
from lab.script.values import begins_connection
from lab.tcp.packets import is_syn
from lab.script.settings import Settings
from lab.judge.trace import Failure, RunResult, Step
from lab.capture.pcapng import DROPPED
from lab.script.events import SERVER_PORT, PacketEvent, Script, StateEvent, SyscallEvent

from lab.capture.pcapfile import CapturedSegment


def roles(script: Script) -> tuple[str, str]:
    """The script's two endpoints, left (lab or client) then right (kernel or server)."""
    return ("client", "server") if script.observe else (LAB, "kernel")


class CaptureSource:
    """A capture's segments of the connection under test, with the role of each sender."""

    def __init__(self, script: Script, captured: list[CapturedSegment]):
        self.script = script
        self.queue = deque(captured)
        self.endpoints: dict[tuple[str, int], str] = {}  # (address, port) -> role
        self.family = captured[0].segment.family  # until the connection under test is known
        self._assign_roles(captured)

    def _assign_roles(self, captured: list[CapturedSegment]) -> None:
        """Who is who: the sender of the script's first SYN sent the capture's first SYN (the one to the
        server's port first); with no SYN on either side, the first segment line's sender sent the first segment."""
        lines = [e for e in self.script.events if isinstance(e, PacketEvent)]
        if not lines:
            return
        syn_lines = [e for e in lines if is_syn(e.flags)]
        syns = sorted((c for c in captured if is_syn(c.segment.flag_text)), key=lambda c: c.segment.dport != SERVER_PORT)
        line, item = (syn_lines[0], syns[0]) if syn_lines and syns else (lines[0], captured[0])
        left, right = roles(self.script)
        sender = Matcher.sender_for(line)
        peer = right if sender == left else left
        self.endpoints = {(item.segment.src, item.segment.sport): sender, (item.segment.dst, item.segment.dport): peer}
        self.family = item.segment.family

    def _seen(self, item: CapturedSegment) -> Seen | None:
        role = self.endpoints.get((item.segment.src, item.segment.sport))
        if role is None and is_syn(item.segment.flag_text):
            role = self._by_address(item.segment.src)  # a later connection's SYN: a new port of a known address
            if role is not None:
                peer = next(other for other in self.endpoints.values() if other != role)
                self.endpoints[(item.segment.src, item.segment.sport)] = role
                self.endpoints[(item.segment.dst, item.segment.dport)] = peer
        return None if role is None else Seen(item.time, item.segment, role, item)

    def _by_address(self, address: str) -> str | None:
        """The role of the only endpoint at ``address`` (None on loopback, where both share one)."""
        roles_there = {role for (known, _), role in self.endpoints.items() if known == address}
        return roles_there.pop() if len(roles_there) == 1 else None

    def next(self, until: float | None) -> Seen | None:
        while self.queue:
            seen = self._seen(self.queue.popleft())
            if seen is not None:  # another connection's segments are not the one under test
                return seen
        return None

    def push_back(self, seen: Seen) -> None:
        self.queue.appendleft(seen.ref)

    def rest(self) -> list[Seen]:
        rest = [seen for seen in map(self._seen, self.queue) if seen is not None]
        self.queue.clear()
        return rest


def connection_beginnings(script: Script) -> set[int]:
    """Lines of the SYNs that begin a connection, as packetdrill counts them: the first SYN after a
    listen(), a connect() or a Fast Open send (the script's own syscall lines say where)."""
    beginnings, pending = set(), False
    for event in script.events:
        if isinstance(event, SyscallEvent) and begins_connection(event, f"{script.path}:{event.line}"):
            pending = True
        elif isinstance(event, PacketEvent) and is_syn(event.flags) and pending:
            beginnings.add(event.line)
            pending = False
    return beginnings


def check_capture(script: Script, captured: list[CapturedSegment], capture_path: str, settings: Settings,
                  timeline: dict | None = None) -> RunResult:
    """Verify ``captured`` against ``script``; a RunResult as from a live run, with notes.

    ``timeline`` is what a tcplab capture's section header records (see
    lab/live/recorder.py): script time 0 and the moments its actions began.
    """
    started = time.monotonic()
    settings = settings.for_script(script)
    source = CaptureSource(script, captured)
    left, right = roles(script)
    clock = Clock(timeline["zero"] if timeline else None)
    anchors = timeline["anchors"] if timeline else {}
    sides = {left: Side(), right: Side()}
    beginnings = connection_beginnings(script)

    def new_connection(sender: str, event: PacketEvent, segment) -> None:
        """Fresh sequence spaces where a live run starts them: the first SYN after listen() or connect()
        (a kernel SYN written with a non-zero seq continues the earlier numbering, as live)."""
        if event.line in beginnings and sides[sender].offset is not None and (event.inbound or not event.seq):
            sides[left], sides[right] = Side(), Side()

    matcher = Matcher(script, settings, sides,
                      {left: "<" if left == LAB else f"{left} >", right: ">" if right == "kernel" else f"{right} >"},
                      {left: right, right: left}, left, clock, new_connection)
    events = list(script.events)  # either_order may swap two lines in this copy
    unchecked, index, failure = 0, 0, None
    try:
        while index < len(events):
            event = events[index]
            if isinstance(event, PacketEvent):
                index += matcher.expect(events, index, source)
                continue
            script_time = clock.scheduled(event)
            if event.line in anchors:  # the lines that anchored the live clock (actions, late states)
                clock.anchor(anchors[event.line], script_time)
            clock.previous = script_time
            unchecked += 1
            index += 1
    except Failure as error:
        failure = error
    for item in captured:  # what the link dropped, as the live run's packet comments recorded it
        if DROPPED in item.comment and id(item) in matcher.frame_steps:
            matcher.frame_steps[id(item)].lost = True
    notes = []
    if failure is None:
        notes = [note.replace("also sent, after the script's last expected segment",
                              "goes on after the script's last segment") for note in matcher.trailing(source.rest())]
        if unchecked:
            notes.append(f"{unchecked} line(s) about the endpoints' insides (syscalls, states, "
                         "tcp_info, commands) cannot be checked in a capture")
    return RunResult(script.path, source.family, failure, capture_path, time.monotonic() - started,
                     matcher.steps, notes, left, right)


def asserted_states(script: Script, steps: list[Step]) -> None:
    """Give each step the states the script asserts right after its line (for ladders of a capture).

    A capture holds no states; the script's ``state`` lines between a
    segment's line and the next segment line say what the kernel reported
    when the capture was recorded (the run passed, so it did).
    """
    after: dict[int, dict[str, str]] = {}
    current = None
    for event in script.events:
        if isinstance(event, PacketEvent):
            current = after.setdefault(event.line, {})
        elif isinstance(event, StateEvent) and current is not None and event.port is None:
            current[event.endpoint or "kernel"] = event.state
    for step in steps:
        step.states = dict(after.get(step.line, {}))
