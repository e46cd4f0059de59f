"""Segments in script terms: convert live segments, write them, compare them.

A live segment is turned into the script's relative numbers (``Observed``)
and written in the script's own syntax, so a mismatch report shows expected
and actual side by side. As in packetdrill, the kernel's TS val is learnt and
its TS ecr is not compared; a missing ``win`` is not checked; every other
field a script line names is compared exactly.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass

from lab.tcp.packets import FAST_OPTIONS, Segment
from lab.script.events import ECN_CODEPOINTS, Option, PacketEvent

from lab.tcp.numbering import Side
from lab.judge.trace import Difference, Step

_FROM_SCAPY = {"NOP": "nop", "EOL": "eol", "MSS": "mss", "WScale": "wscale", "SAckOK": "sackOK",
               "SAck": "sack", "Timestamp": "TS", "TFO": "FO", "MD5": "md5"}
_TO_SCAPY = {v: k for k, v in _FROM_SCAPY.items()}
EXPERIMENTAL = 254  # RFC 6994 shared experimental option kind; Fast Open's magic 0xF989 (FOEXP)
ACCECN_KINDS = {172: ("e0b", "ceb", "e1b"), 174: ("e1b", "ceb", "e0b")}  # AccECN's two orders of 24-bit counters
FASTOPEN_MAGIC = b"\xf9\x89"
_ECN_NAMES = {bits: name for name, bits in ECN_CODEPOINTS.items()}


@dataclass(frozen=True)
class Observed:
    """A live segment with the script's relative numbers."""

    prefix: str  # how a script line names its sender: "<", ">", "client >", "server >"
    flags: str
    seq: int
    end_seq: int
    length: int
    ack: int | None
    window: int
    options: tuple[Option, ...]
    live: Segment

    @property
    def ecn(self) -> str:
        """The IP header's ECN codepoint: noecn, ect0, ect1 or ce."""
        return _ECN_NAMES[self.live.tos & 3]

    def step(self, time: float = 0.0, sender: str = "", from_left: bool = False, line: int | None = None,
             **extra) -> Step:
        """This segment as a step of a trace (the one place a segment becomes plain data)."""
        return Step(time, sender, from_left, self.prefix, self.flags, self.seq, self.end_seq, self.length, self.ack,
                    self.window, tuple(map(str, self.options)), self.live.seq,
                    self.live.ack if self.ack is not None else None, self.ecn, self.live.urgent, line, **extra)

    def render(self, absolute: bool = False) -> str:
        """The segment in script syntax."""
        return self.step().text(absolute)


def _well_formed(kind: str, value) -> bool:
    """Whether Scapy decoded an option into the shape its kind has (a capture may hold anything)."""
    if kind in ("mss", "wscale"):
        return isinstance(value, int)
    if kind == "TS":
        return isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value)
    if kind == "sack":
        return isinstance(value, tuple) and len(value) % 2 == 0 and all(isinstance(v, int) for v in value)
    return True


def needs_scapy(events) -> bool:
    """Whether a script's segment lines need Scapy (options the lab's own codec does not know), so the
    runner imports it before the timeline, not in the middle of it."""
    return any(_TO_SCAPY.get(option.kind) not in FAST_OPTIONS
               for event in events if isinstance(event, PacketEvent) for option in event.options or ())


def canonical_flags(flags: str) -> str:
    """Flags in packetdrill's print order, so ``.S`` and ``S.`` compare equal."""
    return "".join(letter for letter in "FSRP.UEWA" if letter in flags)


def observe(segment: Segment, sender: Side, receiver: Side, prefix: str) -> Observed:
    """``segment`` in script numbers: seq in the sender's space, ack and SACK in the receiver's."""
    options = []
    syn = "S" in segment.flag_text  # a SYN's numbers read as written (packetdrill's rule)
    for name, value in segment.options:
        kind = _FROM_SCAPY.get(name)
        if kind == "FO":
            raw = struct.pack("!II", *value) if isinstance(value, tuple) else bytes(value or b"")
            options.append(Option("FO", (raw.hex(),)))
        elif kind == "md5" and isinstance(value, bytes):
            options.append(Option("md5", (value.hex(),)))
        elif name in ACCECN_KINDS and isinstance(value, bytes) and len(value) % 3 == 0:
            counters = [int.from_bytes(value[i:i + 3], "big") for i in range(0, len(value), 3)]
            options.append(Option("ECN", tuple(zip(ACCECN_KINDS[name], counters))))
        elif name == EXPERIMENTAL and bytes(value or b"").startswith(FASTOPEN_MAGIC):
            options.append(Option("FOEXP", (bytes(value)[2:].hex(),)))
        elif kind is None:
            options.append(Option(str(name).lower()))
        elif not _well_formed(kind, value):
            options.append(Option(f"malformed-{kind}"))  # Scapy gives raw bytes for a bad length
        elif kind in ("mss", "wscale"):
            options.append(Option(kind, (value,)))
        elif kind == "TS":
            ecr = receiver.ts_script(value[1]) if value[1] else 0
            options.append(Option(kind, (sender.ts_script(value[0]), ecr)))
        elif kind == "sack":
            edges = [receiver.script(edge, syn) for edge in value]
            options.append(Option(kind, tuple(zip(edges[::2], edges[1::2], strict=False))))
        else:
            options.append(Option(kind))
    seq = sender.script(segment.seq, syn)
    flags = canonical_flags(segment.flag_text)
    return Observed(prefix, flags, seq, (seq + segment.length) % 2**32, segment.length,
                    receiver.script(segment.ack, syn) if "." in flags else None, segment.window, tuple(options),
                    segment)


