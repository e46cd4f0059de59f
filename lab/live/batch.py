"""Many runs at once: each (script, family) in a worker process of its own topology.

Workers are processes, not threads: every run re-anchors its clock on the
kernel's timestamps and needs the GIL promptly, and process workers keep
runs from delaying each other. The longest scripts start first, so a small
pool finishes the catalogue soonest. Results come back as plain text and
numbers (a RunResult is plain data, pickled back to the parent).

Workers are forked from this process, which has imported the engine
already, when it runs no thread besides its own (``tcplab run``); otherwise
(a test runner's threads) from a fork server that imports the engine once.
Runs in turn in this process keep their topologies from one run to the next
(lab/live/kept.py), as each worker does for its own runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import signal
import threading

from lab.live.cpu_load import busy_share  # first: its first sample opens the load's window
from lab.course.experiments import Experiment
from lab.script.events import Script
from netns import Terminated

from lab.live.kept import keep_until_exit, keeping
from lab.live.pool_choice import goes_to_a_pool, worth_a_pool
from lab.live.punctual import on_timeline_cpu, realtime_allowed, spread_again, take_timeline_slot, usable_cpus
from lab.live.runner import run_script
from lab.script.settings import Settings
from lab.judge.trace import LAB_LATE, TIMING, Failure, RunResult


def run_any(script: Script | Experiment, family: int, settings: Settings) -> RunResult:
    """Run a script or an experiment; both give a RunResult."""
    return script.run(family, settings) if isinstance(script, Experiment) else run_script(script, family, settings)


def run_one(script: Script | Experiment, family: int, settings: Settings) -> RunResult:
    if _stopping:
        raise Terminated()
    return run_any(script, family, settings)


# Imported once by a fork server, before it forks the workers, so that no worker imports the lab itself
# (measured: ~0.38 s of CPU per worker).
FORKSERVER_PRELOAD = ["__main__", __name__]

# Workers per CPU that is not already busy; measured with bench/trust.py (docs/timing-evidence.md).
WORKERS_PER_FREE_CPU = {True: 8, False: 2}  # keyed by whether the timeline may run real-time


def default_jobs() -> int:
    """Workers for a batch, from the CPUs this process may use and how busy other processes keep them.

    A run spends most of its time asleep on kernel timers; with a real-time
    timeline many more workers than CPUs stay punctual, without it fewer. A
    CPU kept busy by others (lab/live/cpu_load.py: measured since the engine
    was imported, this process's own CPU time taken out, so that neither a
    batch's own recent load counts, as the load average would, nor a sleep
    is needed) is not counted; one CPU always is.
    """
    cpus = sorted(usable_cpus())
    busy = min(len(cpus) - 1, round(busy_share(cpus) * len(cpus)))
    return WORKERS_PER_FREE_CPU[realtime_allowed()] * (len(cpus) - busy)


def run_many(jobs: list[tuple[Script | Experiment, int, Settings]], workers: int | None, work=run_one,
             finish=lambda result: result, again_uncrowded: bool = False):
    """Yield ``finish(work(script, family, settings))`` for each job, in the order of ``jobs`` (runs
    made again last).

    ``workers`` None: ``default_jobs()`` where a pool of workers is worth starting, else runs in turn.

    ``work`` runs in the workers (a module-level function: they receive it
    pickled) and returns plain data; ``finish`` turns it into what the caller
    shows, in this process (by default the result itself).

    ``again_uncrowded``: a run whose first try gave no verdict on the kernel
    (not_the_kernels_verdict), in a batch of one run or many, is run once
    more after the batch, uncrowded (no more runs at once than CPUs: time 0
    on a tick, its timeline on a CPU of its own), and yielded last, its
    ``first_try`` the first try's failure. ``work``'s results then need
    ``failure`` and ``first_try`` fields (a dataclass: RunResult,
    SelftestResult). Callers that measure every try (``run --repeat``) leave it off.
    """
    cpus = len(usable_cpus())
    if workers is None:
        workers = default_jobs() if goes_to_a_pool(jobs, None) else 1
    crowded = workers > cpus and worth_a_pool(jobs, workers)
    if crowded:
        jobs = [(script, family, dataclasses.replace(settings, crowded=True)) for script, family, settings in jobs]
    late = []
    for i, result in _results(jobs, workers, work):
        if again_uncrowded and not_the_kernels_verdict(result.failure, crowded):
            late.append((i, result.failure))
            _drop_temporary_capture(result, jobs[i][2])
            continue
        yield finish(result)
    again = [(jobs[i][0], jobs[i][1], dataclasses.replace(jobs[i][2], crowded=False)) for i, _ in late]
    for (_, result), (_, first) in zip(_results(again, min(cpus, len(again)), work), late, strict=True):
        yield finish(dataclasses.replace(result, first_try=first))


def not_the_kernels_verdict(failure: Failure | None, crowded: bool) -> bool:
    """Whether a failed first try says nothing about the kernel: the lab was late; or, in a crowded batch,
    the kernel's timing was off. A crowded batch keeps more real-time timelines than CPUs busy, and the
    kernel's own work for a run (its softirqs, its timers) waits for a CPU too, so a late answer there may
    be the batch's doing rather than the kernel's (docs/timing.md, "A crowded batch")."""
    if failure is None:
        return False
    return failure.kind == LAB_LATE or (crowded and failure.kind == TIMING)


def _drop_temporary_capture(result, settings: Settings) -> None:
    """A first try made again leaves nothing behind: without --pcap its capture went to a temporary file,
    kept for its failure, which the second try's verdict replaces (with --pcap the second try rewrites it)."""
    path = getattr(result, "pcap", None)
    if path and settings.pcap is None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _results(jobs: list, workers: int, work):
    """(index, work's result) for each job, in the order of ``jobs``: from worker processes where a pool
    is worth starting, else one after another in this process."""
    if worth_a_pool(jobs, workers):
        yield from _in_workers(jobs, workers, work)
    else:
        # One run has no next run to hand on to; runs in turn keep to their timelines' CPU (punctual.py).
        with keeping() if len(jobs) > 1 else contextlib.nullcontext(), on_timeline_cpu():
            for i, job in enumerate(jobs):
                yield i, work(*job)


def _in_workers(jobs: list, workers: int, work):
    """(index, work's result) for each job, in the order of ``jobs``, from a pool of worker processes."""
    from concurrent.futures import ProcessPoolExecutor  # ~6 ms: not for a run or two in turn

    order = sorted(range(len(jobs)), key=lambda i: -jobs[i][0].length)  # the longest first
    spread_again()  # workers inherit this process's CPUs: all of them, each then keeps to its own
    context = multiprocessing.get_context("fork" if threading.active_count() == 1 else "forkserver")
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload(FORKSERVER_PRELOAD)
    numbers = context.Value("i", 0)  # each worker takes the next: its timeline's CPU (punctual.timeline_cpu)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                               initargs=(numbers,))
    try:
        futures = {i: pool.submit(work, *jobs[i]) for i in order}
        for i in range(len(jobs)):
            yield i, futures[i].result()
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


def _init_worker(numbers) -> None:
    signal.signal(signal.SIGTERM, _stop_worker)
    signal.signal(signal.SIGINT, _stop_worker)
    keep_until_exit()
    with numbers.get_lock():
        take_timeline_slot(numbers.value)
        numbers.value += 1
