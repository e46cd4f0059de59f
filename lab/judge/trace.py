"""What a run produces, as data: the segments, the lab's own actions, the failure.

A run (live or offline) fills a trace; nothing here is text for a person.
The terminal ladder, SVG, Mermaid, the mismatch report, JSON and JUnit are
renderers of it (lab/views/report.py, lab/views/ladder.py, lab/views/results.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Failure kinds: what was wrong decides whose fault it is.
CONTENT = "content"  # a field the kernel set differs: flags, seq, ack, win, options, length, result, errno, state, timer
TIMING = "timing"  # the kernel acted outside the line's time window (or not at all)
LAB_LATE = "lab-late"  # the lab itself acted outside its line's time window: not the kernel's fault
KINDS = (CONTENT, TIMING, LAB_LATE)


@dataclass
class Step:
    """One segment on the wire, in the script's relative numbers."""

    time: float  # seconds of script time since the run's start (its clock's zero)
    sender: str  # lab, kernel, client or server
    from_left: bool  # sent by the left endpoint (lab or client) to the right one
    prefix: str  # how a script line names the sender: "<", ">", "client >"
    flags: str
    seq: int
    end_seq: int
    length: int
    ack: int | None
    window: int
    options: tuple[str, ...]
    live_seq: int  # the numbers on the wire
    live_ack: int | None
    ecn: str = "noecn"  # the IP header's ECN codepoint: noecn, ect0, ect1, ce
    urgent: int = 0  # the urgent pointer
    line: int | None = None  # the script line it matched, if any
    states: dict[str, str] = field(default_factory=dict)  # endpoint -> TCP state after the segment
    mismatch: str = ""  # what differed, when this is the segment that failed the run
    late_ms: float | None = None  # how far from its script time it came (+ late, - early), when a line matched
    lost: bool = False  # the link dropped it (a ``link lose`` line): sent, never received
    held_s: float | None = None  # how long the link held it back (a ``link delay`` line)

    def label(self, absolute: bool = False) -> str:
        """The short form ladders draw on an arrow: flags seq:end(len) ack."""
        text = f"{self.flags} {self.seq}:{self.end_seq}({self.length})"
        if self.ack is not None:
            text += f" ack {self.ack}"
        if absolute:
            text += f" [{self.live_seq}" + (f" {self.live_ack}]" if self.ack is not None else "]")
        if self.held_s is not None:
            text += f" (+{self.held_s:.3f} s)"
        return text

    def text(self, absolute: bool = False) -> str:
        """The segment in script syntax."""
        ecn = f"[{self.ecn}] " if self.ecn != "noecn" else ""
        text = f"{self.prefix} {ecn}{self.flags or '-'} {self.seq}:{self.end_seq}({self.length})"
        if self.ack is not None:
            text += f" ack {self.ack}"
        text += f" win {self.window}"
        if self.urgent:
            text += f" urg {self.urgent}"
        if self.options:
            text += " <" + ",".join(self.options) + ">"
        if absolute:
            text += f"  [absolute seq {self.live_seq}" + (f" ack {self.live_ack}]" if self.ack is not None else "]")
        if self.lost:
            text += "  (dropped by the link)"
        if self.held_s is not None:
            text += f"  (held back {self.held_s:.3f} s)"
        return text

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Action:
    """Something the lab did at a script time: a syscall, an injected segment, a command.

    ``late_ms`` is how long after its scheduled moment it really happened:
    the lab's own lateness, measured for every action and never counted
    against the kernel.
    """

    line: int
    what: str  # "syscall connect", "inject", "command", "link"
    endpoint: str
    script_time: float  # when the script wants it
    late_ms: float  # when it happened, relative to that
    result: str = ""  # a syscall's return value and errno, as written in scripts ("-1 ECONNREFUSED")
    time: float | None = None  # when it really began, on the steps' clock (seconds since the run's start)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class StateChange:
    """One endpoint's TCP state changing, at the moment it changed (lab/live/states.py says from where)."""

    time: float  # seconds of script time since the run's start, as Step.time
    endpoint: str
    old: str
    new: str
    source: str  # tracepoint, tracepoint+sock_diag, capture, sampled
    port: int = 0  # the endpoint's local port, where known (several connections tell apart by it)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class KernelEvent:
    """Why the kernel sent a segment or what a received RST did (its tcp tracepoints), with its time."""

    time: float
    endpoint: str
    text: str  # "retransmission (in SYN_SENT)", "RST sent: NO_SOCKET"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class PendingTimer:
    """A timer sock_diag found pending on an endpoint's connection when it sampled it."""

    time: float  # when sampled, on the steps' clock
    endpoint: str
    timer: str  # retransmit, keepalive, time_wait, probe
    left_ms: int  # how long it had left

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Difference:
    """One field a segment got wrong: what the script expects and what the kernel (or the lab) sent."""

    field: str  # flags, seq, length, ack, win, urg, options, IP ttl, IP tos, IP ECN field, IPv6 flow label
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.field}: expected {self.expected}, got {self.actual}"


@dataclass
class Failure(Exception):
    """Why a run failed, at which script line, and whose fault it is (``kind``)."""

    line: int
    message: str
    kind: str = CONTENT
    expected: str = ""
    actual: str = ""
    fields: list[str] = field(default_factory=list)  # what differed, one line each, as the report says it
    recent: list[Step] = field(default_factory=list)  # the segments seen just before
    differences: tuple[Difference, ...] = ()  # a segment's wrong fields as data: (field, expected, actual)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class RunResult:
    """A finished run, live or offline: the one trace every view renders (lab/views)."""

    path: str
    family: int
    failure: Failure | None
    pcap: str | None
    duration: float
    steps: tuple[Step, ...] = ()
    notes: tuple[str, ...] = ()
    left: str = "lab"  # the endpoint drawn on the left: lab or client
    right: str = "kernel"  # kernel or server
    exercise: str = ""  # the catalogue name, where the file's name is not it (experiments)
    actions: tuple[Action, ...] = ()
    state_changes: tuple[StateChange, ...] = ()
    kernel_events: tuple[KernelEvent, ...] = ()
    state_source: str = ""  # "tracepoint" or "sampled": where the state changes came from
    sysctls: tuple[tuple[str, str], ...] = ()  # what the script's sysctl lines set
    timers: tuple[PendingTimer, ...] = ()  # timers seen pending, each when first seen
    first_try: Failure | None = None  # a first try that was no verdict on the kernel, which this run replaces
    kernel: str = ""  # the release a recorded run ran on (read back from JSON); "" for a run of this process

    def __post_init__(self) -> None:
        for name in ("steps", "notes", "actions", "state_changes", "kernel_events", "sysctls", "timers"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def passed(self) -> bool:
        return self.failure is None

    @property
    def case(self) -> str:
        """What CI calls it: the exercise, or the script's file name without its suffix."""
        return self.exercise or self.path.rsplit("/", 1)[-1].rsplit(".", 1)[0]

    @property
    def name(self) -> str:
        return f"{self.path} (IPv{self.family})"
