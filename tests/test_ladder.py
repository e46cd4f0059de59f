"""Ladder diagrams from real runs: states beside the lifelines, the failing arrow marked.

The runs are real (the kernel answers); the diagrams are checked as text:
terminal ladder, Mermaid and SVG, with and without colour.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from helpers import SCRIPTS, judged, tcplab
from lab.views import ladder
from lab.course.catalogue import find
from lab.script.settings import Settings
from lab.script.parser import parse, parse_file

WRONG_ACK = ("+0 > S. 0:0(0) ack 1 <...>", "+0 > S. 0:0(0) ack 7 <...>")


def failing_run():
    exercise = find("close-passive")
    text = exercise.script.read_text()
    assert text.count(WRONG_ACK[0]) == 1
    return judged(parse(text.replace(*WRONG_ACK), str(exercise.script)), 4, Settings())


def passing_run():
    return judged(find("close-passive").runnable(), 4, Settings())


def test_a_state_line_gives_the_rows_before_it_their_state():
    """No state is sampled between a kernel segment and a "+0 <" answer (it would make the lab late); the
    script's own state line after the SYN-ACK is the kernel's word for the SYN and SYN-ACK rows."""
    result = judged(parse_file(str(SCRIPTS / "passive_open.pkt")), 4, Settings())
    assert result.passed
    rows = ladder.text_ladder(result.steps, result.left, result.right, color=False).splitlines()
    assert [row.rstrip().endswith("SYN_RECV") for row in rows[1:3]] == [True, True]
    assert rows[3].rstrip().endswith("ESTABLISHED")


def test_text_ladder_shows_arrows_and_kernel_states():
    result = passing_run()
    drawn = ladder.text_ladder(result.steps, result.left, result.right, color=False)
    lines = drawn.splitlines()
    assert "lab" in lines[0] and "kernel" in lines[0]
    assert any("F. 1:1(0) ack 1" in line and "<-" in line and "FIN_WAIT1" in line for line in lines)
    assert lines[-1].rstrip().endswith("TIME_WAIT")
    assert "\033[" not in drawn and "MISMATCH" not in drawn


def test_the_failing_arrow_is_marked_everywhere():
    result = failing_run()
    assert not result.passed
    drawn = ladder.text_ladder(result.steps, result.left, result.right, color=True)
    marked = [line for line in drawn.splitlines() if "MISMATCH" in line]
    assert len(marked) == 1 and "ack: expected 7, got 1" in marked[0] and "\033[31m" in marked[0]
    crossed = [line.strip() for line in ladder.mermaid(result.steps, result.left, result.right).splitlines()
               if "-x" in line]
    assert crossed == ["R-xL: S. 0:0(0) ack 1 (MISMATCH: ack: expected 7, got 1)"]  # the kernel's SYN-ACK
    svg = ladder.svg(result.steps, result.left, result.right, "close-passive")
    ET.fromstring(svg)  # well-formed
    assert "MISMATCH: ack: expected 7, got 1" in svg and "#c00" in svg


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert ladder.use_color(Terminal()) and not ladder.use_color(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not ladder.use_color(Terminal())


def test_mermaid_is_a_sequence_diagram_with_both_participants():
    result = passing_run()
    text = ladder.mermaid(result.steps, result.left, result.right)
    assert text.splitlines()[0].strip() == "sequenceDiagram"
    assert "participant L as lab" in text and "participant R as kernel" in text
    assert text.count("->>") == len(result.steps)


def test_run_prints_the_ladder_without_escapes_when_piped(tmp_path):
    svg = tmp_path / "ladder.svg"
    result = tcplab("run", "close-passive", "--ip-version", "4", "--svg", str(svg))
    assert result.returncode == 0, result.stdout
    assert "TIME_WAIT" in result.stdout and "\033[" not in result.stdout
    ET.parse(svg)
