"""A batch with more workers than CPUs marks its runs crowded (no tick start, no pinning, no catch-up);
a batch that fits the CPUs does not. Asked to, it makes a run whose first try ended lab-late again, once,
uncrowded (several at once, no more than CPUs), crowded batch or not, and only lab-late ones. Work
functions stand in for runs: no kernel involved."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import pytest

from lab.live.batch import run_many
from lab.live.punctual import timeline_cpu
from lab.script.settings import Settings
from lab.judge.trace import CONTENT, LAB_LATE, TIMING, Failure, RunResult


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
    if cpus < 2:
        pytest.skip("needs two CPUs for a batch of two that fits them")
    assert list(run_many(jobs, 2, work=crowded, finish=bool)) == [False, False]


def late_when_crowded(script: Timeline, family: int, settings: Settings) -> RunResult:
    """A run the crowding makes lab-late (IPv4 only); alone, it passes."""
    failure = Failure(3, "the lab began this line 6.0 ms late", LAB_LATE) if settings.crowded and family == 4 else None
    return RunResult("t.pkt", family, failure, None, 0.1)


def test_a_crowded_lab_late_run_is_made_again_uncrowded_and_says_so():
    cpus = len(os.sched_getaffinity(0))
    jobs = [(Timeline(), 4, Settings()), (Timeline(), 6, Settings())]
    first, second = run_many(jobs, cpus + 1, work=late_when_crowded, again_uncrowded=True)
    assert (first.family, first.passed, first.first_try) == (6, True, None)  # the run made again comes last
    assert second.family == 4 and second.passed and second.first_try.kind == LAB_LATE
    assert second.first_try.message == "the lab began this line 6.0 ms late"
    plain = list(run_many(jobs, cpus + 1, work=late_when_crowded))  # not asked: the lab-late verdict stands
    assert [outcome.passed for outcome in plain] == [False, True]


def late_when_crowded_then_its_time(script: Timeline, family: int, settings: Settings) -> RunResult:
    """Lab-late when crowded (IPv4); uncrowded, it takes 0.5 s and notes when it ran, in which process."""
    if settings.crowded:
        failure = Failure(3, "the lab began this line 6.0 ms late", LAB_LATE) if family == 4 else None
        return RunResult("t.pkt", family, failure, None, 0.1)
    began = time.monotonic()
    time.sleep(0.5)
    return RunResult("t.pkt", family, None, None, 0.5, notes=[f"{os.getpid()} {began} {time.monotonic()}"])


def test_the_runs_made_again_run_at_once_one_per_cpu():
    """Two lab-late runs of a crowded batch are made again side by side (a 2-CPU machine), not one after
    the other, each uncrowded, in worker processes."""
    cpus = len(os.sched_getaffinity(0))
    if cpus < 2:
        pytest.skip("needs two CPUs")
    jobs = [(Timeline(), 4, Settings()), (Timeline(), 6, Settings())] * 2
    outcomes = list(run_many(jobs, cpus + 1, work=late_when_crowded_then_its_time, again_uncrowded=True))
    again = [outcome for outcome in outcomes if outcome.first_try is not None]
    assert len(again) == 2 and all(outcome.passed for outcome in again)
    (pid_a, began_a, ended_a), (pid_b, began_b, ended_b) = (
        [float(field) for field in outcome.notes[0].split()] for outcome in again)
    assert os.getpid() not in (pid_a, pid_b) and pid_a != pid_b
    assert began_a < ended_b and began_b < ended_a  # they overlapped


def its_timeline_cpu(script: Timeline, family: int, settings: Settings) -> int:
    time.sleep(0.3)  # long enough that every job has a worker of its own
    return timeline_cpu(os.sched_getaffinity(0))


def test_a_batch_that_fits_the_cpus_gives_each_worker_its_own():
    """Workers no more than the CPUs: their timelines keep to different CPUs, whatever their process ids."""
    cpus = len(os.sched_getaffinity(0))
    jobs = [(Timeline(3.0), 4, Settings())] * cpus
    assert sorted(run_many(jobs, cpus, work=its_timeline_cpu, finish=int)) == sorted(os.sched_getaffinity(0))


def tries(first: Failure | None, then: Failure | None):
    """A work function (called in this process: one job, one worker) whose first try ends with ``first``
    and every later one with ``then``; ``calls`` counts the tries."""
    calls = []

    def work(script: Timeline, family: int, settings: Settings) -> RunResult:
        calls.append(settings.crowded)
        return RunResult("t.pkt", family, first if len(calls) == 1 else then, None, 0.1)
    return work, calls


def test_a_lone_run_lab_late_on_its_first_try_is_made_again_and_carries_the_first_try():
    late = Failure(3, "the lab began this line 6.0 ms late", LAB_LATE)
    work, calls = tries(late, None)
    (outcome,) = run_many([(Timeline(), 4, Settings())], 1, work=work, again_uncrowded=True)
    assert outcome.passed and outcome.first_try == late and calls == [False, False]


def test_a_run_lab_late_twice_ends_lab_late_after_one_more_try():
    late = Failure(3, "the lab began this line 6.0 ms late", LAB_LATE)
    work, calls = tries(late, Failure(5, "the lab sent this segment 5.0 ms late", LAB_LATE))
    (outcome,) = run_many([(Timeline(), 6, Settings())], 1, work=work, again_uncrowded=True)
    assert len(calls) == 2 and outcome.failure.line == 5 and outcome.first_try == late


def test_a_kernel_mismatch_is_not_made_again():
    mismatch = Failure(4, "ack: expected 2, got 1", CONTENT)
    work, calls = tries(mismatch, None)
    (outcome,) = run_many([(Timeline(), 4, Settings())], 1, work=work, again_uncrowded=True)
    assert len(calls) == 1 and outcome.failure == mismatch and outcome.first_try is None


def test_runs_that_measure_every_try_keep_a_lab_late_one():
    """``run --repeat N`` counts lab-late tries: none is made again."""
    work, calls = tries(Failure(3, "the lab began this line 6.0 ms late", LAB_LATE), None)
    (outcome,) = run_many([(Timeline(), 4, Settings())], 1, work=work)
    assert len(calls) == 1 and outcome.failure.kind == LAB_LATE and outcome.first_try is None


def test_a_first_try_made_again_leaves_no_temporary_capture(tmp_path):
    """Without --pcap a failed run keeps its capture in a temporary file; a first try made again must not."""
    first_capture = tmp_path / "tcplab-first-ipv4.pcapng"
    first_capture.write_bytes(b"")
    calls = []

    def work(script: Timeline, family: int, settings: Settings) -> RunResult:
        calls.append(1)
        if len(calls) == 1:
            return RunResult("t.pkt", family, Failure(3, "the lab began this line 6.0 ms late", LAB_LATE),
                             str(first_capture), 0.1)
        return RunResult("t.pkt", family, None, None, 0.1)

    (outcome,) = run_many([(Timeline(), 4, Settings())], 1, work=work, again_uncrowded=True)
    assert outcome.passed and not first_capture.exists()


def off_in_time_when_crowded(script: Timeline, family: int, settings: Settings) -> RunResult:
    """The kernel's segment not there within the tolerance, in a crowded batch only (IPv4)."""
    failure = (Failure(8, "the kernel sent nothing; expected this segment by 0.004 s", TIMING)
               if settings.crowded and family == 4 else None)
    return RunResult("t.pkt", family, failure, None, 0.1)


