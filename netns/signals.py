"""Signals and teardown: SIGINT and SIGTERM unwind ``with`` blocks, never cut them.

:func:`raise_on_interrupts` makes SIGINT raise KeyboardInterrupt (also when
the parent started us with SIGINT ignored, as a shell does for background
jobs) and SIGTERM raise :class:`Terminated`, so every topology's ``__exit__``
runs.
:func:`deferred_signals` holds both signals back while namespaces are being
created or removed, so an interrupt never lands between "made" and "recorded
for teardown".
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_HELD = {signal.SIGINT, signal.SIGTERM}


class Terminated(BaseException):
    """SIGTERM arrived; raised in the main thread like KeyboardInterrupt."""


def _raise_terminated(signum, frame):
    raise Terminated()


def raise_on_interrupts() -> None:
    """SIGINT raises KeyboardInterrupt, SIGTERM :class:`Terminated` (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_terminated)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Block SIGINT and SIGTERM for the block; pending ones fire right after it.

    The mask is the calling thread's: for the block to hold the process's
    signals back, every other thread must block them for good (a signal the
    kernel hands to another thread is raised in the main thread at once).
    So the lab starts every thread of its own through ``start_blocking_signals``.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def start_blocking_signals(thread: threading.Thread) -> threading.Thread:
    """Start ``thread`` with SIGINT and SIGTERM blocked, a mask it keeps: the kernel then delivers them to
    the main thread only, whose blocking wait they interrupt and whose ``deferred_signals`` hold them."""
    with deferred_signals():
        thread.start()
    return thread
