"""The kernel's own word on a run's TCP states: tracepoints, read from a trace instance of the run's own.

As root, a run enables, in a tracefs instance (netns/tracefs.py):

- ``sock:inet_sock_set_state``: every state change of a full socket, with
  its time on CLOCK_MONOTONIC (the instance's ``trace_clock`` is ``mono``,
  the clock of ``time.monotonic()`` and of the run's frames);
- ``tcp:tcp_retransmit_skb``, ``tcp:tcp_retransmit_synack``,
  ``tcp:tcp_send_reset``, ``tcp:tcp_receive_reset``: why a segment went out
  (a retransmission, a reset and the kernel's reason for it) or what a
  received RST did.

The instance prints every field (``options/fields``), so each line carries
the socket's address (``skaddr``): a connect()'s first change (CLOSE ->
SYN_SENT) has no local port yet, and is recognised as the run's when the same
socket next shows one of the run's ports. The filters keep the buffer to the
run's ports, a block leased machine-wide (lab/live/port_lease.py: drive mode's
lab ports, observe mode's client range set in the client's namespace), and
the lines are selected again after reading: several runs at once never see
each other's events. ``tcp_send_reset`` has no port fields to filter on: one from
a socket of the run's is the run's by its ``skaddr``; one without a socket
(``NO_SOCKET``) or from a timewait minisock (no traced state names it) is the
run's when a RST of the run's endpoint is captured right after it.

Reading happens after the timeline, never during it: the kernel writes the
events into its ring buffer as they happen, at no cost to the run. The run
reads ``trace_pipe``, which consumes what it reads, so the process's next run
(one instance serves them all, netns.tracefs.process_instance) starts from an
empty buffer without the wait that emptying it would cost; whatever is older
than the run's start is skipped all the same. Where the command knows how
many runs its process makes (``runs_to_come``), the instance is removed as
soon as the last has read it, while the process finishes the rest.

Where tracefs cannot be reached (rootless: tracefs is not mountable in a
user namespace) the run falls back to sock_diag samples and says so; the
state changes it reports are then labelled ``sampled``
(lab/live/states.py merges both sources).
"""

from __future__ import annotations

import multiprocessing.util
import os
import re
import sys
import threading
import time
from dataclasses import dataclass

from lab.tcp.states import CLOSED, STATES
from netns.signals import start_blocking_signals
from netns.tracefs import (
    TraceInstance,
    TracingUnavailable,
    process_instance,
    retire_process_instance,
)

EVENTS = {
    "sock/inet_sock_set_state": "protocol == 6 && ({ports} || sport == 0)",
    "tcp/tcp_retransmit_skb": "{ports}",
    "tcp/tcp_retransmit_synack": "{ports}",
    "tcp/tcp_receive_reset": "{ports}",
    "tcp/tcp_send_reset": "",
}
BUFFER_KB = 256  # per CPU: a run's own events are a few dozen lines
PREPARING_SWITCH_INTERVAL = 0.0005  # seconds: while the instance is made beside the engine's imports
NO_SOCKET_WINDOW = 0.002  # seconds: an unclaimed reset is the run's when its RST is captured this soon after

# enum sk_rst_reason (include/net/rstreason.h), as the tracepoint's format prints it.
RESET_REASONS = {
    0: "NOT_SPECIFIED", 1: "NO_SOCKET", 2: "TCP_INVALID_ACK_SEQUENCE", 3: "TCP_RFC7323_PAWS",
    4: "TCP_TOO_OLD_ACK", 5: "TCP_ACK_UNSENT_DATA", 6: "TCP_FLAGS", 7: "TCP_OLD_ACK", 8: "TCP_ABORT_ON_DATA",
    9: "TCP_TIMEWAIT_SOCKET", 10: "INVALID_SYN", 11: "TCP_ABORT_ON_CLOSE", 12: "TCP_ABORT_ON_LINGER",
    13: "TCP_ABORT_ON_MEMORY", 14: "TCP_STATE", 15: "TCP_KEEPALIVE_TIMEOUT", 16: "TCP_DISCONNECT_WITH_DATA",
}

