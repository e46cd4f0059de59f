"""The first real handshake: the lab plays a client, the kernel a listener.

The demo is a script (lab/course/first_handshake.pkt) played by the live
runner (lab/live/runner.py) like any other, so its segments are built, sent,
read and judged by the same drive port and matcher as every run. The lab sends
a SYN with ISN x; the kernel's SYN-ACK must acknowledge x+1 and its own ISN y
is learnt from it; the lab's ACK (seq x+1, ack y+1) completes the handshake
and accept() returns. Then the lab closes first: FIN, the kernel's ACK
(CLOSE_WAIT), the kernel application's close() (FIN, LAST_ACK), and the lab's
last ACK (CLOSED). The script's state lines read the kernel socket's state
back after every segment, so the states shown are the kernel's own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from lab.judge.trace import RunResult, Step

SCRIPT = Path(__file__).with_name("first_handshake.pkt")
# For each segment of the exchange: the state the lab's scripted client is in after it, and why it looks so.
LAB_SIDE = (
    ("SYN_SENT", "SYN, ISN x chosen by the lab"),
    ("ESTABLISHED", "SYN-ACK: ack = x+1, the kernel's ISN y is learnt"),
    ("ESTABLISHED", "ACK: seq = x+1, ack = y+1"),
    ("FIN_WAIT1", "FIN from the lab: it consumes one sequence number"),
    ("FIN_WAIT2", "ACK of the FIN: ack = x+2; the kernel socket waits in CLOSE_WAIT for close()"),
    ("TIME_WAIT", "the kernel application calls close(): FIN, seq = y+1"),
    ("TIME_WAIT", "last ACK: ack = y+2; the kernel socket is gone"),
)


@dataclass
class DemoResult:
    run: RunResult
    lab_isn: int
    kernel_isn: int

    @property
    def steps(self) -> list[Step]:
        return self.run.steps


def run_demo(family: int = 4, lab_isn: int | None = None, script_text: str | None = None) -> DemoResult:
    """Play the demo script (or ``script_text``, a variant of it) in a fresh topology; the lab's ISN is
    ``lab_isn`` or random."""
    from lab.live.runner import run_script
    from lab.script.settings import Settings
    from lab.script.parser import parse

    script = parse(script_text or SCRIPT.read_text(), str(SCRIPT))
    result = run_script(script, family, dataclasses.replace(Settings(), lab_isn=lab_isn))
    lab_isn = result.steps[0].live_seq if result.steps else 0
    kernel = [step for step in result.steps if step.sender == "kernel" and "S" in step.flags]
    return DemoResult(result, lab_isn, kernel[0].live_seq if kernel else 0)
