"""Why another kernel release differs: the Linux changes behind the differences the course found.

The entries live in lab/course/release_changes.toml. A merged course
(`tcplab claims --from`) shows an entry under a claim's differing line only
when that release's run failed exactly where the entry says and the release
is older than the change: a failure anywhere else stays unexplained, so an
entry can never dress up a new difference as a known one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lab.course.catalogue import find, read_toml
from lab.course.labels import labels
from lab.errors import BadInput

CHANGES_FILE = Path(__file__).with_name("release_changes.toml")
_FIELDS = {"since", "change", "why_en", "why_zh", "message"}
_RELEASE = re.compile(r"([0-9]+)\.([0-9]+)")


@dataclass(frozen=True)
class Change:
    exercise: str
    label: str  # the labelled line the run fails at; "" when `message` names the failure instead
    message: str  # a word of the failure message (for an unlabelled line such as a sysctl); "" with a label
    since: tuple[int, int]  # the first release that has the change
    change: str  # the commit and its subject, or the release
    why_en: str
    why_zh: str

    def why(self, language: str) -> str:
        return self.why_zh if language == "zh" else self.why_en

    @property
    def since_text(self) -> str:
        return f"{self.since[0]}.{self.since[1]}"


def release_number(release: str) -> tuple[int, int] | None:
    """``6.12.118+deb12-amd64`` -> (6, 12); None for a name that is not a release."""
    match = _RELEASE.match(release)
    return (int(match[1]), int(match[2])) if match else None


@cache
def changes() -> tuple[Change, ...]:
    rows = read_toml(CHANGES_FILE)
    found = []
    for at, row in rows.items():
        where = f"{CHANGES_FILE.name}: [{at}]"
        exercise, _, label = at.partition("#")
        message = row.get("message", "")
        missing = [name for name in _FIELDS - {"message"} if not str(row.get(name, "")).strip()]
        if set(row) - _FIELDS or missing or bool(label) == bool(message):
            raise BadInput(f"{where}: needs since, change, why_en, why_zh, and either a #label in its name or "
                           f"a message, not both (missing: {missing or '-'}; unknown: {sorted(set(row) - _FIELDS) or '-'})")
        since = release_number(row["since"])
        if since is None:
            raise BadInput(f"{where}: since {row['since']!r} is not a release such as '6.13'")
        path = str(find(exercise).script)
        if label and label not in labels(path):
            raise BadInput(f"{where}: no line of {path} carries #{label}")
        found.append(Change(exercise, label, message, since, row["change"], row["why_en"], row["why_zh"]))
    return tuple(found)


def explain(release: str, exercise: str, failed_line: int, message: str) -> Change | None:
    """The known change that explains a run of ``exercise`` on ``release`` failing at ``failed_line``."""
    number = release_number(release)
    if number is None:
        return None
    for change in changes():
        if change.exercise != exercise or number >= change.since:
            continue
        if change.label and labels(str(find(exercise).script))[change.label] == failed_line:
            return change
        if change.message and change.message in message:
            return change
    return None
