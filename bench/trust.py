"""``make run`` as users meet it: N whole-catalogue runs, quiet and with one core busy.

``python -m bench.trust [N]`` runs ``tcplab run --all`` (its default -j) N
times on a quiet machine and N times while another process keeps one core
busy; prints the failing runs (target 0 of N each way), the failures by kind,
the runs made again uncrowded (lab-late in the crowded batch), each failure's
line, and the wall time's median (target <= 10 s on this 2-core machine).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.busy import one_busy_core

TCPLAB = str(Path(sys.executable).with_name("tcplab"))


def catalogue_runs(count: int, busy: bool) -> None:
    walls, failing_runs, kinds, failed_names, again, reasons = [], 0, Counter(), Counter(), 0, []
    with one_busy_core(busy):
        for _ in range(count):
            start = time.perf_counter()
            done = subprocess.run([TCPLAB, "run", "--all", "--json"], capture_output=True, text=True)
            walls.append(time.perf_counter() - start)
            results = json.loads(done.stdout)
            again += sum(entry["first_try"] is not None for entry in results)
            failed = [entry for entry in results if not entry["passed"]]
            failing_runs += bool(failed)
            for entry in failed:
                kinds[entry["failure"]["kind"] if entry["failure"] else "?"] += 1
                failed_names[f"{entry['name']} IPv{entry['family']}"] += 1
                if entry["failure"]:
                    reasons.append(f"{entry['name']} IPv{entry['family']}: line {entry['failure']['line']}: "
                                   f"{entry['failure']['message']}")
    label = "one core busy" if busy else "quiet"
    print(f"make run ({label}): {failing_runs} of {count} runs failed; wall median {statistics.median(walls):.2f} s, "
          f"max {max(walls):.2f} s; failures by kind: {dict(kinds) or 'none'}; runs made again uncrowded after being "
          f"lab-late in the batch: {again}")
    for name, times in failed_names.most_common():
        print(f"  {name}: failed in {times} run(s)")
    for reason in reasons:
        print(f"    {reason}")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    catalogue_runs(count, busy=False)
    catalogue_runs(count, busy=True)


if __name__ == "__main__":
    main()
