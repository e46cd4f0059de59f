"""The TCP state diagram (RFC 9293, section 3.3.2, figure 5), with the path one endpoint took in a run.

Eleven states, laid out as the RFC draws them: CLOSED at the top and again
at the bottom (where LAST-ACK and TIME-WAIT end), the passive side on the
left, the active side on the right. Each of the RFC's arrows carries its
event / action label. An endpoint's path comes from the run's state changes
(lab/live/states.py): the states it visited are filled and numbered in
order, the arrows it took are drawn thick; a change the figure has no arrow
for (a reset, an orphan dropped after its retries) is drawn dashed, and
named so in the terminal.

The kernel names states as sock_diag does (SYN_RECV, FIN_WAIT1); the
diagram uses the RFC's names (SYN-RECEIVED, FIN-WAIT-1). The SVG's nodes and
arrows carry ids (``<prefix>node-<STATE>``, ``<prefix>edge-<FROM>-<TO>``) so
the animated page (lab/views/animation.py) can light them up in turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from lab.judge.trace import StateChange

BOX_WIDTH, BOX_HEIGHT = 124, 30
WIDTH, HEIGHT = 600, 610
END = "CLOSED-END"  # the bottom CLOSED box: where a connection ends

# Node -> centre, in the RFC's arrangement.
NODES = {
    "CLOSED": (300, 40), "LISTEN": (300, 120),
    "SYN-RECEIVED": (120, 210), "SYN-SENT": (480, 210),
    "ESTABLISHED": (300, 300),
    "FIN-WAIT-1": (120, 390), "CLOSE-WAIT": (480, 390),
    "FIN-WAIT-2": (70, 480), "CLOSING": (250, 480), "LAST-ACK": (480, 480),
    "TIME-WAIT": (160, 570), END: (480, 570),
}
# The RFC's arrows and their labels (event / action).
EDGES = {
    ("CLOSED", "LISTEN"): "passive OPEN",
    ("CLOSED", "SYN-SENT"): "active OPEN / snd SYN",
    ("LISTEN", "CLOSED"): "CLOSE",
    ("LISTEN", "SYN-RECEIVED"): "rcv SYN / snd SYN,ACK",
    ("LISTEN", "SYN-SENT"): "SEND / snd SYN",
    ("SYN-SENT", "CLOSED"): "CLOSE",
    ("SYN-SENT", "SYN-RECEIVED"): "rcv SYN / snd ACK",
    ("SYN-RECEIVED", "LISTEN"): "rcv RST",
    ("SYN-SENT", "ESTABLISHED"): "rcv SYN,ACK / snd ACK",
    ("SYN-RECEIVED", "ESTABLISHED"): "rcv ACK of SYN",
    ("SYN-RECEIVED", "FIN-WAIT-1"): "CLOSE / snd FIN",
    ("ESTABLISHED", "FIN-WAIT-1"): "CLOSE / snd FIN",
    ("ESTABLISHED", "CLOSE-WAIT"): "rcv FIN / snd ACK",
    ("FIN-WAIT-1", "FIN-WAIT-2"): "rcv ACK of FIN",
    ("FIN-WAIT-1", "CLOSING"): "rcv FIN / snd ACK",
    ("FIN-WAIT-2", "TIME-WAIT"): "rcv FIN / snd ACK",
    ("CLOSING", "TIME-WAIT"): "rcv ACK of FIN",
    ("CLOSE-WAIT", "LAST-ACK"): "CLOSE / snd FIN",
    ("LAST-ACK", END): "rcv ACK of FIN",
    ("TIME-WAIT", END): "Timeout=2MSL",
}
LABEL_ON_THE_RIGHT = {("CLOSED", "SYN-SENT")}  # its left side is LISTEN's box
LABEL_AT = {("CLOSED", "SYN-SENT"): 0.7}  # where along the arrow its label goes (default: half way)
KERNEL_TO_RFC = {
    "CLOSED": "CLOSED", "CLOSE": "CLOSED", "LISTEN": "LISTEN", "SYN_SENT": "SYN-SENT", "SYN_RECV": "SYN-RECEIVED",
    "NEW_SYN_RECV": "SYN-RECEIVED", "ESTABLISHED": "ESTABLISHED", "FIN_WAIT1": "FIN-WAIT-1",
    "FIN_WAIT2": "FIN-WAIT-2", "CLOSE_WAIT": "CLOSE-WAIT", "CLOSING": "CLOSING", "LAST_ACK": "LAST-ACK",
    "TIME_WAIT": "TIME-WAIT",
}
HIGHLIGHT = "#0a6"
BOLD, GREEN, RESET = "\033[1m", "\033[32m", "\033[0m"


def node_of(state: str, came_from: str | None = None) -> str:
    """The box a kernel state is drawn in; CLOSED reached from anywhere but LISTEN and SYN-SENT is the end."""
    node = KERNEL_TO_RFC.get(state, state)
    if node == "CLOSED" and came_from is not None and KERNEL_TO_RFC.get(came_from) not in ("LISTEN", "SYN-SENT"):
        return END
    return node


def path(changes: Sequence[StateChange], endpoint: str) -> list[tuple[str, str, StateChange]]:
    """The endpoint's transitions as (from node, to node, change), in time order."""
    return [(node_of(change.old), node_of(change.new, change.old), change)
            for change in changes if change.endpoint == endpoint]