def test_a_timing_failure_of_a_crowded_batch_is_made_again_and_an_uncrowded_one_stands():
    """The crowded batch's own load delays the kernel's work too: its timing verdict is made again
    uncrowded; the same verdict from an uncrowded run is the kernel's, and stands."""
    from lab.views.report import made_again

    cpus = len(os.sched_getaffinity(0))
    jobs = [(Timeline(), 4, Settings()), (Timeline(), 6, Settings())]
    outcomes = list(run_many(jobs, cpus + 1, work=off_in_time_when_crowded, again_uncrowded=True))
    again = [outcome for outcome in outcomes if outcome.first_try is not None]
    assert len(again) == 1 and again[0].passed and again[0].first_try.kind == TIMING
    assert "in a crowded batch, the timing was off at line 8" in made_again(again[0].first_try)
    timing = Failure(8, "the kernel sent nothing; expected this segment by 0.004 s", TIMING)
    work, calls = tries(timing, None)
    (outcome,) = run_many([(Timeline(), 4, Settings())], 1, work=work, again_uncrowded=True)
    assert len(calls) == 1 and outcome.failure == timing and outcome.first_try is None


def test_the_load_is_measured_only_for_a_batch_worth_a_pool(monkeypatch):
    """run_many(workers=None) asks default_jobs() (a 0.1 s measurement) only where workers will start."""
    from lab.live import batch

    asked = []
    monkeypatch.setattr(batch, "default_jobs", lambda: asked.append(True) or len(os.sched_getaffinity(0)) + 1)
    short = [(Timeline(0.1), 4, Settings()), (Timeline(0.1), 6, Settings())]
    assert list(run_many(short, None, work=crowded, finish=bool)) == [False, False] and asked == []
    assert list(run_many([(Timeline(), 4, Settings()), (Timeline(), 6, Settings())], None, work=crowded,
                         finish=bool)) == [True, True] and asked == [True]


def test_a_pool_is_chosen_by_the_time_runs_in_turn_would_wait_beyond_the_longest():
    """One rule for run_many and for ``tcplab run``'s topology built ahead (lab/live/pool_choice.py): runs whose
    timelines beyond the longest add up to less than POOL_WORTH_SECONDS run in turn; one worker never pools."""
    from lab.live.pool_choice import POOL_WORTH_SECONDS, goes_to_a_pool

    short, long = Timeline(POOL_WORTH_SECONDS / 2), Timeline(POOL_WORTH_SECONDS)
    assert not goes_to_a_pool([(short, 4, Settings()), (short, 6, Settings())], None)
    assert goes_to_a_pool([(long, 4, Settings()), (long, 6, Settings())], None)
    assert not goes_to_a_pool([(long, 4, Settings()), (long, 6, Settings())], 1)
    assert not goes_to_a_pool([(long, 4, Settings())], None)
