"""Being on time: how a run waits for an event's moment, and what keeps it from being late.

The timeline runs with real-time scheduling (SCHED_FIFO) where the user may
have it, which keeps the lab's own actions on time on a busy machine; a
real-time thread wakes from a sleep on time, so it does not spin, which would
only hold a CPU from the other workers of a batch. Without real-time
scheduling the thread sleeps to just before the moment, then spins
(packetdrill's wait_for_event), which leaves fewer late outliers.

Script time 0 falls just after a kernel tick, as in packetdrill
(schedule_start_time_usecs). The kernel fires its timers on ticks, so an
answer sent from a timer (a delayed ACK due "now", an RTO) leaves at the
first tick after it was due: with the timeline's phase against the ticks
left to chance, that answer would come anywhere within a tick of its line.
The evidence for each choice is in docs/timing.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import math
import os
import re
import sys
import time
from dataclasses import dataclass

SPIN = 0.001  # seconds before an event's moment at which sleeping stops and spinning starts
GIL_SWITCH_INTERVAL = 0.0002  # seconds: a returning syscall thread notes its time promptly
REALTIME_PRIORITY = 10  # SCHED_FIFO, low among real-time priorities; the kernel's RT throttling still applies
SYSCALL_PRIORITY = REALTIME_PRIORITY + 1  # a syscall's thread, woken by the kernel, goes before any timeline
SCHEDSTAT = "/proc/thread-self/schedstat"  # on-CPU ns, runqueue-wait ns, timeslices (CONFIG_SCHED_INFO)
CLOCK_MONOTONIC_COARSE = 6  # linux/time.h: advances at each kernel tick, by one tick
TICK_OFFSET = 0.00025  # seconds after a tick that script time 0 falls on (packetdrill's JIFFY_OFFSET_USECS)
START_MARGIN = 0.0003  # seconds: script time 0 is at least this far ahead, so the lab is not late for it
SIGHTING = 0.00005  # seconds: a tick is sighted only between two reads of the coarse clock this close
TIMER_LIST = "/proc/timer_list"  # each CPU's tick state (tick_sched), readable in ~0.05 ms
TIMER_LIST_CPU = re.compile(r"^cpu: (\d+)\n.*?\.tick_stopped\s*: (\d).*?\.idle_calls\s*: (\d+)", re.M | re.S)
# A CPU's tick timer and when it expires, CLOCK_MONOTONIC ns: tick_sched_timer up to Linux 6.6,
# tick_nohz_highres_handler in 6.7 and 6.8, tick_nohz_handler since.
TIMER_LIST_TICK = re.compile(r"tick_(?:nohz_handler|nohz_highres_handler|sched_timer), S:\w+\n # expires at (\d+)-")
SETTLE_LIMIT = 0.1  # seconds: the longest wait for the other CPUs to stop ticking before script time 0
SETTLE_POLL = 0.001  # seconds between two looks at them
BUSY_AFTER = 0.012  # seconds (three ticks at HZ=250) without an idle call: the CPU is busy, not settling

_libc = ctypes.CDLL(None, use_errno=True)


def wait_until(moment: float, realtime: bool) -> None:
    """Return at ``moment`` (monotonic clock): sleep to it (real-time), or sleep until just before it and spin."""
    delay = moment - time.monotonic() - (0.0 if realtime else SPIN)
    if delay > 0:
        time.sleep(delay)
    while time.monotonic() < moment:
        pass


@functools.cache
def tick_grid() -> tuple[float, float] | None:
    """(tick length, the monotonic moment of one tick), found once per process; None without ticks.

    Ticks fall on a fixed grid of the monotonic clock, so one tick serves the
    process. As root it is read where the kernel keeps it: the expiry of a
    CPU's tick timer in /proc/timer_list, exact and at once. Elsewhere it is
    sighted: the coarse clock advances when the tick's timekeeping runs, so the
    moment it changes is a tick (its value is not: it lags the tick). A
    sighting is late by however late the timekeeping ran (0.38 and 0.47 ms,
    once each, in this project's test runs on a VM), which the timer's
    expiry is not. The runner finds the grid before any real-time
    timeline, at normal priority, so that the sighting's spin of up to ten
    ticks never holds a CPU from a batch's real-time workers; as it may be
    preempted there, a sighting counts only when the reads on either side of
    the change are SIGHTING apart or less.
    """
    try:
        length = time.clock_getres(CLOCK_MONOTONIC_COARSE)
        last = time.clock_gettime(CLOCK_MONOTONIC_COARSE)
    except OSError:
        return None
    if (tick := _tick_timer_expiry()) is not None:
        return length, tick
    previous = time.monotonic()
    deadline = previous + 10 * length
    while previous < deadline:
        coarse = time.clock_gettime(CLOCK_MONOTONIC_COARSE)
        now = time.monotonic()
        if coarse != last:
            if now - previous < SIGHTING:
                return length, now
            last = coarse
        previous = now
    return None


def _tick_timer_expiry() -> float | None:
    """When this CPU's tick timer expires next (monotonic seconds), from /proc/timer_list (with skew_tick=1
    each CPU ticks on a grid of its own); None where it cannot be read (not root) or shows no tick timer."""
    try:
        with open(TIMER_LIST) as handle:
            text = handle.read()
    except OSError:
        return None
    sections = re.split(r"^cpu: (\d+)\n", text, flags=re.M)  # [head, cpu, its text, cpu, its text, ...]
    by_cpu = dict(zip(sections[1::2], sections[2::2]))
    found = TIMER_LIST_TICK.search(by_cpu.get(str(_libc.sched_getcpu()), text))
    return int(found[1]) / 1e9 if found else None


def timeline_start(on_tick: bool = True) -> float:
    """The moment for script time 0: TICK_OFFSET after the first tick at least START_MARGIN ahead.

    Not ``on_tick`` in a crowded batch: workers whose timelines all start on a tick act at the same
    moments and wait for one another.
    """
    earliest = time.monotonic() + START_MARGIN
    grid = tick_grid() if on_tick else None
    if grid is None:
        return earliest
    length, tick = grid
    ticks = math.ceil((earliest - TICK_OFFSET - tick) / length)
    return tick + ticks * length + TICK_OFFSET


def ticking_cpus() -> dict[int, tuple[bool, int]] | None:
    """Each CPU's (tick running, idle calls so far) from /proc/timer_list; None where it cannot be read."""
    try:
        with open(TIMER_LIST) as handle:
            text = handle.read()
    except OSError:
        return None
    return {int(cpu): (stopped == "0", int(calls)) for cpu, stopped, calls in TIMER_LIST_CPU.findall(text)}