def learn_numbers(side: Side, event: PacketEvent, segment: Segment) -> None:
    """Learn a real sender's ISN from its SYN and its TS clock from the TS vals it sends."""
    if "S" in segment.flag_text:
        side.learn(segment.seq, event.seq)
    ts = segment.option("Timestamp")
    if not _well_formed("TS", ts):
        ts = None
    expected_ts = [o for o in event.options or () if o.kind == "TS"]
    if ts and expected_ts:
        side.learn_ts(ts[0], expected_ts[0].values[0])
    elif ts and side.ts_offset is None:
        side.learn_ts(ts[0], 0)  # "<...>": its first TS val reads as 0 in reports


def injected_tos(event: PacketEvent) -> int:
    """The TOS (traffic class) byte of a segment the lab injects: ``[tos 0x..]``, and ``[ect0]`` and friends."""
    ip = event.ip
    if ip is None:
        return 0
    tos = ip.tos or 0
    return (tos & ~3) | ECN_CODEPOINTS[ip.ecn] if ip.ecn is not None else tos


def injected_ttl_and_flowlabel(event: PacketEvent) -> tuple[int, int]:
    """The TTL (hop limit) and flow label of a segment the lab injects: ``[ttl N]``, ``[flowlabel 0x..]``."""
    ip = event.ip
    ttl = ip.ttl if ip is not None and ip.ttl is not None else 64
    return ttl, ip.flowlabel if ip is not None and ip.flowlabel is not None else 0


def scapy_options(options: tuple[Option, ...], receiver: Side, syn: bool = False) -> tuple:
    """A script's options for a segment the lab injects, in Scapy's form.

    TS ecr and SACK blocks refer to the receiver's (the kernel's) numbers.
    """
    out = []
    for option in options or ():
        name = _TO_SCAPY.get(option.kind)
        if option.kind in ("mss", "wscale"):
            out.append((name, option.values[0]))
        elif option.kind == "TS":
            val, ecr = option.values
            out.append((name, (val, receiver.ts_live(ecr) if ecr else 0)))
        elif option.kind == "sack":
            out.append((name, tuple(receiver.live(edge, syn) for block in option.values for edge in block)))
        elif option.kind == "sackOK":
            out.append((name, b""))
        elif option.kind in ("FO", "md5"):
            out.append((name, bytes.fromhex(option.values[0])))
        elif option.kind == "ECN":
            kind = 172 if option.values[0][0] == "e0b" else 174
            out.append((kind, b"".join(value.to_bytes(3, "big") for _, value in option.values)))
        elif option.kind == "FOEXP":
            out.append((EXPERIMENTAL, FASTOPEN_MAGIC + bytes.fromhex(option.values[0])))
        else:
            out.append((name, None))
    return tuple(out)


def _options_match(expected: tuple[Option, ...], actual: tuple[Option, ...]) -> bool:
    if len(expected) != len(actual):
        return False
    for want, got in zip(expected, actual, strict=True):
        if want.kind != got.kind:
            return False
        if want.kind == "TS":
            continue  # the kernel's TS val is learnt; its ecr is not checked (as in packetdrill)
        if want.values != got.values:
            return False
    return True


# The header verifier table (packetdrill's verify_header): the field, and how the line and the segment name it.
# A line that leaves a field out (None: no ``win``, ``<...>``, no ``ack``) does not check it.
HEADER_FIELDS = (
    ("flags", lambda line: canonical_flags(line.flags), lambda seg: seg.flags),
    ("seq", lambda line: line.seq, lambda seg: seg.seq),
    ("length", lambda line: line.length, lambda seg: seg.length),
    ("ack", lambda line: line.ack, lambda seg: seg.ack),
    ("win", lambda line: line.window, lambda seg: seg.window),
    ("urg", lambda line: line.urgent, lambda seg: seg.live.urgent),
    ("IP ttl", lambda line: line.ip and line.ip.ttl, lambda seg: seg.live.ttl),
    ("IPv6 flow label", lambda line: line.ip and line.ip.flowlabel, lambda seg: seg.live.flowlabel),
)


