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
    """Block SIGINT and SIGTERM for the block; pending ones fire right after it."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
