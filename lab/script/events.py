"""What a parsed script is made of: timed events, one class per kind of event.

The parser builds these; the runner executes them. Nothing here knows about
sockets, namespaces or terminals.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Timing:
    """When an event happens, in seconds of script time.

    ``relative`` times count from the previous event; ``any_time`` is ``*``;
    ``high`` is the upper end of a range (``+0~+.04``); ``end`` is the return
    time of a blocking syscall (``+.1...0.2``), relative like the start.
    """

    start: float
    relative: bool = False
    any_time: bool = False
    high: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class Option:
    """One TCP option as written in a script: ``mss 1460``, ``TS val 1 ecr 0``, ``sack 1:2 3:4``."""

    kind: str  # nop, eol, mss, wscale, sackOK, sack, TS, FO, FOEXP (Fast Open; values: the cookie's hex), md5,
    # ECN (AccECN: values are (counter, value) pairs in the option's order, e0b/ceb/e1b)
    values: tuple = ()

    def __str__(self) -> str:
        if self.kind == "ECN":
            return " ".join(["ECN", *(f"{name} {value}" for name, value in self.values)])
        if self.kind in ("FO", "FOEXP", "md5"):
            return " ".join([self.kind, *filter(None, self.values)])
        if self.kind == "TS":
            return f"TS val {self.values[0]} ecr {self.values[1]}"
        if self.kind == "sack":
            return "sack " + " ".join(f"{a}:{b}" for a, b in self.values)
        return " ".join([self.kind, *map(str, self.values)])


ENDPOINTS = ("client", "server")
SERVER_PORT = 8080  # the kernel's (server's) port: what bind(fd, ..., ...) takes, as in packetdrill


@dataclass(frozen=True)
class Event:
    line: int
    timing: Timing
    text: str  # the script line, as written, for reports
    # Observe mode: which real endpoint sends the segment, makes the call or is asked its state.
    endpoint: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class PacketEvent(Event):
    """``<`` a segment the lab injects; ``>`` a segment the kernel must send."""

    inbound: bool  # True for "<" (lab -> kernel)
    flags: str
    seq: int
    end_seq: int
    length: int
    ack: int | None = None
    window: int | None = None
    options: tuple[Option, ...] | None = ()  # None: "<...>", options not checked
    ip: IpInfo | None = None  # "[ect0]", "(tos 0x2)": the IP header's ECN field, TOS, flow label, TTL
    urgent: int | None = None  # "urg N": the urgent pointer


@dataclass(frozen=True)
class IcmpEvent(PacketEvent):
    """``< icmp unreachable frag_needed mtu 1200 [1:1461(1460)]``: an ICMP error the lab injects about a
    segment the kernel sent (its seq range, in the kernel's numbers, fills seq, end_seq and length)."""

    icmp_type: str = ""
    icmp_code: str | None = None
    mtu: int | None = None


@dataclass(frozen=True)
class IpInfo:
    """IP header fields a packet line names: ``[ect0]``, ``[ect01]``, ``[tos 0x3]``, ``[flowlabel 0x1]``, ``[ttl 9]``.

    ``ecn`` is one of ECN_CODEPOINTS or ``ect01`` (an expected segment may carry ECT(0) or ECT(1)).
    """

    ecn: str | None = None
    tos: int | None = None
    flowlabel: int | None = None
    ttl: int | None = None

    def __str__(self) -> str:
        parts = [self.ecn or "", f"tos {self.tos:#x}" if self.tos is not None else "",
                 f"flowlabel {self.flowlabel:#x}" if self.flowlabel is not None else "",
                 f"ttl {self.ttl}" if self.ttl is not None else ""]
        return "[" + ",".join(filter(None, parts)) + "]"


ECN_CODEPOINTS = {"noecn": 0, "ect1": 1, "ect0": 2, "ce": 3}  # the two low bits of the TOS / traffic class


@dataclass(frozen=True)
class Ellipsis_:
    """``...`` in a syscall: the address, buffer or length the lab fills in."""

    def __str__(self) -> str:
        return "..."

    def __reduce__(self) -> str:
        return "ELLIPSIS"  # one instance, also in -j workers (lab/live and lab/judge compare with ``is ELLIPSIS``)


ELLIPSIS = Ellipsis_()


@dataclass(frozen=True)
class Name:
    """A symbolic constant (SOCK_STREAM, SO_LINGER) or a struct field name."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class BitOr:
    """``O_RDWR|O_NONBLOCK``."""

    parts: tuple

    def __str__(self) -> str:
        return "|".join(map(str, self.parts))


@dataclass(frozen=True)
class ListValue:
    """``[1]``: a value passed by pointer."""

    items: tuple

    def __str__(self) -> str:
        return "[" + ", ".join(map(str, self.items)) + "]"


@dataclass(frozen=True)
class StructValue:
    """``{l_onoff=1, l_linger=0}``, ``{..., 2000}`` (an iovec), ``{msg_iov(1)=[...], msg_flags=0}``.

    Fields are (name, value) pairs; a field written without a name has name None.
    """

    fields: tuple[tuple[str | None, object], ...]

    def get(self, name: str, default=None):
        return dict(self.fields).get(name, default)

    @property
    def positional(self) -> tuple:
        return tuple(value for name, value in self.fields if name is None)

    def __str__(self) -> str:
        return "{" + ", ".join(str(v) if k is None else f"{k}={v}" for k, v in self.fields) + "}"


@dataclass(frozen=True)
class Call:
    """``htons(8080)``, ``inet_addr("192.0.2.1")``."""

    name: str
    args: tuple

    def __str__(self) -> str:
        return f"{self.name}(" + ", ".join(map(str, self.args)) + ")"


@dataclass(frozen=True)
class Bytes:
    """A string argument: ``"\\xa1\\xa1..."``, adjacent strings joined (C's rule)."""

    data: bytes

    def __str__(self) -> str:
        return '"' + "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\x{b:02x}" for b in self.data) + '"'


@dataclass(frozen=True)
class SyscallEvent(Event):
    """A call the kernel-side application makes, and what it must return."""

    name: str
    args: tuple
    result: object  # int, or ELLIPSIS for "don't care"
    errno: str | None = None


@dataclass(frozen=True)
class CodeEvent(Event):
    """``%{ assert tcpi_... }%``: assertions over the connection's tcp_info."""

    code: str


@dataclass(frozen=True)
class CommandEvent(Event):
    """A backtick line: sysctl settings, or shell that needs ``--allow-shell``."""

    command: str
    sysctls: tuple[tuple[str, str], ...] | None  # parsed when the line is only sysctl settings
    # packetdrill's init command: untimed, before every event; it runs before script time 0 begins.
    init: bool = field(default=False, kw_only=True)


@dataclass(frozen=True)
class StateEvent(Event):
    """tcplab extension: the kernel's TCP state of the connection, from sock_diag.

    ``state TIME_WAIT timer time_wait 55~60`` also checks the pending timer
    and the seconds it has left; ``state LISTEN port 8080`` looks at a listener.
    """

    state: str
    timer: str | None = None
    left_low: float | None = None
    left_high: float | None = None
    port: int | None = None


@dataclass(frozen=True)
class LinkEvent(Event):
    """tcplab extension (observe mode): from now on, the link is a token bucket.

    ``link rate 8000 burst 90``: ``rate`` bits per second, a bucket of
    ``burst`` bytes, in each direction of the veth pair (one bucket shared by
    both directions on loopback). A slow link keeps segments in flight long
    enough for both endpoints to act before they arrive: FINs that cross.
    """

    rate: int
    burst: int


@dataclass(frozen=True)
class LossEvent(Event):
    """tcplab extension (observe mode): the link loses, or holds back, a segment the sender will send.

    ``link lose client > F.``: the next segment the client sends with exactly
    these flags never reaches the server (the capture still shows it);
    ``nth 2``: the second such segment from now, once; ``every 3``: every
    third from now on. ``link delay client > F. 0.2``: the segment reaches
    the server 0.2 s late instead.
    """

    sender: str  # "client" or "server"
    flags: str
    nth: int = 1
    every: int | None = None
    delay: float | None = None  # seconds; None: lost


@dataclass
class Script:
    path: str
    options: dict[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    @property
    def length(self) -> float:
        """How long the script's own timeline runs, in seconds (ranges and blocking ends at their far end)."""
        total = 0.0
        for event in self.events:
            timing = event.timing
            span = max(timing.start, timing.end or 0.0, timing.high or 0.0)
            total = total + span if timing.relative else max(total, span)
        return total

    @property
    def observe(self) -> bool:
        """Observe mode: two real endpoints, named on every line (``client > S ...``)."""
        return any(event.endpoint for event in self.events)