_LINE = re.compile(r"^\s*.+?-\d+\s+(?:\(\s*[-\d]+\)\s+)?\[\d+\]\s+(?:\S+\s+)?(?P<ts>\d+\.\d+):\s+"
                   r"(?P<event>\w+):\s+(?P<fields>.*)$")
_FIELD = re.compile(r"(\w+)=(0x[0-9a-fA-F]+|-?\d+|<[^>]*>)(?: \(-?\d+\))?")


@dataclass(frozen=True)
class TraceEvent:
    """One tracepoint hit: its CLOCK_MONOTONIC time, its name and its numeric fields."""

    time: float
    name: str
    fields: dict[str, int]

    def get(self, key: str, default: int = 0) -> int:
        return self.fields.get(key, default)

    @property
    def ports(self) -> tuple[int, int]:
        return self.get("sport"), self.get("dport")


def parse_line(line: str) -> TraceEvent | None:
    """One line of an instance's ``trace`` file (``options/fields`` on); None for comments and others."""
    match = _LINE.match(line)
    if not match:
        return None
    fields = {}
    for key, value in _FIELD.findall(match["fields"]):
        if value.startswith("<"):
            continue  # <INVALID-SIZE>: an address array the fields format does not print
        fields[key] = int(value, 16) if value.startswith("0x") else int(value)
    return TraceEvent(float(match["ts"]), match["event"], fields)


def parse(text: str) -> list[TraceEvent]:
    """Every event of a ``trace`` file, in time order."""
    events = [event for line in text.splitlines() if (event := parse_line(line))]
    return sorted(events, key=lambda event: event.time)


def port_filter(ports: range) -> str:
    low, high = ports.start, ports.stop - 1
    return f"((sport >= {low} && sport <= {high}) || (dport >= {low} && dport <= {high}))"


def select(events: list[TraceEvent], ports: range) -> list[TraceEvent]:
    """The run's own events: those of sockets born during the run with one of its ports.

    A socket's portless first change (connect()'s CLOSE -> SYN_SENT) is the
    run's when that socket's next event carries one of the run's ports and
    continues from the state it entered. A reset that names no port is the
    run's when it comes from one of the run's sockets while that socket lives:
    a socket's address is reused once it is freed, and another run's socket
    may get it (its events then carry that run's ports, which are not traced
    here, but its portless ones are). A socket is the run's only from its birth
    on (``_born_in_run``): an orphan of an earlier run, still retransmitting its
    FIN from a namespace already deleted, may have a port in the run's range.
    """
    def has_port(event: TraceEvent) -> bool:
        return any(port in ports for port in event.ports)

    ours = {event.get("skaddr") for event in events if has_port(event) and event.get("skaddr")}
    chosen = []
    for index, event in enumerate(events):
        if event.name == "tcp_send_reset":
            if event.get("skaddr") in ours:
                chosen.append(event)
            continue
        if has_port(event):
            chosen.append(event)
        elif event.ports[0] == 0 and event.get("skaddr") in ours:
            following = next((later for later in events[index + 1:]
                              if later.get("skaddr") == event.get("skaddr") and later.name != "tcp_send_reset"), None)
            continues = following is not None and (following.name != "inet_sock_set_state"
                                                   or following.get("oldstate") == event.get("newstate"))
            if continues and has_port(following):
                chosen.append(event)
    return _born_in_run(_resets_while_alive(chosen))


def _resets_while_alive(chosen: list[TraceEvent]) -> list[TraceEvent]:
    """Drop the portless resets sent while no socket of the run lived at their address (before its first
    chosen change, or after it closed): those are another socket's that was given the same address."""
    alive: set[int] = set()
    kept = []
    for event in chosen:
        sock = event.get("skaddr")
        if event.name == "tcp_send_reset":
            if sock in alive:
                kept.append(event)
            continue
        kept.append(event)
        if event.name == "inet_sock_set_state":
            if event.get("newstate") == CLOSE_NUMBER:
                alive.discard(sock)
            else:
                alive.add(sock)
    return kept


