"""Does a regenerated fixture say what the committed one says, apart from where it was made?

A fixture's section header names its environment: the kernel release (one
version number covers many builds) and the tcplab version. Regenerated on
another build, every file would differ from its committed fixture although
no segment did, and a CI job that regenerates to catch kernel changes would
see only noise. So the environment is set apart; everything else must
match: each segment as ``tcplab capture diff`` shows it, the script line it
matched (its packet comment) and the rest of the header (the sysctls in
force).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from lab.errors import BadInput

from lab.capture.diff import segment_lines
from lab.capture.pcapfile import CapturedSegment, read_segments, section_comments

SAME, ENVIRONMENT_ONLY, CHANGED, MISSING = "same", "environment only", "changed", "missing"
# Where fixtures.write_fixture puts the environment in the header comment.
ENVIRONMENT = {"kernel": re.compile(r"kernel: Linux (\S+);"), "tcplab": re.compile(r"^tcplab (\S+) ")}


@dataclass(frozen=True)
class Fixture:
    """What a fixture holds: its section header comment and its segments."""

    header: str
    segments: list[CapturedSegment]


@dataclass(frozen=True)
class Comparison:
    """The committed fixture against the regenerated one."""

    verdict: str  # SAME, ENVIRONMENT_ONLY, CHANGED or MISSING
    environment: str = ""  # what of the environment differs: "kernel NEW, was OLD"
    differences: tuple[str, ...] = ()  # unified-diff lines, committed then regenerated

    @property
    def changed(self) -> bool:
        """Whether the committed fixture must be replaced (it differs, or there is none)."""
        return self.verdict in (CHANGED, MISSING)


def read_fixture(path: str) -> Fixture:
    segments = read_segments(path)  # first: BadInput for a file that cannot be read
    return Fixture("; ".join(section_comments(path)), segments)


def split_header(header: str) -> tuple[dict[str, str], list[str]]:
    """(the environment, the rest as lines to compare: one per header fact, one per sysctl)."""
    environment = {}
    for name, pattern in ENVIRONMENT.items():
        if match := pattern.search(header):
            environment[name] = match[1]
            header = header[:match.start(1)] + "*" + header[match.end(1):]
    facts = []
    for part in header.split("; "):
        label, _, values = part.partition(": ")
        facts += [f"{label}: {value}" for value in _sysctls(values)] if label == "sysctls in force" else [part]
    return environment, facts


def _sysctls(values: str) -> list[str]:
    """``key=value`` items of a header's sysctls; a word without ``=`` continues the value before it (the
    kernel writes ip_local_port_range as two numbers)."""
    items: list[str] = []
    for word in values.split():
        if "=" in word or not items:
            items.append(word)
        else:
            items[-1] += f" {word}"
    return items


def compare(committed: Fixture, regenerated: Fixture, name: str) -> Comparison:
    """How the ``regenerated`` fixture differs from the ``committed`` one; ``name`` heads the diff."""
    old_environment, old_facts = split_header(committed.header)
    new_environment, new_facts = split_header(regenerated.header)
    differences = tuple(difflib.unified_diff(
        old_facts + segment_lines(committed.segments, with_comments=True),
        new_facts + segment_lines(regenerated.segments, with_comments=True),
        f"{name} (committed)", f"{name} (regenerated)", lineterm="", n=2))
    if differences:
        return Comparison(CHANGED, differences=differences)
    if old_environment == new_environment:
        return Comparison(SAME)
    return Comparison(ENVIRONMENT_ONLY, "; ".join(
        f"{key} {new_environment.get(key, '?')}, was {old_environment.get(key, '?')}"
        for key in ENVIRONMENT if new_environment.get(key) != old_environment.get(key)))


def compare_files(committed: Path, regenerated: Path) -> Comparison:
    """compare() for two files; a committed fixture that cannot be read counts as changed."""
    if not committed.exists():
        return Comparison(MISSING)
    try:
        old = read_fixture(str(committed))
    except BadInput as error:
        return Comparison(CHANGED, differences=(f"the committed fixture cannot be read: {error}",))
    return compare(old, read_fixture(str(regenerated)), str(committed))