def differences(expected: PacketEvent, actual: Observed) -> list[Difference]:
    """Each field the script names that the live segment does not match: (field, expected, actual)."""
    diffs = []
    for name, wanted, got in HEADER_FIELDS:
        value = wanted(expected)
        if value is not None and value != got(actual):
            diffs.append(Difference(name, str(value), str(got(actual))))
    ip = expected.ip
    if ip is not None and ip.ecn is not None and not (
            ip.ecn == actual.ecn or (ip.ecn == "ect01" and actual.ecn in ("ect0", "ect1"))):
        diffs.append(Difference("IP ECN field", f"[{ip.ecn}]", f"[{actual.ecn}]"))
    if ip is not None and ip.tos is not None and ip.tos != actual.live.tos:
        diffs.append(Difference("IP tos", f"{ip.tos:#x}", f"{actual.live.tos:#x}"))
    if expected.options is not None and not _options_match(expected.options, actual.options):
        want = ",".join(map(str, expected.options))
        have = ",".join(map(str, actual.options))
        diffs.append(Difference("options", f"<{want}>", f"<{have}>"))
    return diffs


def coalesce(lines: list[PacketEvent]) -> PacketEvent:
    """What one segment carrying several consecutive expected segments looks like.

    The kernel may send in one segment what a script writes as two (an ACK
    riding on a FIN, two writes in one segment): flags are united, the
    sequence range spans all of them, ack, window and options are the last's.
    """
    first, last = lines[0], lines[-1]
    flags = canonical_flags("".join(line.flags for line in lines))
    return PacketEvent(first.line, first.timing, first.text, False, flags, first.seq, last.end_seq,
                       (last.end_seq - first.seq) % 2**32, last.ack, last.window, last.options, last.ip,
                       last.urgent, endpoint=first.endpoint)


def match_lines(events: list, index: int, actual: Observed) -> tuple[int, list[Difference]]:
    """Lines the segment matches: the one at ``index``, or several coalesced into it; else the diffs."""
    first = events[index]
    diffs = differences(first, actual)
    if not diffs:
        return 1, []
    run = [first]
    for event in events[index + 1:]:
        if not (isinstance(event, PacketEvent) and not event.inbound and event.endpoint == first.endpoint):
            break
        run.append(event)
        if not one_segment(run):
            break
        if not differences(coalesce(run), actual):
            return len(run), []
    return 1, diffs


def one_segment(lines: list[PacketEvent]) -> bool:
    """Whether one segment could carry these lines: their sequence ranges follow on, they acknowledge the
    same byte, and at most one of them is a SYN and one a FIN (two retransmissions are two segments)."""
    follow_on = all(line.seq == before.end_seq for before, line in zip(lines, lines[1:]))
    acks = {line.ack for line in lines if line.ack is not None}
    return (follow_on and len(acks) <= 1 and sum("S" in line.flags for line in lines) <= 1
            and sum("F" in line.flags for line in lines) <= 1)


def line_for(events: list, index: int, sender: str, wanted: str) -> tuple[PacketEvent, str]:
    """The line a segment from ``sender`` answers, and what is wrong if it is not the one expected.

    Returns the line at ``index`` (after an either_order swap, the one that was
    next) and "" when ``sender`` is the endpoint it expects; else the problem.
    """
    if sender != wanted and either_order(events, index, sender):
        return events[index], ""
    if sender != wanted:
        return events[index], f"the {sender} sent a segment where the script expects the {wanted}'s"
    return events[index], ""


def either_order(events: list, index: int, sender: str) -> bool:
    """Let two segment lines of different endpoints match in either order when the second may come at ``+0``.

    Two real kernels send independently: when their segments leave at the
    same moment (FINs crossing), which one the capture sees first is chance.
    If the line after ``index`` expects ``sender``'s segment and its time
    may be ``+0`` (``+0`` or ``+0~+x``), the two lines swap places (each
    keeping its position's timing) and True is returned; ``events`` is the
    run's own copy of the script's events.
    """
    if index + 1 >= len(events):
        return False
    first, second = events[index], events[index + 1]
    if not (isinstance(second, PacketEvent) and not second.inbound and second.endpoint == sender
            and first.endpoint and first.endpoint != sender):
        return False
    timing = second.timing
    if not (timing.relative and timing.start == 0 and not timing.any_time):
        return False
    events[index] = dataclasses.replace(second, timing=first.timing)
    events[index + 1] = dataclasses.replace(first, timing=second.timing)
    return True
