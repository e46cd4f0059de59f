"""Topologies kept from one run to the next of a batch: built once, reset between runs.

Building a veth topology and removing it costs a run about 45 ms, and the
RCU grace periods that creating and removing namespaces start keep the other
CPUs ticking, which the next run's quiet start then waits out. Within a
batch (``keeping()``), a run therefore hands its topology to the next run of
the same kind, on one condition: the reset after it (``Topology.reset``)
proved the kernel state fresh again: no TCP socket left (on kernels before
6.11 a TIME_WAIT socket cannot be ended, so such a topology is removed),
the sysctls put back, the metrics cache and learnt neighbours emptied. A run
whose script changes what no reset undoes (a shell line, a shaped or lossy
link, an injected ICMP error, offloads, an unreachable server's blackhole)
removes its topology as before. tests/test_kept_topologies.py shows the
state a run leaves gone before the next one starts.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing.util
import threading
from collections.abc import Callable

from netns import Topology
from netns.signals import deferred_signals, start_blocking_signals

_kept: dict[tuple, Topology] | None = None  # None: not in a batch; each run builds and removes its own
_ahead: dict[tuple, tuple[threading.Thread, list[Topology]]] = {}  # kind -> its builder, and what it built


@contextlib.contextmanager
def keeping():
    """Within the block, runs in this process keep their topologies for the next run; all removed after."""
    global _kept
    outer, _kept = _kept, ({} if _kept is None else _kept)
    try:
        yield
    finally:
        if outer is None:
            remove_kept()
            _kept = None


def keep_until_exit() -> None:
    """A batch's worker process: keep topologies for its whole life, and remove them as it exits (also
    when a signal ends it: multiprocessing runs its finalizers on the way out)."""
    global _kept
    _kept = {}
    _ahead.clear()  # forked from a parent that built one ahead: the parent's to use or remove, not a worker's
    multiprocessing.util.Finalize(None, remove_kept, exitpriority=10)


def _reset(topology: Topology) -> bool:
    """Whether the reset left the topology as new. A reset the kernel refused somewhere (an older kernel, a
    netlink family it lacks: netns.netlink.NetlinkRefused, an OSError) only costs the next run a topology of
    its own: the run's verdict stands."""
    try:
        return topology.reset()
    except OSError:
        return False


def kept_now() -> list[Topology]:
    """The topologies this process keeps at the moment, for a next run."""
    return list((_kept or {}).values())


@contextlib.contextmanager
def built_ahead(topology: Topology):
    """Build ``topology`` on a thread of its own while the block runs; the block's first run of its kind
    takes it over (waiting for the build if need be), and if none does, it is removed at the block's end.

    A build that fails leaves nothing behind (``Topology.__enter__``) and is
    not reported here: the run then builds its own, meets the error itself
    and reports it as it always does.
    """
    built: list[Topology] = []

    def build() -> None:
        with contextlib.suppress(Exception):
            built.append(topology.__enter__())

    thread = threading.Thread(target=build, name="tcplab topology ahead")
    _ahead[topology.kind] = (thread, built)
    try:
        start_blocking_signals(thread)  # inside the try: an interrupt as it starts still waits for the build
        yield
    finally:
        if thread.ident is not None:  # started
            thread.join()
        if _ahead.get(topology.kind, (None,))[0] is thread:  # no run took it over
            with deferred_signals():  # out of _ahead and removed at once
                del _ahead[topology.kind]
                for unused in built:
                    unused.close()


def _taken_ahead(kind: tuple) -> Topology | None:
    """The topology of this kind built ahead, once its build is over; None if there is none (or it failed)."""
    if kind not in _ahead:
        return None
    thread, built = _ahead[kind]
    thread.join()
    del _ahead[kind]  # only once the build is over (the caller holds signals back)
    return built[0] if built else None


def remove_kept() -> None:
    """Remove every topology kept in this process (a batch's end, a worker's exit, an interruption)."""
    while _kept:
        with deferred_signals():  # out of _kept and removed at once
            _kept.popitem()[1].close()


@contextlib.contextmanager
def topology_for_run(fresh: Topology, reusable: Callable[[], bool]):
    """A topology of ``fresh``'s kind: a kept one if this process has one, else ``fresh`` built. After the
    run, kept again when ``reusable`` (as the run reports it at its end) and the reset succeeds."""
    topology, handed_on = None, False
    try:
        # Held back, a signal cannot land between the topology leaving _ahead or _kept and its being this
        # block's to remove: it fires once ``topology`` names it, and the finally removes it.
        with deferred_signals():
            topology = _taken_ahead(fresh.kind) or (_kept.pop(fresh.kind, None) if _kept is not None else None)
        if topology is None:
            topology = fresh  # inside the try: an interrupt just after the build still removes it
            fresh.__enter__()  # a failed build removes what it made
        yield topology
        if _kept is not None and reusable() and fresh.kind not in _kept and _reset(topology):
            with deferred_signals():  # kept, or else removed below: never both, never neither
                _kept[fresh.kind] = topology
                handed_on = True
    finally:
        if not handed_on and topology is not None:
            topology.close()


atexit.register(remove_kept)  # a batch whose generator was never closed: still nothing left at exit
