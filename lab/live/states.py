"""Each endpoint's state changes, from the tracepoints where there are any, from sock_diag samples otherwise.

Where each state change of ``RunResult.state_changes`` comes from (its
``source``):

- ``tracepoint``: ``sock:inet_sock_set_state``, the kernel's own record of a
  full socket changing state, with its time (microseconds, CLOCK_MONOTONIC).
- ``capture``: a listener's request sock (sock_diag's SYN_RECV) is not
  traced; the tracepoint shows the child's LISTEN -> SYN_RECV only when the
  handshake's ACK creates it. The change is put where the request sock was
  really made: at the arrival of the SYN the endpoint received last before it
  (the capture's time for that SYN). Likewise an orphan's FIN_WAIT2 minisock
  becoming TIME_WAIT (seen by a sample) is put at the peer's FIN that the
  capture shows arriving since the sample before (when tracing, which tells
  the minisock apart).
- ``tracepoint+sock_diag``: a full socket entering TIME_WAIT is traced as
  FIN_WAIT2 -> CLOSE (or CLOSING -> CLOSE): it is replaced by a timewait
  minisock, which the tracepoint does not see. Where the first sock_diag
  sample after it finds the connection in TIME_WAIT, the change is shown as
  -> TIME_WAIT at the traced moment; where the sample finds it still in
  FIN_WAIT2 (an orphan's FIN_WAIT2 minisock), the traced close is dropped.
- ``sampled``: what only sock_diag sees (a minisock's end, TIME_WAIT ->
  CLOSED; a request sock never completed), or everything when no tracepoint
  could be read (rootless): the state sock_diag reported, at the moment of
  the sample that first saw it. The change happened at or before that moment.

Pure logic: the runner hands in the selected trace events, the samples and
the steps (tests/unit/test_states.py feeds hand-written ones).
"""

from __future__ import annotations

from collections.abc import Callable

from lab.tcp.states import CLOSED

from lab.judge.trace import KernelEvent, PendingTimer, StateChange, Step
from lab.live.tracepoints import NO_SOCKET_WINDOW, TraceEvent, reason_text, state_name

TIME_WAIT_ENTRY = ("FIN_WAIT2", "CLOSING")  # traced "-> CLOSE" from these may be a minisock taking over
ONLY_SAMPLED = ("TIME_WAIT", "SYN_RECV")  # states the tracepoint cannot show (minisock, request sock)

Sample = tuple[float, dict[str, str]]  # (script time, endpoint -> sock_diag state)


def traced_changes(events: list[TraceEvent], owner: Callable[[int], str],
                   elapsed: Callable[[float], float]) -> list[StateChange]:
    """``inet_sock_set_state`` events as state changes; a portless first change gets its socket's port."""
    port_of = {}
    for event in events:
        if event.name == "inet_sock_set_state" and event.ports[0]:
            port_of.setdefault(event.get("skaddr"), event.ports[0])
    changes = []
    for event in events:
        if event.name != "inet_sock_set_state":
            continue
        old, new = state_name(event.get("oldstate")), state_name(event.get("newstate"))
        port = event.ports[0] or port_of.get(event.get("skaddr"), 0)
        if old != new:
            changes.append(StateChange(elapsed(event.time), owner(port), old, new, "tracepoint", port))
    return changes


def _request_socks(changes: list[StateChange], steps: list[Step]) -> None:
    """Move each LISTEN -> SYN_RECV to the arrival of the SYN that made its request sock."""
    for change in changes:
        if (change.old, change.new) != ("LISTEN", "SYN_RECV"):
            continue
        syns = [step for step in steps if step.sender != change.endpoint and "S" in step.flags
                and "." not in step.flags and step.time <= change.time]
        if syns:
            change.time, change.source = syns[-1].time, "capture"


def _first_sample_after(samples: list[Sample], endpoint: str, moment: float) -> str | None:
    return next((states[endpoint] for when, states in samples if when >= moment and endpoint in states), None)


def _time_wait(changes: list[StateChange], samples: list[Sample]) -> tuple[list[StateChange], set]:
    """Traced closes that a minisock took over: -> TIME_WAIT, or dropped (still FIN_WAIT2).

    Also returns the (endpoint, state) pairs now held by a minisock, whose end only a sample shows.
    """
    kept, minisocks = [], set()
    for change in changes:
        if change.old in TIME_WAIT_ENTRY and change.new == CLOSED:
            sampled = _first_sample_after(samples, change.endpoint, change.time)
            if sampled == change.old:
                minisocks.add((change.endpoint, change.old))
                continue
            if sampled == "TIME_WAIT":
                change.new, change.source = "TIME_WAIT", "tracepoint+sock_diag"
        kept.append(change)
    return kept, minisocks


