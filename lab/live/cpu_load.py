"""How busy other processes keep this process's CPUs, measured without waiting for it.

A batch chooses its workers from the CPUs other processes leave free. It
used to sample /proc/stat across a 0.1 s sleep before the batch. Instead, the
first sample is taken when this module is imported, which is early in
``tcplab run`` (before the engine's own imports, ~0.15 s). The batch then
reads the second, and takes this process's own CPU time out of the busy time
in between.
"""

from __future__ import annotations

import os
import time

from lab.live.punctual import usable_cpus

MIN_WINDOW = 0.1  # seconds of samples for a share to mean something (/proc/stat counts 10 ms ticks)
MAX_WINDOW = 1.0  # beyond this the first sample says little about now: sample afresh
USER_HZ = os.sysconf("SC_CLK_TCK")


def _sample(cpus: list[int]) -> tuple[float, int, int, float]:
    """(moment, idle jiffies, all jiffies of ``cpus``, this process's CPU seconds)."""
    idle = total = 0
    with open("/proc/stat") as handle:
        for line in handle:
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                values = list(map(int, fields))
                idle += values[3] + values[4]  # idle, iowait
                total += sum(values[:8])
    own = os.times()
    return time.monotonic(), idle, total, own.user + own.system


_CPUS = sorted(usable_cpus())
_FIRST = _sample(_CPUS)


def busy_share(cpus: list[int]) -> float:
    """How much of ``cpus`` other processes used lately (0 to 1): since this module's import when that is
    at most MAX_WINDOW ago (waiting for the rest of MIN_WINDOW if need be), else over a fresh MIN_WINDOW."""
    first = _FIRST if cpus == _CPUS and time.monotonic() - _FIRST[0] <= MAX_WINDOW else _sample(cpus)
    time.sleep(max(0.0, first[0] + MIN_WINDOW - time.monotonic()))
    _, idle, total, own = _sample(cpus)
    elapsed = max(total - first[2], 1)
    busy = (elapsed - (idle - first[1])) - (own - first[3]) * USER_HZ
    return min(max(busy / elapsed, 0.0), 1.0)