BIRTHS = {number for number, name in STATES.items() if name in ("CLOSE", "LISTEN")}  # connect(), a child's clone
CLOSE_NUMBER = next(number for number, name in STATES.items() if name == "CLOSE")


def _born_in_run(chosen: list[TraceEvent]) -> list[TraceEvent]:
    """Drop the events of sockets the run did not make: their first traced change is not a birth.

    An orphan left by an earlier run in the same process (its FIN unanswered,
    its namespace deleted; the kernel keeps the socket until its retries run
    out) may die during a later run whose port range holds its port, and
    would draw its FIN_WAIT1 -> CLOSED into that run. Sockets that existed
    before the run have addresses distinct from every socket born in it
    while they live, so one pass in time order tells them apart.
    ``tcp_retransmit_synack`` names the listener, whose birth is not selected
    (its port is the server's): it stays chosen by its ports.
    """
    born: set[int] = set()
    kept = []
    for event in chosen:
        sock = event.get("skaddr")
        if event.name == "inet_sock_set_state" and event.get("oldstate") in BIRTHS:
            born.add(sock)
        if sock in born or event.name == "tcp_retransmit_synack":
            kept.append(event)
    return kept


def unclaimed_resets(events: list[TraceEvent], chosen: list[TraceEvent]) -> list[TraceEvent]:
    """``tcp_send_reset`` not on one of the run's sockets: without a socket (NO_SOCKET), or from a
    timewait minisock (which has no traced state): anyone's until a capture says whose."""
    return [event for event in events if event.name == "tcp_send_reset" and event not in chosen]


def state_name(number: int) -> str:
    """A kernel state number as sock_diag names it; a full socket's CLOSE is the ladder's CLOSED."""
    name = STATES.get(number, str(number))
    return CLOSED if name == "CLOSE" else name


def reason_text(event: TraceEvent) -> str:
    """Why a segment went out, or what a received RST met, in a few words."""
    state = state_name(event.get("state")) if "state" in event.fields else ""
    if event.name == "tcp_retransmit_skb":
        return f"retransmission (in {state})"
    if event.name == "tcp_retransmit_synack":
        return "SYN-ACK retransmission (request sock)"
    if event.name == "tcp_send_reset":
        reason = RESET_REASONS.get(event.get("reason"), str(event.get("reason")))
        return f"RST sent: {reason}" + (f" (in {state})" if event.get("skaddr") else "")
    return "RST received"


_IN_USE = threading.Lock()  # the process's one instance serves one run at a time
_reads_to_come: tuple[int, int] | None = None  # (process id, its runs still to read the instance) where known
_preparing: threading.Thread | None = None  # the process's instance, being made and set up
_preparing_pid = 0  # the process that started it: a forked worker makes its own


def prepare_in_background() -> None:
    """Make and set up this process's trace instance on a thread of its own, once per process.

    Making an instance and setting it up wait on the kernel (RCU grace
    periods for the clock switch and the resize, patching the tracepoints'
    code): 30 ms alone, 40-60 ms beside a busy main thread, which a run's
    first use would add to its start. ``tcplab run`` starts it before Click
    and the engine load (lab/cli/__init__.py), so it is over by the first
    run; ``KernelTrace.start`` waits for the thread.
    """
    global _preparing, _preparing_pid
    if _preparing is None or _preparing_pid != os.getpid():
        _preparing, _preparing_pid = threading.Thread(target=_prepare_quietly, name="tcplab trace instance",
                                                      args=(sys.getswitchinterval(),)), os.getpid()
        # Each of its dozen steps returns from the kernel wanting the GIL, which a busy main thread (imports)
        # hands over only at the switch interval (5 ms): a short one while it runs (put back at its end).
        sys.setswitchinterval(PREPARING_SWITCH_INTERVAL)
        start_blocking_signals(_preparing)
        # A worker process runs its finalizers before it joins its threads: let the thread end first, so
        # that the instance it makes is there to be removed (netns.tracefs removes it at exit).
        multiprocessing.util.Finalize(None, _preparing.join, exitpriority=20)


