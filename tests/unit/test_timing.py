"""The one timing rule (lab/judge/timing.py), as packetdrill documents it: a moment is on time within
max(tolerance_usecs, tolerance_percent of the gap) of its line's window."""

from __future__ import annotations

import pytest

from lab.judge.timing import Window, tolerance, window
from lab.script.settings import Settings

DEFAULT = Settings(tolerance_usecs=4000, tolerance_percent=12.5)  # packetdrill's defaults


def test_the_floor_holds_for_short_gaps_and_the_percentage_for_long_ones():
    assert tolerance(DEFAULT, 0.010) == pytest.approx(0.004)  # 12.5 % of 10 ms is 1.25 ms: the floor wins
    assert tolerance(DEFAULT, 1.0) == pytest.approx(0.125)
    assert tolerance(Settings(tolerance_usecs=10000, tolerance_percent=0), 5.0) == pytest.approx(0.010)
    assert tolerance(DEFAULT, -1.0) == pytest.approx(0.004)  # a gap never shrinks the floor


@pytest.mark.parametrize(("moment", "on_time"), [(0.096, True), (0.1039, True), (0.1041, False), (0.0959, False)])
def test_a_moment_is_on_time_only_within_the_tolerance_of_its_line(moment, on_time):
    assert window(DEFAULT, 0.100, since=0.090).holds(moment) is on_time


def test_a_range_allows_its_whole_span_widened_on_both_sides():
    allowed = window(DEFAULT, 0.100, since=0.0, end=0.200)
    assert allowed == Window(0.100, 0.200, 0.0125)
    assert allowed.holds(0.0876) and allowed.holds(0.2124) and not allowed.holds(0.2126)
    assert allowed.span() == "0.100~0.200" and window(DEFAULT, 0.1, since=0.0).span() == "0.100"
    assert allowed.off_ms(0.105) == pytest.approx(5.0)
