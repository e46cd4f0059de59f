"""The first real handshake: the lab plays a client, the kernel a listener.

The lab sends a SYN with ISN x; the kernel's SYN-ACK must acknowledge x+1 and
its own ISN y is learnt from it; the lab's ACK (seq x+1, ack y+1) completes
the handshake and accept() returns. Then the lab closes first: FIN, the
kernel's ACK (CLOSE_WAIT), the kernel application's close() (FIN, LAST_ACK),
and the lab's last ACK (CLOSED). After every segment the kernel socket's state
is read back with sock_diag, so the states shown are the kernel's own.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from netns import IPV6_MTU, VethTopology, inside
from lab.script.events import SERVER_PORT
from netns.topology import DEFAULT_MTU

from .errors import Mismatch
from .observer import CLOSED, Observer
from .packets import Segment, build_frame, parse_frame, text_to_flags
from .wire import Wire

REPLY_TIMEOUT = 1.0  # seconds; the kernel's ACK of a FIN may wait for the delayed-ACK timer
LAB_WINDOW = 65535
LAB_SYN_OPTIONS = (("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7))


@dataclass(frozen=True)
class Step:
    """One segment of the exchange and the states right after it."""

    from_lab: bool
    segment: Segment
    kernel_state: str
    lab_state: str
    note: str


@dataclass
class DemoResult:
    family: int
    lab: tuple[str, int]
    kernel: tuple[str, int]
    lab_isn: int
    kernel_isn: int
    listen_state: str
    steps: list[Step]


class HandshakeDemo:
    """Plays the lab's side of a handshake and an active close against the kernel."""

    def __init__(self, topology: VethTopology, family: int, lab_port: int, lab_isn: int):
        self.topology = topology
        self.family = family
        self.af = socket.AF_INET6 if family == 6 else socket.AF_INET
        self.lab_addr = (topology.lab.address(family), lab_port)
        self.kernel_addr = (topology.kernel.address(family), SERVER_PORT)
        self.lab_isn = lab_isn
        self.kernel_isn = 0
        self.started = time.monotonic()
        self.steps: list[Step] = []
        self.wire = Wire(topology.lab_ns, topology.lab_if)
        self.observer = Observer(topology.kernel_ns)

    def close(self) -> None:
        self.wire.close()
        self.observer.close()

    def _ts_val(self) -> int:
        return 1 + int((time.monotonic() - self.started) * 1000)

    def kernel_state(self, wanted: str | None = None) -> str:
        if wanted is None:
            return self.observer.state(self.af, SERVER_PORT, self.lab_addr[1])
        return self.observer.wait_for_state(self.af, SERVER_PORT, self.lab_addr[1], wanted)

    def send(self, flags: str, seq: int, ack: int, options=(), lab_state: str = "", note: str = "",
             kernel_state_after: str | None = None) -> Segment:
        segment = Segment(self.lab_addr[0], self.kernel_addr[0], self.lab_addr[1], SERVER_PORT,
                          text_to_flags(flags), seq % 2**32, ack % 2**32, LAB_WINDOW, b"", tuple(options))
        self.wire.send(build_frame(self.topology.lab_mac, self.topology.kernel_mac, segment))
        self.steps.append(Step(True, segment, self.kernel_state(kernel_state_after), lab_state, note))
        return segment

    def expect(self, what: str, accept: Callable[[Segment], bool], lab_state: str, note: str,
               kernel_state_after: str | None = None) -> Segment:
        """The next segment the kernel sends on this connection; Mismatch if none."""
        deadline = time.monotonic() + REPLY_TIMEOUT
        while (frame := self.wire.receive(deadline - time.monotonic())) is not None:
            if frame.outgoing:
                continue
            segment = parse_frame(frame.data)
            if segment is None or (segment.sport, segment.dport) != (SERVER_PORT, self.lab_addr[1]):
                continue
            if not accept(segment):
                raise Mismatch(f"expected the kernel's {what}, got {segment.flag_text} seq {segment.seq} "
                               f"ack {segment.ack} (lab ISN {self.lab_isn}, kernel ISN {self.kernel_isn})")
            self.steps.append(Step(False, segment, self.kernel_state(kernel_state_after), lab_state, note))
            return segment
        raise Mismatch(f"the kernel sent no {what} within {REPLY_TIMEOUT:.0f} s")

    def timestamps(self, kernel_segment: Segment) -> tuple:
        """The lab's TS option echoing the kernel's last TS val, if timestamps were negotiated."""
        ts = kernel_segment.option("Timestamp")
        return (("NOP", None), ("NOP", None), ("Timestamp", (self._ts_val(), ts[0]))) if ts else ()

    def play(self, listener: socket.socket) -> None:
        x = self.lab_isn
        syn_options = tuple((k, (self._ts_val(), 0)) if k == "Timestamp" else (k, v) for k, v in LAB_SYN_OPTIONS)
        self.send("S", x, 0, syn_options, "SYN_SENT", "SYN, ISN x chosen by the lab", "SYN_RECV")
        synack = self.expect(
            "SYN-ACK acknowledging x+1",
            lambda s: s.flag_text == "S." and s.ack == (x + 1) % 2**32,
            "ESTABLISHED",
            "SYN-ACK: ack = x+1, the kernel's ISN y is learnt",
        )
        y = self.kernel_isn = synack.seq
        self.send(".", x + 1, y + 1, self.timestamps(synack), "ESTABLISHED",
                  "ACK: seq = x+1, ack = y+1", "ESTABLISHED")
        connection, _ = listener.accept()
        try:
            self.send("F.", x + 1, y + 1, self.timestamps(synack), "FIN_WAIT1",
                      "FIN from the lab: it consumes one sequence number", "CLOSE_WAIT")
            self.expect(
                "ACK of the lab's FIN (ack x+2)",
                lambda s: s.flag_text == "." and s.ack == (x + 2) % 2**32,
                "FIN_WAIT2",
                "ACK of the FIN: ack = x+2; the kernel socket waits in CLOSE_WAIT for close()",
                "CLOSE_WAIT",
            )
        finally:
            connection.close()
        fin = self.expect(
            "FIN after close()",
            lambda s: "F" in s.flag_text and s.seq == (y + 1) % 2**32,
            "TIME_WAIT",
            "the kernel application calls close(): FIN, seq = y+1",
            "LAST_ACK",
        )
        self.send(".", x + 2, y + 2, self.timestamps(fin), "TIME_WAIT",
                  "last ACK: ack = y+2; the kernel socket is gone", CLOSED)


def run_demo(family: int = 4, lab_isn: int | None = None) -> DemoResult:
    """Build a topology, play the handshake and the close, tear everything down."""
    lab_isn = random.getrandbits(32) if lab_isn is None else lab_isn
    lab_port = random.randint(40000, 60000)
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    with VethTopology(mtu=IPV6_MTU if family == 6 else DEFAULT_MTU) as topology:
        with inside(topology.kernel_ns):
            listener = socket.socket(af, socket.SOCK_STREAM)
        with listener:
            listener.bind((topology.kernel.address(family), SERVER_PORT))
            listener.listen(1)
            listener.settimeout(REPLY_TIMEOUT)
            demo = HandshakeDemo(topology, family, lab_port, lab_isn)
            try:
                listen_state = demo.observer.state(af, SERVER_PORT)
                demo.play(listener)
            finally:
                demo.close()
    return DemoResult(family, demo.lab_addr, demo.kernel_addr, lab_isn, demo.kernel_isn, listen_state, demo.steps)
