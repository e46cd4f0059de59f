"""The tcplab namespaces on this machine, grouped by the run that made them.

``tcplab topo ls`` shows them; ``tcplab topo cleanup`` removes the ones whose
run is dead (SIGKILLed, crashed) and never touches a live run's namespaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netns import namespace
from netns.names import RunId, parse_netns
from netns.signals import deferred_signals


@dataclass
class RunNamespaces:
    """One tcplab process and the namespaces it made."""

    run: RunId
    namespaces: list[str] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.run.is_alive()


def runs() -> list[RunNamespaces]:
    """Every run with namespaces under /run/netns, oldest pid first."""
    grouped: dict[RunId, RunNamespaces] = {}
    for name in sorted(namespace.listed()):
        parsed = parse_netns(name)
        if parsed is None:
            continue
        run_id = parsed[0]
        entry = grouped.setdefault(run_id, RunNamespaces(run_id))
        entry.namespaces.append(name)
    return sorted(grouped.values(), key=lambda r: r.run.pid)


def remove_dead() -> list[str]:
    """Remove the namespaces of runs that are no longer alive; return their names."""
    removed: list[str] = []
    with deferred_signals():
        for run in runs():
            if run.alive:
                continue
            for name in run.namespaces:
                namespace.remove(name)
                removed.append(name)
    return removed
