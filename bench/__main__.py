"""Run every benchmark and print its figures: ``make bench`` / ``python -m bench``.

Targets (issue notes): veth topology up + down <= 25 ms median;
``tcplab --help`` <= 150 ms median.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lab.privileges import ensure_lab_privileges


def measure(name: str, action: Callable[[], object], runs: int, target_ms: float | None = None) -> None:
    action()  # warm-up: imports, first namespace mount
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    median = statistics.median(samples)
    p90 = samples[int(0.9 * (len(samples) - 1))]
    verdict = "" if target_ms is None else f"  target <= {target_ms:g} ms: {'met' if median <= target_ms else 'MISSED'}"
    print(f"{name:<40} median {median:8.2f} ms  p90 {p90:8.2f} ms  min {samples[0]:8.2f} ms  (n={runs}){verdict}")


def main() -> None:
    ensure_lab_privileges()
    from lab.demo import run_demo
    from netns import LoopbackTopology, VethTopology

    def veth() -> None:
        with VethTopology():
            pass

    def loopback() -> None:
        with LoopbackTopology():
            pass

    tcplab = str(Path(sys.executable).with_name("tcplab"))
    measure("veth topology up + down", veth, 100, 25)
    measure("loopback topology up + down", loopback, 100)
    measure("tcplab --help (process wall time)", lambda: subprocess.run([tcplab, "--help"], capture_output=True), 20, 150)
    measure("demo: topology + handshake + close", run_demo, 20)


if __name__ == "__main__":
    main()
