"""A selftests run as the kernel's runner prints it (KTAP) or as a person reads it, and as JUnit cases.

KTAP is what ksft_runner.sh prints: ``TAP version 13``, ``1..N``, ``ok`` or
``not ok`` per (script, family), ``# SKIP`` with the reason, ``# XFAIL`` for a
failure on a machine marked slow, a failure's report as ``# `` diagnostics,
and a totals line.
"""

from __future__ import annotations

from lab.views.report import made_again
from lab.views.results import Case

FAMILY_NAMES = {4: "ipv4", 6: "ipv6"}


def ktap_line(number: int, result, slow: bool = False) -> str:
    """One KTAP result line, as ksft_runner.sh's ktap helpers print it (on a slow machine a failure is
    an expected one, XFAIL, as there)."""
    description = f"{result.script} {FAMILY_NAMES[result.family]}"
    if result.result == "skip":
        return f"ok {number} {description} # SKIP {result.reason}"
    if result.result == "fail" and slow:
        return f"ok {number} {description} # XFAIL"
    return f"{'ok' if result.result == 'pass' else 'not ok'} {number} {description}"


def result_lines(number: int, result, ktap: bool, slow: bool = False) -> list[str]:
    """What one finished (script, family) prints: in KTAP its result line after ``# `` diagnostics (a
    failure's report), else one line a person reads; either way a line when it was made again."""
    description = f"{result.script} {FAMILY_NAMES[result.family]}"
    again = [f"{description}: {made_again(result.first_try)}"] if result.first_try is not None else []
    if not ktap:
        return [f"{result.result.upper():4} {description}" + (f"  {result.reason}" if result.reason else ""),
                *(f"     {line}" for line in again)]
    failed = (result.report or result.reason).splitlines() if result.result == "fail" else []
    return [*(f"# {line}" for line in failed + again), ktap_line(number, result, slow)]


def totals_line(results: list, slow: bool = False) -> str:
    counts = {name: sum(result.result == name for result in results) for name in ("pass", "fail", "skip")}
    failed, expected = (0, counts["fail"]) if slow else (counts["fail"], 0)
    return (f"# Totals: pass:{counts['pass']} fail:{failed} xfail:{expected} xpass:0 skip:{counts['skip']} "
            "error:0")


def selftest_case(result) -> Case:
    """A (script, family) as a JUnit testcase: a failure carries the mismatch report, a skip its reason."""
    return Case(f"tcplab.selftests.{result.script}", FAMILY_NAMES[result.family], result.path, result.duration,
                (result.reason, result.report) if result.result == "fail" else None,
                result.reason if result.result == "skip" else None,
                made_again(result.first_try) if result.first_try is not None else "")
