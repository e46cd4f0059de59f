"""Teardown guarantees: SIGINT, SIGTERM and SIGKILL, live runs left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from helpers import TCPLAB, Held, tcplab

from netns.names import parse_netns
from netns.namespace import listed


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_run_leaves_nothing(signum, code):
    held = Held("--sysctl", "net.ipv4.tcp_fin_timeout=5")
    assert len(held.namespaces) == 2 and set(held.namespaces) <= set(listed())
    assert held.stop(signum) == code
    assert not set(held.namespaces) & set(listed())
    assert "Traceback" not in held.proc.stderr.read()


@pytest.mark.alone  # kills a run and cleans up after dead ones: other tests would see its leftovers as theirs
def test_cleanup_removes_a_killed_run_and_spares_a_live_one():
    killed = Held()
    assert killed.stop(signal.SIGKILL) == -signal.SIGKILL
    assert set(killed.namespaces) <= set(listed()), "SIGKILL cannot be caught: its namespaces remain"
    live = Held("--loopback")
    try:
        listing = tcplab("topo", "ls").stdout
        assert f"pid {killed.proc.pid}" in listing and "dead" in listing
        result = tcplab("topo", "cleanup")
        assert result.returncode == 0, result.stderr
        assert not set(killed.namespaces) & set(listed())
        assert set(live.namespaces) <= set(listed())
    finally:
        assert live.stop(signal.SIGINT) == 130
    assert not set(live.namespaces) & set(listed())


def test_topo_down_stops_a_live_run():
    held = Held("--observe")
    result = tcplab("topo", "down", str(held.proc.pid))
    assert result.returncode == 0, result.stderr
    assert held.proc.wait(10) == 143
    assert not set(held.namespaces) & set(listed())


def test_topo_down_needs_a_target():
    result = tcplab("topo", "down")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "topo ls" in result.stderr


# alone: how fast the workers unwind is what this measures, and other tests' namespaces coming and going
# beside it hold the kernel's network namespace teardown (one run in about five took 12 s there)
@pytest.mark.alone
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_a_parallel_batch_promptly(signum, code):
    """Workers unwind their runs and skip the queued ones; nothing is left behind."""
    before = set(listed())
    proc = subprocess.Popen([TCPLAB, "run", "--all", "-j", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(3)  # the workers are in the longest exercises by now
    proc.send_signal(signum)
    started = time.monotonic()
    assert proc.wait(timeout=20) == code
    assert time.monotonic() - started < 5
    # The batch's workers are gone; whatever they left would carry a dead pid. Other live tcplab
    # processes (a parallel test session) may come and go meanwhile: theirs are not this batch's.
    left = {name for name in set(listed()) - before if not parse_netns(name)[0].is_alive()}
    assert not left
    assert "Traceback" not in proc.stderr.read()


@pytest.mark.parametrize("delay", [0.03, 0.06, 0.09, 0.12, 0.15])
def test_a_signal_while_a_run_starts_leaves_nothing(delay):
    """``tcplab run`` of one script starts its trace instance and its topology on threads of their own while
    it loads (lab/cli/__init__.py, lab/live/kept.py): a signal at any moment of that leaves neither behind."""
    from netns.tracefs import TracingUnavailable, tracefs_root

    proc = subprocess.Popen([TCPLAB, "run", "close-wait-leak", "--ip-version", "4"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) in (143, -signal.SIGTERM)  # before its handler is set, the default action ends it
    assert "Traceback" not in proc.stderr.read()
    ours = f"tcplab-{proc.pid}-"
    assert not [name for name in listed() if name.startswith(ours)]
    try:
        root = tracefs_root()
    except TracingUnavailable:
        return
    try:
        assert not [name for name in os.listdir(f"/proc/self/fd/{root}/instances") if name.startswith(ours)]
    finally:
        os.close(root)
