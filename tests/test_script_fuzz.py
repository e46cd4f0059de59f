"""Mutated scripts run against the kernel: a verdict or one clean line, never a crashed syscall thread.

(Parsing and preflight alone are fuzzed in tests/unit/test_parser_fuzz.py.)
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import judged

from lab.live.preflight import preflight
from lab.script.settings import Settings
from lab.judge.trace import KINDS
from lab.errors import LabError
from lab.script.parser import parse

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
        result = judged(script, 4, Settings())
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
