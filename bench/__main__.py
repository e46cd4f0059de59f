"""Run every benchmark, print its figures and write them to docs/measurements.md: ``make bench``.

The file is replaced whole, dated and headed with the machine it ran on; the
figures the timing design rests on are kept apart (docs/timing-evidence.md).

Targets (issue notes): veth topology up + down <= 25 ms median;
``tcplab --help`` <= 80 ms and ``tcplab list`` <= 100 ms median; per-script
overhead beyond the script's own timeline <= 30 ms median; a batch of 8 short
scripts in one ``tcplab run`` <= 0.5x the wall time of 8 packetdrill runs, one <= 1.2x one
(when PACKETDRILL names the reference runner, for example
shared/oracles/packetdrill.sh; packetdrill is never a dependency of tcplab);
the whole catalogue, IPv4 and IPv6, at the default -j within 1.5 s of its longest exercise's timeline.
``python -m bench.lateness`` and ``python -m bench.trust`` measure the lab's
own punctuality and ``make run`` under load.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.timing import samples_ms, veth_up_and_down
from lab.privileges import ensure_lab_privileges

RECORD = Path(__file__).resolve().parents[1] / "docs" / "measurements.md"
SHORT_SCRIPT = Path(__file__).with_name("handshake.pkt")
SHARED_SCRIPT = Path(__file__).with_name("shared-language.pkt")  # what tcplab and packetdrill both speak
SHARED_TIMELINE = Path(__file__).with_name("shared-timeline.pkt")  # the same language, a 0.2 s timeline


def measure(name: str, action: Callable[[], object], runs: int, target_ms: float | None = None) -> None:
    samples = samples_ms(action, runs)
    median = statistics.median(samples)
    p90 = samples[int(0.9 * (len(samples) - 1))]
    verdict = "" if target_ms is None else f"  target <= {target_ms:g} ms: {'met' if median <= target_ms else 'MISSED'}"
    print(f"{name:<40} median {median:8.2f} ms  p90 {p90:8.2f} ms  min {samples[0]:8.2f} ms  (n={runs}){verdict}")


def script_overhead(runs: int, kept: bool = False) -> None:
    """Wall time of a run minus the script's own timeline (its last segment's time); ``kept``: runs of a
    batch, each taking over the topology the one before left (lab/live/kept.py)."""
    from lab.live.kept import keeping
    from lab.live.punctual import on_timeline_cpu
    from lab.live.runner import run_script
    from lab.script.settings import Settings
    from lab.script.parser import parse_file

    script = parse_file(str(SHORT_SCRIPT))
    samples = []
    with keeping() if kept else contextlib.nullcontext(), on_timeline_cpu():  # as runs in turn keep (batch.py)
        run_script(script, 4, Settings())  # warm-up
        for family in (4, 6):
            for _ in range(runs):
                result = run_script(script, family, Settings())
                assert result.passed, result.failure
                samples.append((result.duration - result.steps[-1].time) * 1000)
    samples.sort()
    median = statistics.median(samples)
    what = "script overhead, in a batch (kept)" if kept else "script overhead (topology included)"
    print(f"{what:<40} median {median:8.2f} ms  "
          f"p90 {samples[int(0.9 * (len(samples) - 1))]:8.2f} ms  min {samples[0]:8.2f} ms  (n={len(samples)})"
          f"  target <= 30 ms: {'met' if median <= 30 else 'MISSED'}")


def wall(command: list[str], repeats: int, pause: float = 0.0) -> float:
    """Median wall time of ``command`` in seconds, each run ``pause`` seconds after the one before; it must
    succeed."""
    samples = []
    for _ in range(repeats):
        time.sleep(pause)
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        samples.append(time.perf_counter() - start)
        assert done.returncode == 0, done.stdout + done.stderr
    return statistics.median(samples)


def batch(tcplab: str, count: int, repeats: int, target: float, script: Path = SHARED_SCRIPT,
          pause: float = 0.0) -> None:
    """``tcplab run`` of ``count`` short scripts (IPv4) in one process, beside ``count`` packetdrill runs;
    with ``pause``, each run that long after the one before: the kernel has finished removing the previous
    run's namespaces (it does so after the process ends, and its grace periods keep the CPUs ticking, which
    the next run's quiet start waits out: lab/live/punctual.py)."""
    ours = wall([tcplab, "run", "--ip-version", "4", *[str(script)] * count], repeats, pause)
    what = f"{count} short scripts in one tcplab run" if count > 1 else "one short script, tcplab run"
    if script != SHARED_SCRIPT:
        what = f"{count} scripts of 0.2 s in one tcplab run"
    if pause:
        what = f"one short script, {pause:g} s after the last"
    line = f"{what:<40} median {ours * 1000:8.1f} ms  (n={repeats})"
    reference = os.environ.get("PACKETDRILL")
    if reference:
        runs = " && ".join([f"{shlex.quote(reference)} 4 {shlex.quote(str(script))} >/dev/null"] * count)
        theirs = wall(["sh", "-c", runs], repeats, pause)
        ratio = ours / theirs
        line += (f"  vs {count} packetdrill run{'s' if count > 1 else ''} {theirs * 1000:.1f} ms: {ratio:.2f}x  "
                 f"target <= {target:g}x: {'met' if ratio <= target else 'MISSED'}")
    else:
        line += "  (set PACKETDRILL to compare with packetdrill)"
    print(line)


