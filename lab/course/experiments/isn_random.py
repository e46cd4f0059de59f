"""isn-random: the kernel's initial sequence numbers, connection after connection.

The articles say the ISN is "random". Linux computes it as RFC 6528 asks
(secure_tcp_seq): a keyed hash of the 4-tuple plus a clock that ticks every
64 ns. So two halves are checked against the real kernel:

- different 4-tuples (the lab's SYNs from different source ports): the
  ISNs are spread over the 32-bit space and the step from one to the next
  is not the time between them (no 4 µs-clock ISN as in RFC 793);
- one 4-tuple, again and again: the ISN advances by the elapsed time / 64 ns,
  so a new incarnation of a connection starts above the old one.

Each probe is a SYN from the lab, the kernel's SYN-ACK (whose seq is the ISN;
its receive timestamp dates it) and a RST that discards the request, played
through the drive port and read from the live source every script run uses.
"""

from __future__ import annotations

import random
import socket
import statistics
import time

from lab.live.drive import DrivePort
from lab.live.port_lease import leased_ports
from lab.judge.matcher import LAB
from lab.live.recorder import write_pcapng
from lab.live.sources import LiveSource
from lab.judge.trace import Failure, RunResult
from lab.tcp.packets import Segment, text_to_flags
from lab.script.events import SERVER_PORT, Script
from lab.script.settings import SLOW_TOLERANCE_USECS
from netns import inside

from lab.course.experiments import failed_check

PROBES = 24
TICK_NS = 64  # secure_tcp_seq's clock: ktime_get_real_ns() >> 6
CLOCK_SLACK_TICKS = 200_000 // TICK_NS  # 200 µs between the ISN's computation and the SYN-ACK's stamp
# --slow (an emulated guest): that gap reached 434 µs under qemu's emulation; the slow machines' timing
# tolerance instead. A random ISN step still falls inside it with probability 2 * 1.6e6 / 2^32 < 0.1 %.
SLOW_CLOCK_SLACK_TICKS = SLOW_TOLERANCE_USECS * 1000 // TICK_NS
MIN_BUCKETS = 6  # of 16 top-nibble buckets; 24 uniform ISNs fill fewer with probability < 1e-5
MOD = 2**32


