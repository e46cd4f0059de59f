"""Names for namespaces and links, and the run identity encoded in them.

Every name starts with ``tcplab`` and carries the creating process's pid and
start time, so that parallel runs never collide and ``tcplab topo cleanup``
can tell a dead run's leftovers (remove) from a live run's namespaces (keep),
even after the pid has been reused by another process.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass

PREFIX = "tcplab"

_counter = itertools.count()
_NETNS_RE = re.compile(rf"^{PREFIX}-(?P<pid>\d+)-(?P<start>[0-9a-z]+)-(?P<n>\d+)-(?P<role>[a-z]+)$")


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rem = divmod(value, 36)
        out = digits[rem] + out
        if not value:
            return out


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may hold spaces and parentheses: fields follow the last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    return int(fields[19])


@dataclass(frozen=True)
class RunId:
    """Identity of one tcplab process: pid plus its start time."""

    pid: int
    start: str

    @classmethod
    def current(cls) -> RunId:
        pid = os.getpid()
        return cls(pid, _base36(process_start_time(pid) or 0))

    def is_alive(self) -> bool:
        started = process_start_time(self.pid)
        return started is not None and _base36(started) == self.start


@dataclass(frozen=True)
class TopologyNames:
    """Names of the namespaces and veth ends of one topology."""

    run: RunId
    index: int

    @classmethod
    def allocate(cls) -> TopologyNames:
        return cls(RunId.current(), next(_counter))

    def netns(self, role: str) -> str:
        return f"{PREFIX}-{self.run.pid}-{self.run.start}-{self.index}-{role}"

    def link(self, role: str) -> str:
        """A veth end's name; it only has to be unique inside its namespace."""
        # pid <= 4194304 is 5 base-36 digits; the index wraps at 3 digits: 15 in all.
        return f"{PREFIX}{_base36(self.run.pid)}{_base36(self.index % 36**3)}{role[0]}"


def parse_netns(name: str) -> tuple[RunId, int, str] | None:
    """Split a namespace name made by :meth:`TopologyNames.netns`; None if not ours."""
    match = _NETNS_RE.match(name)
    if not match:
        return None
    return RunId(int(match["pid"]), match["start"]), int(match["n"]), match["role"]
