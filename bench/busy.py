"""One CPU kept busy by another process, as users meet it: ``sh -c 'while :; do :; done'``."""

from __future__ import annotations

import contextlib
import subprocess


@contextlib.contextmanager
def one_busy_core(enabled: bool = True):
    """While inside, another process spins on one CPU (when ``enabled``)."""
    if not enabled:
        yield
        return
    spinner = subprocess.Popen(["sh", "-c", "while :; do :; done"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()