def clock_errors(samples: list[tuple[float, int]]) -> list[int]:
    """For consecutive (time, isn) samples: ISN step minus elapsed/64 ns, in ticks, wrapped to ±2^31."""
    errors = []
    for (t1, isn1), (t2, isn2) in zip(samples, samples[1:]):
        predicted = round((t2 - t1) * 1e9 / TICK_NS)
        error = (isn2 - isn1 - predicted) % MOD
        errors.append(error - MOD if error >= MOD // 2 else error)
    return errors


def check_spread(samples: list[tuple[float, int]], slack: int = CLOCK_SLACK_TICKS) -> str:
    """What is wrong with ISNs of different 4-tuples, or '' when they look unpredictable."""
    isns = [isn for _, isn in samples]
    if len(set(isns)) != len(isns):
        return "two connections got the same ISN"
    buckets = len({isn >> 28 for isn in isns})
    if buckets < MIN_BUCKETS:
        return f"the ISNs cluster: {buckets} of 16 top-nibble buckets used (expected >= {MIN_BUCKETS})"
    clocked = sum(abs(error) <= slack for error in clock_errors(samples))
    if clocked > 1:
        return f"{clocked} of {len(samples) - 1} ISN steps equal the elapsed time: the ISN follows a clock"
    return ""


def check_clock(samples: list[tuple[float, int]], slack: int = CLOCK_SLACK_TICKS) -> str:
    """What is wrong with ISNs of one 4-tuple, or '' when each advanced by elapsed/64 ns."""
    errors = clock_errors(samples)
    worst = max(errors, key=abs)
    if abs(worst) > slack:
        return f"an ISN step differs from elapsed time / {TICK_NS} ns by {worst} ticks (allowed {slack})"
    return ""


class Prober:
    """SYN, SYN-ACK, RST against a listener in the kernel namespace, through the drive port."""

    def __init__(self, port: DrivePort, source: LiveSource):
        self.port, self.source = port, source
        self.lab, self.kernel = port.ends[LAB], port.ends["kernel"]
        self.comments: dict[int, str] = {}

    def _send(self, segment: Segment, comment: str) -> None:
        self.comments[id(self.port.send_segment(segment).ref)] = comment

    def probe(self, lab_port: int) -> tuple[float, int]:
        """(arrival time, ISN) of the kernel's SYN-ACK to a SYN from ``lab_port``."""
        self.lab.port = lab_port  # the port reads the kernel's answers to this port only
        isn = random.getrandbits(32)
        syn = Segment(self.lab.address, self.kernel.address, lab_port, SERVER_PORT, text_to_flags("S"), isn, 0,
                      65535, options=(("MSS", 1460),))
        self._send(syn, f"isn-random: SYN from port {lab_port}")
        deadline = time.monotonic() + 1.0
        while (seen := self.source.next(deadline)) is not None:
            if seen.segment.flag_text == "S.":
                self.comments[id(seen.ref)] = f"isn-random: SYN-ACK, ISN {seen.segment.seq}"
                rst = Segment(self.lab.address, self.kernel.address, lab_port, SERVER_PORT, text_to_flags("R"),
                              (isn + 1) % MOD, 0, 0)
                self._send(rst, "isn-random: RST, the request is dropped")
                return seen.time, seen.segment.seq
        raise Failure(0, f"no SYN-ACK from the kernel to the SYN from port {lab_port} within 1 s")


def run(experiment, family: int, settings) -> RunResult:
    started = time.monotonic()
    failure, notes = None, []
    script = Script(experiment.path)
    port = DrivePort(script, family, settings.for_script(script))
    with leased_ports() as ports, port.topology() as topology:
        wire = port.setup(topology, ports)
        try:
            kind = socket.AF_INET6 if family == 6 else socket.AF_INET
            with inside(topology.kernel_ns):
                listener = socket.socket(kind, socket.SOCK_STREAM)
            with listener:
                listener.bind((port.ends["kernel"].address, SERVER_PORT))
                listener.listen(PROBES)
                prober = Prober(port, LiveSource(wire, port, port.ends))
                try:
                    lab_ports = random.sample(ports, PROBES + 1)
                    spread = [prober.probe(lab_port) for lab_port in lab_ports[:PROBES]]
                    same = []
                    for _ in range(PROBES):
                        same.append(prober.probe(lab_ports[-1]))
                        time.sleep(0.002)
                except Failure as error:
                    failure = error
        finally:
            wire.close()
            for end in port.ends.values():
                end.close()
        if failure is None:
            slack = SLOW_CLOCK_SLACK_TICKS if settings.slow else CLOCK_SLACK_TICKS
            problem = check_spread(spread, slack)
            if problem:
                failure = failed_check(__file__, "spread", f"ISNs of {PROBES} different 4-tuples: {problem}")  # #spread
            elif problem := check_clock(same, slack):
                failure = failed_check(__file__, "clock", f"ISNs of one 4-tuple: {problem}")  # #clock
            else:
                errors = [abs(error) for error in clock_errors(same)]
                notes = [
                    f"{PROBES} 4-tuples: {len({isn >> 28 for _, isn in spread})} of 16 top-nibble buckets used; "
                    f"no step follows the clock (smallest miss {min(abs(e) for e in clock_errors(spread))} ticks)",
                    f"one 4-tuple, {PROBES} times: each ISN = previous + elapsed/{TICK_NS} ns, "
                    f"within {max(errors)} ticks (median {statistics.median(errors):.0f}; 1 tick = 64 ns)",
                ]
                if settings.slow:
                    notes.append(f"--slow: each step judged within {slack} ticks, the slow machines' timing "
                                 f"tolerance, instead of {CLOCK_SLACK_TICKS}")
        pcap = settings.pcap
        if pcap:
            write_pcapng(pcap, wire.frames, prober.comments, wire.realtime_offset)
    return RunResult(experiment.path, family, failure, pcap, time.monotonic() - started, notes=notes)
