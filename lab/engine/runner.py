"""Run one parsed script in a fresh topology, one address family, and verify it.

The timeline: every event has a script time (absolute, or relative to the
previous event) mapped onto live time. As in packetdrill, the next ``+x``
counts from when the previous event really happened: a segment's arrival
(the kernel's receive timestamp), a syscall's start. Tolerance is
max(tolerance_usecs, tolerance_percent of the gap to the previous event).

``Run`` holds what both modes share: the clock, the endpoints' syscalls,
state and tcp_info checks, commands, matching expected segments, reports and
the capture. ``DriveRun`` (lab/engine/drive.py) injects the lab's segments;
``ObserveRun`` (lab/engine/observe_mode.py) watches two real endpoints.
"""

from __future__ import annotations

import bisect
import gc
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from lab.errors import BadInput
from lab.observer import Observer
from lab.packets import Segment, parse_frame, preload_scapy
from lab.script.events import (
    ELLIPSIS,
    CodeEvent,
    CommandEvent,
    Event,
    LinkEvent,
    PacketEvent,
    Script,
    StateEvent,
    SyscallEvent,
)
from lab.wire import Frame, Wire
from netns import SysctlError, Topology, inside, write_sysctl

from . import tcpinfo
from .kernelapp import KernelApp, validate_syscall
from .numbering import Side
from .recorder import write_pcapng
from .report import Failure, RunResult, Step
from .verify import Observed, canonical_flags, learn_numbers, line_for, match_lines, observe

ANY_TIME_WAIT = 10.0  # seconds a "*" line waits for its segment
BLOCKING_WAIT = 1.0  # seconds a syscall waits for a blocking one in progress
BLOCKED_GRACE = 0.25  # extra seconds before a call that should return at once counts as blocked
RECENT = 6
GIL_SWITCH_INTERVAL = 0.0002  # seconds
DEFAULT_TOLERANCE_USECS = 4000
DEFAULT_TOLERANCE_PERCENT = 12.5


@dataclass
class Settings:
    """How to run scripts. Tolerances left None come from the script's option
    lines, else packetdrill's defaults; a value given here (a CLI flag) wins."""

    tolerance_usecs: int | None = None
    tolerance_percent: float | None = None
    allow_shell: bool = False
    absolute: bool = False
    pcap: str | None = None  # where to write the capture; None: a temporary file
    loopback: bool = False  # observe mode: both endpoints in one namespace on 127.0.0.1 / ::1

    def for_script(self, script: Script) -> Settings:
        resolved = Settings(**vars(self))
        defaults = {"tolerance_usecs": DEFAULT_TOLERANCE_USECS, "tolerance_percent": DEFAULT_TOLERANCE_PERCENT}
        for name, default in defaults.items():
            if getattr(resolved, name) is not None:
                continue
            value = script.options.get(name)
            try:
                setattr(resolved, name, type(default)(value) if value is not None else default)
            except ValueError:
                raise BadInput(f"{script.path}: option --{name}={value}: not a number") from None
        return resolved


