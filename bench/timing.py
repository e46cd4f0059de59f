"""What the benchmarks time, and how: samples of an action after a warm-up, and a topology's round trip."""

from __future__ import annotations

import time
from collections.abc import Callable


def samples_ms(action: Callable[[], object], runs: int) -> list[float]:
    """``runs`` wall times of ``action`` in ms, sorted, after one warm-up run (imports, the first mount)."""
    action()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return sorted(samples)


def veth_up_and_down() -> None:
    """A drive-mode topology built and removed, as each run without a kept one does."""
    from netns import VethTopology

    with VethTopology():
        pass
