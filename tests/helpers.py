"""Helpers for tests that run the ``tcplab`` command in a child process."""

from __future__ import annotations

import dataclasses
import os
import select
import subprocess
import sys
import time
from pathlib import Path

TCPLAB = str(Path(sys.executable).with_name("tcplab"))
NOBODY = 65534
BLOCK_USERNS = str(Path(__file__).with_name("block_userns.py"))
SCRIPTS = Path(__file__).with_name("scripts")  # one small script per engine feature


# make test runs several kernel tests at once (pytest-xdist): the machine is then a crowded batch.
CROWDED = "PYTEST_XDIST_WORKER" in os.environ
LATE_TRIES = 4  # tries of one run in judged(), while the lab is late or a crowded machine throws the timing off


def judged(script, family: int = 4, settings=None, **work):
    """A run's verdict on the kernel as tcplab gives it (lab/live/batch.py): a first try the lab itself was late
    for says nothing about the kernel and is made again uncrowded; so is one whose timing was off while other
    tests' runs crowded the machine, as in a crowded batch. ``work``: run_many's, for selftests."""
    from lab.live.batch import not_the_kernels_verdict, run_many
    from lab.script.settings import Settings

    job = [(script, family, settings or Settings())]
    (result,) = run_many(job, 1, again_uncrowded=True, **work)
    first = result.first_try or result.failure
    # Other tests' runs keep the machine crowded whatever this one does: a try without a verdict on the kernel
    # is made again, up to LATE_TRIES in all.
    for _ in range(LATE_TRIES - 1 - (result.first_try is not None)):
        if not not_the_kernels_verdict(result.failure, CROWDED):
            break
        (result,) = run_many(job, 1, **work)
    return dataclasses.replace(result, first_try=first) if result.failure is not first else result


def judged_wrong(script, family: int = 4, settings=None, **work):
    """judged() for a script changed to fail: its failure is what a test compares. When every try was lab-late
    (other tests' runs kept the machine that busy), there is no verdict to compare, and the test is skipped,
    not failed: the unchanged exercises' own tests still fail on a lab that is always late."""
    import pytest

    from lab.judge.trace import LAB_LATE

    result = judged(script, family, settings, **work)
    if result.failure is not None and result.failure.kind == LAB_LATE:
        pytest.skip(f"the lab was late on each of {LATE_TRIES} tries: {result.failure.message}")
    return result


def tcplab(*args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    """Run ``tcplab ARGS`` and capture its output."""
    return subprocess.run([TCPLAB, *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def as_nobody(*args: str, block_userns: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``tcplab ARGS`` as uid 65534; optionally where user namespaces are forbidden."""
    drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    if block_userns:
        # Inside the helper's user namespace nobody could not reach the Python
        # interpreter under /root; the ambient capability lets it traverse.
        caps = "+dac_read_search"
        drop = [sys.executable, BLOCK_USERNS, "/usr/bin/setpriv", *drop[1:], f"--inh-caps={caps}", f"--ambient-caps={caps}"]
    return subprocess.run([*drop, TCPLAB, *args], capture_output=True, text=True, timeout=timeout)


def in_unprivileged_container(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``tcplab ARGS`` as root of a user namespace: root, but no rights over the host's mounts."""
    return subprocess.run([sys.executable, BLOCK_USERNS, TCPLAB, *args], capture_output=True, text=True,
                          timeout=timeout)


class Held:
    """A ``tcplab topo up`` process holding a topology until signalled."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([TCPLAB, "topo", "up", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.namespaces = self._wait_ready()

    def _wait_ready(self, timeout: float = 20) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stderr], [], [], deadline - time.monotonic())
            if ready and "ready" in self.proc.stderr.readline():
                out = os.read(self.proc.stdout.fileno(), 65536).decode()
                return [line.split()[1] for line in out.splitlines() if line.startswith("namespace ")]
            if self.proc.poll() is not None:
                break
        self.proc.kill()
        raise AssertionError(f"tcplab topo up did not become ready: {self.proc.stderr.read()}")

    def stop(self, signum: int, timeout: float = 20) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout)
