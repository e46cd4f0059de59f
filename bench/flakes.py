"""Flake rates of tcplab beside packetdrill on the same kernel selftests, quiet and with one core busy.

``python -m bench.flakes SELFTESTS_DIR SCRIPT.pkt... [--runs N]`` copies the named
scripts (with the folder's defaults.sh and set_sysctls.py) into a temporary
folder and, N times, runs them under ``tcplab selftests --allow-shell --json``
and, interleaved, under the packetdrill runner PACKETDRILL names (e.g.
shared/oracles/packetdrill.sh; packetdrill is never a dependency of tcplab),
both families; then the same with one core kept busy. Prints the failing runs
of each tool. Target (issue "Verdicts you can trust"): tcplab's no more than
packetdrill's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.busy import one_busy_core

TCPLAB = str(Path(sys.executable).with_name("tcplab"))
SUPPORT = ("defaults.sh", "set_sysctls.py")


def tcplab_failures(folder: str, reasons: list[str]) -> Counter:
    """The failing (script, family) pairs of one round; each failure's first line goes to ``reasons``."""
    done = subprocess.run([TCPLAB, "selftests", folder, "--allow-shell", "--json"], capture_output=True, text=True)
    failed = [entry for entry in json.loads(done.stdout) if entry["result"] != "pass"]
    reasons.extend(f"{entry['script']} IPv{entry['family']}: {entry['reason']}" for entry in failed)
    return Counter(f"{entry['script']} IPv{entry['family']}" for entry in failed)


def packetdrill_failures(runner: str, folder: str, scripts: list[str]) -> Counter:
    failed = Counter()
    for script in scripts:
        for family in (4, 6):
            done = subprocess.run([runner, str(family), os.path.join(folder, script)], capture_output=True)
            if done.returncode != 0:
                failed[f"{script} IPv{family}"] += 1
    return failed


def measure(folder: str, scripts: list[str], runs: int, busy: bool, runner: str | None) -> None:
    ours, theirs, reasons = Counter(), Counter(), []
    with one_busy_core(busy):
        for _ in range(runs):
            ours += tcplab_failures(folder, reasons)
            if runner:
                theirs += packetdrill_failures(runner, folder, scripts)
    total = runs * len(scripts) * 2
    label = "one core busy" if busy else "quiet"
    line = f"{label:<14} tcplab {sum(ours.values())} of {total} runs failed"
    if runner:
        line += f"; packetdrill {sum(theirs.values())} of {total}"
    print(line)
    for name, count in (ours + theirs).most_common():
        print(f"  {name}: tcplab {ours[name]}, packetdrill {theirs[name]}")
    for reason in reasons:
        print(f"    tcplab: {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("selftests")
    parser.add_argument("scripts", nargs="+")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    runner = os.environ.get("PACKETDRILL")
    with tempfile.TemporaryDirectory(prefix="tcplab-flakes-") as folder:
        for name in (*args.scripts, *SUPPORT):
            shutil.copy(os.path.join(args.selftests, name), folder)
        measure(folder, args.scripts, args.runs, False, runner)
        measure(folder, args.scripts, args.runs, True, runner)


if __name__ == "__main__":
    main()
