"""Segment-level differences between two captures, in relative numbers.

Each capture is written as the lab writes segments: the endpoint that sent
the first SYN is the client, numbers are relative to each side's ISN, and
TS values are left out (they are clocks, different on every run). Two
kernels' captures of the same exercise then differ only where the kernels
behave differently; the differences are shown as a unified diff.
"""

from __future__ import annotations

import dataclasses
import difflib

from lab.tcp.numbering import Side
from lab.tcp.packets import is_syn
from lab.judge.verify import observe
from lab.script.events import Option

from lab.capture.pcapfile import CapturedSegment


def segment_lines(captured: list[CapturedSegment], with_comments: bool = False) -> list[str]:
    """The capture's segments in script syntax, one line each, with relative numbers; ``with_comments``:
    each followed by its packet comment (in a fixture, the script line it matched)."""
    syn = next((item for item in captured if is_syn(item.segment.flag_text)),
               captured[0])
    client = (syn.segment.src, syn.segment.sport)
    server = (syn.segment.dst, syn.segment.dport)
    sides = {client: Side(), server: Side()}
    names = {client: "client", server: "server"}
    lines = []
    for item in captured:
        source = (item.segment.src, item.segment.sport)
        destination = (item.segment.dst, item.segment.dport)
        if source not in sides or destination not in sides:
            continue  # another connection's segment
        if "S" in item.segment.flag_text:
            sides[source].learn(item.segment.seq, 0)
        observed = observe(item.segment, sides[source], sides[destination], f"{names[source]} >")
        options = tuple(Option("TS", ("*", "*")) if option.kind == "TS" else option for option in observed.options)
        line = dataclasses.replace(observed, options=options).render()
        lines.append(f"{line}  // {' '.join(item.comment.split())}" if with_comments and item.comment else line)
    return lines


def diff_captures(a: list[CapturedSegment], b: list[CapturedSegment], name_a: str, name_b: str) -> list[str]:
    """Unified-diff lines between the two captures' segments; empty when they agree."""
    return list(difflib.unified_diff(segment_lines(a), segment_lines(b), name_a, name_b, lineterm="", n=2))