def _state_at(changes: list[StateChange], endpoint: str, moment: float) -> str:
    state = CLOSED
    for change in changes:
        if change.endpoint == endpoint and change.time <= moment:
            state = change.new
    return state


def _sampled(changes: list[StateChange], samples: list[Sample], traced: bool, minisocks: set,
             steps: list[Step]) -> list[StateChange]:
    """Changes only the samples show: everything without tracepoints, else what the tracepoint cannot see
    (a minisock's or request sock's state, and its end)."""
    added: list[StateChange] = []
    sampled_before: dict[str, float] = {}
    for when, states in sorted(samples, key=lambda sample: sample[0]):
        for endpoint, state in states.items():
            known = sorted(changes + added, key=lambda change: change.time)
            current = _state_at(known, endpoint, when)
            since, sampled_before[endpoint] = sampled_before.get(endpoint, -1.0), when
            if state == current:
                continue
            lingering = current in ONLY_SAMPLED or (endpoint, current) in minisocks
            if traced and not (state in ONLY_SAMPLED or (state == CLOSED and lingering)):
                continue
            change = StateChange(when, endpoint, current, state, "sampled")
            added.append(_at_its_fin(change, since, steps) if traced else change)
    return added


def _at_its_fin(change: StateChange, since: float, steps: list[Step]) -> StateChange:
    """A FIN_WAIT2 (mini)sock becomes TIME_WAIT only when the peer's FIN arrives: put it there, where the
    capture shows that FIN between the sample before and the one that saw TIME_WAIT."""
    if (change.old, change.new) != ("FIN_WAIT2", "TIME_WAIT"):
        return change
    fins = [step for step in steps if step.sender != change.endpoint and "F" in step.flags
            and since < step.time <= change.time]
    if fins:
        change.time, change.source = fins[-1].time, "capture"
    return change


def merge(events: list[TraceEvent], samples: list[Sample], steps: list[Step], owner: Callable[[int], str],
          elapsed: Callable[[float], float]) -> list[StateChange]:
    """Every endpoint's state changes in time order, each with its source (see the module docstring).

    ``events`` are the run's selected trace events (empty without tracefs),
    ``samples`` the sock_diag samples on the script's clock, ``owner`` names
    the endpoint of a local port, ``elapsed`` turns a CLOCK_MONOTONIC moment
    into script time.
    """
    changes = traced_changes(events, owner, elapsed)
    _request_socks(changes, steps)
    changes, minisocks = _time_wait(changes, samples)
    changes += _sampled(changes, samples, bool(events), minisocks, steps)
    return sorted(changes, key=lambda change: change.time)


def kernel_events(events: list[TraceEvent], unclaimed: list[TraceEvent], steps: list[Step],
                  owner: Callable[[int], str], elapsed: Callable[[float], float], real: set[str]) -> list[KernelEvent]:
    """Retransmissions and resets of the run's sockets; an unclaimed reset where a RST of one of the run's
    ``real`` endpoints (those with kernel sockets) is captured right after it."""
    port_of = {event.get("skaddr"): event.ports[0] for event in events if event.ports[0]}
    found = []
    for event in events:
        if event.name == "inet_sock_set_state":
            continue
        port = event.ports[0] or port_of.get(event.get("skaddr"), 0)
        found.append(KernelEvent(elapsed(event.time), owner(port), reason_text(event)))
    for event in unclaimed:
        moment = elapsed(event.time)
        rst = next((step for step in steps if "R" in step.flags and step.sender in real
                    and 0 <= step.time - moment <= NO_SOCKET_WINDOW), None)
        if rst is not None:
            found.append(KernelEvent(moment, rst.sender, reason_text(event)))
    return sorted(found, key=lambda event: event.time)


def pending_timers(samples: list[tuple[float, dict]]) -> list[PendingTimer]:
    """Each timer sock_diag found pending, once: when first seen (again after it was gone or changed kind).

    ``samples`` hold (script time, endpoint -> SocketInfo or None).
    """
    found, previous = [], {}
    for when, infos in sorted(samples, key=lambda sample: sample[0]):
        for endpoint, info in infos.items():
            timer = info.timer if info else None
            if timer and previous.get(endpoint) != timer:
                found.append(PendingTimer(when, endpoint, timer, info.expires_ms))
            previous[endpoint] = timer
    return found