def runs_to_come(count: int) -> None:
    """The command says how many runs this process makes from now on: once the last has read the trace,
    the instance is removed while the process finishes the rest (netns.tracefs.retire_process_instance).
    Runs in worker processes read their own instances, and never count here (a forked worker inherits the
    count with the command's process id)."""
    global _reads_to_come
    _reads_to_come = (os.getpid(), count)


def _prepare_quietly(switch_interval: float) -> None:
    try:
        prepared(process_instance())
    except (TracingUnavailable, OSError):
        pass  # KernelTrace.start meets it again, and says why
    finally:
        sys.setswitchinterval(switch_interval)


def prepared(instance: TraceInstance) -> TraceInstance:
    """The instance with the settings every run shares: made once per process (switching the trace clock
    and enabling events are slow; a run then only writes its filters)."""
    if not instance.prepared:
        instance.write("tracing_on", "0")
        # The clock before the size: a clock change empties the buffers (an RCU grace period, ~13 ms here),
        # and a resize after it is cheap; in the other order the two took 21-41 ms instead of 21.
        instance.write("trace_clock", "mono")
        instance.write("buffer_size_kb", str(BUFFER_KB))
        instance.write("options/fields", "1")
        for event in EVENTS:
            instance.write(f"events/{event}/filter", "0")
            instance.write(f"events/{event}/enable", "1")
        instance.prepared = True
    return instance


class KernelTrace:
    """The run's use of the process's trace instance (netns.tracefs.process_instance): filtered on the
    run's ports and emptied before the timeline, read after it.

    ``unavailable`` says why there is no instance (the run then relies on sock_diag samples alone).
    """

    def __init__(self):
        self.ports = range(0)
        self.holding = False  # this run has the process's instance (one run at a time)
        self.since = 0.0  # when this run's recording began (CLOCK_MONOTONIC)
        self.instance: TraceInstance | None = None
        self.unavailable = ""

    def start(self, ports: range) -> None:
        self.ports = ports
        if not _IN_USE.acquire(blocking=False):
            self.unavailable = "another run of this process is using its trace instance"
            return
        self.holding = True
        if _preparing is not None and _preparing_pid == os.getpid():
            _preparing.join()
        try:
            instance = process_instance()
        except TracingUnavailable as error:
            self.unavailable = str(error)
            return
        try:
            prepared(instance)
            instance.write("tracing_on", "0")
            self.since = time.monotonic()  # older events are skipped, not emptied: emptying the buffer is slow
            for event, condition in EVENTS.items():
                instance.write(f"events/{event}/filter", condition.format(ports=port_filter(ports)) or "0")
            instance.write("tracing_on", "1")
        except OSError as error:
            self.unavailable = f"cannot set up the trace instance: {error.strerror or error}"
            return
        self.instance = instance

    def read(self) -> tuple[list[TraceEvent], list[TraceEvent]]:
        """The run's own events, and the unclaimed resets that may be the run's (both in time order)."""
        if self.instance is None:
            return [], []
        global _reads_to_come
        self.instance.write("tracing_on", "0")
        events = [event for event in parse(self.instance.read("trace_pipe")) if event.time >= self.since]
        if _reads_to_come is not None and _reads_to_come[0] == os.getpid():
            pid, left = _reads_to_come
            _reads_to_come = (pid, left - 1) if left > 1 else None
            if left == 1:  # the process's last run: nothing reads the instance again
                self.instance = None
                retire_process_instance()
        chosen = select(events, self.ports)
        return chosen, unclaimed_resets(events, chosen)

    def close(self) -> None:
        """Stop recording (the instance stays for the process's next run)."""
        if self.instance is not None:
            self.instance.write("tracing_on", "0")
            self.instance = None
        if self.holding:
            self.holding = False
            _IN_USE.release()
