"""Can a first try be trusted? The catalogue as users run it: every exercise alone, and ``make run``.

``python -m bench.trust [--tries N] [--batches N] [--busy]`` prints the
kernel build, then:

- **standalone**: every script exercise on its own, one process per
  (exercise, family, topology) as ``tcplab run NAME --ip-version F
  [--loopback] --repeat N -j 1``: IPv4 and IPv6, veth and loopback for
  observe exercises. Each try is a first try (``--repeat`` never runs a try
  again); the process's first is a cold start, as a user's single run is.
  Prints the lab-late count out of all tries, per exercise and per line
  (target: at most 1 in 1000, none concentrated on one line) and every
  other failure.
- **batch**: ``tcplab run --all`` N times: how many failed (target 0), and
  their first tries, a run made again counting by its first try
  (``first_try`` in the JSON).

``--busy`` runs the same while another process keeps one core busy
(``sh -c 'while :; do :; done'``). First it prints what each kind of
observation costs the timeline (``python -m bench.observations``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench import observations
from bench.busy import one_busy_core

TCPLAB = str(Path(sys.executable).with_name("tcplab"))


@dataclass
class Tally:
    """First tries and what went wrong in them, by exercise and by line."""

    tries: int = 0
    late: Counter = field(default_factory=Counter)  # (where, line) -> lab-late first tries
    why: list[str] = field(default_factory=list)  # each lab-late first try's message
    other: list[str] = field(default_factory=list)  # every other failure, one line each

    def add(self, where: str, entry: dict) -> None:
        """One run's JSON entry; a run made again counts by its first try."""
        self.tries += 1
        failure = entry["first_try"] or entry["failure"]
        if failure is None:
            return
        again = " (made again: " + ("passed)" if entry["passed"] else "failed again)") if entry["first_try"] else ""
        if failure["kind"] == "lab-late":
            self.late[(where, failure["line"])] += 1
            self.why.append(f"{where}: line {failure['line']}: {failure['message']}{again}")
        else:
            report = "\n".join(f"      {line}" for line in entry["report"].splitlines())
            self.other.append(f"{where}: line {failure['line']}: {failure['kind']}: {failure['message']}{again}\n{report}")

    def show(self, label: str) -> None:
        late = sum(self.late.values())
        rate = late / max(self.tries, 1) * 1000
        print(f"{label}: {late} lab-late in {self.tries} first tries ({rate:.1f} per 1000; target <= 1), "
              f"{len(self.other)} other failures")
        by_run = Counter()
        for (where, _), count in self.late.items():
            by_run[where] += count
        for where, count in by_run.most_common():
            lines = ", ".join(f"line {line}: {n}" for (w, line), n in sorted(self.late.items()) if w == where)
            print(f"  lab-late  {where}: {count} ({lines})")
        for text in self.why:
            print(f"    {text}")
        for text in self.other:
            print(f"  failed    {text}")


def standalone(tries: int) -> Tally:
    from lab.course.catalogue import exercises

    tally = Tally()
    for exercise in exercises():
        if exercise.experiment:
            continue
        topologies = ("veth", "loopback") if exercise.mode == "observe" else ("veth",)
        for topology in topologies:
            for family in ("4", "6"):
                command = [TCPLAB, "run", exercise.name, "--ip-version", family, "--repeat", str(tries), "-j", "1",
                           "--json"] + (["--loopback"] if topology == "loopback" else [])
                done = subprocess.run(command, capture_output=True, text=True)
                where = f"{exercise.name} IPv{family}" + (f" {topology}" if exercise.mode == "observe" else "")
                entries = json.loads(done.stdout) if done.stdout.strip() else []
                if not entries:
                    tally.other.append(f"{where}: no result (exit {done.returncode}): {done.stderr.strip()[-200:]}")
                for entry in entries:
                    tally.add(where, entry)
    return tally


def batches(count: int) -> tuple[Tally, list[float], int]:
    """The first tries of ``count`` runs of ``tcplab run --all``, their wall times, and how many failed
    (their verdicts after any run made again)."""
    tally, walls, failing = Tally(), [], 0
    for _ in range(count):
        start = time.perf_counter()
        done = subprocess.run([TCPLAB, "run", "--all", "--json"], capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        entries = json.loads(done.stdout)
        failing += not all(entry["passed"] for entry in entries)
        for entry in entries:
            tally.add(f"{entry['name']} IPv{entry['family']}", entry)
    return tally, walls, failing


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.trust", description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=20, help="first tries per exercise, family and topology")
    parser.add_argument("--batches", type=int, default=20, help="runs of tcplab run --all")
    parser.add_argument("--busy", action="store_true", help="with one core kept busy")
    arguments = parser.parse_args()
    print(f"kernel {os.uname().release}, {os.cpu_count()} CPUs")
    observations.report(200)
    label = "one core busy" if arguments.busy else "quiet"
    with one_busy_core(arguments.busy):
        if arguments.tries:
            standalone(arguments.tries).show(f"standalone, {label}")
        if arguments.batches:
            tally, walls, failing = batches(arguments.batches)
            tally.show(f"make run x{arguments.batches}, {label}: {failing} of {arguments.batches} failed (target 0), "
                       f"wall median {statistics.median(walls):.1f} s; their first tries")


if __name__ == "__main__":
    main()
