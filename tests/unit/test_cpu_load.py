"""How busy other processes keep the CPUs, measured since the engine's import (lab/live/cpu_load.py)."""

from __future__ import annotations

import importlib
import os
import subprocess
import time

from lab.live import cpu_load


def _share_after(seconds: float, spin: bool) -> float:
    module = importlib.reload(cpu_load)  # its first sample: now
    end = time.monotonic() + seconds
    while spin and time.monotonic() < end:
        pass
    time.sleep(max(0.0, end - time.monotonic()))
    return module.busy_share(sorted(os.sched_getaffinity(0)))


def test_another_process_counts_and_this_ones_own_work_does_not():
    """A CPU-bound process is the other's load; the engine's own imports (here: a spin) are not."""
    cpus = sorted(os.sched_getaffinity(0))
    own = _share_after(0.2, spin=True)
    other = subprocess.Popen(["sh", "-c", "while :; do :; done"])
    try:
        time.sleep(0.05)
        loaded = _share_after(0.2, spin=False)
    finally:
        other.kill()
        other.wait()
    assert loaded - own >= 0.5 / len(cpus), (own, loaded)


def test_a_first_sample_too_old_or_too_recent_is_made_good_by_a_short_wait():
    module = importlib.reload(cpu_load)
    started = time.monotonic()
    share = module.busy_share(sorted(os.sched_getaffinity(0)))
    assert 0.0 <= share <= 1.0 and time.monotonic() - started >= module.MIN_WINDOW * 0.9
    module._FIRST = (time.monotonic() - 10, *module._FIRST[1:])  # the engine imported long ago
    started = time.monotonic()
    module.busy_share(sorted(os.sched_getaffinity(0)))
    assert time.monotonic() - started >= module.MIN_WINDOW * 0.9
