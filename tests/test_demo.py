"""The first real handshake: numbers and states the kernel must produce (RFC 9293).

The demo is a script played by the engine; these checks read its trace and
compare the numbers with what RFC 9293 says, not with what the script says.
"""

from __future__ import annotations

import pytest
from helpers import tcplab

from lab.course.first_handshake import SCRIPT, run_demo

MOD = 2**32


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("isn", [1_000_000, MOD - 1])  # MOD - 1: x+1 wraps to 0
def test_handshake_and_close_numbers_and_states(family, isn):
    result = run_demo(family, lab_isn=isn)
    assert result.run.passed, result.run.failure
    flow = [(s.from_left, s.flags) for s in result.steps]
    assert flow == [(True, "S"), (False, "S."), (True, "."), (True, "F."), (False, "."), (False, "F."), (True, ".")]
    syn, synack, ack, fin, fin_ack, kernel_fin, last_ack = result.steps
    x, y = isn, synack.live_seq
    assert syn.live_seq == x and result.lab_isn == x
    assert synack.live_ack == (x + 1) % MOD
    assert result.kernel_isn == y
    assert (ack.live_seq, ack.live_ack) == ((x + 1) % MOD, (y + 1) % MOD)
    assert fin_ack.live_ack == (x + 2) % MOD, "a FIN consumes one sequence number"
    assert (kernel_fin.live_seq, kernel_fin.live_ack) == ((y + 1) % MOD, (x + 2) % MOD)
    assert (last_ack.live_seq, last_ack.live_ack) == ((x + 2) % MOD, (y + 2) % MOD)
    states = [s.states["kernel"] for s in result.steps]
    assert states == ["SYN_RECV", "SYN_RECV", "ESTABLISHED", "CLOSE_WAIT", "CLOSE_WAIT", "LAST_ACK", "CLOSED"]


def test_the_kernel_chooses_a_different_isn_each_time():
    assert run_demo(4).kernel_isn != run_demo(4).kernel_isn


def test_a_wrong_expectation_is_caught():
    """The demo's check fails when the kernel's answer differs from what it expects."""
    wrong = SCRIPT.read_text().replace("+0 > S. 0:0(0) ack 1 <...>", "+0 > S. 0:0(0) ack 2 <...>")
    failure = run_demo(4, lab_isn=5000, script_text=wrong).run.failure
    assert failure is not None and "ack: expected 2, got 1" in failure.fields


def test_silence_is_caught():
    """No listener: the kernel answers the SYN with a RST, never a SYN-ACK."""
    closed = SCRIPT.read_text().replace("   +0 listen(3, 1) = 0\n   +0 state LISTEN port 8080\n", "")
    closed = closed.replace("   +0 state SYN_RECV\n", "")
    failure = run_demo(4, lab_isn=7000, script_text=closed).run.failure
    assert failure is not None and "flags: expected S., got R." in failure.fields


def test_demo_command_prints_the_table():
    result = tcplab("demo", "--isn", "1000")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("lab ISN x = 1000, kernel ISN y = ")
    assert " 1  lab -> kernel  S" in result.stdout and "SYN_RECV" in lines[4]
    assert lines[-1].split()[-1] == "gone" and " CLOSED " in lines[-1]
