"""Ladder diagrams of a finished run: terminal text, Mermaid, SVG.

Two lifelines (the lab or client on the left, the kernel or server on the
right), time running down, an arrow per segment labelled with flags, seq,
ack and length. The segment that failed a run is marked on its arrow; a
segment the link dropped (a ``link lose`` line) is an arrow that stops short
of the receiver, with an X. Renderers read finished traces only.

States: a live run carries its state changes with the moment each happened
(``RunResult.state_changes``, from the kernel's tracepoints or sock_diag
samples, lab/live/states.py): each is a row of its own at its real time,
beside its endpoint's lifeline, as are the applications' syscalls with their
results (``RunResult.actions``) and the kernel's reasons for a segment
(retransmission, reset). A fixture (``tcplab explain``) has no such record:
its rows show the state the script asserts after each segment.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from lab.judge.trace import Action, KernelEvent, PendingTimer, StateChange, Step
from lab.views.i18n import font_family, say

ARROW_WIDTH = 44
STATE_WIDTH = 12
RED, RESET = "\033[31m", "\033[0m"
SOURCE_NOTES = {"sampled": "sampled", "capture": "untraced: at the segment that made it",
                "tracepoint+sock_diag": "sock_diag"}
# The root <svg>'s font in every ladder drawing (file, page, animation): its header lines are Chinese under --lang zh.
SVG_FONT = f'font-family="{font_family("monospace")}" font-size="13"'


@dataclass(frozen=True)
class Extras:
    """What a live run adds to its segments: state changes, syscalls, the kernel's reasons, sysctls."""

    changes: Sequence[StateChange] = ()
    actions: Sequence[Action] = ()
    kernel_events: Sequence[KernelEvent] = ()
    sysctls: Sequence[tuple[str, str]] = ()
    source: str = ""  # tracepoint or sampled
    timers: Sequence[PendingTimer] = ()
    language: str = "en"  # of the header lines

    @classmethod
    def of(cls, run, language: str = "en") -> Extras:
        """From a RunResult."""
        return cls(tuple(run.state_changes), tuple(run.actions), tuple(run.kernel_events), tuple(run.sysctls),
                   run.state_source, tuple(run.timers), language)

    def header(self) -> list[str]:
        lines = []
        if self.source:
            lines.append(say("states traced" if self.source == "tracepoint" else "states sampled", self.language))
        if self.sysctls:
            lines.append(say("sysctls set", self.language,
                             sysctls=", ".join(f"{key}={value}" for key, value in self.sysctls)))
        return lines


@dataclass(frozen=True)
class Row:
    """One row of a ladder: a segment, a state change, a syscall or a kernel event, at its time."""

    time: float
    kind: str  # segment, state, syscall, kernel, timer
    endpoint: str = ""
    text: str = ""
    step: Step | None = None
    change: StateChange | None = None


def syscall_text(action: Action) -> str:
    """``connect() = -1 ECONNREFUSED``, as a script writes a call."""
    name = action.what.removeprefix("syscall ")
    text = f"{name}()" + (f" = {action.result}" if action.result else "")
    return text + (f" ({action.late_ms:+.1f} ms)" if abs(action.late_ms) >= 1 else "")


def state_text(change: StateChange) -> str:
    note = change_note(change)
    return f"{change.old} -> {change.new}" + (f" ({note})" if note else "")


def change_note(change: StateChange, ports: Sequence[int] = ()) -> str:
    """Where an untraced state came from, and the socket's port when its endpoint had several."""
    notes = [SOURCE_NOTES.get(change.source, "")]
    if change.port and len(ports) > 1:
        notes.append(f"port {change.port}")
    return ", ".join(filter(None, notes))


def endpoint_ports(changes: Sequence[StateChange]) -> dict[str, list[int]]:
    """Each endpoint's local ports in its state changes (several: several connections)."""
    ports: dict[str, list[int]] = {}
    for change in changes:
        if change.port and change.port not in ports.setdefault(change.endpoint, []):
            ports[change.endpoint].append(change.port)
    return ports