def let_other_cpus_settle() -> None:
    """Wait (up to SETTLE_LIMIT) until this process's other CPUs have stopped their ticks, or are busy.

    A timer the kernel arms "now" (the ACK of a FIN) leaves at the next tick
    of the CPU that armed it, but only if jiffies has moved on by then. The
    CPU that keeps jiffies is any CPU whose tick runs; an idle CPU whose tick
    has stopped hands that duty to the next CPU that ticks. When another CPU
    ticks at the same moment and keeps time, the arming CPU's tick may run
    first and find jiffies not yet moved on: the ACK leaves a tick late. The
    other CPUs are kept ticking by the RCU grace periods that the previous
    run's teardown and this run's setup start (rcu_preempt, rcu_exp_gp_kthr),
    so the run waits for them to go idle before its time 0 (docs/timing.md,
    "The kernel's ticks", has the traces and the cost).

    A CPU that stays out of idle (another process keeps it busy) never stops
    its tick, and no wait changes that: once it has made no idle call for
    BUSY_AFTER, it is not waited for. Called on the timeline's thread, inside
    ``punctual``; the CPU it runs on (sched_getcpu) is not waited for.
    """
    first = ticking_cpus()
    if first is None:
        return
    others = set(first) - {_libc.sched_getcpu()}  # jiffies may be kept by any CPU, in this cpuset or not
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_LIMIT:
        now = ticking_cpus() or {}
        busy_for = time.monotonic() - started
        waiting = [cpu for cpu in others if cpu in now and now[cpu][0]
                   and not (busy_for >= BUSY_AFTER and now[cpu][1] == first[cpu][1])]
        if not waiting:
            return
        time.sleep(SETTLE_POLL)


def realtime_allowed() -> bool:
    """Whether this process may give its timeline real-time scheduling (tried, then put back)."""
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
    except PermissionError:
        return False
    os.sched_setscheduler(0, policy, param)
    return True


def above_timelines() -> None:
    """Give the calling thread (a syscall's) a real-time priority above every timeline's, if it has
    real-time scheduling at all (it inherits the timeline's class).

    A blocking call returns when the kernel wakes its thread, often in the middle of the timeline's own
    write of the segment that ended it; its return is noted when the thread next runs. At the timeline's
    priority it would wait for the timeline (or, in a batch, another run's) to block first, and its return,
    noted late, would be blamed on the kernel. Above them it runs at once, for the few microseconds it needs.
    """
    if os.sched_getscheduler(0) == os.SCHED_FIFO:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(SYSCALL_PRIORITY))


class RunqueueWait:
    """How long the calling thread has waited, runnable, for a CPU (the kernel's schedstat for it): the
    part of a syscall's measured duration that was the lab's scheduling, not the kernel's answer."""

    def __init__(self):
        try:
            self._fd: int | None = os.open(SCHEDSTAT, os.O_RDONLY)
        except OSError:  # a kernel without CONFIG_SCHED_INFO: no correction, lateness shows as the kernel's
            self._fd = None

    def seconds(self) -> float:
        if self._fd is None:
            return 0.0
        return int(os.pread(self._fd, 64, 0).split()[1]) / 1e9

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


_timeline_slot: int | None = None  # a batch worker's number (take_timeline_slot); None in any other process


def take_timeline_slot(slot: int) -> None:
    """Number this process as a batch's ``slot``-th worker: its timelines keep to the CPU of that number."""
    global _timeline_slot
    _timeline_slot = slot


