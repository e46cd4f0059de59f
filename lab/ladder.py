"""Ladder diagrams of a finished run: terminal text, Mermaid, SVG.

Two lifelines (the lab or client on the left, the kernel or server on the
right), time running down, an arrow per segment labelled with flags, seq,
ack and length, and each endpoint's TCP state beside its lifeline as the
kernel reported it after the segment. The segment that failed a run is
marked on its arrow; a segment the link dropped (a ``link lose`` line) is an
arrow that stops short of the receiver, with an X. Renderers read finished
steps only.
"""

from __future__ import annotations

import os
from html import escape

from lab.engine.trace import Step

ARROW_WIDTH = 44
STATE_WIDTH = 12
RED, RESET = "\033[31m", "\033[0m"


def use_color(stream) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set (no-color.org)."""
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def _arrow(step: Step) -> str:
    label = f" {step.label()} "
    room = ARROW_WIDTH - 2
    if len(label) > room - 2:
        label = label[: room - 5] + "... "
    dashes = room - len(label)
    left, right = dashes // 2, dashes - dashes // 2
    body = "-" * left + label + "-" * right
    if step.lost:  # the arrow stops short: the receiver never got it
        return f"{body[:-4]}X     " if step.from_left else f"     X{body[4:]}"
    return f"{body}->" if step.from_left else f"<-{body}"


def text_ladder(steps: list[Step], left: str, right: str, color: bool = False) -> str:
    """The ladder as terminal text."""
    left_bar = 9 + 2 + STATE_WIDTH + 1  # where "|" of the left lifeline sits in a row
    right_bar = left_bar + 1 + ARROW_WIDTH
    header = " " * max(left_bar - len(left) // 2, 0) + left
    header += " " * max(right_bar - len(right) // 2 - len(header), 1) + right
    lines = [header]
    for step in steps:
        left_state = step.states.get(left, "")
        right_state = step.states.get(right, "")
        row = f"{step.time:8.4f}s  {left_state:<{STATE_WIDTH}} |{_arrow(step)}| {right_state}"
        if step.lost:
            row += "  (lost on the link)"
        if step.mismatch:
            mark = f"  <- MISMATCH: {step.mismatch}"
            row = f"{RED}{row}{mark}{RESET}" if color else row + mark
        lines.append(row)
    return "\n".join(lines)


def mermaid(steps: list[Step], left: str, right: str) -> str:
    """A Mermaid sequenceDiagram (GitHub renders it in Markdown)."""
    lines = ["sequenceDiagram", f"    participant L as {left}", f"    participant R as {right}"]
    previous: dict[str, str] = {}
    for step in steps:
        source, target = ("L", "R") if step.from_left else ("R", "L")
        arrow = "-x" if step.mismatch or step.lost else "->>"  # Mermaid's cross: a message that is lost
        label = step.label().replace(";", ",").replace("#", "")
        if step.lost:
            label += " (lost on the link)"
        if step.mismatch:
            label += f" (MISMATCH: {step.mismatch.replace(';', ',')})"
        lines.append(f"    {source}{arrow}{target}: {label}")
        for name, node in ((left, "L"), (right, "R")):
            state = step.states.get(name)
            if state and previous.get(name) != state:
                side = "left of" if node == "L" else "right of"
                lines.append(f"    Note {side} {node}: {state}")
                previous[name] = state
    return "\n".join(lines) + "\n"


def svg(steps: list[Step], left: str, right: str, title: str = "") -> str:
    """The ladder as a standalone SVG drawing."""
    width, top, row = 760, 70, 34
    x_left, x_right = 190, 570
    height = top + row * (len(steps) + 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width // 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<text x="{x_left}" y="48" text-anchor="middle" font-weight="bold">{escape(left)}</text>',
        f'<text x="{x_right}" y="48" text-anchor="middle" font-weight="bold">{escape(right)}</text>',
        f'<line x1="{x_left}" y1="{top - 12}" x2="{x_left}" y2="{height - 10}" stroke="black"/>',
        f'<line x1="{x_right}" y1="{top - 12}" x2="{x_right}" y2="{height - 10}" stroke="black"/>',
        '<defs><marker id="head" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">'
        '<path d="M0,0 L10,4 L0,8 z" fill="black"/></marker>'
        '<marker id="bad" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">'
        '<path d="M0,0 L10,4 L0,8 z" fill="#c00"/></marker></defs>',
    ]
    for index, step in enumerate(steps):
        y = top + row * index + 10
        start, end = (x_left, x_right) if step.from_left else (x_right, x_left)
        colour, marker = ("#c00", "bad") if step.mismatch else ("black", "head")
        if step.lost:  # stops two thirds of the way, with an X where it was lost
            end = start + (end - start) * 2 // 3
            parts.append(f'<line x1="{start}" y1="{y}" x2="{end}" y2="{y + 9}" stroke="{colour}" '
                         'stroke-dasharray="6,3"/>')
            parts.append(f'<text x="{end}" y="{y + 14}" text-anchor="middle" fill="{colour}" '
                         'font-weight="bold">X</text>')
        else:
            parts.append(f'<line x1="{start}" y1="{y}" x2="{end}" y2="{y + 14}" stroke="{colour}" '
                         f'marker-end="url(#{marker})"/>')
        label = step.label() + ("  (lost on the link)" if step.lost else "")
        label += f"  MISMATCH: {step.mismatch}" if step.mismatch else ""
        parts.append(f'<text x="{(x_left + x_right) // 2}" y="{y + 3}" text-anchor="middle" fill="{colour}">'
                     f'{escape(label)}</text>')
        parts.append(f'<text x="8" y="{y + 12}" fill="#555">{step.time:.3f}s</text>')
        if step.states.get(left):
            parts.append(f'<text x="{x_left - 8}" y="{y + 18}" text-anchor="end" fill="#05a">'
                         f'{escape(step.states[left])}</text>')
        if step.states.get(right):
            parts.append(f'<text x="{x_right + 8}" y="{y + 18}" fill="#05a">{escape(step.states[right])}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
