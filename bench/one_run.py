"""Where the wall time of ``tcplab run`` of one short script goes, part by part: ``python -m bench.one_run``.

Each part is measured on its own, as a run meets it, and the parts are
printed beside the whole process's median:

- the interpreter's start (``python -c pass`` in the project's venv);
- the imports a run needs (the ``run`` command and the engine), beyond that start;
- the veth topology built and removed;
- the quiet start: how long, just after a topology was built, the other
  CPUs keep ticking (lab/live/punctual.py waits for them before time 0;
  the run keeps to its timeline's CPU, so what the build leaves for RCU
  stays on that CPU, which the wait does not look at);
- the trace instance: made, its events enabled, removed (netns/tracefs.py;
  the making overlaps the imports, the removal ends the process).

What the parts do not cover (the script's parse, its timeline, the report,
the capture) is the rest. The parts are what a faster single run would have
to cut; packetdrill has none of the last three (no topology of namespaces,
no quiet start, no traced states).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.timing import samples_ms, veth_up_and_down

SCRIPT = Path(__file__).with_name("shared-language.pkt")
RUN_IMPORTS = "import lab.cli.run, lab.live.batch, lab.live.runner"
NO_TEARDOWN = "; import os; os._exit(0)"  # as the tcplab command ends (lab/cli entry): no interpreter teardown
AFTER_TEARDOWN = 0.3  # seconds between two builds: the previous removal's grace periods are over, as for a run


def median_ms(action: Callable[[], object], runs: int) -> float:
    return statistics.median(samples_ms(action, runs))


def process(*command: str) -> Callable[[], None]:
    return lambda: subprocess.run(command, capture_output=True, check=True)


def settle_after_build() -> float:
    """Milliseconds the other CPUs keep ticking after a topology is built (0 when they stopped already), for
    a process kept to its timeline's CPU from the start, as ``tcplab run`` of one script is."""
    from lab.live.punctual import let_other_cpus_settle, on_timeline_cpu
    from netns import VethTopology

    time.sleep(AFTER_TEARDOWN)
    with on_timeline_cpu(), VethTopology():
        start = time.perf_counter()
        let_other_cpus_settle()
        return (time.perf_counter() - start) * 1000


def trace_instance_parts() -> tuple[float, float]:
    """Milliseconds to make a trace instance and set it up as a run's (its clock, size, events), and to
    remove it."""
    from lab.live.tracepoints import prepared
    from netns.names import PREFIX, RunId
    from netns.tracefs import TraceInstance

    run = RunId.current()  # a run's own instance is ...-0-trace: this one cannot meet it, and cleanup knows it
    instance = TraceInstance(f"{PREFIX}-{run.pid}-{run.start}-1-trace")
    start = time.perf_counter()
    instance.__enter__()
    try:
        prepared(instance)
        made = time.perf_counter()
    finally:
        instance.__exit__(None, None, None)
    return (made - start) * 1000, (time.perf_counter() - made) * 1000


def report(runs: int = 15) -> None:
    python = sys.executable
    tcplab = str(Path(python).with_name("tcplab"))
    whole = median_ms(process(tcplab, "run", "--ip-version", "4", str(SCRIPT)), runs)
    start = median_ms(process(python, "-c", "pass" + NO_TEARDOWN), runs)
    imports = median_ms(process(python, "-c", RUN_IMPORTS + NO_TEARDOWN), runs) - start

    topology = median_ms(veth_up_and_down, runs)
    settle = statistics.median(settle_after_build() for _ in range(runs))
    made, removed = (statistics.median(part) for part in zip(*(trace_instance_parts() for _ in range(runs))))
    parts = [("interpreter start", start), ("imports of a run", imports), ("veth topology up + down", topology),
             ("quiet start after the build", settle), ("trace instance: removal at exit", removed)]
    print(f"one short script, where its {whole:.0f} ms go (medians of {runs}, each part measured alone):")
    for name, value in parts:
        print(f"  {name:<38} {value:7.1f} ms")
    print(f"  {'the rest (parse, timeline, report)':<38} {whole - sum(value for _, value in parts):7.1f} ms")
    print(f"  (trace instance: made and set up in {made:.1f} ms, alone; in a run, while Click and the engine load)")


if __name__ == "__main__":
    from lab.privileges import ensure_lab_privileges

    ensure_lab_privileges()
    report()
