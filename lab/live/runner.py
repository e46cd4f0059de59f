"""Run one parsed script in a fresh topology, one address family, and verify it.

A ``Run`` walks the script's events: segment lines go to the matcher
(lab/judge/matcher.py, the same one offline checks use), the lab's own
segments are injected by the mode's port (drive or observe, chosen once in
``run_script``) and judged like any other, and each other kind of event
(syscall, command, link, loss, state, tcp_info) has a handler here. Every
moment is judged by the one timing rule (lab/judge/timing.py): the next
``+x`` counts from when the previous event really happened, and an action
of the lab begun outside its window ends the run as ``lab-late``, the lab's
fault, never the kernel's.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import platform
import socket
import subprocess
import time
from contextlib import closing

from lab.tcp.packets import preload_scapy
from lab.script.events import (
    ELLIPSIS,
    CodeEvent,
    CommandEvent,
    Event,
    IcmpEvent,
    LinkEvent,
    LossEvent,
    PacketEvent,
    Script,
    StateEvent,
    SyscallEvent,
)
from lab.tcp.states import CLOSED, NO_TIMER
from netns import SysctlError, inside

from lab.live import states
from lab.judge import tcpinfo
from lab.judge.code import Interpreter, check_block, code_names
from lab.live.drive import DrivePort
from lab.live.kept import topology_for_run
from lab.live.port_lease import leased_ports
from lab.live.loss import RunLosses
from lab.judge.matcher import ANY_TIME_WAIT, LAB, Clock, Matcher, moves_clock
from lab.judge.timing import tolerance, window
from lab.live.observe_mode import ObservePort
from lab.live.ports import EndpointSides, Port
from lab.live.preflight import preflight
from lab.live.punctual import Pacing, let_other_cpus_settle, punctual, tick_grid, timeline_start, wait_until
from lab.live.recorder import write_pcapng
from lab.script.settings import Settings, ignored_options
from lab.script.values import same_errno
from lab.live.sources import LiveSource
from lab.judge.trace import CONTENT, LAB_LATE, TIMING, Action, Failure, KernelEvent, PendingTimer, RunResult, StateChange
from lab.live.tracepoints import KernelTrace, prepare_in_background
from lab.judge.verify import needs_scapy

BLOCKING_WAIT = 1.0  # seconds a syscall waits for a blocking one in progress
BLOCKED_GRACE = 0.25  # extra seconds before a call that should return at once counts as blocked
SAMPLE_SLACK = 0.002  # seconds: sample states only when the next action of the lab is further away


class Run:
    """One script, one family, one port: the loop, and the handlers of events that are not segments."""

    def __init__(self, script: Script, family: int, settings: Settings, port: Port):
        self.script, self.family, self.port = script, family, port
        self.settings = settings
        self.pacing = Pacing.for_batch(settings.crowded)  # chosen once: the batch says whether it is crowded
        self.notes = ignored_options(script)
        self.code = Interpreter()  # the run's %{ }% names, from one block to the next
        self.code_names = code_names(script)
        self.af = socket.AF_INET6 if family == 6 else socket.AF_INET
        self.blocking: list[tuple] = []  # (event, start and end in script time, running call, action)
        self.actions: list[Action] = []
        self.restartable = False  # whether the latest action, begun late, may move time 0 (_restartable)
        self.zero: float | None = None  # the moment script time 0 began
        self.anchored: list[tuple[int, float]] = []  # (line, moment) of actions other than segments: the timeline
        self.samples: list[tuple[float, dict]] = []  # (moment, endpoint -> SocketInfo or None): sock_diag's word
        self.state_changes: list[StateChange] = []
        self.kernel_events: list[KernelEvent] = []
        self.state_source = ""
        self.sysctls: list[tuple[str, str]] = []
        self.timers: list[PendingTimer] = []
        self.handlers = {SyscallEvent: self._syscall, CommandEvent: self._command, LinkEvent: self._link,
                         LossEvent: self._loss, StateEvent: self._assert_state, CodeEvent: self._run_code}

    # -- entry ---------------------------------------------------------------
    def execute(self) -> RunResult:
        preflight(self.script, self.settings)
        if self.pacing.quiet_start:
            tick_grid()  # once per process, before any real-time timeline (lab/live/punctual.py)
        started = time.monotonic()
        failure = None
        self.matcher = None
        kernel_trace = KernelTrace()
        prepare_in_background()  # the trace instance, made while the topology is built
        with closing(kernel_trace), leased_ports() as ports, \
                topology_for_run(self.port.topology(), self._leaves_only_what_resets_undo) as topology:
            self.topology = topology
            wire = self.port.setup(topology, ports)
            try:
                kernel_trace.start(self.port.trace_ports())
                if needs_scapy(self.script.events):
                    preload_scapy()  # ICMP or options only Scapy handles: ~0.3 s, not inside the timeline
                if any(isinstance(event, LinkEvent) for event in self.script.events):
                    importlib.import_module("netns.shaping")  # tc through pyroute2: ~0.1 s, not at the link line
                self.port.prepare(wire)
                ends = self.port.ends
                self.ends = ends
                self.source = LiveSource(wire, self.port, ends)
                self.clock = Clock(None)
                self.matcher = Matcher(self.script, self.settings, EndpointSides(ends),
                                       {name: self.port.prefix(name) for name in ends},
                                       {name: end.peer for name, end in ends.items()}, self.port.left, self.clock,
                                       self.port.on_match)
                self.losses = RunLosses(self.script)
                try:
                    with punctual(one_cpu=self.pacing.one_cpu) as realtime:
                        self.realtime = realtime
                        if not realtime:
                            self.notes.append("the timeline ran without real-time scheduling (not permitted here); "
                                              "on a busy machine the lab may be late: such runs end as lab-late")
                        try:
                            failure = self._play()
                        finally:
                            # Closed while still real-time: the closing thread inherits the class. A thread
                            # of a lower class that takes the GIL and is preempted would stall the next
                            # run's timeline in this process.
                            wire.close()
                finally:
                    self.notes.extend(self.losses.settle(self.port.recorded_frames(wire), self.matcher.comments,
                                                         self.matcher.frame_steps))
                self._attach_states(kernel_trace)
                self.notes.extend(f"print() at {printed}" for printed in self.code.printed)
            finally:
                wire.close()
                for end in self.port.ends.values():
                    end.close()
        pcap = self._write_capture(wire, keep_temporary=failure is not None)
        right = [name for name in self.port.ends if name != self.port.left][0]
        return RunResult(self.script.path, self.family, failure, pcap, time.monotonic() - started,
                         self.matcher.steps, self.notes, self.port.left, right, actions=self.actions,
                         state_changes=self.state_changes, kernel_events=self.kernel_events,
                         state_source=self.state_source, sysctls=self.sysctls, timers=self.timers)

    def _play(self) -> Failure | None:
        events = list(self.script.events)  # may be reordered (either_order), the script never
        index = 0
        try:
            while index < len(events) and isinstance(events[index], CommandEvent) and events[index].init:
                self._command(events[index], 0.0)  # packetdrill's init command: before the timeline
                index += 1
        except Failure as failure:
            self._start_timeline()  # no event ran: the report and the states still count from a time 0
            return failure
        self._start_timeline()
        try:
            while index < len(events):
                event = events[index]
                script_time = self.clock.scheduled(event)
                self._settle_blocking(before=script_time)
                if isinstance(event, IcmpEvent):
                    self._inject_icmp(event, script_time)
                    index += 1
                    continue
                if isinstance(event, PacketEvent):
                    if event.inbound:
                        self._inject(event, script_time)
                    index += self.matcher.expect(events, index, self.source)
                    self._sample_states_if_slack(events, index)
                    continue
                due = self.clock.when(script_time)
                self._sample_states_if_slack(events, index)
                wait_until(self.clock.pace(script_time, self._catch_up()), self.realtime)
                self.restartable = self._restartable()
                moments = self.handlers[type(event)](event, script_time)
                if moves_clock(event):
                    self._judge_action(event, script_time, due, *moments)
                self.clock.previous = script_time
                index += 1
            self._settle_blocking(before=None)
            self.notes.extend(self.matcher.trailing(self.source.rest()))
            self._sample_states()
        except Failure as failure:
            return failure
        return None

    def _start_timeline(self) -> None:
        """Script time 0, just after a kernel tick, once the other CPUs have stopped ticking (lab/live/punctual.py
        says why)."""
        for end in self.ends.values():
            if end.app:
                end.app.warm_up()
        if self.pacing.quiet_start:
            let_other_cpus_settle()
        self.zero = timeline_start(on_tick=self.pacing.quiet_start)
        self.clock.anchor(self.zero, 0.0)
        for end in self.ends.values():
            if end.app:  # kernel timestamps (SO_TIMESTAMPING) are read on the script's clock
                end.app.clock_started(self.clock.at, self.settings, self.source.wire.realtime_offset)

    # -- the lab's own punctuality --------------------------------------------
    def _catch_up(self) -> float:
        """How much of its lag the lab may take back at one wait: half the tolerance floor, so that what it
        does stays well within the tolerance of the previous event as it happened; none where the pacing
        keeps no phase."""
        return self.settings.tolerance_usecs / 2e6 if self.pacing.takes_back_lag else 0.0

    def _inject(self, event: PacketEvent, script_time: float) -> None:
        due = self.clock.when(script_time)
        wait_until(self.clock.pace(script_time, self._catch_up()), self.realtime)
        self.restartable = self._restartable()
        seen = self.port.inject(event)
        due = self._restart_before_any_segment(seen.time, script_time, due)
        self.clock.acted(seen.time, script_time)  # the matcher judges the segment and anchors the clock on it
        self.actions.append(Action(event.line, "inject", "lab", script_time, round((seen.time - due) * 1000, 3)))
        self.source.push_back(seen)  # judged by the matcher like the kernel's segments

    def _inject_icmp(self, event: IcmpEvent, script_time: float) -> None:
        """An ICMP error is no TCP segment: it is an action of the lab, timed like one."""
        due = self.clock.when(script_time)
        wait_until(self.clock.pace(script_time, self._catch_up()), self.realtime)
        self.restartable = self._restartable()
        frame = self.port.inject_icmp(event)
        self.matcher.comments[id(frame)] = f"{self.script.path}:{event.line} {event.text}"
        self.actions.append(Action(event.line, "inject icmp", LAB, script_time, 0.0))
        self._judge_action(event, script_time, due, frame.time, frame.time)
        self.clock.previous = script_time

    def _restartable(self) -> bool:
        """Whether the action about to begin may move time 0 if it begins late: in a crowded batch, while no
        segment of the run has crossed the link and no call is blocked in the kernel. Asked just before the
        action (a few microseconds, and only until the first segment), so that an action whose own segment
        starts the kernel's timers (connect(), an injected SYN) still counts."""
        return (self.pacing.restarts_before_segments and not self.matcher.steps and not self.blocking
                and self.source.silent())

    def _restart_before_any_segment(self, began: float, script_time: float, due: float) -> float:
        """In a crowded batch, an action begun late before any segment crossed the link moves time 0 with
        it; returns the action's moment (``due``, or the one it has now).

        Until the first segment the kernel has no TCP timer of the run's running (no connection exists),
        so nothing of the kernel's counts from the old time 0; and a crowded batch's timeline does not
        start on a kernel tick (lab/live/punctual.py), so no phase is lost. The setup lines at time 0
        are where a crowded batch's other workers most often take the CPU (docs/timing.md). An uncrowded
        timeline keeps its tick-aligned time 0.
        """
        if not self.restartable or window(self.settings, script_time, self.clock.previous).holds(script_time + began - due):
            return due
        self.zero = began - script_time
        self.clock.restart(self.zero)
        self.anchored.clear()  # the capture's timeline record starts again too (lab/capture/check.py)
        return began

    def _judge_action(self, event: Event, script_time: float, due: float, began: float, counts_from: float) -> None:
        """Note how late the action began after ``due``, its script time counted from the previous event as it
        happened (negative where the lab took back some of its lag); beyond tolerance: lab-late. The clock
        counts from ``counts_from``: a syscall's start (packetdrill's rule), a command's or link line's end."""
        due = self._restart_before_any_segment(began, script_time, due)
        late = began - due
        self.clock.acted(began, script_time)
        action = self.actions[-1] if self.actions and self.actions[-1].line == event.line else None
        if action is None:
            action = Action(event.line, type(event).__name__.removesuffix("Event").lower(),
                            event.endpoint or "kernel", script_time, 0.0)
            self.actions.append(action)
        action.late_ms = round(late * 1000, 3)
        action.time = self.clock.elapsed(began)
        on_time = window(self.settings, script_time, self.clock.previous)
        if not on_time.holds(script_time + late):
            raise Failure(event.line, f"the lab began this line at {self.clock.at(began):.4f} s, {late * 1000:.1f} ms "
                          f"after its script time {script_time:.3f} s (tolerance {on_time.allowed * 1000:.1f} ms)",
                          LAB_LATE, expected=event.text)
        self.clock.anchor(counts_from, script_time)
        self.anchored.append((event.line, counts_from))

    # -- states ----------------------------------------------------------------
    def _sample_states_if_slack(self, events: list[Event], index: int) -> None:
        """Sample states only when the lab's next action is not due within SAMPLE_SLACK.

        Reading sock_diag takes a few tenths of a millisecond; a ``+0 <``
        after a kernel segment must not wait for it, nor for a sample taken
        while that segment waits in the queue. Steps sampled later show the
        state at that later moment.
        """
        script_time = self.clock.previous
        for event in events[index:]:
            script_time = self.clock.scheduled_after(event, script_time)
            if isinstance(event, (StateEvent, CodeEvent)) or (isinstance(event, PacketEvent) and not event.inbound):
                continue
            if self.clock.when(script_time) - time.monotonic() < SAMPLE_SLACK:
                return
            break
        self._sample_states()

    def _sample_states(self) -> None:
        """Give the segments since the last sample each endpoint's state after them (the kernel's word)."""
        names = [name for name, end in self.ends.items() if end.observer]
        unsampled = [step for step in self.matcher.steps if len(step.states) < len(names)]
        if not unsampled:
            return
        infos = {name: self._connection_of(name) for name in names}
        states = {name: info.state if info else CLOSED for name, info in infos.items()}
        self._record_sample(infos)
        for step in unsampled:
            step.states = {**states, **step.states}

    def _note_state(self, name: str, info) -> None:
        """A state line's observation is the endpoint's state after the segments not yet sampled."""
        state = info.state if info else CLOSED
        self._record_sample({name: info})
        for step in reversed(self.matcher.steps):
            if name in step.states:
                break
            step.states[name] = state

    def _attach_states(self, kernel_trace: KernelTrace) -> None:
        """After the timeline: the kernel's trace events and the samples become the run's state changes."""
        names = [name for name, end in self.ends.items() if end.observer]
        self._record_sample({name: self._connection_of(name) for name in names})  # how it ended
        events, unclaimed = kernel_trace.read()
        self.state_source = "sampled" if kernel_trace.unavailable else "tracepoint"
        if kernel_trace.unavailable:
            self.notes.append(f"states sampled with sock_diag, not traced ({kernel_trace.unavailable})")
        elapsed = self.clock.elapsed
        samples = [(elapsed(moment), infos) for moment, infos in self.samples]
        sampled_states = [(when, {name: info.state if info else CLOSED for name, info in infos.items()})
                          for when, infos in samples]
        steps = self.matcher.steps
        owner = self.port.state_owner
        self.state_changes = states.merge(events, sampled_states, steps, owner, elapsed)
        real = {name for name, end in self.ends.items() if end.app}
        self.kernel_events = states.kernel_events(events, unclaimed, steps, owner, elapsed, real)
        self.timers = states.pending_timers(samples)

    def _record_sample(self, infos: dict) -> None:
        """Keep what sock_diag said (a list append: this runs inside the timeline)."""
        self.samples.append((time.monotonic(), infos))

    def _connection_of(self, name: str):
        """The endpoint's connection as sock_diag reports it; None when CLOSED."""
        end = self.ends[name]
        if not end.port:
            return None
        peer = self.ends[end.peer]
        return end.observer.connection(self.af, end.port, peer.port, (end.address, peer.address))

    # -- syscalls ----------------------------------------------------------------
    def _app(self, event: Event):
        return self.ends[event.endpoint or "kernel"].app

    def _syscall(self, event: SyscallEvent, script_time: float) -> tuple[float, float]:
        """Run the call; return when it really began, twice: the next "+x" counts from there too."""
        # As packetdrill: a call waits (up to 1 s) for a blocking call of the
        # same application still in progress, so "accept() = 4" has made fd 4
        # before "read(4, ...)" runs. Two endpoints' applications run apart.
        for item in list(self.blocking):
            blocked, _, _, running, _ = item
            if blocked.endpoint == event.endpoint:
                running.join(BLOCKING_WAIT)
                if running.box:
                    self._settle(item)  # judged now: its return comes before the call that waited for it
        app = self._app(event)
        call = app.start(event, at_once=event.timing.end is None and app.cannot_block(event))
        call.began.wait(BLOCKED_GRACE)
        began = call.began_at or time.monotonic()
        self.actions.append(Action(event.line, f"syscall {event.name}", event.endpoint or "kernel", script_time, 0.0))
        if event.timing.end is not None:
            end = self.clock.previous + event.timing.end if event.timing.relative else event.timing.end
            self.blocking.append((event, script_time, end, call, self.actions[-1]))
            return began, began
        call.join(tolerance(self.settings, 0.0) + BLOCKED_GRACE)
        if not call.box:
            raise self._failure(event, TIMING, f"{event.name}() blocked; the script expects it to return at once "
                                "(write the time as start...end for a blocking call)")
        self._check_outcome(event, call.box[0], self.actions[-1])
        return began, began

    def _settle_blocking(self, before: float | None) -> None:
        """Check blocking calls whose end time lies before ``before`` (all when None).

        The return time is read on the script's clock as it stood when the
        call returned: what makes a call return (a segment the lab injects at
        its end time) happens on that clock.
        """
        for item in list(self.blocking):
            event, start, end, _, _ = item
            if before is None or window(self.settings, end, since=start).latest < before:
                self._settle(item)  # otherwise what ends the call may still come (within the tolerance of its end)

    def _settle(self, item: tuple) -> None:
        """Judge one blocking call's return: its time, then its outcome."""
        event, start, end, running, action = item
        box = running.box
        on_time = window(self.settings, end, since=start)
        allowed = on_time.allowed
        self.blocking.remove(item)
        running.join(max(self.clock.when(on_time.latest) + BLOCKED_GRACE - time.monotonic(), 0.0))
        if not box:
            raise self._failure(event, TIMING, f"{event.name}() was still blocked after its end time {end:.3f} s")
        returned = self.clock.at(box[0].returned_at)
        if not on_time.holds(returned) and on_time.holds(returned - box[0].waited):
            raise self._failure(event, LAB_LATE, f"the lab noted {event.name}() returning at {returned:.4f} s, "
                                f"{(returned - end) * 1000:.1f} ms after {end:.3f} s, but its thread spent "
                                f"{box[0].waited * 1000:.1f} ms of that waiting for a CPU (tolerance "
                                f"{allowed * 1000:.1f} ms)")
        if not on_time.holds(returned):
            raise self._failure(event, TIMING, f"timing: {event.name}() returned at {returned:.3f} s, expected "
                                f"at {end:.3f} s (tolerance {allowed * 1000:.1f} ms)")
        self._check_outcome(event, box[0], action)

    def _check_outcome(self, event: SyscallEvent, outcome, action: Action) -> None:
        if outcome.bad_input is not None:
            raise outcome.bad_input
        expected = "..." if event.result is ELLIPSIS else str(event.result)
        if event.errno:
            expected += f" {event.errno}"
        actual = str(outcome.result) + (f" {outcome.errno}" if outcome.errno else "")
        action.result = actual
        result_ok = event.result is ELLIPSIS or event.result == outcome.result
        # As packetdrill: the errno is compared only where the script names one.
        errno_ok = event.errno is None or event.result is ELLIPSIS or same_errno(event.errno, outcome.errno)
        if not (result_ok and errno_ok):
            field_name = "errno" if result_ok else "return value"
            raise self._failure(event, CONTENT, f"{event.name}() returned {actual}, expected {expected}",
                                fields=[f"{field_name}: expected {expected}, got {actual}"])
        if outcome.detail:
            raise self._failure(event, CONTENT, f"{event.name}(): {outcome.detail}", fields=[outcome.detail])

    # -- observations -----------------------------------------------------------
    def _run_code(self, event: CodeEvent, script_time: float) -> None:
        """A %{ }% block, at its line: with the tcp_info of the endpoint's connected socket when it reads it."""
        block = check_block(event.code, f"{self.script.path}:{event.line}", self.code_names)
        values = {}
        if block.reads_socket:
            self.port.await_taken_in(self.clock.when(window(self.settings, script_time, self.clock.previous).latest))
            sock = self._app(event).last_connection
            if sock is None:
                raise self._failure(event, CONTENT, "no connected socket to read tcp_info from (accept or connect "
                                                    "first)")
            values = tcpinfo.tcp_info(sock)
        problem = self.code.run(block, values, event.line)
        if problem:
            raise self._failure(event, CONTENT, problem, fields=[problem])

    def _assert_state(self, event: StateEvent, script_time: float) -> None:
        """Look the endpoint's socket up (one sock_diag lookup, found or not: lab/live/observer.py).

        A state not there yet is looked for again until the line's tolerance,
        counted from its script time, runs out; the moment it is first seen
        then anchors the clock, as a kernel segment's arrival does, so the next
        ``+x`` counts from the kernel's change and not from the lab's wait. A
        line the lab came to beyond its tolerance and found in another state is
        lab-late: the state may have moved on while the lab was away.
        """
        end = self.ends[event.endpoint or "kernel"]
        local = event.port if event.port is not None else end.port
        peer = self.ends[end.peer]
        if event.port is not None:  # "state LISTEN port 8080": the listener
            remote, addresses = 0, (end.address, None)
        else:
            remote, addresses = peer.port, (end.address, peer.address)
        due = self.clock.when(script_time)
        looked = time.monotonic()
        if event.timing.any_time:  # "*": the state must come eventually
            deadline = looked + ANY_TIME_WAIT
        else:
            deadline = self.clock.when(window(self.settings, script_time, self.clock.previous).latest)
        first = True
        while True:
            info = end.observer.connection(self.af, local, remote, addresses) if local else None
            problem = _state_problem(event, info)
            if problem is None:
                if event.port is None:
                    self._note_state(end.name, info)
                if not first:
                    self.clock.anchor(looked, script_time)
                    self.anchored.append((event.line, looked))  # an offline check anchors there too
                return
            if first and looked > deadline:
                raise self._failure(event, LAB_LATE, f"the lab looked at this state at {self.clock.at(looked):.4f} s, "
                                    f"{(looked - due) * 1000:.1f} ms after its script time {script_time:.3f} s: "
                                    f"{problem} (it may have changed while the lab was late)")
            if looked >= deadline:
                raise self._failure(event, CONTENT, problem, fields=[problem])
            time.sleep(0.0005)
            first, looked = False, time.monotonic()

    def _leaves_only_what_resets_undo(self) -> bool:
        """Whether this run changed nothing in its topology that Topology.reset does not put back, so that
        a batch may keep it for its next run (lab/live/kept.py): no shell line, no shaped or lossy link, no
        ICMP error (a route's cached MTU), nothing the port itself set up for this script alone."""
        lasting = (LinkEvent, LossEvent, IcmpEvent)  # what they change outlives the run in the topology
        return self.port.topology_reusable() and not any(
            isinstance(event, lasting) or (isinstance(event, CommandEvent) and not event.sysctls)
            for event in self.script.events)

    # -- commands and the link ----------------------------------------------------
    def _command(self, event: CommandEvent, script_time: float) -> tuple[float, float]:
        """Run a sysctl or shell line; return when it began and when it was done."""
        began = time.monotonic()
        if event.sysctls:
            self.sysctls.extend(event.sysctls)
            for key, value in event.sysctls:
                for ns in self.port.sysctl_namespaces(self.topology):
                    try:
                        self.topology.set_sysctl(key, value, ns)
                    except SysctlError as error:  # this kernel has no such setting, or refuses the value: a
                        # difference between releases (tcp_tw_reuse_delay came in 6.13), judged as the run's
                        raise self._failure(event, CONTENT, f"{error} (Linux {platform.release()})") from None
            return began, time.monotonic()
        folder = os.path.dirname(os.path.abspath(self.script.path))
        # packetdrill tells its shell lines its pid (set_sysctls.py names a restore file after it).
        environment = {**os.environ, "PACKETDRILL_PID": str(os.getpid())}
        with inside(self.topology.kernel_ns):
            done = subprocess.run(["/bin/sh", "-c", event.command], cwd=folder, capture_output=True, text=True,
                                  env=environment)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise self._failure(event, CONTENT, f"command exited with status {done.returncode}: {last}")
        self.port.after_command()
        return began, time.monotonic()

    def _loss(self, event: LossEvent, script_time: float) -> tuple[float, float]:
        """From now on the link loses or holds back what the line describes (a rule in the receiver's namespace)."""
        from pyroute2 import NetlinkError

        from netns.kernel_modules import LOSS_MODULES

        began = time.monotonic()
        try:
            self.losses.install(event, self.ends[self.ends[event.sender].peer].app.ns)
        except NetlinkError as error:  # a kernel built without what the rule uses: that run fails, not the batch
            raise self._failure(event, CONTENT, f"the kernel refused the link rule ({os.strerror(error.code)}): it "
                                f"needs the modules {', '.join(LOSS_MODULES)} (Linux {platform.release()})") from None
        return began, time.monotonic()

    def _link(self, event: LinkEvent, script_time: float) -> tuple[float, float]:
        began = time.monotonic()
        self.topology.limit_link(event.rate, event.burst)
        return began, time.monotonic()

    # -- reports and capture -------------------------------------------------------
    def _failure(self, event: Event, kind: str, message: str, fields: list[str] | None = None) -> Failure:
        return self.matcher.failure(event, kind, message, fields=fields)

    def _write_capture(self, wire, keep_temporary: bool) -> str | None:
        """Write the capture where --pcap says; without it, to a temporary file kept only for a failure."""
        path = self.settings.pcap
        if path is None:
            if not keep_temporary:
                return None
            import tempfile  # a failing run's capture, without --pcap: most runs never load it

            handle, path = tempfile.mkstemp(prefix="tcplab-", suffix=f"-ipv{self.family}.pcapng")
            os.close(handle)
        write_pcapng(path, self.port.recorded_frames(wire), self.matcher.comments if self.matcher else {},
                     wire.realtime_offset, self.zero, self.anchored)
        return path


