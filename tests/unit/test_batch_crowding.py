"""A batch with more workers than CPUs marks its runs crowded (no tick start, no pinning, no catch-up);
a batch that fits the CPUs does not. Work functions stand in for runs: no kernel involved."""

from __future__ import annotations

import os
from dataclasses import dataclass

from lab.engine.batch import run_many
from lab.engine.settings import Settings


@dataclass(frozen=True)
class Timeline:
    """What run_many reads of a script: its length (enough to be worth a pool of workers)."""

    length: float = 1.5


def crowded(script: Timeline, family: int, settings: Settings) -> bool:
    return settings.crowded


def test_more_workers_than_cpus_is_crowded_and_fewer_is_not():
    cpus = len(os.sched_getaffinity(0))
    jobs = [(Timeline(), 4, Settings()), (Timeline(), 6, Settings())]
    assert list(run_many(jobs, cpus + 1, work=crowded, finish=bool)) == [True, True]
    if cpus >= 2:
        assert list(run_many(jobs, 2, work=crowded, finish=bool)) == [False, False]
