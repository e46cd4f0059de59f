"""The mismatch report a person reads, rendered from a finished run's data.

The failing line, the expected line as written, the actual segment in the
same syntax, which fields differed, whose fault it was (the kernel's content
or timing, or the lab's own lateness), and the segments seen just before.
"""

from __future__ import annotations

from lab.judge.trace import LAB_LATE, Failure, RunResult

KIND_HEADINGS = {
    "content": "the kernel's segment or call differs",
    "timing": "the kernel's timing is outside the tolerance",
    LAB_LATE: "the LAB was late, not the kernel: nothing after this line was judged; run it again on a quieter machine",
}


def render_failure(result: RunResult, absolute: bool = False) -> str:
    """The report of a failed run; empty for a passed one."""
    failure = result.failure
    if failure is None:
        return ""
    lines = [f"{result.path}:{failure.line}: IPv{result.family}: {failure.message}",
             f"  kind:     {failure.kind} ({KIND_HEADINGS.get(failure.kind, failure.kind)})"]
    if failure.expected:
        lines.append(f"  expected: {failure.expected}")
    if failure.actual:
        lines.append(f"  actual:   {failure.actual}")
    for diff in failure.fields:
        lines.append(f"  differs:  {diff}")
    if failure.recent:
        lines.append("  segments before it:")
        lines.extend(f"    {step.time:8.4f}  {step.text(absolute)}" for step in failure.recent)
    if result.pcap:
        lines.append(f"  capture:  {result.pcap}")
    return "\n".join(lines)


def made_again(first_try: Failure) -> str:
    """What every command says of a run made again (batch.run_many): its first try's failure was no verdict
    on the kernel (batch.not_the_kernels_verdict), so the verdict shown is the second try's."""
    why = "the lab was late" if first_try.kind == LAB_LATE else "in a crowded batch, the timing was off"
    return f"made again uncrowded: on its first try {why} at line {first_try.line} ({first_try.message})"


def lateness_summary(result) -> str:
    """One line on how punctual the lab was in a run: its actions' median and
    worst lateness."""
    late = sorted(action.late_ms for action in result.actions)
    if not late:
        return "lab lateness: no timed actions"
    median = late[len(late) // 2]
    return f"lab lateness: {len(late)} actions, median {median:.3f} ms, worst {late[-1]:.3f} ms"
