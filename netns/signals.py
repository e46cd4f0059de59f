"""Signals and teardown: SIGINT and SIGTERM unwind ``with`` blocks, never cut them.

SIGINT already raises KeyboardInterrupt; :func:`raise_on_sigterm` makes SIGTERM
raise :class:`Terminated` the same way, so every topology's ``__exit__`` runs.
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


def raise_on_sigterm() -> None:
    """Turn SIGTERM into a :class:`Terminated` exception (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Block SIGINT and SIGTERM for the block; pending ones fire right after it."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
