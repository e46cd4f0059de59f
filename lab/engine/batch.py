"""Many runs at once: each (script, family) in a worker process of its own topology.

Workers are processes, not threads: every run re-anchors its clock on the
kernel's timestamps and needs the GIL promptly, and process workers keep
runs from delaying each other. The longest scripts start first, so a small
pool finishes the catalogue soonest. Results come back as plain text and
numbers; reports are rendered in the worker.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from lab.experiments import Experiment
from netns import Terminated
from lab.script.events import Script

from .report import Failure, RunResult, Step, render_failure
from .runner import Settings, run_script


@dataclass(frozen=True)
class Outcome:
    """A finished run, reduced to what the CLI prints and CI reads."""

    name: str
    path: str
    family: int
    passed: bool
    duration: float
    report: str  # the failure report, empty when passed
    notes: tuple[str, ...]
    steps: tuple[Step, ...]
    left: str
    right: str
    failure: Failure | None = None
    pcap: str | None = None
    exercise: str = ""  # what CI calls it: the exercise or script name

    @classmethod
    def of(cls, result: RunResult) -> Outcome:
        report = "" if result.passed else render_failure(result)
        exercise = result.exercise or os.path.splitext(os.path.basename(result.path))[0]
        return cls(result.name, result.path, result.family, result.passed, result.duration, report,
                   tuple(result.notes), tuple(result.steps), result.left, result.right, result.failure, result.pcap,
                   exercise)


def run_any(script: Script | Experiment, family: int, settings: Settings) -> RunResult:
    """Run a script or an experiment; both give a RunResult."""
    return script.run(family, settings) if isinstance(script, Experiment) else run_script(script, family, settings)


def run_one(script: Script | Experiment, family: int, settings: Settings) -> Outcome:
    if _stopping:
        raise Terminated()
    return Outcome.of(run_any(script, family, settings))


def run_many(jobs: list[tuple[Script | Experiment, int, Settings]], workers: int, work=run_one):
    """Yield what ``work`` returns for each job (an Outcome by default), in the order of ``jobs``.

    ``work`` is a module-level function (workers receive it pickled) taking (script, family, settings).
    """
    if workers <= 1 or len(jobs) <= 1:
        for script, family, settings in jobs:
            yield work(script, family, settings)
        return
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i][0].length)  # the longest first
    context = multiprocessing.get_context("forkserver")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker)
    try:
        futures = {i: pool.submit(work, *jobs[i]) for i in order}
        for i in range(len(jobs)):
            yield futures[i].result()
    except BaseException:
        # Ctrl-C or SIGTERM: the workers unwind their runs (topologies removed)
        # and skip whatever was already queued for them.
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_stopping = False  # in a worker: the batch was interrupted, skip the jobs still queued


def _stop_worker(signum, frame):
    global _stopping
    _stopping = True
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _init_worker() -> None:
    signal.signal(signal.SIGTERM, _stop_worker)
    signal.signal(signal.SIGINT, _stop_worker)
