"""%{ }% blocks on a real kernel: names kept from one block to the next, if, print() (lab/judge/code.py)."""

from __future__ import annotations

from pathlib import Path

from helpers import judged
from lab.script.parser import parse, parse_file

SCRIPT = Path(__file__).with_name("scripts") / "code_blocks.pkt"


def test_a_name_kept_from_an_earlier_block_compares_the_kernels_counters():
    result = judged(parse_file(str(SCRIPT)), 4)
    assert result.passed, result.failure
    # The SYN-ACK left from the request sock, not from the socket the block reads.
    assert "print() at line 10: segments out after the handshake: 0" in result.notes, result.notes


def test_a_wrong_expectation_in_such_a_block_fails_at_its_line_with_its_values():
    text = SCRIPT.read_text().replace("assert more == 1", "assert more == 2")
    result = judged(parse(text, str(SCRIPT)), 4)
    assert result.failure is not None and result.failure.line == 14
    assert result.failure.message == "assert more == 2 failed (more=1): segments sent since: 1"


def test_a_tcp_info_block_waits_until_the_kernel_has_taken_in_the_lab_s_segments(monkeypatch):
    """Drive mode counts its injections against the kernel's TCP InSegs (lab/live/drive.py await_taken_in): an
    injected segment is counted on both sides; while one is missing the wait lasts to its deadline; once none
    is, it ends at once; and a run calls it before each block that reads tcp_info."""
    import time

    from lab.live.drive import DrivePort
    from lab.live.port_lease import leased_ports
    from lab.script.settings import Settings

    script = parse("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:0(0) win 1000\n", "count.pkt")
    port = DrivePort(script, 4, Settings().for_script(script))
    with leased_ports() as ports, port.topology() as topology:
        port.setup(topology, ports)
        try:
            port.prepare(port.wire)
            kernel = port.ends["kernel"].observer
            before = kernel.segments_in()
            port.inject(script.events[1])  # no listener: answered with a RST, taken in all the same
            assert port.injected == 1
            port.await_taken_in(time.monotonic() + 1)
            assert kernel.segments_in() == before + 1
            port.injected += 1  # one the kernel never saw
            started = time.monotonic()
            port.await_taken_in(started + 0.05)
            assert time.monotonic() - started >= 0.05
            port.injected -= 1
            started = time.monotonic()
            port.await_taken_in(started + 1)
            assert time.monotonic() - started < 0.05
        finally:
            port.wire.close()
            for end in port.ends.values():
                end.close()
    waits = []
    monkeypatch.setattr(DrivePort, "await_taken_in", lambda self, deadline: waits.append(deadline))
    assert judged(parse_file(str(SCRIPT)), 4).passed
    assert len(waits) == 2  # one before each of the two blocks that read tcp_info
