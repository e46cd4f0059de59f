"""The lab's pacing: script time 0 just after a kernel tick, and actions on the script's own timeline.

Pure arithmetic on the Clock, plus the tick grid as this kernel shows it
(the coarse monotonic clock; no privileges needed).
"""

from __future__ import annotations

import time

import pytest

from lab.judge.matcher import Clock
from lab.live.punctual import START_MARGIN, TICK_OFFSET, tick_grid, timeline_start
from lab.script.parser import parse


def test_the_lab_takes_back_its_lag_at_the_next_wait_but_judging_stays_on_what_happened():
    clock = Clock(100.0)
    clock.acted(100.0009, 0.0)  # a +0 syscall 0.9 ms after its moment (waiting for the one before)
    clock.anchor(100.0009, 0.0)
    assert round(clock.lag, 6) == 0.0009
    assert clock.when(0.010) == 100.0109  # the previous event as it happened: what lateness is judged on
    assert round(clock.pace(0.010, catch_up=0.002), 6) == 100.010  # the lab acts on the script's timeline
    assert round(clock.at(100.0101), 6) == 0.0092  # a segment is still judged from the anchor


def test_a_kernel_segment_keeps_the_labs_lag_and_a_punctual_action_clears_it():
    clock = Clock(100.0)
    clock.acted(100.0015, 0.0)
    clock.anchor(100.0015, 0.0)
    clock.anchor(100.0016, 0.0)  # the kernel's answer, 0.1 ms after the late action
    assert round(clock.pace(0.010, catch_up=0.002), 6) == 100.0101  # its moment less the lab's lag
    clock.acted(100.0101, 0.010)
    assert round(clock.lag, 6) == 0.0


def test_the_catch_up_is_bounded():
    clock = Clock(100.0)
    clock.acted(100.005, 0.0)
    clock.anchor(100.005, 0.0)
    assert round(clock.pace(0.010, catch_up=0.002), 6) == 100.013  # 2 ms of the 5 ms lag, not all


def test_without_lag_the_lab_acts_when_the_previous_event_says():
    clock = Clock(100.0)
    clock.anchor(100.0003, 0.0)
    assert clock.pace(0.010, catch_up=0.002) == clock.when(0.010)


def test_script_time_zero_falls_just_after_a_tick_and_not_in_the_past():
    grid = tick_grid()
    before = time.monotonic()
    start = timeline_start()
    assert start >= before + START_MARGIN
    if grid is None:
        pytest.skip("no tick grid sighted here (tick_grid returned None)")
    length, tick = grid
    phase = (start - tick) % length
    assert abs(phase - TICK_OFFSET) < 1e-6 or abs(phase - TICK_OFFSET - length) < 1e-6
    assert start - before < START_MARGIN + length + 0.001  # within one tick of the margin


def test_only_leading_untimed_commands_are_init_commands():
    script = parse("`true`\n`echo x`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n`echo done`\n")
    assert [getattr(event, "init", None) for event in script.events] == [True, True, None, False]
    assert not script.events[1].timing.relative and script.events[3].timing.relative


@pytest.mark.parametrize("handler", ["tick_nohz_handler", "tick_nohz_highres_handler", "tick_sched_timer"])
def test_the_tick_timer_s_expiry_is_read_from_timer_list(tmp_path, monkeypatch, handler):
    from lab.live import punctual

    listing = tmp_path / "timer_list"
    listing.write_text(
        "cpu: 0\n clock 0:\n  .base:               00000000f1d3\n active timers:\n"
        " #0: <00000000ad5f7ef2>, hrtimer_wakeup, S:01\n"
        " # expires at 44378451000000-44378451050000 nsecs [in 1 to 2 nsecs]\n"
        f" #1: <0000000097cb4c01>, {handler}, S:01\n"
        " # expires at 44378452000000-44378452000000 nsecs [in 3 to 3 nsecs]\n")
    monkeypatch.setattr(punctual, "TIMER_LIST", str(listing))
    assert punctual._tick_timer_expiry() == 44378.452
    monkeypatch.setattr(punctual, "TIMER_LIST", str(tmp_path / "unreadable"))
    assert punctual._tick_timer_expiry() is None  # then the tick is sighted on the coarse clock


def test_with_skewed_ticks_the_grid_is_this_cpu_s(tmp_path, monkeypatch):
    """skew_tick=1 puts each CPU's tick on a grid of its own: the timeline's CPU's is the one read."""
    from lab.live import punctual

    listing = tmp_path / "timer_list"
    listing.write_text("".join(
        f"cpu: {cpu}\n active timers:\n #0: <00000000ad5f7ef2>, tick_nohz_handler, S:01\n"
        f" # expires at {expires}-{expires} nsecs [in 3 to 3 nsecs]\n"
        for cpu, expires in ((0, 44378452000000), (1, 44378453000000))))
    monkeypatch.setattr(punctual, "TIMER_LIST", str(listing))
    for cpu, tick in ((0, 44378.452), (1, 44378.453)):
        monkeypatch.setattr(punctual._libc, "sched_getcpu", lambda cpu=cpu: cpu)
        assert punctual._tick_timer_expiry() == tick
