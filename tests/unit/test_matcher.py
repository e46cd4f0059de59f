"""The matcher on synthetic segments: the rules live runs and offline checks share.

No kernel here: segments are made by hand and fed through the capture
source, the way ``tcplab verify`` feeds a file. Each rule has a case that
passes and a case that must fail, with the kind of failure it must report.
"""

from __future__ import annotations

import pytest

from lab.judge.trace import Difference
from segments import capture, from_kernel, from_lab

from lab.capture.check import check_capture
from lab.script.settings import Settings
from lab.script.parser import parse

HANDSHAKE = """\
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 65535 <mss 1460>
+0 > S. 0:0(0) ack 1 <mss 1460>
+.01 < . 1:1(0) ack 1 win 257
"""
HANDSHAKE_SEGMENTS = [(0.0, from_lab("S", 0, window=65535, options=[("MSS", 1460)])),
                      (0.0001, from_kernel("S.", 0, 1, options=[("MSS", 1460)]))]


def check(text: str, *timed, timeline=None, **settings):
    return check_capture(parse(text, "t.pkt"), capture(*timed), "t.pcapng", Settings(**settings), timeline)


def test_an_exact_handshake_passes_and_records_steps_as_data():
    result = check(HANDSHAKE, *HANDSHAKE_SEGMENTS, (0.0101, from_lab(".", 1, 1)))
    assert result.passed, result.failure
    assert [(step.sender, step.flags, step.seq, step.ack, step.line) for step in result.steps] == [
        ("lab", "S", 0, None, 4), ("kernel", "S.", 0, 1, 5), ("lab", ".", 1, 1, 6)]
    assert result.steps[2].text() == "< . 1:1(0) ack 1 win 257"


@pytest.mark.parametrize("segment, differences", [
    (from_kernel("S.", 0, 2, options=[("MSS", 1460)]), [("ack", "1", "2")]),
    (from_kernel("S", 0, options=[("MSS", 1460)]), [("flags", "S.", "S"), ("ack", "1", "None")]),  # no ACK bit
    (from_kernel("S.", 0, 1, options=[("MSS", 1400)]), [("options", "<mss 1460>", "<mss 1400>")]),
], ids=["ack", "flags", "options"])
def test_a_wrong_field_is_a_content_failure_naming_it(segment, differences):
    result = check(HANDSHAKE, HANDSHAKE_SEGMENTS[0], (0.0001, segment))
    assert result.failure.kind == "content"
    assert result.failure.line == 5
    assert result.failure.differences == tuple(Difference(*diff) for diff in differences)
    assert result.failure.fields == [f"{field}: expected {expected}, got {actual}" for field, expected, actual in differences]


def test_tolerance_edges_for_the_kernel():
    text = HANDSHAKE + "+.01 > . 1:1(0) ack 1\n"  # 4 ms floor: 12.5 % of 10 ms is less
    inside = check(text, *HANDSHAKE_SEGMENTS, (0.0101, from_lab(".", 1, 1)), (0.0101 + 0.0139, from_kernel(".", 1, 1)))
    assert inside.passed, inside.failure
    late = check(text, *HANDSHAKE_SEGMENTS, (0.0101, from_lab(".", 1, 1)), (0.0101 + 0.0141, from_kernel(".", 1, 1)))
    assert late.failure.kind == "timing" and late.failure.line == 7
    early = check(text, *HANDSHAKE_SEGMENTS, (0.0101, from_lab(".", 1, 1)), (0.0101 + 0.0059, from_kernel(".", 1, 1)))
    assert early.failure.kind == "timing" and early.failure.line == 7


def test_the_lab_late_is_the_labs_fault_not_the_kernels():
    late = check(HANDSHAKE, *HANDSHAKE_SEGMENTS, (0.0101 + 0.005, from_lab(".", 1, 1)))
    assert late.failure.kind == "lab-late"
    assert "the lab sent this segment" in late.failure.message
    on_time = check(HANDSHAKE, *HANDSHAKE_SEGMENTS, (0.0101 + 0.0035, from_lab(".", 1, 1)))
    assert on_time.passed, on_time.failure


