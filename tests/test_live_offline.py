"""A live run and an offline check of its capture give the same verdict: one matcher, one clock.

A wrong expectation fails both ways, at the same line, with the same kind
(passing scripts agree both ways in tests/test_engine.py, from their one live run).
"""

from __future__ import annotations

from helpers import SCRIPTS, judged

from lab.capture.check import check_capture
from lab.capture.pcapfile import read_segments, read_timeline
from lab.script.settings import Settings
from lab.script.parser import parse


def offline(script, pcap: str):
    return check_capture(script, read_segments(pcap), pcap, Settings(), read_timeline(pcap))


def test_a_wrong_expectation_fails_both_ways_alike(tmp_path):
    path = SCRIPTS / "passive_open.pkt"
    text = path.read_text()
    wrong = parse(text.replace("+0 > . 1:1(0) ack 1001", "+0 > . 1:1(0) ack 1000"), str(path))
    pcap = str(tmp_path / "wrong.pcapng")
    live = judged(wrong, 4, Settings(pcap=pcap))
    checked = offline(wrong, pcap)
    assert live.failure is not None and checked.failure is not None
    assert (live.failure.line, live.failure.kind, live.failure.fields) == \
        (checked.failure.line, checked.failure.kind, checked.failure.fields) == (21, "content", ["ack: expected 1000, got 1001"])
