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


def test_a_tcp_info_block_waits_until_the_kernel_has_taken_in_the_lab_s_segments():
    """Drive mode counts its injections and the kernel's TCP InSegs (lab/live/drive.py await_taken_in): a
    segment sent is counted; while one is not, the wait lasts to its deadline; once all are, it ends at once."""
    import time

    from lab.live.drive import DrivePort
    from lab.live.port_lease import leased_ports
    from lab.script.events import SERVER_PORT
    from lab.script.settings import Settings
    from lab.tcp.packets import Segment, text_to_flags

    script = parse("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", "count.pkt")
    port = DrivePort(script, 4, Settings().for_script(script))
    with leased_ports() as ports, port.topology() as topology:
        port.setup(topology, ports)
        try:
            kernel, lab = port.ends["kernel"], port.ends["lab"]
            before = kernel.observer.segments_in()
            port.send_segment(Segment(lab.address, kernel.address, lab.port, SERVER_PORT, text_to_flags("S"), 1, 0,
                                      65535))  # no listener: answered with a RST, taken in all the same
            deadline = time.monotonic() + 1
            while kernel.observer.segments_in() == before and time.monotonic() < deadline:
                time.sleep(0.001)
            assert kernel.observer.segments_in() == before + 1
            port.injected = kernel.observer.segments_in() - port.segments_before + 1  # one the kernel never saw
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
