"""netns/signals.py: a SIGTERM inside ``deferred_signals`` fires only after the block, also while other threads
of the lab run; a thread started otherwise would take the signal and have it raised inside the block."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import os, signal, sys, threading, time
from netns.signals import Terminated, deferred_signals, raise_on_interrupts, start_blocking_signals
raise_on_interrupts()
stop = threading.Event()
helper = threading.Thread(target=stop.wait, daemon=True)
start_blocking_signals(helper) if sys.argv[1] == "blocking" else helper.start()
where = "none"
try:
    with deferred_signals():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        except Terminated:
            where = "inside"
            raise
except Terminated:
    where = where if where == "inside" else "after"
print(where)
"""


@pytest.mark.parametrize(("start", "where"), [("blocking", "after"), ("plain", "inside")])
def test_a_signal_is_held_back_only_when_every_other_thread_blocks_it(start, where):
    done = subprocess.run([sys.executable, "-c", PROBE, start], capture_output=True, text=True, timeout=10)
    assert done.stdout.strip() == where, done.stdout + done.stderr