def visit_order(taken: list[tuple[str, str, StateChange]]) -> dict[str, list[int]]:
    """Node -> the positions (1, 2, ...) at which the path visited it."""
    order: dict[str, list[int]] = {}
    if taken:
        order.setdefault(taken[0][0], []).append(1)
    for number, (_, end, _) in enumerate(taken, start=2):
        order.setdefault(end, []).append(number)
    return order


def _border(centre: tuple[int, int], towards: tuple[int, int]) -> tuple[float, float]:
    """Where the line from a box's centre towards a point leaves the box."""
    (x, y), (tx, ty) = centre, towards
    dx, dy = tx - x, ty - y
    if dx == 0 and dy == 0:
        return x, y
    scale = min(BOX_WIDTH / 2 / abs(dx) if dx else float("inf"), BOX_HEIGHT / 2 / abs(dy) if dy else float("inf"))
    return x + dx * scale, y + dy * scale


def _edge(start: str, end: str, prefix: str, used: bool, in_rfc: bool, label: str) -> str:
    (x1, y1), (x2, y2) = NODES[start], NODES[end]
    length = max(((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5, 1)
    nx, ny = -(y2 - y1) / length, (x2 - x1) / length  # the arrow's left-hand side
    if (end, start) in EDGES or not in_rfc:  # two arrows between the same boxes: side by side
        shift = 14 if not in_rfc else 6
        x1, y1, x2, y2 = x1 + nx * shift, y1 + ny * shift, x2 + nx * shift, y2 + ny * shift
    (ax, ay), (bx, by) = _border((x1, y1), (x2, y2)), _border((x2, y2), (x1, y1))
    colour = HIGHLIGHT if used else "#999"
    dash = ' stroke-dasharray="5,3"' if not in_rfc else ""
    width = 3 if used else 1
    element_id = f"{prefix}edge-{start}-{end}"
    if (start, end) in LABEL_ON_THE_RIGHT:
        nx, ny = -nx, -ny
    anchor = "start" if nx > 0.01 else "end" if nx < -0.01 else "middle"
    at = LABEL_AT.get((start, end), 0.5)
    lx, ly = ax + (bx - ax) * at + nx * 5, ay + (by - ay) * at + ny * 5 + 3
    label_svg = (f'<text x="{lx:.0f}" y="{ly:.0f}" text-anchor="{anchor}" '
                 f'font-size="9" fill="#777">{escape(label)}</text>') if label else ""
    return (f'<g id="{element_id}" class="edge{" used" if used else ""}"><title>{escape(label)}</title>'
            f'<line x1="{ax:.1f}" y1="{ay:.1f}" x2="{bx:.1f}" y2="{by:.1f}" stroke="{colour}" stroke-width="{width}"'
            f'{dash} marker-end="url(#{prefix}arrow{"-used" if used else ""})"/>{label_svg}</g>')


def svg_body(changes: Sequence[StateChange], endpoint: str, prefix: str = "", title: str = "") -> list[str]:
    """The diagram's elements (without the outer <svg>), for embedding or a standalone file."""
    taken = path(changes, endpoint)
    order = visit_order(taken)
    used = {(start, end) for start, end, _ in taken}
    parts = [f'<defs><marker id="{prefix}arrow" markerWidth="8" markerHeight="6" refX="7" refY="3" orient="auto">'
             '<path d="M0,0 L8,3 L0,6 z" fill="#999"/></marker>'
             f'<marker id="{prefix}arrow-used" markerWidth="8" markerHeight="6" refX="7" refY="3" orient="auto">'
             f'<path d="M0,0 L8,3 L0,6 z" fill="{HIGHLIGHT}"/></marker></defs>',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>']
    if title:
        parts.append(f'<text x="8" y="18" font-size="13" font-weight="bold">{escape(title)}</text>')
    for (start, end), label in EDGES.items():
        parts.append(_edge(start, end, prefix, (start, end) in used, True, label))
    for start, end in sorted(used - set(EDGES)):
        if start != end:
            parts.append(_edge(start, end, prefix, True, False, "not in RFC 9293's figure"))
    for node, (x, y) in NODES.items():
        visited = node in order
        fill, stroke = ("#c8f0dc", HIGHLIGHT) if visited else ("#f4f4f4", "#555")
        name = "CLOSED" if node == END else node
        numbers = ",".join(map(str, order.get(node, [])))
        parts.append(f'<g id="{prefix}node-{node}" class="node{" visited" if visited else ""}">'
                     f'<rect x="{x - BOX_WIDTH / 2}" y="{y - BOX_HEIGHT / 2}" '
                     f'width="{BOX_WIDTH}" height="{BOX_HEIGHT}" '
                     f'rx="6" fill="{fill}" stroke="{stroke}" stroke-width="{2 if visited else 1}"/>'
                     f'<text x="{x}" y="{y + 4}" text-anchor="middle" font-size="12" font-weight="bold">{name}</text>'
                     + (f'<text x="{x + BOX_WIDTH / 2 - 3}" y="{y - BOX_HEIGHT / 2 + 10}" text-anchor="end" '
                        f'font-size="9" fill="{HIGHLIGHT}">{numbers}</text>' if numbers else "")
                     + "</g>")
    return parts


def svg(changes: Sequence[StateChange], endpoint: str, title: str = "") -> str:
    """A standalone SVG of the diagram with ``endpoint``'s path."""
    return "\n".join([f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
                      f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">',
                      *svg_body(changes, endpoint, title=title), "</svg>"]) + "\n"


GRID = [  # the terminal layout: rows of (column, node)
    [(25, "CLOSED")],
    [(25, "LISTEN")],
    [(6, "SYN-RECEIVED"), (44, "SYN-SENT")],
    [(24, "ESTABLISHED")],
    [(6, "FIN-WAIT-1"), (44, "CLOSE-WAIT")],
    [(0, "FIN-WAIT-2"), (22, "CLOSING"), (44, "LAST-ACK")],
    [(12, "TIME-WAIT"), (44, END)],
]


def text(changes: Sequence[StateChange], endpoint: str, color: bool = False) -> str:
    """The diagram in the terminal: visited states marked with their order, then the path with the RFC's labels."""
    taken = path(changes, endpoint)
    order = visit_order(taken)
    lines = [f"{endpoint}: the states it went through (RFC 9293's diagram; numbers: the order)"]
    for row in GRID:
        line = ""
        for column, node in row:
            name = "CLOSED" if node == END else node
            if node in order:
                box = f"[{','.join(map(str, order[node]))}:{name}]"
                box = f"{BOLD}{GREEN}{box}{RESET}" if color else box
            else:
                box = f" {name.lower()} "
            line += " " * max(column - _visible(line), 1 if line else 0) + box
        lines.append("  " + line)
    if not taken:
        lines.append("  (no state changes recorded)")
    for start, end, change in taken:
        label = EDGES.get((start, end), "not in RFC 9293's figure")
        note = f", {change.source}" if change.source != "tracepoint" else ""
        lines.append(f"  {change.time:8.4f}s  {change.old} -> {change.new}   ({label}{note})")
    return "\n".join(lines)


def _visible(line: str) -> int:
    """The printed width of a line that may hold colour escapes."""
    for escape_code in (BOLD, GREEN, RESET):
        line = line.replace(escape_code, "")
    return len(line)
