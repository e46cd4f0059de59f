"""A run played step by step: one self-contained HTML page, or an animated SVG for slides.

The articles teach the handshake and the close with hand-drawn animations;
these are drawn from a real run. Both show the ladder's rows (segments,
state changes, syscalls, the kernel's reasons; lab/views/ladder.py) appearing in
the order they happened, while each endpoint's state diagram
(lab/views/statediagram.py) lights the state it is in and the arrows it has taken.
The pace is even (one row per ``PACE`` seconds): the rows' real times are
printed on them, and milliseconds and seconds would not both be watchable.

The HTML page needs nothing but itself (inline SVG, CSS, a few lines of
JavaScript) and shows the whole run when scripts are off; the animated SVG
uses SMIL (``<set>``), which browsers and slide tools play without script.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from html import escape

from lab.views import ladder
from lab.views import statediagram
from lab.views.i18n import font_family, say

PACE = 0.8  # seconds per row
HIGHLIGHT, NOW = statediagram.HIGHLIGHT, "#ffd75e"


@dataclass(frozen=True)
class Story:
    """What the page tells besides the run, in its language: the exercise's claim and verdict, the script,
    the capture."""

    title: str
    claim: str = ""  # "claim (source): ...", as explain says it
    quote: str = ""  # the article's own sentence (shown under an English claim)
    verdict: str = ""  # "verdict on Linux: word. finding"
    script: str = ""
    pcap: str | None = None
    language: str = "en"
    references: tuple[str, ...] = ()  # "decided in the kernel: ...", "standard: ...", shown under the verdict


def frames(rows: list[ladder.Row], endpoints: tuple[str, str]) -> list[dict]:
    """Per row: which node each endpoint is in from then on, and the arrow it took (for the diagrams)."""
    current: dict[str, str] = {}
    result = []
    for index, row in enumerate(rows):
        frame = {"row": index, "time": round(row.time, 6), "kind": row.kind}
        change = row.change
        if change is not None and change.endpoint in endpoints:
            start = statediagram.node_of(change.old)
            end = statediagram.node_of(change.new, change.old)
            prefix = _prefix(endpoints, change.endpoint)
            current.setdefault(change.endpoint, start)
            frame.update(endpoint=change.endpoint, node=f"{prefix}node-{end}", came=f"{prefix}node-{start}",
                         edge=f"{prefix}edge-{start}-{end}")
            current[change.endpoint] = end
        result.append(frame)
    return result


def _prefix(endpoints: tuple[str, str], endpoint: str) -> str:
    return "L" if endpoint == endpoints[0] else "R"


def _diagram(run, endpoint: str, prefix: str) -> str:
    body = statediagram.svg_body(run.state_changes, endpoint, prefix=prefix, title=f"{endpoint}")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="diagram" viewBox="0 0 {statediagram.WIDTH} '
            f'{statediagram.HEIGHT}" font-family="sans-serif">' + "".join(body) + "</svg>")


STYLE = f"body {{ font-family: {font_family('sans-serif')}; margin: 1.5em; color: #222; }}" + """
.claim { font-size: 1.1em; } .verdict { font-weight: bold; }
.pictures { display: flex; gap: 1em; align-items: flex-start; flex-wrap: wrap; }
.diagrams { display: flex; flex-direction: column; gap: .5em; }
.diagram { width: 420px; border: 1px solid #ddd; }
.controls { margin: .8em 0; } .controls button { margin-right: .4em; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; }
body.playing .row { opacity: 0; } body.playing .row.shown { opacity: 1; }
body.playing .row.latest text { font-weight: bold; }
body.playing .node rect { fill: #f4f4f4; stroke: #555; stroke-width: 1; }
body.playing .node.seen rect { fill: #c8f0dc; stroke: #0a6; }
body.playing .node.now rect { fill: #ffd75e; stroke: #b80; stroke-width: 3; }
body.playing .edge line { stroke: #ccc; stroke-width: 1; }
body.playing .edge.seen line { stroke: #0a6; stroke-width: 3; }
"""

SCRIPT = """
const FRAMES = JSON.parse(document.getElementById('frames').textContent);
const rows = Array.from(document.querySelectorAll('.row'));
let at = -1, timer = null;
function show(k) {
  at = k;
  document.body.classList.add('playing');
  rows.forEach((row, i) => { row.classList.toggle('shown', i <= k); row.classList.toggle('latest', i === k); });
  document.querySelectorAll('.node, .edge').forEach(e => e.classList.remove('seen', 'now'));
  const now = {};
  for (const frame of FRAMES.slice(0, k + 1)) {
    if (!frame.node) continue;
    document.getElementById(frame.came)?.classList.add('seen');
    document.getElementById(frame.node)?.classList.add('seen');
    document.getElementById(frame.edge)?.classList.add('seen');
    now[frame.endpoint] = frame.node;
  }
  Object.values(now).forEach(id => document.getElementById(id)?.classList.add('now'));
  document.getElementById('scrub').value = k;
  const clock = document.getElementById('clock');
  clock.textContent = k >= 0 ? `${k + 1} / ${FRAMES.length}, t = ${FRAMES[k].time.toFixed(4)} s` : '';
}
function play() {
  clearInterval(timer);
  if (at >= FRAMES.length - 1) show(-1);
  timer = setInterval(() => { if (at >= FRAMES.length - 1) { clearInterval(timer); return; } show(at + 1); }, PACE_MS);
}
document.getElementById('play').onclick = play;
document.getElementById('step').onclick = () => { clearInterval(timer); show(Math.min(at + 1, FRAMES.length - 1)); };
document.getElementById('back').onclick = () => { clearInterval(timer); show(Math.max(at - 1, 0)); };
document.getElementById('all').onclick = () => { clearInterval(timer); document.body.classList.remove('playing'); };
const scrub = document.getElementById('scrub');
scrub.max = FRAMES.length - 1;
scrub.oninput = () => { clearInterval(timer); show(Number(scrub.value)); };
document.body.dataset.frames = String(FRAMES.length);
if (location.hash === '#play') play();
"""


def html_page(run, story: Story) -> str:
    """The page: claim and verdict, the ladder beside both state diagrams, controls, the script, the capture."""
    extras = ladder.Extras.of(run, story.language)
    geometry = ladder.SvgLadder(top=70 + 12 * len(extras.header()))
    row_parts = ladder.svg_rows(list(run.steps), run.left, run.right, extras, geometry)
    frame_parts = ladder.svg_frame(run.left, run.right, f"{os.path.basename(run.path)} (IPv{run.family})", geometry,
                                   extras)
    ladder_svg = (f'<svg xmlns="http://www.w3.org/2000/svg" class="ladder" width="{geometry.width}" '
                  f'height="{geometry.height}" viewBox="0 0 {geometry.width} {geometry.height}" '
                  f'{ladder.SVG_FONT}>' + "".join(frame_parts + row_parts) + "</svg>")
    endpoints = (run.left, run.right)
    data = json.dumps(frames(geometry.rows, endpoints)).replace("</", "<\\/")
    language = story.language
    pcap = ""
    if story.pcap:
        name = escape(os.path.basename(story.pcap))
        pcap = f'<p>{say("page capture", language, link=f"<a href={chr(34)}{name}{chr(34)}>{name}</a>")}</p>'
    verdict = say("pass", language) + ": " + say("every line matched", language) if run.passed else (
        say("fail", language) + ": " + (run.failure.message if run.failure else ""))
    claim = ""
    if story.claim:
        claim = f'<p class="claim">{escape(story.claim)}</p>'
        claim += f'<blockquote lang="zh">{escape(story.quote)}</blockquote>' if story.quote else ""
        claim += f'<p class="verdict">{escape(story.verdict)}</p>'
        claim += "".join(f'<p class="references">{escape(line)}</p>' for line in story.references)
    run_line = escape(say("page run", language, verdict=verdict, name=f"{os.path.basename(run.path)}, "
                                                                   f"IPv{run.family}"))
    return f"""<!doctype html>
<html lang="{language}"><head><meta charset="utf-8"><title>{escape(story.title)}</title><style>{STYLE}</style></head>
<body>
<h1>{escape(story.title)}</h1>
{claim}
<p>{run_line} {escape(" ".join(extras.header()))}</p>
<div class="controls"><button id="play">{say("page play", language)}</button>
<button id="back">{say("page back", language)}</button><button id="step">{say("page step", language)}</button>
<button id="all">{say("page all", language)}</button> <input type="range" id="scrub" min="-1" value="-1">
<span id="clock"></span></div>
<div class="pictures"><div>{ladder_svg}</div>
<div class="diagrams">{_diagram(run, run.left, "L")}{_diagram(run, run.right, "R")}</div></div>
<h2>{say("page script", language)}</h2>
<pre>{escape(story.script)}</pre>
{pcap}
<script type="application/json" id="frames">{data}</script>
<script>const PACE_MS = {int(PACE * 1000)};{SCRIPT}</script>
</body></html>
"""


def animated_svg(run, title: str, language: str = "en") -> str:
    """The same animation as one SVG (SMIL ``<set>``s on a looping clock): the ladder, both diagrams beside it."""
    extras = ladder.Extras.of(run, language)
    geometry = ladder.SvgLadder(top=70 + 12 * len(extras.header()))
    row_parts = ladder.svg_rows(list(run.steps), run.left, run.right, extras, geometry)
    frame_parts = ladder.svg_frame(run.left, run.right, title, geometry, extras)
    endpoints = (run.left, run.right)
    timeline = frames(geometry.rows, endpoints)
    total = PACE * (len(timeline) + 3)  # the whole run stays on screen a moment before it starts again
    scale = 0.5
    side_x = geometry.width + 10
    width = side_x + int(statediagram.WIDTH * scale) + 10
    height = max(geometry.height, int(2 * statediagram.HEIGHT * scale) + 20)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" {ladder.SVG_FONT}>',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<rect width="1" height="1" fill="none"><animate id="clock" attributeName="x" from="0" to="0" '
             f'dur="{total:.2f}s" begin="0s;clock.end"/></rect>']
    parts += frame_parts
    for index, part in enumerate(row_parts):
        at = PACE * (index + 1)
        parts.append(part.replace('<g class="row"', '<g opacity="0" class="row"', 1).replace(
            "</g>", f'<set attributeName="opacity" to="1" begin="clock.begin+{at:.2f}s" dur="{total - at:.2f}s"/></g>'))
    for number, endpoint in enumerate(endpoints):
        prefix = _prefix(endpoints, endpoint)
        body = "".join(statediagram.svg_body((), endpoint, prefix=prefix, title=endpoint))
        body = _with_sets(body, timeline, endpoint, total)
        y = number * (int(statediagram.HEIGHT * scale) + 10)
        parts.append(f'<g transform="translate({side_x},{y}) scale({scale})" font-family="sans-serif">{body}</g>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _with_sets(body: str, timeline: list[dict], endpoint: str, total: float) -> str:
    """Add to the diagram's nodes and arrows the <set>s that light them when the endpoint gets there."""
    lights: dict[str, list[str]] = {}
    mine = [frame for frame in timeline if frame.get("endpoint") == endpoint]
    for position, frame in enumerate(mine):
        at = PACE * (frame["row"] + 1)
        until = PACE * (mine[position + 1]["row"] + 1) if position + 1 < len(mine) else total
        if position == 0:
            lights.setdefault(frame["came"], []).append(_set("fill", "#c8f0dc", 0.0, total))
        lights.setdefault(frame["node"], []).append(_set("fill", "#c8f0dc", at, total - at))
        lights.setdefault(frame["node"], []).append(_set("fill", NOW, at, until - at))
        lights.setdefault(frame["edge"], []).append(_set("stroke", HIGHLIGHT, at, total - at)
                                                     + _set("stroke-width", "3", at, total - at))
    for element_id, sets in lights.items():
        shape = "<rect " if "node-" in element_id else "<line "
        start = body.find(f'id="{element_id}"')
        if start < 0:
            continue
        tag = body.find(shape, start)
        close = body.find("/>", tag)
        body = body[:close] + ">" + "".join(sets) + f"</{shape.strip('<').strip()}>" + body[close + 2:]
    return body


def _set(attribute: str, value: str, begin: float, duration: float) -> str:
    return (f'<set attributeName="{attribute}" to="{value}" begin="clock.begin+{begin:.2f}s" '
            f'dur="{max(duration, 0.01):.2f}s"/>')


def story_for(run, exercise=None, language: str = "en") -> Story:
    """The page's words: the exercise's claim, quote and verdict where the run is an exercise (as explain
    says them), else the script's own name."""
    try:
        with open(run.path, encoding="utf-8") as handle:
            script = handle.read()
    except OSError:
        script = ""
    if exercise is None:
        return Story(os.path.basename(run.path), script=script, pcap=run.pcap, language=language)
    from lab.course.claims import main_claim, reference_lines

    claim = main_claim(exercise)
    said = claim.quote if language == "zh" else claim.claim_en
    return Story(f"{exercise.name}: {exercise.title_in(language)}",
                 say("claim line", language, source=claim.source, said=said),
                 claim.quote if language == "en" else "",
                 say("verdict line", language, word=say(claim.verdict, language), finding=claim.finding(language)),
                 script, run.pcap, language, tuple(reference_lines(claim, language)))