_spread: set[int] | None = None  # the CPUs the process may use, while keep_to_timeline_cpu holds it to one


def usable_cpus() -> set[int]:
    """The CPUs this process may use: its affinity, or the one it had before keep_to_timeline_cpu."""
    return set(_spread) if _spread is not None else os.sched_getaffinity(0)


def keep_to_timeline_cpu() -> None:
    """From now on, hold the calling thread (and the threads it starts) to the CPU its timeline will keep to,
    where the timeline will be held there (real-time scheduling allowed); for a process that runs its
    timelines itself, one after another (``tcplab run`` of one script).

    What a run does before its timeline (namespaces made, sockets closed,
    tracepoints set up) leaves RCU callbacks on the CPU it ran on, and a CPU
    with callbacks pending keeps its tick running until a grace period has
    passed (~30 ms here). On the timeline's own CPU, which the quiet start
    does not wait for (``let_other_cpus_settle``), they cost the run
    nothing; on another, the quiet start waited for them: 0.3 to 51 ms,
    against 0.4 ms every time once held (ten one-script runs each).
    """
    global _spread
    if _spread is None and realtime_allowed():
        allowed = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {timeline_cpu(allowed)})
        _spread = allowed


@contextlib.contextmanager
def on_timeline_cpu():
    """``keep_to_timeline_cpu`` for the block (runs in turn in this process), the CPUs given back after it
    unless they were held before it."""
    held = _spread is not None
    keep_to_timeline_cpu()
    try:
        yield
    finally:
        if not held:
            spread_again()


def spread_again() -> None:
    """Give back the CPUs ``keep_to_timeline_cpu`` took (before a pool of workers is forked: each worker
    keeps to a CPU of its own)."""
    global _spread
    if _spread is not None:
        os.sched_setaffinity(0, _spread)
        _spread = None


def timeline_cpu(allowed: set[int]) -> int:
    """The one CPU a real-time timeline keeps to: a batch's workers, numbered, each to its own while they are
    no more than the CPUs; any other process by its process id. Workers go by their number, not their
    process id: process ids step by however many processes the machine started in between, so two
    workers could land on one CPU and wait for each other while another CPU stays idle."""
    cpus = sorted(allowed)
    slot = os.getpid() if _timeline_slot is None else _timeline_slot
    return cpus[slot % len(cpus)]


@dataclass(frozen=True)
class Pacing:
    """How a run keeps its timeline: chosen once, by whether its batch is crowded (more workers than CPUs).

    Alone or uncrowded, a timeline waits for the other CPUs to stop ticking,
    starts just after a kernel tick, keeps to one CPU and takes back part of
    its lag at each wait, so that it keeps its phase to the kernel's ticks. In
    a crowded batch the other CPUs are the batch's own workers, never idle,
    and real-time workers held to one CPU each would wait for one another: no
    tick to keep, so no phase; instead an action begun late before any segment
    crossed the link moves time 0 with it (no kernel timer counts from it yet).
    """

    quiet_start: bool  # settle the other CPUs and start time 0 just after a tick
    one_cpu: bool  # the timeline's threads keep to one CPU (with real-time scheduling)
    takes_back_lag: bool  # the lab takes back up to half the tolerance floor of its lag at a wait
    restarts_before_segments: bool  # a late action before the first segment moves time 0

    @staticmethod
    def for_batch(crowded: bool) -> Pacing:
        return CROWDED if crowded else UNCROWDED


UNCROWDED = Pacing(quiet_start=True, one_cpu=True, takes_back_lag=True, restarts_before_segments=False)
CROWDED = Pacing(quiet_start=False, one_cpu=False, takes_back_lag=False, restarts_before_segments=True)


@contextlib.contextmanager
def punctual(one_cpu: bool = True):
    """A timeline's conditions: no garbage collection, a short GIL switch interval, real-time scheduling
    when allowed and, with it and ``one_cpu``, one CPU (threads started inside inherit both). Yields
    whether real-time scheduling was granted.

    One CPU: the kernel arms a timer on the CPU that handled the segment, which is the CPU of the lab's
    thread that wrote it. With the run's threads free to move between CPUs, the answer from a timer due
    at once (the ACK of a FIN) may leave a tick late. Not in a batch with more workers than CPUs
    (``one_cpu`` false): real-time workers held to each CPU wait for one another, where the scheduler
    moving them keeps them on time.
    """
    switch_interval = sys.getswitchinterval()
    policy = os.sched_getscheduler(0)
    param = os.sched_getparam(0)
    affinity = os.sched_getaffinity(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
        realtime = True
    except PermissionError:  # not root, or a user namespace: the normal class, and lateness is reported
        realtime = False
    pinned = realtime and one_cpu  # without real-time a busy CPU would share its time with us
    if pinned:
        os.sched_setaffinity(0, {timeline_cpu(affinity)})
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    gc.disable()
    try:
        yield realtime
    finally:
        gc.enable()
        sys.setswitchinterval(switch_interval)
        if pinned:
            os.sched_setaffinity(0, affinity)
        if realtime:
            os.sched_setscheduler(0, policy, param)
