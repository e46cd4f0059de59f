"""The lab's own lateness: how long after its script time each injected segment and syscall happened.

``python -m bench.lateness [RUNS]``: every engine test script (tests/scripts),
IPv4 and IPv6, RUNS times, quiet and with one core busy; prints p50/p99/max of
the lab's injected segments and of its syscall starts, and the failures by
kind. Target (issue "Verdicts you can trust"): injected segments p99 < 1 ms on
a quiet machine. Figures are read from each run's own trace (Action.late_ms).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from bench.busy import one_busy_core
from lab.privileges import ensure_lab_privileges

SCRIPTS = Path(__file__).resolve().parents[1] / "tests" / "scripts"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(runs: int, busy: bool) -> None:
    from lab.live.runner import run_script
    from lab.script.settings import Settings
    from lab.script.parser import parse_file

    scripts = [parse_file(str(path)) for path in sorted(SCRIPTS.glob("*.pkt"))]
    injected, syscalls, kinds, total = [], [], Counter(), 0
    with one_busy_core(busy):
        for _ in range(runs):
            for script in scripts:
                for family in (4, 6):
                    result = run_script(script, family, Settings())
                    total += 1
                    if result.failure is not None:
                        kinds[result.failure.kind] += 1
                    for action in result.actions:
                        (injected if action.what == "inject" else syscalls).append(action.late_ms)
    label = "one core busy" if busy else "quiet"
    for name, values in (("injected segments", injected), ("syscall starts", syscalls)):
        print(f"lab lateness, {name:<17} {label:<13} p50 {percentile(values, 0.5):6.3f} ms  "
              f"p99 {percentile(values, 0.99):6.3f} ms  max {max(values):6.3f} ms  (n={len(values)})")
    failures = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())) or "none"
    print(f"  {total} runs ({len(scripts)} scripts x 2 families x {runs}), failures: {failures}")


def main() -> None:
    ensure_lab_privileges()
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    measure(runs, busy=False)
    measure(runs, busy=True)


if __name__ == "__main__":
    main()
