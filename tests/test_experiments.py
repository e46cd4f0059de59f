"""The experiments' checkers catch a kernel that behaves otherwise.

The real kernel passes them in test_catalogue; here each checker meets ISN
sequences that a differently built TCP would produce, and must object.
"""

from __future__ import annotations

import random

from lab.script.settings import Settings
from lab.course.experiments import Experiment
from lab.course.experiments import tw_recycle
from lab.course.experiments.isn_random import TICK_NS, check_clock, check_spread

TIMES = [i * 0.003 for i in range(24)]


def secure_isns(times, base):
    """RFC 6528 for one 4-tuple: a fixed hash plus the 64 ns clock."""
    return [(t, (base + round(t * 1e9 / TICK_NS)) % 2**32) for t in times]


def test_the_kernels_scheme_passes_both_checks():
    rng = random.Random(7)
    assert check_clock(secure_isns(TIMES, 12345)) == ""
    spread = [(t, (rng.getrandbits(32) + round(t * 1e9 / TICK_NS)) % 2**32) for t in TIMES]
    assert check_spread(spread) == ""


def test_a_4_microsecond_clock_isn_clusters():
    rfc793 = [(t, (1000 + round(t * 250_000)) % 2**32) for t in TIMES]
    assert "cluster" in check_spread(rfc793)


def test_isns_that_follow_the_clock_across_4_tuples_are_caught():
    slow = [i * 20.0 for i in range(24)]  # far apart, so they cross every top-nibble bucket
    assert "follows a clock" in check_spread(secure_isns(slow, 0))


def test_a_repeated_isn_is_caught():
    rng = random.Random(1)
    samples = [(t, rng.getrandbits(32)) for t in TIMES]
    samples[5] = (samples[5][0], samples[2][1])
    assert "same ISN" in check_spread(samples)


def test_one_4_tuple_with_random_isns_is_caught():
    rng = random.Random(3)
    assert "differs from elapsed time" in check_clock([(t, rng.getrandbits(32)) for t in TIMES])


def test_a_clock_off_by_a_few_microseconds_is_caught():
    samples = secure_isns(TIMES, 0)
    samples[10] = (samples[10][0], samples[10][1] + 5000)  # 320 µs ahead
    assert "differs from elapsed time" in check_clock(samples)


def test_the_slow_machines_slack_still_tells_a_clock_from_random_isns():
    """--slow widens the clock check to 100 ms; random ISNs still fail it, and a clock 434 µs off passes."""
    from lab.course.experiments.isn_random import SLOW_CLOCK_SLACK_TICKS

    rng = random.Random(3)
    assert "differs from elapsed time" in check_clock([(t, rng.getrandbits(32)) for t in TIMES], SLOW_CLOCK_SLACK_TICKS)
    samples = secure_isns(TIMES, 0)
    samples[10] = (samples[10][0], samples[10][1] + 6789)  # 434 µs ahead: as an emulated 6.12 guest measured
    assert check_clock(samples) and check_clock(samples, SLOW_CLOCK_SLACK_TICKS) == ""
    spread = [(t, rng.getrandbits(32)) for t in TIMES]
    assert check_spread(spread, SLOW_CLOCK_SLACK_TICKS) == ""


def test_tw_recycle_fails_when_the_sysctl_exists(monkeypatch):
    monkeypatch.setattr(tw_recycle, "GONE", "net.ipv4.tcp_tw_reuse")
    result = Experiment("tw-recycle", 0.05).run(4, Settings())
    assert not result.passed and "exists on this kernel" in result.failure.message


def test_ci_output_names_an_experiment_by_its_exercise(tmp_path):
    import json

    from helpers import tcplab

    junit = tmp_path / "r.xml"
    result = tcplab("run", "tw-recycle", "--ip-version", "4", "--json", "--junit", str(junit))
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)
    assert entry["name"] == "tw-recycle" and entry["passed"]
    assert 'classname="tcplab.run.tw-recycle"' in junit.read_text()
