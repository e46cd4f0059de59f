"""Many runs at once: each (script, family) in a worker process of its own topology.

Workers are processes, not threads: every run re-anchors its clock on the
kernel's timestamps and needs the GIL promptly, and process workers keep
runs from delaying each other. The longest scripts start first, so a small
pool finishes the catalogue soonest. Results come back as plain text and
numbers (a RunResult is plain data, pickled back to the parent).
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import signal
import time

from lab.course.experiments import Experiment
from lab.script.events import Script
from netns import Terminated

from lab.live.kept import keep_until_exit, keeping
from lab.live.punctual import realtime_allowed, take_timeline_slot
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


# Imported once by the fork server, before it forks the workers, so that no worker imports the lab itself
# (measured: ~0.38 s of CPU per worker).
FORKSERVER_PRELOAD = ["__main__", __name__]
POOL_WORTH_SECONDS = 2.0  # starting worker processes costs ~0.4 s: below this much timeline, run in turn


# Workers per CPU that is not already busy; measured with bench/trust.py (docs/timing-evidence.md).
WORKERS_PER_FREE_CPU = {True: 8, False: 2}  # keyed by whether the timeline may run real-time


def default_jobs() -> int:
    """Workers for a batch, from the CPUs this process may use and how busy other processes keep them.

    A run spends most of its time asleep on kernel timers; with a real-time
    timeline many more workers than CPUs stay punctual, without it fewer. A
    CPU kept busy by others (measured over 0.1 s before the batch starts, so
    that a batch's own recent load does not count as the load average would)
    is not counted; one CPU always is.
    """
    cpus = sorted(os.sched_getaffinity(0))
    busy = min(len(cpus) - 1, round(_busy_share(cpus) * len(cpus)))
    return WORKERS_PER_FREE_CPU[realtime_allowed()] * (len(cpus) - busy)


def _cpu_times(cpus: list[int]) -> tuple[int, int]:
    """(idle, total) jiffies of ``cpus`` from /proc/stat."""
    idle = total = 0
    with open("/proc/stat") as handle:
        for line in handle:
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                values = list(map(int, fields))
                idle += values[3] + values[4]  # idle, iowait
                total += sum(values[:8])
    return idle, total


def _busy_share(cpus: list[int], seconds: float = 0.1) -> float:
    """How much of ``cpus`` other processes used over the last ``seconds`` (0 to 1)."""
    idle_before, total_before = _cpu_times(cpus)
    time.sleep(seconds)
    idle, total = _cpu_times(cpus)
    return 1 - (idle - idle_before) / max(total - total_before, 1)


def run_many(jobs: list[tuple[Script | Experiment, int, Settings]], workers: int | None, work=run_one,
             finish=lambda result: result, again_uncrowded: bool = False):
    """Yield ``finish(work(script, family, settings))`` for each job, in the order of ``jobs`` (runs
    made again last).

    ``workers`` None: ``default_jobs()``, measured only where a pool of workers is worth starting (a short
    run or two runs in turn, without the 0.1 s the measurement takes).

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
    cpus = len(os.sched_getaffinity(0))
    if workers is None:
        workers = default_jobs() if _worth_a_pool(jobs, cpus + 1) else 1
    crowded = workers > cpus and _worth_a_pool(jobs, workers)
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


def _worth_a_pool(jobs: list, workers: int) -> bool:
    return workers > 1 and len(jobs) > 1 and sum(job[0].length for job in jobs) >= POOL_WORTH_SECONDS


def _results(jobs: list, workers: int, work):
    """(index, work's result) for each job, in the order of ``jobs``: from worker processes where a pool
    is worth starting, else one after another in this process."""
    if _worth_a_pool(jobs, workers):
        yield from _in_workers(jobs, workers, work)
    else:
        with keeping() if len(jobs) > 1 else contextlib.nullcontext():  # one run has no next run to hand on to
            for i, job in enumerate(jobs):
                yield i, work(*job)


def _in_workers(jobs: list, workers: int, work):
    """(index, work's result) for each job, in the order of ``jobs``, from a pool of worker processes."""
    from concurrent.futures import ProcessPoolExecutor  # ~6 ms: not for a run or two in turn

    order = sorted(range(len(jobs)), key=lambda i: -jobs[i][0].length)  # the longest first
    context = multiprocessing.get_context("forkserver")
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
