"""Malformed scripts: always one clean BadInput, never another exception.

Parsing and the preflight checks run before any namespace exists, so a bad
script can never leave a topology behind (the autouse fixture checks too).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lab.engine.runner import preflight, run_script
from lab.engine.settings import Settings
from lab.engine.trace import KINDS
from lab.errors import BadInput, LabError
from lab.script.parser import parse

SEED = (Path(__file__).with_name("scripts") / "passive_open.pkt").read_text()
ALPHABET = st.sampled_from(list("<>()[]{}:.,=~+-*|`%/\"'0123456789 \nSFRPackwinmssTSval...ecr"))


def check(text: str) -> None:
    try:
        script = parse(text, "fuzz.pkt")
        preflight(script, Settings())
    except BadInput as error:
        message = str(error)
        assert message.startswith("fuzz.pkt:") and "\n" not in message


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_scripts_fail_cleanly(data):
    text = SEED
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 8))
        insert = data.draw(st.text(ALPHABET, max_size=6))
        text = text[:position] + insert + text[position + cut:]
    check(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_fails_cleanly(text):
    check(text)


RUN_SEED = (Path(__file__).with_name("scripts") / "socket_options.pkt").read_text()
# Numbers after the timing column: sequence numbers, windows, options, arguments, return values.
NUMBER = re.compile(r"(?<=[\s(:,\[=<])\d+(?=[\s):,\]>])")
ODD_NUMBERS = st.sampled_from([0, 1, 7, 255, 256, 65535, 65536, 2**31, 2**32 - 1, 2**32, 2**63, 10**30])


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_runs_of_mutated_numbers_end_in_a_verdict_or_one_clean_line(data):
    """Not only parsing: the mutated script runs against the kernel and must not crash the lab."""
    lines = RUN_SEED.splitlines()
    candidates = [(i, m) for i, line in enumerate(lines) if not line.lstrip().startswith(("//", "`"))
                  for m in NUMBER.finditer(line) if m.start() > 6]
    index, match = data.draw(st.sampled_from(candidates))
    value = data.draw(ODD_NUMBERS)
    lines[index] = lines[index][:match.start()] + str(value) + lines[index][match.end():]
    crashed_threads = []
    previous_hook, threading.excepthook = threading.excepthook, crashed_threads.append
    try:
        script = parse("\n".join(lines), "fuzz.pkt")
        preflight(script, Settings())
        result = run_script(script, 4, Settings())
    except LabError as error:
        assert str(error).startswith("fuzz.pkt") and "\n" not in str(error)
        return
    finally:
        threading.excepthook = previous_hook
        assert not crashed_threads, [args.exc_value for args in crashed_threads]
    if not result.passed:  # a verdict names a line of the script, its kind, and says what in one line
        assert 1 <= result.failure.line <= len(lines)
        assert result.failure.kind in KINDS
        assert result.failure.message and "\n" not in result.failure.message
