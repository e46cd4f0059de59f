"""The matcher: one set of rules for judging segments, live and offline.

packetdrill's shape: the timing rule (lab/judge/timing.py) and one field
verifier (lab/judge/verify.py), fed by a source of (time, segment, sender)
with push-back: the live wire (lab/live/sources.py) or a capture file
(lab/capture/check.py). The lab's own segments go through the same rules as
the kernel's, so a run and an offline check of its capture give the same
verdict, and the lab's lateness is a failure of its own kind (``lab-late``).

The clock is an anchor log: the next ``+x`` counts from when the previous
event really happened (a segment's arrival, a syscall's start); observations
(state lines, tcp_info blocks) do not move it. The lab *acts* on the
script's own timeline: its lag is kept apart and taken back at the next
wait, up to a bound, so that small delays do not add up and slide the lab's
actions against the kernel's ticks (docs/timing.md). Nothing here does I/O.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from lab.tcp.packets import Segment
from lab.script.events import CodeEvent, Event, PacketEvent, Script, StateEvent

from lab.tcp.numbering import Side
from lab.script.settings import Settings
from lab.judge.timing import Window, window
from lab.judge.trace import CONTENT, LAB_LATE, TIMING, Failure, Step
from lab.judge.verify import (
    Observed,
    canonical_flags,
    learn_numbers,
    line_for,
    match_lines,
    observe,
)

ANY_TIME_WAIT = 10.0  # seconds a "*" line waits for its segment
RECENT = 6  # segments a failure report shows before the failing one
LAB = "lab"  # the endpoint the lab plays in drive mode


@dataclass(frozen=True)
class Seen:
    """A segment from a source: when (on the source's clock), what, who sent it."""

    time: float
    segment: Segment
    sender: str
    ref: object = None  # the frame or capture item it came from (the recorder comments on it)


class Source(Protocol):
    """Where segments come from: the live wire or a capture file."""

    def next(self, until: float | None) -> Seen | None:
        """The next segment, waiting (live) until ``until`` on the source's clock, or ANY_TIME_WAIT for None."""

    def push_back(self, seen: Seen) -> None:
        """Give a segment back: the next ``next()`` returns it first."""

    def rest(self) -> list[Seen]:
        """Every segment still to come, without waiting."""


def moves_clock(event: Event) -> bool:
    """Whether an event anchors the clock: actions do, observations (state, tcp_info) do not."""
    return not isinstance(event, (StateEvent, CodeEvent))


class Clock:
    """Script time <-> a source's clock, by anchors of when events really happened."""

    def __init__(self, zero: float | None):
        self.anchors: list[tuple[float, float]] = [] if zero is None else [(zero, 0.0)]
        self.previous = 0.0  # script time of the previous event
        self.lag = 0.0  # seconds the lab's last action began after its moment on the script's own timeline

    @property
    def started(self) -> bool:
        """False until a first moment is known (an offline capture without tcplab's timeline record)."""
        return bool(self.anchors)

    def scheduled(self, event: Event) -> float:
        """The event's script time: absolute, or counted from the previous event."""
        return self.scheduled_after(event, self.previous)

    @staticmethod
    def scheduled_after(event: Event, previous: float) -> float:
        """The event's script time if the event before it happens at ``previous``."""
        timing = event.timing
        return previous + timing.start if timing.relative else timing.start

    def restart(self, zero: float) -> None:
        """Script time 0 is ``zero`` now: nothing has happened on the old one (the runner's first action)."""
        self.anchors = [(zero, 0.0)]

    def anchor(self, when: float, script_time: float) -> None:
        """Script time ``script_time`` really happened at ``when``."""
        bisect.insort(self.anchors, (when, script_time))

    def at(self, when: float) -> float:
        """The script time of moment ``when``, counted from the last anchor before it."""
        index = max(bisect.bisect_right(self.anchors, (when, math.inf)) - 1, 0)
        anchor_when, anchor_script = self.anchors[index]
        return anchor_script + when - anchor_when

    def elapsed(self, when: float) -> float:
        """Seconds since script time 0 (or since the first anchor's script time), for the trace."""
        first_when, first_script = self.anchors[0]
        return first_script + when - first_when

    def when(self, script_time: float) -> float:
        """The moment ``script_time`` falls on, counted from the latest anchor."""
        anchor_when, anchor_script = self.anchors[-1]
        return anchor_when + script_time - anchor_script

    def pace(self, script_time: float, catch_up: float) -> float:
        """When the lab acts for ``script_time``: on the script's own timeline (``when`` less the lab's
        lag), at most ``catch_up`` seconds before ``when``."""
        return self.when(script_time) - min(self.lag, catch_up)

    def acted(self, began: float, script_time: float) -> None:
        """The lab's action for ``script_time`` began at ``began`` (before its anchor is added)."""
        self.lag = max(began - (self.when(script_time) - self.lag), 0.0)


def line_end(event: Event, script_time: float) -> float:
    """The latest script time a line allows before tolerance: its range's high end, or its own time."""
    timing = event.timing
    return script_time + (timing.high - timing.start if timing.high is not None else 0.0)


class Matcher:
    """Matches segments from a source to a script's segment lines; records the trace's steps."""

    def __init__(self, script: Script, settings: Settings, sides: Mapping[str, Side], prefixes: dict[str, str],
                 peers: dict[str, str], left: str, clock: Clock,
                 on_match: Callable[[str, PacketEvent, Segment], None] | None = None):
        self.script, self.settings, self.sides = script, settings, sides
        self.on_match = on_match  # live: the port's word on a matched segment (a new connection) before learning
        self.prefixes, self.peers, self.left, self.clock = prefixes, peers, left, clock
        self.steps: list[Step] = []
        self.comments: dict[int, str] = {}  # id(seen.ref) -> the script lines it matched
        self.frame_steps: dict[int, Step] = {}  # id(seen.ref) -> its step (the link's marks land there)

    # -- segments in script terms ------------------------------------------
    @staticmethod
    def sender_for(event: PacketEvent) -> str:
        """Who must send a line's segment: its endpoint (observe), the lab for "<", the kernel for ">"."""
        return event.endpoint or (LAB if event.inbound else "kernel")

    def observed(self, seen: Seen) -> Observed:
        sender = seen.sender
        return observe(seen.segment, self.sides[sender], self.sides[self.peers[sender]], self.prefixes[sender])

    def record(self, seen: Seen, line: int | None = None, mismatch: str = "", late: float | None = None,
               observed: Observed | None = None) -> Step:
        """Add a step for ``seen`` to the trace."""
        actual = observed or self.observed(seen)
        step = actual.step(self.clock.elapsed(seen.time) if self.clock.started else 0.0, seen.sender,
                           seen.sender == self.left, line, mismatch=mismatch,
                           late_ms=None if late is None else round(late * 1000, 3))
        self.steps.append(step)
        self.frame_steps[id(seen.ref)] = step
        return step

    def failure(self, event: Event, kind: str, message: str, actual: Observed | None = None,
                fields: list[str] | None = None, shown: bool = False, differences=()) -> Failure:
        """A Failure at ``event``; ``shown``: the last step is the actual segment, reported on its own line."""
        recent = self.steps[-RECENT - 1:-1] if shown else self.steps[-RECENT:]
        return Failure(event.line, message, kind, expected=event.text,
                       actual=actual.render(self.settings.absolute) if actual else "", fields=fields or [],
                       recent=list(recent), differences=tuple(differences))

    # -- timing (lab/judge/timing.py) --------------------------------------
    def line_window(self, event: Event, script_time: float) -> Window:
        """The window a line's event must fall in, counted from the previous event."""
        return window(self.settings, script_time, self.clock.previous, line_end(event, script_time))

    def _judge_time(self, event: PacketEvent, sender: str, on_time: Window, arrived: float, actual: Observed,
                    seen: Seen) -> None:
        if event.timing.any_time or on_time.holds(arrived):
            return
        self.record(seen, mismatch="timing", observed=actual, late=arrived - on_time.start)
        if sender == LAB:
            off = on_time.off_ms(arrived)
            raise self.failure(event, LAB_LATE, f"the lab sent this segment at {arrived:.4f} s, "
                               f"{abs(off):.1f} ms {'after' if off > 0 else 'before'} its script time "
                               f"{on_time.start:.3f} s (tolerance {on_time.allowed * 1000:.1f} ms)", actual, shown=True)
        raise self.failure(event, TIMING, f"timing: the segment arrived at {arrived:.3f} s, expected at "
                           f"{on_time.span()} s (tolerance {on_time.allowed * 1000:.1f} ms)", actual, shown=True)

    # -- matching -----------------------------------------------------------
    def expect(self, events: list[Event], index: int, source: Source) -> int:
        """Match the next segment from ``source`` to the segment line at ``index``; return lines consumed.

        ``events`` is the run's own copy of the script's events (either-order
        may swap two lines in it). Raises Failure on a mismatch.
        """
        event = events[index]
        timing = event.timing
        script_time = self.clock.scheduled(event)
        on_time = self.line_window(event, script_time)
        started = self.clock.started
        until = None if timing.any_time or not started else self.clock.when(on_time.latest)
        wanted = self.sender_for(event)
        seen = source.next(until)
        if seen is None:  # the lab always sends live: only a capture can lack its segment
            kind = CONTENT if wanted == LAB else TIMING
            raise self.failure(event, kind, f"the {wanted} sent nothing; expected this segment by "
                               f"{on_time.latest:.3f} s")
        event, problem = line_for(events, index, seen.sender, wanted)
        if problem:
            self.record(seen, mismatch=f"expected the {wanted}'s segment")
            raise self.failure(event, CONTENT, problem, self.observed(seen), shown=True)
        if self.on_match is not None:
            self.on_match(seen.sender, event, seen.segment)
        side = self.sides[seen.sender]
        if seen.sender == LAB and side.offset is None:
            # Offline: the lab's ISN was its own choice, not in the capture: learnt from its first segment.
            side.learn(seen.segment.seq, event.seq, syn="S" in seen.segment.flag_text)
        learn_numbers(side, event, seen.segment)
        self._check_ts_progress(event, seen, script_time)
        actual = self.observed(seen)
        consumed, diffs = match_lines(events, index, actual)
        parts = [seen]
        if diffs and actual.length < event.length:
            parts, actual = self._aggregate(seen, actual, event.length, until, source)
            consumed, diffs = match_lines(events, index, actual)
        if diffs:
            self.record(seen, mismatch="; ".join(map(str, diffs)), observed=actual)
            raise self.failure(event, CONTENT, f"the {seen.sender}'s segment differs from the script", actual,
                               [str(diff) for diff in diffs], shown=True, differences=diffs)
        if not started:  # the capture's first segment: it sets the clock
            self.clock.anchor(seen.time, script_time)
        arrived = self.clock.at(seen.time)
        self._judge_time(event, seen.sender, on_time, arrived, actual, seen)
        comment = " + ".join(f"{self.script.path}:{line.line} {line.text}" for line in events[index:index + consumed])
        for part in parts:
            self.comments[id(part.ref)] = comment
            self.record(part, line=event.line, late=None if timing.any_time else arrived - script_time)
        if timing.any_time:
            script_time = arrived
        self.clock.anchor(parts[-1].time, script_time)  # the next "+x" counts from this arrival
        self.clock.previous = script_time
        return consumed

    def _check_ts_progress(self, event: PacketEvent, seen: Seen, script_time: float) -> None:
        """``--tcp_ts_tick_usecs=N``: a real sender's TS val may stray from the script's by at most the
        tolerance, counted in ticks of N microseconds (packetdrill's check; the tolerance grows with the
        time since the script began)."""
        tick = self.settings.option("tcp_ts_tick_usecs")
        side = self.sides[seen.sender]
        expected = [option.values[0] for option in event.options or () if option.kind == "TS"]
        live = seen.segment.option("Timestamp")
        if not (tick and expected and seen.sender != LAB and isinstance(live, tuple) and side.ts_offset is not None):
            return
        stray = (side.ts_script(live[0]) - expected[0] + 2**31) % 2**32 - 2**31
        on_time = window(self.settings, script_time, since=0.0)  # the TS clock counts from the script's start
        if not on_time.holds(script_time + stray * tick / 1e6):
            problem = (f"TS val: expected {expected[0]}, got {side.ts_script(live[0])} ({abs(stray)} ticks of "
                       f"{tick} us off, tolerance {on_time.allowed * 1e6:.0f} us)")
            self.record(seen, mismatch=problem)
            raise self.failure(event, CONTENT, problem, fields=[problem], shown=True)

    def _aggregate(self, first_seen: Seen, first: Observed, wanted: int, until: float | None,
                   source: Source) -> tuple[list[Seen], Observed]:
        """Several segments in a row that together carry one line's payload (as packetdrill allows)."""
        parts, total, last = [first_seen], first.length, first
        while total < wanted:
            seen = source.next(until)
            if seen is None:
                break
            part = self.observed(seen)
            if seen.sender != first_seen.sender or part.seq != (first.seq + total) % 2**32 or part.length == 0:
                source.push_back(seen)
                break
            parts.append(seen)
            total += part.length
            last = part
        flags = canonical_flags(first.flags + last.flags)
        merged = Observed(first.prefix, flags, first.seq, (first.seq + total) % 2**32, total, last.ack,
                          last.window, first.options, first.live)
        return parts, merged

    def trailing(self, rest: Iterable[Seen]) -> list[str]:
        """Segments no line read: shown as notes, not failed (as in packetdrill)."""
        notes = []
        for seen in rest:
            step = self.record(seen)
            notes.append(f"the {seen.sender} also sent, after the script's last expected segment: {step.text()}")
        return notes
