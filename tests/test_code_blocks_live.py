"""%{ }% blocks on a real kernel: names kept from one block to the next, if, print() (lab/judge/code.py)."""

from __future__ import annotations

from pathlib import Path

from helpers import judged
from lab.script.parser import parse, parse_file

SCRIPT = Path(__file__).with_name("scripts") / "code_blocks.pkt"


def test_a_name_kept_from_an_earlier_block_compares_the_kernels_counters():
    result = judged(parse_file(str(SCRIPT)), 4)
    assert result.passed, result.failure
    # The SYN-ACK left from the request sock, not from the socket the block reads.
    assert "print() at line 10: segments out after the handshake: 0" in result.notes, result.notes


def test_a_wrong_expectation_in_such_a_block_fails_at_its_line_with_its_values():
    text = SCRIPT.read_text().replace("assert more == 1", "assert more == 2")
    result = judged(parse(text, str(SCRIPT)), 4)
    assert result.failure is not None and result.failure.line == 14
    assert result.failure.message == "assert more == 2 failed (more=1): segments sent since: 1"
