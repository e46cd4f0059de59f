"""The realtime-to-monotonic offset stays right when the reading thread is preempted between its reads."""

from __future__ import annotations

import time

from lab.live import clocks

OFFSET = 1000.0  # seconds between the fake clocks


class PreemptedOnce:
    """Two clocks OFFSET apart, read by a thread that loses its CPU for 10 ms once, just after its first
    realtime read (what a crowded batch did to a run's setup)."""

    def __init__(self):
        self.now, self.realtime_reads = 5.0, 0

    def monotonic(self) -> float:
        self.now += 1e-6
        return self.now

    def time(self) -> float:
        self.now += 1e-6
        real = self.now + OFFSET
        self.realtime_reads += 1
        if self.realtime_reads == 1:
            self.now += 0.010
        return real


def test_the_fake_preemption_skews_a_single_read():
    """The failure the offset guards against: read once, it comes out 10 ms short."""
    fake = PreemptedOnce()
    assert abs((fake.time() - fake.monotonic()) - (OFFSET - 0.010)) < 1e-5


def test_a_preemption_between_the_reads_does_not_skew_the_offset(monkeypatch):
    monkeypatch.setattr(clocks, "time", PreemptedOnce())
    assert abs(clocks.realtime_offset() - OFFSET) < 1e-5


def test_the_offset_of_this_machines_clocks():
    before = time.time() - time.monotonic()
    offset = clocks.realtime_offset()
    after = time.time() - time.monotonic()
    assert min(before, after) - 0.001 < offset < max(before, after) + 0.001
