"""A live run and an offline check of its capture give the same verdict: one matcher, one clock.

Every engine test script runs live with --pcap; its capture is then
verified offline against the same script (the lab's own segments judged
too, the clock anchored by the timeline the capture carries). A wrong
expectation fails both ways, at the same line, with the same kind.
"""

from __future__ import annotations

import pytest
from helpers import SCRIPTS

from lab.capture.check import check_capture
from lab.capture.pcapfile import read_segments, read_timeline
from lab.engine.runner import run_script
from lab.engine.settings import Settings
from lab.script.parser import parse, parse_file

ENGINE_SCRIPTS = sorted(SCRIPTS.glob("*.pkt"))


def offline(script, pcap: str):
    return check_capture(script, read_segments(pcap), pcap, Settings(), read_timeline(pcap))


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("path", ENGINE_SCRIPTS, ids=lambda p: p.stem)
def test_live_and_offline_agree(path, family, tmp_path):
    script = parse_file(str(path))
    pcap = str(tmp_path / "run.pcapng")
    live = run_script(script, family, Settings(pcap=pcap))
    assert live.passed, live.failure
    checked = offline(script, pcap)
    assert checked.passed, checked.failure
    assert [(s.line, s.sender, s.flags, s.seq, s.ack) for s in checked.steps if s.line] == \
        [(s.line, s.sender, s.flags, s.seq, s.ack) for s in live.steps if s.line]


def test_a_wrong_expectation_fails_both_ways_alike(tmp_path):
    path = SCRIPTS / "passive_open.pkt"
    text = path.read_text()
    wrong = parse(text.replace("+0 > . 1:1(0) ack 1001", "+0 > . 1:1(0) ack 1000"), str(path))
    pcap = str(tmp_path / "wrong.pcapng")
    live = run_script(wrong, 4, Settings(pcap=pcap))
    checked = offline(wrong, pcap)
    assert live.failure is not None and checked.failure is not None
    assert (live.failure.line, live.failure.kind, live.failure.fields) == \
        (checked.failure.line, checked.failure.kind, checked.failure.fields) == (21, "content", ["ack: expected 1000, got 1001"])
