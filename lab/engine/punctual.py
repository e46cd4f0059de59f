"""Being on time: how the run waits for an event's moment, and what keeps it from being late.

Measured on this 2-core machine with one core busy (README, "Measured on
this machine"): a real-time scheduling class for the timeline thread, where
the user may have one, keeps the lab's own actions within a fraction of a
millisecond (without it 7 of 64 runs failed); a real-time thread wakes from
a sleep on time, so it does not spin, which would only hold a CPU from the
other workers of a batch. Without real-time scheduling the thread sleeps to
just before the moment, then spins (packetdrill's wait_for_event): fewer late
outliers there.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import time

SPIN = 0.001  # seconds before an event's moment at which sleeping stops and spinning starts
GIL_SWITCH_INTERVAL = 0.0002  # seconds: a returning syscall thread notes its time promptly
REALTIME_PRIORITY = 10  # SCHED_FIFO, low among real-time priorities; the kernel's RT throttling still applies


def wait_until(moment: float, realtime: bool) -> None:
    """Return at ``moment`` (monotonic clock): sleep to it (real-time), or sleep until just before it and spin."""
    delay = moment - time.monotonic() - (0.0 if realtime else SPIN)
    if delay > 0:
        time.sleep(delay)
    while time.monotonic() < moment:
        pass


def realtime_allowed() -> bool:
    """Whether this process may give its timeline real-time scheduling (tried, then put back)."""
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
    except PermissionError:
        return False
    os.sched_setscheduler(0, policy, param)
    return True


@contextlib.contextmanager
def punctual():
    """A timeline's conditions: no garbage collection, a short GIL switch interval, real-time scheduling
    when allowed (threads started inside inherit it). Yields whether real-time scheduling was granted."""
    switch_interval = sys.getswitchinterval()
    policy = os.sched_getscheduler(0)
    param = os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
        realtime = True
    except PermissionError:  # not root, or a user namespace: the normal class, and lateness is reported
        realtime = False
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    gc.disable()
    try:
        yield realtime
    finally:
        gc.enable()
        sys.setswitchinterval(switch_interval)
        if realtime:
            os.sched_setscheduler(0, policy, param)
