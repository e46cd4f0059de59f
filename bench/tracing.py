"""What reading the kernel's tracepoints costs a run: the same runs with the tracepoints on and off.

``python -m bench.tracing [ROUNDS]``: every engine test script (tests/scripts),
IPv4 and IPv6, ROUNDS times in each mode, interleaved; prints each mode's
median run wall time and the lab's lateness for its injected segments
(Action.late_ms). "Off" is a run that finds no tracefs, as a rootless run
does, so it samples states with sock_diag only.
"""

from __future__ import annotations

import sys
import time

from bench.lateness import SCRIPTS, percentile
from lab.privileges import ensure_lab_privileges


def measure(rounds: int) -> None:
    from lab.live import tracepoints
    from lab.live.runner import run_script
    from lab.script.settings import Settings
    from lab.script.parser import parse_file
    from netns.tracefs import TracingUnavailable

    def untraced():
        raise TracingUnavailable("switched off for the comparison")

    traced = tracepoints.process_instance
    scripts = [parse_file(str(path)) for path in sorted(SCRIPTS.glob("*.pkt"))]
    walls: dict[str, list[float]] = {"traced": [], "untraced": []}
    late: dict[str, list[float]] = {"traced": [], "untraced": []}
    failed = {"traced": 0, "untraced": 0}
    try:
        for _ in range(rounds):
            for mode in ("traced", "untraced"):
                tracepoints.process_instance = traced if mode == "traced" else untraced
                for script in scripts:
                    for family in (4, 6):
                        began = time.monotonic()
                        result = run_script(script, family, Settings())
                        walls[mode].append(time.monotonic() - began)
                        failed[mode] += not result.passed
                        late[mode] += [action.late_ms for action in result.actions if action.what == "inject"]
    finally:
        tracepoints.process_instance = traced
    for mode in ("traced", "untraced"):
        print(f"{mode:<9} run wall p50 {percentile(walls[mode], 0.5) * 1000:6.1f} ms   injected segments late "
              f"p50 {percentile(late[mode], 0.5):.3f} ms  p99 {percentile(late[mode], 0.99):.3f} ms  "
              f"(runs {len(walls[mode])}, failed {failed[mode]})")


def main() -> None:
    ensure_lab_privileges()
    measure(int(sys.argv[1]) if len(sys.argv) > 1 else 3)


if __name__ == "__main__":
    main()