def _one_line(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def tolerance(settings: Settings, gap: float) -> float:
    """packetdrill's rule: max(tolerance_usecs, tolerance_percent of the gap to the previous event)."""
    return max(settings.tolerance_usecs / 1e6, settings.tolerance_percent / 100 * max(gap, 0.0))


KNOWN_OPTION_VALUES = {"server": ("unreachable",)}  # option lines tcplab acts on, beyond the tolerances
USED_OPTIONS = {"tolerance_usecs", "tolerance_percent", "server", "ip_version", "tcp_ts_tick_usecs", "mss", "mtu",
                "bind_port", "connect_port"}


def ignored_options(script: Script) -> list[str]:
    """Notes for option lines tcplab does not act on (packetdrill's --mss=, --tcp_ts_tick_usecs=, ...)."""
    return [f"option line --{name}={value} is not supported by tcplab and was ignored"
            for name, value in script.options.items() if name not in USED_OPTIONS]


def preflight(script: Script, settings: Settings) -> None:
    """Reject what cannot run before any namespace exists: shell without the flag, bad syscalls, bad code,
    option lines with values tcplab cannot use."""
    settings.for_script(script)  # tolerance option lines must be numbers
    for name, allowed in KNOWN_OPTION_VALUES.items():
        value = script.options.get(name)
        if value is not None and value not in allowed:
            raise BadInput(f"{script.path}: option --{name}={value}: the only value is {' or '.join(allowed)}")
    for event in script.events:
        where = f"{script.path}:{event.line}"
        if isinstance(event, CommandEvent) and event.sysctls is None and not settings.allow_shell:
            raise BadInput(f"{where}: shell command `{_one_line(event.command)}` needs --allow-shell "
                           "(scripts are untrusted: only `sysctl -q net.x=y` lines run without it)")
        if isinstance(event, CommandEvent) and event.sysctls:
            for key, _ in event.sysctls:
                if not key.startswith("net."):
                    raise BadInput(f"{where}: sysctl {key}: only namespaced net.* settings can be changed")
        if isinstance(event, SyscallEvent):
            validate_syscall(event, script.path)
        if isinstance(event, CodeEvent):
            tcpinfo.check_code(event.code, where)
        if isinstance(event, LinkEvent) and not script.observe:
            raise BadInput(f"{where}: a link line shapes the link between two real endpoints: observe mode only "
                           "(name the endpoints: client > ..., server > ...)")


@dataclass
class Endpoint:
    """One side of the connection under test, as the run knows it."""

    name: str  # "lab", "kernel", "client", "server"
    address: str
    port: int  # 0 until learnt from the endpoint's first SYN
    side: Side  # its sequence space and TS clock
    app: KernelApp | None = None  # real sockets (None for the side the lab plays)
    observer: Observer | None = None  # sock_diag in its namespace
    peer: str = ""

    def close(self) -> None:
        if self.app:
            self.app.close()
        if self.observer:
            self.observer.close()


@dataclass
class Run:
    """Shared machinery of one run; subclasses build the topology and the endpoints."""

    script: Script
    family: int
    settings: Settings
    ends: dict[str, Endpoint] = field(default_factory=dict)
    left: str = ""  # the endpoint drawn on the left of a ladder (lab or client)
    pending_segments: list[tuple[Frame, Segment]] = field(default_factory=list)
    # Blocking calls in progress: (event, start and end in script time, thread, outcome box).
    blocking: list[tuple] = field(default_factory=list)
    comments: dict[int, str] = field(default_factory=dict)  # id(frame) -> the script line it matched
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.settings = self.settings.for_script(self.script)
        self.notes.extend(ignored_options(self.script))
        self.af = socket.AF_INET6 if self.family == 6 else socket.AF_INET

    # -- what a mode provides ----------------------------------------------
    def topology(self) -> Topology:
        raise NotImplementedError

    def setup(self, topology: Topology) -> Wire:
        """Create the endpoints and open the capture; return the wire to read."""
        raise NotImplementedError

    def inject(self, event: PacketEvent) -> Frame:
        raise BadInput(f"{self.script.path}:{event.line}: an observe-mode script cannot inject segments")

    def sender_of(self, frame: Frame, segment: Segment) -> str | None:
        """Which endpoint sent a captured segment; None to ignore the frame."""
        raise NotImplementedError

    def expected_sender(self, event: PacketEvent) -> str:
        return event.endpoint or "kernel"

    def prefix(self, sender: str) -> str:
        return f"{sender} >"

    def sysctl_namespaces(self, topology: Topology) -> list[str]:
        """Where a script's sysctl lines apply: every namespace with a real endpoint."""
        return list(topology.namespaces)

    # -- clock -------------------------------------------------------------
    def _script_time(self, event: Event) -> float:
        timing = event.timing
        return self.previous + timing.start if timing.relative else timing.start

    def _anchor(self, live: float, script_time: float) -> None:
        """Note that script time ``script_time`` happened at live time ``live``."""
        bisect.insort(self.anchors, (live, script_time))

    def _script_time_at(self, live: float) -> float:
        """The script time of live moment ``live``, counted from the last event before it."""
        index = max(bisect.bisect_right(self.anchors, (live, math.inf)) - 1, 0)
        anchor_live, anchor_script = self.anchors[index]
        return anchor_script + live - anchor_live

    def _live(self, script_time: float) -> float:
        """When ``script_time`` falls on the live clock, counted from the latest event."""
        anchor_live, anchor_script = self.anchors[-1]
        return anchor_live + script_time - anchor_script

    def _tolerance(self, gap: float) -> float:
        return tolerance(self.settings, gap)

    @staticmethod
    def _sleep_until(live: float) -> None:
        delay = live - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    # -- entry -----------------------------------------------------------
    def execute(self) -> RunResult:
        preflight(self.script, self.settings)
        started = time.monotonic()
        failure = None
        # A syscall thread that returns needs the GIL to note the time; with the
        # default 5 ms switch interval that note could come 5 ms late. A garbage
        # collection mid-timeline would delay an injected segment the same way.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        gc.disable()
        try:
            with self.topology() as topology:
                failure = self._run_in(topology)
        finally:
            gc.enable()
            sys.setswitchinterval(switch_interval)
        pcap = self._write_capture(keep_temporary=failure is not None)
        return RunResult(self.script.path, self.family, failure, pcap, time.monotonic() - started, self.steps,
                         self.notes, self.left, [name for name in self.ends if name != self.left][0])

    def _run_in(self, topology: Topology) -> Failure | None:
        self.wire = self.setup(topology)
        try:
            return self._play(topology)
        finally:
            self.wire.close()
            for end in self.ends.values():
                end.close()

    def _play(self, topology: Topology) -> Failure | None:
        preload_scapy()  # ~0.3 s on first use: not inside the script's timeline
        self.topology_in_use = topology
        self.t0 = time.monotonic()
        for end in self.ends.values():
            if end.app:
                end.app.clock_started(self._script_time_at, self.settings.tolerance_usecs)
        # (live, script) pairs: when events really happened. As in packetdrill, the
        # next "+x" counts from when the previous event happened: a syscall's
        # start, an injected segment's send, a kernel segment's arrival; except
        # that an injected segment after another keeps the scripted spacing.
        self.anchors = [(self.t0, 0.0)]
        self.previous = 0.0
        events = list(self.script.events)  # may be reordered (either_order), the script never
        index = 0
        previous_inbound = False
        try:
            while index < len(events):
                event = events[index]
                inbound = isinstance(event, PacketEvent) and event.inbound
                script_time = self._script_time(event)
                self._settle_blocking(before=script_time)
                self._sample_states()
                if isinstance(event, PacketEvent) and not event.inbound:
                    index += self._expect(events, index, script_time)
                    previous_inbound = False
                    continue
                self._sleep_until(self._live(script_time))
                started = time.monotonic()
                if isinstance(event, PacketEvent):
                    started = self.inject(event).time  # when it left: building it may have taken a while
                elif isinstance(event, SyscallEvent):
                    started = self._syscall(event, script_time)
                elif isinstance(event, CodeEvent):
                    self._assert_tcp_info(event)
                elif isinstance(event, StateEvent):
                    self._assert_state(event, script_time)
                elif isinstance(event, CommandEvent):
                    self._command(event)
                elif isinstance(event, LinkEvent):
                    self.topology_in_use.limit_link(event.rate, event.burst)
                if not (inbound and previous_inbound):
                    self._anchor(started, script_time)
                self.previous = script_time
                previous_inbound = inbound
                index += 1
            self._settle_blocking(before=None)
            self._note_trailing()
            self._sample_states()
        except Failure as failure:
            return failure
        return None

    # -- captured segments ---------------------------------------------------
    def _drain(self, timeout: float) -> None:
        """Read frames until none arrives for ``timeout``; queue the segments of the connection."""
        deadline = time.monotonic() + timeout
        while (frame := self.wire.receive(max(deadline - time.monotonic(), 0.0))) is not None:
            self._take(frame)

    def _take(self, frame: Frame) -> None:
        segment = parse_frame(frame.data)
        if segment is not None and self.sender_of(frame, segment) is not None:
            self.pending_segments.append((frame, segment))

    def _observed(self, segment: Segment, sender: str) -> Observed:
        end = self.ends[sender]
        return observe(segment, end.side, self.ends[end.peer].side, self.prefix(sender))

    def _record_step(self, frame: Frame, segment: Segment, sender: str, line: int | None = None,
                     mismatch: str = "") -> None:
        observed = self._observed(segment, sender)
        self.steps.append(Step(frame.time - self.t0, sender == self.left, observed.render(self.settings.absolute),
                               line, label=observed.label(self.settings.absolute), mismatch=mismatch))

    def _sample_states(self) -> None:
        """Give the segments since the last sample each endpoint's state after them.

        Sampled before the next event runs, so the kernel has processed what
        just crossed the wire; reports and ladders show the kernel's own word.
        """
        unsampled = [step for step in self.steps if not step.states]
        if not unsampled:
            return
        states = {name: self._state_of(end) for name, end in self.ends.items() if end.observer}
        for step in unsampled:
            step.states = states

    def _state_of(self, end: Endpoint) -> str:
        if not end.port:
            return "CLOSED"
        return end.observer.state(self.af, end.port, self.ends[end.peer].port)

    def _next_segment(self, until: float) -> tuple[Frame, Segment] | None:
        while not self.pending_segments:
            frame = self.wire.receive(until - time.monotonic())
            if frame is None:
                return None
            self._take(frame)
        return self.pending_segments.pop(0)

    def _learn(self, sender: str, event: PacketEvent, segment: Segment) -> None:
        end = self.ends[sender]
        if "S" in segment.flag_text and not end.port:
            end.port = segment.sport
        learn_numbers(end.side, event, segment)

    def _expect(self, events: list[Event], index: int, script_time: float) -> int:
        """Match the next captured segment to the ``>`` line at ``index``; return lines consumed."""
        event = events[index]
        timing = event.timing
        gap = script_time - self.previous
        high = script_time + (timing.high - timing.start if timing.high is not None else 0.0)
        tolerance = self._tolerance(gap)
        until = time.monotonic() + ANY_TIME_WAIT if timing.any_time else self._live(high) + tolerance
        received = self._next_segment(until)
        wanted = self.expected_sender(event)
        if received is None:
            raise self._failure(event, f"the {wanted} sent nothing; expected this segment by {high + tolerance:.3f} s")
        frame, segment = received
        sender = self.sender_of(frame, segment)
        event, problem = line_for(events, index, sender, wanted)
        if problem:
            self._record_step(frame, segment, sender, mismatch=f"expected the {wanted}'s segment")
            raise self._failure(event, problem, self._observed(segment, sender))
        self._learn(sender, event, segment)
        frames = [frame]
        actual = self._observed(segment, sender)
        consumed, diffs = match_lines(events, index, actual)
        if diffs and actual.length < event.length:
            frames, actual = self._aggregate(sender, frames, actual, event.length, until)
            consumed, diffs = match_lines(events, index, actual)
        arrived = self._script_time_at(frame.time)
        if diffs:
            self._record_step(frame, segment, sender, mismatch="; ".join(diffs))
            raise self._failure(event, f"the {sender}'s segment differs from the script", actual, diffs)
        if not timing.any_time and not (script_time - tolerance <= arrived <= high + tolerance):
            self._record_step(frame, segment, sender, mismatch="timing")
            window = f"{script_time:.3f}" + (f"~{high:.3f}" if high != script_time else "")
            raise self._failure(event, f"timing: the segment arrived at {arrived:.3f} s, expected at {window} s "
                                f"(tolerance {tolerance * 1000:.1f} ms)", actual)
        lines = events[index:index + consumed]
        comment = " + ".join(f"{self.script.path}:{e.line} {e.text}" for e in lines)
        for part in frames:
            self.comments[id(part)] = comment
            self._record_step(part, parse_frame(part.data), sender, line=event.line)
        self._sample_states()  # now, not at the next event: that may be seconds away
        if timing.any_time:
            script_time = arrived
        self._anchor(frames[-1].time, script_time)  # the next "+x" counts from this arrival
        self.previous = script_time
        return consumed

    def _aggregate(self, sender: str, frames: list[Frame], first: Observed, wanted: int,
                   until: float) -> tuple[list[Frame], Observed]:
        """Several segments in a row that together carry one line's payload (as packetdrill allows)."""
        total, last = first.length, first
        while total < wanted:
            received = self._next_segment(until)
            if received is None:
                break
            part = self._observed(received[1], sender)
            if (self.sender_of(*received) != sender or part.seq != (first.seq + total) % 2**32
                    or part.length == 0):
                self.pending_segments.insert(0, received)
                break
            frames.append(received[0])
            total += part.length
            last = part
        flags = canonical_flags(first.flags + last.flags)
        merged = Observed(first.prefix, flags, first.seq, (first.seq + total) % 2**32, total, last.ack,
                          last.window, first.options, first.live)
        return frames, merged

    def _note_trailing(self) -> None:
        """Segments no line read: shown, not failed (as in packetdrill)."""
        self._drain(0.0)
        for frame, segment in self.pending_segments:
            sender = self.sender_of(frame, segment)
            self._record_step(frame, segment, sender)
            self.notes.append(f"the {sender} also sent, after the script's last expected segment: "
                              + self.steps[-1].text)
        self.pending_segments.clear()

    # -- syscalls ----------------------------------------------------------
    def _app(self, event: Event) -> KernelApp:
        return self.ends[event.endpoint or "kernel"].app

    def _syscall(self, event: SyscallEvent, script_time: float) -> float:
        """Run the call; return when it really began (the next "+x" counts from there)."""
        # As packetdrill: a call waits (up to 1 s) for a blocking call of the
        # same application still in progress, so "accept() = 4" has made fd 4
        # before "read(4, ...)" runs. Two endpoints' applications run apart.
        for blocked, _, _, thread, _ in self.blocking:
            if blocked.endpoint == event.endpoint:
                thread.join(BLOCKING_WAIT)
        call = self._app(event).start(event)
        call.began.wait(BLOCKED_GRACE)
        began = call.began_at or time.monotonic()
        if event.timing.end is not None:
            end = self.previous + event.timing.end if event.timing.relative else event.timing.end
            self.blocking.append((event, script_time, end, call.thread, call.box))
            return began
        call.thread.join(self._tolerance(0.0) + BLOCKED_GRACE)
        if not call.box:
            raise self._failure(event, f"{event.name}() blocked; the script expects it to return at once "
                                "(write the time as start...end for a blocking call)")
        self._check_outcome(event, call.box[0])
        return began

    def _settle_blocking(self, before: float | None) -> None:
        """Check blocking calls whose end time lies before ``before`` (all when None).

        The return time is read on the script's clock as it stood when the
        call returned: what makes a call return (a segment the lab injects at
        its end time) happens on that clock, lateness of the lab included.
        """
        for item in list(self.blocking):
            event, start, end, thread, box = item
            tolerance = self._tolerance(end - start)
            if before is not None and end + tolerance >= before:
                continue  # what ends the call may still come (a segment within the tolerance of its end)
            self.blocking.remove(item)
            thread.join(max(self._live(end) + tolerance + BLOCKED_GRACE - time.monotonic(), 0.0))
            if not box:
                raise self._failure(event, f"{event.name}() was still blocked after its end time {end:.3f} s")
            returned = self._script_time_at(box[0].returned_at)
            if abs(returned - end) > tolerance:
                raise self._failure(event, f"timing: {event.name}() returned at {returned:.3f} s, expected at "
                                    f"{end:.3f} s (tolerance {tolerance * 1000:.1f} ms)")
            self._check_outcome(event, box[0])

    def _check_outcome(self, event: SyscallEvent, outcome) -> None:
        if outcome.bad_input is not None:
            raise outcome.bad_input
        expected = "..." if event.result is ELLIPSIS else str(event.result)
        if event.errno:
            expected += f" {event.errno}"
        actual = str(outcome.result) + (f" {outcome.errno}" if outcome.errno else "")
        result_ok = event.result is ELLIPSIS or event.result == outcome.result
        # As packetdrill: the errno is compared only where the script names one.
        errno_ok = event.errno is None or event.result is ELLIPSIS or event.errno == outcome.errno
        if not (result_ok and errno_ok):
            field_name = "errno" if result_ok else "return value"
            raise self._failure(event, f"{event.name}() returned {actual}, expected {expected}",
                                fields=[f"{field_name}: expected {expected}, got {actual}"])
        if outcome.detail:
            raise self._failure(event, f"{event.name}(): {outcome.detail}", fields=[outcome.detail])

    # -- assertions and commands -------------------------------------------
    def _assert_tcp_info(self, event: CodeEvent) -> None:
        sock = self._app(event).last_connection
        if sock is None:
            raise self._failure(event, "no connected socket to read tcp_info from (accept or connect first)")
        statements = tcpinfo.check_code(event.code, f"{self.script.path}:{event.line}")
        problem = tcpinfo.failed_assertion(statements, tcpinfo.tcp_info(sock))
        if problem:
            raise self._failure(event, problem, fields=[problem])

    def _assert_state(self, event: StateEvent, script_time: float) -> None:
        end = self.ends[event.endpoint or "kernel"]
        local = event.port if event.port is not None else end.port
        remote = 0 if event.port is not None else self.ends[end.peer].port
        # "*": the state must come eventually; otherwise within the line's tolerance.
        patience = ANY_TIME_WAIT if event.timing.any_time else self._tolerance(script_time - self.previous)
        deadline = time.monotonic() + patience
        while True:
            info = end.observer.connection(self.af, local, remote) if local else None
            problem = self._state_problem(event, info)
            if problem is None:
                return
            if time.monotonic() >= deadline:
                raise self._failure(event, problem, fields=[problem])
            time.sleep(0.0005)

    @staticmethod
    def _state_problem(event: StateEvent, info) -> str | None:
        state = info.state if info else "CLOSED"
        if state != event.state:
            return f"state: expected {event.state}, the kernel reports {state}"
        if event.timer is None or info is None:
            return None
        timer = info.timer or "none"
        if timer != event.timer:
            return f"timer: expected {event.timer}, the kernel reports {timer}"
        left = info.expires_ms / 1000
        if event.left_low is not None and not (event.left_low <= left <= event.left_high):
            return f"timer: {left:.3f} s left, expected {event.left_low:g}~{event.left_high:g} s"
        return None

    def _command(self, event: CommandEvent) -> None:
        where = f"{self.script.path}:{event.line}"
        topology = self.topology_in_use
        if event.sysctls:
            for key, value in event.sysctls:
                for ns in self.sysctl_namespaces(topology):
                    try:
                        write_sysctl(ns, key, value)
                    except SysctlError as error:
                        raise BadInput(f"{where}: {error}") from None
            return
        folder = os.path.dirname(os.path.abspath(self.script.path))
        # packetdrill tells its shell lines its pid (set_sysctls.py names a restore file after it).
        environment = {**os.environ, "PACKETDRILL_PID": str(os.getpid())}
        with inside(topology.kernel_ns):
            done = subprocess.run(["/bin/sh", "-c", event.command], cwd=folder, capture_output=True, text=True,
                                  env=environment)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise self._failure(event, f"command exited with status {done.returncode}: {last}")

    # -- reports and capture -------------------------------------------------
    def _recent(self) -> list[str]:
        return [f"{step.time:8.4f}  {step.text}" for step in self.steps[-RECENT:]]

    def _failure(self, event: Event, message: str, actual: Observed | None = None,
                 fields: list[str] | None = None) -> Failure:
        recent = self._recent()
        if actual is not None and recent:
            recent = recent[:-1]  # the actual segment is shown on its own line
        return Failure(event.line, message, expected=event.text,
                       actual=actual.render(self.settings.absolute) if actual else "",
                       fields=fields or [], recent=recent)

    def _write_capture(self, keep_temporary: bool) -> str | None:
        """Write the capture where --pcap says; without it, to a temporary file kept only for a failure."""
        path = self.settings.pcap
        if path is None:
            if not keep_temporary:
                return None
            handle, path = tempfile.mkstemp(prefix="tcplab-", suffix=f"-ipv{self.family}.pcapng")
            os.close(handle)
        write_pcapng(path, self.recorded_frames(), self.comments)
        return path

    def recorded_frames(self) -> list[Frame]:
        """The frames the capture keeps: all of them (observe mode on loopback keeps one copy of each)."""
        return self.wire.frames


def run_script(script: Script, family: int, settings: Settings) -> RunResult:
    """Run ``script`` in the mode it is written for."""
    if script.observe:
        from .observe_mode import ObserveRun

        return ObserveRun(script, family, settings).execute()
    from .drive import DriveRun

    return DriveRun(script, family, settings).execute()
