"""Check a recorded capture against a script, offline: no privileges, no namespaces.

The capture stands in for the wire. Its segments are read in order and
matched to the script's segment lines with the engine's own rules (relative
numbers, coalescing, options, timing tolerance); both sides' ISNs and TS
clocks are learnt from the capture, since neither was chosen by the lab.
Lines about the endpoints' insides (syscalls, states, tcp_info, commands)
cannot be seen in a capture: they are counted as not checked, and their
times are taken as written.
"""

from __future__ import annotations

import time

from lab.engine.loss import DROPPED
from lab.engine.numbering import Side
from lab.engine.report import Failure, RunResult, Step
from lab.engine.runner import RECENT, Settings, tolerance
from netns.addresses import SERVER_PORT
from lab.engine.verify import Observed, learn_numbers, line_for, match_lines, observe
from lab.script.events import PacketEvent, Script, StateEvent

from .pcapfile import CapturedSegment



def roles(script: Script) -> tuple[str, str]:
    """The script's two endpoints, left (lab or client) then right (kernel or server)."""
    return ("client", "server") if script.observe else ("lab", "kernel")


def sender_role(script: Script, event: PacketEvent) -> str:
    if script.observe:
        return event.endpoint
    return "lab" if event.inbound else "kernel"


def is_syn(flags: str) -> bool:
    """A connection's first segment: SYN without ACK."""
    return "S" in flags and "." not in flags


def prefix(script: Script, role: str) -> str:
    return f"{role} >" if script.observe else "<" if role == "lab" else ">"


class OfflineCheck:
    """One pass of a script over a capture's segments."""

    def __init__(self, script: Script, captured: list[CapturedSegment], settings: Settings):
        self.script, self.captured = script, captured
        self.settings = settings.for_script(script)
        self.sides = {role: Side() for role in roles(script)}
        self.endpoints: dict[tuple[str, int], str] = {}  # (address, port) -> role
        self.steps: list[Step] = []
        self.unchecked = 0
        self.first_time = captured[0].time
        self.family = captured[0].segment.family  # until the connection under test is known

    def _role_of(self, item: CapturedSegment) -> str | None:
        return self.endpoints.get((item.segment.src, item.segment.sport))

    def _assign_roles(self, event: PacketEvent, item: CapturedSegment) -> None:
        """Who is who: the sender of the script's first SYN sent the capture's first SYN;
        with no SYN on either side, the first expected segment's sender sent the first segment."""
        syn_lines = [e for e in self.script.events if isinstance(e, PacketEvent) and is_syn(e.flags)]
        syns = sorted((c for c in self.captured if is_syn(c.segment.flag_text)),
                      key=lambda c: c.segment.dport != SERVER_PORT)  # the lab's port first, then capture order
        if syn_lines and syns:
            event, item = syn_lines[0], syns[0]
        left, right = roles(self.script)
        sender = sender_role(self.script, event)
        peer = right if sender == left else left
        self.endpoints = {(item.segment.src, item.segment.sport): sender,
                          (item.segment.dst, item.segment.dport): peer}
        self.family = item.segment.family

    def _observed(self, item: CapturedSegment, sender: str) -> Observed:
        left, right = roles(self.script)
        peer = right if sender == left else left
        return observe(item.segment, self.sides[sender], self.sides[peer], prefix(self.script, sender))

    def _step(self, item: CapturedSegment, sender: str, line: int | None, mismatch: str = "") -> None:
        observed = self._observed(item, sender)
        self.steps.append(Step(item.time - self.first_time, sender == roles(self.script)[0], observed.render(),
                               line, label=observed.label(), mismatch=mismatch, lost=DROPPED in item.comment))

    def _failure(self, event, message: str, actual: Observed | None = None, fields=None) -> Failure:
        recent = [f"{step.time:8.4f}  {step.text}" for step in self.steps[-RECENT:]]
        if actual is not None and recent:
            recent = recent[:-1]
        return Failure(event.line, message, expected=event.text, actual=actual.render() if actual else "",
                       fields=fields or [], recent=recent)

    def run(self) -> Failure | None:
        events = list(self.script.events)  # either_order may swap two lines in this copy
        queue = list(self.captured)
        previous = 0.0
        anchor: tuple[float, float] | None = None  # (capture time, script time) of the last segment
        index = 0
        while index < len(events):
            event = events[index]
            timing = event.timing
            script_time = previous + timing.start if timing.relative else timing.start
            if not isinstance(event, PacketEvent):
                self.unchecked += 1
                previous = script_time
                index += 1
                continue
            if not self.endpoints and queue:
                self._assign_roles(event, queue[0])
            while queue and self._role_of(queue[0]) is None:
                queue.pop(0)  # another connection's segment: not the one under test
            wanted = sender_role(self.script, event)
            if not queue:
                return self._failure(event, f"the capture ends; expected this segment from the {wanted}")
            item = queue.pop(0)
            sender = self._role_of(item)
            event, problem = line_for(events, index, sender, wanted)
            if problem:
                self._step(item, sender, None, mismatch=f"expected the {wanted}'s segment")
                return self._failure(event, problem, self._observed(item, sender))
            learn_numbers(self.sides[sender], event, item.segment)
            actual = self._observed(item, sender)
            consumed, diffs = match_lines(events, index, actual)
            if diffs:
                self._step(item, sender, None, mismatch="; ".join(diffs))
                return self._failure(event, f"the {sender}'s segment differs from the script", actual, diffs)
            if anchor is not None and not timing.any_time:
                arrived = anchor[1] + item.time - anchor[0]
                high = script_time + (timing.high - timing.start if timing.high is not None else 0.0)
                allowed = tolerance(self.settings, script_time - previous)
                if not script_time - allowed <= arrived <= high + allowed:
                    self._step(item, sender, None, mismatch="timing")
                    window = f"{script_time:.3f}" + (f"~{high:.3f}" if high != script_time else "")
                    return self._failure(event, f"timing: the segment came at {arrived:.3f} s, expected at "
                                         f"{window} s (tolerance {allowed * 1000:.1f} ms)", actual)
            if timing.any_time and anchor is not None:
                script_time = anchor[1] + item.time - anchor[0]
            self._step(item, sender, event.line)
            anchor = (item.time, script_time)
            previous = script_time
            index += consumed
        self.trailing = [item for item in queue if self._role_of(item)]
        return None


def check_capture(script: Script, captured: list[CapturedSegment], capture_path: str,
                  settings: Settings) -> RunResult:
    """Verify ``captured`` against ``script``; a RunResult as from a live run, with notes."""
    started = time.monotonic()
    check = OfflineCheck(script, captured, settings)
    failure = check.run()
    notes = []
    if failure is None:
        for item in check.trailing:
            check._step(item, check._role_of(item), None)
            notes.append(f"the capture goes on after the script's last segment: frame {item.index}: "
                         + check.steps[-1].text)
        if check.unchecked:
            notes.append(f"{check.unchecked} line(s) about the endpoints' insides (syscalls, states, "
                         "tcp_info, commands) cannot be checked in a capture")
    left, right = roles(script)
    return RunResult(script.path, check.family, failure, capture_path, time.monotonic() - started,
                     check.steps, notes, left, right)


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