def _state_problem(event: StateEvent, info) -> str | None:
    state = info.state if info else CLOSED
    if state != event.state:
        return f"state: expected {event.state}, the kernel reports {state}"
    if event.timer is None or info is None:
        return None
    timer = info.timer or NO_TIMER
    if timer != event.timer:
        return f"timer: expected {event.timer}, the kernel reports {timer}"
    left = info.expires_ms / 1000
    if event.left_low is not None and not (event.left_low <= left <= event.left_high):
        return f"timer: {left:.3f} s left, expected {event.left_low:g}~{event.left_high:g} s"
    return None


PORTS = {False: DrivePort, True: ObservePort}  # keyed by Script.observe


def run_script(script: Script, family: int, settings: Settings) -> RunResult:
    """Run ``script`` with the port of the mode it is written for; its options resolved once, first."""
    settings = settings.for_script(script)
    port = PORTS[script.observe](script, family, settings)
    result = Run(script, family, settings, port).execute()
    if settings.slow:
        result = dataclasses.replace(result, notes=(*result.notes, slow_machine_note(result, settings)))
    return result


def slow_machine_note(result: RunResult, settings: Settings) -> str:
    """What --slow did not judge: the segments outside the script's own tolerance, the farthest named."""
    own = settings.option("script_tolerance_usecs") / 1000
    off = [(abs(step.late_ms), step.late_ms, step.line) for step in result.steps
           if step.late_ms is not None and abs(step.late_ms) > own]
    head = (f"slow machine (--slow): timing judged to {settings.tolerance_usecs / 1000:g} ms, content in full; "
            f"the script's own tolerance is {own:g} ms")
    if not off:
        return head + ", and every segment kept to it"
    _, worst, line = max(off)
    return head + f": {len(off)} segments strayed beyond it, the farthest {worst:+.1f} ms at line {line}"
