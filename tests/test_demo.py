"""The first real handshake: numbers and states the kernel must produce (RFC 9293)."""

from __future__ import annotations

import socket

import pytest

from lab.demo import HandshakeDemo, run_demo
from lab.script.events import SERVER_PORT
from lab.errors import Mismatch
from netns import VethTopology, inside

MOD = 2**32


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("isn", [1_000_000, MOD - 1])  # MOD - 1: x+1 wraps to 0
def test_handshake_and_close_numbers_and_states(family, isn):
    result = run_demo(family, lab_isn=isn)
    assert result.listen_state == "LISTEN"
    flow = [(s.from_lab, s.segment.flag_text) for s in result.steps]
    assert flow == [(True, "S"), (False, "S."), (True, "."), (True, "F."), (False, "."), (False, "F."), (True, ".")]
    syn, synack, ack, fin, fin_ack, kernel_fin, last_ack = (s.segment for s in result.steps)
    x, y = isn, synack.seq
    assert syn.seq == x
    assert synack.ack == (x + 1) % MOD
    assert result.kernel_isn == y
    assert (ack.seq, ack.ack) == ((x + 1) % MOD, (y + 1) % MOD)
    assert fin_ack.ack == (x + 2) % MOD, "a FIN consumes one sequence number"
    assert (kernel_fin.seq, kernel_fin.ack) == ((y + 1) % MOD, (x + 2) % MOD)
    assert (last_ack.seq, last_ack.ack) == ((x + 2) % MOD, (y + 2) % MOD)
    states = [s.kernel_state for s in result.steps]
    assert states == ["SYN_RECV", "SYN_RECV", "ESTABLISHED", "CLOSE_WAIT", "CLOSE_WAIT", "LAST_ACK", "CLOSED"]
    assert synack.option("MSS") == 1460  # IPv6 runs use MTU 1520 so the MSS is the same


def test_the_kernel_chooses_a_different_isn_each_time():
    assert run_demo(4).kernel_isn != run_demo(4).kernel_isn


def test_a_wrong_expectation_is_caught():
    """The demo's check fails when the kernel's answer differs from what it expects."""
    with VethTopology() as topology:
        with inside(topology.kernel_ns):
            listener = socket.create_server(("198.18.0.1", SERVER_PORT))
        demo = HandshakeDemo(topology, 4, 40000, 5000)
        try:
            demo.send("S", 5000, 0)
            with pytest.raises(Mismatch, match=r"expected the kernel's SYN-ACK acknowledging x\+2, got S\. seq \d+ ack 5001"):
                demo.expect("SYN-ACK acknowledging x+2", lambda s: s.ack == 5002, "", "")
        finally:
            demo.close()
            listener.close()


def test_silence_is_caught():
    with VethTopology() as topology:  # no listener: the kernel answers RST, never a SYN-ACK
        demo = HandshakeDemo(topology, 4, 40001, 7000)
        try:
            demo.send("S", 7000, 0)
            with pytest.raises(Mismatch, match=r"got R\. seq 0 ack 7001"):
                demo.expect("SYN-ACK", lambda s: s.flag_text == "S.", "", "")
        finally:
            demo.close()