def catalogue(tcplab: str, repeats: int) -> None:
    """``tcplab run --all`` at its default -j: the whole catalogue in both families, process start included."""
    from lab.course.catalogue import exercises

    longest = max(exercise.runtime for exercise in exercises())
    median = wall([tcplab, "run", "--all"], repeats)
    print(f"{'catalogue, run --all (default -j)':<40} median {median * 1000:8.1f} ms  (n={repeats})  "
          f"longest timeline {longest:.2f} s, target <= +1.5 s: {'met' if median <= longest + 1.5 else 'MISSED'}")


class Tee(io.StringIO):
    """Prints what it is given and keeps it for the record."""

    def write(self, text: str) -> int:
        sys.__stdout__.write(text)
        sys.__stdout__.flush()
        return super().write(text)


def machine() -> str:
    """One line on where the figures come from."""
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    return (f"Linux {platform.release()}, {len(os.sched_getaffinity(0))} CPUs, load average {load} before the "
            f"run, Python {platform.python_version()}; packetdrill: {os.environ.get('PACKETDRILL') or 'not compared'}")


def write_record(started: float, seconds: float, where: str, figures: str) -> None:
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    RECORD.write_text(f"""# Measured on this machine

Written whole by `make bench` (`python -m bench`) on {date}, in {seconds:.0f} s; the next
run replaces it. Medians of repeated runs; a target is the issue's, and `MISSED` says so when it is not met.
The figures the timing design rests on are in [timing-evidence.md](timing-evidence.md).

{where}

```text
{figures.rstrip()}
```
""", encoding="utf-8")


def main() -> None:
    ensure_lab_privileges()
    started, where = time.time(), machine()
    began = time.monotonic()
    with contextlib.redirect_stdout(Tee()) as figures:
        run_all()
        from bench.observations import report

        report(200)
    write_record(started, time.monotonic() - began, where, figures.getvalue())
    print(f"wrote {RECORD}")


def run_all() -> None:
    from lab.course.first_handshake import run_demo
    from netns import LoopbackTopology

    def loopback() -> None:
        with LoopbackTopology():
            pass

    tcplab = str(Path(sys.executable).with_name("tcplab"))
    measure("veth topology up + down", veth_up_and_down, 100, 25)
    measure("loopback topology up + down", loopback, 100)
    measure("tcplab --help (process wall time)", lambda: subprocess.run([tcplab, "--help"], capture_output=True), 20, 80)
    measure("tcplab list (process wall time)", lambda: subprocess.run([tcplab, "list"], capture_output=True), 20, 100)
    measure("demo: topology + handshake + close (a script run)", run_demo, 20)
    script_overhead(25)
    script_overhead(25, kept=True)
    batch(tcplab, 8, 7, 0.5)
    batch(tcplab, 8, 5, 0.5, SHARED_TIMELINE)
    batch(tcplab, 1, 15, 1.2)
    batch(tcplab, 1, 15, 1.2, pause=0.5)
    from bench.one_run import report as where_one_run_goes

    where_one_run_goes()
    catalogue(tcplab, 3)


if __name__ == "__main__":
    main()
