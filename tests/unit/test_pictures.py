"""Ladders with timed state changes, the state diagram and the animation, from a hand-made run."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from lab.views import animation
from lab.views import ladder
from lab.views import statediagram
from lab.judge.trace import Action, KernelEvent, RunResult, StateChange, Step
from lab.views.i18n import font_family


def step(time, sender, flags, seq, ack) -> Step:
    return Step(time, sender, sender == "client", f"{sender} >", flags, seq, seq, 0, ack, 502, (), seq, ack)


CHANGES = [
    StateChange(0.0010, "client", "CLOSED", "SYN_SENT", "tracepoint", 40002),
    StateChange(0.0011, "server", "LISTEN", "SYN_RECV", "capture", 8080),
    StateChange(0.0012, "client", "SYN_SENT", "ESTABLISHED", "tracepoint", 40002),
    StateChange(0.0013, "server", "SYN_RECV", "ESTABLISHED", "tracepoint", 8080),
    StateChange(0.0100, "client", "ESTABLISHED", "FIN_WAIT1", "tracepoint", 40002),
    StateChange(1.4000, "client", "FIN_WAIT1", "CLOSED", "tracepoint", 40002),
]
STEPS = [step(0.0011, "client", "S", 0, None), step(0.0012, "server", "S.", 0, 1), step(0.0013, "client", ".", 1, 1),
         step(0.0101, "client", "F.", 1, 1), step(0.2100, "client", "F.", 1, 1)]
ACTIONS = [Action(3, "syscall connect", "client", 0.0, 0.1, "0", time=0.0009),
           Action(5, "syscall close", "client", 0.01, 0.0, "0", time=0.0099)]
EVENTS = [KernelEvent(0.2099, "client", "retransmission (in FIN_WAIT1)")]


def run() -> RunResult:
    return RunResult("lab/course/exercises/orphan.pkt", 4, None, None, 1.5, STEPS, left="client", right="server",
                     actions=ACTIONS, state_changes=CHANGES, kernel_events=EVENTS, state_source="tracepoint",
                     sysctls=[("net.ipv4.tcp_orphan_retries", "1")])


def test_each_state_change_is_a_row_at_its_own_time_beside_its_endpoint():
    drawn = ladder.text_ladder(STEPS, "client", "server", extras=ladder.Extras.of(run())).splitlines()
    assert "sysctls set by the script: net.ipv4.tcp_orphan_retries=1" in drawn
    times = [float(row.split("s", 1)[0]) for row in drawn if re.match(r"^\s+\d+\.\d{4}s", row)]
    assert len(times) == len(STEPS) + len(CHANGES) + len(ACTIONS) + len(EVENTS) and times == sorted(times)
    closed = [row for row in drawn if row.lstrip().startswith("1.4000s")]
    assert len(closed) == 1 and "CLOSED" in closed[0].split("|")[0]  # on the client's side, at 1.4 s
    request = next(row for row in drawn if row.rstrip().endswith("SYN_RECV"))
    assert "untraced: at the segment that made it" in request
    assert drawn.index(request) > next(i for i, row in enumerate(drawn) if "S 0:0(0)" in row)
    assert any("connect() = 0" in row for row in drawn) and any("* retransmission" in row for row in drawn)


def test_a_fixture_without_state_changes_keeps_its_states_on_the_segments():
    with_states = [step(0.0, "client", "S", 0, None)]
    with_states[0].states = {"server": "SYN_RECV"}
    drawn = ladder.text_ladder(with_states, "client", "server", extras=None).splitlines()
    assert drawn[1].rstrip().endswith("SYN_RECV")


def test_mermaid_and_svg_carry_the_timed_rows():
    extras = ladder.Extras.of(run())
    text = ladder.mermaid(STEPS, "client", "server", extras)
    assert "Note left of L: FIN_WAIT1 -> CLOSED" in text and "Note left of L: connect() = 0" in text
    drawing = ET.fromstring(ladder.svg(STEPS, "client", "server", "orphan", extras))
    rows = [g for g in drawing.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "row"]
    assert len(rows) == len(STEPS) + len(CHANGES) + len(ACTIONS) + len(EVENTS)
    assert [float(g.get("data-time")) for g in rows] == sorted(float(g.get("data-time")) for g in rows)


def test_the_state_diagram_highlights_the_path_and_names_arrows_the_rfc_lacks():
    drawing = statediagram.svg(CHANGES, "client", "client")
    root = ET.fromstring(drawing)
    groups = {g.get("id"): g.get("class") for g in root.iter("{http://www.w3.org/2000/svg}g")}
    assert groups["node-SYN-SENT"] == "node visited" and groups["node-LISTEN"] == "node"
    assert groups["edge-CLOSED-SYN-SENT"] == "edge used" and groups["edge-CLOSED-LISTEN"] == "edge"
    assert groups["edge-FIN-WAIT-1-CLOSED-END"] == "edge used"  # the orphan dropped: no RFC arrow
    assert len([g for g in groups if g.startswith("node-")]) == 12  # 11 states, CLOSED drawn twice
    text = statediagram.text(CHANGES, "client")
    assert "[2:SYN-SENT]" in text and "[5:CLOSED]" in text and " listen " in text
    assert "FIN_WAIT1 -> CLOSED   (not in RFC 9293's figure)" in text
    assert "SYN_SENT -> ESTABLISHED   (rcv SYN,ACK / snd ACK)" in text


def test_the_server_path_starts_in_listen():
    text = statediagram.text(CHANGES, "server")
    assert "[1:LISTEN]" in text and "[2:SYN-RECEIVED]" in text and "capture" in text


def test_the_page_holds_everything_and_its_frames_follow_the_rows():
    page = animation.html_page(run(), animation.Story("orphan", "claim (001.txt): a claim", "文章原话",
                                                      "verdict on Linux: refined.", "0 socket(...)",
                                                      "/tmp/x/run.pcapng", references=(
                                                          "decided in the kernel (Linux 6.18): net/ipv4/tcp.c "
                                                          "tcp_close()", "standard: RFC 9293 3.6")))
    assert "a claim" in page and "文章原话" in page and "refined" in page and "0 socket(...)" in page
    assert '<p class="references">decided in the kernel (Linux 6.18): net/ipv4/tcp.c tcp_close()</p>' in page
    assert '<p class="references">standard: RFC 9293 3.6</p>' in page
    assert 'href="run.pcapng"' in page and '<html lang="en">' in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # self-contained
    data = json.loads(re.search(r'<script type="application/json" id="frames">(.*?)</script>', page, re.S)[1])
    assert len(data) == len(STEPS) + len(CHANGES) + len(ACTIONS) + len(EVENTS)
    moves = [frame for frame in data if "node" in frame]
    assert [frame["node"] for frame in moves if frame["endpoint"] == "client"] == [
        "Lnode-SYN-SENT", "Lnode-ESTABLISHED", "Lnode-FIN-WAIT-1", "Lnode-CLOSED-END"]
    for frame in moves:
        assert f'id="{frame["node"]}"' in page and f'id="{frame["edge"]}"' in page


def test_the_animated_svg_is_well_formed_and_lights_each_state_in_turn():
    drawing = animation.animated_svg(run(), "orphan")
    root = ET.fromstring(drawing)
    sets = list(root.iter("{http://www.w3.org/2000/svg}set"))
    row_sets = [s for s in sets if s.get("attributeName") == "opacity"]
    assert len(row_sets) == len(STEPS) + len(CHANGES) + len(ACTIONS) + len(EVENTS)
    begins = [float(s.get("begin").removeprefix("clock.begin+").removesuffix("s")) for s in row_sets]
    assert begins == sorted(begins)
    assert any(s.get("to") == animation.NOW for s in sets)


def test_the_page_speaks_chinese_when_asked():
    story = animation.Story("orphan", "文章说法（001.txt）：……", script="0 socket(...)", language="zh")
    page = animation.html_page(run(), story)
    assert '<html lang="zh">' in page and ">播放<" in page and "本次运行：通过" in page


def test_chinese_text_names_chinese_fonts():
    """The page's text and every ladder drawing (its header lines are Chinese under --lang zh) name the fonts."""
    page = animation.html_page(run(), animation.Story("orphan", language="zh"))
    assert f"body {{ font-family: {font_family('sans-serif')};" in page
    drawings = (ladder.svg(STEPS, "client", "server", "orphan", ladder.Extras.of(run(), "zh")),
                animation.animated_svg(run(), "orphan", "zh"),
                re.search(r'<svg[^>]*class="ladder".*?</svg>', page, re.S)[0])
    for drawing in drawings:
        assert ET.fromstring(drawing).get("font-family") == font_family("monospace")


def test_state_rows_name_the_port_when_an_endpoint_had_several_connections():
    changes = [StateChange(0.001, "client", "CLOSED", "SYN_SENT", "tracepoint", 40002),
               StateChange(0.002, "client", "CLOSED", "SYN_SENT", "tracepoint", 40004)]
    drawn = ladder.text_ladder([], "client", "server", extras=ladder.Extras(changes=changes))
    assert "(port 40002)" in drawn and "(port 40004)" in drawn
    single = ladder.text_ladder([], "client", "server", extras=ladder.Extras(changes=changes[:1]))
    assert "port" not in single
