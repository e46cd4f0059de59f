"""A slow link: a token bucket (tc tbf) on an interface, through pyroute2.

This kernel has no netem, so a delay cannot be configured directly; a token
bucket with a small rate delays every frame that finds the bucket empty by
its size / rate, and queues the ones behind it. The queue is long (10 s
worth), so nothing is dropped.
"""

from __future__ import annotations

from pyroute2 import IPRoute

from netns import namespace

ROOT_HANDLE = 0x10000  # 1:
QUEUE_SECONDS = "10s"


def limit_rate(ns: str, ifname: str, rate_bps: int, burst_bytes: int) -> None:
    """Put (or replace) a token bucket of ``burst_bytes`` filling at ``rate_bps`` on ``ifname``'s egress."""
    with namespace.inside(ns), IPRoute() as ipr:
        index = ipr.link_lookup(ifname=ifname)[0]
        ipr.tc("replace", "tbf", index, ROOT_HANDLE, rate=f"{rate_bps}bit", burst=burst_bytes,
               latency=QUEUE_SECONDS)
