"""The kernel's realtime stamps on the monotonic clock of the run's own moments.

The kernel stamps what the lab receives on CLOCK_REALTIME (a packet
socket's SO_TIMESTAMPNS, a socket's SO_TIMESTAMPING), while the run times
its own actions on CLOCK_MONOTONIC. The two differ by an offset that stays
steady over a run, so a run reads it once, when its wire opens, and its
stamps, capture and cmsg checks all use that reading; what matters is reading
it right.
"""

from __future__ import annotations

import time

TIGHT = 0.00002  # seconds: two monotonic reads this close bracket the realtime read between them
TRIES = 100  # at most this many brackets, until one is tight


def realtime_offset() -> float:
    """CLOCK_REALTIME minus CLOCK_MONOTONIC, from the tightest bracket of monotonic reads around a realtime
    read.

    Read as one ``time.time() - time.monotonic()``, a preemption between the
    two reads makes the offset short by its length, and every kernel stamp
    converted with it late by as much: a run would fail as the kernel's timing
    for the lab's own preemption. A bracket is read up to TRIES times, until
    one is TIGHT, and the tightest one's midpoint is used (docs/timing.md,
    "Two clocks").
    """
    best_gap, best = float("inf"), 0.0
    for _ in range(TRIES):
        before = time.monotonic()
        real = time.time()
        after = time.monotonic()
        if after - before < best_gap:
            best_gap, best = after - before, real - (before + after) / 2
        if best_gap <= TIGHT:
            break
    return best
