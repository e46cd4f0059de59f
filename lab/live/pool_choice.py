"""Whether a batch's runs go to a pool of worker processes or run in turn in the command's own process.

One rule for lab/live/batch.py, which starts the pool, and for ``tcplab
run``, which builds a run's topology ahead of the engine's import only for a
run it will make itself (so this module imports nothing of the engine).
"""

from __future__ import annotations

from lab.live.punctual import usable_cpus

# A pool costs ~0.5 s more than runs in turn (measured: 8 runs of a script without waits, 1.05 s against
# 0.55 s): worth it when, in turn, the runs would wait that much longer on the timelines beyond the longest.
POOL_WORTH_SECONDS = 0.5


def worth_a_pool(jobs: list, workers: int) -> bool:
    """Whether ``workers`` processes are worth starting for ``jobs`` ((script, family, settings) each)."""
    lengths = [job[0].length for job in jobs]
    return workers > 1 and len(jobs) > 1 and sum(lengths) - max(lengths) >= POOL_WORTH_SECONDS


def goes_to_a_pool(jobs: list, workers: int | None) -> bool:
    """Whether ``run_many(jobs, workers)`` starts a pool: ``workers`` None lets it choose, and it asks for one
    only where more workers than CPUs would be worth it."""
    return worth_a_pool(jobs, len(usable_cpus()) + 1 if workers is None else workers)
