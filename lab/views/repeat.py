"""``run --repeat N``: how punctual each line was over N runs, and what failed, by kind.

For every line that matched a segment or was an action of the lab, the
spread of its measured time against its script time: median and the largest
deviation, in ms (+ late, - early). This is what a user reads to choose an
honest tolerance: the kernel's own variation shows on ``>`` lines, the
lab's on ``<`` lines and syscalls.
"""

from __future__ import annotations

import statistics
from collections import defaultdict


def spreads(outcomes: list) -> dict[int, list[float]]:
    """Script line -> every measured deviation (ms) over the runs given (one script, one family)."""
    by_line: dict[int, list[float]] = defaultdict(list)
    for outcome in outcomes:
        for step in outcome.steps:
            if step.line is not None and step.late_ms is not None and not step.mismatch:
                by_line[step.line].append(step.late_ms)
        for action in outcome.actions:
            if action.what != "inject":  # an injected segment is a step too
                by_line[action.line].append(action.late_ms)
    return dict(by_line)


def table(outcomes: list, lines: dict[int, str]) -> str:
    """The per-line spread table and the failures by kind, for one script and family."""
    failed = defaultdict(int)
    for outcome in outcomes:
        if outcome.failure is not None:
            failed[outcome.failure.kind] += 1
    rows = [f"{outcomes[0].name}: {len(outcomes)} runs, {len(outcomes) - sum(failed.values())} passed"
            + "".join(f", {count} {kind}" for kind, count in sorted(failed.items())),
            f"  {'line':>5} {'n':>3} {'median ms':>10} {'max dev ms':>10}  script"]
    for line, values in sorted(spreads(outcomes).items()):
        worst = max(values, key=abs)
        rows.append(f"  {line:>5} {len(values):>3} {statistics.median(values):>+10.3f} {worst:>+10.3f}  "
                    f"{lines.get(line, '')}")
    return "\n".join(rows)
