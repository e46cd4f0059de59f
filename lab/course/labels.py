"""Stable labels on the lines that assert a fact: ``// #tw-60`` in a script, ``# #spread`` in an experiment.

A claim of the course names its evidence as ``exercise#label`` rather than by
line number, so editing a script does not silently point a claim at another
line. A label is a word starting with ``#`` inside the line's comment.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_LABEL = re.compile(r"(?:^|\s)#([a-z][a-z0-9-]*)\b")
_COMMENT = {".pkt": "//", ".py": "#"}


@cache
def _lines(path: str) -> tuple[str, ...]:
    """The file's lines, read once: a course of a hundred claims cites each script many times."""
    return tuple(Path(path).read_text(encoding="utf-8").splitlines())


@cache
def labels(path: str) -> dict[str, int]:
    """label -> 1-based line number, for every labelled line of the file at ``path``."""
    marker = _COMMENT[Path(path).suffix]
    found: dict[str, int] = {}
    for number, line in enumerate(_lines(path), start=1):
        if marker not in line:
            continue
        for label in _LABEL.findall(line.split(marker, 1)[1]):
            if label in found:
                raise ValueError(f"{path}:{number}: label #{label} already used on line {found[label]}")
            found[label] = number
    return found


def code_at(path: str, line: int) -> str:
    """The file's line ``line`` without its comment: what a reader of the evidence sees."""
    return _lines(path)[line - 1].split(_COMMENT[Path(path).suffix], 1)[0].strip()


def line_of(path: str, label: str) -> int:
    """The line carrying ``#label`` in the file at ``path`` (KeyError if none)."""
    return labels(path)[label]