def timeline(steps: Sequence[Step], extras: Extras | None) -> list[Row]:
    """Every row in time order; at the same moment a syscall, then a state change, a kernel event, a segment."""
    rows = [Row(step.time, "segment", step.sender, step.label(), step=step) for step in steps]
    if extras is not None:
        rows += [Row(change.time, "state", change.endpoint, state_text(change), change=change)
                 for change in extras.changes]
        rows += [Row(action.script_time if action.time is None else action.time, "syscall", action.endpoint,
                     syscall_text(action)) for action in extras.actions if action.what.startswith("syscall ")]
        rows += [Row(event.time, "kernel", event.endpoint, event.text) for event in extras.kernel_events]
        rows += [Row(timer.time, "timer", timer.endpoint, f"{timer.timer} timer: {timer.left_ms / 1000:.3f} s left")
                 for timer in extras.timers]
    order = {"syscall": 0, "state": 1, "kernel": 2, "timer": 2, "segment": 3}

    def key(row: Row) -> tuple[float, int]:  # a request sock is made by the SYN at its time: after it
        return row.time, 4 if row.change is not None and row.change.source == "capture" else order[row.kind]
    return sorted(rows, key=key)


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


def _beside(text: str, on_left: bool) -> str:
    """Text between the lifelines, against the endpoint's own lifeline."""
    text = text if len(text) <= ARROW_WIDTH - 2 else text[: ARROW_WIDTH - 5] + "..."
    return f" {text:<{ARROW_WIDTH - 1}}" if on_left else f"{text:>{ARROW_WIDTH - 1}} "


