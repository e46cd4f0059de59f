"""Results of a script run, and the mismatch report a person reads.

A report reads a finished run: the failing line, the expected line as
written, the kernel's actual segment in the same syntax, which fields
differed, and the segments seen just before.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Failure(Exception):
    """Why a run failed, at which script line."""

    line: int
    message: str
    expected: str = ""
    actual: str = ""
    fields: list[str] = field(default_factory=list)
    recent: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message


@dataclass
class Step:
    """One segment on the wire, in script terms, for ladders and reports."""

    time: float  # seconds since the script's start
    from_left: bool  # sent by the left endpoint (lab or client) to the right one (kernel or server)
    text: str  # the segment in script syntax
    line: int | None  # the script line it matched, if any
    states: dict[str, str] = field(default_factory=dict)  # endpoint -> TCP state after the segment
    label: str = ""  # short form for ladders: flags seq:end(len) ack
    mismatch: str = ""  # what differed, when this is the segment that failed the run
    lost: bool = False  # the link dropped it (a link lose line): sent, never received


@dataclass
class RunResult:
    path: str
    family: int
    failure: Failure | None
    pcap: str | None
    duration: float
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    left: str = "lab"  # the endpoint drawn on the left: lab or client
    right: str = "kernel"  # kernel or server
    exercise: str = ""  # the catalogue name, where the file's name is not it (experiments)

    @property
    def passed(self) -> bool:
        return self.failure is None

    @property
    def name(self) -> str:
        return f"{self.path} (IPv{self.family})"


def render_failure(result: RunResult) -> str:
    failure = result.failure
    assert failure is not None
    lines = [f"{result.path}:{failure.line}: IPv{result.family}: {failure.message}"]
    if failure.expected:
        lines.append(f"  expected: {failure.expected}")
    if failure.actual:
        lines.append(f"  actual:   {failure.actual}")
    for diff in failure.fields:
        lines.append(f"  differs:  {diff}")
    if failure.recent:
        lines.append("  segments before it:")
        lines.extend(f"    {text}" for text in failure.recent)
    if result.pcap:
        lines.append(f"  capture:  {result.pcap}")
    return "\n".join(lines)