def test_a_timeline_anchors_the_first_segment_and_the_syscalls():
    """A tcplab capture records script time 0 and when each syscall began: the first segment is judged too."""
    anchors = {1: 100.0, 2: 100.0, 3: 100.0}
    timeline = {"zero": 100.0, "anchors": anchors}
    shifted = [(100.0 + time, segment) for time, segment in HANDSHAKE_SEGMENTS]
    assert check(HANDSHAKE, *shifted, (100.0101, from_lab(".", 1, 1)), timeline=timeline).passed
    late_first = [(100.006 + time, segment) for time, segment in HANDSHAKE_SEGMENTS]
    result = check(HANDSHAKE, *late_first, (100.0161, from_lab(".", 1, 1)), timeline=timeline)
    assert result.failure.kind == "lab-late" and result.failure.line == 4


def test_one_segment_may_carry_two_lines_coalesced():
    text = HANDSHAKE + "+.01 > P. 1:101(100) ack 1\n+0 > P. 101:201(100) ack 1\n"
    result = check(text, *HANDSHAKE_SEGMENTS, (0.0101, from_lab(".", 1, 1)), (0.0201, from_kernel("P.", 1, 1, 200)))
    assert result.passed, result.failure
    assert result.steps[-1].line == 7


def test_several_segments_may_carry_one_lines_payload():
    text = HANDSHAKE + "+.01 > P. 1:2001(2000) ack 1\n"
    split = [(0.0201, from_kernel(".", 1, 1, 1000)), (0.0202, from_kernel("P.", 1001, 1, 1000))]
    result = check(text, *HANDSHAKE_SEGMENTS, (0.0101, from_lab(".", 1, 1)), *split)
    assert result.passed, result.failure
    short = check(text, *HANDSHAKE_SEGMENTS, (0.0101, from_lab(".", 1, 1)), split[0])
    assert "length: expected 2000, got 1000" in short.failure.fields


def test_a_segment_from_the_wrong_sender_fails():
    text = HANDSHAKE + "+.01 > . 1:1(0) ack 1\n"
    result = check(text, *HANDSHAKE_SEGMENTS, (0.0101, from_lab(".", 1, 1)), (0.0201, from_lab(".", 1, 1)))
    assert "the lab sent a segment where the script expects the kernel's" in result.failure.message
    assert result.failure.line == 7


OBSERVE = """\
0 client > S 0:0(0) <...>
+0 server > S. 0:0(0) ack 1 <...>
+0 client > . 1:1(0) ack 1
+.1 client > F. 1:1(0) ack 1
+0 server > F. 1:1(0) ack 1
"""


def observe_segments(fins):
    client = ("198.18.0.2", "198.18.0.1", 40000, 8080)
    server = ("198.18.0.1", "198.18.0.2", 8080, 40000)
    from lab.tcp.packets import Segment, text_to_flags

    def seg(end, flags, seq, ack):
        return Segment(*end, text_to_flags(flags), seq, ack, 1000)
    opening = [(0.0, seg(client, "S", 100, 0)), (0.0001, seg(server, "S.", 900, 101)), (0.0002, seg(client, ".", 101, 901))]
    closing = {"client": seg(client, "F.", 101, 901), "server": seg(server, "F.", 901, 101)}
    return [*opening, *((0.1002 + i * 0.0001, closing[who]) for i, who in enumerate(fins))]


@pytest.mark.parametrize("order", [("client", "server"), ("server", "client")])
def test_two_real_endpoints_at_the_same_moment_match_in_either_order(order):
    assert check(OBSERVE, *observe_segments(order)).passed


def test_one_senders_segments_do_not_swap():
    text = OBSERVE.replace("+0 server > F. 1:1(0) ack 1", "+0 client > . 2:2(0) ack 1")
    result = check(text, *observe_segments(("client", "server")))
    assert not result.passed and result.failure.line == 5
    assert result.failure.message == "the server sent a segment where the script expects the client's"


def test_only_lines_one_segment_could_carry_are_coalesced():
    """An ACK riding on a FIN, or two writes in one segment, are one segment; two FINs (a retransmission
    after the first) or lines acknowledging different bytes are not: each must match a segment of its own."""
    from lab.judge.verify import one_segment

    def lines(*texts):
        return [event for event in parse("".join(f"+0 {text}\n" for text in texts), "t.pkt").events]

    assert one_segment(lines("> . 1:1(0) ack 102", "> F. 1:1(0) ack 102"))
    assert one_segment(lines("> P. 1:1001(1000) ack 1", "> P. 1001:2001(1000) ack 1"))
    assert not one_segment(lines("> F. 1:1(0) ack 1", "> F. 1:1(0) ack 1"))
    assert not one_segment(lines("> . 1:1(0) ack 2", "> F. 1:1(0) ack 1"))
    assert not one_segment(lines("> P. 1:1001(1000) ack 1", "> P. 2001:3001(1000) ack 1"))