def text_ladder(steps: list[Step], left: str, right: str, color: bool = False, extras: Extras | None = None) -> str:
    """The ladder as terminal text."""
    left_bar = 9 + 2 + STATE_WIDTH + 1  # where "|" of the left lifeline sits in a row
    right_bar = left_bar + 1 + ARROW_WIDTH
    header = " " * max(left_bar - len(left) // 2, 0) + left
    header += " " * max(right_bar - len(right) // 2 - len(header), 1) + right
    lines = [header] + (extras.header() if extras else [])
    timed = extras is not None and bool(extras.changes)  # states on rows of their own
    ports = endpoint_ports(extras.changes if extras else ())
    for row in timeline(steps, extras):
        on_left = row.endpoint == left
        if row.kind == "segment":
            step = row.step
            left_state = "" if timed else step.states.get(left, "")
            right_state = "" if timed else step.states.get(right, "")
            text = f"{step.time:8.4f}s  {left_state:<{STATE_WIDTH}} |{_arrow(step)}| {right_state}"
            if step.lost:
                text += "  (lost on the link)"
            if step.mismatch:
                mark = f"  <- MISMATCH: {step.mismatch}"
                text = f"{RED}{text}{mark}{RESET}" if color else text + mark
        elif row.kind == "state":
            change = row.change
            note = change_note(change, ports.get(change.endpoint, ()))
            beside = _beside(f"({note})" if note else "", on_left)
            left_state, right_state = (change.new, "") if on_left else ("", change.new)
            text = f"{row.time:8.4f}s  {left_state:<{STATE_WIDTH}} |{beside}| {right_state}"
        else:
            mark = {"kernel": "* ", "timer": "~ "}.get(row.kind, "")
            text = f"{row.time:8.4f}s  {'':<{STATE_WIDTH}} |{_beside(mark + row.text, on_left)}|"
        lines.append(text.rstrip())
    return "\n".join(lines)


def mermaid(steps: list[Step], left: str, right: str, extras: Extras | None = None) -> str:
    """A Mermaid sequenceDiagram (GitHub renders it in Markdown)."""
    lines = ["sequenceDiagram", f"    participant L as {left}", f"    participant R as {right}"]
    previous: dict[str, str] = {}
    timed = extras is not None and bool(extras.changes)
    for row in timeline(steps, extras):
        node = "L" if row.endpoint == left else "R"
        side = "left of" if node == "L" else "right of"
        if row.kind != "segment":
            lines.append(f"    Note {side} {node}: {row.text.replace(';', ',').replace('#', '')}")
            continue
        step = row.step
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
            if state and previous.get(name) != state and not timed:
                side = "left of" if node == "L" else "right of"
                lines.append(f"    Note {side} {node}: {state}")
                previous[name] = state
    return "\n".join(lines) + "\n"


@dataclass
class SvgLadder:
    """The SVG ladder's geometry, shared with the animated page (lab/views/animation.py)."""

    width: int = 760
    top: int = 70
    row: int = 30
    x_left: int = 190
    x_right: int = 570
    rows: list[Row] = field(default_factory=list)

    @property
    def height(self) -> int:
        return self.top + self.row * (len(self.rows) + 1)


def svg_rows(steps: Sequence[Step], left: str, right: str, extras: Extras | None, geometry: SvgLadder) -> list[str]:
    """One ``<g class="row">`` per row (the animation shows them one by one), each with its time."""
    geometry.rows = timeline(steps, extras)
    timed = extras is not None and bool(extras.changes)
    ports = endpoint_ports(extras.changes if extras else ())
    x_left, x_right = geometry.x_left, geometry.x_right
    parts = []
    for index, row in enumerate(geometry.rows):
        y = geometry.top + geometry.row * index + 10
        on_left = row.endpoint == left
        x_life = x_left if on_left else x_right
        group = [f'<g class="row" id="row-{index}" data-time="{row.time:.6f}" data-kind="{row.kind}">',
                 f'<text x="8" y="{y + 8}" fill="#555">{row.time:.4f}s</text>']
        if row.kind == "segment":
            group += _svg_segment(row.step, y, x_left, x_right)
            if not timed:
                if row.step.states.get(left):
                    group.append(f'<text x="{x_left - 8}" y="{y + 18}" text-anchor="end" fill="#05a">'
                                 f'{escape(row.step.states[left])}</text>')
                if row.step.states.get(right):
                    group.append(f'<text x="{x_right + 8}" y="{y + 18}" fill="#05a">'
                                 f'{escape(row.step.states[right])}</text>')
        elif row.kind == "state":
            change = row.change
            anchor, x = ("end", x_left - 8) if on_left else ("start", x_right + 8)
            style = ' font-style="italic"' if change.source == "sampled" else ""
            note = change_note(change, ports.get(change.endpoint, ()))
            group.append(f'<circle cx="{x_life}" cy="{y + 4}" r="4" fill="#05a"/>')
            group.append(f'<text x="{x}" y="{y + 8}" text-anchor="{anchor}" fill="#05a" font-weight="bold"{style}>'
                         f'{escape(change.new)}</text>')
            if note:
                group.append(f'<text x="{x}" y="{y + 20}" text-anchor="{anchor}" fill="#888" font-size="10">'
                             f'{escape(note)}</text>')
        else:
            colour = {"syscall": "#080", "kernel": "#b60", "timer": "#777"}[row.kind]
            anchor, x = ("start", x_left + 8) if on_left else ("end", x_right - 8)
            group.append(f'<text x="{x}" y="{y + 8}" text-anchor="{anchor}" fill="{colour}">{escape(row.text)}</text>')
        group.append("</g>")
        parts.append("".join(group))
    return parts


def _svg_segment(step: Step, y: int, x_left: int, x_right: int) -> list[str]:
    parts = []
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
    return parts


def svg_frame(left: str, right: str, title: str, geometry: SvgLadder, extras: Extras | None) -> list[str]:
    """The drawing around the rows: title, names, lifelines, arrow heads, the header lines."""
    width, height, top = geometry.width, geometry.height, geometry.top
    x_left, x_right = geometry.x_left, geometry.x_right
    parts = [
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width // 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<text x="{x_left}" y="{top - 22}" text-anchor="middle" font-weight="bold">{escape(left)}</text>',
        f'<text x="{x_right}" y="{top - 22}" text-anchor="middle" font-weight="bold">{escape(right)}</text>',
        f'<line x1="{x_left}" y1="{top - 12}" x2="{x_left}" y2="{height - 10}" stroke="black"/>',
        f'<line x1="{x_right}" y1="{top - 12}" x2="{x_right}" y2="{height - 10}" stroke="black"/>',
        '<defs><marker id="head" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">'
        '<path d="M0,0 L10,4 L0,8 z" fill="black"/></marker>'
        '<marker id="bad" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">'
        '<path d="M0,0 L10,4 L0,8 z" fill="#c00"/></marker></defs>',
    ]
    for index, line in enumerate(extras.header() if extras else []):
        parts.append(f'<text x="{width // 2}" y="{34 + 12 * index}" text-anchor="middle" font-size="10" '
                     f'fill="#555">{escape(line)}</text>')
    return parts


def svg(steps: list[Step], left: str, right: str, title: str = "", extras: Extras | None = None) -> str:
    """The ladder as a standalone SVG drawing."""
    geometry = SvgLadder(top=70 + 12 * len(extras.header() if extras else []))
    rows = svg_rows(steps, left, right, extras, geometry)
    width, height = geometry.width, geometry.height
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" {SVG_FONT}>']
    parts += svg_frame(left, right, title, geometry, extras) + rows + ["</svg>"]
    return "\n".join(parts) + "\n"
